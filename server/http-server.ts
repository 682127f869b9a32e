// The HTTP server: GraphQL (PostGraphile) at /graphql, the Ruru explorer at
// /graphiql, a health check, GraphQL over WebSocket at /graphql for the live
// view's subscriptions (server/graphql/websocket.ts), and 401 for a token
// that does not verify.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { postgraphile, type PostGraphileInstance } from 'postgraphile';
import { grafserv } from 'postgraphile/grafserv/node';
import { InvalidTokenError, type PgSettings } from './auth/jwt.ts';
import { makePreset, releasePostGraphile, requestSettings, type GraphqlOptions } from './graphql/preset.ts';
import { createGraphqlWebSocket, type GraphqlWebSocketOptions } from './graphql/websocket.ts';

export interface HttpServer {
  server: Server;
  pgl: PostGraphileInstance;
  url: string;
  close(): Promise<void>;
}

export interface HttpServerOptions {
  databaseUrl: string;
  port: number;
  host: string;
  pgSettingsFor(authorization: string | undefined): Promise<PgSettings>;
  /** Introspection and statement timeout (see GraphqlOptions). */
  graphql?: GraphqlOptions;
  /** The live view's caps (see server/graphql/websocket.ts); defaults 100 and 3. */
  websocket?: Pick<GraphqlWebSocketOptions, 'maxSubscriptions' | 'maxSubscriptionsPerClient'>;
  /** Other routes (the dashboard, OTLP ingest); return true when handled. */
  routes?: Array<(req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>>;
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const pgl = postgraphile(makePreset(options.databaseUrl, options.graphql));
  const serv = pgl.createServ(grafserv);
  const graphql = serv.createHandler();
  // The live view's subscriptions: same tokens, same row-level security as GraphQL.
  const live = createGraphqlWebSocket({ ...options.websocket, serv, pgSettingsFor: options.pgSettingsFor });

  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname === '/health') return json(res, 200, { status: 'ok' });
      for (const route of options.routes ?? []) {
        if (await route(req, res)) return;
      }
      if (url.pathname === '/') {
        res.writeHead(302, { location: '/graphiql' }).end();
        return;
      }
      if (url.pathname === '/graphql') {
        try {
          requestSettings.set(req, await options.pgSettingsFor(req.headers.authorization));
        } catch (error) {
          if (error instanceof InvalidTokenError) {
            return json(res, 401, { errors: [{ message: error.message, extensions: { code: 'INVALID_TOKEN' } }] });
          }
          throw error;
        }
      }
      graphql(req, res, (error) => {
        if (error) return serverError(res, error);
        json(res, 404, { error: 'not found' });
      });
    } catch (error) {
      serverError(res, error);
    }
  });
  server.on('upgrade', live.handleUpgrade);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    server,
    pgl,
    url: `http://${options.host === '0.0.0.0' ? 'localhost' : options.host}:${port}`,
    async close() {
      await live.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await releasePostGraphile(pgl);
    },
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function serverError(res: ServerResponse, error: unknown): void {
  // Logged without request headers: they may carry tokens.
  console.error(JSON.stringify({ level: 'error', message: 'request failed', error: String(error) }));
  json(res, 500, { errors: [{ message: 'internal server error' }] });
}
