// The Live toggle of the failed-events and trace search pages keeps the page's other parameters.
import { describe, expect, it } from 'vitest';
import { liveToggleLink } from './router.ts';

describe('liveToggleLink', () => {
  it('sets live=1 and keeps the other parameters', () => {
    expect(liveToggleLink('/traces', new URLSearchParams('service=api&to=2026-01-01'), true)).toBe(
      '/traces?service=api&to=2026-01-01&live=1',
    );
  });

  it('clears live and drops the question mark when nothing is left', () => {
    expect(liveToggleLink('/', new URLSearchParams('live=1'), false)).toBe('/');
    expect(liveToggleLink('/', new URLSearchParams('type=a&live=1'), false)).toBe('/?type=a');
  });

  it('does not change the parameters it was given', () => {
    const params = new URLSearchParams('type=a');
    liveToggleLink('/', params, true);
    expect(params.toString()).toBe('type=a');
  });
});
