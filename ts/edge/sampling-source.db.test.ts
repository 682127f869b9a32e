// databaseSampling against a real database: the edge reads the database's
// sampling settings, caches them, and keeps every trace when it cannot.
import postgres, { type Sql } from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../db/tests/helpers/test-database.ts';
import { databaseSampling } from './sampling-source.ts';
import { KEEP_EVERY_TRACE, samplingConfigFromJson } from './sampling.ts';

const db = useTestDatabase();
const errors: unknown[] = [];
const onError = (error: unknown) => errors.push(error);

/** A clock the test moves by hand. */
function manualClock() {
  let ms = 1_000_000;
  return { now: () => ms, advance: (by: number) => (ms += by) };
}

/** postgres.js client whose tagged-template calls are counted. */
function counting(sql: Sql): { sql: Sql; queries: () => number } {
  let n = 0;
  const counted = new Proxy(sql, {
    apply(target, self, args: Parameters<Sql>) {
      n += 1;
      return Reflect.apply(target, self, args);
    },
  });
  return { sql: counted, queries: () => n };
}

async function useEnvironment(environment: string, rate: string): Promise<void> {
  await db.sql`update tracing.sampling_environments set rate = ${rate}::numeric where environment = ${environment}`;
  await db.sql`update tracing.sampling_settings set environment = ${environment}`;
}

describe('databaseSampling', () => {
  it("gives the database's settings, the same JSON the database hands out", async () => {
    await useEnvironment('production', '0.1');
    const config = await databaseSampling(db.sql, { onError })();
    const [row] = await db.sql`select tracing.sampling_config() as config`;
    expect(config).toEqual(samplingConfigFromJson(row?.config));
    expect(config).toMatchObject({ environment: 'production', rate: '0.1', honorForced: false });
  });

  it('reads them as the writer role that edge functions connect as', async () => {
    await useEnvironment('production', '0.1');
    const config = await db.sql.begin(async (tx) => {
      await tx`set local role tracegres_writer`;
      return databaseSampling(tx as unknown as Sql, { onError })();
    });
    expect(config.rate).toBe('0.1');
  });

  it('serves cached settings within the TTL, then serves the old ones once while reading the new', async () => {
    await useEnvironment('production', '0.1');
    const clock = manualClock();
    const { sql, queries } = counting(db.sql);
    const source = databaseSampling(sql, { ttlMs: 30_000, now: clock.now, onError });
    expect((await source()).rate).toBe('0.1');
    await useEnvironment('production', '0.5');
    clock.advance(29_999);
    expect((await source()).rate).toBe('0.1');
    expect(queries()).toBe(1);
    clock.advance(1);
    // Stale: answered from the cache at once, refreshed in the background.
    expect((await source()).rate).toBe('0.1');
    await expect.poll(async () => (await source()).rate).toBe('0.5');
    expect(queries()).toBe(2);
  });

  it('reads once for many requests that arrive together', async () => {
    const { sql, queries } = counting(db.sql);
    const source = databaseSampling(sql, { onError });
    const configs = await Promise.all(Array.from({ length: 20 }, () => source()));
    expect(new Set(configs).size).toBe(1);
    expect(queries()).toBe(1);
  });

  describe('with no database reachable', () => {
    // A port nothing listens on: connecting is refused at once.
    const unreachable = postgres('postgres://nobody@127.0.0.1:1/none', { max: 1, connect_timeout: 2, onnotice: () => {} });
    afterAll(() => unreachable.end({ timeout: 0 }));

    it('keeps every trace, logs the failure, and waits retryMs before asking again', async () => {
      const clock = manualClock();
      errors.length = 0;
      const { sql, queries } = counting(unreachable);
      const source = databaseSampling(sql, { retryMs: 5_000, now: clock.now, onError });
      expect(await source()).toBe(KEEP_EVERY_TRACE);
      expect(errors).toHaveLength(1);
      clock.advance(4_999);
      expect(await source()).toBe(KEEP_EVERY_TRACE);
      expect(queries()).toBe(1);
      clock.advance(1);
      await source();
      await expect.poll(() => errors.length).toBe(2);
    });
  });

  it('goes on without the settings when the database hangs, and does not wait again', async () => {
    // A query that never answers stands for a hung connection; without the
    // timeout this test would run into vitest's own.
    const hanging = ((..._args: unknown[]) => new Promise(() => {})) as unknown as Sql;
    const source = databaseSampling(hanging, { timeoutMs: 50, onError });
    expect(await source()).toBe(KEEP_EVERY_TRACE);
    // Answered from the cache at once, long before another timeout could fire.
    const waited = new Promise((resolve) => setTimeout(() => resolve('waited'), 25));
    expect(await Promise.race([source(), waited])).toBe(KEEP_EVERY_TRACE);
  });
});
