// api.sees_trace_activity: whether the caller sees the traces a
// tracegres_new_traces notification announced, decided by row-level
// security (the live view's traceActivity asks it as each subscriber), and
// at the cost of an index probe whatever the tables hold.
import { beforeAll, describe, expect, it } from 'vitest';
import { nestedPlans } from '../../helpers/nested-plans.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { actAs, ORG_A, ORG_B, recordSpans, span, traceId } from '../../helpers/trace-fixtures.ts';

const db = useTestDatabase();

type Role = 'tracegres_anonymous' | 'tracegres_reader' | 'tracegres_admin';

const ORG_C = 'c0000000-0000-4000-8000-00000000000c';

beforeAll(async () => {
  await recordSpans(db.sql, [
    span('root', { trace: 'of-a', start: 0, end: 10, org: ORG_A }),
    span('root', { trace: 'of-b', start: 0, end: 10, org: ORG_B }),
    span('root', { trace: 'of-none', start: 0, end: 10, org: null }),
  ]);
  // Many summaries of one organization, for the cost of a probe.
  await db.sql`
    insert into tracing.trace_summaries (trace_id, organization_id, start_time, end_time)
    select md5('many' || i)::uuid, ${ORG_B}::uuid, timestamptz '2025-03-01 12:00:00+00' - i * interval '1 s', timestamptz '2025-03-01 12:00:00+00'
    from generate_series(1, 5000) i`;
  await db.sql`analyze tracing.trace_summaries`;
});

async function sees(role: Role, claim: string | null, organization: string | null, trace: string | null): Promise<boolean> {
  return inRolledBackTransaction(db.sql, (tx) =>
    actAs(tx, role, claim, async () => {
      const [row] =
        await tx`select api.sees_trace_activity(${organization}::uuid, ${trace === null ? null : traceId(trace)}::uuid) as sees`;
      return row!.sees as boolean;
    }),
  );
}

describe('sees_trace_activity', () => {
  it("answers true to a reader for its own organization's traces only", async () => {
    expect(await sees('tracegres_reader', ORG_A, ORG_A, null)).toBe(true);
    expect(await sees('tracegres_reader', ORG_A, ORG_B, null)).toBe(false);
    expect(await sees('tracegres_reader', ORG_B, ORG_A, null)).toBe(false);
    // An organization with no trace yet: nothing to see.
    expect(await sees('tracegres_reader', ORG_C, ORG_C, null)).toBe(false);
  });

  it('answers true to an admin for every organization, and for a trace of none', async () => {
    expect(await sees('tracegres_admin', null, ORG_A, null)).toBe(true);
    expect(await sees('tracegres_admin', null, ORG_B, null)).toBe(true);
    expect(await sees('tracegres_admin', null, null, 'of-none')).toBe(true);
    // The trace named must be one of no organization.
    expect(await sees('tracegres_admin', null, null, 'of-a')).toBe(false);
  });

  it('answers false to a reader for a trace of no organization, and to a request without a token for anything', async () => {
    expect(await sees('tracegres_reader', ORG_A, null, 'of-none')).toBe(false);
    expect(await sees('tracegres_anonymous', null, ORG_A, null)).toBe(false);
    expect(await sees('tracegres_anonymous', null, null, 'of-none')).toBe(false);
  });

  it('reads no summary for a reader asking about another organization, however many it has', async () => {
    const plans = (
      await nestedPlans(
        db.url,
        `select api.sees_trace_activity($1::uuid, null)`,
        [ORG_B],
        [
          'set local auto_explain.log_analyze = on',
          'set local role tracegres_reader',
          `select set_config('jwt.claims.organization_id', '${ORG_A}', true)`,
        ],
      )
    ).join('\n');
    // The policy's organization and the one asked about differ: the scan never runs.
    expect(plans).toMatch(/One-Time Filter/);
    expect(plans).toMatch(/on trace_summaries t\b[^\n]*\(never executed\)/);
    expect(plans).not.toMatch(/on trace_summaries t\b[^\n]*actual[^\n]*rows=[1-9]/);
  });
});
