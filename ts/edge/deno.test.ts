/**
 * Runs the pure test files of the edge toolkit and of the trace-context core
 * it is built on under Deno as part of `npm test`, so a Node-only API
 * slipping into ts/edge, ts/trace-context or ts/store fails the build, not a
 * deployment. Deno works offline here: the files it runs import only node:
 * built-ins and relative modules, and type-only imports are erased.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const deno = join(root, 'node_modules', '.bin', 'deno');

/** The folders whose code edge functions run: the toolkit, the core, the Postgres writers and the shared request contracts. */
const RUNTIME_NEUTRAL_DIRS = ['ts/edge', 'ts/trace-context', 'ts/store', 'ts/contracts'];

/** The test files that need no database, relative to the repository root; each imports its API from test-harness.ts. */
const PURE_TEST_FILES = [
  'ts/trace-context/ids.test.ts',
  'ts/trace-context/traceparent.test.ts',
  'ts/trace-context/tracestate.test.ts',
  'ts/trace-context/extract.test.ts',
  'ts/trace-context/span.test.ts',
  'ts/trace-context/span-record.test.ts',
  'ts/trace-context/postgres-json.test.ts',
  'ts/edge/error-response.test.ts',
  'ts/edge/with-tracing.test.ts',
  'ts/edge/json-input.test.ts',
  'ts/edge/sampling.test.ts',
];

describe('the toolkit under Deno', () => {
  it('passes the pure test files', () => {
    const run = spawnSync(
      deno,
      ['test', '--allow-env', '--allow-read', '--no-check', '--node-modules-dir=none', '--no-prompt', ...PURE_TEST_FILES],
      {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
        timeout: 120_000,
      },
    );
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.error, output).toBeUndefined();
    expect(run.status, output).toBe(0);
    // Deno's summary line: "ok | 14 passed (85 steps) | 0 failed (...)".
    const summary = /ok \| (\d+) passed(?: \((\d+) steps?\))? \| 0 failed/.exec(output);
    expect(summary, output).not.toBeNull();
    expect(Number(summary?.[1])).toBeGreaterThan(0);
    expect(Number(summary?.[2] ?? 0)).toBeGreaterThan(0);
    for (const file of PURE_TEST_FILES) expect(output).toContain(file);
  }, 150_000);

  it('covers every test file that needs neither a database nor vitest', () => {
    // *.db.test.ts files need Postgres; this file drives Deno itself.
    const pure = RUNTIME_NEUTRAL_DIRS.flatMap((dir) =>
      readdirSync(join(root, dir))
        .filter((file) => file.endsWith('.test.ts') && !file.endsWith('.db.test.ts') && file !== 'deno.test.ts')
        .map((file) => `${dir}/${file}`),
    ).sort();
    expect(pure).toEqual([...PURE_TEST_FILES].sort());
  });
});

/** Every non-test module of those folders, including the example functions. */
function runtimeNeutralModules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return runtimeNeutralModules(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && entry.name !== 'test-harness.ts' ? [path] : [];
  });
}

describe('toolkit, core and writer imports', () => {
  it('are relative .ts modules or type-only, so the code runs in Deno, Node and workers alike', () => {
    const modules = RUNTIME_NEUTRAL_DIRS.flatMap((dir) => runtimeNeutralModules(join(root, dir)));
    expect(modules.length).toBeGreaterThan(5);
    for (const path of modules) {
      const source = readFileSync(path, 'utf8');
      const statements = source.match(/^(?:import|export)\b[^;]*?\bfrom\s*'[^']+'/gms) ?? [];
      for (const statement of statements) {
        const specifier = /'([^']+)'$/.exec(statement)?.[1] ?? '';
        const typeOnly = /^(?:import|export)\s+type\b/.test(statement);
        const relativeTs = specifier.startsWith('./') || specifier.startsWith('../') ? specifier.endsWith('.ts') : false;
        expect(typeOnly || relativeTs, `${relative(root, path)}: ${statement}`).toBe(true);
      }
      expect(source, relative(root, path)).not.toMatch(/\bimport\s*\(|\brequire\s*\(|\bprocess\.|\bBuffer\b/);
    }
  });
});
