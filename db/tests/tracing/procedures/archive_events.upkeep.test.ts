// The archive run is also the upkeep of the live tables' months ahead
// (tracing.ensure_live_partitions_ahead). That upkeep failing, here because
// a long reader holds the default partition of domain_events that ATTACH
// must lock, must not cost the run its archiving: the run records the
// failure, archives, and a later run creates the months.
import postgres from 'postgres';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/test-database.ts';
import { createLedger, first, ledgerState, resetRetentionState, seedEvents, storeState } from '../../helpers/event-ledger.ts';

const db = useTestDatabase();
let monthsAhead: number;

beforeAll(async () => {
  await createLedger(db.sql);
  monthsAhead = first(await db.sql`select months_ahead from tracing.retention_settings`).months_ahead as number;
});

beforeEach(() => resetRetentionState(db.sql));

afterEach(async () => {
  await db.sql`update tracing.retention_settings set months_ahead = ${monthsAhead}`;
});

async function lastPartitionEnd(parent: string): Promise<string> {
  return first(await db.sql`select max(to_at)::text as last from tracing.partition_bounds(${parent}::regclass)`).last as string;
}

async function lastRun() {
  return first(await db.sql`select * from tracing.retention_run_status where operation = 'archive' order by id desc limit 1`);
}

describe('archive_events when the upkeep of live partitions fails', () => {
  it('records the failure, archives all the same, and a later run creates the months', async () => {
    await seedEvents(db.sql, { count: 300, ageDays: 120, tag: 'old' });
    await seedEvents(db.sql, { count: 40, ageDays: 1, tag: 'new' });
    // Months past those that exist, for the run to create.
    await db.sql`update tracing.retention_settings set months_ahead = ${monthsAhead + 2}`;
    const eventsEnd = await lastPartitionEnd('tracing.domain_events');
    const spansEnd = await lastPartitionEnd('tracing.spans');
    const { partition: defaultPartition } = first(
      await db.sql`select partition::text from tracing.partition_bounds('tracing.domain_events') where is_default`,
    );

    const reader = postgres(db.url, { max: 1, onnotice: () => {} });
    const runner = postgres(db.url, { max: 1, onnotice: () => {}, connection: { lock_timeout: 300 } });
    try {
      await reader.begin(async (tx) => {
        await tx.unsafe(`lock table ${defaultPartition} in access share mode`);
        await runner`call tracing.archive_events(p_batch_size => 100)`;
      });
    } finally {
      await runner.end();
      await reader.end();
    }

    const blocked = await lastRun();
    expect(blocked.status).toBe('succeeded');
    expect(blocked.error).toBeNull();
    expect(blocked.details.live_partitions_not_created).toEqual([
      expect.objectContaining({ table: 'tracing.domain_events', sqlstate: '55P03' }),
    ]);
    expect(await storeState(db.sql)).toMatchObject({ live: 40, archived: 300, checksum: (await ledgerState(db.sql)).checksum });
    expect(await lastPartitionEnd('tracing.domain_events')).toBe(eventsEnd);
    // The other table's upkeep went on.
    expect(await lastPartitionEnd('tracing.spans')).not.toBe(spansEnd);

    await db.sql`call tracing.archive_events()`;
    const later = await lastRun();
    expect(later.status).toBe('succeeded');
    expect(later.details.live_partitions_not_created).toBeUndefined();
    expect(await lastPartitionEnd('tracing.domain_events')).not.toBe(eventsEnd);
    expect(later.details.live_partitions_created.some((name: string) => name.startsWith('domain_events_'))).toBe(true);
  });
});
