import type { Sql } from 'postgres';
import vectors from './sampling.vectors.json' with { type: 'json' };
import { KEEP_EVERY_TRACE, decideSampling, samplingConfigFromJson, type SamplingConfig, type SamplingDecision } from './sampling.ts';
import { assert, describe, it } from '../trace-context/test-harness.ts';
import { withTracing, type WithTracingOptions } from './with-tracing.ts';
import { createSpan, type FinishedSpan } from '../trace-context/span.ts';
import { parseTraceparent } from '../trace-context/traceparent.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_ID}-01`;
const UUID_A = '6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6';

function post(headers: HeadersInit = {}, body = '{}'): Request {
  return new Request('https://edge.example/functions/v1/probe', { method: 'POST', headers, body });
}

/** Runs `body` with console.error captured. */
async function capturingErrors<T>(body: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
  const original = console.error;
  const lines: string[] = [];
  console.error = (...args: unknown[]) => {
    lines.push(args.map(String).join(' '));
  };
  try {
    return { result: await body(), lines };
  } finally {
    console.error = original;
  }
}

describe('withTracing', () => {
  it('runs the handler in a server span and stamps traceresponse, correlation id and CORS', async () => {
    const spans: FinishedSpan[] = [];
    let seenParent: string | null | undefined;
    const handler = withTracing(
      (_request, { span, context }) => {
        seenParent = span.parentSpanId;
        assert.equal(context.traceId, TRACE_ID);
        span.attributes['app.step'] = 'done';
        return Response.json({ ok: true }, { status: 201 });
      },
      { service: 'probe', onSpanEnd: (s) => spans.push(s) },
    );
    const response = await handler(post({ traceparent: TRACEPARENT, 'x-correlation-id': UUID_A }));
    assert.equal(response.status, 201);
    assert.deepEqual(await response.json(), { ok: true });
    assert.equal(response.headers.get('x-correlation-id'), UUID_A);
    assert.equal(response.headers.get('access-control-allow-origin'), '*');

    assert.equal(spans.length, 1);
    const span = spans[0];
    assert.ok(span);
    assert.equal(seenParent, PARENT_ID);
    assert.equal(response.headers.get('traceresponse'), `00-${TRACE_ID}-${span?.spanId}-01`);
    const traceresponse = parseTraceparent(response.headers.get('traceresponse'));
    assert.ok(traceresponse.ok);
    assert.equal(span?.kind, 'server');
    assert.equal(span?.service, 'probe');
    assert.equal(span?.name, 'POST /functions/v1/probe');
    assert.equal(span?.parentSpanId, PARENT_ID);
    assert.deepEqual(span?.status, { code: 'unset' });
    assert.equal(span?.attributes['http.request.method'], 'POST');
    assert.equal(span?.attributes['http.response.status_code'], 201);
    assert.equal(span?.attributes['app.step'], 'done');
    assert.ok((span?.durationMs ?? -1) >= 0);
  });

  it('starts a trace when the request has none and says why', async () => {
    const spans: FinishedSpan[] = [];
    const handler = withTracing(() => new Response('ok'), {
      service: 'probe',
      operationName: () => 'probe.run',
      onSpanEnd: (s) => spans.push(s),
    });
    const response = await handler(post({ traceparent: 'nonsense' }));
    const span = spans[0];
    assert.equal(span?.name, 'probe.run');
    assert.equal(span?.parentSpanId, null);
    assert.notEqual(span?.traceId, TRACE_ID);
    assert.equal(span?.attributes['tracegres.trace_restart_reason'], 'version is not two lowercase hex digits followed by "-"');
    assert.equal(response.headers.get('traceresponse'), `00-${span?.traceId}-${span?.spanId}-03`);
    assert.match(response.headers.get('x-correlation-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  it('answers a CORS preflight without calling the handler', async () => {
    let called = false;
    const handler = withTracing(
      () => {
        called = true;
        return new Response('no');
      },
      { service: 'probe' },
    );
    const response = await handler(new Request('https://edge.example/f', { method: 'OPTIONS' }));
    assert.equal(response.status, 204);
    assert.equal(called, false);
    assert.ok(response.headers.get('access-control-allow-headers')?.includes('traceparent'));
  });

  it('turns a thrown error into a 500 with the correlation id, and marks the span as an error', async () => {
    const spans: FinishedSpan[] = [];
    const handler = withTracing(
      () => {
        throw new Error('secret detail from the database');
      },
      { service: 'probe', onSpanEnd: (s) => spans.push(s) },
    );
    const { result: response, lines } = await capturingErrors(() => handler(post({ 'x-correlation-id': UUID_A })));
    assert.equal(response.status, 500);
    assert.equal(response.headers.get('x-correlation-id'), UUID_A);
    const text = await response.text();
    assert.ok(!text.includes('secret detail'));
    const body = JSON.parse(text) as { error: { message: string; correlationId: string; traceId: string } };
    assert.equal(body.error.message, 'Internal server error');
    assert.equal(body.error.correlationId, UUID_A);
    assert.equal(body.error.traceId, spans[0]?.traceId);
    assert.equal(spans[0]?.status.code, 'error');
    assert.equal(spans[0]?.status.message, 'secret detail from the database');
    assert.equal(spans[0]?.attributes['exception.type'], 'Error');
    assert.equal(spans[0]?.attributes['http.response.status_code'], 500);
    assert.ok(response.headers.get('traceresponse'));
    assert.equal(lines.length, 1);
    assert.equal(JSON.parse(lines[0] ?? '{}').message, 'handler failed');
  });

  it('marks 5xx responses as errors and leaves 4xx unset', async () => {
    const spans: FinishedSpan[] = [];
    const handler = withTracing((request) => new Response(null, { status: Number(new URL(request.url).searchParams.get('s')) }), {
      service: 'probe',
      onSpanEnd: (s) => spans.push(s),
    });
    await handler(new Request('https://edge.example/f?s=503'));
    await handler(new Request('https://edge.example/f?s=404'));
    assert.equal(spans[0]?.status.code, 'error');
    assert.equal(spans[1]?.status.code, 'unset');
  });

  it('copies responses whose headers are immutable', async () => {
    const redirect = Response.redirect('https://elsewhere.example/', 302);
    const handler = withTracing(() => redirect, { service: 'probe' });
    const response = await handler(post({ 'x-correlation-id': UUID_A }));
    assert.equal(response.status, 302);
    assert.equal(response.headers.get('location'), 'https://elsewhere.example/');
    assert.equal(response.headers.get('x-correlation-id'), UUID_A);
    assert.ok(response.headers.get('traceresponse'));
  });

  it('does not fail or delay the response when recording the span fails', async () => {
    // The one place a fake database is used: one that refuses every query.
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const failingSql = Object.assign(
      async () => {
        await gate;
        throw Object.assign(new Error('connection refused'), { code: '08006' });
      },
      { json: (value: unknown) => value },
    ) as unknown as Sql;
    const pending: Promise<unknown>[] = [];
    const handler = withTracing(() => new Response('fine'), {
      service: 'probe',
      sql: failingSql,
      sampling: KEEP_EVERY_TRACE,
      waitUntil: (p) => pending.push(p),
    });
    const { lines } = await capturingErrors(async () => {
      const response = await handler(post());
      // The response is complete while the recording is still blocked.
      assert.equal(response.status, 200);
      assert.equal(await response.text(), 'fine');
      assert.equal(pending.length, 1);
      release();
      assert.equal(await pending[0], false);
    });
    assert.equal(lines.length, 1);
    const log = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    assert.equal(log.message, 'span recording failed');
    assert.equal(log.error_code, '08006');
    assert.equal(log.level, 'error');
  });

  it('survives a database client that throws synchronously, without waitUntil', async () => {
    const brokenSql = Object.assign(
      () => {
        throw new Error('cannot serialise');
      },
      {
        json: () => {
          throw new Error('cannot serialise');
        },
      },
    ) as unknown as Sql;
    const handler = withTracing(() => new Response('fine'), { service: 'probe', sql: brokenSql, sampling: KEEP_EVERY_TRACE });
    const { result: response, lines } = await capturingErrors(async () => {
      const r = await handler(post());
      await new Promise((resolve) => setTimeout(resolve, 10));
      return r;
    });
    assert.equal(response.status, 200);
    assert.equal(lines.length, 1);
  });

  it('keeps going when onSpanEnd or waitUntil throw', async () => {
    const failingSql = Object.assign(() => Promise.reject(new Error('down')), { json: (v: unknown) => v }) as unknown as Sql;
    const handler = withTracing(() => new Response('fine'), {
      service: 'probe',
      sql: failingSql,
      onSpanEnd: () => {
        throw new Error('exporter bug');
      },
      waitUntil: () => {
        throw new Error('platform bug');
      },
    });
    const { result: response } = await capturingErrors(async () => {
      const r = await handler(post());
      await new Promise((resolve) => setTimeout(resolve, 10));
      return r;
    });
    assert.equal(response.status, 200);
  });
});

describe('withTracing sampling', () => {
  // What tracing.sampling_config('production') gives a fresh database (checked in SQL by the vectors test).
  const production: SamplingConfig = samplingConfigFromJson(vectors.production);
  // At 10%: randomness (lower 56 bits) at the bottom of the range is dropped, at the top kept.
  const DROPPED = '0123456789abcdef2300000000000001';
  const KEPT = '0123456789abcdef23ffffffffffffff';

  function traced(trace: string, flags = '01', headers: Record<string, string> = {}): Request {
    return post({ traceparent: `00-${trace}-${PARENT_ID}-${flags}`, ...headers });
  }

  /** The handler's decision, the recorded spans and the traceresponse flags for one request. */
  async function run(
    options: { sampling?: WithTracingOptions['sampling']; trustParent?: boolean; operationName?: (request: Request) => string },
    request: Request,
    handle: () => Response = () => new Response('ok'),
  ) {
    const spans: FinishedSpan[] = [];
    let decision: SamplingDecision | undefined;
    let childFlags: number | undefined;
    const handler = withTracing(
      (_request, ctx) => {
        decision = ctx.sampling;
        childFlags = createSpan(ctx.span, 'child').traceFlags;
        return handle();
      },
      { service: 'probe', onSpanEnd: (s) => spans.push(s), ...options },
    );
    const { result: response } = await capturingErrors(() => handler(request));
    const flags = response.headers.get('traceresponse')?.slice(-2);
    return { response, decision, childFlags, spans, flags };
  }

  it('keeps every trace when there is no database to ask, flagging it sampled', async () => {
    const { decision, spans, flags } = await run({}, traced(DROPPED, '00'));
    assert.equal(decision?.reason, 'head');
    assert.equal(flags, '01');
    assert.equal(spans[0]?.attributes['tracegres.sample_rate'], 1);
  });

  it('asks a sampling source for every request', async () => {
    let asked = 0;
    const source = async () => {
      asked += 1;
      return production;
    };
    assert.equal((await run({ sampling: source }, traced(DROPPED, '00'))).flags, '00');
    assert.equal((await run({ sampling: source }, traced(KEPT, '00'))).flags, '01');
    assert.equal(asked, 2);
  });

  it('keeps the trace and logs when the sampling source fails, never failing the request', async () => {
    const { response, flags, spans } = await run({ sampling: () => Promise.reject(new Error('settings gone')) }, traced(DROPPED, '00'));
    assert.equal(response.status, 200);
    assert.equal(flags, '01');
    assert.equal(spans.length, 1);
  });

  it('decides every shared vector case as decideSampling and the database do', async () => {
    for (const c of vectors.decisions) {
      const config = { ...production, rate: c.rate };
      const { decision, flags, spans } = await run({ sampling: config }, traced(c.trace_id, '00'));
      assert.deepEqual(
        decision,
        decideSampling(config, { traceId: c.trace_id, parentSampled: false, trustParent: false, forceRequested: false }),
      );
      assert.equal(flags, c.kept ? '01' : '00', `${c.trace_id} at ${c.rate}`);
      assert.equal(spans[0]?.attributes['tracegres.sample_rate'], c.kept ? Number(c.rate) : undefined);
    }
  });

  it('keeps by the head rule in production, recording the rate on the span and carrying the flag to children', async () => {
    const { decision, childFlags, spans, flags } = await run({ sampling: production }, traced(KEPT, '00'));
    assert.equal(decision?.reason, 'head');
    assert.equal(flags, '01');
    assert.equal(childFlags, 0x01);
    assert.equal(spans[0]?.attributes['tracegres.sample_rate'], 0.1);
    assert.equal(spans[0]?.attributes['sampling.priority'], undefined);
  });

  it("does not keep the others, clears the browser's sampled flag and still records the span for the tail decision", async () => {
    const { decision, childFlags, spans, flags } = await run({ sampling: production }, traced(DROPPED, '03'));
    assert.equal(decision?.sampled, false);
    assert.equal(flags, '02');
    assert.equal(childFlags, 0x02);
    assert.equal(spans.length, 1);
    assert.equal(spans[0]?.attributes['tracegres.sample_rate'], undefined);
  });

  it('neither records nor hands on the span of a dropped trace when no tail window is configured', async () => {
    let queried = false;
    const sql = Object.assign(
      () => {
        queried = true;
        return Promise.resolve([]);
      },
      { json: (value: unknown) => value },
    ) as unknown as Sql;
    const spans: FinishedSpan[] = [];
    const handler = withTracing(() => new Response('ok'), {
      service: 'probe',
      sql,
      sampling: { ...production, tailWindowMs: 0 },
      onSpanEnd: (s) => spans.push(s),
    });
    const response = await handler(traced(DROPPED));
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('traceresponse')?.slice(-2), '00');
    assert.equal(spans.length, 0);
    assert.equal(queried, false);
  });

  it('keeps a failed request whatever the head rule said, as the database keeps error traces', async () => {
    const sampling = { ...production, tailWindowMs: 0 };
    const thrown = await run({ sampling }, traced(DROPPED), () => {
      throw new Error('boom');
    });
    assert.equal(thrown.flags, '01');
    assert.equal(thrown.spans.length, 1);
    assert.equal(thrown.spans[0]?.attributes['tracegres.sample_rate'], 1);
    const unavailable = await run({ sampling }, traced(DROPPED), () => new Response(null, { status: 503 }));
    assert.equal(unavailable.spans[0]?.attributes['tracegres.sample_rate'], 1);
    const notFound = await run({ sampling }, traced(DROPPED), () => new Response(null, { status: 404 }));
    assert.equal(notFound.spans.length, 0);
  });

  it('grants a forced request only where the configuration allows, marking the span with sampling.priority', async () => {
    const header = { 'x-tracegres-sample': '1' };
    const refused = await run({ sampling: production }, traced(DROPPED, '00', header));
    assert.equal(refused.flags, '00');
    assert.equal(refused.spans[0]?.attributes['sampling.priority'], undefined);
    const granted = await run({ sampling: { ...production, honorForced: true } }, traced(DROPPED, '00', header));
    assert.equal(granted.decision?.reason, 'forced');
    assert.equal(granted.flags, '01');
    assert.equal(granted.spans[0]?.attributes['sampling.priority'], 1);
    assert.equal(granted.spans[0]?.attributes['tracegres.sample_rate'], 1);
    // An untrusted caller's sampled flag is a request too.
    const development = await run({ sampling: { ...production, rate: '1', honorForced: true } }, traced(DROPPED, '01'));
    assert.equal(development.decision?.reason, 'forced');
  });

  it('keeps the trace and logs when the configuration cannot be read, never failing the request', async () => {
    const spans: FinishedSpan[] = [];
    const handler = withTracing(() => new Response('fine'), {
      service: 'probe',
      sampling: { ...production, rate: '1.5' },
      onSpanEnd: (s) => spans.push(s),
    });
    const { result: response, lines } = await capturingErrors(() => handler(traced(DROPPED, '00')));
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('traceresponse')?.slice(-2), '01');
    assert.equal(spans.length, 1);
    assert.equal(lines.length, 1);
    assert.equal(JSON.parse(lines[0] ?? '{}').message, 'sampling decision failed');
  });

  it("follows a trusted parent's flag", async () => {
    const forcedUpstream = await run({ sampling: production, trustParent: true }, traced(DROPPED, '01'));
    assert.equal(forcedUpstream.decision?.reason, 'parent');
    assert.equal(forcedUpstream.flags, '01');
    assert.equal(forcedUpstream.spans[0]?.attributes['sampling.priority'], 1);
    const droppedUpstream = await run({ sampling: production, trustParent: true }, traced(KEPT, '00'));
    assert.equal(droppedUpstream.decision?.sampled, false);
    assert.equal(droppedUpstream.flags, '00');
  });

  it('rates by operation only a span that is the root of its trace, as the database rates a trace by its root span', async () => {
    const sampling: SamplingConfig = {
      ...production,
      rate: '0',
      overrides: [{ kind: 'operation', pattern: 'POST /functions/*', rate: '1' }],
    };
    const root = await run({ sampling }, post());
    assert.equal(root.decision?.reason, 'head');
    assert.equal(root.spans[0]?.attributes['tracegres.sample_rate'], 1);
    const child = await run({ sampling }, traced(KEPT, '00'));
    assert.equal(child.decision?.sampled, false);
    assert.equal(child.decision?.rate, 0);
  });
});
