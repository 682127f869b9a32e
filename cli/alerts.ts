// `tracegres alerts`: try a rule's channel, and see the delivery queue.
//
//   tracegres alerts test RULE     send a sample alert of RULE (its id or name) to its channel now
//   tracegres alerts status        the delivery queue, dead letters, the last error, the rules
//
// The sample goes through the same queue and the same sender as real
// alerts (tracing.alert_send_test, then one delivery of exactly it), with
// the settings of the environment (TRACEGRES_SMTP_URL, ...; docs/alerts.md).
import postgres from 'postgres';
import { AlertConfigError, readAlertConfig } from '../server/alerts/config.ts';
import { createAlertDelivery } from '../server/alerts/delivery-loop.ts';
import { parseCommandLine } from './arguments.ts';
import type { Output } from './retention.ts';

const USAGE = `usage:
  tracegres alerts test RULE [--database-url URL]
      send a sample alert of RULE (its id or its name) to its channel now,
      and say what the receiver answered.
  tracegres alerts status [--database-url URL]
      the delivery queue (tracing.alert_delivery_status) and the rules.`;

export async function alertsCommand(argv: string[], databaseUrl: (explicit: string | undefined) => string, out: Output): Promise<number> {
  const parsed = parseCommandLine(argv, {}, USAGE);
  if (!parsed) return 2;
  const { values, positionals } = parsed;
  const [command, rule, ...extra] = positionals;
  const valid = (command === 'test' && rule !== undefined && extra.length === 0) || (command === 'status' && rule === undefined);
  if (values.help || !valid) {
    (values.help ? console.log : console.error)(USAGE);
    return values.help ? 0 : 2;
  }
  let config;
  try {
    config = readAlertConfig();
  } catch (error) {
    if (!(error instanceof AlertConfigError)) throw error;
    console.error(error.message);
    return 2;
  }
  const sql = postgres(databaseUrl(values['database-url']), { max: 2, onnotice: () => {} });
  try {
    if (command === 'status') {
      const [status] = await sql`select * from tracing.alert_delivery_status`;
      for (const [key, value] of Object.entries(status ?? {})) out.line(`${key.padEnd(16)} ${format(value)}`);
      const rules = await sql`select id, name, kind, channel, enabled, muted_until from tracing.alert_rules order by id`;
      out.line(rules.length ? '\nrules:' : '\nno alert rules yet');
      for (const r of rules) {
        out.line(
          `  #${r.id} ${r.name} (${r.kind}, ${r.channel})${r.enabled ? '' : ' disabled'}${r.muted_until > new Date() ? ` muted until ${format(r.muted_until)}` : ''}`,
        );
      }
      return 0;
    }
    const found = await sql`
      select id, name, channel, target from tracing.alert_rules
       where (${rule!} ~ '^[0-9]{1,18}$' and id = ${/^[0-9]{1,18}$/.test(rule!) ? rule! : '0'}::bigint) or name = ${rule!}
       order by id`;
    if (found.length !== 1) {
      console.error(
        found.length === 0
          ? `no alert rule has the id or name ${JSON.stringify(rule)}`
          : `several rules are named ${JSON.stringify(rule)}: use the id`,
      );
      return 2;
    }
    const target = found[0]!;
    const [{ delivery_id }] = (await sql`select tracing.alert_send_test(${target.id})::text as delivery_id`) as unknown as [
      { delivery_id: string },
    ];
    const [result] = await createAlertDelivery(sql, config, { log: (m) => out.line(m) }).deliverBatch(delivery_id);
    if (result?.outcome === 'sent') {
      out.line(`sent a test alert of rule #${target.id} "${target.name}" to ${target.channel} ${redact(target.target)}`);
      return 0;
    }
    out.line(
      `the test alert of rule #${target.id} "${target.name}" was not delivered: ${result?.reason ?? 'it could not be claimed'}` +
        (result?.status === 'queued' ? ' (it stays queued; a running server retries it)' : ''),
    );
    return 1;
  } finally {
    await sql.end();
  }
}

function format(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  if (value === null || value === undefined) return '-';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** Webhook URLs carry their secret in the path (Slack's do): show the host only. */
function redact(target: string): string {
  try {
    const url = new URL(target);
    return `${url.protocol}//${url.host}/…`;
  } catch {
    return target;
  }
}
