// The promotion trigger on tracing.domain_events: trace fields given in
// event_metadata reach the typed columns, columns given directly reach
// event_metadata, and a malformed value never costs the event.
import { describe, expect, it } from 'vitest';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const PARENT = 'b7ad6b7169203331';
const HIGH_BIT_SPAN = 'f067aa0ba902b700'; // stored as a negative bigint
const CORRELATION = '7d0b2c3e-5f1a-4b8e-9c2d-1e3f4a5b6c7d';
const SESSION = '0e5d1c7a-2b3f-4c9d-8e1a-6f7b8c9d0a1b';

type Row = {
  id: string;
  correlation_id: string | null;
  session_id: string | null;
  trace_id: string | null;
  span_id: string | null;
  parent_span_id: string | null;
  event_metadata: Record<string, unknown>;
  trace_field_errors: Record<string, { value: unknown; reason: string }> | null;
};

// Inserts one event and reads it back with ids as W3C hex text.
async function insert(
  tx: import('postgres').TransactionSql,
  metadata: Record<string, unknown>,
  columns: Record<string, string | null> = {},
): Promise<Row> {
  const [row] = await tx.unsafe(
    `insert into tracing.domain_events
       (stream_type, stream_id, event_type, event_metadata, correlation_id, session_id, trace_id, span_id, parent_span_id)
     values ('order', 'o-1', 'order.placed', $1::jsonb, $2::uuid, $3::uuid,
             $4::uuid, tracing.hex_to_span_id($5), tracing.hex_to_span_id($6))
     returning id`,
    [
      tx.json(metadata as never) as never,
      columns.correlation_id ?? null,
      columns.session_id ?? null,
      columns.trace_id ?? null,
      columns.span_id ?? null,
      columns.parent_span_id ?? null,
    ],
  );
  return read(tx, row!.id);
}

async function read(tx: import('postgres').TransactionSql, id: string): Promise<Row> {
  const [row] = await tx`
    select id, correlation_id::text, session_id::text,
           tracing.trace_id_to_hex(trace_id) as trace_id,
           tracing.span_id_to_hex(span_id) as span_id,
           tracing.span_id_to_hex(parent_span_id) as parent_span_id,
           event_metadata, trace_field_errors
    from tracing.domain_events where id = ${id}`;
  return row as unknown as Row;
}

describe('metadata to columns', () => {
  it('promotes every valid trace field from event_metadata', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(tx, {
        correlation_id: CORRELATION,
        session_id: SESSION,
        trace_id: TRACE,
        span_id: SPAN,
        parent_span_id: PARENT,
        other: 1,
      });
      expect(row).toMatchObject({
        correlation_id: CORRELATION,
        session_id: SESSION,
        trace_id: TRACE,
        span_id: SPAN,
        parent_span_id: PARENT,
        trace_field_errors: null,
      });
      expect(row.event_metadata.other).toBe(1);
    });
  });

  it('round-trips span ids whose high bit is set', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(tx, { span_id: HIGH_BIT_SPAN, parent_span_id: 'ffffffffffffffff' });
      expect(row.span_id).toBe(HIGH_BIT_SPAN);
      expect(row.parent_span_id).toBe('ffffffffffffffff');
    });
  });

  it('accepts an uppercase uuid and writes it back in canonical lowercase', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(tx, { correlation_id: CORRELATION.toUpperCase() });
      expect(row.correlation_id).toBe(CORRELATION);
      expect(row.event_metadata.correlation_id).toBe(CORRELATION);
      expect(row.trace_field_errors).toBeNull();
    });
  });

  it('leaves events without trace fields alone', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(tx, { source: 'import' });
      expect(row).toMatchObject({ correlation_id: null, trace_id: null, span_id: null, trace_field_errors: null });
      expect(row.event_metadata).toEqual({ source: 'import' });
    });
  });

  it('treats JSON null as an absent field', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(tx, { trace_id: null, session_id: null });
      expect(row.trace_id).toBeNull();
      expect(row.trace_field_errors).toBeNull();
      expect(row.event_metadata).toEqual({ trace_id: null, session_id: null });
    });
  });
});

