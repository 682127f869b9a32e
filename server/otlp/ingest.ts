// POST /v1/traces: OTLP/HTTP ingest (protobuf or JSON, gzip or not) into
// tracing.record_spans, answering with OTLP's ExportTraceServiceResponse.
//
// record_spans stores a batch all or nothing, so every span is checked here
// first and only the valid ones are sent; a span the database still refuses
// (its error names the span's index) is taken out and the rest sent again.
// Rejected spans are reported in partial_success, as OTLP asks, and the
// request as a whole succeeds. Retried requests are harmless: record_spans
// keeps the first write of a span.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createGunzip } from 'node:zlib';
import type postgres from 'postgres';
import { InvalidTokenError, type PgSettings } from '../auth/jwt.ts';
import { ORGANIZATION_ID_HEADER, UUID_PATTERN } from '../../ts/trace-context/headers.ts';
import { toPostgresJson } from '../../ts/trace-context/postgres-json.ts';
import type { OtlpIngestConfig } from './config.ts';
import { hashIngestToken } from './ingest-tokens.ts';
import { MalformedRequestError, otlpRequestToSpanRecords, type RejectedSpan, type SpanRecord } from './mapping.ts';
import {
  MalformedPayloadError,
  decodeRequestJson,
  decodeRequestProtobuf,
  encodeResponse,
  encodeStatus,
  type OtlpRequest,
  type Protocol,
} from './protocol.ts';

export const OTLP_TRACES_PATH = '/v1/traces';

export interface IngestOptions extends OtlpIngestConfig {
  sql: postgres.Sql;
  /** The query API's token check: a JWT with role admin may ingest. */
  pgSettingsFor?: (authorization: string | undefined) => Promise<PgSettings>;
  log?: (message: string) => void;
}

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

// Rejections listed in partial_success.error_message, beyond which only the count is given.
const LISTED_REJECTIONS = 10;

/** A route for startHttpServer's `routes`. */
export function createOtlpIngestRoute(options: IngestOptions) {
  const log = options.log ?? ((message: string) => console.error(`[tracegres otlp] ${message}`));
  const token = options.token ? Buffer.from(options.token) : undefined;
  if (token && !options.organizationId) throw new TypeError('createOtlpIngestRoute: a token needs the organizationId its spans belong to');

  /**
   * The organization the request's spans belong to, whatever they claim:
   * the shortcut token's configured one, a stored ingest token's, or the
   * one an admin JWT names (its organization_id claim or the
   * x-tracegres-organization-id header). Null: not authorized.
   */
  async function organizationOf(req: IncomingMessage): Promise<string | null> {
    const authorization = req.headers.authorization;
    if (!authorization) return null;
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!match) return null;
    const given = Buffer.from(match[1]!);
    if (token && given.length === token.length && timingSafeEqual(given, token)) return options.organizationId!;
    const [stored] = await options.sql<{ organization_id: string | null }[]>`
      select tracing.ingest_token_organization(${hashIngestToken(match[1]!)}) as organization_id`;
    if (stored?.organization_id) return stored.organization_id;
    if (!options.pgSettingsFor) return null;
    let settings: PgSettings;
    try {
      settings = await options.pgSettingsFor(authorization);
    } catch (error) {
      if (error instanceof InvalidTokenError) return null;
      throw error;
    }
    if (settings.role !== 'tracegres_admin') return null;
    const header = req.headers[ORGANIZATION_ID_HEADER];
    const named = (typeof header === 'string' ? header.trim() : undefined) || settings['jwt.claims.organization_id'];
    if (!named || !UUID_PATTERN.test(named)) {
      throw new HttpProblem(
        400,
        `an admin token ingests for one organization: name it (a uuid) in the ${ORGANIZATION_ID_HEADER} header or the token's organization_id claim`,
      );
    }
    return named.toLowerCase();
  }

  return async function otlpIngestRoute(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== OTLP_TRACES_PATH) return false;
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const protocol: Protocol = contentType === 'application/json' ? 'http/json' : 'http/protobuf';
    try {
      if (req.method !== 'POST') {
        res.setHeader('allow', 'POST');
        throw new HttpProblem(405, 'use POST');
      }
      if (contentType !== 'application/x-protobuf' && contentType !== 'application/json') {
        throw new HttpProblem(415, 'content-type must be application/x-protobuf or application/json');
      }
      const organizationId = await organizationOf(req);
      if (organizationId === null) {
        res.setHeader('www-authenticate', 'Bearer');
        throw new HttpProblem(401, 'a Bearer token is required: an ingest token, or a query API token with role admin');
      }
      const body = await readBody(req, options.maxBodyBytes);
      let request: OtlpRequest;
      try {
        request = protocol === 'http/json' ? decodeRequestJson(body.toString('utf8')) : decodeRequestProtobuf(body);
      } catch (error) {
        if (error instanceof MalformedPayloadError) throw new HttpProblem(400, error.message);
        throw error;
      }
      let mapped;
      try {
        mapped = otlpRequestToSpanRecords(request);
      } catch (error) {
        if (error instanceof MalformedRequestError) throw new HttpProblem(400, error.message);
        throw error;
      }
      const rejected = [...mapped.rejected];
      // Spans belong to the token's organization, whatever they claim.
      for (const record of mapped.records) record.organization_id = organizationId;
      await recordAll(options.sql, mapped.records, mapped.positions, rejected);
      const response = rejected.length
        ? { partialSuccess: { rejectedSpans: String(rejected.length), errorMessage: describeRejections(rejected) } }
        : {};
      send(res, 200, protocol, encodeResponse(response, protocol));
    } catch (error) {
      if (error instanceof HttpProblem) {
        // OTLP/HTTP: errors carry a google.rpc.Status in the request's encoding.
        send(res, error.status, protocol, encodeStatus(grpcCode(error.status), error.message, protocol));
      } else {
        // The database is unreachable or failing: OTLP clients retry a 503.
        log(`ingest failed: ${(error as Error).message}`);
        res.setHeader('retry-after', '5');
        send(res, 503, protocol, encodeStatus(14, 'the span store is unavailable; retry later', protocol));
      }
    }
    return true;
  };
}

