// OTLP/gRPC ingest: opentelemetry.proto.collector.trace.v1.TraceService/Export,
// the transport most collectors and SDKs use by default. The same
// authorization, tenant binding, size limit and per-span rejection as
// POST /v1/traces (ingest.ts does both); gzip-compressed messages are
// accepted, and the size limit applies after decompression.
import * as grpc from '@grpc/grpc-js';
import { listenGrpc } from '../grpc-listen.ts';
import { ORGANIZATION_ID_HEADER } from '../../ts/trace-context/headers.ts';
import { createOtlpIngester, IngestProblem, STORE_UNAVAILABLE, UNAUTHENTICATED_MESSAGE, type IngestOptions } from './ingest.ts';
import { encodeResponse } from './protocol.ts';

export const TRACE_SERVICE_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

// Messages stay bytes here: ingest.ts decodes requests as it does the HTTP
// route's protobuf bodies, and protocol.ts encodes the responses.
const identity = (bytes: Buffer) => bytes;
const traceService: grpc.ServiceDefinition = {
  Export: {
    path: TRACE_SERVICE_EXPORT_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

export interface OtlpGrpcServer {
  /** host:port it listens on. */
  address: string;
  close(): Promise<void>;
}

export async function startOtlpGrpcServer(options: IngestOptions & { host: string; port: number }): Promise<OtlpGrpcServer> {
  const log = options.log ?? ((message: string) => console.error(`[tracegres otlp] ${message}`));
  const ingester = createOtlpIngester(options);
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxBodyBytes,
    // A client that opens a connection and sends nothing does not hold it forever.
    'grpc.max_connection_idle_ms': 5 * 60_000,
  });

  async function exportSpans(call: grpc.ServerUnaryCall<Buffer, Buffer>): Promise<Buffer> {
    const organizationId = await ingester.organizationOf(
      firstValue(call.metadata, 'authorization'),
      firstValue(call.metadata, ORGANIZATION_ID_HEADER),
    );
    if (organizationId === null) throw new IngestProblem(401, UNAUTHENTICATED_MESSAGE);
    const response = await ingester.ingestProtobuf(call.request, organizationId);
    // gRPC frames carry the same protobuf message as OTLP/HTTP's body.
    return Buffer.from(encodeResponse(response, 'http/protobuf'));
  }

  server.addService(traceService, {
    Export(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      exportSpans(call).then(
        (response) => callback(null, response),
        (error: Error) => {
          if (error instanceof IngestProblem) return callback({ code: error.grpcCode, details: error.message });
          log(`ingest failed: ${error.message}`);
          callback({ code: STORE_UNAVAILABLE.grpcCode, details: STORE_UNAVAILABLE.message });
        },
      );
    },
  });

  return listenGrpc(server, options.host, options.port);
}

function firstValue(metadata: grpc.Metadata, key: string): string | undefined {
  const [value] = metadata.get(key);
  return typeof value === 'string' ? value : undefined;
}
