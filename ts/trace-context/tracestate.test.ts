import { assert, describe, it } from './test-harness.ts';
import { parseTracestate, truncateTracestate, upsertTracestate } from './tracestate.ts';

function member(key: string, valueLength: number): string {
  return `${key}=${'v'.repeat(valueLength)}`;
}

describe('parseTracestate', () => {
  it('parses and normalises a list, dropping OWS and empty members', () => {
    const result = parseTracestate(' rojo=00f067aa0ba902b7 ,\t, ,congo=t61rcWkgMzE,  ');
    assert.deepEqual(result, {
      ok: true,
      entries: [
        { key: 'rojo', value: '00f067aa0ba902b7' },
        { key: 'congo', value: 't61rcWkgMzE' },
      ],
      header: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE',
      truncated: 0,
    });
  });

  it('ignores long runs of spaces and tabs around members, and refuses a header over the parse cap unread', () => {
    const ows = ' \t'.repeat(2 * 1024);
    const padded = parseTracestate(`${ows}rojo=1${ows},${ows}congo=2${ows}`);
    assert.deepEqual(padded.ok && padded.entries, [
      { key: 'rojo', value: '1' },
      { key: 'congo', value: '2' },
    ]);
    const huge = parseTracestate(' \t'.repeat(32 * 1024));
    assert.deepEqual(huge, { ok: false, reason: 'tracestate is longer than 32768 characters' });
  });

  it('accepts empty and whitespace-only headers as an empty list', () => {
    assert.deepEqual(parseTracestate(''), { ok: true, entries: [], header: null, truncated: 0 });
    assert.deepEqual(parseTracestate(' , \t ,'), { ok: true, entries: [], header: null, truncated: 0 });
    assert.deepEqual(parseTracestate(null), { ok: true, entries: [], header: null, truncated: 0 });
  });

  it('combines several header fields in order', () => {
    const result = parseTracestate(['a=1', 'b=2,c=3']);
    assert.equal(result.ok && result.header, 'a=1,b=2,c=3');
  });

  it('keeps leading spaces of a value and drops trailing ones', () => {
    const result = parseTracestate('a=  x y  ');
    assert.equal(result.ok && result.entries[0]?.value, '  x y');
  });

  // The key cases of the W3C test suite (test_tracestate_key_illegal_vendor_format,
  // test_tracestate_key_length_limit) as Level 2's merged key grammar has them.
  it('accepts every key of the Level 2 grammar, vendor forms included', () => {
    const ok = [
      'a',
      'z0_-*/',
      '1abc', // a key may start with a digit
      'tenant@system',
      '0tenant@s',
      'foo@', // "@" is a key character anywhere but first
      'foo@@bar',
      'foo@bar@baz',
      'tenant@0system',
      `z${'a'.repeat(255)}`, // 256 characters, the longest key
      `t${'x'.repeat(240)}@${'v'.repeat(14)}`,
      `t${'x'.repeat(241)}@v`,
    ];
    for (const key of ok) {
      const result = parseTracestate(`foo=1,${key}=v,bar=2`);
      assert.ok(result.ok, key);
      assert.deepEqual(result.ok && result.entries.map((e) => e.key), ['foo', key, 'bar'], key);
    }
  });

  it('drops the whole list for an invalid key', () => {
    const bad = [
      'A=1', // uppercase
      'a.b=1', // "." is not a key character
      `z${'a'.repeat(256)}=1`, // 257 characters
      '@foo=1', // a key starts with a letter or digit
      '@=1',
      'Tenant@system=1',
      'ke y=1',
      '_a=1',
    ];
    for (const member of bad) {
      const result = parseTracestate(`good=1,${member},other=2`);
      assert.equal(result.ok, false, member);
    }
  });

  it('drops the whole list for an invalid value', () => {
    const bad = ['a=', 'a=b=c', 'a=\tx', 'a=x\ty', 'a=é', `a=${'v'.repeat(257)}`, 'a= ', 'a'];
    for (const member of bad) assert.equal(parseTracestate(`good=1,${member}`).ok, false, JSON.stringify(member));
    assert.ok(parseTracestate(`a=${'v'.repeat(256)}`).ok);
    assert.ok(parseTracestate('a=!"#$%&\'()*+-./:;<>?@[\\]^_`{|}~').ok);
  });

  // test_tracestate_duplicated_keys: the list is propagated with one entry per key.
  it('keeps the left-most entry of a repeated key and propagates the list', () => {
    const cases: Array<[string | string[], string]> = [
      ['a=1,b=2,a=3', 'a=1,b=2'],
      ['foo=1,foo=1', 'foo=1'],
      ['foo=1,foo=2', 'foo=1'],
      [['foo=1', 'foo=2'], 'foo=1'],
    ];
    for (const [value, header] of cases) {
      const result = parseTracestate(value);
      assert.equal(result.ok && result.header, header, String(value));
    }
  });

  it('counts a repeated key once toward the 32 list-members', () => {
    const members = Array.from({ length: 32 }, (_, i) => `k${i}=${i}`);
    const result = parseTracestate([...members, 'k0=again'].join(','));
    assert.equal(result.ok && result.entries.length, 32);
  });

  it('allows 32 list-members and refuses 33', () => {
    const members = Array.from({ length: 33 }, (_, i) => `k${i}=${i}`);
    const thirtyTwo = parseTracestate(members.slice(0, 32).join(','));
    assert.equal(thirtyTwo.ok && thirtyTwo.entries.length, 32);
    assert.equal(parseTracestate(members.join(',')).ok, false);
    // Empty members carry no state and do not count.
    assert.ok(parseTracestate(`${members.slice(0, 32).join(',')},, ,`).ok);
  });

  it('keeps a list of exactly 512 characters whole', () => {
    // 3 members of 127 characters, one of exactly 128, and 3 commas = 512.
    const list = [member('a', 125), member('b', 125), member('c', 125), member('d', 126)].join(',');
    assert.equal(list.length, 512);
    const result = parseTracestate(list);
    assert.equal(result.ok && result.header, list);
  });

  it('truncates an overlong list: entries over 128 characters first, from the right', () => {
    const long1 = member('l1', 200);
    const long2 = member('l2', 200);
    const short = Array.from({ length: 10 }, (_, i) => member(`s${i}`, 20));
    const list = [long1, ...short.slice(0, 5), long2, ...short.slice(5)].join(',');
    assert.ok(list.length > 512);
    const result = parseTracestate(list);
    assert.ok(result.ok);
    // Dropping l2 (the right-most long entry) makes it fit; l1 stays.
    assert.equal(result.ok && result.header, [long1, ...short].join(','));
    assert.equal(result.ok && result.truncated, 1);
  });

  it('then drops entries from the right until the list fits', () => {
    const entries = Array.from({ length: 30 }, (_, i) => ({ key: `key${String(i).padStart(2, '0')}`, value: 'x'.repeat(20) }));
    const kept = truncateTracestate(entries);
    const header = kept.map((e) => `${e.key}=${e.value}`).join(',');
    assert.ok(header.length <= 512);
    assert.deepEqual(kept, entries.slice(0, kept.length));
    const oneMore = entries
      .slice(0, kept.length + 1)
      .map((e) => `${e.key}=${e.value}`)
      .join(',');
    assert.ok(oneMore.length > 512);
  });

  it('drops every long entry, then short ones from the right, when both are needed', () => {
    const longs = Array.from({ length: 3 }, (_, i) => member(`long${i}`, 150));
    const shorts = Array.from({ length: 20 }, (_, i) => member(`s${String(i).padStart(2, '0')}`, 25));
    const result = parseTracestate([longs[0], ...shorts, longs[1], longs[2]].join(','));
    assert.ok(result.ok);
    const keys = result.ok ? result.entries.map((e) => e.key) : [];
    assert.ok(!keys.some((k) => k.startsWith('long')));
    assert.deepEqual(
      keys,
      shorts.slice(0, keys.length).map((s) => s.split('=')[0]),
    );
    assert.ok((result.ok && result.header ? result.header.length : 0) <= 512);
  });
});

describe('upsertTracestate (mutating the tracestate field)', () => {
  it('adds a new key to the left', () => {
    assert.equal(upsertTracestate('rojo=00f067aa0ba902b7', 'congo', 't61rcWkgMzE'), 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
    assert.equal(upsertTracestate(null, 'congo', 'x'), 'congo=x');
  });

  it('moves an existing key to the left with its new value, keeping the others in order', () => {
    assert.equal(upsertTracestate('a=1,congo=old,b=2', 'congo', 'new'), 'congo=new,a=1,b=2');
  });

  it('keeps at most 32 members, dropping from the right', () => {
    const list = Array.from({ length: 32 }, (_, i) => `k${i}=${i}`).join(',');
    const result = upsertTracestate(list, 'me', 'x');
    const keys = result?.split(',').map((m) => m.split('=')[0]);
    assert.equal(keys?.length, 32);
    assert.equal(keys?.[0], 'me');
    assert.equal(keys?.at(-1), 'k30');
  });

  it('ignores an invalid vendor entry and keeps the list', () => {
    assert.equal(upsertTracestate('a=1', 'Bad', 'x'), 'a=1');
    assert.equal(upsertTracestate('a=1', 'good', 'x,y'), 'a=1');
  });
});
