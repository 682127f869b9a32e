// OTLP ingest, whatever the transport (ingest-http.ts: POST /v1/traces;
// ingest-grpc.ts: TraceService/Export): who may write and for which
// organization, and how a decoded request's spans reach the database.
//
// Every span is checked and converted here, and the valid ones are sent as
// one typed array per field to tracing.record_span_columns (span-columns.ts:
// Postgres reads uuid[], bigint[] and timestamptz[] with its own input
// functions, faster than it checks hex and time text); protobuf requests are
// decoded straight into those arrays (protobuf-columns.ts). The database
// stores the spans it accepts and names the ones it refuses.
// Rejected spans are reported in partial_success, as OTLP asks, and the
// request as a whole succeeds. Retried requests are harmless: the database
// keeps the first write of a span.
import { timingSafeEqual } from 'node:crypto';
import type postgres from 'postgres';
import { InvalidTokenError, type PgSettings } from '../auth/jwt.ts';
import { ORGANIZATION_ID_HEADER, UUID_PATTERN } from '../../ts/trace-context/headers.ts';
import type { OtlpIngestConfig } from './config.ts';
import { hashIngestToken } from './ingest-tokens.ts';
import { MalformedRequestError, otlpRequestToSpanRecords, type RejectedSpan } from './mapping.ts';
import { LeftToReferenceDecoder, protobufToSpanColumns } from './protobuf-columns.ts';
import { decodeRequestProtobuf, MalformedPayloadError, type OtlpRequest, type OtlpResponse } from './protocol.ts';
import { bigintToSpanId, columnsFromRecords, spanColumnArguments, type SpanColumns } from './span-columns.ts';

export interface IngestOptions extends OtlpIngestConfig {
  sql: postgres.Sql;
  /** The query API's token check: a JWT with role admin may ingest. */
  pgSettingsFor?: (authorization: string | undefined) => Promise<PgSettings>;
  log?: (message: string) => void;
}

/** A request refused as a whole, with the HTTP status that says why (each transport maps it to its own codes). */
export class IngestProblem extends Error {
  constructor(
    readonly status: 400 | 401 | 405 | 413 | 415,
    message: string,
  ) {
    super(message);
  }

  /** The matching google.rpc.Code, for gRPC and for the google.rpc.Status body of OTLP/HTTP. */
  get grpcCode(): number {
    switch (this.status) {
      case 400:
        return 3; // INVALID_ARGUMENT
      case 401:
        return 16; // UNAUTHENTICATED
      case 413:
        return 8; // RESOURCE_EXHAUSTED
      case 405:
      case 415:
        return 12; // UNIMPLEMENTED
    }
  }
}

/** google.rpc.Code UNAVAILABLE: the database is unreachable or failing, and OTLP clients retry. */
export const STORE_UNAVAILABLE = { grpcCode: 14, message: 'the span store is unavailable; retry later' };

export const UNAUTHENTICATED_MESSAGE = 'a Bearer token is required: an ingest token, or a query API token with role admin';

// Rejections listed in partial_success.error_message, beyond which only the count is given.
const LISTED_REJECTIONS = 10;

export interface OtlpIngester {
  /**
   * The organization the request's spans belong to, whatever they claim:
   * the shortcut token's configured one, a stored ingest token's, or the
   * one an admin JWT names (its organization_id claim or the
   * x-tracegres-organization-id header). Null: not authorized.
   */
  organizationOf(authorization: string | undefined, organizationHeader: string | undefined): Promise<string | null>;
  /** Stores a decoded request's valid spans for the organization; the answer lists the rejected ones. */
  ingest(request: OtlpRequest, organizationId: string): Promise<OtlpResponse>;
  /** The same for a protobuf ExportTraceServiceRequest, decoded straight into columns where it can be (protobuf-columns.ts). */
  ingestProtobuf(body: Uint8Array, organizationId: string): Promise<OtlpResponse>;
}

export function createOtlpIngester(options: IngestOptions): OtlpIngester {
  const token = options.token ? Buffer.from(options.token) : undefined;
  if (token && !options.organizationId) throw new TypeError('createOtlpIngester: a token needs the organizationId its spans belong to');

  async function organizationOf(authorization: string | undefined, organizationHeader: string | undefined): Promise<string | null> {
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
    const named = organizationHeader?.trim() || settings['jwt.claims.organization_id'];
    if (!named || !UUID_PATTERN.test(named)) {
      throw new IngestProblem(
        400,
        `an admin token ingests for one organization: name it (a uuid) in the ${ORGANIZATION_ID_HEADER} header or the token's organization_id claim`,
      );
    }
    return named.toLowerCase();
  }

  async function ingest(request: OtlpRequest, organizationId: string): Promise<OtlpResponse> {
    let mapped;
    try {
      mapped = otlpRequestToSpanRecords(request);
    } catch (error) {
      if (error instanceof MalformedRequestError) throw new IngestProblem(400, error.message);
      throw error;
    }
    return store(columnsFromRecords(mapped.records, mapped.positions), [...mapped.rejected], organizationId);
  }

  async function ingestProtobuf(body: Uint8Array, organizationId: string): Promise<OtlpResponse> {
    let decoded;
    try {
      decoded = protobufToSpanColumns(body);
    } catch (error) {
      if (!(error instanceof LeftToReferenceDecoder) && !(error instanceof RangeError)) throw error;
      // What the direct path does not take on, the reference path answers.
      let request;
      try {
        request = decodeRequestProtobuf(body);
      } catch (malformed) {
        if (malformed instanceof MalformedPayloadError) throw new IngestProblem(400, malformed.message);
        throw malformed;
      }
      return ingest(request, organizationId);
    }
    return store(decoded.columns, decoded.rejected, organizationId);
  }

  async function store(columns: SpanColumns, rejected: RejectedSpan[], organizationId: string): Promise<OtlpResponse> {
    await recordAll(options.sql, columns, organizationId, rejected);
    return rejected.length
      ? { partialSuccess: { rejectedSpans: String(rejected.length), errorMessage: describeRejections(rejected) } }
      : {};
  }

  return { organizationOf, ingest, ingestProtobuf };
}

/**
 * Records the spans in one call, in the token's organization whatever they
 * claim. The database stores every span it accepts and answers with the
 * ones it refused (index, reason: a check the mapping did not foresee, or
 * ids this organization already used for another span), so one bad span
 * never costs the others.
 */
async function recordAll(sql: postgres.Sql, columns: SpanColumns, organizationId: string, rejected: RejectedSpan[]): Promise<void> {
  if (columns.trace_id.length === 0) return;
  let refused: Array<{ index: number; reason: string }>;
  try {
    [{ rejected: refused }] = await sql<[{ rejected: Array<{ index: number; reason: string }> }]>`
      select rejected from tracing.record_span_columns(${spanColumnArguments(sql, columns, organizationId)})`;
  } catch (error) {
    const pgError = error as { code?: string; message?: string };
    // Other bad data (class 22) would fail the same way on every retry:
    // the client is told the request is invalid, not to retry forever.
    if (pgError.code?.startsWith('22')) throw new IngestProblem(400, `the spans could not be stored: ${pgError.message}`);
    throw error;
  }
  for (const { index, reason } of refused) {
    rejected.push({
      index: columns.positions[index]!,
      traceId: columns.trace_id[index]!,
      spanId: bigintToSpanId(columns.span_id[index]!),
      reason,
    });
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
