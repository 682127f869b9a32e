/**
 * Domain events from activities, written once however often the activity
 * is retried.
 *
 * Temporal retries an activity that failed or timed out, and a timed-out
 * attempt may even still be running when the next one starts; an event an
 * earlier attempt already stored must not be stored again. Each event gets
 * an idempotency key, `<workflowId>/<runId>/<activityId>/<eventType>` (plus
 * a discriminator when one activity emits several events of a type): the
 * same for every attempt of one activity execution, different for anything
 * else. It is written to event_metadata.idempotency_key.
 *
 * The write takes a transaction-scoped advisory lock on the key, looks for
 * an event with that key (tracing.domain_event_by_idempotency_key, which the
 * writer role may call although it may not read event_metadata; keys are
 * unique within the event's organization), and only
 * then inserts through ts/edge's emitEvent. The lock serialises concurrent
 * attempts, so the check cannot race; the unique index on the key
 * (domain_events_idempotency_key_idx) stops writers that skip the lock.
 */
import type { Sql, TransactionSql } from 'postgres';
import { emitEvent, type DomainEventInput, type EmittedEvent } from '../store/emit-event.ts';
import { activityTraceContext } from './interceptors/activity.ts';

export interface ActivityEventOptions {
  /** Tells apart several events of one type emitted by one activity execution. */
  discriminator?: string;
}

export interface ActivityEvent {
  id: string;
  createdAt: Date;
  idempotencyKey: string;
  /** True when an earlier attempt had already stored this event and nothing was written. */
  duplicate: boolean;
}

async function emitOnce(tx: TransactionSql, event: DomainEventInput, key: string): Promise<ActivityEvent> {
  const trace = activityTraceContext();
  // hashtextextended gives a 64-bit lock key; a collision only makes two
  // unrelated emissions wait for each other, never skip one.
  await tx`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`;
  const existing = await tx<{ id: string; created_at: Date }[]>`
    select id, created_at
      from tracing.domain_event_by_idempotency_key(${key}, ${event.organizationId ?? null}::uuid)`;
  const found = existing[0];
  if (found !== undefined) return { id: String(found.id), createdAt: found.created_at, idempotencyKey: key, duplicate: true };

  const emitted: EmittedEvent = await emitEvent(
    tx,
    {
      ...event,
      metadata: {
        ...event.metadata,
        idempotency_key: key,
        temporal_workflow_id: trace.workflowId,
        temporal_run_id: trace.runId,
        temporal_activity_id: trace.activityId,
        temporal_activity_type: trace.activityType,
        temporal_attempt: trace.attempt,
      },
    },
    trace.span,
  );
  return { id: emitted.id, createdAt: emitted.createdAt, idempotencyKey: key, duplicate: false };
}

/**
 * Emits `event` with the running activity's span, unless an earlier attempt
 * of this activity already did. Given a transaction, it joins it (the lock is
 * then held until that transaction ends); given a client, it runs in a
 * transaction of its own.
 */
export async function emitActivityEvent(
  sql: Sql | TransactionSql,
  event: DomainEventInput,
  options?: ActivityEventOptions,
): Promise<ActivityEvent> {
  const key = activityTraceContext().idempotencyKey(event.eventType, options?.discriminator);
  if ('begin' in sql && typeof sql.begin === 'function') {
    return (sql as Sql).begin((tx) => emitOnce(tx, event, key)) as Promise<ActivityEvent>;
  }
  return emitOnce(sql as TransactionSql, event, key);
}
