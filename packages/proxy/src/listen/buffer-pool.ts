/**
 * Spare 4 KiB buffers for connections' own read buffers (HTTP bodies and tunnels, mode tcp) and
 * output buffers replacing a shared one that a queued write kept. Under connection churn every new
 * connection needed fresh ArrayBuffers; their external memory made V8 run a full mark-compact
 * every few hundred milliseconds (a 5-7 ms pause each) and each one touched cold memory.
 *
 * Rules: `give` only a buffer that nothing references any more (its socket is closed, no write
 * or kept bytes point into it). Bound: at most `MAX_SPARE` buffers (4 MiB) are kept; a buffer
 * given beyond that, or of another size, is left to the GC.
 */
export const SPARE_SIZE = 4096;
export const MAX_SPARE = 1024;
const spare: Buffer[] = [];

/** A buffer of `size` bytes (contents undefined): a spare one when the size matches. */
export function takeBuffer(size: number): Buffer {
  if (size === SPARE_SIZE) {
    const b = spare.pop();
    if (b !== undefined) return b;
  }
  return Buffer.allocUnsafe(size);
}

/** Returns a buffer nothing references any more (see the module rules). */
export function giveBuffer(b: Buffer): void {
  if (b.length === SPARE_SIZE && spare.length < MAX_SPARE) spare.push(b);
}

/** Number of spare buffers (tests). */
export function spareCount(): number {
  return spare.length;
}
