// api.get_trace_timeline against the function it replaced
// (bench/trace-timeline-baseline.sql), in one run: traces of 10, 100, 1,000
// (fanout 8, depth 4; fanout 2, depth 9) and 10,000 spans and a 1,000-deep
// chain. Samples alternate between the two, so both see the same load;
// each is the statement's execution time in Postgres (EXPLAIN ANALYZE,
// timing off). The two must return the same rows, or the figures mean
// nothing and the suite fails.
//
// Traces of 50,000 and 100,000 spans show the bound on work: the baseline
// builds the whole tree before it limits the answer; get_trace_timeline
// builds the tree of the earliest 10,000 spans only. Their rows differ by
// design, so there each must answer 10,000 rows, and only the current one
// flags the trace as cut.
import { readFile } from 'node:fs/promises';
import type postgres from 'postgres';
import { summarize, type BenchContext } from './context.ts';

type SeedTrace = (sql: postgres.Sql, label: string, spans: number, fanout: number) => Promise<void>;

interface Shape {
  label: string;
  spans: number;
  fanout: number;
  samples: number;
  target_p99_ms?: number;
  /** Larger than the timeline reads: the answer is cut to 10,000 rows. */
  cut?: boolean;
}

const TIMELINE_ROWS = 10_000;

// `thousand` and `tenthousand` are seeded by the caller.
const shapes: Record<string, Shape & { seeded?: boolean }> = {
  spans_10: { label: 'timeline-ten', spans: 10, fanout: 8, samples: 100 },
  spans_100: { label: 'timeline-hundred', spans: 100, fanout: 8, samples: 100 },
  spans_1000_fanout_8: { label: 'thousand', spans: 1000, fanout: 8, samples: 100, target_p99_ms: 5, seeded: true },
  spans_1000_fanout_2: { label: 'timeline-binary', spans: 1000, fanout: 2, samples: 100, target_p99_ms: 5 },
  spans_10000: { label: 'tenthousand', spans: 10_000, fanout: 8, samples: 20, target_p99_ms: 50, seeded: true },
  chain_1000_deep: { label: 'timeline-chain', spans: 1000, fanout: 1, samples: 50, target_p99_ms: 40 },
  spans_50000_cut: { label: 'timeline-fifty-thousand', spans: 50_000, fanout: 8, samples: 5, cut: true },
  spans_100000_cut: { label: 'timeline-hundred-thousand', spans: 100_000, fanout: 8, samples: 5, cut: true },
};

export async function compareTimelines(ctx: BenchContext, sql: postgres.Sql, seedTrace: SeedTrace): Promise<Record<string, unknown>> {
  await sql.unsafe(await readFile(new URL('./trace-timeline-baseline.sql', import.meta.url), 'utf8'));
  for (const shape of Object.values(shapes)) if (!shape.seeded) await seedTrace(sql, shape.label, shape.spans, shape.fanout);
  await sql.unsafe('analyze tracing.spans');

  const executionMs = async (statement: string) => {
    const [plan] = await sql.unsafe(`explain (analyze, format json, timing off) ${statement}`);
    return (plan!['QUERY PLAN'] as Array<{ 'Execution Time': number }>)[0]!['Execution Time'];
  };
  const out: Record<string, unknown> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    ctx.log(`timeline: ${name}`);
    const [row] = await sql`select md5(${shape.label}) as id`;
    const id = row!.id as string;
    const current = `select * from api.get_trace_timeline('${id}')`;
    const baseline = `select * from tracing.trace_timeline_baseline(tracing.hex_to_trace_id('${id}')) t order by t.position limit 10000`;
    if (shape.cut) {
      const [answer] = await sql.unsafe(`
        select (select count(*) from (${current}) c where c.trace_cut_at_limit)::int as current_cut_rows,
               (select count(*) from (${baseline}) b)::int as baseline_rows`);
      if (answer!.current_cut_rows !== TIMELINE_ROWS || answer!.baseline_rows !== TIMELINE_ROWS) {
        throw new Error(`timeline ${name}: expected ${TIMELINE_ROWS} rows, the current ones flagged cut (${JSON.stringify(answer)})`);
      }
    } else {
      const [difference] = await sql.unsafe(`
        select (select count(*) from (${current}) c)::int as rows,
               (select count(*) from ((${current}) except all (${baseline})) d)::int as only_current,
               (select count(*) from ((${baseline}) except all (${current})) d)::int as only_baseline`);
      if (difference!.rows !== shape.spans || difference!.only_current !== 0 || difference!.only_baseline !== 0) {
        throw new Error(`timeline ${name}: the two functions disagree (${JSON.stringify(difference)})`);
      }
    }
    const durations = { current: [] as number[], baseline: [] as number[] };
    // Three warm-up rounds (plans cached, pages in memory), then the samples.
    for (let i = 0; i < shape.samples + 3; i++) {
      const c = await executionMs(current);
      const b = await executionMs(baseline);
      if (i >= 3) {
        durations.current.push(c);
        durations.baseline.push(b);
      }
    }
    const now = summarize(durations.current);
    const before = summarize(durations.baseline);
    out[name] = {
      spans: shape.spans,
      get_trace_timeline: now,
      baseline: before,
      p50_ratio: Math.round((now.p50_ms / before.p50_ms) * 100) / 100,
      ...(shape.target_p99_ms === undefined ? {} : { target_p99_ms: shape.target_p99_ms, target_met: now.p99_ms <= shape.target_p99_ms }),
    };
  }
  return out;
}
