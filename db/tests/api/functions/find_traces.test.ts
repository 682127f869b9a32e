// api.find_traces: traces found by a structured filter over span intrinsics,
// attributes and structure, in a bounded window, newest first, with the
// spans that matched; bad input named by its place in the filter; tenants
// apart.
import { beforeAll, describe, expect, it } from 'vitest';
import { nestedPlans } from '../../helpers/nested-plans.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';
import { actAs, at, insertEvent, ORG_A, ORG_B, recordSpans, span, traceId } from '../../helpers/trace-fixtures.ts';

const db = useTestDatabase();
const FROM = at(-60_000);
const TO = at(3_600_000);

// checkout (0):  POST /checkout (edge) > charge (payments, error, http 502) > card (payments)
//                                       > reserve (stock, 40 ms)
// browse (1000): GET /products (edge, http 200) > query (db, 300 ms, db.system=postgresql)
// slow (2000):   POST /checkout (edge, 2.5 s) > charge (payments, ok, http 200)
// other tenant (3000): POST /checkout (edge) > charge (payments, error)
beforeAll(async () => {
  await recordSpans(db.sql, [
    span('root', {
      trace: 'checkout',
      start: 0,
      end: 500,
      name: 'POST /checkout',
      service: 'edge',
      extra: { kind: 'server', attributes: { 'http.route': '/checkout', 'order.id': 'ord-1058' } },
    }),
    span('charge', {
      trace: 'checkout',
      parent: 'root',
      start: 10,
      end: 300,
      name: 'charge',
      service: 'payments',
      status: 'error',
      extra: { kind: 'client', attributes: { 'http.status_code': 502 } },
    }),
    span('card', { trace: 'checkout', parent: 'charge', start: 20, end: 200, name: 'card', service: 'payments' }),
    span('reserve', { trace: 'checkout', parent: 'root', start: 310, end: 350, name: 'reserve', service: 'stock' }),
    span('root', {
      trace: 'browse',
      start: 1000,
      end: 1400,
      name: 'GET /products',
      service: 'edge',
      extra: { attributes: { 'http.status_code': 200 } },
    }),
    span('query', {
      trace: 'browse',
      parent: 'root',
      start: 1010,
      end: 1310,
      name: 'select products',
      service: 'db',
      extra: { attributes: { 'db.system': 'postgresql' } },
    }),
    span('root', { trace: 'slow', start: 2000, end: 4500, name: 'POST /checkout', service: 'edge' }),
    span('charge', {
      trace: 'slow',
      parent: 'root',
      start: 2010,
      end: 4400,
      name: 'charge',
      service: 'payments',
      extra: { attributes: { 'http.status_code': 200 } },
    }),
    span('root', { trace: 'tenant-b', start: 3000, end: 3100, name: 'POST /checkout', service: 'edge', org: ORG_B }),
    span('charge', {
      trace: 'tenant-b',
      parent: 'root',
      start: 3010,
      end: 3090,
      name: 'charge',
      service: 'payments',
      status: 'error',
      org: ORG_B,
    }),
  ]);
  // The business side: the checkout placed order ord-1058, the slow one ord-2001.
  await insertEvent(db.sql, {
    trace: 'checkout',
    span: 'root',
    at: 5,
    type: 'order.placed',
    stream: ['order', 'ord-1058'],
    data: { customer: { id: 'c-42' }, total: 99 },
  });
  await insertEvent(db.sql, { trace: 'checkout', span: 'charge', at: 200, type: 'payment.failed', stream: ['order', 'ord-1058'] });
  await insertEvent(db.sql, {
    trace: 'slow',
    span: 'root',
    at: 2005,
    type: 'order.placed',
    stream: ['order', 'ord-2001'],
    data: { customer: { id: 'c-7' } },
  });
});

type Row = { trace_id: string; root_name: string; duration_ms: number; matched_spans: Array<{ name: string; service: string }> };

