/**
 * Failed-handshake budgets per source address: a token bucket each (`burst` tokens, refilled at
 * `perSecond`). A failure takes a token; a source with less than one token is over budget and
 * refused before any parsing or crypto.
 *
 * Bound: at most `maxSources` buckets. Buckets that have refilled completely are equivalent to no
 * bucket and are removed by `prune()`; when the map is full anyway, the bucket created longest ago
 * is dropped to make room (that source starts again with a full budget).
 */
interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  private readonly map = new Map<string, Bucket>();

  constructor(
    readonly burst: number,
    readonly perSecond: number,
    readonly maxSources: number,
  ) {}

  get size(): number {
    return this.map.size;
  }

  private refill(b: Bucket, now: number): void {
    if (now > b.at) {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
      b.at = now;
    }
  }

  /** True when `source` has less than one token left (its next failure would exceed the budget). */
  over(source: string, now: number): boolean {
    const b = this.map.get(source);
    if (!b) return this.burst < 1;
    this.refill(b, now);
    return b.tokens < 1;
  }

  /** Records one failure of `source`. */
  take(source: string, now: number): void {
    let b = this.map.get(source);
    if (!b) {
      if (this.map.size >= this.maxSources) this.prune(now);
      if (this.map.size >= this.maxSources) {
        const oldest = this.map.keys().next().value;
        if (oldest !== undefined) this.map.delete(oldest);
      }
      b = { tokens: this.burst, at: now };
      this.map.set(source, b);
    } else {
      this.refill(b, now);
    }
    b.tokens = Math.max(0, b.tokens - 1);
  }

  /** Removes buckets that have refilled completely. */
  prune(now: number): void {
    for (const [k, b] of this.map) {
      this.refill(b, now);
      if (b.tokens >= this.burst) this.map.delete(k);
    }
  }
}
