/**
 * One test API for two runners: the pure tests of the trace-context core and
 * of the edge toolkit run under vitest (npm test) and, unchanged, under
 * `deno test`, which is how we know that code really is runtime-neutral.
 * Deno implements node:test and node:assert, so only `describe`/`it` need
 * choosing; the module name is computed so Deno's module graph never tries
 * to resolve "vitest".
 */
export { default as assert } from 'node:assert/strict';

type TestBody = () => void | Promise<void>;
export type Describe = (name: string, body: () => void) => void;
export type It = (name: string, body: TestBody) => void;

export const runtime: 'deno' | 'node' = 'Deno' in globalThis ? 'deno' : 'node';

const runnerModule = runtime === 'deno' ? 'node:test' : ['vit', 'est'].join('');
const runner = (await import(/* @vite-ignore */ runnerModule)) as { describe: Describe; it: It };

export const describe: Describe = runner.describe;
export const it: It = runner.it;
