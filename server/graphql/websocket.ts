// GraphQL over WebSocket (the graphql-transport-ws protocol of graphql-ws)
// at /graphql, for the live view's subscriptions (live-subscriptions.ts).
//
// grafserv's own upgrade handler would serve it too, but it takes no token
// and has no bounds; this one runs the same execution (grafserv's graphql-ws
// config, so the query budget and error masking apply as over HTTP) with:
// - the token: `Authorization: Bearer ...` in the connection_init payload
//   (a browser cannot set headers on a WebSocket), verified as for HTTP;
//   none, or a bad one, closes the socket (4403 Forbidden); the settings it
//   grants are what every operation of the socket runs with, until the
//   token expires: then the socket is closed (4403) too, as a request with
//   that token would be refused from then on;
// - caps: each client (token subject, else the token itself) runs at most
//   `maxSubscriptionsPerClient` operations at once and the server
//   `maxSubscriptions`; beyond, the operation gets an error and the rest go
//   on; messages are at most 100 kB, as HTTP request bodies;
// - results a subscriber may not see (a null root field, see
//   live-subscriptions.ts) are dropped, not sent.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { makeServer, type Context } from 'graphql-ws';
import { decodeJwt } from 'jose';
import { makeGraphQLWSConfig } from 'postgraphile/grafserv';
import { GraphQLError, type ExecutionResult } from 'postgraphile/graphql';
import { WebSocketServer, type WebSocket } from 'ws';
import { InvalidTokenError, type PgSettings } from '../auth/jwt.ts';
import { requestSettings } from './preset.ts';

const GRAPHQL_PATH = '/graphql';
const MAX_MESSAGE_BYTES = 100_000;
const PING_EVERY_MS = 25_000;

export interface GraphqlWebSocketOptions {
  /** The grafserv instance whose schema and middleware run the operations. */
  serv: Parameters<typeof makeGraphQLWSConfig>[0];
  pgSettingsFor(authorization: string | undefined): Promise<PgSettings>;
  maxSubscriptions?: number;
  maxSubscriptionsPerClient?: number;
}

