// Where the Temporal tests look for a server binary.
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTemporalCli } from './temporal-server.ts';

let root: string;

async function fakeBinary(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'temporal');
  await writeFile(file, '#!/bin/sh\nexit 0\n');
  await chmod(file, 0o755);
  return file;
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'temporal-cli-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('findTemporalCli', () => {
  it('prefers TEMPORAL_CLI_PATH, then the tracegres cache, then PATH', async () => {
    const home = path.join(root, 'home');
    const onPath = await fakeBinary(path.join(root, 'bin'));
    const explicit = await fakeBinary(path.join(root, 'explicit'));
    expect(findTemporalCli({ HOME: home, PATH: path.join(root, 'bin') })).toBe(onPath);
    const cached = await fakeBinary(path.join(home, '.cache', 'tracegres', 'bin'));
    expect(findTemporalCli({ HOME: home, PATH: path.join(root, 'bin') })).toBe(cached);
    expect(findTemporalCli({ HOME: home, PATH: '', TEMPORAL_CLI_PATH: explicit })).toBe(explicit);
  });

  it('looks in TRACEGRES_CACHE instead of the default cache when it is set', async () => {
    const cache = path.join(root, 'ci-cache');
    const cached = await fakeBinary(path.join(cache, 'bin'));
    expect(findTemporalCli({ HOME: path.join(root, 'home'), PATH: '', TRACEGRES_CACHE: cache })).toBe(cached);
  });

  it('finds nothing when there is nothing, and rejects a wrong explicit path', () => {
    expect(findTemporalCli({ HOME: path.join(root, 'empty'), PATH: path.join(root, 'nowhere') })).toBeNull();
    expect(() => findTemporalCli({ TEMPORAL_CLI_PATH: path.join(root, 'missing') })).toThrow(/TEMPORAL_CLI_PATH/);
  });
});
