/**
 * Starting traced workflows: a Temporal client with the tracing interceptor,
 * and the `startWorkflow` the organization-bootstrap edge function takes.
 */
import { Client, Connection, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { TracingWorkflowClientInterceptor, type TracingClientInterceptorOptions } from './interceptors/client.ts';
import { DEFAULT_TASK_QUEUE, organizationBootstrapWorkflowId } from './names.ts';
import type { StartBootstrapWorkflow } from './organization-bootstrap-types.ts';
import type { organizationBootstrap } from './organization-bootstrap.ts';

export interface TracingClientOptions extends TracingClientInterceptorOptions {
  /** host:port of the Temporal frontend; defaults to TEMPORAL_ADDRESS, else localhost:7233. */
  address?: string;
  /** Defaults to TEMPORAL_NAMESPACE, else "default". */
  namespace?: string;
  /** An existing connection to use instead of opening one. */
  connection?: Connection;
}

/** A client whose workflow starts carry the caller's trace context in Temporal headers. */
export async function createTracingClient(options: TracingClientOptions = {}): Promise<Client> {
  const connection =
    options.connection ?? (await Connection.connect({ address: options.address ?? process.env.TEMPORAL_ADDRESS ?? 'localhost:7233' }));
  return new Client({
    connection,
    namespace: options.namespace ?? process.env.TEMPORAL_NAMESPACE ?? 'default',
    interceptors: { workflow: [new TracingWorkflowClientInterceptor({ getContext: options.getContext })] },
  });
}

export interface BootstrapStarterOptions {
  /** Defaults to TEMPORAL_TASK_QUEUE, else DEFAULT_TASK_QUEUE. */
  taskQueue?: string;
}

/**
 * The edge function's `startWorkflow`: starts organizationBootstrap with the
 * params as its argument. The params carry the edge span's trace fields, so
 * the client interceptor writes them into the headers even with no ambient
 * context. A second request for the same organization gets the workflow
 * already running for it.
 */
export function organizationBootstrapStarter(client: Client, options: BootstrapStarterOptions = {}): StartBootstrapWorkflow {
  const taskQueue = options.taskQueue ?? process.env.TEMPORAL_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
  return async (params) => {
    const workflowId = organizationBootstrapWorkflowId(params.organizationId);
    try {
      await client.workflow.start<typeof organizationBootstrap>('organizationBootstrap', {
        args: [params],
        taskQueue,
        workflowId,
      });
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    }
    return { workflowId };
  };
}
