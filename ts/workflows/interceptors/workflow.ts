/**
 * Workflow interceptors: read the trace context a workflow was started with,
 * open the workflow's span, and hand each activity a child span.
 *
 * Register with `interceptors: { workflowModules: [workflowInterceptorsModule] }`
 * on the worker (the SDK bundles this file into the workflow sandbox and
 * calls `interceptors()` once per workflow run).
 *
 * Everything here runs inside the sandbox and is replayed, so every id and
 * time comes from the history: span ids from span-ids.ts (workflow id, run
 * id, command sequence number), the span's start from the run's start time
 * and its end from workflow time. A replay schedules the same activities
 * with the same headers.
 *
 * Module state (`current`) is per workflow run: the SDK isolates the module
 * state of each workflow execution, including with a reused V8 context.
 */
import {
  CancellationScope,
  ContinueAsNew,
  isCancellation,
  log,
  proxyActivities,
  workflowInfo,
  type ActivityInput,
  type ContinueAsNewInput,
  type GetLogAttributesInput,
  type LocalActivityInput,
  type Next,
  type StartChildWorkflowExecutionInput,
  type WorkflowExecuteInput,
  type WorkflowInboundCallsInterceptor,
  type WorkflowInterceptorsFactory,
  type WorkflowOutboundCallsInterceptor,
} from '@temporalio/workflow';
import type { SpanStatus } from '../../trace-context/span.ts';
import { TRACE_FLAG_SAMPLED } from '../../trace-context/traceparent.ts';
import { activitySpanId, derivedUuid, workflowSpanId, workflowTraceId } from '../span-ids.ts';
import { carrierFromParams, extractTraceCarrier, traceHeaders, type TraceCarrier } from '../trace-headers.ts';
import { RECORD_WORKFLOW_SPAN_ACTIVITY, type TracingActivities, type WorkflowSpanRecord } from '../workflow-span.ts';

/** Where a run's trace context came from, kept as a span attribute for debugging. */
export type TraceSource = 'headers' | 'params' | 'new';

/** The trace position of the running workflow. */
export interface WorkflowTrace {
  traceId: string;
  /** The workflow's own span. */
  spanId: string;
  /** The starter's span; null when this workflow started the trace. */
  parentSpanId: string | null;
  traceFlags: number;
  tracestate: string | null;
  correlationId: string;
  sessionId: string | null;
  source: TraceSource;
}

interface RunState {
  trace: WorkflowTrace;
  /** The carrier this run was started with, handed on unchanged by continue-as-new. */
  incoming: TraceCarrier | null;
  attributes: Record<string, unknown>;
}

let current: RunState | undefined;

/** The running workflow's trace; throws outside a workflow run by these interceptors. */
export function workflowTrace(): WorkflowTrace {
  if (current === undefined) {
    throw new Error('workflowTrace(): no trace context; is the tracing workflow interceptor module registered on the worker?');
  }
  return { ...current.trace };
}

/**
 * Adds an attribute to the workflow span (e.g. `organization.id`, which files
 * the span under a tenant). No-op without the interceptors, so workflow code
 * stays runnable without them.
 */
export function setWorkflowSpanAttribute(key: string, value: string | number | boolean | null): void {
  if (current !== undefined) current.attributes[key] = value;
}

/**
 * Headers win over explicit params: the client interceptor writes them from
 * the caller's current span, or from the params when there is none, so they
 * are at least as fresh. Params alone cover starters that run no interceptor
 * (the Temporal CLI, another SDK).
 */
function resolveTrace(input: WorkflowExecuteInput): { trace: WorkflowTrace; incoming: TraceCarrier | null } {
  const info = workflowInfo();
  const fromHeaders = extractTraceCarrier(input.headers);
  const fromParams = carrierFromParams(input.args[0]);
  const incoming = fromHeaders ?? fromParams;
  const source: TraceSource = fromHeaders ? 'headers' : fromParams ? 'params' : 'new';
  // Ids missing from the headers may still be in the params (a starter that
  // knows the session but sends no session header).
  const correlationId = incoming?.correlationId ?? fromParams?.correlationId ?? derivedUuid([info.workflowId, info.runId]);
  const sessionId = incoming?.sessionId ?? fromParams?.sessionId ?? null;
  const trace: WorkflowTrace = {
    traceId: incoming?.traceId ?? workflowTraceId(info.workflowId, info.runId),
    spanId: workflowSpanId(info.workflowId, info.runId),
    parentSpanId: incoming?.parentSpanId ?? null,
    traceFlags: incoming?.traceFlags ?? TRACE_FLAG_SAMPLED,
    tracestate: incoming?.tracestate ?? null,
    correlationId,
    sessionId,
    source,
  };
  return { trace, incoming };
}

/** The carrier for work this workflow starts: its own span is the parent. */
function childCarrier(trace: WorkflowTrace): TraceCarrier {
  return {
    traceId: trace.traceId,
    parentSpanId: trace.spanId,
    traceFlags: trace.traceFlags,
    tracestate: trace.tracestate,
    correlationId: trace.correlationId,
    sessionId: trace.sessionId,
  };
}

