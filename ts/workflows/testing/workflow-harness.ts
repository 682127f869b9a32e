/**
 * What the Temporal tests share: one workflow bundle per test file (bundling
 * takes seconds; workers then start in milliseconds), workers on a private
 * task queue, a tracing client, and readers for the rows a run leaves.
 */
import { randomUUID } from 'node:crypto';
import { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type postgres from 'postgres';
import { beforeAll } from 'vitest';
import { TracingWorkflowClientInterceptor } from '../interceptors/client.ts';
import type { Mailer } from '../organization-bootstrap-activities.ts';
import { createTracegresWorker, WORKFLOW_INTERCEPTORS_MODULE, WORKFLOWS_PATH } from '../worker.ts';
import type { Worker } from '@temporalio/worker';

const quietLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
};

/** The workflows bundled with the tracing interceptors (or without, to prove a replay notices). */
export function bundleWorkflows(options: { withInterceptors?: boolean } = {}): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    workflowInterceptorModules: options.withInterceptors === false ? [] : [WORKFLOW_INTERCEPTORS_MODULE],
    logger: quietLogger,
  });
}

/**
 * Bundles the workflows once for the calling test file (a beforeAll hook)
 * and returns a getter for the bundle.
 */
export function useWorkflowBundle(): () => WorkflowBundleWithSourceMap {
  let bundle: WorkflowBundleWithSourceMap | undefined;
  beforeAll(async () => {
    bundle = await bundleWorkflows();
  }, 120_000);
  return () => {
    if (!bundle) throw new Error('the workflow bundle exists only inside tests (beforeAll has not run)');
    return bundle;
  };
}

export function uniqueTaskQueue(name: string): string {
  return `${name}-${randomUUID()}`;
}

export async function startWorker(
  env: TestWorkflowEnvironment,
  options: { sql: postgres.Sql; bundle: WorkflowBundleWithSourceMap; taskQueue: string; mailer?: Mailer },
): Promise<Worker> {
  return createTracegresWorker({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    sql: options.sql,
    taskQueue: options.taskQueue,
    workflowBundle: options.bundle,
    service: 'bootstrap-worker',
    // A recording mailer keeps the logging default's lines out of test output.
    mailer: options.mailer ?? flakyMailer(null),
    // Fixed identities keep host names and process ids out of recorded histories.
    workerOptions: { identity: 'tracegres-test-worker' },
  });
}

export function tracingClient(env: TestWorkflowEnvironment): Client {
  return new Client({
    connection: env.connection,
    namespace: env.namespace ?? 'default',
    identity: 'tracegres-test-client',
    interceptors: { workflow: [new TracingWorkflowClientInterceptor()] },
  });
}

export interface EventRow {
  id: string;
  event_type: string;
  stream_type: string;
  stream_id: string;
  organization_id: string | null;
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  correlation_id: string | null;
  session_id: string | null;
  event_metadata: Record<string, unknown>;
  event_data: Record<string, unknown>;
}

export async function eventsOfTrace(sql: postgres.Sql, traceId: string): Promise<EventRow[]> {
  return sql<EventRow[]>`
    select id::text, event_type, stream_type, stream_id, organization_id::text,
           tracing.trace_id_to_hex(trace_id) as trace_id,
           tracing.span_id_to_hex(span_id) as span_id,
           tracing.span_id_to_hex(parent_span_id) as parent_span_id,
           correlation_id::text, session_id::text, event_metadata, event_data
    from tracing.domain_events
    where trace_id = tracing.hex_to_trace_id(${traceId})
    order by id`;
}

export interface SpanRow {
  span_id: string;
  parent_span_id: string | null;
  name: string;
  service: string;
  status: string;
  attributes: Record<string, unknown>;
}

/** Whether the span writer (tracing.record_spans and tracing.spans) is in the schema. */
export async function spanStoreExists(sql: postgres.Sql): Promise<boolean> {
  const [row] = await sql<{ fn: string | null; tbl: string | null }[]>`
    select to_regprocedure('tracing.record_spans(jsonb)')::text as fn, to_regclass('tracing.spans')::text as tbl`;
  return row?.fn != null && row.tbl != null;
}

export async function spansOfTrace(sql: postgres.Sql, traceId: string): Promise<SpanRow[]> {
  return sql<SpanRow[]>`
    select tracing.span_id_to_hex(span_id) as span_id,
           tracing.span_id_to_hex(parent_span_id) as parent_span_id,
           name, service, status::text as status, attributes
    from tracing.spans
    where trace_id = tracing.hex_to_trace_id(${traceId})
    order by start_time, name`;
}

/** A mailer that records what it sent and fails the first send of a template. */
export function flakyMailer(failFirst: string | null): Mailer & { sent: { template: string; idempotencyKey: string }[]; failures: number } {
  let failed = false;
  const mailer = {
    sent: [] as { template: string; idempotencyKey: string }[],
    failures: 0,
    async send(message: Parameters<Mailer['send']>[0]) {
      if (!failed && message.template === failFirst) {
        failed = true;
        mailer.failures++;
        throw new Error('mail provider unavailable');
      }
      mailer.sent.push({ template: message.template, idempotencyKey: message.idempotencyKey });
      return { messageId: randomUUID() };
    },
  };
  return mailer;
}
