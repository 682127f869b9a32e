import { toPostgresJson, toPostgresText } from './postgres-json.ts';
import { assert, describe, it } from './test-harness.ts';

describe('toPostgresJson', () => {
  it('replaces NUL and lone surrogates with U+FFFD, keeping pairs and literal escapes', () => {
    const text = toPostgresJson({ nul: 'a\u0000b', high: 'x\ud800', low: '\udc00y', pair: '😀', literal: 'c\\u0000d', 'k\u0000': 1 });
    assert.deepEqual(JSON.parse(text), {
      nul: 'a\ufffdb',
      high: 'x\ufffd',
      low: '\ufffdy',
      pair: '😀',
      literal: 'c\\u0000d',
      'k\ufffd': 1,
    });
  });
});

describe('toPostgresText', () => {
  it('replaces NUL and lone surrogates with U+FFFD', () => {
    assert.equal(toPostgresText('a\u0000b\ud800😀'), 'a\ufffdb\ufffd😀');
  });
});
