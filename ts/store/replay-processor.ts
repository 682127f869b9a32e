/**
 * An application's side of replay: claim each replayed event, hand it to the
 * application's handler, report the outcome. Everything about order, leases
 * and idempotency is in SQL (db/functions/230-replay.sql:
 * tracing.claim_replay_event, mark_replay_processed, mark_replay_failed);
 * this loop only moves events between the queue and the handler.
 *
 * It wakes on NOTIFY tracegres_replay (a run was started) and otherwise
 * polls, so a missed notification costs at most one poll interval. Each
 * handled event gets a span, a child of the run's root span (the claim's
 * traceparent), so the run's trace shows what every processor did.
 */
import type { Sql } from 'postgres';
import { createSpan, endSpan, type TracingContext } from '../trace-context/span.ts';
import { parseTraceparent } from '../trace-context/traceparent.ts';
import { recordSpan } from './record-span.ts';

export interface ReplayedEvent {
  run_id: string;
  position: number;
  claim_token: string;
  attempts: number;
  event_id: string;
  event_type: string;
  stream_type: string;
  stream_id: string;
  event_data: Record<string, unknown>;
  event_metadata: Record<string, unknown>;
  organization_id: string | null;
  correlation_id: string | null;
  traceparent: string;
}

export interface ReplayProcessorOptions {
  /** Names the processor in the queue (claimed_by). */
  processor: string;
  /** The service name of the processing spans. */
  service: string;
  /** Processes one event; a throw marks it failed with the error's message. */
  handle(event: ReplayedEvent): Promise<void>;
  pollMs?: number;
  /** How long a claim holds its event (an interval); by default tracing.replay_settings.claim_lease. */
  lease?: string;
}

export interface ReplayProcessor {
  /** Claims and handles events until none is left; resolves with how many it handled. */
  drain(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts the loop: LISTEN, drain on every wake-up and every poll. */
export async function startReplayProcessor(sql: Sql, options: ReplayProcessorOptions): Promise<ReplayProcessor> {
  let running = true;
  let draining: Promise<number> | undefined;

  const handleOne = async (event: ReplayedEvent) => {
    const parent = parseTraceparent(event.traceparent);
    const context: TracingContext | undefined = parent.ok
      ? {
          traceId: parent.traceparent.traceId,
          parentSpanId: parent.traceparent.parentId,
          traceFlags: parent.traceparent.traceFlags,
          tracestate: null,
          correlationId: event.correlation_id ?? '',
          sessionId: null,
          restarted: false,
        }
      : undefined;
    const span = context
      ? createSpan(context, `replay ${event.event_type}`, {
          kind: 'consumer',
          service: options.service,
          attributes: { 'tracegres.replay.run_id': Number(event.run_id), 'tracegres.replay.event_id': Number(event.event_id) },
        })
      : undefined;
    let error: string | null = null;
    try {
      await options.handle(event);
    } catch (failure) {
      error = (failure instanceof Error ? failure.message : String(failure)) || 'failed';
    }
    if (error === null) await sql`select tracing.mark_replay_processed(${event.run_id}, ${event.position}, ${event.claim_token})`;
    else await sql`select tracing.mark_replay_failed(${event.run_id}, ${event.position}, ${event.claim_token}, ${error})`;
    if (span) {
      await recordSpan(sql, endSpan(span, error === null ? { code: 'ok' } : { code: 'error', message: error }), {
        organizationId: event.organization_id,
      });
    }
  };

  const drainOnce = async () => {
    let handled = 0;
    while (running) {
      const [event] = await sql<ReplayedEvent[]>`
        select * from tracing.claim_replay_event(${options.processor}, ${options.lease ?? null}::interval)`;
      if (!event) break;
      await handleOne(event);
      handled++;
    }
    return handled;
  };
  // One drain at a time; a wake-up during a drain is served by it.
  const drain = () => (draining ??= drainOnce().finally(() => (draining = undefined)));
  const wake = () =>
    void drain().catch((error) =>
      console.error(JSON.stringify({ level: 'error', message: 'replay processing failed', error: String(error) })),
    );

  const listener = await sql.listen('tracegres_replay', wake);
  const poll = setInterval(wake, options.pollMs ?? 5_000);
  wake();
  return {
    drain,
    async stop() {
      running = false;
      clearInterval(poll);
      await listener.unlisten();
      await draining;
    },
  };
}
