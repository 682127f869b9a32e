// The trace fixture the query API tests (Jaeger storage, Tempo) share: a
// checkout of organization A whose card charge failed (a PaymentFailed event
// on the charge span), a trace of organization B, and a wide trace of many
// spans, written with explicit hex ids as the APIs report them, at times
// counted from START (ten minutes ago).
import type postgres from 'postgres';

export const ORG_A = '0a000000-0000-4000-8000-00000000000a';
export const ORG_B = '0b000000-0000-4000-8000-00000000000b';
export const CHECKOUT = 'c0000000000000000000000000000001';
export const OTHER = 'b0000000000000000000000000000001';

/** The instant the fixture's times count from: ten minutes ago, inside the default search windows. */
export const START = new Date(Date.now() - 10 * 60_000);
/** The ISO time `ms` milliseconds after START. */
export const at = (ms: number) => new Date(START.getTime() + ms).toISOString();

/** A span row for tracing.record_spans: internal and ok unless `fields` say otherwise. */
export function span(traceId: string, spanId: string, parent: string | null, fields: Record<string, unknown>) {
  return { trace_id: traceId, span_id: spanId, parent_span_id: parent, kind: 'internal', status: 'ok', ...fields };
}

/** The checkout of organization A: POST /checkout, whose child "charge card" failed with a 500. */
export function checkoutSpans(attributes: { root?: Record<string, unknown>; charge?: Record<string, unknown> } = {}) {
  return [
    span(CHECKOUT, 'a000000000000001', null, {
      name: 'POST /checkout',
      service: 'checkout',
      kind: 'server',
      start_time: at(0),
      end_time: at(120),
      ...(attributes.root ? { attributes: attributes.root } : {}),
      organization_id: ORG_A,
    }),
    span(CHECKOUT, 'a000000000000002', 'a000000000000001', {
      name: 'charge card',
      service: 'payments',
      kind: 'client',
      start_time: at(10),
      end_time: at(90),
      status: 'error',
      status_message: 'card declined',
      attributes: { 'http.response.status_code': 500, 'payment.provider': 'acme', ...attributes.charge },
      organization_id: ORG_A,
    }),
  ];
}

/** The one trace of organization B: GET /secret of the vault service. */
export function otherOrganizationSpan(attributes?: Record<string, unknown>) {
  return span(OTHER, 'b000000000000001', null, {
    name: 'GET /secret',
    service: 'vault',
    kind: 'server',
    start_time: at(5),
    end_time: at(15),
    ...(attributes ? { attributes } : {}),
    organization_id: ORG_B,
  });
}

/** A trace of `count` spans of organization A: a root d…01 and its children d…02 onwards, one span a millisecond. */
export function wideTraceSpans(traceId: string, count: number, fields: (i: number) => Record<string, unknown>) {
  return Array.from({ length: count }, (_, i) =>
    span(traceId, (0xd000000000000000n + BigInt(i + 1)).toString(16), i === 0 ? null : 'd000000000000001', {
      service: 'importer',
      ...fields(i),
      organization_id: ORG_A,
    }),
  );
}

/** The checkout's PaymentFailed event, on the charge span. */
export async function recordPaymentFailed(sql: postgres.Sql) {
  await sql`insert into tracing.domain_events (stream_type, stream_id, event_type, event_data, trace_id, span_id, organization_id)
            values ('order', 'ord-1058', 'PaymentFailed', '{}', ${CHECKOUT}::uuid, tracing.hex_to_span_id('a000000000000002'), ${ORG_A})`;
}