/**
 * Records the spans, taking out any span the database refuses (22023 names
 * its index) and sending the rest again, so valid spans are never lost to
 * one the checks above did not foresee.
 */
async function recordAll(sql: postgres.Sql, records: SpanRecord[], positions: number[], rejected: RejectedSpan[]): Promise<void> {
  let pending = records;
  let pendingPositions = positions;
  while (pending.length > 0) {
    try {
      const batch = toPostgresJson(pending);
      const [row] = await sql<{ recorded: number }[]>`select tracing.record_spans(${batch}::text::jsonb) as recorded`;
      // Fewer stored than sent: retries (kept silent), or spans whose ids
      // this organization already used for another span (reported).
      if (row!.recorded < pending.length) {
        const conflicts = await sql<{ index: string }[]>`select tracing.span_conflicts(${batch}::text::jsonb) as index`;
        for (const { index: i } of conflicts) {
          rejected.push({
            index: pendingPositions[Number(i)]!,
            traceId: pending[Number(i)]!.trace_id,
            spanId: pending[Number(i)]!.span_id,
            reason: 'a different span with these ids is already recorded; the first one is kept',
          });
        }
      }
      return;
    } catch (error) {
      const pgError = error as { code?: string; message?: string };
      const index = pgError.code === '22023' ? /^p_spans\[(\d+)\]/.exec(pgError.message ?? '')?.[1] : undefined;
      if (index === undefined || Number(index) >= pending.length) {
        // Other bad data (class 22) would fail the same way on every retry:
        // the client gets a 400, not a 503 to retry forever.
        if (pgError.code?.startsWith('22')) throw new HttpProblem(400, `the spans could not be stored: ${pgError.message}`);
        throw error;
      }
      const i = Number(index);
      rejected.push({
        index: pendingPositions[i]!,
        traceId: pending[i]!.trace_id,
        spanId: pending[i]!.span_id,
        reason: pgError.message!.replace(/^p_spans\[\d+\]\./, ''),
      });
      pending = pending.filter((_, j) => j !== i);
      pendingPositions = pendingPositions.filter((_, j) => j !== i);
    }
  }
}

function describeRejections(rejected: RejectedSpan[]): string {
  rejected.sort((a, b) => a.index - b.index);
  const listed = rejected
    .slice(0, LISTED_REJECTIONS)
    .map((r) => `span ${r.index}${r.spanId ? ` (trace ${r.traceId}, span ${r.spanId})` : ''}: ${r.reason}`);
  const more = rejected.length > LISTED_REJECTIONS ? `; and ${rejected.length - LISTED_REJECTIONS} more` : '';
  return `${rejected.length} span(s) rejected: ${listed.join('; ')}${more}`;
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new HttpProblem(413, `request body larger than ${limit} bytes`);
  }
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity' && encoding !== 'gzip') {
    req.resume();
    throw new HttpProblem(415, 'content-encoding must be gzip or absent');
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
        throw new HttpProblem(413, `request body larger than ${limit} bytes${encoding === 'gzip' ? ' once decompressed' : ''}`);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof HttpProblem) throw error;
    throw new HttpProblem(
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

/** The gRPC status code matching an HTTP status, for google.rpc.Status. */
function grpcCode(status: number): number {
  switch (status) {
    case 400:
      return 3; // INVALID_ARGUMENT
    case 401:
      return 16; // UNAUTHENTICATED
    case 413:
      return 8; // RESOURCE_EXHAUSTED
    case 405:
    case 415:
      return 12; // UNIMPLEMENTED
    default:
      return 2; // UNKNOWN
  }
}