async function find(filter: Record<string, unknown>, options: { first?: number; afterStart?: Date; afterTrace?: string } = {}) {
  return (await db.sql`
    select * from api.find_traces(${db.sql.json({ from: FROM, to: TO, ...filter } as never)}::jsonb, ${options.first ?? 20},
                                  ${options.afterStart ?? null}, ${options.afterTrace ?? null})`) as unknown as Row[];
}

/** The labels of the traces found, newest first. */
async function found(traces: unknown): Promise<string[]> {
  const labels = new Map(['checkout', 'browse', 'slow', 'tenant-b'].map((l) => [traceId(l), l]));
  return (await find({ traces })).map((r) => labels.get(r.trace_id) ?? r.trace_id);
}

const spans = (condition: unknown) => ({ spans: condition });

describe('span intrinsics', () => {
  it('finds by service and name, exactly or by pattern', async () => {
    expect(await found(spans({ field: 'service', op: '=', value: 'db' }))).toEqual(['browse']);
    expect(await found(spans({ field: 'name', op: '=~', value: '^POST ' }))).toEqual(['tenant-b', 'slow', 'checkout']);
    expect(await found(spans({ field: 'service', op: '!~', value: '^(edge|payments|stock|db)$' }))).toEqual([]);
  });

  it('finds by status and kind', async () => {
    expect(await found(spans({ field: 'status', op: '=', value: 'error' }))).toEqual(['tenant-b', 'checkout']);
    expect(await found(spans({ field: 'kind', op: '=', value: 'client' }))).toEqual(['checkout']);
  });

  it('keeps span duration and trace duration apart', async () => {
    expect(await found(spans({ field: 'duration_ms', op: '>=', value: 300 }))).toEqual(['slow', 'browse', 'checkout']);
    expect(await found({ trace_duration_ms: { op: '>', value: 1000 } })).toEqual(['slow']);
  });
});

describe('attributes', () => {
  it('compares numbers as numbers, and != means present with another value', async () => {
    expect(await found(spans({ attribute: 'http.status_code', op: '>=', value: 500 }))).toEqual(['checkout']);
    expect(await found(spans({ attribute: 'http.status_code', op: '=', value: 200 }))).toEqual(['slow', 'browse']);
    expect(await found(spans({ attribute: 'http.status_code', op: '!=', value: 200 }))).toEqual(['checkout']);
  });

  it('matches strings, patterns, presence and absence', async () => {
    expect(await found(spans({ attribute: 'order.id', op: '=', value: 'ord-1058' }))).toEqual(['checkout']);
    expect(await found(spans({ attribute: 'db.system', op: '=~', value: '^postgres' }))).toEqual(['browse']);
    expect(await found(spans({ attribute: 'http.route', op: 'exists' }))).toEqual(['checkout']);
    expect(
      await found(
        spans({
          and: [
            { field: 'service', op: '=', value: 'edge' },
            { attribute: 'http.status_code', op: 'not_exists' },
          ],
        }),
      ),
    ).toEqual(['tenant-b', 'slow', 'checkout']);
  });
});

describe('and, or, not', () => {
  it('combines conditions on one span, and spans of one trace', async () => {
    // One span that is both in payments and failed...
    expect(
      await found(
        spans({
          and: [
            { field: 'service', op: '=', value: 'payments' },
            { field: 'status', op: '=', value: 'error' },
          ],
        }),
      ),
    ).toEqual(['tenant-b', 'checkout']);
    // ...against a trace with a db span and an edge span (TraceQL {A} && {B}).
    expect(
      await found({ and: [spans({ field: 'service', op: '=', value: 'db' }), spans({ field: 'service', op: '=', value: 'edge' })] }),
    ).toEqual(['browse']);
    expect(
      await found({ or: [spans({ field: 'service', op: '=', value: 'db' }), spans({ field: 'service', op: '=', value: 'stock' })] }),
    ).toEqual(['browse', 'checkout']);
    expect(await found(spans({ not: { field: 'service', op: '=', value: 'edge' } }))).toEqual(['tenant-b', 'slow', 'browse', 'checkout']);
  });
});

