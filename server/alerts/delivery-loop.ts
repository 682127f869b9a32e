// The alert delivery loop: claims due deliveries in Postgres, sends each to
// its channel, and records the outcome, all in the claiming transaction.
//
// Which alerts exist, grouping, rate limits, mutes, backoff, attempts and
// dead letters are SQL (db/functions/221-alert-queue.sql); this loop only
// moves messages. Delivery is at-least-once: a claimed delivery stays
// locked (`for update skip locked`) while it is on the wire and is marked
// sent in the same transaction, so concurrent loops never send the same
// delivery, a loop stopped between two batches sends nothing twice, and a
// process killed mid-send sends that delivery again after a restart
// (receivers drop the repeat by its x-tracegres-delivery-id).
//
// It wakes on NOTIFY tracegres_alerts (sent when an alert is queued) and
// otherwise looks at the queue every pollIntervalMs, which also picks up
// retries and summaries as they fall due.
import type postgres from 'postgres';
import { createChannels, type Channels, type ClaimedDelivery, type SendOutcome } from './channels.ts';
import type { AlertConfig } from './config.ts';

export interface DeliveryResult {
  delivery_id: string;
  channel: string;
  outcome: SendOutcome['kind'];
  /** The delivery's status afterwards: sent, queued (to retry) or dead_letter. */
  status: string;
  reason?: string;
}

export interface AlertDelivery {
  /** One claim-send-record cycle over up to batchSize due deliveries (or just `deliveryId`). */
  deliverBatch(deliveryId?: string): Promise<DeliveryResult[]>;
  /** Starts the loop (LISTEN, poll, status log). */
  start(): Promise<void>;
  /** Stops the loop after the batch in flight. */
  stop(): Promise<void>;
  logStatus(): Promise<void>;
}

export interface AlertDeliveryOptions {
  log?: (message: string) => void;
  /** Channels to send through (default: the real ones for the config). */
  channels?: Channels;
  /** How often the queue's status is logged, ms (default a minute). */
  statusIntervalMs?: number;
}

