// The Tempo API's parameter readers: what each accepts, and that each
// refusal starts with the parameter's name.
import { describe, expect, it } from 'vitest';
import { durationParameter, integerParameter, logfmtParameter, traceIdParameter, windowParameters } from './parameters.ts';

const params = (query: string) => new URLSearchParams(query);

describe('trace ids', () => {
  it('takes 1-32 hex characters in any case, padded to 32', () => {
    expect(traceIdParameter('ABCDEF0123456789abcdef0123456789')).toBe('abcdef0123456789abcdef0123456789');
    expect(traceIdParameter('b000000000000001')).toBe('0000000000000000b000000000000001');
  });
  it('refuses anything else by name', () => {
    for (const bad of ['', 'xyz', '0', '1'.repeat(33), '12 34']) expect(() => traceIdParameter(bad)).toThrow(/^trace id must be/);
  });
});

describe('numbers and windows', () => {
  it('reads an integer within its range, or the default', () => {
    expect(integerParameter(params(''), 'limit', 1, 100, 20)).toBe(20);
    expect(integerParameter(params('limit=100'), 'limit', 1, 100, 20)).toBe(100);
    for (const bad of ['0', '101', '-1', '1.5', '1e2', 'ten']) {
      expect(() => integerParameter(params(`limit=${bad}`), 'limit', 1, 100, 20)).toThrow(/^limit must be an integer from 1 to 100/);
    }
  });
  it('reads start and end in Unix seconds, defaults to a look-back before now, and bounds the window to 7 days', () => {
    const now = new Date('2026-12-06T12:00:00Z');
    expect(windowParameters(params(''), 3600, now)).toEqual({ from: new Date('2026-12-06T11:00:00Z'), to: now });
    expect(windowParameters(params('start=1765000000&end=1765000060.5'), 3600, now)).toEqual({
      from: new Date(1765000000_000),
      to: new Date(1765000060_500),
    });
    expect(() => windowParameters(params('start=10&end=5'), 3600, now)).toThrow(/^start must be before end/);
    expect(() => windowParameters(params('start=0&end=604801'), 3600, now)).toThrow(/^end must be at most 7 days/);
    expect(() => windowParameters(params('end=tomorrow'), 3600, now)).toThrow(/^end must be a time in Unix seconds/);
  });
});

describe('durations', () => {
  it('reads Go durations in milliseconds', () => {
    expect(durationParameter(params('minDuration=100ms'), 'minDuration')).toBe(100);
    expect(durationParameter(params('minDuration=1m30s'), 'minDuration')).toBe(90_000);
    expect(durationParameter(params('minDuration=1.5s'), 'minDuration')).toBe(1500);
    expect(durationParameter(params('minDuration=250us'), 'minDuration')).toBe(0.25);
    expect(durationParameter(params(''), 'minDuration')).toBeUndefined();
  });
  it('refuses anything else by name', () => {
    for (const bad of ['100', 'ms', '1 s', '1d', '1.s', '9'.repeat(65) + 's']) {
      expect(() => durationParameter(params(`maxDuration=${encodeURIComponent(bad)}`), 'maxDuration')).toThrow(
        /^maxDuration must be a duration/,
      );
    }
  });
});

describe('logfmt tags', () => {
  it('reads key=value pairs, quoted values with escapes', () => {
    expect(
      logfmtParameter(params(`tags=${encodeURIComponent('service.name=checkout  http.route="/orders/{id} x" q="a \\"b\\""')}`), 'tags'),
    ).toEqual([
      ['service.name', 'checkout'],
      ['http.route', '/orders/{id} x'],
      ['q', 'a "b"'],
    ]);
    expect(logfmtParameter(params(''), 'tags')).toEqual([]);
  });
  it('refuses a pair without =, an unclosed quote, too many pairs', () => {
    expect(() => logfmtParameter(params('tags=alone'), 'tags')).toThrow(/^tags must be logfmt .*alone has no =value/);
    expect(() => logfmtParameter(params(`tags=${encodeURIComponent('a="open')}`), 'tags')).toThrow(/^tags must be logfmt .*not closed/);
    const many = Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(' ');
    expect(() => logfmtParameter(params(`tags=${encodeURIComponent(many)}`), 'tags')).toThrow(/^tags may hold at most 32 pairs/);
  });
});
