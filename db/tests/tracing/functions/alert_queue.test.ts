// The alert queue's SQL: a failed event matching an event rule raises its
// alert and queues its delivery in the event's own transaction; repeats
// are grouped into one alert with a count and one summary; mutes and the
// hourly limit record without sending; claims never overlap; retries back
// off and run out into dead letters; the message carries the trace.
import { describe, expect, it } from 'vitest';
import { actAs, insertEvent, ORG_A, ORG_B, recordSpans, span, spanId, traceId } from '../../helpers/trace-fixtures.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import type postgres from 'postgres';

const db = useTestDatabase();

type Sql = postgres.Sql | postgres.TransactionSql;

async function eventRule(sql: Sql, options: { org?: string | null; eventType?: string; streamType?: string; extra?: string } = {}) {
  const [rule] = await sql.unsafe(
    `insert into tracing.alert_rules (organization_id, name, kind, event_type_pattern, stream_type_pattern, channel, target ${options.extra ? ', ' + options.extra.split('=')[0] : ''})
     values ($1, 'payments', 'event', $2, $3, 'webhook', 'http://127.0.0.1:9/hook' ${options.extra ? ', ' + options.extra.split('=')[1] : ''}) returning id`,
    [options.org === undefined ? ORG_A : options.org, options.eventType ?? 'payment.*', options.streamType ?? null],
  );
  return String(rule!.id);
}

const alerts = (sql: Sql) =>
  sql`select a.rule_id::text, a.fingerprint, t.repeat_count, a.state, a.details->>'error' as error
        from tracing.alerts a, tracing.alert_repeat_totals(a.id, a.first_at) t order by a.id`;
const deliveries = (sql: Sql) =>
  sql`select alert_id::text, kind, status, available_at > now() as later from tracing.alert_deliveries order by id`;