describe('malformed values are refused, the event is kept', () => {
  const cases: Array<[field: string, value: unknown, reason: RegExp]> = [
    ['trace_id', TRACE.slice(0, 31), /32 hex characters, got 31/],
    ['trace_id', TRACE + '0', /32 hex characters, got 33/],
    ['trace_id', TRACE.toUpperCase(), /lowercase/],
    ['trace_id', 'g'.repeat(32), /only hex characters/],
    ['trace_id', '0'.repeat(32), /all zeros/],
    ['trace_id', '', /32 hex characters, got 0/],
    ['trace_id', 12345, /must be a string, got number/],
    ['trace_id', { nested: true }, /must be a string, got object/],
    ['span_id', SPAN.slice(1), /16 hex characters, got 15/],
    ['span_id', SPAN.toUpperCase(), /lowercase/],
    ['span_id', '0'.repeat(16), /all zeros/],
    ['span_id', 'zz' + SPAN.slice(2), /only hex characters/],
    ['parent_span_id', '0'.repeat(16), /all zeros/],
    ['parent_span_id', `${SPAN}-`, /16 hex characters, got 17/],
    ['correlation_id', 'not-a-uuid', /uuid/],
    ['correlation_id', CORRELATION.replaceAll('-', ''), /8-4-4-4-12/],
    ['correlation_id', `{${CORRELATION}}`, /8-4-4-4-12/],
    ['correlation_id', '00000000-0000-0000-0000-000000000000', /nil uuid/],
    // 36 characters with the hyphens in place, and one more hyphen.
    ['correlation_id', '7d0b2c3e-5f1a-4b8e-9c2d-1e3f4a5b6c-d', /8-4-4-4-12/],
    // 16 bytes, but 8 characters.
    ['span_id', 'é'.repeat(8), /16 hex characters, got 8/],
    ['session_id', 'zzzzzzzz-5f1a-4b8e-9c2d-1e3f4a5b6c7d', /uuid/],
    ['session_id', true, /must be a string, got boolean/],
  ];

  it.each(cases)('%s = %j', async (field, value, reason) => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const metadata = { trace_id: TRACE, span_id: SPAN, [field]: value };
      const row = await insert(tx, metadata);
      expect(row.id).toBeDefined();
      // Not promoted...
      expect(row[field as keyof Row]).toBeNull();
      // ...the raw value stays in the record...
      expect(row.event_metadata[field]).toEqual(value);
      // ...and the row says what was refused and why.
      expect(Object.keys(row.trace_field_errors ?? {})).toEqual([field]);
      expect(row.trace_field_errors![field]!.value).toEqual(value);
      expect(row.trace_field_errors![field]!.reason).toMatch(reason);
      // The other fields are promoted all the same.
      if (field !== 'trace_id') expect(row.trace_id).toBe(TRACE);
    });
  });

  it('reports several refused fields at once', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(tx, { trace_id: 'nope', span_id: 'NOPE', correlation_id: 'x', session_id: SESSION });
      expect(Object.keys(row.trace_field_errors!).sort()).toEqual(['correlation_id', 'span_id', 'trace_id']);
      expect(row.session_id).toBe(SESSION);
    });
  });
});

