import { assert, describe, it } from './test-harness.ts';
import { createSpan, endSpan, type TracingContext } from './span.ts';
import { ORGANIZATION_ATTRIBUTE, spanRecord } from './span-record.ts';

const context: TracingContext = {
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  parentSpanId: '00f067aa0ba902b7',
  traceFlags: 1,
  tracestate: null,
  correlationId: '6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6',
  sessionId: null,
  restarted: false,
};
const ORGANIZATION = '3c9f1e2d-7a6b-4c5d-9e8f-0a1b2c3d4e5f';

describe('spanRecord', () => {
  it('maps a finished span to the record_spans shape', () => {
    const span = createSpan(context, 'POST invite-user', {
      kind: 'server',
      service: 'invite-user',
      attributes: { 'http.request.method': 'POST' },
    });
    const finished = endSpan(span, { code: 'error', message: 'boom' });
    const record = spanRecord(finished);
    assert.deepEqual(record, {
      trace_id: context.traceId,
      span_id: span.spanId,
      parent_span_id: context.parentSpanId,
      name: 'POST invite-user',
      service: 'invite-user',
      kind: 'server',
      start_time: span.startTime.toISOString(),
      end_time: finished.endTime.toISOString(),
      duration_ms: finished.durationMs,
      status: 'error',
      status_message: 'boom',
      attributes: { 'http.request.method': 'POST' },
      correlation_id: context.correlationId,
      session_id: null,
      organization_id: null,
    });
  });

  it('takes the organization from the attribute or the option, when it is a uuid', () => {
    const span = createSpan(context, 'x', { attributes: { [ORGANIZATION_ATTRIBUTE]: ORGANIZATION.toUpperCase() } });
    assert.equal(spanRecord(endSpan(span)).organization_id, ORGANIZATION);
    assert.equal(spanRecord(endSpan(span), { organizationId: null }).organization_id, null);
    const other = createSpan(context, 'x', { attributes: { [ORGANIZATION_ATTRIBUTE]: 'acme' } });
    assert.equal(spanRecord(endSpan(other)).organization_id, null);
  });

  it('keeps attributes JSON-safe', () => {
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    const span = createSpan(context, 'x', { attributes: { big: 2n ** 70n, fn: () => 1, ok: 'yes' } });
    assert.deepEqual(spanRecord(endSpan(span)).attributes, { big: '1180591620717411303424', ok: 'yes' });
    const looped = createSpan(context, 'x', { attributes: { cyclic, n: 1, s: 't', b: false, nil: null } });
    assert.deepEqual(spanRecord(endSpan(looped)).attributes, { n: 1, s: 't', b: false, nil: null });
  });
});
