import { describe, expect, it } from 'vitest';
import { toPostgresJson, toPostgresText } from './postgres-json.ts';

describe('toPostgresJson', () => {
  it('replaces NUL and lone surrogates with U+FFFD, keeping pairs and literal escapes', () => {
    const text = toPostgresJson({ nul: 'a\u0000b', high: 'x\ud800', low: '\udc00y', pair: '😀', literal: 'c\\u0000d', 'k\u0000': 1 });
    expect(JSON.parse(text)).toEqual({ nul: 'a\ufffdb', high: 'x\ufffd', low: '\ufffdy', pair: '😀', literal: 'c\\u0000d', 'k\ufffd': 1 });
  });
});

describe('toPostgresText', () => {
  it('replaces NUL and lone surrogates with U+FFFD', () => {
    expect(toPostgresText('a\u0000b\ud800😀')).toBe('a\ufffdb\ufffd😀');
  });
});