describe('structure', () => {
  const edge = { field: 'service', op: '=', value: 'edge' };
  const failedPayment = {
    and: [
      { field: 'service', op: '=', value: 'payments' },
      { field: 'status', op: '=', value: 'error' },
    ],
  };

  it('a span with a failed descendant, and with a failed child', async () => {
    expect(await found({ relation: 'descendant', left: edge, right: failedPayment })).toEqual(['tenant-b', 'checkout']);
    expect(await found({ relation: 'child', left: edge, right: failedPayment })).toEqual(['tenant-b', 'checkout']);
    // card is a grandchild of the root: a descendant, not a child.
    const card = { field: 'name', op: '=', value: 'card' };
    expect(await found({ relation: 'descendant', left: edge, right: card })).toEqual(['checkout']);
    expect(await found({ relation: 'child', left: edge, right: card })).toEqual([]);
  });

  it('a span with an ancestor, a parent, a sibling', async () => {
    const card = { field: 'name', op: '=', value: 'card' };
    expect(await found({ relation: 'ancestor', left: card, right: edge })).toEqual(['checkout']);
    expect(await found({ relation: 'parent', left: card, right: { field: 'name', op: '=', value: 'charge' } })).toEqual(['checkout']);
    expect(await found({ relation: 'sibling', left: { field: 'name', op: '=', value: 'reserve' }, right: failedPayment })).toEqual([
      'checkout',
    ]);
    expect(
      await found({
        relation: 'sibling',
        left: { field: 'name', op: '=', value: 'reserve' },
        right: { field: 'name', op: '=', value: 'reserve' },
      }),
    ).toEqual([]);
  });
});

describe('business data', () => {
  it('finds every trace that touched an aggregate, or had an event of a type', async () => {
    expect(await found({ events: { stream_type: 'order', stream_id: 'ord-1058' } })).toEqual(['checkout']);
    expect(await found({ events: { event_type: 'order.placed' } })).toEqual(['slow', 'checkout']);
    expect(await found({ and: [{ events: { event_type: 'order.placed' } }, spans({ field: 'status', op: '=', value: 'error' })] })).toEqual(
      ['checkout'],
    );
  });

  it('finds by an event_data key: declared keys over any window, others within an hour', async () => {
    const byCustomer = { events: { data: { key: 'customer.id', value: 'c-42' } } };
    // The fixture's window is longer than an hour: the key must be declared.
    const refused = await find({ traces: byCustomer }).catch((e: { message: string }) => e);
    expect((refused as { message: string }).message).toMatch(/p_filter.traces.events.data.key customer.id is not a declared search key/);
    const hour =
      await db.sql`select trace_id from api.find_traces(${db.sql.json({ from: at(-60_000), to: at(3_000_000), traces: byCustomer } as never)}::jsonb)`;
    expect(hour.map((r) => r.trace_id)).toEqual([traceId('checkout')]);

    const [{ index }] = (await db.sql`select tracing.add_search_key('customer.id') as index`) as unknown as [{ index: string }];
    expect(await found(byCustomer)).toEqual(['checkout']);
    // The compiled condition can use the key's index (the table is too small for the planner to want it unforced).
    const plan = await db.sql.begin(async (tx) => {
      await tx`set local enable_seqscan = off`;
      return tx`
        explain (format json) select e.trace_id from tracing.domain_events e
         where (e.event_data #>> '{customer,id}'::text[]) = 'c-42' and e.trace_id is not null`;
    });
    expect(JSON.stringify(plan)).toContain(index);
    expect(await found({ events: { data: { key: 'total', value: 99 } } }).catch((e: { message: string }) => e.message)).toMatch(
      /not a declared search key/,
    );

    expect((await db.sql`select tracing.drop_search_key('customer.id') as dropped`)[0]!.dropped).toBe(true);
    expect((await db.sql`select to_regclass(${'tracing.' + index}) as idx`)[0]!.idx).toBeNull();
    expect((await db.sql`select tracing.drop_search_key('customer.id') as dropped`)[0]!.dropped).toBe(false);
  });
});

