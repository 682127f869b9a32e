// The live view's streams, as server-sent events (see
// db/functions/240-live-feed.sql for what Postgres sends):
//
// GET /live/failed-events: failed events as they happen. A trigger NOTIFYs
// the id of each event that failed, this server LISTENs once for all
// viewers, and for each viewer reads the new ids back through
// api.get_failed_events_by_id with that viewer's token settings, so
// row-level security decides what it is sent, exactly as for GraphQL.
//
// GET /live/traces: a signal (`new-traces`, no data) that traces of the
// viewer's organization arrived, at most once a second; the page runs its
// search again through GraphQL. The notification names only the
// organization, so a viewer is signalled for its own tenant's traces (an
// admin for every tenant's) and learns nothing of another's.
//
// Bounds: a token must be given (401 otherwise, like GraphQL's), each
// client (token subject, else the token itself) holds at most
// `maxStreamsPerClient` streams and the server `maxStreams` (429 beyond);
// notifications are read back in batches of at most 500 ids per viewer, and
// every read runs under the GraphQL statement timeout. The browser sends the
// token in the Authorization header (fetch, not EventSource, which cannot).
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import postgres from 'postgres';
import { InvalidTokenError, type PgSettings } from '../auth/jwt.ts';

export const FAILED_EVENTS_PATH = '/live/failed-events';
export const TRACES_PATH = '/live/traces';
const FAILED_EVENTS_CHANNEL = 'tracegres_failed_events';
const NEW_TRACES_CHANNEL = 'tracegres_new_traces';
const SIGNAL_EVERY_MS = 1000;
const BATCH_MS = 25;
const MAX_IDS_PER_READ = 500;
const HEARTBEAT_MS = 25_000;

export interface LiveFeedOptions {
  databaseUrl: string;
  pgSettingsFor(authorization: string | undefined): Promise<PgSettings>;
  statementTimeout?: string;
  maxStreams?: number;
  maxStreamsPerClient?: number;
}

interface Viewer {
  stream: 'failed-events' | 'traces';
  client: string;
  settings: PgSettings;
  res: ServerResponse;
  /** traces: when the last signal went out, and whether one waits. */
  signalledAt?: number;
  signalPending?: boolean;
}

