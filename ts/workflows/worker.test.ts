// `npm run worker` as a process: it connects to TEMPORAL_ADDRESS and
// DATABASE_URL, runs workflows with the tracing interceptors, and stops
// cleanly on SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { generateSpanId, generateTraceId } from '../trace-context/ids.ts';
import { organizationBootstrapStarter } from './client.ts';
import { useTemporal } from './testing/temporal-server.ts';
import { eventsOfTrace, tracingClient, uniqueTaskQueue } from './testing/workflow-harness.ts';

const db = useTestDatabase();
const temporal = useTemporal();
const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

let child: ChildProcess | undefined;
afterEach(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
});

describe('worker.ts', () => {
  it('runs the bootstrap workflow from TEMPORAL_ADDRESS and DATABASE_URL, and stops on SIGTERM', async (ctx) => {
    temporal.require(ctx);
    const taskQueue = uniqueTaskQueue('process');
    let output = '';
    child = spawn(TSX, [WORKER], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: temporal.env.address,
        TEMPORAL_NAMESPACE: temporal.env.namespace ?? 'default',
        TEMPORAL_TASK_QUEUE: taskQueue,
        DATABASE_URL: db.url,
        OTEL_SERVICE_NAME: 'worker-process',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));

    const client = tracingClient(temporal.env);
    const traceId = generateTraceId();
    const { workflowId } = await organizationBootstrapStarter(client, { taskQueue })({
      organizationId: randomUUID(),
      organizationName: 'Umbrella',
      adminEmail: 'alice@umbrella.example',
      correlationId: randomUUID(),
      sessionId: null,
      traceId,
      parentSpanId: generateSpanId(),
      traceFlags: 1,
      tracestate: null,
    });
    await client.workflow.getHandle(workflowId).result();
    expect(output).toContain('worker started');

    const events = await eventsOfTrace(db.sql, traceId);
    expect(events).toHaveLength(5);
    const [span] = await db.sql<{ service: string }[]>`
      select service from tracing.spans
      where trace_id = tracing.hex_to_trace_id(${traceId}) and name = 'RunWorkflow:organizationBootstrap'`;
    expect(span?.service).toBe('worker-process');

    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code, output).toBe(0);
  }, 60_000);

  it('refuses to start without DATABASE_URL', async () => {
    const { DATABASE_URL: _unused, ...env } = process.env;
    child = spawn(TSX, [WORKER], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(2);
    expect(stderr).toContain('DATABASE_URL is not set');
  });
});
