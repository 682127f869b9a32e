/**
 * Activity interceptor: gives each activity its span and the trace context
 * the workflow sent, and records the span when the activity is done.
 *
 * Register with `interceptors: { activity: [activityTracingInterceptor({ sql })] }`
 * on the worker. Inside an activity, `activityTraceContext()` returns the
 * context; events go through `emitActivityEvent` (activity-events.ts).
 *
 * One span per activity, not per attempt. Its id was fixed by the workflow
 * when it scheduled the activity (span-ids.ts) and reaches every attempt in
 * the same header, so retries share it; tracing.record_spans is idempotent
 * on (trace_id, span_id). The span is written by the attempt that ends the
 * activity: a success, or a failure after which no retry will come (the
 * last allowed attempt, a non-retryable error, a cancellation). A failure
 * that will be retried writes nothing: the retry will, and a span that said
 * "error" before the activity went on to succeed would mislead. The span
 * starts when the workflow first scheduled the activity, so it covers the
 * time spent queued and every attempt.
 */
import { ApplicationFailure, CancelledFailure, Context, type Info } from '@temporalio/activity';
import type {
  ActivityExecuteInput,
  ActivityInboundCallsInterceptor,
  ActivityInterceptorsFactory,
  ActivityOutboundCallsInterceptor,
  GetLogAttributesInput,
  Next,
} from '@temporalio/worker';
import type { Sql } from 'postgres';
import { recordSpan } from '../../store/record-span.ts';
import { endSpan, type FinishedSpan, type Span, type SpanStatus } from '../../trace-context/span.ts';
import { derivedUuid, fallbackActivitySpanId, workflowTraceId } from '../span-ids.ts';
import { extractActivitySpanId, extractTraceCarrier } from '../trace-headers.ts';
import { RECORD_WORKFLOW_SPAN_ACTIVITY } from '../workflow-span.ts';

/** The trace context of the running activity. */
export interface ActivityTraceContext {
  /** The activity's open span; add attributes to it (e.g. `organization.id`). Emit events with it. */
  span: Span;
  traceId: string;
  spanId: string;
  /** The workflow's span, or null when the activity came without trace context. */
  parentSpanId: string | null;
  correlationId: string;
  sessionId: string | null;
  workflowId: string;
  runId: string;
  activityId: string;
  activityType: string;
  attempt: number;
  /**
   * The idempotency key of an event this activity emits: the same for every
   * attempt, different for every activity execution. `discriminator` tells
   * apart several events of one type from one activity.
   */
  idempotencyKey(eventType: string, discriminator?: string): string;
}

export interface ActivityTracingOptions {
  /** Where activity spans are recorded (tracing.record_spans). */
  sql: Sql;
  /** The service name on activity and workflow spans; defaults to OTEL_SERVICE_NAME, else "tracegres-worker". */
  service?: string;
}

const contexts = new WeakMap<Context, ActivityTraceContext>();

/** The running activity's trace context. Throws outside an activity run by the tracing interceptor. */
export function activityTraceContext(): ActivityTraceContext {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    throw new Error('activityTraceContext() called outside an activity');
  }
  const trace = contexts.get(ctx);
  if (trace === undefined) {
    throw new Error(
      "activityTraceContext(): no trace context; register activityTracingInterceptor() in the worker's interceptors.activity",
    );
  }
  return trace;
}

export function defaultServiceName(): string {
  const fromEnv = typeof process !== 'undefined' ? process.env.OTEL_SERVICE_NAME : undefined;
  return fromEnv !== undefined && fromEnv.trim() !== '' ? fromEnv.trim() : 'tracegres-worker';
}

function executionOf(info: Info): { workflowId: string; runId: string } {
  // Standalone activities (started by a client, not a workflow) have no
  // workflow execution; their own run id keeps their keys apart.
  return info.workflowExecution ?? { workflowId: '', runId: info.activityRunId ?? info.activityId };
}