describe('raising alerts from failed events', () => {
  it("queues an alert and its delivery in the failed event's transaction, and nothing for events that did not fail or do not match", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const rule = await eventRule(tx);
      await insertEvent(tx, { at: 0, type: 'payment.declined', error: 'card declined' });
      await insertEvent(tx, { at: 1, type: 'payment.declined' });
      await insertEvent(tx, { at: 2, type: 'order.placed', error: 'out of stock' });
      await insertEvent(tx, { at: 3, type: 'payment.declined', error: 'card declined', org: ORG_B });
      expect(await alerts(tx)).toEqual([
        { rule_id: rule, fingerprint: expect.any(String), repeat_count: 1, state: 'queued', error: 'card declined' },
      ]);
      expect(await deliveries(tx)).toEqual([{ alert_id: expect.any(String), kind: 'first', status: 'queued', later: false }]);
    });
    // The failure rolled back, and so did its alert.
    expect(await db.sql`select count(*)::int as n from tracing.alerts`).toEqual([{ n: 0 }]);
  });

  it('fires when processing fails later, and again when it fails differently, but not when the same error is written again', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await eventRule(tx, { org: null, eventType: '*', streamType: 'ord*' });
      const id = await insertEvent(tx, { at: 0, type: 'payment.declined' });
      await tx`update tracing.domain_events set processing_error = 'timeout' where id = ${id}`;
      await tx`update tracing.domain_events set processing_error = 'timeout' where id = ${id}`;
      await tx`update tracing.domain_events set processing_error = 'card declined' where id = ${id}`;
      expect((await alerts(tx)).map((a) => [a.error, a.repeat_count])).toEqual([
        ['timeout', 1],
        ['card declined', 1],
      ]);
    });
  });

  it('matches patterns literally except for *', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await eventRule(tx, { eventType: 'pay_ment.%' });
      await insertEvent(tx, { at: 0, type: 'payXment.declined', error: 'x' });
      await insertEvent(tx, { at: 0, type: 'pay_ment.anything', error: 'x' });
      await insertEvent(tx, { at: 0, type: 'pay_ment.%', error: 'x' });
      expect((await tx`select details->>'event_type' as t from tracing.alerts`).map((r) => r.t)).toEqual(['pay_ment.%']);
    });
  });

  it('groups repeats of one fingerprint into one alert with a count and one summary at the end of the window', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await eventRule(tx, { extra: 'group_seconds=600' });
      for (let i = 0; i < 5; i++) await insertEvent(tx, { at: i, type: 'payment.declined', error: 'card declined' });
      await insertEvent(tx, { at: 9, type: 'payment.declined', error: 'insufficient funds' });
      expect((await alerts(tx)).map((a) => [a.error, a.repeat_count])).toEqual([
        ['card declined', 5],
        ['insufficient funds', 1],
      ]);
      const queued = await tx`
        select d.kind, d.available_at = a.group_start + interval '600 seconds' as at_window_end
          from tracing.alert_deliveries d join tracing.alerts a on a.id = d.alert_id order by d.id`;
      expect(queued).toEqual([
        { kind: 'first', at_window_end: false },
        { kind: 'summary', at_window_end: true },
        { kind: 'first', at_window_end: false },
      ]);
    });
  });

  it("looks at a writer's inserts with the writer's rights, and only the owner may insert a failed event", async () => {
    // The insert trigger runs with the inserter's rights (221-alert-queue.sql):
    // a writer's statement stops at the look at its own rows, and the column
    // that would take it further is not the writer's to insert.
    await inRolledBackTransaction(db.sql, async (tx) => {
      await eventRule(tx, { org: null });
      await tx`set local role tracegres_writer`;
      await tx`insert into tracing.domain_events (stream_type, stream_id, event_type) values ('order', 'w', 'payment.declined')`;
      await tx`savepoint failed_insert`;
      await expect(
        tx`insert into tracing.domain_events (stream_type, stream_id, event_type, processing_error)
           values ('order', 'w', 'payment.declined', 'card declined')`,
      ).rejects.toMatchObject({ code: '42501' });
      await tx`rollback to savepoint failed_insert`;
      await tx`reset role`;
      expect(await alerts(tx)).toEqual([]);
    });
  });

  it('groups a storm in one statement into one alert per fingerprint, one first message and one summary each', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await eventRule(tx, { org: null });
      await tx`insert into tracing.domain_events (stream_type, stream_id, event_type, processing_error)
               select 'order', g::text, 'payment.declined', 'error ' || (g % 5) from generate_series(1, 500) g`;
      expect((await alerts(tx)).map((a) => a.repeat_count)).toEqual([100, 100, 100, 100, 100]);
      expect(await tx`select kind, count(*)::int as n from tracing.alert_deliveries group by kind order by kind`).toEqual([
        { kind: 'first', n: 5 },
        { kind: 'summary', n: 5 },
      ]);
      // A statement appends one repeat row per alert, which counts its repeats.
      expect(await tx`select count(*)::int as rows, sum(repeats)::int as repeats from tracing.alert_repeats`).toEqual([
        { rows: 5, repeats: 495 },
      ]);
      // The next statement repeats one of them and raises a new one.
      await tx`insert into tracing.domain_events (stream_type, stream_id, event_type, processing_error)
               values ('order', 'a', 'payment.declined', 'error 0'), ('order', 'b', 'payment.declined', 'error 0'),
                      ('order', 'c', 'payment.declined', 'a new error')`;
      expect((await alerts(tx)).map((a) => [a.error, a.repeat_count])).toEqual([
        ['error 1', 100],
        ['error 2', 100],
        ['error 3', 100],
        ['error 4', 100],
        ['error 0', 102],
        ['a new error', 1],
      ]);
    });
  });

  it("gives a statement's new alerts what is left of the hourly limit in the order of their events, and records the rest", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await eventRule(tx, { extra: 'max_alerts_per_hour=3' });
      await insertEvent(tx, { at: 0, type: 'payment.declined', error: 'first' });
      await tx`insert into tracing.domain_events (stream_type, stream_id, event_type, organization_id, processing_error)
               select 'order', g::text, 'payment.declined', ${ORG_A}, 'storm ' || g from generate_series(1, 5) g`;
      expect((await alerts(tx)).map((a) => [a.error, a.state])).toEqual([
        ['first', 'queued'],
        ['storm 1', 'queued'],
        ['storm 2', 'queued'],
        ['storm 3', 'rate_limited'],
        ['storm 4', 'rate_limited'],
        ['storm 5', 'rate_limited'],
      ]);
      expect(await tx`select count(*)::int as n from tracing.alert_deliveries`).toEqual([{ n: 3 }]);
    });
  });

  it("makes one alert of one error in two organizations' events of one statement, for a rule of every organization", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await eventRule(tx, { org: null });
      await tx`insert into tracing.domain_events (stream_type, stream_id, event_type, organization_id, processing_error)
               values ('order', 'a', 'payment.declined', ${ORG_B}, 'card declined'),
                      ('order', 'b', 'payment.declined', ${ORG_A}, 'card declined'),
                      ('order', 'c', 'payment.declined', ${ORG_A}, 'card declined')`;
      // The alert is the first event's, and counts all three.
      const [alert] = await tx`
        select a.organization_id, a.details->>'stream_id' as stream_id, t.repeat_count
          from tracing.alerts a, tracing.alert_repeat_totals(a.id, a.first_at) t`;
      expect(alert).toEqual({ organization_id: ORG_B, stream_id: 'a', repeat_count: 3 });
    });
  });

  it('records alerts of a muted rule, or over its hourly limit, without sending them', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const muted = await eventRule(tx, { eventType: 'payment.*', extra: "muted_until=now() + interval '1 hour'" });
      const limited = await eventRule(tx, { eventType: 'order.*', extra: 'max_alerts_per_hour=2' });
      await insertEvent(tx, { at: 0, type: 'payment.declined', error: 'a' });
      for (const error of ['a', 'b', 'c', 'd']) await insertEvent(tx, { at: 0, type: 'order.failed', error });
      const states =
        await tx`select a.rule_id::text, a.state, count(*)::int as n from tracing.alerts a group by a.rule_id, a.state order by a.rule_id, a.state`;
      expect(states).toEqual([
        { rule_id: muted, state: 'muted', n: 1 },
        { rule_id: limited, state: 'queued', n: 2 },
        { rule_id: limited, state: 'rate_limited', n: 2 },
      ]);
      expect(await tx`select count(*)::int as n from tracing.alert_deliveries`).toEqual([{ n: 2 }]);
    });
  });

  it('raises nothing for events restored from the archive, or for a disabled rule', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await eventRule(tx);
      await eventRule(tx, { extra: 'enabled=false' });
      await tx`select set_config('tracegres.restoring', 'on', true)`;
      await insertEvent(tx, { at: 0, type: 'payment.declined', error: 'x' });
      await tx`select set_config('tracegres.restoring', 'off', true)`;
      expect(await tx`select count(*)::int as n from tracing.alerts`).toEqual([{ n: 0 }]);
    });
  });
});