export function createAlertDelivery(sql: postgres.Sql, config: AlertConfig, options: AlertDeliveryOptions = {}): AlertDelivery {
  const log = options.log ?? ((message: string) => console.log(`[tracegres alerts] ${message}`));
  const channels = options.channels ?? createChannels(config);
  let stopped = true;
  let running: Promise<void> | undefined;
  let wakeUp: (() => void) | undefined;
  let woken = false;
  let listener: { unlisten(): Promise<void> } | undefined;
  let statusTimer: NodeJS.Timeout | undefined;
  let lastStatus = '';
  let failures = 0;

  // Channels answer a receiver's failure; a throw is a fault of ours (an
  // odd message, say). It costs that delivery a retry, never the batch: out
  // of the claim it would roll back the outcomes of deliveries already sent,
  // which would go out again at every poll.
  async function sendAlone(delivery: ClaimedDelivery): Promise<SendOutcome> {
    try {
      return await channels.send(delivery);
    } catch (error) {
      return { kind: 'retry', reason: `could not be sent: ${(error as Error).message}` };
    }
  }

  async function deliverBatch(deliveryId?: string): Promise<DeliveryResult[]> {
    return sql.begin(async (tx) => {
      const claimed = (await tx`
        select delivery_id::text, kind, attempts, channel, target, secret, message
          from tracing.alert_claim_deliveries(${config.batchSize}, ${deliveryId ?? null}::bigint)`) as unknown as ClaimedDelivery[];
      if (claimed.length === 0) return [];
      // Each to its own receiver at once; one receiver's failure is its own.
      const outcomes = await Promise.all(claimed.map(sendAlone));
      // All outcomes recorded in one call, in the claiming transaction.
      const reason = (outcome: SendOutcome) => (outcome.kind === 'sent' ? null : outcome.reason);
      const settled = await tx`
        select delivery_id::text, status from tracing.alert_finish_deliveries(
          ${claimed.map((delivery) => delivery.delivery_id)}::bigint[],
          ${outcomes.map((outcome) => (outcome.kind === 'rejected' ? 'dead_letter' : outcome.kind))}::text[],
          ${outcomes.map(reason)}::text[],
          ${outcomes.map((outcome) => outcome.status ?? null)}::integer[],
          ${outcomes.map((outcome) => (outcome.kind === 'retry' && outcome.retryAfterMs !== undefined ? `${outcome.retryAfterMs} milliseconds` : null))}::interval[])`;
      const results: DeliveryResult[] = [];
      for (const [i, delivery] of claimed.entries()) {
        const outcome = outcomes[i]!;
        const result: DeliveryResult = {
          delivery_id: delivery.delivery_id,
          channel: delivery.channel,
          outcome: outcome.kind,
          status: settled[i]!.status as string,
          ...(reason(outcome) ? { reason: reason(outcome)! } : {}),
        };
        results.push(result);
        if (result.status === 'dead_letter') {
          log(
            `warning: ${delivery.channel} delivery ${delivery.delivery_id} (rule "${delivery.message.rule.name}") is a dead letter: ${result.reason}`,
          );
        } else if (outcome.kind === 'retry') {
          log(`${delivery.channel} delivery ${delivery.delivery_id} will be retried: ${result.reason}`);
        }
      }
      return results;
    });
  }

  function sleep(ms: number): Promise<void> {
    if (woken) {
      woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeUp = undefined;
        woken = false;
        resolve();
      }
      wakeUp = done;
    });
  }

  function wake() {
    if (wakeUp) wakeUp();
    else woken = true;
  }

  async function loop(): Promise<void> {
    while (!stopped) {
      try {
        const results = await deliverBatch();
        failures = 0;
        // A full batch: there may be more due at once.
        if (results.length < config.batchSize) await sleep(config.pollIntervalMs);
      } catch (error) {
        // The database, not a receiver: wait and try again; never thrown
        // out of the loop, alerts must not take the server down.
        failures += 1;
        const delay = Math.min(60_000, 500 * 2 ** Math.min(failures, 7));
        log(`error: ${(error as Error).message}; retrying in ${delay} ms`);
        await sleep(delay);
      }
    }
  }

  async function logStatus(): Promise<void> {
    try {
      const [s] = await sql`
        select queued, due, extract(epoch from oldest_waiting)::float8 as oldest_waiting_s, sent, dead_letters, retries, last_error
          from tracing.alert_delivery_status`;
      if (!s) return;
      const line = `queue ${s.queued} (${s.due} due), oldest waiting ${s.oldest_waiting_s === null ? '-' : `${Math.round(s.oldest_waiting_s)} s`}, sent ${s.sent}, retried ${s.retries}, dead letters ${s.dead_letters}${s.last_error ? `, last error: ${s.last_error}` : ''}`;
      // Only when something changed: an idle server stays quiet.
      if (line !== lastStatus) log(line);
      lastStatus = line;
    } catch (error) {
      log(`status unavailable: ${(error as Error).message}`);
    }
  }

  return {
    deliverBatch,
    logStatus,
    async start() {
      if (running) return;
      stopped = false;
      listener = await sql
        .listen('tracegres_alerts', () => wake())
        .catch((error: Error) => {
          log(`LISTEN failed (${error.message}); polling every ${config.pollIntervalMs} ms`);
          return undefined;
        });
      log(`delivering alerts (poll ${config.pollIntervalMs} ms, woken by NOTIFY; links to ${config.dashboardUrl})`);
      await logStatus();
      statusTimer = setInterval(() => void logStatus(), options.statusIntervalMs ?? 60_000);
      statusTimer.unref();
      running = loop();
    },
    async stop() {
      stopped = true;
      wake();
      if (statusTimer) clearInterval(statusTimer);
      await running;
      running = undefined;
      await listener?.unlisten().catch(() => {});
      listener = undefined;
      if (!options.channels) channels.close();
    },
  };
}