function buildContext(info: Info, input: ActivityExecuteInput, service: string): ActivityTraceContext {
  const { workflowId, runId } = executionOf(info);
  const carrier = extractTraceCarrier(input.headers);
  // Without headers (a workflow running without the tracing interceptors)
  // the ids are derived from the execution, the same way the workflow side
  // would have: every retry still lands on one span, and the activities of
  // one run still share one trace.
  const traceId = carrier?.traceId ?? workflowTraceId(workflowId, runId);
  const spanId = extractActivitySpanId(input.headers) ?? fallbackActivitySpanId(workflowId, runId, info.activityId);
  const correlationId = carrier?.correlationId ?? derivedUuid([workflowId, runId]);
  const sessionId = carrier?.sessionId ?? null;

  const now = Date.now();
  const scheduled = info.scheduledTimestampMs;
  const startMs = Number.isFinite(scheduled) && scheduled > 0 && scheduled <= now ? scheduled : now;
  const span: Span = {
    traceId,
    spanId,
    parentSpanId: carrier?.parentSpanId ?? null,
    name: `RunActivity:${info.activityType}`,
    kind: 'server',
    service,
    attributes: {
      'temporal.activity.type': info.activityType,
      'temporal.activity.id': info.activityId,
      'temporal.activity.attempt': info.attempt,
      'temporal.workflow.id': workflowId,
      'temporal.run.id': runId,
      'temporal.workflow.type': info.workflowType ?? null,
      'temporal.task_queue': info.taskQueue,
    },
    traceFlags: carrier?.traceFlags ?? 0x01,
    tracestate: carrier?.tracestate ?? null,
    correlationId,
    sessionId,
    startTime: new Date(startMs),
    // endSpan measures from startMonotonic; shifting it back by the time
    // already spent since scheduling makes the duration cover that time too.
    startMonotonic: performance.now() - (now - startMs),
  };

  const prefix = `${workflowId}/${runId}/${info.activityId}`;
  return {
    span,
    traceId,
    spanId,
    parentSpanId: span.parentSpanId,
    correlationId,
    sessionId,
    workflowId,
    runId,
    activityId: info.activityId,
    activityType: info.activityType,
    attempt: info.attempt,
    idempotencyKey(eventType: string, discriminator?: string): string {
      return discriminator === undefined ? `${prefix}/${eventType}` : `${prefix}/${eventType}/${discriminator}`;
    },
  };
}

function errorType(error: unknown): string | undefined {
  if (error instanceof ApplicationFailure) return error.type ?? undefined;
  return error instanceof Error ? error.name : undefined;
}

/** True when Temporal will not run another attempt after this failure. */
export function isFinalFailure(info: Pick<Info, 'attempt' | 'retryPolicy'>, error: unknown): boolean {
  if (error instanceof ApplicationFailure && error.nonRetryable) return true;
  if (error instanceof CancelledFailure) return true;
  const policy = info.retryPolicy;
  const maximumAttempts = policy?.maximumAttempts ?? 0;
  // 0 (or unset) means unlimited attempts.
  if (maximumAttempts > 0 && info.attempt >= maximumAttempts) return true;
  const type = errorType(error);
  return type !== undefined && (policy?.nonRetryableErrorTypes ?? []).includes(type);
}

function failureStatus(error: unknown): SpanStatus {
  return { code: 'error', message: error instanceof Error ? error.message : String(error) };
}

class TracingActivityInbound implements ActivityInboundCallsInterceptor {
  constructor(
    private readonly ctx: Context,
    private readonly options: ActivityTracingOptions,
  ) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const info = this.ctx.info;
    // The activity that records workflow spans is tracing itself; a span of
    // its own would only be noise in every trace.
    if (info.activityType === RECORD_WORKFLOW_SPAN_ACTIVITY) return next(input);

    const trace = buildContext(info, input, this.options.service ?? defaultServiceName());
    contexts.set(this.ctx, trace);
    let result: unknown;
    try {
      result = await next(input);
    } catch (error) {
      if (isFinalFailure(info, error)) {
        const err = error instanceof Error ? error : new Error(String(error));
        trace.span.attributes['exception.type'] = errorType(error) ?? err.name;
        trace.span.attributes['exception.message'] = err.message;
        await this.record(endSpan(trace.span, failureStatus(error)));
      }
      throw error;
    }
    await this.record(endSpan(trace.span, { code: 'unset' }));
    return result;
  }

  private async record(span: FinishedSpan): Promise<void> {
    // recordSpan never throws and logs its own failures: a span that could
    // not be written must not fail an activity that did its work.
    await recordSpan(this.options.sql, span);
  }
}

class TracingActivityOutbound implements ActivityOutboundCallsInterceptor {
  constructor(private readonly ctx: Context) {}

  getLogAttributes(input: GetLogAttributesInput, next: Next<ActivityOutboundCallsInterceptor, 'getLogAttributes'>) {
    const attributes = next(input);
    const trace = contexts.get(this.ctx);
    if (trace === undefined) return attributes;
    return { ...attributes, trace_id: trace.traceId, span_id: trace.spanId, correlation_id: trace.correlationId };
  }
}

/** The worker's `interceptors.activity` entry. */
export function activityTracingInterceptor(options: ActivityTracingOptions): ActivityInterceptorsFactory {
  return (ctx) => ({ inbound: new TracingActivityInbound(ctx, options), outbound: new TracingActivityOutbound(ctx) });
}
