// The per-field rules of the promotion trigger's full path
// (db/functions/020-domain-events-trace-fields.sql): each is plain SQL that
// the planner must inline into the trigger, and each decides the cases
// where the order of the rules matters as the trigger always has.
import { describe, expect, it } from 'vitest';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();

const NIL_UUID = '00000000-0000-0000-0000-000000000000';
const CORRELATION = '7d0b2c3e-5f1a-4b8e-9c2d-1e3f4a5b6c7d';
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('the rules are inlined into the trigger', () => {
  it.each([
    ['trace_columns_as_text', 'tracing.trace_columns_as_text(correlation_id, session_id, trace_id, span_id, parent_span_id)'],
    ['trace_field_stale_side', 'tracing.trace_field_stale_side(trace_id is null, span_id is null)'],
    ['trace_field_column', "tracing.trace_field_column('trace_id', stream_id, event_type)"],
    ['canonical_trace_field', "tracing.canonical_trace_field('span_id', stream_id)"],
    ['is_zero_trace_id', 'tracing.is_zero_trace_id(stream_id)'],
    [
      'add_trace_field_refusal',
      "tracing.add_trace_field_refusal(trace_field_errors, 'trace_id', stream_id, event_type, stream_type, event_metadata)",
    ],
  ])('%s', async (name, call) => {
    // A stable call inside an immutable rule, or a record result, stops
    // the inlining, and the call then costs several times the rule.
    const plan = await db.sql.unsafe(`explain (verbose, costs off) select ${call} from tracing.domain_events`);
    expect(plan.map((r) => r['QUERY PLAN']).join('\n')).not.toMatch(new RegExp(name));
  });
});

type Row = {
  correlation_id: string | null;
  trace_id: string | null;
  event_metadata: Record<string, unknown>;
  trace_field_errors: Record<string, { value: unknown; reason: string }> | null;
};

async function insert(
  tx: import('postgres').TransactionSql,
  metadata: Record<string, unknown>,
  columns: { correlation_id?: string; trace_id?: string },
): Promise<Row> {
  const [row] = await tx.unsafe(
    `insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata, correlation_id, trace_id)
     values ('order', 'o-1', 'order.placed', $1::jsonb, $2::uuid, $3::uuid)
     returning correlation_id::text, tracing.trace_id_to_hex(trace_id) as trace_id, event_metadata, trace_field_errors`,
    [tx.json(metadata as never) as never, columns.correlation_id ?? null, columns.trace_id ?? null],
  );
  return row as unknown as Row;
}

describe('an all-zero column meets the metadata', () => {
  it('promotes a valid metadata value in its place and still records the zero column', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(tx, { trace_id: TRACE }, { trace_id: NIL_UUID });
      expect(row.trace_id).toBe(TRACE);
      expect(row.event_metadata).toEqual({ trace_id: TRACE });
      expect(row.trace_field_errors).toEqual({
        trace_id: { value: '0'.repeat(32), reason: 'must not be all zeros' },
      });
    });
  });

  it('records the malformed metadata value, not the zero column, when neither can be kept', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(tx, { correlation_id: 'nope' }, { correlation_id: NIL_UUID });
      expect(row.correlation_id).toBeNull();
      expect(row.event_metadata).toEqual({ correlation_id: 'nope' });
      expect(row.trace_field_errors?.correlation_id?.value).toBe('nope');
      expect(row.trace_field_errors?.correlation_id?.reason).toMatch(/8-4-4-4-12/);
    });
  });
});

describe('a column meets the same id spelled otherwise', () => {
  it('respells an uppercase uuid without recording it as replaced', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(tx, { correlation_id: CORRELATION.toUpperCase() }, { correlation_id: CORRELATION });
      expect(row.event_metadata).toEqual({ correlation_id: CORRELATION });
      expect(row.trace_field_errors).toBeNull();
    });
  });

  it('records an uppercase trace id as replaced, since W3C hex ids are lowercase only', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const upper = TRACE.toUpperCase();
      const row = await insert(tx, { trace_id: upper }, { trace_id: TRACE });
      expect(row.event_metadata).toEqual({ trace_id: TRACE });
      expect(row.trace_field_errors).toEqual({ trace_id: { value: upper, reason: 'replaced by the trace_id column' } });
    });
  });
});

describe('UPDATE with a JSON null field', () => {
  it('clears the column when an update sets its field to null, keeping the null', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const [row] = await tx.unsafe(
        `insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata, trace_id)
         values ('order', 'o-1', 'order.placed', '{"note": 1}', $1::uuid) returning id`,
        [TRACE],
      );
      // The field changed and the column did not: the field wins, and JSON
      // null reads as an absent field.
      await tx`update tracing.domain_events set event_metadata = event_metadata || '{"trace_id": null}' where id = ${row!.id}`;
      const [kept] =
        await tx`select event_metadata, tracing.trace_id_to_hex(trace_id) as trace_id from tracing.domain_events where id = ${row!.id}`;
      expect(kept).toEqual({ event_metadata: { note: 1, trace_id: null }, trace_id: null });
    });
  });
});