describe('concurrent failures', () => {
  it('counts a first firing that waited on a concurrent one as its repeat, and sends one first message', async () => {
    const rule = await eventRule(db.sql, { eventType: 'concurrent.*' });
    try {
      let commitFirst!: () => void;
      const firstMayCommit = new Promise<void>((resolve) => (commitFirst = resolve));
      let firstInserted!: () => void;
      const inserted = new Promise<void>((resolve) => (firstInserted = resolve));
      const first = db.sql.begin(async (tx) => {
        await insertEvent(tx, { at: 0, type: 'concurrent.failed', error: 'same error' });
        firstInserted();
        await firstMayCommit;
      });
      await inserted;
      // Waits on the first transaction's alert key until it commits.
      const second = db.sql`insert into tracing.domain_events (stream_type, stream_id, event_type, organization_id, processing_error)
                            select 'order', g::text, 'concurrent.failed', ${ORG_A}, 'same error' from generate_series(1, 3) g`.execute();
      await new Promise((resolve) => setTimeout(resolve, 200));
      commitFirst();
      await first;
      await second;
      const rows = await db.sql`
        select t.repeat_count, (select count(*)::int from tracing.alert_deliveries d where d.alert_id = a.id and d.kind = 'first') as firsts
          from tracing.alerts a, tracing.alert_repeat_totals(a.id, a.first_at) t where a.rule_id = ${rule}`;
      expect(rows).toEqual([{ repeat_count: 4, firsts: 1 }]);
    } finally {
      await db.sql`delete from tracing.alert_rules where id = ${rule}`;
    }
  });
});

describe('the message', () => {
  it("carries the event's ids and its trace's root operation, duration and failed span", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await eventRule(tx);
      await recordSpans(tx, [
        span('root', { trace: 'ta', start: 0, end: 120, name: 'POST /checkout', service: 'edge' }),
        span('pay', { trace: 'ta', parent: 'root', start: 20, end: 100, name: 'charge', service: 'worker', status: 'error' }),
      ]);
      await insertEvent(tx, {
        trace: 'ta',
        span: 'pay',
        at: 30,
        type: 'payment.declined',
        error: 'card declined',
        correlation: 'c0441000-0000-4000-8000-00000000000a',
        session: '5e551010-0000-4000-8000-00000000000a',
      });
      const [claimed] = await tx`select * from tracing.alert_claim_deliveries(10)`;
      expect(claimed).toMatchObject({ kind: 'first', channel: 'webhook', target: 'http://127.0.0.1:9/hook', secret: null });
      expect(claimed!.message).toMatchObject({
        rule: { name: 'payments', kind: 'event' },
        organization_id: ORG_A,
        repeat_count: 1,
        details: {
          event_type: 'payment.declined',
          error: 'card declined',
          correlation_id: 'c0441000-0000-4000-8000-00000000000a',
          session_id: '5e551010-0000-4000-8000-00000000000a',
          trace_id: traceId('ta'),
          span_id: spanId('pay'),
        },
        trace: {
          trace_id: traceId('ta'),
          root_operation: 'POST /checkout',
          root_service: 'edge',
          duration_ms: 120,
          failed_span: { span_id: spanId('pay'), name: 'charge', service: 'worker', status: 'error', duration_ms: 80 },
        },
      });
    });
  });
});

