// api.get_trace_replays: both sides of the link between a replay run's own
// trace and the traces it replayed, for the timeline of either.
import { describe, expect, it } from 'vitest';
import { expectArgumentErrors } from '../../helpers/argument-errors.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { actAs, archiveEvent, insertEvent, ORG_A, ORG_B, recordSpans, span, spanId, traceId } from '../../helpers/trace-fixtures.ts';

const db = useTestDatabase();

type Tx = import('postgres').TransactionSql;

const CORRELATION = '5c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f';

async function seed(tx: Tx) {
  await recordSpans(tx, [
    span('root', { start: 0, end: 100, name: 'POST /checkout' }),
    span('other', { start: 0, end: 50, name: 'GET /orders', trace: 't2' }),
  ]);
  await insertEvent(tx, { at: 20, type: 'payment.captured', span: 'root', correlation: CORRELATION, error: 'card declined' });
  await insertEvent(tx, { at: 30, type: 'email.send', span: 'other', trace: 't2', correlation: CORRELATION, error: 'smtp timeout' });
}

const startRun = async (tx: Tx, reason: string, selector: { trace?: string; correlation?: string }) => {
  const [run] = selector.trace
    ? await tx`select id, trace_id from api.start_replay(${reason}, p_trace_id => ${selector.trace})`
    : await tx`select id, trace_id from api.start_replay(${reason}, p_correlation_id => ${selector.correlation!})`;
  return { id: String(run!.id), traceId: run!.trace_id as string };
};

describe('api.get_trace_replays', () => {
  it("names on a run's own trace the traces it replayed, and on each replayed trace the runs, newest first", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const first = await startRun(tx, 'card bug fixed', { trace: traceId('t1') });
      const second = await startRun(tx, 'smtp back', { correlation: CORRELATION });

      const ofSecond = await tx`select relation, run_id, run_status, run_reason, trace_id from api.get_trace_replays(${second.traceId})`;
      expect(ofSecond).toEqual([
        {
          relation: 'replay_of',
          run_id: second.id,
          run_status: 'running',
          run_reason: 'smtp back',
          trace_id: traceId('t1'),
        },
        {
          relation: 'replay_of',
          run_id: second.id,
          run_status: 'running',
          run_reason: 'smtp back',
          trace_id: traceId('t2'),
        },
      ]);

      const ofOriginal = await tx`select relation, run_id, run_reason, trace_id from api.get_trace_replays(${traceId('t1')})`;
      expect(ofOriginal).toEqual([
        { relation: 'replayed_by', run_id: second.id, run_reason: 'smtp back', trace_id: second.traceId },
        { relation: 'replayed_by', run_id: first.id, run_reason: 'card bug fixed', trace_id: first.traceId },
      ]);
      const ofOther = await tx`select run_id from api.get_trace_replays(${traceId('t2')})`;
      expect(ofOther.map((r) => r.run_id)).toEqual([second.id]);
      expect(await tx`select * from api.get_trace_replays(${traceId('nothing')})`).toEqual([]);
    });
  });

  it('still finds the runs of a trace whose events were archived since', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const run = await startRun(tx, 'card bug fixed', { trace: traceId('t1') });
      const [event] = await tx`select id from tracing.domain_events where trace_id = ${traceId('t1')}::uuid`;
      await archiveEvent(tx, event!.id);
      const rows = await tx`select relation, run_id from api.get_trace_replays(${traceId('t1')})`;
      expect(rows).toEqual([{ relation: 'replayed_by', run_id: run.id }]);
    });
  });

  it("shows a reader only its own organization's runs", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await seed(tx);
      const run = await startRun(tx, 'card bug fixed', { trace: traceId('t1') });
      const read = (organization: string, trace: string) =>
        actAs(tx, 'tracegres_reader', organization, () => tx`select relation from api.get_trace_replays(${trace})`);
      expect((await read(ORG_A, traceId('t1'))).map((r) => r.relation)).toEqual(['replayed_by']);
      expect((await read(ORG_A, run.traceId)).map((r) => r.relation)).toEqual(['replay_of']);
      expect(await read(ORG_B, traceId('t1'))).toEqual([]);
      expect(await read(ORG_B, run.traceId)).toEqual([]);
    });
  });

  it('names a bad argument (22023)', async () => {
    await expectArgumentErrors(
      (query) => db.sql.unsafe(query),
      [
        [`select * from api.get_trace_replays('xyz')`, /^p_trace_id must be 32 lowercase hex/],
        [`select * from api.get_trace_replays(null)`, /^p_trace_id is required/],
      ],
    );
  });
});
