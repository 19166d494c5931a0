/**
 * Recent replication-lag samples of one peer, for quantiles at scrape time. Memory is fixed: a ring
 * of `capacity` (ms, at) pairs; at the bound the oldest sample is overwritten. Quantiles cover the
 * samples younger than `windowMs`, so the window is the shorter of `windowMs` and the last
 * `capacity` samples.
 */
export class LagWindow {
  private readonly ms: Float64Array;
  private readonly at: Float64Array;
  private next = 0;
  private size = 0;
  /** Lag of the last sample (ms), 0 before any. */
  last = 0;

  constructor(readonly capacity = 1024, readonly windowMs = 60_000) {
    this.ms = new Float64Array(capacity);
    this.at = new Float64Array(capacity);
  }

  record(lagMs: number, now: number): void {
    this.last = lagMs;
    this.ms[this.next] = lagMs;
    this.at[this.next] = now;
    this.next = (this.next + 1) % this.capacity;
    if (this.size < this.capacity) this.size++;
  }

  /** Samples in the window. */
  count(now = Date.now()): number {
    let n = 0;
    for (let i = 0; i < this.size; i++) if (now - this.at[i]! <= this.windowMs) n++;
    return n;
  }

  /**
   * Quantiles (each q in [0, 1], nearest rank) of the samples in the window, in the order asked;
   * undefined when the window holds no sample. Sorts a copy: scrape time only.
   */
  quantiles(qs: readonly number[], now = Date.now()): number[] | undefined {
    const xs: number[] = [];
    for (let i = 0; i < this.size; i++) if (now - this.at[i]! <= this.windowMs) xs.push(this.ms[i]!);
    if (xs.length === 0) return undefined;
    xs.sort((a, b) => a - b);
    return qs.map((q) => xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(q * xs.length) - 1))]!);
  }
}