function statusOf(error: unknown): SpanStatus {
  // Continue-as-new ends this run on purpose; it is not a failure.
  if (error instanceof ContinueAsNew) return { code: 'unset' };
  if (isCancellation(error)) return { code: 'error', message: 'cancelled' };
  return { code: 'error', message: error instanceof Error ? error.message : String(error) };
}

async function recordWorkflowSpan(state: RunState, status: SpanStatus): Promise<void> {
  const info = workflowInfo();
  const start = info.runStartTime;
  // Workflow time: the time of the activation that settled the workflow, the
  // same on every replay.
  const end = new Date();
  const record: WorkflowSpanRecord = {
    traceId: state.trace.traceId,
    spanId: state.trace.spanId,
    parentSpanId: state.trace.parentSpanId,
    name: `RunWorkflow:${info.workflowType}`,
    kind: 'server',
    startTime: start.toISOString(),
    endTime: end.toISOString(),
    durationMs: Math.max(0, end.getTime() - start.getTime()),
    status,
    attributes: {
      'temporal.workflow.type': info.workflowType,
      'temporal.workflow.id': info.workflowId,
      'temporal.run.id': info.runId,
      'temporal.task_queue': info.taskQueue,
      'temporal.namespace': info.namespace,
      'tracegres.trace_source': state.trace.source,
      ...state.attributes,
    },
    traceFlags: state.trace.traceFlags,
    tracestate: state.trace.tracestate,
    correlationId: state.trace.correlationId,
    sessionId: state.trace.sessionId,
  };
  const activities = proxyActivities<TracingActivities>({
    startToCloseTimeout: '30 seconds',
    // A few tries, then give up: the workflow's result must not wait on
    // tracing ("tracing never blocks business logic", docs/design-principles.md).
    retry: { maximumAttempts: 3, initialInterval: '1 second' },
  });
  try {
    // Non-cancellable: a cancelled workflow's span is exactly the one worth keeping.
    await CancellationScope.nonCancellable(() => activities[RECORD_WORKFLOW_SPAN_ACTIVITY](record));
  } catch (error) {
    log.warn('workflow span was not recorded', {
      trace_id: record.traceId,
      span_id: record.spanId,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

class TracingWorkflowInbound implements WorkflowInboundCallsInterceptor {
  async execute(input: WorkflowExecuteInput, next: Next<WorkflowInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const { trace, incoming } = resolveTrace(input);
    const state: RunState = { trace, incoming, attributes: {} };
    current = state;
    let status: SpanStatus = { code: 'unset' };
    try {
      return await next(input);
    } catch (error) {
      status = statusOf(error);
      throw error;
    } finally {
      await recordWorkflowSpan(state, status);
    }
  }
}

class TracingWorkflowOutbound implements WorkflowOutboundCallsInterceptor {
  scheduleActivity(input: ActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>): Promise<unknown> {
    if (current === undefined) return next(input);
    const info = workflowInfo();
    // The span id is fixed here, at scheduling, and travels in the schedule
    // command: every retry of the activity receives the same id.
    const spanId = activitySpanId(info.workflowId, info.runId, input.seq);
    return next({ ...input, headers: { ...input.headers, ...traceHeaders(childCarrier(current.trace), spanId) } });
  }

  scheduleLocalActivity(
    input: LocalActivityInput,
    next: Next<WorkflowOutboundCallsInterceptor, 'scheduleLocalActivity'>,
  ): Promise<unknown> {
    if (current === undefined) return next(input);
    const info = workflowInfo();
    const spanId = activitySpanId(info.workflowId, info.runId, input.seq);
    return next({ ...input, headers: { ...input.headers, ...traceHeaders(childCarrier(current.trace), spanId) } });
  }

  startChildWorkflowExecution(
    input: StartChildWorkflowExecutionInput,
    next: Next<WorkflowOutboundCallsInterceptor, 'startChildWorkflowExecution'>,
  ): Promise<[Promise<string>, Promise<unknown>]> {
    if (current === undefined) return next(input);
    // The child opens its own span under this workflow's span.
    return next({ ...input, headers: { ...input.headers, ...traceHeaders(childCarrier(current.trace)) } });
  }

  continueAsNew(input: ContinueAsNewInput, next: Next<WorkflowOutboundCallsInterceptor, 'continueAsNew'>): Promise<never> {
    if (current === undefined) return next(input);
    // The next run continues this run's place in the trace: a sibling span
    // under the same starter, not a child of a run that has ended. A run
    // that started the trace itself becomes the next run's parent, so the
    // chain still forms one trace.
    const carrier = current.incoming ?? childCarrier(current.trace);
    return next({ ...input, headers: { ...input.headers, ...traceHeaders(carrier) } });
  }

  getLogAttributes(
    input: GetLogAttributesInput,
    next: Next<WorkflowOutboundCallsInterceptor, 'getLogAttributes'>,
  ): Record<string, unknown> {
    const attributes = next(input);
    if (current === undefined) return attributes;
    return {
      ...attributes,
      trace_id: current.trace.traceId,
      span_id: current.trace.spanId,
      correlation_id: current.trace.correlationId,
    };
  }
}

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [new TracingWorkflowInbound()],
  outbound: [new TracingWorkflowOutbound()],
});
