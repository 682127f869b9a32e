// tracing.record_spans: the one writer of spans. One batch in, spans and
// trace summaries out; a retry changes nothing; a bad span is rejected alone,
// named by its index and field, while the others are stored.
import { describe, expect, it } from 'vitest';
import { actAs, at, ORG_A, ORG_B, recordSpans, span, spanId, traceId } from '../../helpers/trace-fixtures.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();

type Tx = import('postgres').TransactionSql;

interface Rejection {
  index: number;
  trace_id?: string;
  span_id?: string;
  field?: string;
  reason: string;
}

/** record_spans' whole answer: the spans newly recorded and the ones rejected. */
function recordSpansReporting(tx: Tx, spans: unknown[]) {
  return tx<{ recorded: number; rejected: Rejection[] }[]>`select * from tracing.record_spans(${tx.json(spans as never)}::jsonb)`;
}

async function storedSpans(tx: Tx) {
  return tx`
    select tracing.span_id_to_hex(span_id) as span_id, tracing.span_id_to_hex(parent_span_id) as parent_span_id,
           name, service, kind, status, status_message, attributes, span_events, links,
           duration_ms, session_id::text, organization_id::text
    from tracing.spans order by start_time, span_id`;
}

async function summaries(tx: Tx) {
  return tx`
    select tracing.trace_id_to_hex(trace_id) as trace_id, organization_id::text,
           start_time, end_time, duration_ms, tracing.span_id_to_hex(root_span_id) as root_span_id,
           root_name, root_service, services, span_count, error_count, session_id::text
    from tracing.trace_summaries order by trace_id, organization_id`;
}

describe('recording', () => {
  it('stores every field, converting W3C hex ids and deriving the duration', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const recorded = await recordSpans(tx, [
        span('root', {
          start: 0,
          end: 1500,
          service: 'edge',
          extra: { kind: 'server', status: 'ok', attributes: { 'http.route': '/orders' } },
        }),
        span('child', {
          parent: 'root',
          start: 200,
          end: 1000,
          service: 'worker',
          status: 'error',
          extra: {
            status_message: 'boom',
            kind: 'CLIENT',
            events: [{ name: 'exception', time: at(900), attributes: { 'exception.type': 'Error' } }],
            links: [{ trace_id: traceId('other'), span_id: spanId('x') }],
          },
        }),
      ]);
      expect(recorded).toBe(2);
      const rows = await storedSpans(tx);
      expect(rows).toEqual([
        {
          span_id: spanId('root'),
          parent_span_id: null,
          name: 'root',
          service: 'edge',
          kind: 'server',
          status: 'ok',
          status_message: null,
          attributes: { 'http.route': '/orders' },
          span_events: null,
          links: null,
          duration_ms: 1500,
          session_id: null,
          organization_id: ORG_A,
        },
        {
          span_id: spanId('child'),
          parent_span_id: spanId('root'),
          name: 'child',
          service: 'worker',
          kind: 'client',
          status: 'error',
          status_message: 'boom',
          attributes: {},
          span_events: [{ name: 'exception', time: at(900), attributes: { 'exception.type': 'Error' } }],
          links: [{ trace_id: traceId('other'), span_id: spanId('x') }],
          duration_ms: 800,
          session_id: null,
          organization_id: ORG_A,
        },
      ]);
    });
  });

  it('defaults kind to internal, status to unset and service to unknown_service', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, [{ trace_id: traceId('t1'), span_id: spanId('a'), name: 'a', start_time: at(0), end_time: at(1) }]);
      const [row] = await storedSpans(tx);
      expect(row).toMatchObject({ kind: 'internal', status: 'unset', service: 'unknown_service', attributes: {} });
    });
  });

  it('takes an empty parent id (OTLP) as a root and keeps ids whose high bit is set', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const high = 'f067aa0ba902b700';
      await recordSpans(tx, [
        { ...span('a', { start: 0, end: 1 }), parent_span_id: '' },
        { ...span('b', { start: 0, end: 1 }), span_id: high, parent_span_id: 'ffffffffffffffff' },
      ]);
      const rows = await storedSpans(tx);
      expect(rows.map((r) => [r.span_id, r.parent_span_id])).toEqual([
        [spanId('a'), null],
        [high, 'ffffffffffffffff'],
      ]);
    });
  });

  it('accepts an empty batch', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      expect(await recordSpans(tx, [])).toBe(0);
    });
  });
});

