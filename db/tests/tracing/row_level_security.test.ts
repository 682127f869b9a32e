// Row-level security on events, spans and trace summaries, seen through the
// api functions the way the API server calls them (set role + the request's
// jwt.claims.organization_id): a tenant sees only its organization, an admin
// sees everything, a request without a valid token sees nothing, and no
// reader can write.
import { beforeAll, describe, expect, it } from 'vitest';
import { inRolledBackTransaction, useTestDatabase } from '../helpers/test-database.ts';
import { actAs, insertEvent, ORG_A, ORG_B, recordSpans, span, traceId } from '../helpers/trace-fixtures.ts';

const db = useTestDatabase();

type Tx = import('postgres').TransactionSql;
type Role = 'tracegres_anonymous' | 'tracegres_reader' | 'tracegres_admin';

const SESSION_A = '0e5d1c7a-2b3f-4c9d-8e1a-6f7b8c9d0a1b';
const SESSION_B = '7d0b2c3e-5f1a-4b8e-9c2d-1e3f4a5b6c7d';
const CORRELATION_B = 'c0000000-0000-4000-8000-0000000000cb';

beforeAll(async () => {
  // Tenant A's trace `ta`, tenant B's trace `tb`, and a trace id `both` that
  // each tenant used for spans of its own.
  await recordSpans(db.sql, [
    span('root', { trace: 'ta', start: 0, end: 100, org: ORG_A, session: SESSION_A }),
    span('a', { trace: 'ta', parent: 'root', start: 10, end: 50, org: ORG_A, status: 'error' }),
    span('root', { trace: 'tb', start: 0, end: 200, org: ORG_B, session: SESSION_B }),
    span('sa', { trace: 'both', start: 0, end: 10, org: ORG_A }),
    span('sb', { trace: 'both', start: 0, end: 99, org: ORG_B }),
  ]);
  await insertEvent(db.sql, { trace: 'ta', span: 'a', at: 20, org: ORG_A, session: SESSION_A, error: 'failed in A' });
  await insertEvent(db.sql, {
    trace: 'tb',
    span: 'root',
    at: 30,
    org: ORG_B,
    session: SESSION_B,
    correlation: CORRELATION_B,
    error: 'failed in B',
  });
  await insertEvent(db.sql, { trace: 'tb', span: 'lost', parent: 'root', at: 40, org: ORG_B, session: SESSION_B });
});

// Everything each api function returns for one caller.
async function everything(tx: Tx, role: Role, organization: string | null) {
  return actAs(tx, role, organization, async () => ({
    timelineA: (await tx`select span_id from api.get_trace_timeline(${traceId('ta')})`).length,
    timelineB: (await tx`select span_id from api.get_trace_timeline(${traceId('tb')})`).length,
    timelineBoth: (await tx`select name from api.get_trace_timeline(${traceId('both')}) order by name`).map((r) => r.name),
    summaryB: (await tx`select (api.get_trace_summary(${traceId('tb')})).trace_id`)[0]!.trace_id,
    search: (await tx`select trace_id, organization_id from api.search_traces() order by trace_id, organization_id`).length,
    sessionB: (await tx`select * from api.get_events_by_session(${SESSION_B})`).length,
    correlationB: (await tx`select * from api.get_events_by_correlation(${CORRELATION_B})`).length,
    traceEventsB: (await tx`select * from api.get_events_by_trace(${traceId('tb')})`).length,
    failed: (await tx`select processing_error from api.get_failed_events() order by 1`).map((r) => r.processing_error),
    sessionTracesA: (await tx`select * from api.get_session_traces(${SESSION_A})`).length,
    sessionTracesB: (await tx`select * from api.get_session_traces(${SESSION_B})`).length,
    tables: {
      events: (await tx`select count(*)::int as n from tracing.domain_events`)[0]!.n,
      spans: (await tx`select count(*)::int as n from tracing.spans`)[0]!.n,
      summaries: (await tx`select count(*)::int as n from tracing.trace_summaries`)[0]!.n,
    },
  }));
}

