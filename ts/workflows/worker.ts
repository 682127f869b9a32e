/**
 * A tracegres worker: runs the workflows of workflows.ts and their
 * activities, with the tracing interceptors.
 *
 *   DATABASE_URL=postgres://... TEMPORAL_ADDRESS=localhost:7233 npm run worker
 *
 * Environment: DATABASE_URL (required), TEMPORAL_ADDRESS (default
 * localhost:7233), TEMPORAL_NAMESPACE (default "default"),
 * TEMPORAL_TASK_QUEUE (default "tracegres"), OTEL_SERVICE_NAME (the service
 * on workflow and activity spans, default "tracegres-worker").
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import postgres, { type Sql } from 'postgres';
import { activityTracingInterceptor, defaultServiceName } from './interceptors/activity.ts';
import { DEFAULT_TASK_QUEUE } from './names.ts';
import { createOrganizationBootstrapActivities, type Mailer } from './organization-bootstrap-activities.ts';
import { tracingActivities } from './tracing-activities.ts';

/** The workflow interceptor module, which the SDK loads inside the workflow sandbox. */
export const WORKFLOW_INTERCEPTORS_MODULE = fileURLToPath(new URL('./interceptors/workflow.ts', import.meta.url));
/** The workflows file the SDK bundles. */
export const WORKFLOWS_PATH = fileURLToPath(new URL('./workflows.ts', import.meta.url));

export interface TracegresWorkerOptions {
  connection: NativeConnection;
  sql: Sql;
  namespace?: string;
  taskQueue?: string;
  /** Service name on workflow and activity spans. */
  service?: string;
  mailer?: Mailer;
  /** A prebuilt bundle (bundleWorkflowCode), to skip bundling; must include WORKFLOW_INTERCEPTORS_MODULE. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Further worker options (e.g. maxCachedWorkflows in tests). */
  workerOptions?: Partial<WorkerOptions>;
}

export async function createTracegresWorker(options: TracegresWorkerOptions): Promise<Worker> {
  const service = options.service ?? defaultServiceName();
  return Worker.create({
    ...options.workerOptions,
    connection: options.connection,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue ?? DEFAULT_TASK_QUEUE,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: {
      ...tracingActivities({ sql: options.sql, service }),
      ...createOrganizationBootstrapActivities({ sql: options.sql, mailer: options.mailer }),
    },
    interceptors: {
      // With a prebuilt bundle the interceptor module is already inside it.
      ...(options.workflowBundle ? {} : { workflowModules: [WORKFLOW_INTERCEPTORS_MODULE] }),
      activity: [activityTracingInterceptor({ sql: options.sql, service })],
    },
  });
}

async function main(): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL;
  if (databaseUrl === undefined || databaseUrl === '') {
    console.error('DATABASE_URL is not set: the worker writes events and spans to that database.');
    process.exit(2);
  }
  const address = process.env.TEMPORAL_ADDRESS ?? 'localhost:7233';
  const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
  const taskQueue = process.env.TEMPORAL_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
  const sql = postgres(databaseUrl, { max: 8, onnotice: () => {} });
  const connection = await NativeConnection.connect({ address });
  try {
    const worker = await createTracegresWorker({ connection, sql, namespace, taskQueue });
    console.log(JSON.stringify({ level: 'info', message: 'worker started', temporal: address, namespace, task_queue: taskQueue }));
    // Resolves after SIGINT/SIGTERM, once running tasks are done.
    await worker.run();
  } finally {
    await connection.close();
    await sql.end();
  }
}

const invokedPath = process.argv[1];
if (invokedPath !== undefined && import.meta.url === pathToFileURL(invokedPath).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
