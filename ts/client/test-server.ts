/**
 * A real HTTP server on 127.0.0.1 for the client tests, so tracedFetch is
 * exercised through the network stack (header serialisation, status lines,
 * refused connections) instead of a mocked fetch. Handlers are written
 * against Request/Response, the way edge functions are.
 */
import { type IncomingMessage, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Handler = (request: Request) => Response | Promise<Response>;

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: Headers;
  body: string;
}

export interface TestServer {
  /** Origin, e.g. `http://127.0.0.1:43121`, without a trailing slash. */
  url: string;
  received: ReceivedRequest[];
  /** The request received last; throws when none came. */
  lastReceived(): ReceivedRequest;
  close(): Promise<void>;
}

function toHeaders(message: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(message.headers)) {
    for (const item of Array.isArray(value) ? value : [value ?? '']) headers.append(name, item);
  }
  return headers;
}

export async function startTestServer(handler: Handler): Promise<TestServer> {
  const received: ReceivedRequest[] = [];
  let origin = '';
  const server = createServer(async (message, reply) => {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of message) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      const method = message.method ?? 'GET';
      const headers = toHeaders(message);
      const url = new URL(message.url ?? '/', origin);
      received.push({ method, path: url.pathname, headers, body: body.toString('utf8') });
      const request = new Request(url, { method, headers, body: ['GET', 'HEAD'].includes(method) ? undefined : body });
      const response = await handler(request);
      reply.writeHead(response.status, response.statusText || undefined, [...response.headers].flat());
      reply.end(Buffer.from(await response.arrayBuffer()));
    } catch (error) {
      // A handler bug should fail the test loudly, not hang the client.
      reply.writeHead(599).end(String(error));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: origin,
    received,
    lastReceived() {
      const request = received.at(-1);
      if (request === undefined) throw new Error('the server received nothing');
      return request;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        // fetch keeps connections alive; without this close() waits for them to time out.
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** An address nothing listens on: a server is started, its port noted, and closed again. */
export async function refusedUrl(): Promise<string> {
  const server = await startTestServer(() => new Response(null));
  await server.close();
  return server.url;
}