describe('the fast path for canonical metadata', () => {
  // An insert giving canonical fields in event_metadata only is promoted
  // by casts after one check; trace_field_errors given as '{}' sends the
  // same insert through the full promotion, which must agree.
  const metadata: Array<Record<string, unknown>> = [
    { trace_id: TRACE, span_id: SPAN, parent_span_id: PARENT, correlation_id: CORRELATION, session_id: SESSION },
    { trace_id: TRACE, span_id: HIGH_BIT_SPAN },
    { correlation_id: CORRELATION },
    { service: 'checkout' },
    {},
    { trace_id: TRACE, span_id: SPAN, correlation_id: CORRELATION.toUpperCase() },
    { trace_id: TRACE.toUpperCase(), span_id: SPAN },
    { trace_id: TRACE, span_id: '0'.repeat(16) },
    { trace_id: '0'.repeat(32) },
    { session_id: '00000000-0000-0000-0000-000000000000' },
    { trace_id: TRACE, parent_span_id: 'g'.repeat(16) },
    { trace_id: TRACE, span_id: 12345 },
    { correlation_id: '7d0b2c3e-5f1a-4b8e-9c2d-1e3f4a5b6c-d' },
    { correlation_id: '7d0b2c3e05f1a-4b8e-9c2d-1e3f4a5b6c7d' },
    { session_id: `${SESSION}`.replace('e', 'é') },
    { trace_id: TRACE, span_id: SPAN, parent_span_id: null },
    // Hyphens are allowed only in the uuids, where they stand.
    { trace_id: `${TRACE.slice(0, 8)}-${TRACE.slice(9)}` },
    { span_id: `${SPAN.slice(0, 4)}-${SPAN.slice(5)}` },
    { trace_id: TRACE, session_id: SESSION.replaceAll('-', '') + '----' },
  ];

  it.each(metadata)('%j', async (meta) => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const rows = await tx.unsafe(
        `insert into tracing.domain_events (stream_type, stream_id, event_type, event_metadata, trace_field_errors)
         values ('order', 'o-1', 'order.placed', $1::jsonb, null), ('order', 'o-1', 'order.placed', $1::jsonb, '{}')
         returning id`,
        [tx.json(meta as never) as never],
      );
      const [fast, full] = await Promise.all(rows.map((r) => read(tx, r.id)));
      expect({ ...fast!, id: null }).toEqual({ ...full!, id: null });
    });
  });

  it('skips the function through a WHEN clause of one plpgsql call, which Postgres compiles again for every statement', async () => {
    // The comparisons written out in the clause cost each single-row insert
    // 9-12 us of CPU; a call of a plpgsql function is small node text, and
    // its body is planned once a session (020-domain-events-trace-fields.sql).
    const triggers = await db.sql<{ when: string }[]>`
      select pg_get_triggerdef(oid) as when from pg_trigger
       where tgname = '_100_sync_trace_fields'
         and tgrelid in (select relid from pg_partition_tree('tracing.domain_events'))`;
    expect(triggers.length).toBeGreaterThan(1);
    for (const t of triggers) expect(t.when).toContain('WHEN (tracing.trace_fields_need_sync(new.event_metadata,');
    const [fn] = await db.sql<{ language: string }[]>`
      select l.lanname as language from pg_proc p join pg_language l on l.oid = p.prolang
       where p.oid = 'tracing.trace_fields_need_sync'::regproc`;
    expect(fn!.language).toBe('plpgsql');
    // Columns and metadata in agreement (what emitEvent writes) need nothing;
    // no column given goes to the promotion; a disagreement, a zero id or
    // metadata that is not an object goes to the full path.
    const need = async (meta: unknown, trace: string | null, span: string | null) =>
      (
        await db.sql<{ need: boolean }[]>`
          select tracing.trace_fields_need_sync(${db.sql.json(meta as never)}::jsonb, null, null,
                   ${trace}::uuid, tracing.hex_to_span_id(${span}), null, null) as need`
      )[0]!.need;
    expect(await need({ trace_id: TRACE, span_id: HIGH_BIT_SPAN }, TRACE, HIGH_BIT_SPAN)).toBe(false);
    expect(await need({ trace_id: TRACE }, null, null)).toBe(true);
    expect(await need({ trace_id: TRACE, span_id: SPAN }, TRACE, HIGH_BIT_SPAN)).toBe(true);
    expect(await need({ trace_id: TRACE }, TRACE, null)).toBe(false);
    expect(await need({}, TRACE, null)).toBe(true);
    expect(await need({ trace_id: '0'.repeat(32) }, '0'.repeat(32), null)).toBe(true);
    expect(await need([TRACE], TRACE, null)).toBe(true);
  });

  it('is inlined into the trigger, not called', async () => {
    // A stable function in its body (concat, say) would stop the planner
    // inlining it, and the call would cost more than the check.
    const plan = await db.sql.unsafe(
      `explain (verbose, costs off) select tracing.trace_texts_are_canonical(stream_id, stream_id, stream_id, stream_id, stream_id) from tracing.domain_events`,
    );
    expect(plan.map((r) => r['QUERY PLAN']).join('\n')).not.toMatch(/trace_texts_are_canonical/);
  });
});

