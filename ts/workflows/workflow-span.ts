/**
 * The workflow span as it leaves the workflow sandbox.
 *
 * Workflow code cannot do I/O, so the workflow interceptor hands its finished
 * span to an activity, `tracegres.recordWorkflowSpan`, which writes it. The
 * record crosses Temporal as JSON, hence ISO strings instead of Dates; the
 * service name is left to the worker, which knows how it is deployed.
 */
import type { SpanKind, SpanStatus } from '../trace-context/span.ts';

/** The activity type the workflow interceptor schedules to record the workflow span. */
export const RECORD_WORKFLOW_SPAN_ACTIVITY = 'tracegres.recordWorkflowSpan';

export interface WorkflowSpanRecord {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: SpanKind;
  /** ISO 8601; the run's start as the server recorded it. */
  startTime: string;
  /** ISO 8601; workflow time when the workflow function settled. */
  endTime: string;
  durationMs: number;
  status: SpanStatus;
  attributes: Record<string, unknown>;
  traceFlags: number;
  tracestate: string | null;
  correlationId: string;
  sessionId: string | null;
}

/** The activity a worker registers so workflow spans get written. */
export interface TracingActivities {
  [RECORD_WORKFLOW_SPAN_ACTIVITY]: (record: WorkflowSpanRecord) => Promise<void>;
}
