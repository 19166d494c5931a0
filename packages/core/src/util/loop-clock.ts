/**
 * Wall-clock milliseconds read once per event-loop turn, as HAProxy's `now_ms` is read once per
 * poll loop: every caller in the same turn gets the same value, and only the first pays for
 * `Date.now()` (a call into the runtime, ~55 ns here). The data plane stamps each request five to
 * eight times (start, head, connect, response, log, cookie dates), so this turns a per-request
 * cost into a per-turn one.
 *
 * Promise: `loopNow()` is never earlier than the start of the current turn's first call and never
 * later than `Date.now()`; it lags the true time by at most the time spent in one turn of the
 * loop (the I/O callbacks of one poll, then the check phase). It never goes backwards unless the
 * system clock does.
 *
 * The cached value is dropped by one `setImmediate` per turn in which it was read: nothing is
 * scheduled in a turn that does not read the clock, so an idle process keeps sleeping.
 */

let cached = 0;
let valid = false;

function expire(): void {
  valid = false;
}

/** The current turn's wall clock in ms (see the module comment). */
export function loopNow(): number {
  if (valid) return cached;
  cached = Date.now();
  valid = true;
  setImmediate(expire);
  return cached;
}
