import { afterEach, describe, expect, it, vi } from 'vitest';
import { AcceptBalance, CHECK_MS, MIN_SLACK, acceptBalanceBuffer, balanceSlack, readAcceptBalance } from './accept-balance.js';

/**
 * `n` threads over one buffer; `calls[i]` records thread i's pause (true) / resume (false) calls,
 * `nudges` the threads nudged (delivered by `deliver`, as the main thread would, later).
 */
function node(n: number) {
  const buffer = acceptBalanceBuffer(n);
  const calls: boolean[][] = Array.from({ length: n }, () => []);
  const nudges: number[] = [];
  const threads: AcceptBalance[] = Array.from({ length: n }, (_, i) => new AcceptBalance(buffer, i, (p) => calls[i]!.push(p), (to) => nudges.push(to)));
  for (const t of threads) t.start();
  const deliver = (): void => {
    for (const to of nudges.splice(0)) threads[to]!.recheck();
  };
  return { buffer, calls, threads, nudges, deliver };
}

afterEach(() => vi.useRealTimers());

describe('AcceptBalance', () => {
  it('the slack is an eighth of a fair share, at least MIN_SLACK', () => {
    expect(balanceSlack(0, 2)).toBe(MIN_SLACK);
    expect(balanceSlack(80, 2)).toBe(5);
    expect(balanceSlack(10_000, 4)).toBe(313);
  });

  it('pauses a thread above the least loaded + slack and resumes it at half the slack', () => {
    const { threads, calls, buffer } = node(2);
    const [a, b] = threads as [AcceptBalance, AcceptBalance];
    b.set(0);
    for (let n = 1; n <= MIN_SLACK; n++) a.set(n);
    expect(a.isPaused).toBe(false);
    a.set(MIN_SLACK + 1);
    expect(a.isPaused).toBe(true);
    expect(calls[0]).toEqual([true]);
    // Still above min + slack/2 = 1: stays paused.
    b.set(1);
    a.set(MIN_SLACK + 1);
    expect(a.isPaused).toBe(true);
    b.set(2);
    a.set(MIN_SLACK);
    expect(a.isPaused).toBe(false);
    expect(calls[0]).toEqual([true, false]);
    expect(readAcceptBalance(buffer)).toEqual([
      { connections: MIN_SLACK, pauses: 1 },
      { connections: 2, pauses: 0 },
    ]);
  });

  it('never leaves the node without an accepting thread, and the least loaded thread accepts once nudged', () => {
    const { threads, deliver } = node(3);
    // Any order of counts: the thread holding the minimum stays open.
    const rnd = (() => {
      let x = 12345;
      return () => ((x = (x * 1103515245 + 12345) & 0x7fffffff), x);
    })();
    const counts = [0, 0, 0];
    for (let step = 0; step < 5000; step++) {
      const i = rnd() % 3;
      counts[i] = Math.max(0, counts[i]! + ((rnd() & 3) === 0 ? -1 : 1));
      threads[i]!.set(counts[i]!);
      expect(threads.some((t) => !t.isPaused)).toBe(true);
      deliver();
      const min = Math.min(...counts);
      expect(threads.some((t, k) => counts[k] === min && !t.isPaused)).toBe(true);
    }
  });

  it('a burst alternates between two threads without both ever pausing: the one that overtakes nudges the paused one', () => {
    const { threads, deliver, nudges } = node(2);
    const [a, b] = threads as [AcceptBalance, AcceptBalance];
    const counts = [0, 0];
    // 200 connections, each taken by whichever thread accepts (a first, as the kernel wakes it).
    for (let k = 0; k < 200; k++) {
      const i = !a.isPaused ? 0 : 1;
      expect(threads[i]!.isPaused).toBe(false);
      threads[i]!.set(++counts[i]!);
      if (nudges.length > 0) deliver();
    }
    expect(Math.abs(counts[0]! - counts[1]!)).toBeLessThanOrEqual(balanceSlack(200, 2) + 1);
    expect(a.pauses + b.pauses).toBeGreaterThan(0);
  });

  it("re-checks every CHECK_MS, so a pause ends when the others' counts rise (the backstop for a lost nudge)", () => {
    vi.useFakeTimers();
    const { threads, calls } = node(2);
    const [a, b] = threads as [AcceptBalance, AcceptBalance];
    a.set(10);
    expect(a.isPaused).toBe(true);
    // Thread b fills up; its nudge is lost, a hears nothing of its own, the timer notices.
    b.set(10);
    expect(a.isPaused).toBe(true);
    vi.advanceTimersByTime(CHECK_MS);
    expect(a.isPaused).toBe(false);
    expect(calls[0]).toEqual([true, false]);
    // No timer while accepting: nothing wakes the thread for this.
    expect(vi.getTimerCount()).toBe(0);
    a.stop();
  });

  it('stop resumes a paused thread (a draining thread must not keep its pause)', () => {
    const { threads, calls } = node(2);
    const a = threads[0]!;
    a.set(MIN_SLACK + 1);
    expect(a.isPaused).toBe(true);
    a.stop();
    expect(a.isPaused).toBe(false);
    expect(calls[0]).toEqual([true, false]);
  });

  it('a single thread never pauses, and a slot outside the buffer is refused', () => {
    const { threads, calls } = node(1);
    threads[0]!.set(1000);
    expect(calls[0]).toEqual([]);
    expect(() => new AcceptBalance(acceptBalanceBuffer(2), 2, () => {})).toThrow(RangeError);
  });
});
