import { describe, expect, it } from 'vitest';
import { TimerWheel, type WheelTask } from './timer-wheel.js';

describe('TimerWheel', () => {
  it('runs a task once it is due and not before', () => {
    const w = new TimerWheel(10, 16);
    const t0 = w.now;
    const fired: number[] = [];
    const task: WheelTask = { run: (now) => fired.push(now) };
    w.schedule(task, 35);
    w.advance(t0 + 30);
    expect(fired).toEqual([]);
    w.advance(t0 + 40);
    expect(fired.length).toBe(1);
  });

  it('re-parks tasks beyond one revolution and honours cancel and re-schedule', () => {
    const w = new TimerWheel(10, 8);
    const t0 = w.now;
    let far = 0;
    let cancelled = 0;
    let moved = 0;
    const farTask: WheelTask = { run: () => far++ };
    const cancelTask: WheelTask = { run: () => cancelled++ };
    const moveTask: WheelTask = { run: () => moved++ };
    w.schedule(farTask, 500);
    w.schedule(cancelTask, 20);
    w.cancel(cancelTask);
    w.schedule(moveTask, 20);
    w.schedule(moveTask, 60);
    for (let t = 10; t <= 490; t += 10) w.advance(t0 + t);
    expect(far).toBe(0);
    expect(cancelled).toBe(0);
    expect(moved).toBe(1);
    for (let t = 500; t <= 520; t += 10) w.advance(t0 + t);
    expect(far).toBe(1);
  });
});