describe('claiming and settling deliveries', () => {
  it('never gives one delivery to two concurrent claims', async () => {
    const rule = await eventRule(db.sql);
    try {
      for (const error of ['a', 'b', 'c', 'd']) await insertEvent(db.sql, { at: 0, type: 'payment.declined', error });
      let releaseFirst!: () => void;
      const firstHolds = new Promise<void>((resolve) => (releaseFirst = resolve));
      let firstClaimed!: string[];
      const first = db.sql.begin(async (tx) => {
        firstClaimed = (await tx`select delivery_id::text from tracing.alert_claim_deliveries(2)`).map((r) => r.delivery_id);
        await firstHolds;
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const second = await db.sql.begin(async (tx) =>
        (await tx`select delivery_id::text from tracing.alert_claim_deliveries(10)`).map((r) => r.delivery_id),
      );
      releaseFirst();
      await first;
      expect(firstClaimed).toHaveLength(2);
      expect(second).toHaveLength(2);
      expect(new Set([...firstClaimed, ...second]).size).toBe(4);
    } finally {
      await db.sql`delete from tracing.alert_rules where id = ${rule}`;
    }
  });

  it('backs off after a failed attempt, dead-letters after the last one, and requeues dead letters', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await tx`update tracing.alert_settings set max_attempts = 3, backoff_initial = '10 seconds', backoff_max = '15 seconds'`;
      await eventRule(tx);
      await insertEvent(tx, { at: 0, type: 'payment.declined', error: 'x' });
      const [{ id }] = (await tx`select id::text from tracing.alert_deliveries`) as unknown as [{ id: string }];
      const retry = async () => {
        const [row] = await tx`select status from tracing.alert_finish_deliveries(${[id]}::bigint[], '{retry}', '{HTTP 503}', '{503}')`;
        const [d] =
          await tx`select extract(epoch from available_at - now())::float8 as wait, attempts from tracing.alert_deliveries where id = ${id}`;
        return { status: row!.status as string, wait: d!.wait as number, attempts: d!.attempts as number };
      };
      const first = await retry();
      expect(first).toMatchObject({ status: 'queued', attempts: 1 });
      expect(first.wait).toBeGreaterThanOrEqual(5);
      expect(first.wait).toBeLessThanOrEqual(10);
      const second = await retry();
      // Doubled, but never past backoff_max.
      expect(second.wait).toBeGreaterThanOrEqual(7.5);
      expect(second.wait).toBeLessThanOrEqual(15);
      expect(await retry()).toMatchObject({ status: 'dead_letter', attempts: 3 });
      expect(await tx`select count(*)::int as n from tracing.alert_claim_deliveries(10)`).toEqual([{ n: 0 }]);
      const [status] = await tx`select dead_letters::int, last_error from tracing.alert_delivery_status`;
      expect(status).toEqual({ dead_letters: 1, last_error: 'HTTP 503' });
      expect(await tx`select tracing.alert_requeue_dead_letters() as n`).toEqual([{ n: '1' }]);
      expect(await tx`select count(*)::int as n from tracing.alert_claim_deliveries(10)`).toEqual([{ n: 1 }]);
    });
  });

  it("records a batch's outcomes in one call, each its own, and answers null for an id that names no delivery", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await eventRule(tx);
      for (const error of ['a', 'b', 'c']) await insertEvent(tx, { at: 0, type: 'payment.declined', error });
      const ids = (await tx`select delivery_id::text from tracing.alert_claim_deliveries(10)`).map((r) => r.delivery_id as string);
      const settled = await tx`
        select delivery_id::text, status from tracing.alert_finish_deliveries(
          ${[ids[2]!, '-1', ids[0]!, ids[1]!]}::bigint[], '{retry,sent,sent,dead_letter}',
          ${['HTTP 503', null, null, 'HTTP 410: gone']}::text[], '{503,null,200,410}', '{"30 seconds",null,null,null}')`;
      expect(settled).toEqual([
        { delivery_id: ids[2], status: 'queued' },
        { delivery_id: '-1', status: null },
        { delivery_id: ids[0], status: 'sent' },
        { delivery_id: ids[1], status: 'dead_letter' },
      ]);
      const rows = await tx`
        select id::text, status, attempts, http_status, last_error, sent_at is not null as sent,
               round(extract(epoch from available_at - now()))::int as wait
          from tracing.alert_deliveries order by id`;
      expect(rows).toEqual([
        { id: ids[0], status: 'sent', attempts: 1, http_status: 200, last_error: null, sent: true, wait: 0 },
        { id: ids[1], status: 'dead_letter', attempts: 1, http_status: 410, last_error: 'HTTP 410: gone', sent: false, wait: 0 },
        // The receiver's Retry-After, not the backoff.
        { id: ids[2], status: 'queued', attempts: 1, http_status: 503, last_error: 'HTTP 503', sent: false, wait: 30 },
      ]);
    });
  });

  it('reject bad arguments with an error naming them', async () => {
    await expect(db.sql`select * from tracing.alert_claim_deliveries(0)`).rejects.toMatchObject({
      code: '22023',
      message: 'p_limit must be between 1 and 1000',
    });
    for (const [call, message] of [
      ["select * from tracing.alert_finish_deliveries('{1}', '{delivered}')", 'p_outcomes must hold only sent, retry or dead_letter'],
      ["select * from tracing.alert_finish_deliveries('{1,2}', '{sent}')", 'p_outcomes must hold one outcome per delivery id'],
      ["select * from tracing.alert_finish_deliveries('{1,1}', '{sent,sent}')", 'p_delivery_ids must hold distinct ids'],
      ["select * from tracing.alert_finish_deliveries('{1,null}', '{sent,sent}')", 'p_delivery_ids must not hold null'],
      [
        "select * from tracing.alert_finish_deliveries(array(select generate_series(1, 1001)::bigint), array_fill('sent'::text, array[1001]))",
        'p_delivery_ids must hold at most 1000 ids',
      ],
      ["select * from tracing.alert_finish_deliveries(null, '{sent}')", 'p_delivery_ids is required'],
      [
        "select * from tracing.alert_finish_deliveries('{1,2}', '{sent,retry}', null, '{200}')",
        'p_http_statuses must be null or hold one value per delivery id',
      ],
      [
        "select * from tracing.alert_finish_deliveries('{1}', '{retry}', null, null, '{-1 second}')",
        'p_retry_afters must hold non-negative intervals',
      ],
    ]) {
      await expect(db.sql.unsafe(call!)).rejects.toMatchObject({ code: '22023', message });
    }
    await expect(db.sql`select tracing.alert_send_test(-1)`).rejects.toMatchObject({
      code: '22023',
      message: 'p_rule_id names no alert rule',
    });
  });

  it('lets only the owner claim, settle, requeue and send tests', async () => {
    for (const role of ['tracegres_writer', 'tracegres_reader', 'tracegres_admin']) {
      for (const call of [
        'select * from tracing.alert_claim_deliveries(10)',
        "select * from tracing.alert_finish_deliveries('{1}', '{sent}')",
        'select tracing.alert_requeue_dead_letters()',
        'select tracing.alert_send_test(1)',
      ]) {
        await inRolledBackTransaction(db.sql, async (tx) => {
          await tx.unsafe(`set local role ${role}`);
          await expect(tx.unsafe(call)).rejects.toThrow(/permission denied for function/);
        });
      }
    }
  });
});