describe('attribute caps: a span is cut, never rejected, for what it carries', () => {
  const nested = (levels: number): unknown => (levels === 0 ? 'bottom' : { next: nested(levels - 1) });
  const depthOf = (value: unknown): number =>
    value !== null && typeof value === 'object' ? 1 + Math.max(0, ...Object.values(value).map(depthOf)) : 0;

  it('cuts values nested deeper than 16 levels and strings over 4096 characters, and says so in the span', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const long = 'x'.repeat(10_000);
      await recordSpans(tx, [
        span('deep', {
          start: 0,
          end: 10,
          extra: {
            attributes: { deep: nested(40), long, kept: 'short' },
            events: [{ name: 'e', time: at(5), attributes: { deep: nested(40) } }],
          },
        }),
      ]);
      const [stored] = await storedSpans(tx);
      const attributes = stored!.attributes as Record<string, unknown>;
      // The 40-level value becomes 16 levels and a marker: exportable.
      expect(depthOf(attributes.deep)).toBe(15);
      expect(JSON.stringify(attributes.deep)).toContain('[cut: a object nested deeper than 16 levels]');
      expect(attributes.long).toBe(`${'x'.repeat(4096)}[cut: 5904 more characters]`);
      expect(attributes.kept).toBe('short');
      expect(attributes['tracegres.truncated']).toMatch(/nested deeper than 16 levels or strings longer than 4096 characters were cut/);
      expect(JSON.stringify(stored!.span_events)).toContain('[cut: a object nested deeper than 16 levels]');
    });
  });

  it('stores a span within the caps exactly as sent, with no truncation note', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const attributes = { deep: nested(15), long: 'y'.repeat(4096), list: [[[1]]], empty: {} };
      await recordSpans(tx, [span('fits', { start: 0, end: 10, extra: { attributes } })]);
      const [stored] = await storedSpans(tx);
      expect(stored!.attributes).toEqual(attributes);
    });
  });

  it('checks the caps inline, not as a function call per span (which once took half of record_spans)', async () => {
    const plan = await db.sql<{ 'QUERY PLAN': string }[]>`
      explain verbose select tracing.span_json_within_caps(x.attributes)
        from jsonb_to_recordset('[{"attributes": {}}]'::jsonb) as x(attributes jsonb)`;
    const text = plan.map((row) => row['QUERY PLAN']).join('\n');
    expect(text).toContain('jsonb_path_exists');
    expect(text).not.toContain('span_json_within_caps');
  });
});

describe('idempotency', () => {
  const batch = [span('root', { start: 0, end: 100 }), span('a', { parent: 'root', start: 10, end: 50, status: 'error' })];

  it('a retried batch records nothing and counts nothing twice', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      expect(await recordSpans(tx, batch)).toBe(2);
      const before = await summaries(tx);
      expect(await recordSpans(tx, batch)).toBe(0);
      expect(await storedSpans(tx)).toHaveLength(2);
      expect(await summaries(tx)).toEqual(before);
      expect(before[0]).toMatchObject({ span_count: 2, error_count: 1 });
    });
  });

  it('a batch that partly overlaps a stored one records only the new spans', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, batch);
      expect(await recordSpans(tx, [...batch, span('b', { parent: 'root', start: 60, end: 90 })])).toBe(1);
      expect((await summaries(tx))[0]).toMatchObject({ span_count: 3, error_count: 1 });
    });
  });

  it('a span repeated inside one batch is recorded once', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      expect(await recordSpans(tx, [batch[0], batch[0], batch[1]])).toBe(2);
      expect((await summaries(tx))[0]).toMatchObject({ span_count: 2 });
    });
  });

  it('the first write wins: sending a stored span again with other data changes nothing', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, batch);
      await recordSpans(tx, [{ ...batch[0], name: 'hijacked' }]);
      const rows = await storedSpans(tx);
      expect(rows[0]).toMatchObject({ name: 'root', organization_id: ORG_A });
    });
  });

  it("another organization's span with the same ids is its own span: the ids seen in a traceparent take nothing from the victim", async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      // The attacker records the ids first; the victim's span must still be stored.
      expect(await recordSpans(tx, [{ ...batch[0], name: 'squatted', organization_id: ORG_B }])).toBe(1);
      expect(await recordSpans(tx, batch)).toBe(batch.length);
      const rows = await tx`select name, organization_id::text from tracing.spans
                             where span_id = tracing.hex_to_span_id(${batch[0]!.span_id}) order by name`;
      expect(rows).toEqual([
        { name: 'root', organization_id: ORG_A },
        { name: 'squatted', organization_id: ORG_B },
      ]);
      const counts = await tx`select organization_id::text, span_count from tracing.trace_summaries order by organization_id`;
      expect(counts).toEqual([
        { organization_id: ORG_A, span_count: batch.length },
        { organization_id: ORG_B, span_count: 1 },
      ]);
    });
  });
});