describe('event conditions read only the events of the window', () => {
  const plansOf = async (filter: Record<string, unknown>, setup: string[] = []) =>
    (await nestedPlans(db.url, `select * from api.find_traces($1::text::jsonb)`, [JSON.stringify(filter)], setup)).join('\n');
  const asReader = ['set local role tracegres_reader', `select set_config('jwt.claims.organization_id', '${ORG_A}', true)`];

  it('reads the partitions of the window, widened by an hour before and a day after, and no other', async () => {
    await db.sql`select tracing.add_search_key('customer.id')`;
    try {
      const partitions = (await db.sql`
        select b.partition::text as name, b.is_default, b.from_at, b.to_at from tracing.partition_bounds('tracing.domain_events') b`) as unknown as {
        name: string;
        is_default: boolean;
        from_at: Date | null;
        to_at: Date | null;
      }[];
      // The partitions that hold none of [from - 1 hour, to + 1 day).
      const outside = (from: string, to: string) =>
        partitions
          .filter(
            (p) =>
              !p.is_default &&
              ((p.to_at !== null && p.to_at.getTime() <= Date.parse(from) - 3_600_000) ||
                (p.from_at !== null && p.from_at.getTime() >= Date.parse(to) + 86_400_000)),
          )
          .map((p) => p.name.replace(/^tracing\./, ''));
      // A month of its own, after the fixture's window.
      const month = partitions.find((p) => !p.is_default && p.from_at !== null && p.from_at.getTime() > Date.parse(TO) + 86_400_000);
      expect(month).toBeDefined();
      const later = {
        from: new Date(month!.from_at!.getTime() + 86_400_000).toISOString(),
        to: new Date(month!.from_at!.getTime() + 90_000_000).toISOString(),
      };
      const byCustomer = { events: { data: { key: 'customer.id', value: 'c-42' } } };
      for (const traces of [
        byCustomer,
        { events: { event_type: 'order.placed' } },
        { events: { stream_type: 'order', stream_id: 'ord-1058' } },
      ]) {
        for (const setup of [[], asReader]) {
          for (const window of [{ from: FROM, to: TO }, later]) {
            const plans = await plansOf({ ...window, traces }, setup);
            const skipped = outside(window.from, window.to);
            expect(skipped.length).toBeGreaterThan(0);
            for (const name of skipped) expect(plans).not.toMatch(new RegExp(`\\b${name}\\b`));
          }
          // The later window reads its own month's partition.
          expect(await plansOf({ ...later, traces }, setup)).toMatch(new RegExp(`\\b${month!.name.replace(/^tracing\./, '')}\\b`));
        }
      }
    } finally {
      await db.sql`select tracing.drop_search_key('customer.id')`;
    }
  });

  it('finds an event recorded up to a day after the window, not later, and from an hour before it', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      // The browse trace starts at 1000 ms; its events come late or early.
      const search = async (type: string) =>
        (
          await tx`select trace_id from api.find_traces(${tx.json({ from: FROM, to: TO, traces: { events: { event_type: type } } } as never)}::jsonb)`
        ).map((r) => r.trace_id);
      await insertEvent(tx, { trace: 'browse', span: 'root', at: 3_600_000 + 23 * 3_600_000, type: 'late.within' });
      await insertEvent(tx, { trace: 'browse', span: 'root', at: 3_600_000 + 25 * 3_600_000, type: 'late.beyond' });
      await insertEvent(tx, { trace: 'browse', span: 'root', at: -60_000 - 50 * 60_000, type: 'early.within' });
      await insertEvent(tx, { trace: 'browse', span: 'root', at: -60_000 - 70 * 60_000, type: 'early.beyond' });
      expect(await search('late.within')).toEqual([traceId('browse')]);
      expect(await search('late.beyond')).toEqual([]);
      expect(await search('early.within')).toEqual([traceId('browse')]);
      expect(await search('early.beyond')).toEqual([]);
    });
  });
});

