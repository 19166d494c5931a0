import { describe, expect, it } from 'vitest';
import { HybridClock } from './hlc.js';
import { compareVersions, type Version } from './types.js';

describe('HybridClock', () => {
  it('is strictly monotonic when the physical clock stalls or goes backwards', () => {
    let t = 1_000_000;
    const c = new HybridClock('a', () => t);
    const seen: Version[] = [];
    for (let i = 0; i < 50; i++) {
      if (i === 10) t -= 5000; // clock stepped back
      if (i === 30) t += 2;
      seen.push(c.tick());
    }
    for (let i = 1; i < seen.length; i++) expect(compareVersions(seen[i]!, seen[i - 1]!)).toBe(1);
    expect(seen[0]).toEqual({ wall: 1_000_000, counter: 0, node: 'a' });
    expect(seen[1]).toEqual({ wall: 1_000_000, counter: 1, node: 'a' });
  });

  it('resets the counter when the physical clock moves forward', () => {
    let t = 100;
    const c = new HybridClock('a', () => t);
    c.tick();
    c.tick();
    t = 200;
    expect(c.tick()).toEqual({ wall: 200, counter: 0, node: 'a' });
  });

  it('bumps the wall by 1 ms when the counter would pass 65535', () => {
    const c = new HybridClock('a', () => 5);
    let v = c.tick();
    for (let i = 0; i < 65535; i++) v = c.tick();
    expect(v).toEqual({ wall: 5, counter: 65535, node: 'a' });
    expect(c.tick()).toEqual({ wall: 6, counter: 0, node: 'a' });
  });

  it('observe keeps the clock ahead of remote stamps', () => {
    const t = 1000;
    const c = new HybridClock('a', () => t);
    const remote = { wall: 50_000, counter: 7, node: 'b' };
    c.observe(remote);
    const v = c.tick();
    expect(compareVersions(v, remote)).toBe(1);
    expect(v.wall).toBe(50_000);
    // Remote stamp at max counter: the clock must still move past it.
    c.observe({ wall: 60_000, counter: 65535, node: 'b' });
    expect(compareVersions(c.tick(), { wall: 60_000, counter: 65535, node: 'z' })).toBe(1);
    // An older remote stamp does not move the clock back.
    const before = c.tick();
    c.observe({ wall: 10, counter: 0, node: 'b' });
    expect(compareVersions(c.tick(), before)).toBe(1);
  });

  it('after observing, a later physical time wins with counter 0', () => {
    let t = 1000;
    const c = new HybridClock('a', () => t);
    c.observe({ wall: 1500, counter: 3, node: 'b' });
    expect(c.tick()).toEqual({ wall: 1500, counter: 5, node: 'a' });
    t = 2000;
    expect(c.tick()).toEqual({ wall: 2000, counter: 0, node: 'a' });
  });

  it('clocks over the same cells are one clock: stamps from either strictly increase', () => {
    let t = 500;
    const cells = new Float64Array(new SharedArrayBuffer(32));
    const a = new HybridClock('n', () => t, cells, 2);
    const b = new HybridClock('n', () => t, cells, 2);
    const seen = [a.tick(), b.tick(), a.tick()];
    t = 400; // stepped back
    seen.push(b.tick());
    b.observeRaw(900, 7);
    seen.push(a.tick());
    for (let i = 1; i < seen.length; i++) expect(compareVersions(seen[i]!, seen[i - 1]!)).toBe(1);
    expect(seen[4]).toEqual({ wall: 900, counter: 9, node: 'n' });
    expect([cells[0], cells[1]]).toEqual([0, 0]);
  });
});
