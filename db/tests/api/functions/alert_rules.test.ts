// Alert rules through the api: admins create, change, disable, mute and
// delete them; readers see their organization's and change nothing; every
// bad argument is refused naming it; the webhook secret is written, never read.
import { describe, expect, it } from 'vitest';
import { actAs, ORG_A, ORG_B } from '../../helpers/trace-fixtures.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import type postgres from 'postgres';

const db = useTestDatabase();

const create = (tx: postgres.TransactionSql, args: string) => tx.unsafe(`select * from api.create_alert_rule(${args})`);

type Role = 'tracegres_anonymous' | 'tracegres_reader' | 'tracegres_admin';

/** The error `run` fails with as `role` (a failed statement ends its transaction, so each gets its own). */
async function refusal(role: Role, org: string | null, run: (tx: postgres.TransactionSql) => Promise<unknown>): Promise<unknown> {
  return inRolledBackTransaction(db.sql, (tx) => actAs(tx, role, org, () => run(tx))).then(
    () => new Error('it was not refused'),
    (error: unknown) => error,
  );
}

describe('managing rules', () => {
  it('lets an admin create, update, disable, mute and delete a rule', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await actAs(tx, 'tracegres_admin', null, async () => {
        const [rule] = await create(
          tx,
          `'Declined payments', 'event', 'webhook', 'https://hooks.example.com/a', p_organization_id => '${ORG_A}',
           p_event_type_pattern => 'payment.*', p_secret => 'sixteen-chars-or-more'`,
        );
        expect(rule).toMatchObject({
          name: 'Declined payments',
          kind: 'event',
          organization_id: ORG_A,
          event_type_pattern: 'payment.*',
          stream_type_pattern: null,
          channel: 'webhook',
          has_secret: true,
          group_seconds: 300,
          max_alerts_per_hour: 20,
          enabled: true,
          muted_until: null,
        });
        expect(rule).not.toHaveProperty('secret');
        const id = rule!.id as string;
        const [updated] =
          await tx`select * from api.update_alert_rule(${id}, p_stream_type_pattern => 'order', p_group_seconds => 60, p_secret => '')`;
        expect(updated).toMatchObject({
          stream_type_pattern: 'order',
          group_seconds: 60,
          event_type_pattern: 'payment.*',
          has_secret: false,
        });
        expect(await tx`select enabled from api.set_alert_rule_enabled(${id}, false)`).toEqual([{ enabled: false }]);
        const [muted] = await tx`select muted_until > now() as muted from api.mute_alert_rule(${id}, now() + interval '2 hours')`;
        expect(muted).toEqual({ muted: true });
        expect(await tx`select muted_until from api.mute_alert_rule(${id}, null)`).toEqual([{ muted_until: null }]);
        expect(await tx`select name from api.delete_alert_rule(${id})`).toEqual([{ name: 'Declined payments' }]);
        expect(await tx`select * from api.alert_rules()`).toEqual([]);
      });
    });
    expect(await refusal('tracegres_admin', null, (tx) => tx`select secret from tracing.alert_rules`)).toMatchObject({
      message: expect.stringMatching(/permission denied/),
    });
  });

  it('creates rate rules with their metric, and keeps the two kinds apart', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await actAs(tx, 'tracegres_admin', null, async () => {
        const [rule] = await create(
          tx,
          `'Slow checkout', 'rate', 'email', 'oncall@example.com', p_service => 'edge', p_metric => 'p95_ms', p_threshold => 800, p_window_seconds => 300`,
        );
        expect(rule).toMatchObject({
          kind: 'rate',
          service: 'edge',
          operation: null,
          metric: 'p95_ms',
          threshold: 800,
          window_seconds: 300,
          min_requests: 1,
        });
      });
    });
  });

  it('refuses to give a rate rule patterns', async () => {
    const refused = await refusal('tracegres_admin', null, async (tx) => {
      const [rule] = await create(
        tx,
        `'r', 'rate', 'slack', 'https://x', p_service => 'edge', p_metric => 'p95_ms', p_threshold => 1, p_window_seconds => 60`,
      );
      await tx`select * from api.update_alert_rule(${rule!.id}, p_event_type_pattern => 'x')`;
    });
    expect(refused).toMatchObject({ code: '22023', message: 'p_kind rate takes no p_event_type_pattern or p_stream_type_pattern' });
  });

  it('refuses bad arguments with an error naming them', async () => {
    const cases: Array<[string, string]> = [
      [`'', 'event', 'slack', 'https://hooks.slack.com/x'`, 'p_name is required'],
      [`'n', 'sometimes', 'slack', 'https://hooks.slack.com/x'`, 'p_kind must be event or rate'],
      [`'n', 'event', 'sms', 'https://x'`, 'p_channel must be slack, webhook or email'],
      [`'n', 'event', 'slack', 'ftp://x'`, 'p_target must be an http or https URL'],
      [`'n', 'event', 'email', 'oncall@example.com, nobody'`, 'p_target must be email addresses separated by commas'],
      [`'n', 'event', 'slack', 'https://x', p_secret => 'short'`, 'p_secret is for the webhook channel only'],
      [`'n', 'event', 'webhook', 'https://x', p_secret => 'short'`, 'p_secret is for the webhook channel only'],
      [`'n', 'event', 'slack', 'https://x', p_service => 'edge'`, 'p_kind event takes no p_service'],
      [
        `'n', 'rate', 'slack', 'https://x', p_metric => 'p95_ms', p_threshold => 1, p_window_seconds => 60`,
        'p_service is required for a rate rule',
      ],
      [
        `'n', 'rate', 'slack', 'https://x', p_service => 's', p_metric => 'p50', p_threshold => 1, p_window_seconds => 60`,
        'p_metric must be error_rate or p95_ms',
      ],
      [
        `'n', 'rate', 'slack', 'https://x', p_service => 's', p_metric => 'error_rate', p_threshold => 2, p_window_seconds => 60`,
        'p_threshold must be',
      ],
      [
        `'n', 'rate', 'slack', 'https://x', p_service => 's', p_metric => 'p95_ms', p_threshold => 1, p_window_seconds => 10`,
        'p_window_seconds must be',
      ],
      [`'n', 'event', 'slack', 'https://x', p_group_seconds => -1`, 'p_group_seconds must be'],
      [`'n', 'event', 'slack', 'https://x', p_max_alerts_per_hour => 0`, 'p_max_alerts_per_hour must be'],
      [
        `'n', 'event', 'slack', 'https://x', p_event_type_pattern => repeat('a', 201)`,
        'p_event_type_pattern must be at most 200 characters',
      ],
    ];
    for (const [args, message] of cases) {
      expect(await refusal('tracegres_admin', null, (tx) => create(tx, args)), args).toMatchObject({
        code: '22023',
        message: expect.stringContaining(message),
      });
    }
    expect(await refusal('tracegres_admin', null, (tx) => tx`select * from api.mute_alert_rule(-5, now())`)).toMatchObject({
      code: '22023',
      message: 'p_rule_id names no alert rule',
    });
    expect(await refusal('tracegres_admin', null, (tx) => tx`select * from api.set_alert_rule_enabled(null, true)`)).toMatchObject({
      code: '22023',
      message: 'p_rule_id is required',
    });
  });
});