describe('reading alerts', () => {
  it("shows a tenant its own organization's alerts and deliveries, and an admin all", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await eventRule(tx, { org: ORG_A });
      await eventRule(tx, { org: ORG_B });
      await insertEvent(tx, { at: 0, type: 'payment.declined', error: 'a', org: ORG_A, trace: 'ta' });
      await insertEvent(tx, { at: 0, type: 'payment.declined', error: 'b', org: ORG_B });
      const seen = (role: 'tracegres_reader' | 'tracegres_admin' | 'tracegres_anonymous', org: string | null) =>
        actAs(tx, role, org, async () => ({
          alerts: (await tx`select organization_id, trace_id, delivery_status from api.recent_alerts()`).map((r) => [
            r.organization_id,
            r.trace_id,
            r.delivery_status,
          ]),
          deliveries: (await tx`select count(*)::int as n from tracing.alert_deliveries`)[0]!.n,
        }));
      expect(await seen('tracegres_reader', ORG_A)).toEqual({ alerts: [[ORG_A, traceId('ta'), 'queued']], deliveries: 1 });
      expect((await seen('tracegres_admin', null)).alerts).toHaveLength(2);
      await expect(actAs(tx, 'tracegres_anonymous', null, () => tx`select * from api.recent_alerts()`)).rejects.toThrow(
        /permission denied/,
      );
    });
  });
});
