// The Tempo query API on the HTTP server, so Grafana's Tempo data source
// reads tracegres: trace by id (v1 and v2, protobuf or JSON), search (q as
// TraceQL, or the older tags), tag names and values, build info and echo.
// Only the API's publicly documented shape is followed.
//
// Who reads: a Bearer token, verified as for GraphQL (server/auth/jwt.ts):
// a reader token reads its organization, an admin token every one. Each
// request runs in a read-only transaction as the token's role, with the
// GraphQL statement timeout, so row-level security applies and the cost is
// bounded; the windows, limits and span counts are bounded in
// parameters.ts and the SQL.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type postgres from 'postgres';
import { InvalidTokenError, type PgSettings } from '../auth/jwt.ts';
import { projectRoot } from '../database/migrate.ts';
import { readAsCaller } from '../read-as-caller.ts';
import { isApiArgumentError, type DatabaseError } from '../graphql/mask-error.ts';
import { spansToOtlpRequest, type StoredSpan } from '../otlp/mapping.ts';
import { encodeTraceProtobuf, traceJson, type FoundTrace, type TraceApiVersion } from './messages.ts';
import { BadParameter, optionalWindow, traceIdParameter, windowParameters } from './parameters.ts';
import { searchFilter, searchOf, searchResponse, type FoundTraceRow } from './search.ts';
import { tagNamesResponse, tagScopesOf, tagScopesResponse, tagValuesV1Response, tagValuesV2Response, v1TagAsTraceql } from './tags.ts';

/** Spans a trace-by-id answer holds at most (tracing.otlp_trace_spans' bound). */
export const MAX_TRACE_SPANS = 10_000;
/** The Tempo release whose query API this follows: Grafana picks the endpoints it calls by it. */
export const TEMPO_API_VERSION = '2.7.0';
/** Tag lookups without start/end read the last day. */
const TAG_LOOKBACK_SECONDS = 24 * 3600;

export interface TempoRouteOptions {
  /** Connects as the role GraphQL uses (TRACEGRES_GRAPHQL_DATABASE_URL, else the owner's). */
  sql: postgres.Sql;
  pgSettingsFor(authorization: string | undefined): Promise<PgSettings>;
  /** Postgres statement_timeout of each request (TRACEGRES_GRAPHQL_STATEMENT_TIMEOUT). */
  statementTimeout: string;
  log?(message: string): void;
}

class Unauthorized extends Error {}

type Read = <T>(body: (sql: postgres.TransactionSql) => Promise<T>) => Promise<T>;
type Answer = { status: number; type: string; body: string | Uint8Array };

const json = (body: unknown, status = 200): Answer => ({ status, type: 'application/json', body: JSON.stringify(body) });
const text = (body: string, status: number): Answer => ({ status, type: 'text/plain; charset=utf-8', body });

/** A route for startHttpServer's `routes`. */
export function createTempoRoute(options: TempoRouteOptions) {
  const log = options.log ?? ((message: string) => console.error(`[tracegres tempo] ${message}`));
  const buildInfo = {
    version: TEMPO_API_VERSION,
    revision: `tracegres-${packageVersion()}`,
    branch: 'tracegres',
    buildUser: '',
    buildDate: '',
    goVersion: '',
  };

  return async function tempoRoute(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const handler = handlerFor(url.pathname);
    if (!handler) return false;
    let answer: Answer;
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        answer = text('use GET', 405);
      } else if (handler.kind === 'echo') {
        answer = text('echo', 200);
      } else if (handler.kind === 'buildinfo') {
        answer = json(buildInfo);
      } else {
        const settings = await settingsOf(req.headers.authorization);
        const read: Read = (body) => readAsCaller(options.sql, settings, options.statementTimeout, body);
        answer = await handler.run(url.searchParams, read, req);
      }
    } catch (error) {
      answer = problem(error, log, res);
    }
    if (!res.headersSent) {
      const body = typeof answer.body === 'string' ? Buffer.from(answer.body) : answer.body;
      res.writeHead(answer.status, { 'content-type': answer.type, 'content-length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
    }
    return true;
  };

  async function settingsOf(authorization: string | undefined): Promise<PgSettings> {
    // Without a token nothing is visible: say so instead of answering empty.
    if (!authorization) throw new Unauthorized('a Bearer token (reader or admin) is required');
    try {
      return await options.pgSettingsFor(authorization);
    } catch (error) {
      if (error instanceof InvalidTokenError) throw new Unauthorized(error.message);
      throw error;
    }
  }
}

type Handler =
  | { kind: 'echo' }
  | { kind: 'buildinfo' }
  | { kind: 'read'; run(params: URLSearchParams, read: Read, req: IncomingMessage): Promise<Answer> };

function handlerFor(pathname: string): Handler | undefined {
  if (pathname === '/api/echo') return { kind: 'echo' };
  if (pathname === '/api/status/buildinfo') return { kind: 'buildinfo' };
  let match = /^\/api(\/v2)?\/traces\/([^/]*)$/.exec(pathname);
  if (match) {
    const version: TraceApiVersion = match[1] ? 'v2' : 'v1';
    const id = decodePathPart(match[2]!);
    return { kind: 'read', run: (params, read, req) => traceById(id, version, params, read, req) };
  }
  if (pathname === '/api/search') return { kind: 'read', run: search };
  match = /^\/api(\/v2)?\/search\/tags$/.exec(pathname);
  if (match) return { kind: 'read', run: match[1] ? tagScopes : tagNames };
  match = /^\/api(\/v2)?\/search\/tag\/([^/]+)\/values$/.exec(pathname);
  if (match) {
    const v2 = Boolean(match[1]);
    const tag = decodePathPart(match[2]!);
    return { kind: 'read', run: (params, read) => tagValues(v2 ? tag : v1TagAsTraceql(tag), v2, params, read) };
  }
  return undefined;
}