export interface LiveFeed {
  /** The route: true when it handled the request. */
  route(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  /** Ends every stream and the LISTEN connection. */
  close(): Promise<void>;
}

export function createLiveFeed(options: LiveFeedOptions): LiveFeed {
  const maxStreams = options.maxStreams ?? 100;
  const maxPerClient = options.maxStreamsPerClient ?? 3;
  const viewers = new Set<Viewer>();
  // One connection to LISTEN, a few to read back; opened with the first viewer.
  let sql: postgres.Sql | undefined;
  let listening: Promise<unknown> | undefined;
  let listeningForTraces: Promise<unknown> | undefined;
  let pending: string[] = [];
  let flushTimer: NodeJS.Timeout | undefined;
  let heartbeat: NodeJS.Timeout | undefined;

  const start = (stream: Viewer['stream']) => {
    sql ??= postgres(options.databaseUrl, { max: 4, onnotice: () => {} });
    heartbeat ??= setInterval(() => {
      for (const viewer of viewers) viewer.res.write(': heartbeat\n\n');
    }, HEARTBEAT_MS);
    if (stream === 'traces') {
      listeningForTraces ??= sql.listen(NEW_TRACES_CHANNEL, (organization) => {
        for (const viewer of viewers) if (viewer.stream === 'traces' && sees(viewer, organization)) signal(viewer);
      });
      return listeningForTraces;
    }
    listening ??= sql.listen(FAILED_EVENTS_CHANNEL, (id) => {
      if (!/^\d+$/.test(id)) return;
      pending.push(id);
      flushTimer ??= setTimeout(() => void flush(), BATCH_MS);
    });
    return listening;
  };

  // An admin sees every organization; a reader its own (the same rule as
  // the row-level security policies).
  const sees = (viewer: Viewer, organization: string) =>
    viewer.settings.role === 'tracegres_admin' || (organization !== '' && viewer.settings['jwt.claims.organization_id'] === organization);

  // At most one signal a second per viewer; one that comes sooner is sent
  // when the second is over.
  const signal = (viewer: Viewer) => {
    if (viewer.signalPending) return;
    const wait = (viewer.signalledAt ?? 0) + SIGNAL_EVERY_MS - Date.now();
    const send = () => {
      viewer.signalPending = false;
      viewer.signalledAt = Date.now();
      if (viewers.has(viewer)) viewer.res.write('event: new-traces\ndata: {}\n\n');
    };
    if (wait <= 0) return send();
    viewer.signalPending = true;
    setTimeout(send, wait).unref();
  };

  const flush = async () => {
    flushTimer = undefined;
    const ids = pending;
    pending = [];
    for (let i = 0; i < ids.length; i += MAX_IDS_PER_READ) {
      const batch = ids.slice(i, i + MAX_IDS_PER_READ);
      await Promise.all([...viewers].filter((v) => v.stream === 'failed-events').map((viewer) => sendTo(viewer, batch)));
    }
  };

  const sendTo = async (viewer: Viewer, ids: string[]) => {
    try {
      const rows = await sql!.begin(async (tx) => {
        for (const [key, value] of Object.entries({ ...viewer.settings, statement_timeout: options.statementTimeout ?? '10s' })) {
          await tx`select set_config(${key}, ${value}, true)`;
        }
        return tx`select * from api.get_failed_events_by_id(${ids}::bigint[])`;
      });
      for (const row of rows) viewer.res.write(`event: failed-event\ndata: ${JSON.stringify(toApiShape(row))}\n\n`);
    } catch (error) {
      console.error(JSON.stringify({ level: 'error', message: 'live feed read failed', error: String(error) }));
    }
  };

  async function route(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const stream = url.pathname === FAILED_EVENTS_PATH ? 'failed-events' : url.pathname === TRACES_PATH ? 'traces' : null;
    if (!stream) return false;
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return true;
    }
    const authorization = req.headers.authorization;
    let settings: PgSettings;
    try {
      if (!authorization) throw new InvalidTokenError('the live view needs a token (Authorization: Bearer ...)');
      settings = await options.pgSettingsFor(authorization);
    } catch (error) {
      if (!(error instanceof InvalidTokenError)) throw error;
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: error.message }));
      return true;
    }
    const client = settings['jwt.claims.user_id'] ?? createHash('sha256').update(authorization).digest('hex');
    const held = [...viewers].filter((v) => v.client === client).length;
    if (held >= maxPerClient || viewers.size >= maxStreams) {
      const why = held >= maxPerClient ? `this client already holds ${held} live streams` : 'the server holds its most live streams';
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '10' }).end(JSON.stringify({ error: why }));
      return true;
    }
    const viewer: Viewer = { stream, client, settings, res };
    viewers.add(viewer);
    req.on('close', () => viewers.delete(viewer));
    await start(stream);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    // The stream is open (and listening) once the browser has this line.
    res.write('retry: 3000\nevent: ready\ndata: {}\n\n');
    return true;
  }

  return {
    route,
    async close() {
      clearTimeout(flushTimer);
      clearInterval(heartbeat);
      for (const viewer of viewers) viewer.res.end();
      viewers.clear();
      await sql?.end({ timeout: 1 });
    },
  };
}

// The row as GraphQL names it (camelCase, rowId), so the page treats live
// events like the ones it queried.
function toApiShape(row: Record<string, unknown>): Record<string, unknown> {
  const shaped: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) {
    const name = key === 'id' ? 'rowId' : key.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
    shaped[name] = name === 'rowId' ? String(value) : value instanceof Date ? value.toISOString() : value;
  }
  return shaped;
}
