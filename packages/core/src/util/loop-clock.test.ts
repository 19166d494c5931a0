import { describe, expect, it } from 'vitest';
import { loopNow } from './loop-clock.js';

function spin(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    /* busy: the turn must not end */
  }
}

describe('loopNow', () => {
  it('returns one value for a whole turn, within the turn of the wall clock', () => {
    const before = Date.now();
    const a = loopNow();
    spin(5);
    const b = loopNow();
    expect(b).toBe(a);
    expect(a).toBeGreaterThanOrEqual(before);
    expect(a).toBeLessThanOrEqual(Date.now());
  });

  it('reads the clock again in the next turn', async () => {
    const a = loopNow();
    spin(5);
    await new Promise<void>((resolve) => setImmediate(resolve));
    await new Promise<void>((resolve) => setImmediate(resolve));
    const b = loopNow();
    expect(b - a).toBeGreaterThanOrEqual(5);
    expect(b).toBeLessThanOrEqual(Date.now());
  });

  it('follows the clock across timer turns', async () => {
    const a = loopNow();
    await new Promise<void>((resolve) => setTimeout(resolve, 20));
    const b = loopNow();
    expect(b - a).toBeGreaterThanOrEqual(15);
  });
});
