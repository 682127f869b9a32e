// A local OTLP/HTTP receiver for tests and the benchmark: decodes every
// request with the same OTLP .proto definitions the exporter encodes with,
// and answers as scripted (accept, fail with a status, be slow, partially
// reject).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import {
  decodeRequestJson,
  decodeRequestProtobuf,
  encodeResponse,
  encodeStatus,
  type OtlpRequest,
  type OtlpSpan,
  type Protocol,
} from './protocol.ts';

export type ReceiverAnswer =
  | { kind: 'accept' }
  | { kind: 'status'; status: number; retryAfter?: string; message?: string }
  | { kind: 'slow'; delayMs: number }
  | { kind: 'partial'; rejected: number; message: string };

export interface ReceivedRequest {
  headers: IncomingMessage['headers'];
  protocol: Protocol;
  request: OtlpRequest;
  answer: ReceiverAnswer;
}

export interface TestReceiver {
  url: string;
  port: number;
  /** Every request, in arrival order, decoded. */
  requests: ReceivedRequest[];
  /** Spans of accepted requests (including slow ones, which accept late). */
  acceptedSpans(): OtlpSpan[];
  /** Answers for the next requests, in order; then `accept`. */
  script(...answers: ReceiverAnswer[]): void;
  /** Stops listening (connections are refused) until `listen` again. */
  down(): Promise<void>;
  listen(): Promise<void>;
  close(): Promise<void>;
  /** Skip decoding (benchmark): count spans by a cheap tally only. */
  decode: boolean;
  bytesReceived: number;
}

export async function startTestReceiver(port = 0): Promise<TestReceiver> {
  const answers: ReceiverAnswer[] = [];
  let server: Server | undefined;
  let boundPort = port;
  const receiver: TestReceiver = {
    url: '',
    port: 0,
    requests: [],
    decode: true,
    bytesReceived: 0,
    acceptedSpans() {
      return receiver.requests
        .filter((r) => r.answer.kind === 'accept' || r.answer.kind === 'slow')
        .flatMap((r) => (r.request.resourceSpans ?? []).flatMap((rs) => (rs.scopeSpans ?? []).flatMap((ss) => ss.spans ?? [])));
    },
    script(...next) {
      answers.push(...next);
    },
    async down() {
      if (!server) return;
      const s = server;
      server = undefined;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    },
    async listen() {
      if (server) return;
      server = createServer((req, res) => void handle(req, res));
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(boundPort, '127.0.0.1', () => resolve());
      });
      const address = server.address();
      boundPort = typeof address === 'object' && address ? address.port : boundPort;
      receiver.port = boundPort;
      receiver.url = `http://127.0.0.1:${boundPort}/v1/traces`;
    },
    async close() {
      await receiver.down();
    },
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body = Buffer.concat(chunks);
    receiver.bytesReceived += body.length;
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
    const protocol: Protocol = req.headers['content-type'] === 'application/json' ? 'http/json' : 'http/protobuf';
    const answer = answers.shift() ?? { kind: 'accept' };
    let request: OtlpRequest = {};
    if (receiver.decode) {
      try {
        request = protocol === 'http/json' ? decodeRequestJson(body.toString('utf8')) : decodeRequestProtobuf(body);
      } catch (error) {
        res.writeHead(400, { 'content-type': 'application/x-protobuf' }).end(encodeStatus(3, (error as Error).message, 'http/protobuf'));
        return;
      }
    }
    receiver.requests.push({ headers: req.headers, protocol, request, answer });
    const contentType = protocol === 'http/json' ? 'application/json' : 'application/x-protobuf';
    switch (answer.kind) {
      case 'accept':
        res.writeHead(200, { 'content-type': contentType }).end(encodeResponse({}, protocol));
        return;
      case 'slow':
        setTimeout(() => {
          if (!res.destroyed) res.writeHead(200, { 'content-type': contentType }).end(encodeResponse({}, protocol));
        }, answer.delayMs);
        return;
      case 'partial':
        res
          .writeHead(200, { 'content-type': contentType })
          .end(encodeResponse({ partialSuccess: { rejectedSpans: String(answer.rejected), errorMessage: answer.message } }, protocol));
        return;
      case 'status':
        res
          .writeHead(answer.status, {
            'content-type': contentType,
            ...(answer.retryAfter ? { 'retry-after': answer.retryAfter } : {}),
          })
          .end(encodeStatus(answer.status === 400 ? 3 : 14, answer.message ?? `scripted ${answer.status}`, protocol));
        return;
    }
  }

  await receiver.listen();
  return receiver;
}
