/**
 * The activity that writes workflow spans. Register it on every worker that
 * runs workflows with the tracing interceptors:
 * `activities: { ...tracingActivities({ sql }), ...yourActivities }`.
 */
import type { Sql } from 'postgres';
import { recordSpan } from '../store/record-span.ts';
import type { FinishedSpan } from '../trace-context/span.ts';
import { defaultServiceName } from './interceptors/activity.ts';
import { RECORD_WORKFLOW_SPAN_ACTIVITY, type TracingActivities, type WorkflowSpanRecord } from './workflow-span.ts';

export interface TracingActivitiesOptions {
  sql: Sql;
  /** Defaults to OTEL_SERVICE_NAME, else "tracegres-worker". */
  service?: string;
}

export function workflowSpanToFinished(record: WorkflowSpanRecord, service: string): FinishedSpan {
  const startTime = new Date(record.startTime);
  const endTime = new Date(record.endTime);
  return {
    traceId: record.traceId,
    spanId: record.spanId,
    parentSpanId: record.parentSpanId,
    name: record.name,
    kind: record.kind,
    service,
    attributes: { ...record.attributes },
    traceFlags: record.traceFlags,
    tracestate: record.tracestate,
    correlationId: record.correlationId,
    sessionId: record.sessionId,
    startTime,
    // Times came from the workflow's history, not from this process's clock.
    startMonotonic: 0,
    endTime,
    durationMs: record.durationMs,
    status: record.status,
  };
}

export function tracingActivities(options: TracingActivitiesOptions): TracingActivities {
  const service = options.service ?? defaultServiceName();
  return {
    async [RECORD_WORKFLOW_SPAN_ACTIVITY](record: WorkflowSpanRecord): Promise<void> {
      const written = await recordSpan(options.sql, workflowSpanToFinished(record, service));
      // recordSpan has logged the cause; failing lets Temporal retry the
      // write a few times (the workflow interceptor bounds the attempts).
      if (!written) throw new Error(`workflow span ${record.spanId} of trace ${record.traceId} was not recorded`);
    },
  };
}
