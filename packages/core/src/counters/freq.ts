/**
 * Frequency counters over a period (HAProxy's `*_rate(period)` data types), with periods aligned on
 * the wall clock: period k covers [k * period, (k + 1) * period) ms since the epoch, so every node
 * counts in the same windows and the shares of one key can be summed.
 *
 * A share is three numbers: `tick` (the period index of its current count), `curr` (events counted
 * in period `tick`) and `prev` (events of period `tick - 1`).
 *
 * Semantics follow HAProxy's freq_ctr (src/freq_ctr.c, include/haproxy/freq_ctr.h), written anew:
 * - Adding while `now` is still in period `tick` adds to `curr`. Past it, the counter rotates:
 *   `prev` becomes `curr` when exactly one period passed, 0 when more did; `curr` restarts at the
 *   added amount.
 * - Reading weights the previous period's count by the part of the current period still ahead:
 *   total = prev * remain + curr * period, where remain = (end of the current period - now) ms, in
 *   (0, period]; the rate is floor(total / period). A share whose `tick` is the previous period
 *   reads with its `curr` as the previous count and 0 as the current one; an older share reads 0.
 * - Flapping correction at very low rates, as HAProxy: with nothing counted in the current period
 *   and at most 1 in the previous one, the previous count is read whole (the rate stays at 1 until
 *   the window passes, rather than decaying to 0 in between).
 * So a single node's `http_req_rate(10s)` reads exactly as HAProxy's: after the 101st request of
 * the current window it reads at least 101, and a `gt 100` threshold sees it.
 *
 * Sums across nodes add the per-share totals (each with its own flapping correction) and floor
 * once: for one share that is HAProxy's value, and for several it is the sum of their exact rates
 * rounded down once instead of once per node (which would under-count by up to one per node).
 *
 * A share from a clock slightly ahead (tick > the current period) is read as current: nodes' clocks
 * differ by a little, and that share's events did happen.
 */

/** Index of the period holding wall time `now`. */
export function periodIndex(now: number, period: number): number {
  return Math.floor(now / period);
}

/**
 * The share's weighted total at `now` (events x ms; divide by `period` for the rate), with the
 * flapping correction. `nowK` must be periodIndex(now, period).
 */
export function freqTotal(tick: number, curr: number, prev: number, now: number, nowK: number, period: number): number {
  const age = nowK - tick;
  let past: number;
  let cur: number;
  if (age <= 0) {
    past = prev;
    cur = curr;
  } else if (age === 1) {
    past = curr;
    cur = 0;
  } else return 0;
  if (cur === 0 && past <= 1) return past * period;
  return past * ((nowK + 1) * period - now) + cur * period;
}

/** Rate of one share at `now` (HAProxy's read_freq_ctr_period). */
export function freqRead(tick: number, curr: number, prev: number, now: number, period: number): number {
  return Math.floor(freqTotal(tick, curr, prev, now, periodIndex(now, period), period) / period);
}

/**
 * Adds `n` events at `now` to a share held in three arrays at index `i` (rotating it first when its
 * period is over). `curr`/`prev` may be Uint32Array: counts then wrap at 2^32 as HAProxy's do.
 */
export function freqAdd(
  ticks: Float64Array,
  currs: Uint32Array | Float64Array,
  prevs: Uint32Array | Float64Array,
  i: number,
  n: number,
  now: number,
  period: number,
): void {
  const nowK = Math.floor(now / period);
  const tick = ticks[i]!;
  if (tick >= nowK) {
    // Current period (or a clock that stepped back a little: keep counting in the newest period).
    currs[i] = currs[i]! + n;
    return;
  }
  prevs[i] = tick === nowK - 1 ? currs[i]! : 0;
  currs[i] = n;
  ticks[i] = nowK;
}
