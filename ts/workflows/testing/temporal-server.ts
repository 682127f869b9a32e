/**
 * A real Temporal server for tests: the Temporal CLI's dev server, started
 * through @temporalio/testing.
 *
 * The SDK's createLocal() downloads a server binary at run time, which
 * cannot work on machines without internet. So a binary already on the
 * machine is preferred, looked for in this order:
 *   1. TEMPORAL_CLI_PATH
 *   2. the tracegres cache, where .ci/install-temporal.sh puts it:
 *      $TRACEGRES_CACHE/bin/temporal, by default $HOME/.cache/tracegres/bin/temporal
 *   3. `temporal` on PATH
 * With none, the SDK's download is tried. When that fails too, tests using
 * the server skip with a message saying how to get one, except under CI
 * (CI set), where they fail: CI installs a server and must run them.
 */
import { accessSync, constants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { afterAll, beforeAll } from 'vitest';

export const HOW_TO_GET_A_SERVER =
  'Install the Temporal CLI: `.ci/install-temporal.sh` (needs Go; builds github.com/temporalio/cli v1.5.1 into ' +
  '$HOME/.cache/tracegres/bin/temporal, where these tests look), or put a `temporal` binary on PATH, ' +
  'or set TEMPORAL_CLI_PATH to one.';

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The path of a Temporal CLI binary on this machine, or null. */
export function findTemporalCli(env: NodeJS.ProcessEnv = process.env): string | null {
  const explicit = env.TEMPORAL_CLI_PATH;
  if (explicit !== undefined && explicit !== '') {
    // A path that was asked for and is wrong is a configuration error, not a reason to look elsewhere.
    if (!isExecutable(explicit)) throw new Error(`TEMPORAL_CLI_PATH=${explicit} is not an executable file`);
    return explicit;
  }
  const cache = env.TRACEGRES_CACHE || path.join(env.HOME ?? os.homedir(), '.cache', 'tracegres');
  const cached = path.join(cache, 'bin', 'temporal');
  if (isExecutable(cached)) return cached;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, 'temporal');
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

export type TemporalStart = { ok: true; env: TestWorkflowEnvironment; source: string } | { ok: false; reason: string };

/**
 * Workers log every state change at INFO; in tests only warnings and errors
 * say something. The runtime takes its logger once, before first use, so
 * this runs before any server or worker exists (and is a no-op after).
 * TEMPORAL_TEST_LOG_LEVEL=DEBUG brings the detail back when debugging.
 */
const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'] as const;

function quietRuntime(): void {
  try {
    const wanted = process.env.TEMPORAL_TEST_LOG_LEVEL?.toUpperCase();
    const level = LOG_LEVELS.find((l) => l === wanted) ?? 'WARN';
    Runtime.install({ logger: new DefaultLogger(level) });
  } catch {
    // Already installed by an earlier call in this process.
  }
}

/** Starts a dev server; under CI a failure throws instead of returning a reason to skip. */
export async function startTemporal(): Promise<TemporalStart> {
  quietRuntime();
  const cli = findTemporalCli();
  const inCi = Boolean(process.env.CI);
  try {
    if (cli !== null) {
      const env = await TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'existing-path', path: cli } } });
      return { ok: true, env, source: cli };
    }
    const env = await TestWorkflowEnvironment.createLocal();
    return { ok: true, env, source: 'downloaded by the SDK' };
  } catch (error) {
    const cause = error instanceof Error ? error.message : String(error);
    const reason =
      cli !== null
        ? `the Temporal server at ${cli} did not start (${cause})`
        : `no Temporal server binary was found and the SDK could not download one (${cause}). ${HOW_TO_GET_A_SERVER}`;
    if (inCi) throw new Error(`CI requires the Temporal tests: ${reason}`);
    return { ok: false, reason };
  }
}

export interface TemporalFixture {
  /** The running environment; only inside tests that did not skip. */
  readonly env: TestWorkflowEnvironment;
  /** Call first in every test: skips it (with the reason) when no server could be started. */
  require(ctx: { skip: (note?: string) => void }): void;
}

/** Registers hooks that start one Temporal dev server for this file and stop it afterwards. */
export function useTemporal(): TemporalFixture {
  let started: TemporalStart | undefined;
  let warned = false;
  beforeAll(async () => {
    started = await startTemporal();
  }, 120_000);
  afterAll(async () => {
    if (started?.ok) await started.env.teardown();
  });
  return {
    get env() {
      if (!started?.ok) throw new Error('the Temporal server is not running');
      return started.env;
    },
    require(ctx) {
      if (started === undefined) throw new Error('useTemporal(): beforeAll has not run');
      if (!started.ok) {
        if (!warned) {
          console.warn(`Skipping Temporal tests: ${started.reason}`);
          warned = true;
        }
        ctx.skip(started.reason);
      }
    },
  };
}