function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

async function traceById(id: string, version: TraceApiVersion, params: URLSearchParams, read: Read, req: IncomingMessage): Promise<Answer> {
  const traceId = traceIdParameter(id);
  const window = optionalWindow(params);
  // One span more than an answer holds tells a cut trace from a whole one.
  const found = await read(
    (sql) => sql<StoredSpan[]>`select * from tracing.otlp_trace_spans(array[tracing.hex_to_trace_id(${traceId})], ${MAX_TRACE_SPANS + 1})`,
  );
  const cut = found.length > MAX_TRACE_SPANS;
  const rows = cut ? found.slice(0, MAX_TRACE_SPANS) : found;
  // start/end narrow where Tempo looks: a trace none of whose spans
  // overlaps them is not found there.
  const inWindow =
    !window ||
    rows.some(
      (row) =>
        BigInt(row.start_time_unix_nano) <= BigInt(window.to.getTime()) * 1_000_000n &&
        BigInt(row.end_time_unix_nano) >= BigInt(window.from.getTime()) * 1_000_000n,
    );
  if (rows.length === 0 || !inWindow) return text(`trace ${traceId} not found`, 404);
  const trace: FoundTrace = {
    resourceSpans: spansToOtlpRequest(rows, { attributes: {} }).resourceSpans ?? [],
    ...(cut ? { partial: `the trace has more than ${MAX_TRACE_SPANS} spans; the first ${MAX_TRACE_SPANS} by start time are here` } : {}),
  };
  if (/application\/protobuf/i.test(req.headers.accept ?? '')) {
    return { status: 200, type: 'application/protobuf', body: encodeTraceProtobuf(trace, version) };
  }
  return json(traceJson(trace, version));
}

async function search(params: URLSearchParams, read: Read): Promise<Answer> {
  const request = searchOf(params);
  const rows = await read(async (sql) => {
    const [traceql] = request.query ? await sql`select tracing.traceql_to_filter(${request.query}) as condition` : [];
    const filter = searchFilter(request, traceql?.condition);
    return sql<FoundTraceRow[]>`
      select f.*, tracing.otlp_unix_nano(f.start_time) as start_unix_nano
        from api.find_traces(${sql.json(filter as postgres.JSONValue)}, ${request.limit}) f`;
  });
  return json(searchResponse(rows));
}

async function tagNamesOf(params: URLSearchParams, read: Read): Promise<string[]> {
  const window = windowParameters(params, TAG_LOOKBACK_SECONDS);
  const rows = await read((sql) => sql<Array<{ tag: string }>>`select tag from tracing.tag_names(${window.from}, ${window.to})`);
  return rows.map((row) => row.tag);
}

async function tagScopes(params: URLSearchParams, read: Read): Promise<Answer> {
  const scopes = tagScopesOf(params.get('scope'));
  return json(tagScopesResponse(scopes, await tagNamesOf(params, read)));
}

async function tagNames(params: URLSearchParams, read: Read): Promise<Answer> {
  return json(tagNamesResponse(await tagNamesOf(params, read)));
}

async function tagValues(tag: string, v2: boolean, params: URLSearchParams, read: Read): Promise<Answer> {
  const window = windowParameters(params, TAG_LOOKBACK_SECONDS);
  const query = params.get('q')?.trim() || null;
  const rows = await read(
    (sql) => sql<Array<{ type: string; value: string }>>`
      select type, value from tracing.tag_values(${window.from}, ${window.to}, ${tag}, ${query})`,
  );
  return json(v2 ? tagValuesV2Response(rows) : tagValuesV1Response(rows));
}

// The SQL functions name their arguments; the caller knows the request's.
const PARAMETER_OF: Record<string, string> = {
  p_query: 'q',
  p_from: 'start',
  p_to: 'end',
  p_first: 'limit',
  p_limit: 'limit',
  p_tag: 'tag',
  'p_filter.spans_per_trace': 'spss',
};

function problem(error: unknown, log: (message: string) => void, res: ServerResponse): Answer {
  if (error instanceof BadParameter) return text(error.message, 400);
  if (error instanceof Unauthorized) {
    res.setHeader('www-authenticate', 'Bearer');
    return text(error.message, 401);
  }
  const database = error as DatabaseError;
  if (isApiArgumentError(database)) {
    const [argument] = /^p_[a-z0-9_.[\]/]+/.exec(database.message)!;
    const parameter = PARAMETER_OF[argument];
    // A place inside the search filter came from q, tags or the durations.
    return text(parameter ? parameter + database.message.slice(argument.length) : `q or tags: ${database.message}`, 400);
  }
  if (database.code === '57014') return text('the query took longer than the statement timeout and was cancelled', 504);
  log(`request failed: ${String(error)}`);
  return text('internal server error', 500);
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
