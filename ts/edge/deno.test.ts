/**
 * Runs the toolkit's pure test files under Deno as part of `npm test`, so a
 * Node-only API slipping into ts/edge fails the build, not a deployment.
 * Deno works offline here: the files it runs import only node: built-ins and
 * relative modules, and type-only imports are erased.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const deno = join(root, 'node_modules', '.bin', 'deno');

/** The test files that need no database; each imports its API from test-harness.ts. */
const PURE_TEST_FILES = [
  'tracing-context.test.ts',
  'error-response.test.ts',
  'with-tracing.test.ts',
  'record-span.test.ts',
  'json-input.test.ts',
  'sampling.test.ts',
];

describe('the toolkit under Deno', () => {
  it(
    'passes the pure test files',
    () => {
      const files = PURE_TEST_FILES.map((file) => relative(root, join(here, file)));
      const run = spawnSync(
        deno,
        ['test', '--allow-env', '--allow-read', '--no-check', '--node-modules-dir=none', '--no-prompt', ...files],
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
    },
    150_000,
  );

  it('covers every test file that needs neither a database nor vitest', () => {
    // *.db.test.ts files need Postgres; this file drives Deno itself.
    const pure = readdirSync(here)
      .filter((file) => file.endsWith('.test.ts') && !file.endsWith('.db.test.ts') && file !== 'deno.test.ts')
      .sort();
    expect(pure).toEqual([...PURE_TEST_FILES].sort());
  });
});

/** Every non-test module of the toolkit, including the example functions. */
function toolkitModules(dir = here): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return toolkitModules(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && entry.name !== 'test-harness.ts' ? [path] : [];
  });
}

describe('toolkit imports', () => {
  it('are relative .ts modules or type-only, so the code runs in Deno, Node and workers alike', () => {
    const modules = toolkitModules();
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
