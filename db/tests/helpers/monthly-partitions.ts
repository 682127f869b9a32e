// domain_events as it is some months after the in-place upgrade: one live
// partition a month, instead of the partition of everything before the
// upgrade (dropped, so it must be empty). For tests and benchmarks of what
// retention does with whole months.
import type postgres from 'postgres';

/** One partition a month of domain_events, from `monthsBack` months before the current one to `monthsAhead` after it. */
export async function partitionEventsByMonth(sql: postgres.Sql, monthsBack: number, monthsAhead: number): Promise<void> {
  await sql.unsafe(`
    do $$
    declare
      v_part record;
      v_month timestamptz;
    begin
      for v_part in select b.partition from tracing.partition_bounds('tracing.domain_events') b where not b.is_default loop
        execute format('drop table %s', v_part.partition);
      end loop;
      for k in ${-Math.abs(Math.trunc(monthsBack))} .. ${Math.trunc(monthsAhead)} loop
        v_month := ((tracing.archive_month_start(now()) at time zone 'UTC') + make_interval(months => k)) at time zone 'UTC';
        execute format('create table tracing.%I partition of tracing.domain_events for values from (%L) to (%L)',
          tracing.live_partition_name('tracing.domain_events', v_month), v_month,
          ((v_month at time zone 'UTC') + interval '1 month') at time zone 'UTC');
      end loop;
      perform tracing.index_live_event_partitions();
      perform tracing.name_partition_indexes('tracing.domain_events');
    end $$;`);
}
