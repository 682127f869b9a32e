// Stored spans in OTLP's terms for the read APIs (the Jaeger remote
// storage): whole traces in the order asked, each in start order, with the
// domain events their spans emitted; the services and operations a search
// form offers; both under row-level security.
import { describe, expect, it } from 'vitest';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();
const ORG_A = '0a000000-0000-4000-8000-00000000000a';
const ORG_B = '0b000000-0000-4000-8000-00000000000b';
const FIRST = '4bf92f3577b34da6a3ce929d0e0e4736';
const SECOND = '5bf92f3577b34da6a3ce929d0e0e4737';
const FOREIGN = '6bf92f3577b34da6a3ce929d0e0e4738';
const t0 = Date.now() - 10 * 60_000;
const at = (ms: number) => new Date(t0 + ms).toISOString();

const span = (traceId: string, spanId: string, name: string, startMs: number, fields: Record<string, unknown> = {}) => ({
  trace_id: traceId,
  span_id: spanId,
  name,
  service: 'orders',
  kind: 'server',
  start_time: at(startMs),
  end_time: at(startMs + 5),
  organization_id: ORG_A,
  ...fields,
});

async function seed(tx: Parameters<Parameters<typeof inRolledBackTransaction>[1]>[0]) {
  await tx`select tracing.record_spans(${tx.json([
    span(FIRST, '00000000000000a2', 'SELECT orders', 3, { parent_span_id: '00000000000000a1', kind: 'client', service: 'db' }),
    span(FIRST, '00000000000000a1', 'GET /orders', 0),
    span(SECOND, '00000000000000b1', 'POST /orders', 1),
    span(FOREIGN, '00000000000000c1', 'GET /secret', 2, { service: 'vault', organization_id: ORG_B }),
  ])})`;
  await tx`insert into tracing.domain_events (stream_type, stream_id, event_type, event_data, trace_id, span_id, organization_id)
           values ('order', 'ord-1', 'OrderPlaced', '{}', ${SECOND}::uuid, tracing.hex_to_span_id('00000000000000b1'), ${ORG_A})`;
}

async function asReader<T>(tx: Parameters<Parameters<typeof inRolledBackTransaction>[1]>[0], organization: string, read: () => Promise<T>) {
  await tx`select set_config('role', 'tracegres_reader', true), set_config('jwt.claims.organization_id', ${organization}, true)`;
  const result = await read();
  await tx`reset role`;
  return result;
}

describe('tracing.otlp_trace_spans', () => {
  it('gives the traces in the order asked, each in start order, with hex ids, Unix nanoseconds and the domain events', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const rows = await asReader(
        tx,
        ORG_A,
        () => tx`select trace_id, span_id, parent_span_id, name, service, start_time_unix_nano, domain_events
                   from tracing.otlp_trace_spans(${[SECOND, FIRST, FOREIGN]}::uuid[])`,
      );
      expect(rows.map((r) => [r.trace_id, r.span_id, r.parent_span_id, r.name])).toEqual([
        [SECOND, '00000000000000b1', null, 'POST /orders'],
        [FIRST, '00000000000000a1', null, 'GET /orders'],
        [FIRST, '00000000000000a2', '00000000000000a1', 'SELECT orders'],
      ]);
      expect(rows[1]!.start_time_unix_nano).toBe(`${t0}000000`);
      expect(rows[0]!.domain_events).toEqual([
        expect.objectContaining({ name: 'OrderPlaced', attributes: expect.objectContaining({ 'tracegres.stream.id': 'ord-1' }) }),
      ]);
      expect(rows[1]!.domain_events).toBeNull();
    });
  });

  it('gives at most p_spans_per_trace spans of each trace, the first by start time', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const rows = await asReader(tx, ORG_A, () => tx`select trace_id, name from tracing.otlp_trace_spans(${[FIRST, SECOND]}::uuid[], 1)`);
      expect(rows.map((r) => [r.trace_id, r.name])).toEqual([
        [FIRST, 'GET /orders'],
        [SECOND, 'POST /orders'],
      ]);
      const whole = await asReader(tx, ORG_A, () => tx`select name from tracing.otlp_trace_spans(${[FIRST]}::uuid[], 2)`);
      expect(whole.map((r) => r.name)).toEqual(['GET /orders', 'SELECT orders']);
    });
  });

  it('reads at most the first 10,000 domain events of each trace, however many were written into it', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      // 10,001 more events of the second trace's span, after the one seeded.
      await tx`insert into tracing.domain_events (stream_type, stream_id, event_type, event_data, trace_id, span_id, organization_id, created_at)
               select 'order', 'ord-1', 'Step' || i, '{}', ${SECOND}::uuid, tracing.hex_to_span_id('00000000000000b1'), ${ORG_A},
                      now() + i * interval '1 ms'
               from generate_series(1, 10001) i`;
      const [row] = await asReader(tx, ORG_A, () => tx`select domain_events from tracing.otlp_trace_spans(${[SECOND]}::uuid[])`);
      const events = row!.domain_events as Array<{ name: string }>;
      expect(events).toHaveLength(10_000);
      expect([events[0]!.name, events.at(-1)!.name]).toEqual(['OrderPlaced', 'Step9999']);
    });
  });

  it('builds the domain events of the traces asked once, not once a span', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      await tx`set local track_functions = 'all'`;
      const rows = await tx`select name from tracing.otlp_trace_spans(${[FIRST, SECOND]}::uuid[])`;
      expect(rows).toHaveLength(3);
      const [calls] = await tx`
        select calls::int from pg_stat_xact_user_functions where schemaname = 'tracing' and funcname = 'otlp_domain_events'`;
      expect(calls).toEqual({ calls: 1 });
    });
  });

  it("shows another organization's trace to nobody but that organization", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const ofB = await asReader(tx, ORG_B, () => tx`select name from tracing.otlp_trace_spans(${[FIRST, FOREIGN]}::uuid[])`);
      expect(ofB.map((r) => r.name)).toEqual(['GET /secret']);
    });
  });
});

describe('tracing.span_operations', () => {
  it('lists each service, operation and kind the caller may see, in order', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const rows = await asReader(
        tx,
        ORG_A,
        () => tx`select service, name, kind from tracing.span_operations(now() - interval '1 hour', now())`,
      );
      expect(rows.map((r) => [r.service, r.name, r.kind])).toEqual([
        ['db', 'SELECT orders', 'client'],
        ['orders', 'GET /orders', 'server'],
        ['orders', 'POST /orders', 'server'],
      ]);
    });
  });

  it('refuses a window over 7 days, naming the argument', async () => {
    await expect(db.sql`select * from tracing.span_operations(now() - interval '8 days', now())`).rejects.toMatchObject({
      code: '22023',
      message: expect.stringMatching(/p_from|p_to/),
    });
  });
});
