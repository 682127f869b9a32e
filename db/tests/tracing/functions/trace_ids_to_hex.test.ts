// tracing.trace_id_to_hex and tracing.span_id_to_hex spell the typed ids as
// W3C hex (32 and 16 lowercase digits, a span id's 64 bits as their two's
// complement). The promotion trigger compares every event's columns with
// its metadata in this spelling; they print the ids' bytes, and these cases
// pin them to the text forms they replaced.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();

describe('tracing.trace_id_to_hex and tracing.span_id_to_hex', () => {
  it.each([
    ['a span id', '67667974448284343', '00f067aa0ba902b7'],
    ['a span id with the high bit set', '-1', 'ffffffffffffffff'],
    ['the smallest bigint', '-9223372036854775808', '8000000000000000'],
    ['the largest bigint', '9223372036854775807', '7fffffffffffffff'],
    ['zero', '0', '0000000000000000'],
  ])('%s', async (_case, value, expected) => {
    const [row] = await db.sql<{ hex: string }[]>`select tracing.span_id_to_hex(${value}::bigint) as hex`;
    expect(row!.hex).toBe(expected);
  });

  it('spell a trace id as its 32 hex digits', async () => {
    const [row] = await db.sql<{ hex: string; nil: string; none: string | null }[]>`
      select tracing.trace_id_to_hex('4BF92F35-77B3-4DA6-A3CE-929D0E0E4736') as hex,
             tracing.trace_id_to_hex('00000000-0000-0000-0000-000000000000') as nil,
             tracing.trace_id_to_hex(null) as none`;
    expect(row).toEqual({ hex: '4bf92f3577b34da6a3ce929d0e0e4736', nil: '0'.repeat(32), none: null });
  });

  it('agree with the text forms they replaced on 20,000 random ids', async () => {
    const [row] = await db.sql<{ differ: number; negative: number }[]>`
      with ids as (
        select gen_random_uuid() as trace_id, ('x' || left(md5(random()::text), 16))::bit(64)::bigint as span_id
          from generate_series(1, 20000))
      select count(*) filter (where tracing.trace_id_to_hex(trace_id) <> replace(trace_id::text, '-', '')
                                 or tracing.span_id_to_hex(span_id) <> lpad(to_hex(span_id), 16, '0'))::int as differ,
             count(*) filter (where span_id < 0)::int as negative
        from ids`;
    expect(row!.differ).toBe(0);
    // Span ids with the high bit set (negative bigints) were among them.
    expect(row!.negative).toBeGreaterThan(5000);
  });

  it('are inlined where they are used, not called', async () => {
    const plan = await db.sql.unsafe(
      `explain (verbose, costs off) select tracing.trace_id_to_hex(trace_id), tracing.span_id_to_hex(span_id) from tracing.domain_events`,
    );
    expect(plan.map((r) => r['QUERY PLAN']).join('\n')).not.toMatch(/_to_hex/);
  });
});