describe('results', () => {
  it('returns the spans that matched, earliest first, at most spans_per_trace', async () => {
    const [row] = await find({ traces: spans({ field: 'service', op: '=', value: 'payments' }), spans_per_trace: 1 }, { first: 1 });
    expect(row!.root_name).toBe('POST /checkout');
    expect(row!.matched_spans.map((s) => s.name)).toEqual(['charge']);
    const [all] = await find({
      traces: {
        relation: 'descendant',
        left: { field: 'service', op: '=', value: 'edge' },
        right: { field: 'name', op: '=', value: 'card' },
      },
    });
    expect(all!.matched_spans.map((s) => s.name)).toEqual(['POST /checkout', 'card']);
  });

  it('pages newest first with a keyset cursor', async () => {
    const page1 = await find({}, { first: 2 });
    expect(page1.map((r) => r.trace_id)).toEqual([traceId('tenant-b'), traceId('slow')]);
    const last = page1[1] as unknown as { start_time: Date; trace_id: string };
    const page2 = await find({}, { first: 2, afterStart: last.start_time, afterTrace: last.trace_id });
    expect(page2.map((r) => r.trace_id)).toEqual([traceId('browse'), traceId('checkout')]);
  });

  it('reads only the window', async () => {
    const rows =
      await db.sql`select count(*)::int as n from api.find_traces(${db.sql.json({ from: at(1500), to: at(2500) } as never)}::jsonb)`;
    expect(rows[0]!.n).toBe(1);
  });
});

describe('tenants', () => {
  it('a reader finds only its own organization', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const rows = await actAs(
        tx,
        'tracegres_reader',
        ORG_A,
        () =>
          tx`select trace_id from api.find_traces(${tx.json({ from: FROM, to: TO, traces: { spans: { field: 'status', op: '=', value: 'error' } } } as never)}::jsonb)`,
      );
      expect(rows.map((r) => r.trace_id)).toEqual([traceId('checkout')]);
    });
  });

  it("a reader's declared event_data key is looked up through its index, in the reader's organization only", async () => {
    const [{ index }] = (await db.sql`select tracing.add_search_key('customer.id') as index`) as unknown as [{ index: string }];
    try {
      const filter = { from: FROM, to: TO, traces: { events: { data: { key: 'customer.id', value: 'c-42' } } } };
      // Under row-level security the planner could not use the key's index
      // even with scans of the table priced out; through the lookup it does.
      const plans = (
        await nestedPlans(
          db.url,
          `select * from api.find_traces($1::text::jsonb)`,
          [JSON.stringify(filter)],
          [
            'set local enable_seqscan = off',
            'set local role tracegres_reader',
            `select set_config('jwt.claims.organization_id', '${ORG_A}', true)`,
          ],
        )
      ).join('\n');
      expect(plans).toContain(`Index Scan using ${index}`);
      expect(plans).not.toMatch(/Seq Scan on domain_events/);

      await inRolledBackTransaction(db.sql, async (tx) => {
        // Another organization's event with the same customer on its own trace.
        await insertEvent(tx, {
          trace: 'tenant-b',
          span: 'root',
          at: 3005,
          type: 'customer.seen',
          stream: ['customer', 'c-42'],
          data: { customer: { id: 'c-42' } },
          org: ORG_B,
        });
        const search = async () =>
          (await tx`select trace_id from api.find_traces(${tx.json(filter as never)}::jsonb)`).map((r) => r.trace_id);
        expect(await actAs(tx, 'tracegres_reader', ORG_A, search)).toEqual([traceId('checkout')]);
        expect(await actAs(tx, 'tracegres_reader', ORG_B, search)).toEqual([traceId('tenant-b')]);
        expect(await actAs(tx, 'tracegres_reader', null, search)).toEqual([]);
        expect(await actAs(tx, 'tracegres_anonymous', null, search)).toEqual([]);
        // An admin sees every organization, whatever its token's organization.
        expect(await actAs(tx, 'tracegres_admin', ORG_A, search)).toEqual([traceId('tenant-b'), traceId('checkout')]);

        // Called directly, the lookup names only the reader's own events.
        const named = await actAs(
          tx,
          'tracegres_reader',
          ORG_A,
          () => tx`select id from tracing.search_key_events('{customer,id}', 'c-42', ${FROM}, ${TO})`,
        );
        const owners =
          await tx`select distinct organization_id from tracing.domain_events where id = any(${named.map((r) => r.id)}::bigint[])`;
        expect(named).toHaveLength(1);
        expect(owners.map((r) => r.organization_id)).toEqual([ORG_A]);
        // Only readers may call it.
        const refused = await actAs(
          tx,
          'tracegres_anonymous',
          null,
          () => tx`select * from tracing.search_key_events('{customer,id}', 'c-42', ${FROM}, ${TO})`,
        ).catch((e: { code: string }) => e);
        expect((refused as { code: string }).code).toBe('42501');
      });
      const lookup = (path: string, from: string | null, to: string | null) =>
        db.sql`select * from tracing.search_key_events(${path}, 'c-42', ${from}, ${to})`.catch((e: { code: string; message: string }) => e);
      expect(await lookup('{total}', FROM, TO)).toMatchObject({
        code: '22023',
        message: expect.stringMatching(/p_path total is not a declared search key/),
      });
      expect(await lookup('{customer,id}', null, TO)).toMatchObject({
        code: '22023',
        message: expect.stringMatching(/^p_from is required/),
      });
      expect(await lookup('{customer,id}', TO, FROM)).toMatchObject({
        code: '22023',
        message: expect.stringMatching(/^p_from must be before p_to/),
      });
      expect(await lookup('{customer,id}', FROM, at(9 * 86_400_000))).toMatchObject({
        code: '22023',
        message: expect.stringMatching(/^p_to must be at most 8 days 1 hour after p_from/),
      });
    } finally {
      await db.sql`select tracing.drop_search_key('customer.id')`;
    }
  });
});

