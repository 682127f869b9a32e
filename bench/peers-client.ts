// The load client of the peers suite (bench/peers.ts), run in a worker
// thread: in the suite's own thread its requests would take their CPU from
// the tracegres server beside it, while Jaeger runs in a process of its own.
//
// Sends the bodies in order, `inFlight` at a time, until all are sent or
// `seconds` have passed, checks every answer (200, no rejected spans) and
// posts back how many were sent, the wall time and each request's latency.
import { parentPort, workerData } from 'node:worker_threads';
import { decodeResponse } from '../server/otlp/protocol.ts';

export interface LoadRequest {
  name: string;
  url: string;
  headers: Record<string, string>;
  bodies: Uint8Array<ArrayBuffer>[];
  inFlight: number;
  seconds: number;
}

export interface LoadResult {
  sent: number;
  seconds: number;
  latencies: number[];
}

async function load({ name, url, headers, bodies, inFlight, seconds }: LoadRequest): Promise<LoadResult> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < bodies.length && performance.now() - started < seconds * 1000) {
        const body = bodies[next++]!;
        const t = performance.now();
        const response = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/x-protobuf', ...headers } });
        const answer = new Uint8Array(await response.arrayBuffer());
        if (response.status !== 200) throw new Error(`peers: ${name} answered ${response.status}`);
        const rejected = Number(decodeResponse(answer, 'http/protobuf').partialSuccess?.rejectedSpans ?? 0);
        if (rejected > 0) throw new Error(`peers: ${name} rejected ${rejected} spans`);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { sent: latencies.length, seconds: (performance.now() - started) / 1000, latencies };
}

if (parentPort) {
  load(workerData as LoadRequest).then(
    (result) => parentPort!.postMessage({ result }),
    (error: Error) => parentPort!.postMessage({ error: error.message }),
  );
}
