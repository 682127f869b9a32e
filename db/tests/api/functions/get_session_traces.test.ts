// api.get_session_traces: every trace of a session in time order, found
// through span summaries and events alike.
import { describe, expect, it } from 'vitest';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { insertEvent, recordSpans, span, traceId } from '../../helpers/trace-fixtures.ts';

const db = useTestDatabase();

type Tx = import('postgres').TransactionSql;

const SESSION = '0e5d1c7a-2b3f-4c9d-8e1a-6f7b8c9d0a1b';
const OTHER = '7d0b2c3e-5f1a-4b8e-9c2d-1e3f4a5b6c7d';

async function seed(tx: Tx) {
  // Found through its spans' session id.
  await recordSpans(tx, [span('root', { trace: 'second', start: 1000, end: 1200, session: SESSION })]);
  // Found through its events only (its spans carry no session id).
  await recordSpans(tx, [span('root', { trace: 'first', start: 0, end: 300 })]);
  await insertEvent(tx, { trace: 'first', span: 'root', at: 20, session: SESSION });
  // Nothing but events.
  await insertEvent(tx, { trace: 'third', span: 'x', at: 5000, session: SESSION });
  // Someone else's.
  await recordSpans(tx, [span('root', { trace: 'other', start: 500, end: 600, session: OTHER })]);
}

const sessionTraces = (
  tx: Tx | typeof db.sql,
  first: number | null = null,
  after: Record<string, unknown> | null = null,
  session: string | null = SESSION,
) =>
  tx`select * from api.get_session_traces(${session}, ${first}, ${(after?.start_time as Date) ?? null}, ${(after?.trace_id as string) ?? null})`;

describe('api.get_session_traces', () => {
  it('lists the session traces oldest first, however they are tied to the session', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const rows = await sessionTraces(tx);
      expect(rows.map((r) => r.trace_id)).toEqual([traceId('first'), traceId('second'), traceId('third')]);
      expect(rows.map((r) => [r.span_count, r.event_count])).toEqual([
        [1, 1],
        [1, 0],
        [0, 1],
      ]);
    });
  });

  it('pages with a (start_time, trace_id) cursor', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const page1 = await sessionTraces(tx, 2);
      const page2 = await sessionTraces(tx, 2, page1[1]!);
      expect([...page1, ...page2].map((r) => r.trace_id)).toEqual([traceId('first'), traceId('second'), traceId('third')]);
    });
  });

  it('refuses bad arguments, naming them', async () => {
    const run = (args: unknown[]) => db.sql.unsafe(`select * from api.get_session_traces($1, $2, $3, $4)`, args as never[]).catch((e) => e);
    expect((await run([null, 10, null, null])).message).toMatch(/^p_session_id is required/);
    expect((await run([SESSION, 0, null, null])).message).toMatch(/^p_first must be between 1 and 500/);
    expect((await run([SESSION, 10, new Date(), null])).message).toMatch(/^p_after_trace_id is required when p_after_start_time is given/);
    expect((await run([SESSION, 10, new Date(), 'zz'])).message).toMatch(/^p_after_trace_id must be 32 lowercase hex/);
  });
});