describe('a tenant reader', () => {
  it('sees its own organization only, including when asking for another tenant trace id', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      expect(await everything(tx, 'tracegres_reader', ORG_A)).toEqual({
        timelineA: 2,
        timelineB: 0,
        // The shared trace id shows only A's span.
        timelineBoth: ['sa'],
        summaryB: null,
        search: 2,
        sessionB: 0,
        correlationB: 0,
        traceEventsB: 0,
        failed: ['failed in A'],
        sessionTracesA: 1,
        sessionTracesB: 0,
        tables: { events: 1, spans: 3, summaries: 2 },
      });
    });
  });

  it('of the other tenant sees the other half', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const seen = await everything(tx, 'tracegres_reader', ORG_B);
      expect(seen).toMatchObject({
        timelineA: 0,
        timelineB: 2,
        timelineBoth: ['sb'],
        summaryB: traceId('tb'),
        sessionB: 2,
        correlationB: 1,
        traceEventsB: 2,
        failed: ['failed in B'],
        sessionTracesA: 0,
        sessionTracesB: 1,
      });
    });
  });

  it.each([
    ['no organization claim', null],
    ['an empty claim (a pooled connection after another request)', ''],
    ['a claim that is not a uuid', 'acme'],
  ])('sees nothing with %s', async (_case, claim) => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const seen = await everything(tx, 'tracegres_reader', claim);
      expect(seen.tables).toEqual({ events: 0, spans: 0, summaries: 0 });
      expect(seen.timelineA + seen.timelineB + seen.search + seen.sessionTracesA).toBe(0);
    });
  });
});

describe('an admin', () => {
  it('sees every organization', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      expect(await everything(tx, 'tracegres_admin', null)).toEqual({
        timelineA: 2,
        timelineB: 2,
        timelineBoth: ['sa', 'sb'],
        summaryB: traceId('tb'),
        // ta, tb, and one summary per tenant of `both`.
        search: 4,
        sessionB: 2,
        correlationB: 1,
        traceEventsB: 2,
        failed: ['failed in A', 'failed in B'],
        sessionTracesA: 1,
        sessionTracesB: 1,
        tables: { events: 3, spans: 5, summaries: 4 },
      });
    });
  });
});

describe('a request without a valid token (tracegres_anonymous)', () => {
  it('may call the api but sees nothing, even with an organization claim', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const seen = await everything(tx, 'tracegres_anonymous', ORG_A);
      expect(seen).toEqual({
        timelineA: 0,
        timelineB: 0,
        timelineBoth: [],
        summaryB: null,
        search: 0,
        sessionB: 0,
        correlationB: 0,
        traceEventsB: 0,
        failed: [],
        sessionTracesA: 0,
        sessionTracesB: 0,
        tables: { events: 0, spans: 0, summaries: 0 },
      });
    });
  });
});

describe('the read side cannot write', () => {
  const writes = [
    `insert into tracing.spans (trace_id, span_id, name, service, start_time, end_time)
       values ('4bf92f35-77b3-4da6-a3ce-929d0e0e4736', 1, 'x', 'y', now(), now())`,
    `update tracing.spans set name = 'x'`,
    `delete from tracing.spans`,
    `insert into tracing.trace_summaries (trace_id, start_time, end_time) values ('4bf92f35-77b3-4da6-a3ce-929d0e0e4736', now(), now())`,
    `update tracing.trace_summaries set span_count = 0`,
    `delete from tracing.trace_summaries`,
    `insert into tracing.domain_events (stream_type, stream_id, event_type) values ('a', 'b', 'c')`,
    `update tracing.domain_events set processing_error = null`,
    `delete from tracing.domain_events`,
    `select tracing.record_spans('[]')`,
  ];

  for (const role of ['tracegres_anonymous', 'tracegres_reader', 'tracegres_admin'] as const) {
    it.each(writes)(`${role}: %s`, async (statement) => {
      await inRolledBackTransaction(db.sql, async (tx) => {
        await tx.unsafe(`set local role ${role}`);
        await tx`select set_config('jwt.claims.organization_id', ${ORG_A}, true)`;
        await expect(tx.unsafe(statement)).rejects.toThrow(/permission denied/);
      });
    });
  }
});
