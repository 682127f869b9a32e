/**
 * Client interceptor: puts the starter's trace context into the headers of
 * every workflow it starts, so starting a workflow from traced code needs no
 * manual threading of ids.
 *
 *   const client = new Client({ connection, interceptors: { workflow: [new TracingWorkflowClientInterceptor()] } });
 *   await withTraceContext(span, () => client.workflow.start(organizationBootstrap, { ... }));
 *
 * Where the context comes from, first match wins:
 *   1. `withTraceContext(span, fn)`: the span of the code that starts the
 *      workflow. It is kept in an AsyncLocalStorage, so it reaches the
 *      interceptor through any number of awaits inside `fn`.
 *   2. the `getContext` option: for callers that track their current span
 *      some other way (an OpenTelemetry context, a request object).
 *   3. explicit params: the trace fields of the workflow's first argument
 *      (`traceId`, `parentSpanId`, `correlationId`, `sessionId`, `traceFlags`,
 *      `tracestate`, as in OrganizationBootstrapParams).
 * With none of them the headers are left alone and the workflow starts a
 * trace of its own.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type {
  Next,
  WorkflowClientInterceptor,
  WorkflowSignalWithStartInput,
  WorkflowStartInput,
  WorkflowStartOutput,
  WorkflowStartUpdateWithStartInput,
  WorkflowStartUpdateWithStartOutput,
} from '@temporalio/client';
import { carrierFromParams, carrierFromSpan, traceHeaders, type SpanLike, type TraceCarrier } from '../trace-headers.ts';

export type { SpanLike };

const ambient = new AsyncLocalStorage<TraceCarrier>();

/** Runs `fn` with `span` as the parent of every workflow started inside it. */
export function withTraceContext<T>(span: SpanLike, fn: () => T): T {
  return ambient.run(carrierFromSpan(span), fn);
}

/** The carrier set by the innermost withTraceContext, if any. */
export function currentTraceCarrier(): TraceCarrier | undefined {
  return ambient.getStore();
}

export interface TracingClientInterceptorOptions {
  /** The caller's current span, for applications that track it themselves. */
  getContext?: () => SpanLike | undefined;
}

export class TracingWorkflowClientInterceptor implements WorkflowClientInterceptor {
  constructor(private readonly options: TracingClientInterceptorOptions = {}) {}

  private carrier(args: readonly unknown[]): TraceCarrier | null {
    const fromAmbient = currentTraceCarrier();
    if (fromAmbient !== undefined) return fromAmbient;
    const span = this.options.getContext?.();
    if (span !== undefined) return carrierFromSpan(span);
    return carrierFromParams(args[0]);
  }

  startWithDetails(input: WorkflowStartInput, next: Next<WorkflowClientInterceptor, 'startWithDetails'>): Promise<WorkflowStartOutput> {
    const carrier = this.carrier(input.options.args);
    if (carrier === null) return next(input);
    return next({ ...input, headers: { ...input.headers, ...traceHeaders(carrier) } });
  }

  signalWithStart(input: WorkflowSignalWithStartInput, next: Next<WorkflowClientInterceptor, 'signalWithStart'>): Promise<string> {
    const carrier = this.carrier(input.options.args);
    if (carrier === null) return next(input);
    return next({ ...input, headers: { ...input.headers, ...traceHeaders(carrier) } });
  }

  startUpdateWithStart(
    input: WorkflowStartUpdateWithStartInput,
    next: Next<WorkflowClientInterceptor, 'startUpdateWithStart'>,
  ): Promise<WorkflowStartUpdateWithStartOutput> {
    const carrier = this.carrier(input.workflowStartOptions.args);
    if (carrier === null) return next(input);
    return next({ ...input, workflowStartHeaders: { ...input.workflowStartHeaders, ...traceHeaders(carrier) } });
  }
}
