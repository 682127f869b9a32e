/**
 * The real Jaeger v2 binary, run for tests and benchmarks: as a query-only
 * front end on a remote storage (tracegres), or on its own memory or Badger
 * storage with an OTLP receiver.
 *
 * The binary is looked for in this order:
 *   1. JAEGER_BINARY_PATH (what .ci/run sets)
 *   2. the tracegres cache, where .ci/install-jaeger.sh puts it:
 *      $TRACEGRES_CACHE/bin/jaeger-v1.76.0, by default under $HOME/.cache/tracegres
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../database/embedded-postgres.ts';

export const JAEGER_VERSION = 'v1.76.0';

export const HOW_TO_GET_JAEGER =
  'Build it with `.ci/install-jaeger.sh` (needs Go; about 6 minutes on 2 cores, into ' +
  `$HOME/.cache/tracegres/bin/jaeger-${JAEGER_VERSION}, where these tests look), or set JAEGER_BINARY_PATH to one.`;

/** The path of the Jaeger binary on this machine, or null. */
export function findJaegerBinary(env: NodeJS.ProcessEnv = process.env): string | null {
  const explicit = env.JAEGER_BINARY_PATH;
  const cache = env.TRACEGRES_CACHE || path.join(env.HOME ?? os.homedir(), '.cache', 'tracegres');
  const candidate = explicit || path.join(cache, 'bin', `jaeger-${JAEGER_VERSION}`);
  try {
    accessSync(candidate, constants.X_OK);
    return candidate;
  } catch {
    // A path that was asked for and is wrong is a configuration error, not a reason to skip.
    if (explicit) throw new Error(`JAEGER_BINARY_PATH=${explicit} is not an executable file`);
    return null;
  }
}

/** A backend of Jaeger's `jaeger_storage` extension, as its configuration spells it. */
export type JaegerBackend =
  /** writer: where Jaeger sends what its OTLP receiver takes (OTLP TraceService/Export); without it, Jaeger only reads. */
  | { grpc: { endpoint: string; headers?: Record<string, string>; writer?: { endpoint: string; headers?: Record<string, string> } } }
  | { memory: Record<string, never> }
  /** consistency: Badger syncs every write to disk (off, as Jaeger ships it, unless asked). */
  | { badger: { consistency?: boolean } };

export interface RunningJaeger {
  /** Jaeger's HTTP API and UI, e.g. http://127.0.0.1:16686. */
  queryUrl: string;
  /** Its OTLP/HTTP receiver's /v1/traces, unless it only reads a remote storage. */
  otlpUrl?: string;
  close(): Promise<void>;
}

/**
 * Starts the binary with a configuration of its own and waits until its
 * query service answers /api/services (for a remote storage: until the
 * storage answered it too).
 */
export async function startJaeger(
  binary: string,
  backend: JaegerBackend,
  options: {
    /**
     * Jaeger's multi-tenancy, on the query service and the remote storage:
     * every request must carry `header`, which Jaeger passes on to the
     * storage; `probeTenant` is the one the start-up check sends.
     */
    tenancy?: { header: string; probeTenant: string };
  } = {},
): Promise<RunningJaeger> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tracegres-jaeger-'));
  const [httpPort, grpcPort, otlpPort] = [await freePort(), await freePort(), await freePort()];
  // A query-only front end: a remote storage without a writer.
  const readOnly = 'grpc' in backend && !backend.grpc.writer;
  // Jaeger 2.13's tenancy options carry no configuration tags: their keys are the Go field names.
  const tenancy = options.tenancy ? { multi_tenancy: { Enabled: true, Header: options.tenancy.header } } : {};
  let store: Record<string, unknown>;
  if ('grpc' in backend) {
    const { endpoint, headers, writer } = backend.grpc;
    store = {
      grpc: {
        endpoint,
        tls: { insecure: true },
        ...(headers ? { headers } : {}),
        ...(writer
          ? { writer: { endpoint: writer.endpoint, tls: { insecure: true }, ...(writer.headers ? { headers: writer.headers } : {}) } }
          : {}),
        ...tenancy,
      },
    };
  } else if ('memory' in backend) {
    store = { memory: { max_traces: 10_000_000 } };
  } else {
    store = {
      badger: {
        directories: { keys: path.join(dir, 'keys'), values: path.join(dir, 'values') },
        ephemeral: false,
        consistency: backend.badger.consistency ?? false,
        ttl: { spans: '48h' },
      },
    };
  }
  // JSON is YAML: the configuration the binary reads. A query-only front end
  // still needs a pipeline, so it gets one that does nothing.
  const config = {
    service: {
      extensions: ['jaeger_storage', 'jaeger_query'],
      pipelines: {
        traces: readOnly
          ? { receivers: ['nop'], exporters: ['nop'] }
          : { receivers: ['otlp'], processors: ['batch'], exporters: ['jaeger_storage_exporter'] },
      },
      telemetry: { metrics: { level: 'none' }, logs: { level: 'warn' } },
    },
    extensions: {
      jaeger_storage: { backends: { store } },
      jaeger_query: {
        storage: { traces: 'store' },
        http: { endpoint: `127.0.0.1:${httpPort}` },
        grpc: { endpoint: `127.0.0.1:${grpcPort}` },
        ...tenancy,
      },
    },
    receivers: readOnly ? { nop: {} } : { otlp: { protocols: { http: { endpoint: `127.0.0.1:${otlpPort}` } } } },
    processors: readOnly ? {} : { batch: {} },
    exporters: readOnly ? { nop: {} } : { jaeger_storage_exporter: { trace_storage: 'store' } },
  };
  const configPath = path.join(dir, 'config.yaml');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const child: ChildProcess = spawn(binary, ['--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  };
  const queryUrl = `http://127.0.0.1:${httpPort}`;
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null) {
      await close();
      throw new Error(`Jaeger exited with ${child.exitCode}: ${stderr}`);
    }
    try {
      const response = await fetch(`${queryUrl}/api/services`, {
        signal: AbortSignal.timeout(2_000),
        headers: options.tenancy ? { [options.tenancy.header]: options.tenancy.probeTenant } : {},
      });
      await response.arrayBuffer();
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() - started > 30_000) {
      await close();
      throw new Error(`Jaeger did not answer ${queryUrl}/api/services within 30 s: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { queryUrl, otlpUrl: readOnly ? undefined : `http://127.0.0.1:${otlpPort}/v1/traces`, close };
}
