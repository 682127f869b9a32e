// A gRPC client of the Jaeger storage API for tests: the calls Jaeger's
// query service makes, with plain objects in and out.
import * as grpc from '@grpc/grpc-js';
import { decode, encode, fromDate, messages } from './messages.ts';
import type protobuf from 'protobufjs';

export interface CallResult<T> {
  code: grpc.status;
  details?: string;
  value?: T;
  /** Streaming calls: the encoded size of each message. */
  sizes?: number[];
}

export function createStorageClient(address: string) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const identity = (bytes: Buffer) => bytes;

  function unary<T>(path: string, request: protobuf.Type, response: protobuf.Type, body: Record<string, unknown>, metadata: grpc.Metadata) {
    return new Promise<CallResult<T>>((resolve) =>
      client.makeUnaryRequest(path, identity, identity, encode(request, body), metadata, (error, bytes) =>
        resolve(error ? { code: error.code, details: error.details } : { code: grpc.status.OK, value: decode<T>(response, bytes!) }),
      ),
    );
  }

  /** A streaming call's messages, or its error. */
  function stream<T>(path: string, request: protobuf.Type, body: Record<string, unknown>, metadata: grpc.Metadata) {
    return new Promise<CallResult<T[]>>((resolve) => {
      const chunks: T[] = [];
      const sizes: number[] = [];
      const call = client.makeServerStreamRequest(path, identity, identity, encode(request, body), metadata);
      call.on('data', (bytes: Buffer) => {
        sizes.push(bytes.length);
        chunks.push(decode<T>(messages.TracesData, bytes));
      });
      call.on('error', (error: grpc.ServiceError) => resolve({ code: error.code, details: error.details }));
      call.on('end', () => resolve({ code: grpc.status.OK, value: chunks, sizes }));
    });
  }

  const reader = '/jaeger.storage.v2.TraceReader';
  return {
    getTraces: (traceIds: string[], metadata: grpc.Metadata) =>
      stream<TracesData>(
        `${reader}/GetTraces`,
        messages.GetTracesRequest,
        { query: traceIds.map((id) => ({ traceId: Buffer.from(id, 'hex') })) },
        metadata,
      ),
    getServices: (metadata: grpc.Metadata) =>
      unary<{ services?: string[] }>(`${reader}/GetServices`, messages.GetServicesRequest, messages.GetServicesResponse, {}, metadata),
    getOperations: (service: string, spanKind: string, metadata: grpc.Metadata) =>
      unary<{ operations?: Array<{ name: string; spanKind: string }> }>(
        `${reader}/GetOperations`,
        messages.GetOperationsRequest,
        messages.GetOperationsResponse,
        { service, spanKind },
        metadata,
      ),
    findTraces: (query: Record<string, unknown>, metadata: grpc.Metadata) =>
      stream<TracesData>(`${reader}/FindTraces`, messages.FindTracesRequest, { query }, metadata),
    findTraceIds: (query: Record<string, unknown>, metadata: grpc.Metadata) =>
      unary<{
        traceIds?: Array<{ traceId: Buffer; start: { seconds: string; nanos?: number }; end: { seconds: string; nanos?: number } }>;
      }>(`${reader}/FindTraceIDs`, messages.FindTracesRequest, messages.FindTraceIDsResponse, { query }, metadata),
    getDependencies: (startTime: Date, endTime: Date, metadata: grpc.Metadata) =>
      unary<{ dependencies?: Array<{ parent: string; child: string; callCount: string }> }>(
        '/jaeger.storage.v2.DependencyReader/GetDependencies',
        messages.GetDependenciesRequest,
        messages.GetDependenciesResponse,
        { startTime: fromDate(startTime), endTime: fromDate(endTime) },
        metadata,
      ),
    close: () => client.close(),
  };
}

export interface TracesData {
  resourceSpans?: Array<{
    resource?: { attributes?: Array<{ key: string; value?: { stringValue?: string } }> };
    scopeSpans?: Array<{
      spans?: Array<{
        traceId: Buffer;
        spanId: Buffer;
        parentSpanId?: Buffer;
        name: string;
        kind?: number;
        attributes?: Array<{ key: string; value?: Record<string, unknown> }>;
        events?: Array<{ name: string }>;
        status?: { code?: number };
      }>;
    }>;
  }>;
}