describe('trace summaries', () => {
  it('measure the whole trace, not the root span', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      // The root answers after 100 ms; the work it started runs until 2.5 s.
      await recordSpans(tx, [
        span('root', { start: 0, end: 100, name: 'POST /orders', service: 'edge' }),
        span('wf', { parent: 'root', start: 80, end: 2500, name: 'workflow', service: 'temporal' }),
      ]);
      const [summary] = await summaries(tx);
      expect(summary).toMatchObject({
        trace_id: traceId('t1'),
        duration_ms: 2500,
        root_span_id: spanId('root'),
        root_name: 'POST /orders',
        root_service: 'edge',
        services: ['edge', 'temporal'],
        span_count: 2,
        error_count: 0,
      });
    });
  });

  it('merge batches: earliest start, latest end, union of services, a root that arrives late', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, [span('act', { parent: 'wf', start: 300, end: 900, service: 'worker', status: 'error' })]);
      let [summary] = await summaries(tx);
      expect(summary).toMatchObject({ root_span_id: null, root_name: null, duration_ms: 600, services: ['worker'] });

      await recordSpans(tx, [
        span('wf', { parent: 'root', start: 100, end: 1200, service: 'temporal' }),
        span('root', { start: 0, end: 150, service: 'edge', name: 'GET /' }),
      ]);
      [summary] = await summaries(tx);
      expect(summary).toMatchObject({
        root_span_id: spanId('root'),
        root_name: 'GET /',
        duration_ms: 1200,
        services: ['edge', 'temporal', 'worker'],
        span_count: 3,
        error_count: 1,
      });
      expect(summary!.start_time).toEqual(new Date(at(0)));

      // A second parentless span that starts later does not displace the root.
      await recordSpans(tx, [span('late', { start: 500, end: 600, name: 'late root' })]);
      [summary] = await summaries(tx);
      expect(summary).toMatchObject({ root_span_id: spanId('root'), span_count: 4 });
    });
  });

  it('merged from batches equal the summary of the same spans recorded in one batch', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const spans = (org: string) => [
        span('child', { parent: 'root', start: 50, end: 400, service: 'worker', status: 'error', org }),
        span('root', { start: 10, end: 300, service: 'edge', name: 'GET /', org }),
        span('root2', { start: 20, end: 30, service: 'cron', org }),
        span('late', { parent: 'root', start: 500, end: 900, service: 'edge', org, session: '0e5d1c7a-2b3f-4c9d-8e1a-6f7b8c9d0a1b' }),
      ];
      // ORG_A gets them one batch at a time, in an unhelpful order; ORG_B all at once.
      for (const one of spans(ORG_A)) await recordSpans(tx, [one]);
      await recordSpans(tx, spans(ORG_B));
      const [merged, whole] = await summaries(tx);
      expect(merged!.organization_id).toBe(ORG_A);
      expect({ ...merged, organization_id: null }).toEqual({ ...whole, organization_id: null });
      expect(whole).toMatchObject({ root_name: 'GET /', services: ['cron', 'edge', 'worker'], span_count: 4, error_count: 1 });
    });
  });

  it('keep one summary per organization when two tenants use the same trace id', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, [span('a', { start: 0, end: 10, org: ORG_A }), span('b', { start: 0, end: 99, org: ORG_B })]);
      const rows = await summaries(tx);
      expect(rows.map((r) => [r.organization_id, r.duration_ms, r.span_count])).toEqual([
        [ORG_A, 10, 1],
        [ORG_B, 99, 1],
      ]);
    });
  });

  it('remember the first session id seen', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const session = '0e5d1c7a-2b3f-4c9d-8e1a-6f7b8c9d0a1b';
      await recordSpans(tx, [span('a', { start: 0, end: 10, session })]);
      expect((await summaries(tx))[0]!.session_id).toBe(session);
    });
  });
});

