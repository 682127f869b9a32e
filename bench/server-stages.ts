// Where a GraphQL request's time goes inside the running server, read from
// outside it for the benchmarks: when the request arrived, when its first
// statement was handed to the Postgres driver, when the query's rows were
// back, and when the response was finished; and which statements it sent.
//
// It listens on the HTTP server and wraps `connect` of the server's pool so
// each pooled client's `query` is seen. Requests must come one at a time
// (the benchmark's rounds do), since a statement is put down to the request
// in flight. Only requests to /graphql are traced.
import type { Server } from 'node:http';

/** One request's stages, in ms from its arrival. */
export interface RequestStages {
  /** The first statement handed to the driver (the transaction's opening). */
  firstStatement: number;
  /** The query's rows back: its named (prepared) statement settled. */
  rows: number;
  /** The response handed to the socket in full. */
  finished: number;
  /** Statements the request sent, in order, each cut to its first words. */
  statements: string[];
}

interface QueryClient {
  query(config: unknown, ...rest: unknown[]): unknown;
}

interface ConnectingPool {
  connect(...args: unknown[]): unknown;
}

interface InFlight {
  arrived: number;
  firstStatement?: number;
  rows?: number;
  statements: string[];
}

export function traceServerStages(server: Server, pool: ConnectingPool) {
  let inFlight: InFlight | undefined;
  let last: RequestStages | undefined;

  server.prependListener('request', (req, res) => {
    if (!req.url?.startsWith('/graphql')) return;
    const request: InFlight = { arrived: performance.now(), statements: [] };
    inFlight = request;
    res.once('finish', () => {
      if (inFlight === request) inFlight = undefined;
      if (request.firstStatement === undefined || request.rows === undefined) return;
      last = {
        firstStatement: request.firstStatement - request.arrived,
        rows: request.rows - request.arrived,
        finished: performance.now() - request.arrived,
        statements: request.statements,
      };
    });
  });

  const seen = new WeakSet<QueryClient>();
  const connect = pool.connect.bind(pool);
  pool.connect = (...args: unknown[]) => {
    // The callback form is passed through untraced; the server awaits the promise.
    if (args.length > 0) return connect(...args);
    return (connect() as Promise<QueryClient>).then((client) => {
      if (!seen.has(client)) {
        seen.add(client);
        const query = client.query.bind(client);
        client.query = (config: unknown, ...rest: unknown[]) => {
          const request = inFlight;
          if (!request) return query(config, ...rest);
          request.firstStatement ??= performance.now();
          const result = query(config, ...rest);
          const named = typeof config === 'object' && config !== null && 'name' in config && (config as { name?: string }).name;
          const text = typeof config === 'string' ? config : String((config as { text?: string })?.text ?? '');
          request.statements.push(`${named ? '(prepared) ' : ''}${text.replace(/\s+/g, ' ').slice(0, 40)}`);
          if (named) {
            (result as Promise<unknown>).then(
              () => (request.rows ??= performance.now()),
              () => {},
            );
          }
          return result;
        };
      }
      return client;
    });
  };

  return {
    /** The stages of the request finished last, once; undefined if none. */
    take(): RequestStages | undefined {
      const stages = last;
      last = undefined;
      return stages;
    },
  };
}