describe('event_metadata that is not a JSON object', () => {
  // Such metadata cannot hold trace fields; the event is stored as written,
  // with the columns it gives, and flagged. The WHEN clause must let it
  // through even when no column is set: ->> of any key of it is null, so
  // it looks like an event without trace fields. trace_field_errors given
  // as '{}' sends the same insert through the full path, which must agree.
  const metadata = ['[]', '[{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}]', '"x"', '42', 'null'];
  const cases = metadata.flatMap((meta) => [
    { meta, trace_id: null },
    { meta, trace_id: TRACE },
  ]);

  it.each(cases)('$meta with trace_id column $trace_id', async ({ meta, trace_id }) => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const rows = await tx.unsafe(
        `insert into tracing.domain_events
           (stream_type, stream_id, event_type, event_metadata, trace_id, trace_field_errors)
         values ('order', 'o-1', 'order.placed', $1::text::jsonb, tracing.hex_to_trace_id($2), null),
                ('order', 'o-1', 'order.placed', $1::text::jsonb, tracing.hex_to_trace_id($2), '{}')
         returning id`,
        [meta, trace_id],
      );
      const [row, full] = await Promise.all(rows.map((r) => read(tx, r.id)));
      expect(row!.event_metadata).toEqual(JSON.parse(meta));
      expect(row!.trace_id).toBe(trace_id);
      expect(row!.span_id).toBeNull();
      expect(row!.trace_field_errors).toEqual({
        event_metadata: {
          value: JSON.parse(meta),
          reason: 'must be a JSON object; the trace columns were kept and not copied into it',
        },
      });
      expect({ ...row!, id: null }).toEqual({ ...full!, id: null });
    });
  });

  it('is flagged when an update makes it so, and cleared when an update makes it an object again', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(tx, { service: 'checkout' });
      await tx`update tracing.domain_events set event_metadata = '[1, 2]'::jsonb where id = ${row.id}`;
      const flagged = await read(tx, row.id);
      expect(flagged.event_metadata).toEqual([1, 2]);
      expect(flagged.trace_field_errors!.event_metadata!.value).toEqual([1, 2]);
      await tx`update tracing.domain_events set event_metadata = ${tx.json({ trace_id: TRACE })} where id = ${row.id}`;
      const corrected = await read(tx, row.id);
      expect(corrected.trace_id).toBe(TRACE);
      expect(corrected.trace_field_errors).toBeNull();
    });
  });
});

