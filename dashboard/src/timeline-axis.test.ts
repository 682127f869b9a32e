// The timeline's time axis: round steps (1, 2 or 5 times a power of ten),
// from 0 to the end of the trace, about five of them.
import { describe, expect, it } from 'vitest';
import { axisTicks } from './timeline.tsx';

describe('axisTicks', () => {
  it('steps by 1, 2 or 5 times a power of ten, from 0 to the total', () => {
    expect(axisTicks(100)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(axisTicks(1300)).toEqual([0, 500, 1000]);
    expect(axisTicks(7)).toEqual([0, 2, 4, 6]);
    expect(axisTicks(0.9)).toEqual([0, 0.2, 0.4, 0.6, 0.8]);
  });

  it('never gives more than about six ticks, nor fewer than two', () => {
    for (const total of [0.003, 1, 9.99, 123, 45_678, 3_600_000]) {
      const ticks = axisTicks(total);
      expect(ticks.length, String(total)).toBeGreaterThanOrEqual(2);
      expect(ticks.length, String(total)).toBeLessThanOrEqual(6);
      expect(ticks.at(-1)!, String(total)).toBeLessThanOrEqual(total * (1 + 1e-9));
    }
  });
});
