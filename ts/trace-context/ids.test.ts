import { assert, describe, it } from './test-harness.ts';
import { generateSpanId, generateTraceId } from './ids.ts';

describe('id generation', () => {
  it('makes 32-hex trace ids and 16-hex span ids, lowercase and never all zero', () => {
    for (let i = 0; i < 200; i++) {
      const traceId = generateTraceId();
      const spanId = generateSpanId();
      assert.match(traceId, /^[0-9a-f]{32}$/);
      assert.match(spanId, /^[0-9a-f]{16}$/);
      assert.notEqual(traceId, '0'.repeat(32));
      assert.notEqual(spanId, '0'.repeat(16));
    }
  });

  it('retries when the random source yields all zeros', () => {
    const original = crypto.getRandomValues.bind(crypto);
    let calls = 0;
    const stub = <T extends ArrayBufferView | null>(array: T): T => {
      calls++;
      if (calls === 1 && array instanceof Uint8Array) {
        array.fill(0);
        return array;
      }
      return original(array as never) as T;
    };
    Object.defineProperty(crypto, 'getRandomValues', { value: stub, configurable: true, writable: true });
    try {
      const spanId = generateSpanId();
      assert.equal(calls, 2);
      assert.notEqual(spanId, '0'.repeat(16));
    } finally {
      Object.defineProperty(crypto, 'getRandomValues', { value: original, configurable: true, writable: true });
    }
  });
});
