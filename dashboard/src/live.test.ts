// Reading the server-sent events of the live stream.
import { describe, expect, it } from 'vitest';
import { parseServerSentEvent } from './live.ts';

describe('parseServerSentEvent', () => {
  it('reads the event name, data and retry of a block', () => {
    expect(parseServerSentEvent('event: failed-event\ndata: {"rowId":"1"}')).toEqual({
      event: 'failed-event',
      data: '{"rowId":"1"}',
      retry: undefined,
    });
    expect(parseServerSentEvent('retry: 3000\nevent: ready\ndata: {}')).toEqual({ event: 'ready', data: '{}', retry: 3000 });
    expect(parseServerSentEvent('data: a\ndata: b')).toEqual({ event: 'message', data: 'a\nb', retry: undefined });
  });

  it('skips comments (heartbeats) and blocks without data', () => {
    expect(parseServerSentEvent(': heartbeat')).toBeNull();
    expect(parseServerSentEvent('event: nothing')).toBeNull();
  });
});