describe('columns to metadata', () => {
  it('writes columns given directly into event_metadata', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(
        tx,
        { note: 'x' },
        {
          correlation_id: CORRELATION,
          session_id: SESSION,
          trace_id: TRACE,
          span_id: SPAN,
          parent_span_id: PARENT,
        },
      );
      expect(row.event_metadata).toEqual({
        note: 'x',
        correlation_id: CORRELATION,
        session_id: SESSION,
        trace_id: TRACE,
        span_id: SPAN,
        parent_span_id: PARENT,
      });
      expect(row.trace_field_errors).toBeNull();
    });
  });

  it('keeps agreeing columns and metadata untouched', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const metadata = { trace_id: TRACE, span_id: SPAN, correlation_id: CORRELATION };
      const row = await insert(tx, metadata, { trace_id: TRACE, span_id: SPAN, correlation_id: CORRELATION });
      expect(row.event_metadata).toEqual(metadata);
      expect(row).toMatchObject({ trace_id: TRACE, span_id: SPAN, correlation_id: CORRELATION, trace_field_errors: null });
    });
  });

  it('lets the column win a disagreement and records the replaced value', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const other = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
      const row = await insert(tx, { trace_id: other }, { trace_id: TRACE });
      expect(row.trace_id).toBe(TRACE);
      expect(row.event_metadata.trace_id).toBe(TRACE);
      expect(row.trace_field_errors).toEqual({ trace_id: { value: other, reason: 'replaced by the trace_id column' } });
    });
  });

  it('refuses all-zero ids given as columns', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(
        tx,
        {},
        {
          trace_id: '00000000-0000-0000-0000-000000000000',
          span_id: null,
          correlation_id: '00000000-0000-0000-0000-000000000000',
        },
      );
      const [zeroSpan] = await tx`
        insert into tracing.domain_events (stream_type, stream_id, event_type, span_id, parent_span_id)
        values ('order', 'o-2', 'order.placed', 0, 0) returning id`;
      const spanRow = await read(tx, zeroSpan!.id);
      expect(row.trace_id).toBeNull();
      expect(row.correlation_id).toBeNull();
      expect(row.trace_field_errors?.trace_id?.reason).toMatch(/all zeros/);
      expect(row.trace_field_errors?.correlation_id?.reason).toMatch(/nil uuid/);
      expect(row.event_metadata).toEqual({});
      expect(spanRow.span_id).toBeNull();
      expect(spanRow.parent_span_id).toBeNull();
      expect(Object.keys(spanRow.trace_field_errors!).sort()).toEqual(['parent_span_id', 'span_id']);
    });
  });
});

describe('updates keep both sides in step', () => {
  it('follows an edit of event_metadata into the column', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(tx, { trace_id: TRACE });
      const other = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
      await tx`update tracing.domain_events set event_metadata = event_metadata || ${tx.json({ trace_id: other })} where id = ${row.id}`;
      expect((await read(tx, row.id)).trace_id).toBe(other);
    });
  });

  it('follows an edit of the column into event_metadata', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(tx, { span_id: SPAN });
      await tx`update tracing.domain_events set span_id = tracing.hex_to_span_id(${PARENT}) where id = ${row.id}`;
      const after = await read(tx, row.id);
      expect(after.span_id).toBe(PARENT);
      expect(after.event_metadata.span_id).toBe(PARENT);
      expect(after.trace_field_errors).toBeNull();
    });
  });

  it('clears the column when the field is removed from event_metadata', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(tx, { session_id: SESSION });
      await tx`update tracing.domain_events set event_metadata = event_metadata - 'session_id' where id = ${row.id}`;
      expect((await read(tx, row.id)).session_id).toBeNull();
    });
  });

  it('clears trace_field_errors once a bad value is corrected', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(tx, { trace_id: 'bad' });
      expect(row.trace_field_errors).not.toBeNull();
      await tx`update tracing.domain_events set event_metadata = ${tx.json({ trace_id: TRACE })} where id = ${row.id}`;
      const after = await read(tx, row.id);
      expect(after.trace_id).toBe(TRACE);
      expect(after.trace_field_errors).toBeNull();
    });
  });

  it('does not touch trace fields when only the processing state changes', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(tx, { trace_id: TRACE });
      await tx`update tracing.domain_events set processing_error = 'timeout' where id = ${row.id}`;
      const after = await read(tx, row.id);
      expect(after.trace_id).toBe(TRACE);
      expect(after.event_metadata).toEqual({ trace_id: TRACE });
    });
  });
});

describe('updates that clear a column', () => {
  it('removes the field from event_metadata when its column is set to null', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const row = await insert(tx, { trace_id: TRACE, span_id: SPAN });
      await tx`update tracing.domain_events set trace_id = null where id = ${row.id}`;
      const after = await read(tx, row.id);
      expect(after.trace_id).toBeNull();
      expect(after.event_metadata).toEqual({ span_id: SPAN });
    });
  });
});