describe('a bad span is rejected alone, named with its field, and the others are stored', () => {
  const good = span('ok', { start: 0, end: 10 });
  // [case, change to the second span, field named, reason]
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['trace_id too short', { trace_id: 'abc' }, 'trace_id', /^trace_id must be 32 lowercase hex characters/],
    ['trace_id uppercase', { trace_id: '4BF92F3577B34DA6A3CE929D0E0E4736' }, 'trace_id', /^trace_id must be 32 lowercase hex/],
    ['trace_id all zeros', { trace_id: '0'.repeat(32) }, 'trace_id', /^trace_id .*not all zeros/],
    ['trace_id missing', { trace_id: undefined }, 'trace_id', /^trace_id must be/],
    ['span_id uppercase', { span_id: 'ABCDEF0123456789' }, 'span_id', /^span_id must be 16 lowercase hex characters/],
    ['span_id all zeros', { span_id: '0'.repeat(16) }, 'span_id', /^span_id must be 16 lowercase hex characters, not all zeros/],
    ['span_id a number', { span_id: 42 }, 'span_id', /^span_id must be 16 lowercase hex/],
    ['parent_span_id malformed', { parent_span_id: 'xyz' }, 'parent_span_id', /^parent_span_id must be 16 lowercase hex/],
    ['name missing', { name: undefined }, 'name', /^name is required$/],
    ['name empty', { name: '' }, 'name', /^name is required$/],
    ['kind unknown', { kind: 'SPAN_KIND_SERVER' }, 'kind', /^kind must be one of internal, server, client, producer, consumer$/],
    ['status unknown', { status: 'failed' }, 'status', /^status must be one of unset, ok, error$/],
    [
      'start_time without offset',
      { start_time: '2025-03-01T12:00:00' },
      'start_time',
      /^start_time must be an ISO 8601 timestamp with a time zone offset$/,
    ],
    ['start_time not a time', { start_time: 'yesterday' }, 'start_time', /^start_time must be an ISO 8601/],
    ['start_time impossible date', { start_time: '2025-02-30T12:00:00Z' }, 'start_time', /^start_time is not a valid timestamp$/],
    ['end_time impossible hour', { end_time: '2025-03-01T25:00:00Z' }, 'end_time', /^end_time is not a valid timestamp$/],
    ['end_time missing', { end_time: undefined }, 'end_time', /^end_time must be an ISO 8601/],
    ['end before start', { start_time: at(10), end_time: at(5) }, 'end_time', /^end_time must not be before start_time$/],
    ['attributes an array', { attributes: [1, 2] }, 'attributes', /^attributes must be a JSON object$/],
    ['events an object', { events: { name: 'x' } }, 'events', /^events must be a JSON array$/],
    ['links a string', { links: 'x' }, 'links', /^links must be a JSON array$/],
    ['session_id not a uuid', { session_id: 'session-1' }, 'session_id', /^session_id must be a uuid/],
    [
      'organization_id nil',
      { organization_id: '00000000-0000-0000-0000-000000000000' },
      'organization_id',
      /^organization_id must be a uuid/,
    ],
    ['correlation_id not a uuid', { correlation_id: '{x}' }, 'correlation_id', /^correlation_id must be a uuid/],
  ];

  it.each(cases)('%s', async (_case, change, field, reason) => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const bad = { ...span('bad', { start: 0, end: 10 }), ...change };
      for (const [key, value] of Object.entries(change)) if (value === undefined) delete bad[key];
      const [result] = await recordSpansReporting(tx, [good, bad]);
      expect(result!.recorded).toBe(1);
      expect(result!.rejected).toHaveLength(1);
      expect(result!.rejected[0]).toMatchObject({ index: 1, field });
      expect(result!.rejected[0]!.reason).toMatch(reason);
      expect((await storedSpans(tx)).map((s) => s.span_id)).toEqual([good.span_id]);
      expect((await summaries(tx))[0]).toMatchObject({ span_count: 1 });
    });
  });

  it('names the spans it rejects with their readable ids, and stores the rest of a large batch', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const spans = Array.from({ length: 500 }, (_, i) => span(`s${i}`, { start: i, end: i + 1 }));
      spans[377] = { ...spans[377]!, span_id: 'nope' };
      spans[42] = { ...spans[42]!, start_time: at(50), end_time: at(1) };
      const [result] = await recordSpansReporting(tx, spans);
      expect(result!.recorded).toBe(498);
      expect(result!.rejected).toEqual([
        {
          index: 42,
          trace_id: traceId('t1'),
          span_id: spans[42]!.span_id,
          field: 'end_time',
          reason: 'end_time must not be before start_time',
        },
        {
          index: 377,
          trace_id: traceId('t1'),
          field: 'span_id',
          reason: 'span_id must be 16 lowercase hex characters, not all zeros',
        },
      ]);
      expect(await storedSpans(tx)).toHaveLength(498);
    });
  });

  it('rejects an element that is not an object alone, and refuses a batch that is not an array', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const [result] = await recordSpansReporting(tx, [good, 'x', null]);
      expect(result).toEqual({
        recorded: 1,
        rejected: [
          { index: 1, field: 'span', reason: 'span must be a JSON object' },
          { index: 2, field: 'span', reason: 'span must be a JSON object' },
        ],
      });
      await tx`savepoint s`;
      await expect(tx`select * from tracing.record_spans(${tx.json({ spans: [] })}::jsonb)`).rejects.toMatchObject({
        code: '22023',
        message: 'p_spans must be a JSON array of span objects',
      });
      await tx`rollback to savepoint s`;
      await expect(tx`select * from tracing.record_spans(null)`).rejects.toThrow(/^p_spans must be a JSON array/);
    });
  });

  it('rejects a different span sent with ids its organization already used, and is silent about a retry', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, [good]);
      const [retry] = await recordSpansReporting(tx, [good]);
      expect(retry).toEqual({ recorded: 0, rejected: [] });
      const other = span('other', { start: 0, end: 10 });
      const [taken] = await recordSpansReporting(tx, [other, { ...good, name: 'hijacked' }]);
      expect(taken).toEqual({
        recorded: 1,
        rejected: [
          {
            index: 1,
            trace_id: good.trace_id,
            span_id: good.span_id,
            reason: 'a different span with these ids is already recorded; the first one is kept',
          },
        ],
      });
      expect((await storedSpans(tx)).find((s) => s.span_id === good.span_id)).toMatchObject({ name: 'ok' });
    });
  });
});

