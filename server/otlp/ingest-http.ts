// POST /v1/traces: OTLP/HTTP ingest (protobuf or JSON, gzip or not),
// answering with OTLP's ExportTraceServiceResponse. The body is bounded
// while it is read; what is done with it is ingest.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createGunzip } from 'node:zlib';
import { ORGANIZATION_ID_HEADER } from '../../ts/trace-context/headers.ts';
import { createOtlpIngester, IngestProblem, STORE_UNAVAILABLE, UNAUTHENTICATED_MESSAGE, type IngestOptions } from './ingest.ts';
import { MalformedPayloadError, decodeRequestJson, encodeResponse, encodeStatus, type OtlpRequest, type Protocol } from './protocol.ts';

export const OTLP_TRACES_PATH = '/v1/traces';

/** A route for startHttpServer's `routes`. */
export function createOtlpIngestRoute(options: IngestOptions) {
  const log = options.log ?? ((message: string) => console.error(`[tracegres otlp] ${message}`));
  const ingester = createOtlpIngester(options);

  return async function otlpIngestRoute(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== OTLP_TRACES_PATH) return false;
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const protocol: Protocol = contentType === 'application/json' ? 'http/json' : 'http/protobuf';
    try {
      if (req.method !== 'POST') {
        res.setHeader('allow', 'POST');
        throw new IngestProblem(405, 'use POST');
      }
      if (contentType !== 'application/x-protobuf' && contentType !== 'application/json') {
        throw new IngestProblem(415, 'content-type must be application/x-protobuf or application/json');
      }
      const header = req.headers[ORGANIZATION_ID_HEADER];
      const organizationId = await ingester.organizationOf(req.headers.authorization, typeof header === 'string' ? header : undefined);
      if (organizationId === null) {
        res.setHeader('www-authenticate', 'Bearer');
        throw new IngestProblem(401, UNAUTHENTICATED_MESSAGE);
      }
      const body = await readBody(req, options.maxBodyBytes);
      let response;
      if (protocol === 'http/json') {
        let request: OtlpRequest;
        try {
          request = decodeRequestJson(body.toString('utf8'));
        } catch (error) {
          if (error instanceof MalformedPayloadError) throw new IngestProblem(400, error.message);
          throw error;
        }
        response = await ingester.ingest(request, organizationId);
      } else {
        response = await ingester.ingestProtobuf(body, organizationId);
      }
      send(res, 200, protocol, encodeResponse(response, protocol));
    } catch (error) {
      if (error instanceof IngestProblem) {
        // OTLP/HTTP: errors carry a google.rpc.Status in the request's encoding.
        send(res, error.status, protocol, encodeStatus(error.grpcCode, error.message, protocol));
      } else {
        // The database is unreachable or failing: OTLP clients retry a 503.
        log(`ingest failed: ${(error as Error).message}`);
        res.setHeader('retry-after', '5');
        send(res, 503, protocol, encodeStatus(STORE_UNAVAILABLE.grpcCode, STORE_UNAVAILABLE.message, protocol));
      }
    }
    return true;
  };
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new IngestProblem(413, `request body larger than ${limit} bytes`);
  }
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity' && encoding !== 'gzip') {
    req.resume();
    throw new IngestProblem(415, 'content-encoding must be gzip or absent');
  }
  // The limit applies after decompression too, so a small gzip bomb cannot
  // make the server inflate gigabytes.
  const source: NodeJS.ReadableStream = encoding === 'gzip' ? req.pipe(createGunzip()) : req;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        req.unpipe();
        req.resume();
        throw new IngestProblem(413, `request body larger than ${limit} bytes${encoding === 'gzip' ? ' once decompressed' : ''}`);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof IngestProblem) throw error;
    throw new IngestProblem(
      400,
      encoding === 'gzip' ? `body is not valid gzip: ${(error as Error).message}` : `could not read the body: ${(error as Error).message}`,
    );
  }
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, status: number, protocol: Protocol, body: Uint8Array): void {
  if (res.headersSent) return;
  res.writeHead(status, {
    'content-type': protocol === 'http/json' ? 'application/json' : 'application/x-protobuf',
    'content-length': body.length,
  });
  res.end(body);
}
