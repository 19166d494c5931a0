/**
 * Yielding to the event loop in long work (config parsing, building backends, clearing a table):
 * `nextTurn()` resolves in the check phase of the next turn, after the pending I/O callbacks ran,
 * so traffic and peer heartbeats are served between two slices of the work.
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
