// The live view's client side: the socket's URL and the throttle that keeps
// trace signals to one search a second.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { graphqlSocketUrl, throttle } from './live.ts';

describe('graphqlSocketUrl', () => {
  it('uses wss under https and ws otherwise, on the page host', () => {
    expect(graphqlSocketUrl({ protocol: 'https:', host: 'traces.example.com' })).toBe('wss://traces.example.com/graphql');
    expect(graphqlSocketUrl({ protocol: 'http:', host: 'localhost:4000' })).toBe('ws://localhost:4000/graphql');
  });
});

describe('throttle', () => {
  afterEach(() => vi.useRealTimers());

  it('runs at once, then once more at the end of the interval however many came', () => {
    vi.useFakeTimers();
    const call = vi.fn();
    const signal = throttle(call, 1000);
    signal.request();
    expect(call).toHaveBeenCalledTimes(1);
    signal.request();
    signal.request();
    signal.request();
    expect(call).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(999);
    expect(call).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1);
    expect(call).toHaveBeenCalledTimes(2);
    vi.advanceTimersByTime(5000);
    expect(call).toHaveBeenCalledTimes(2);
    signal.request();
    expect(call).toHaveBeenCalledTimes(3);
  });

  it('cancel drops a waiting call', () => {
    vi.useFakeTimers();
    const call = vi.fn();
    const signal = throttle(call, 1000);
    signal.request();
    signal.request();
    signal.cancel();
    vi.advanceTimersByTime(2000);
    expect(call).toHaveBeenCalledTimes(1);
  });
});
