// The shared sampling vectors, checked in SQL: the database decides every
// case as ts/edge/sampling.ts does (ts/edge/sampling.test.ts checks the same
// file), and the configuration it hands the edge yields the same decisions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import vectors from '../../../../ts/edge/sampling.vectors.json' with { type: 'json' };
import { decideSampling, samplingConfigFromJson, samplingRate } from '../../../../ts/edge/sampling.ts';
import { useTestDatabase } from '../../helpers/test-database.ts';
import { first } from '../../helpers/event-ledger.ts';

const db = useTestDatabase();
const { config } = vectors.rates;

beforeAll(async () => {
  await db.sql`
    insert into tracing.sampling_environments (environment, rate, honor_forced, tail_window, tail_latency_ms)
    values (${config.environment}, ${config.rate}::numeric, ${config.honor_forced}, make_interval(secs => ${config.tail_window_ms} / 1000.0), ${config.tail_latency_ms})`;
  for (const o of config.overrides) {
    await db.sql`insert into tracing.sampling_overrides (environment, kind, pattern, rate) values (${config.environment}, ${o.kind}, ${o.pattern}, ${o.rate}::numeric)`;
  }
});

afterAll(async () => {
  await db.sql`delete from tracing.sampling_environments where environment = ${config.environment}`;
});

describe('sampling vectors in SQL', () => {
  it('computes the randomness, threshold and decision of every case', async () => {
    const rows = await db.sql`
      select v.trace_id, v.rate,
             tracing.trace_randomness(tracing.hex_to_trace_id(v.trace_id))::text as randomness,
             tracing.sampling_threshold(v.rate::numeric)::text as threshold,
             tracing.trace_kept_at(tracing.hex_to_trace_id(v.trace_id), v.rate::numeric) as kept
        from jsonb_to_recordset(${db.sql.json(vectors.decisions)}) as v(trace_id text, rate text)`;
    expect(rows).toEqual(
      vectors.decisions.map(({ trace_id, rate, randomness, threshold, kept }) => ({ trace_id, rate, randomness, threshold, kept })),
    );
  });

  it('resolves rates from overrides as the vector file says', async () => {
    for (const c of vectors.rates.cases) {
      const { rate } = first(
        await db.sql`
        select tracing.sampling_rate(${config.environment}, ${c.operation}, ${c.event_types}::text[])::text as rate`,
      );
      expect(rate, JSON.stringify(c)).toBe(c.rate);
    }
  });

  it('hands the edge a configuration that decides the same', async () => {
    const { json } = first(await db.sql`select tracing.sampling_config(${config.environment}) as json`);
    const edgeConfig = samplingConfigFromJson(json);
    // The settings the edge gets are exactly the ones the vector file declares.
    const declared = samplingConfigFromJson(config);
    expect({ ...edgeConfig, overrides: [] }).toEqual({ ...declared, overrides: [] });
    expect(edgeConfig.overrides).toEqual(expect.arrayContaining(declared.overrides));
    expect(edgeConfig.overrides).toHaveLength(declared.overrides.length);
    for (const c of vectors.rates.cases) {
      expect(String(samplingRate(edgeConfig, { operation: c.operation, eventTypes: c.event_types }))).toBe(c.rate);
    }
    for (const c of vectors.decisions) {
      const edge = decideSampling({ ...edgeConfig, rate: c.rate, overrides: [] }, { traceId: c.trace_id });
      expect(edge.sampled, c.trace_id).toBe(c.kept);
    }
  });

  it('gives the production settings the TypeScript tests decide against', async () => {
    const { json } = first(await db.sql`select tracing.sampling_config('production') as json`);
    const { description: _description, ...production } = vectors.production;
    expect(json).toEqual(production);
  });
});
