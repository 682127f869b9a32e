// tracing.tag_names and tracing.tag_values: the attribute keys and the
// values of one tag over a window, as the caller's role sees them, and the
// bounds every call is held to.
import { beforeAll, describe, expect, it } from 'vitest';
import { actAs, at, ORG_A, ORG_B, recordSpans, span } from '../../helpers/trace-fixtures.ts';
import { inRolledBackTransaction, useTestDatabase } from '../../helpers/test-database.ts';

const db = useTestDatabase();
const FROM = at(-60_000);
const TO = at(60_000);

beforeAll(async () => {
  await recordSpans(db.sql, [
    span('root', { start: 0, end: 100, service: 'edge', extra: { kind: 'server', attributes: { 'http.route': '/orders', retries: 2 } } }),
    span('pay', {
      parent: 'root',
      start: 5,
      end: 50,
      service: 'payments',
      status: 'error',
      extra: { attributes: { 'payment.ok': false, ratio: 0.5 } },
    }),
    span('other', { trace: 't2', start: 0, end: 10, service: 'vault', org: ORG_B, extra: { attributes: { 'vault.key': 'k-1' } } }),
  ]);
});

const asReader = <T>(org: string, body: (tx: Parameters<Parameters<typeof inRolledBackTransaction>[1]>[0]) => Promise<T>) =>
  inRolledBackTransaction(db.sql, (tx) => actAs(tx, 'tracegres_reader', org, () => body(tx)));

describe('tracing.tag_names', () => {
  it('lists the attribute keys of the spans a reader may see, in order', async () => {
    const names = await asReader(ORG_A, (tx) => tx`select tag from tracing.tag_names(${FROM}, ${TO})`);
    expect(names.map((r) => r.tag)).toEqual(['http.route', 'payment.ok', 'ratio', 'retries']);
    const other = await asReader(ORG_B, (tx) => tx`select tag from tracing.tag_names(${FROM}, ${TO})`);
    expect(other.map((r) => r.tag)).toEqual(['vault.key']);
  });
});

describe('tracing.tag_values', () => {
  const values = (tag: string, query: string | null = null) =>
    asReader(ORG_A, (tx) => tx`select type, value from tracing.tag_values(${FROM}, ${TO}, ${tag}, ${query})`);

  it('gives each value with its TraceQL type', async () => {
    expect(await values('resource.service.name')).toEqual([
      { type: 'string', value: 'edge' },
      { type: 'string', value: 'payments' },
    ]);
    expect(await values('kind')).toEqual([
      { type: 'keyword', value: 'internal' },
      { type: 'keyword', value: 'server' },
    ]);
    expect(await values('span.retries')).toEqual([{ type: 'int', value: '2' }]);
    expect(await values('.ratio')).toEqual([{ type: 'float', value: '0.5' }]);
    expect(await values('resource.payment.ok')).toEqual([{ type: 'bool', value: 'false' }]);
  });

  it('keeps the values of the spans a spanset selects', async () => {
    expect(await values('name', '{ status = error }')).toEqual([{ type: 'string', value: 'pay' }]);
    expect(await values('name', '{ }')).toHaveLength(2);
  });

  it('refuses a bad argument with 22023, naming it', async () => {
    await expect(
      inRolledBackTransaction(db.sql, (tx) => tx`select * from tracing.tag_values(${FROM}, ${TO}, 'duration')`),
    ).rejects.toMatchObject({ code: '22023' });
    await expect(values('duration')).rejects.toThrow(/^p_tag must be/);
    await expect(values('name', '{ } >> { }')).rejects.toThrow(/^p_query must be one spanset/);
    await expect(values('name', '{ name = }')).rejects.toThrow(/^p_query /);
    await expect(
      inRolledBackTransaction(db.sql, (tx) => tx`select * from tracing.tag_values(${at(0)}, ${at(8 * 86_400_000)}, 'name')`),
    ).rejects.toThrow(/^p_to must be at most 7 days after p_from/);
    await expect(inRolledBackTransaction(db.sql, (tx) => tx`select * from tracing.tag_names(${FROM}, ${TO}, 5001)`)).rejects.toThrow(
      /^p_limit must be between 1 and 5000/,
    );
  });
});
