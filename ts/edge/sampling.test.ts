// sampling.ts on its own (no database): the shared vectors, which
// db/tests/sampling/vectors.test.ts checks in SQL, and its rules.
import vectors from './sampling.vectors.json' with { type: 'json' };
import {
  KEEP_EVERY_TRACE,
  decideSampling,
  forceRequested,
  keepsTrace,
  samplingConfigFromJson,
  samplingRate,
  samplingThreshold,
  traceRandomness,
  type SamplingConfig,
} from './sampling.ts';
import { assert, describe, it } from '../trace-context/test-harness.ts';

describe('the shared sampling vectors (also checked in SQL)', () => {
  it('decides every case as the vector file says', () => {
    for (const c of vectors.decisions) {
      assert.equal(traceRandomness(c.trace_id).toString(), c.randomness, `randomness of ${c.trace_id}`);
      assert.equal(samplingThreshold(c.rate).toString(), c.threshold, `threshold at ${c.rate}`);
      assert.equal(keepsTrace(c.trace_id, c.rate), c.kept, `${c.trace_id} at ${c.rate}`);
    }
  });

  it('resolves rates from overrides as the vector file says', () => {
    const config = samplingConfigFromJson(vectors.rates.config);
    for (const c of vectors.rates.cases) {
      assert.equal(String(samplingRate(config, { operation: c.operation, eventTypes: c.event_types })), c.rate, JSON.stringify(c));
    }
  });
});

describe('rates', () => {
  it('takes a JavaScript number as the exact decimal it prints as', () => {
    assert.equal(samplingThreshold(0.1), samplingThreshold('0.1'));
    assert.equal(samplingThreshold(1e-7), samplingThreshold('0.0000001'));
    assert.equal(samplingThreshold(1), 0n);
    assert.equal(samplingThreshold(0), 1n << 56n);
  });

  it('refuses a rate outside 0..1 or not a decimal', () => {
    for (const bad of [1.5, -0.1, '2', 'abc', '1e-3', Number.NaN]) {
      assert.throws(() => samplingThreshold(bad), RangeError, String(bad));
    }
  });

  it('keeps about the share of traces its rate says', () => {
    let kept = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const traceId = (BigInt(i) * 0x9e3779b97f4a7c15n).toString(16).padStart(32, '0').slice(-32);
      if (keepsTrace(traceId, '0.1')) kept++;
    }
    assert.ok(Math.abs(kept / n - 0.1) < 0.01, `kept ${kept} of ${n}`);
  });

  it('keeps a trace kept at one rate at every higher rate', () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const rates = ['0', '0.01', '0.1', '0.3', '0.5', '0.7', '0.9', '1'];
    const first = rates.findIndex((r) => keepsTrace(traceId, r));
    assert.ok(first >= 0);
    for (const r of rates.slice(first)) assert.ok(keepsTrace(traceId, r), r);
  });
});

describe('decideSampling', () => {
  // What tracing.sampling_config('production') gives a fresh database (checked in SQL by the vectors test).
  const production: SamplingConfig = samplingConfigFromJson(vectors.production);
  // Dropped at 10% (randomness far below the threshold), kept at 100%.
  const dropped = '00000000000000000000000000000001';
  const keptAtTenPercent = '0000000000000000ffffffffffffffff';

  it('keeps by the head rule, recording the rate', () => {
    const d = decideSampling(production, { traceId: keptAtTenPercent });
    assert.deepEqual(d, { sampled: true, recordSpans: true, rate: 0.1, reason: 'head', attributes: { 'tracegres.sample_rate': 0.1 } });
  });

  it('does not keep the others, but still records their spans for the tail decision', () => {
    assert.deepEqual(decideSampling(production, { traceId: dropped }), {
      sampled: false,
      recordSpans: true,
      rate: 0.1,
      reason: 'not_sampled',
      attributes: {},
    });
    assert.equal(decideSampling({ ...production, tailWindowMs: 0 }, { traceId: dropped }).recordSpans, false);
  });

  it('always keeps errors', () => {
    assert.equal(decideSampling(production, { traceId: dropped, hasError: true }).reason, 'error');
  });

  it('honours a client forcing sampling only where configured', () => {
    assert.equal(decideSampling(production, { traceId: dropped, forceRequested: true }).sampled, false);
    assert.equal(decideSampling(production, { traceId: dropped, parentSampled: true }).sampled, false);
    const allowed = decideSampling({ ...production, honorForced: true }, { traceId: dropped, forceRequested: true });
    assert.deepEqual(allowed.attributes, { 'tracegres.sample_rate': 1, 'sampling.priority': 1 });
    assert.equal(
      decideSampling({ ...production, rate: '1', honorForced: true }, { traceId: dropped, parentSampled: true }).reason,
      'forced',
    );
  });

  it("follows a trusted parent's decision", () => {
    assert.equal(decideSampling(production, { traceId: keptAtTenPercent, trustParent: true, parentSampled: false }).sampled, false);
    const forcedUpstream = decideSampling(production, { traceId: dropped, trustParent: true, parentSampled: true });
    assert.equal(forcedUpstream.sampled, true);
    assert.equal(forcedUpstream.attributes['sampling.priority'], 1);
  });

  it('applies operation overrides', () => {
    const config = { ...production, overrides: [{ kind: 'operation' as const, pattern: 'POST /checkout*', rate: '1' }] };
    assert.equal(decideSampling(config, { traceId: dropped, operation: 'POST /checkout/confirm' }).reason, 'head');
  });

  it('reads the force header', () => {
    assert.equal(forceRequested(new Headers({ 'x-tracegres-sample': '1' })), true);
    assert.equal(forceRequested(new Headers({ 'X-Tracegres-Sample': 'force' })), true);
    assert.equal(forceRequested(new Headers({ 'x-tracegres-sample': '0' })), false);
    assert.equal(forceRequested(new Headers()), false);
  });
});

describe('samplingConfigFromJson', () => {
  it('reads the whole configuration the database gives', () => {
    assert.deepEqual(samplingConfigFromJson({ ...vectors.rates.config, tail_latency_ms: null }), {
      environment: 'vector-test',
      rate: '0.1',
      honorForced: false,
      overrides: vectors.rates.config.overrides,
      tailWindowMs: 120_000,
      tailLatencyMs: null,
    });
  });

  it('refuses a configuration with a field missing or wrong, naming it', () => {
    const { config } = vectors.rates;
    for (const field of ['environment', 'honor_forced', 'tail_window_ms', 'overrides'] as const) {
      const broken: Record<string, unknown> = { ...config };
      delete broken[field];
      assert.throws(() => samplingConfigFromJson(broken), new RegExp(field));
    }
    assert.throws(() => samplingConfigFromJson({ ...config, rate: '1.5' }), RangeError);
    assert.throws(() => samplingConfigFromJson(null), TypeError);
  });

  it('keeps every trace when the database cannot say', () => {
    assert.equal(decideSampling(KEEP_EVERY_TRACE, { traceId: '00000000000000000000000000000001' }).sampled, true);
  });
});