describe('bad input', () => {
  it.each([
    ['no window', { from: null, to: null }, /p_filter.from and p_filter.to are required/],
    ['a window over 7 days', { to: at(8 * 86_400_000) }, /p_filter.to must be at most 7 days/],
    [
      'an unknown operator',
      { traces: spans({ field: 'service', op: '~~', value: 'x' }) },
      /p_filter.traces.spans.op must be =, !=, =~ or !~ for service/,
    ],
    ['an unknown field', { traces: spans({ field: 'colour', op: '=', value: 'x' }) }, /p_filter.traces.spans.field must be service, name/],
    [
      'a bad regex',
      { traces: spans({ attribute: 'a', op: '=~', value: '(' }) },
      /p_filter.traces.spans.value is not a valid regular expression/,
    ],
    [
      'a number compared with a string',
      { traces: spans({ attribute: 'a', op: '>', value: 'x' }) },
      /p_filter.traces.spans.value must be a number for >/,
    ],
    [
      'an unknown relation',
      { traces: { relation: 'cousin', left: {}, right: {} } },
      /p_filter.traces.relation must be descendant, child, ancestor, parent or sibling, got cousin/,
    ],
    [
      'a status that does not exist',
      { traces: { and: [spans({ field: 'status', op: '=', value: 'failed' })] } },
      /p_filter.traces.and\[0\].spans.value must be unset, ok or error/,
    ],
    [
      'too many conditions',
      { traces: { or: Array.from({ length: 33 }, (_, i) => spans({ field: 'name', op: '=', value: `n${i}` })) } },
      /p_filter.traces has more than 32 conditions/,
    ],
  ])('refuses %s with SQLSTATE 22023 naming the place', async (_case, filter, message) => {
    const error = await find(filter).catch((e: { message: string; code: string }) => e);
    expect((error as { message: string }).message).toMatch(message);
    expect((error as { code: string }).code).toBe('22023');
  });
});
