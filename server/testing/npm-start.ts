// `npm start` as a child process, for the tests that run it end to end: the
// server on its own embedded Postgres (data folder and port given), every
// listening port chosen by the system, no DATABASE_URL or JWT secret from
// the caller's environment, resolved once it logs that it is ready.
import { spawn, type ChildProcess } from 'node:child_process';
import { projectRoot } from '../database/migrate.ts';

export interface NpmStart {
  child: ChildProcess;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
  /** Ctrl-C, then its exit code. */
  stop(): Promise<number | null>;
}

export async function startNpmStart(options: {
  dataDir: string;
  pgPort: number;
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
}): Promise<NpmStart> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    TRACEGRES_OTLP_GRPC_PORT: '0',
    TRACEGRES_JAEGER_STORAGE_PORT: '0',
    TRACEGRES_DATA_DIR: options.dataDir,
    TRACEGRES_EMBEDDED_PG_PORT: String(options.pgPort),
    ...options.env,
  };
  delete env.DATABASE_URL;
  delete env.TRACEGRES_JWT_SECRET;
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: projectRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "ready" within ${readyTimeoutMs / 1000} s:\n${output}`)), readyTimeoutMs);
    const check = () => {
      if (output.includes('ready;')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code}:\n${output}`));
    });
  });
  return {
    child,
    output: () => output,
    stop() {
      if (child.exitCode !== null) return Promise.resolve(child.exitCode);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGINT');
      return exited;
    },
  };
}
