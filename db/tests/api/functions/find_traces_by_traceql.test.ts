// The TraceQL subset: tracing.traceql_to_filter reads it into the search
// filter, api.find_traces_by_traceql runs it; anything outside the subset is
// refused with an error naming the construct, never run as something else.
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/test-database.ts';
import { at, recordSpans, span, traceId } from '../../helpers/trace-fixtures.ts';

const db = useTestDatabase();

async function filterOf(query: string): Promise<unknown> {
  const [row] = await db.sql`select tracing.traceql_to_filter(${query}) as filter`;
  return row!.filter;
}

describe('reading TraceQL', () => {
  it('reads intrinsics, attributes and values of every kind', async () => {
    expect(await filterOf('{ resource.service.name = "checkout" && status = error && kind = server }')).toEqual({
      spans: {
        and: [
          { field: 'service', op: '=', value: 'checkout' },
          { field: 'status', op: '=', value: 'error' },
          { field: 'kind', op: '=', value: 'server' },
        ],
      },
    });
    expect(await filterOf('{ duration > 1.5s || name =~ "^GET \\\\/" }')).toEqual({
      spans: {
        or: [
          { field: 'duration_ms', op: '>', value: 1500 },
          { field: 'name', op: '=~', value: '^GET \\/' },
        ],
      },
    });
    expect(
      await filterOf('{ span.http.status_code >= 500 && resource.deployment = "eu" && .cache.hit = false && duration <= 250us }'),
    ).toEqual({
      spans: {
        and: [
          { attribute: 'http.status_code', op: '>=', value: 500 },
          { attribute: 'deployment', op: '=', value: 'eu' },
          { attribute: 'cache.hit', op: '=', value: false },
          { field: 'duration_ms', op: '<=', value: 0.25 },
        ],
      },
    });
  });

  it('binds && tighter than ||, and reads parentheses', async () => {
    expect(await filterOf('{ name = "a" || name = "b" && status = error }')).toEqual({
      spans: {
        or: [
          { field: 'name', op: '=', value: 'a' },
          {
            and: [
              { field: 'name', op: '=', value: 'b' },
              { field: 'status', op: '=', value: 'error' },
            ],
          },
        ],
      },
    });
    expect(await filterOf('{ (name = "a" || name = "b") && status = error }')).toEqual({
      spans: {
        and: [
          {
            or: [
              { field: 'name', op: '=', value: 'a' },
              { field: 'name', op: '=', value: 'b' },
            ],
          },
          { field: 'status', op: '=', value: 'error' },
        ],
      },
    });
  });

  it('reads the structural operators and && || between spansets', async () => {
    const a = { field: 'service', op: '=', value: 'checkout' };
    const b = { field: 'status', op: '=', value: 'error' };
    for (const [op, relation] of [
      ['>>', 'descendant'],
      ['>', 'child'],
      ['<<', 'ancestor'],
      ['<', 'parent'],
      ['~', 'sibling'],
    ]) {
      expect(await filterOf(`{ resource.service.name = "checkout" } ${op} { status = error }`)).toEqual({ relation, left: a, right: b });
    }
    expect(await filterOf('{ resource.service.name = "checkout" } && { status = error } || { }')).toEqual({
      or: [{ and: [{ spans: a }, { spans: b }] }, { spans: { field: 'duration_ms', op: '>=', value: 0 } }],
    });
  });

  it('reads traceDuration as a condition on the trace', async () => {
    expect(await filterOf('{ traceDuration > 2s && name = "GET /" }')).toEqual({
      and: [{ spans: { field: 'name', op: '=', value: 'GET /' } }, { trace_duration_ms: { op: '>', value: 2000 } }],
    });
    expect(await filterOf('{ traceDuration > 100ms }')).toEqual({ trace_duration_ms: { op: '>', value: 100 } });
  });

  it.each([
    ['a pipeline', '{ status = error } | select(span.x)', /unsupported construct "\|" at position 20/],
    ['a negated structural operator', '{ name = "a" } !>> { name = "b" }', /unsupported construct "!"/],
    ['an unknown intrinsic', '{ rootName = "a" }', /unsupported construct "rootName" at position 3 \(expected a field/],
    ['a bare word for a string', '{ name = checkout }', /unsupported construct "checkout" .*expected a quoted string/],
    ['an unclosed spanset', '{ name = "a"', /ends early|unsupported construct/],
    ['traceDuration under ||', '{ traceDuration > 1s || name = "a" }', /p_query may join traceDuration only with && in a spanset/],
    ['an empty query', '  ', /p_query is empty/],
    ['an unterminated string', '{ name = "a }', /unterminated string at position 10/],
  ])('refuses %s, naming it', async (_case, query, message) => {
    const error = await filterOf(query).catch((e: { message: string; code: string }) => e);
    expect((error as { message: string }).message).toMatch(message);
    expect((error as { code: string }).code).toBe('22023');
  });
});

describe('api.find_traces_by_traceql', () => {
  beforeAll(async () => {
    await recordSpans(db.sql, [
      span('root', { trace: 'ok', start: 0, end: 100, name: 'POST /checkout', service: 'checkout' }),
      span('pay', { trace: 'ok', parent: 'root', start: 10, end: 90, name: 'charge', service: 'payments' }),
      span('root', { trace: 'failed', start: 1000, end: 1500, name: 'POST /checkout', service: 'checkout' }),
      span('pay', { trace: 'failed', parent: 'root', start: 1010, end: 1490, name: 'charge', service: 'payments', status: 'error' }),
    ]);
  });

  it('runs a query: a checkout with a failed descendant in payments', async () => {
    const rows = await db.sql`
      select trace_id, matched_spans from api.find_traces_by_traceql(
        '{ resource.service.name = "checkout" } >> { resource.service.name = "payments" && status = error }', ${at(-1000)}, ${at(60_000)})`;
    expect(rows.map((r) => r.trace_id)).toEqual([traceId('failed')]);
    expect((rows[0]!.matched_spans as Array<{ name: string }>).map((s) => s.name)).toEqual(['POST /checkout', 'charge']);
  });

  it('names a missing window', async () => {
    const error = await db.sql`select * from api.find_traces_by_traceql('{ }', null, now())`.catch((e: { message: string }) => e);
    expect((error as { message: string }).message).toMatch(/p_from is required/);
  });
});