describe('as one typed array per field: tracing.record_span_columns (what OTLP ingest calls)', () => {
  // Element i of every array is span i; a null array is a field no span has.
  // Ids and times go typed, as ingest sends them: uuid, bigint, timestamptz.
  const columns = (tx: Tx, spans: Array<ReturnType<typeof span>>, overrides: Record<string, unknown> = {}) => {
    const field = (key: string) => spans.map((s) => ((s as Record<string, unknown>)[key] as string | null | undefined) ?? null);
    const values: Record<string, unknown> = {
      trace_id: field('trace_id'),
      span_id: field('span_id').map((id) => (id === null ? null : BigInt.asIntN(64, BigInt(`0x${id}`)).toString())),
      parent_span_id: field('parent_span_id').map((id) => (id === null ? null : BigInt.asIntN(64, BigInt(`0x${id}`)).toString())),
      name: field('name'),
      service: field('service'),
      start_time: field('start_time'),
      end_time: field('end_time'),
      status: field('status'),
      organization_id: field('organization_id'),
      ...overrides,
    };
    const array = (key: string) => (values[key] === undefined || values[key] === null ? null : tx.array(values[key] as string[], 25));
    return tx<{ recorded: number; rejected: Rejection[] }[]>`select * from tracing.record_span_columns(
      ${array('trace_id')}::uuid[], ${array('span_id')}::bigint[], ${array('parent_span_id')}::bigint[], ${array('name')},
      ${array('service')}, ${array('kind')}, ${array('start_time')}::timestamptz[], ${array('end_time')}::timestamptz[],
      ${array('status')}, null, null, null, null, null, null, ${array('organization_id')}::uuid[])`;
  };
  const batch = () => [
    span('root', { start: 0, end: 100, service: 'edge' }),
    span('a', { parent: 'root', start: 10, end: 50, status: 'error', service: 'worker' }),
  ];

  it('stores what record_spans stores for the same spans given as JSON', async () => {
    let fromJson: unknown;
    await inRolledBackTransaction(db.sql, async (tx) => {
      await recordSpans(tx, batch());
      fromJson = [await storedSpans(tx), await summaries(tx)];
    });
    await inRolledBackTransaction(db.sql, async (tx) => {
      const [row] = await columns(tx, batch());
      expect(row).toEqual({ recorded: 2, rejected: [] });
      expect([await storedSpans(tx), await summaries(tx)]).toEqual(fromJson);
      // A retry records nothing.
      expect((await columns(tx, batch()))[0]!.recorded).toBe(0);
    });
  });

  it('refuses arrays of another length than p_trace_id, naming the argument', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await expect(columns(tx, batch(), { name: ['only one'] })).rejects.toMatchObject({
        code: '22023',
        message: 'p_name must be null or have one element per span (2 in p_trace_id)',
      });
    });
  });

  it.each([
    ['a zero span id', { span_id: ['1', '0'] }, 'span_id', 'span_id must not be all zeros'],
    ['a zero parent id', { parent_span_id: [null, '0'] }, 'parent_span_id', 'parent_span_id must not be all zeros (a root has none)'],
    ['the all-zero trace id', { trace_id: [traceId('t1'), '0'.repeat(32)] }, 'trace_id', 'trace_id must not be all zeros'],
    ['no start time', { start_time: [at(0), null] }, 'start_time', 'start_time is required'],
    ['an infinite end time', { end_time: [at(100), 'infinity'] }, 'end_time', 'end_time must be a finite time'],
    [
      'the nil organization',
      { organization_id: [ORG_A, '00000000-0000-0000-0000-000000000000'] },
      'organization_id',
      'organization_id must not be the nil uuid',
    ],
    ['an unknown kind', { kind: ['server', 'sideways'] }, 'kind', 'kind must be one of internal, server, client, producer, consumer'],
  ])('rejects alone the span with %s', async (_case, override, field, reason) => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const [row] = await columns(tx, batch(), override);
      expect(row!.recorded).toBe(1);
      expect(row!.rejected).toEqual([expect.objectContaining({ index: 1, field, reason })]);
      expect(await storedSpans(tx)).toHaveLength(1);
    });
  });
});

describe('who may record', () => {
  it('tracegres_writer records spans without any grant on the tables', async () => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      const recorded = await actAs(tx, 'tracegres_writer', null, () => recordSpans(tx, [span('a', { start: 0, end: 1 })]));
      expect(recorded).toBe(1);
    });
    await inRolledBackTransaction(db.sql, async (tx) => {
      await tx`set local role tracegres_writer`;
      await expect(tx`select * from tracing.spans`).rejects.toThrow(/permission denied/);
    });
  });

  it.each(['tracegres_reader', 'tracegres_admin', 'tracegres_anonymous'])('%s may not', async (role) => {
    await inRolledBackTransaction(db.sql, async (tx) => {
      await tx.unsafe(`set local role ${role}`);
      await expect(recordSpans(tx, [span('a', { start: 0, end: 1 })])).rejects.toThrow(/permission denied for function record_spans/);
    });
  });
});
