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

  it('keeps no reference to a cancelled task and one entry per rescheduled task', () => {
    const w = new TimerWheel(10, 64);
    const t0 = w.now;
    const tasks: WheelTask[] = Array.from({ length: 1000 }, () => ({ run: () => {} }));
    for (const t of tasks) w.schedule(t, 300);
    expect(w.pending()).toBe(1000);
    for (const t of tasks) w.cancel(t);
    expect(w.pending()).toBe(0);
    expect(tasks.some((t) => w.holds(t))).toBe(false);
    expect(w.retained()).toBe(0);

    let runs = 0;
    const again: WheelTask = { run: () => runs++ };
    // Earlier and later deadlines alike: only the latest entry stays.
    for (const ms of [500, 50, 200, 30, 100]) w.schedule(again, ms);
    expect(w.pending()).toBe(1);
    expect(w.retained()).toBe(1);
    w.advance(t0 + 60);
    expect(runs).toBe(0);
    w.advance(t0 + 110);
    expect(runs).toBe(1);
    expect(w.holds(again)).toBe(false);
    w.advance(t0 + 700);
    expect(runs).toBe(1);
  });
});