describe('who may do what', () => {
  it("lets a reader see its organization's rules and call no mutation; a request without a token sees nothing", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await actAs(tx, 'tracegres_admin', null, async () => {
        await create(tx, `'a', 'event', 'slack', 'https://x', p_organization_id => '${ORG_A}'`);
        await create(tx, `'b', 'event', 'slack', 'https://x', p_organization_id => '${ORG_B}'`);
        await create(tx, `'all', 'event', 'slack', 'https://x'`);
      });
      expect(await actAs(tx, 'tracegres_reader', ORG_A, () => tx`select name from api.alert_rules()`)).toEqual([{ name: 'a' }]);
    });
    for (const call of [
      `select api.create_alert_rule('x', 'event', 'slack', 'https://x', p_organization_id => '${ORG_A}')`,
      `select api.update_alert_rule(1, p_name => 'y')`,
      `select api.set_alert_rule_enabled(1, false)`,
      `select api.mute_alert_rule(1, now() + interval '1 hour')`,
      `select api.delete_alert_rule(1)`,
      // Nor by going around the api.
      `update tracing.alert_rules set enabled = false`,
      `insert into tracing.alert_rules (name, kind, channel, target) values ('x', 'event', 'slack', 'https://x')`,
    ]) {
      expect(await refusal('tracegres_reader', ORG_A, (tx) => tx.unsafe(call)), call).toMatchObject({
        message: expect.stringMatching(/^permission denied/),
      });
    }
    expect(await refusal('tracegres_anonymous', null, (tx) => tx`select * from api.alert_rules()`)).toMatchObject({
      message: expect.stringMatching(/^permission denied/),
    });
  });
});