export interface GraphqlWebSocket {
  /** For the HTTP server's `upgrade` event. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): Promise<void>;
}

type Extra = { socket: WebSocket; request: IncomingMessage };

export function createGraphqlWebSocket(options: GraphqlWebSocketOptions): GraphqlWebSocket {
  const maxSubscriptions = options.maxSubscriptions ?? 100;
  const maxPerClient = options.maxSubscriptionsPerClient ?? 3;
  const base = makeGraphQLWSConfig(options.serv);
  // The client of each authenticated socket, and the operations each socket runs.
  const clients = new WeakMap<IncomingMessage, string>();
  const running = new Map<WebSocket, { client: string; ids: Set<string> }>();
  const held = (client: string) => [...running.values()].reduce((n, s) => n + (s.client === client ? s.ids.size : 0), 0);
  const total = () => [...running.values()].reduce((n, s) => n + s.ids.size, 0);
  const release = (ctx: Context<Record<string, unknown>, Extra>, id: string) => running.get(ctx.extra.socket)?.ids.delete(id);

  const graphqlWs = makeServer<Record<string, unknown>, Extra>({
    ...(base as object),
    async onConnect(ctx) {
      const authorization = ctx.connectionParams?.Authorization ?? ctx.connectionParams?.authorization;
      if (typeof authorization !== 'string' || authorization === '') return false;
      let settings: PgSettings;
      try {
        settings = await options.pgSettingsFor(authorization);
      } catch (error) {
        if (error instanceof InvalidTokenError) return false;
        throw error;
      }
      requestSettings.set(ctx.extra.request, settings);
      // The verifier required exp and checked it.
      closeAtExpiry(ctx.extra.socket, decodeJwt(authorization.replace(/^Bearer\s+/i, '')).exp!);
      clients.set(ctx.extra.request, settings['jwt.claims.user_id'] ?? createHash('sha256').update(authorization).digest('hex'));
      return true;
    },
    async onSubscribe(ctx, id, payload) {
      const client = clients.get(ctx.extra.request)!;
      const mine = held(client);
      if (mine >= maxPerClient || total() >= maxSubscriptions) {
        const why =
          mine >= maxPerClient ? `this client already runs ${mine} live subscriptions` : 'the server runs its most live subscriptions';
        return [new GraphQLError(why, { extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' } })];
      }
      let socket = running.get(ctx.extra.socket);
      if (!socket) running.set(ctx.extra.socket, (socket = { client, ids: new Set() }));
      socket.ids.add(id);
      const result = await base.onSubscribe!(ctx as never, id, payload);
      if (Array.isArray(result)) release(ctx, id);
      return result;
    },
    onComplete(ctx, id) {
      release(ctx, id);
    },
    async subscribe(args) {
      const result = await base.subscribe!(args);
      return isAsyncIterable(result) ? withoutHidden(result) : result;
    },
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    const closed = graphqlWs.opened(
      {
        protocol: socket.protocol,
        send: (data) => new Promise<void>((resolve, reject) => socket.send(data, (error) => (error ? reject(error) : resolve()))),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (callback) =>
          socket.on('message', async (data) => {
            try {
              await callback(String(data));
            } catch (error) {
              socket.close(1011, error instanceof Error ? error.message.slice(0, 100) : 'internal error');
            }
          }),
      },
      { socket, request },
    );
    // A protocol error (a message over maxPayload, say) closes the socket;
    // unhandled, ws would throw it and end the process.
    socket.on('error', () => socket.terminate());
    // Pings keep idle sockets open through proxies.
    const ping = setInterval(() => socket.ping(), PING_EVERY_MS);
    socket.once('close', (code, reason) => {
      clearInterval(ping);
      running.delete(socket);
      void closed(code, String(reason));
    });
  });

  return {
    handleUpgrade(req, socket, head) {
      if (new URL(req.url ?? '/', 'http://localhost').pathname !== GRAPHQL_PATH) {
        socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
        return;
      }
      // An authenticated socket that runs nothing still holds a place.
      if (wss.clients.size >= maxSubscriptions) {
        socket.end('HTTP/1.1 503 Service Unavailable\r\nretry-after: 10\r\nconnection: close\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    },
    async close() {
      for (const socket of wss.clients) socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** The longest delay setTimeout takes (about 24.8 days); a token that lives longer is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Closes the socket at `exp` (Unix seconds), the first second its token no longer verifies. */
function closeAtExpiry(socket: WebSocket, exp: number): void {
  let timer: NodeJS.Timeout;
  const arm = () => {
    const left = exp * 1000 - Date.now();
    timer = setTimeout(
      () => (left > MAX_TIMER_MS ? arm() : socket.close(4403, 'Forbidden: the token expired')),
      Math.max(0, Math.min(left, MAX_TIMER_MS)),
    );
    timer.unref();
  };
  arm();
  socket.once('close', () => clearTimeout(timer));
}

function isAsyncIterable(value: unknown): value is AsyncIterableIterator<ExecutionResult> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/** The results whose root fields are not all null (see live-subscriptions.ts); returning it returns the source, at once. */
function withoutHidden(source: AsyncIterableIterator<ExecutionResult>): AsyncIterableIterator<ExecutionResult> {
  const iterator: AsyncIterableIterator<ExecutionResult> = {
    async next() {
      for (;;) {
        const step = await source.next();
        if (step.done || step.value.errors?.length || !step.value.data) return step;
        if (Object.values(step.value.data).some((value) => value != null)) return step;
      }
    },
    return: async (value) => (await source.return?.(value)) ?? { done: true, value },
    throw: async (error) => (source.throw ? source.throw(error) : Promise.reject(error)),
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}
