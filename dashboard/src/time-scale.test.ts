// Charts over a time range (the RED page's duration lines, the trace search scatter) share one axis rule.
import { describe, expect, it } from 'vitest';
import { timeScale } from './time-scale.ts';

describe('timeScale', () => {
  it('puts from at 0, to at the width, and linearly between', () => {
    const x = timeScale('2026-01-01T00:00:00Z', '2026-01-01T00:01:40Z', 800);
    expect(x('2026-01-01T00:00:00Z')).toBe(0);
    expect(x('2026-01-01T00:00:25Z')).toBe(200);
    expect(x('2026-01-01T00:01:40Z')).toBe(800);
  });

  it('treats an empty range as one millisecond rather than dividing by zero', () => {
    const x = timeScale('2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 160);
    expect(x('2026-01-01T00:00:00Z')).toBe(0);
    expect(x('2026-01-01T00:00:00.001Z')).toBe(160);
  });
});
