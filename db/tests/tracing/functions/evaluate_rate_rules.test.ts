// Rate rules: the error rate or p95 of a service's operations over the
// window, from api.red_metrics with the rule's tenant's rights, raise an
// alert per operation above the threshold (with an example trace), count a
// lasting condition as repeats, and never see another tenant's spans; the
// in-process schedule is claimed once a minute.
import { describe, expect, it } from 'vitest';
import { at, ORG_A, ORG_B, recordSpans, span, traceId } from '../../helpers/trace-fixtures.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import type postgres from 'postgres';

const db = useTestDatabase();

// Tenant A: four checkouts, one failed and one slow; tenant B: failures only.
async function traffic(tx: postgres.TransactionSql) {
  await recordSpans(tx, [
    span('a1', { trace: 't1', start: 0, end: 100, name: 'POST /checkout', service: 'edge' }),
    span('a2', { trace: 't2', start: 1000, end: 1100, name: 'POST /checkout', service: 'edge' }),
    span('a3', { trace: 't3', start: 2000, end: 2100, name: 'POST /checkout', service: 'edge', status: 'error' }),
    span('a4', { trace: 't4', start: 3000, end: 5000, name: 'POST /checkout', service: 'edge' }),
    span('a5', { trace: 't5', start: 3000, end: 3010, name: 'GET /health', service: 'edge' }),
    span('b1', { trace: 't6', start: 0, end: 100, name: 'POST /checkout', service: 'edge', status: 'error', org: ORG_B }),
    span('b2', { trace: 't7', start: 10, end: 100, name: 'POST /checkout', service: 'edge', status: 'error', org: ORG_B }),
  ]);
}

async function rateRule(
  tx: postgres.TransactionSql,
  org: string | null,
  metric: string,
  threshold: number,
  operation: string | null = null,
) {
  const [row] = await tx`
    insert into tracing.alert_rules (organization_id, name, kind, service, operation, metric, threshold, window_seconds, channel, target)
    values (${org}, ${metric}, 'rate', 'edge', ${operation}, ${metric}, ${threshold}, 600, 'slack', 'https://hooks.example.com/x')
    returning id`;
  return String(row!.id);
}

const evaluate = (tx: postgres.TransactionSql) => tx`select tracing.evaluate_rate_rules(${at(5 * 60_000)}::timestamptz) as n`;

describe('evaluating rate rules', () => {
  it("raises an alert per operation whose error rate crosses the threshold, with the tenant's numbers and a failed trace", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await traffic(tx);
      await rateRule(tx, ORG_A, 'error_rate', 0.2);
      expect(await evaluate(tx)).toEqual([{ n: 1 }]);
      const [alert] = await tx`select fingerprint, organization_id, details from tracing.alerts`;
      expect(alert).toMatchObject({
        fingerprint: 'edge/POST /checkout',
        organization_id: ORG_A,
        // Tenant B's two failures are not counted: 1 of 4, not 3 of 6.
        details: { metric: 'error_rate', value: 0.25, threshold: 0.2, requests: 4, errors: 1, trace_id: traceId('t3') },
      });
      // Its delivery says which trace to open.
      const [claimed] = await tx`select message from tracing.alert_claim_deliveries(10)`;
      expect(claimed!.message.trace).toMatchObject({ trace_id: traceId('t3'), root_operation: 'POST /checkout' });
      // The caller's role and settings are as they were.
      expect(await tx`select current_user as u, current_setting('role') as r`).toEqual([{ u: 'postgres', r: 'none' }]);
    });
  });

  it('gives each crossing operation of one rule its own example trace', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await traffic(tx);
      // A failed health check, later than the failed checkout: 1 of 2 health checks fails.
      await recordSpans(tx, [span('a6', { trace: 't8', start: 4000, end: 4010, name: 'GET /health', service: 'edge', status: 'error' })]);
      await rateRule(tx, ORG_A, 'error_rate', 0.2);
      expect(await evaluate(tx)).toEqual([{ n: 2 }]);
      expect(await tx`select fingerprint, details->>'trace_id' as trace from tracing.alerts order by fingerprint`).toEqual([
        { fingerprint: 'edge/GET /health', trace: traceId('t8') },
        { fingerprint: 'edge/POST /checkout', trace: traceId('t3') },
      ]);
    });
  });

  it('compares p95 durations, counts a lasting crossing into its alert, and stays quiet below the threshold', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await traffic(tx);
      await rateRule(tx, ORG_A, 'p95_ms', 1000, 'POST /checkout');
      await rateRule(tx, ORG_A, 'p95_ms', 5000);
      await evaluate(tx);
      await evaluate(tx);
      expect(
        await tx`select a.fingerprint, t.repeat_count, a.details->>'trace_id' as trace
                    from tracing.alerts a, tracing.alert_repeat_totals(a.id, a.first_at) t`,
      ).toEqual([{ fingerprint: 'edge/POST /checkout', repeat_count: 2, trace: traceId('t4') }]);
    });
  });

  it('lets a rule of every organization see every tenant', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await traffic(tx);
      await rateRule(tx, null, 'error_rate', 0.4);
      await evaluate(tx);
      expect(await tx`select details->>'requests' as requests, details->>'errors' as errors from tracing.alerts`).toEqual([
        { requests: '6', errors: '3' },
      ]);
    });
  });

  it('is claimed by one in-process scheduler per minute', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const claim = (t: string) => tx`select tracing.claim_alert_rate_tick(${t}::timestamptz) as due`;
      expect(await claim('2026-01-01T10:00:05Z')).toEqual([{ due: true }]);
      expect(await claim('2026-01-01T10:00:40Z')).toEqual([{ due: false }]);
      expect(await claim('2026-01-01T10:01:00Z')).toEqual([{ due: true }]);
    });
  });
});
