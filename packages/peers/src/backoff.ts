/** Reconnect delay: exponential from 100 ms doubling to a 5 s cap, with ±30% jitter so a restarted
 * cluster does not reconnect in lockstep. `attempt` counts consecutive failures from 0. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(5000, 100 * 2 ** Math.min(attempt, 16));
  return Math.round(base * (0.7 + 0.6 * random()));
}
