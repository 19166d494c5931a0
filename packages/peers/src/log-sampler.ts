/**
 * Log sampling for refusals: at most one line per key (source and reason) per `intervalMs`; the
 * next line that is let through carries how many were suppressed since the previous one.
 *
 * Bound: at most `maxKeys` keys. Keys whose window has passed are removed by `prune()`; when the
 * map is still full, lines for new keys share one overflow key, so the log rate stays bounded
 * whatever the number of sources.
 */
interface Window {
  until: number;
  suppressed: number;
}

const OVERFLOW = '\0overflow';

export class LogSampler {
  private readonly map = new Map<string, Window>();

  constructor(
    readonly intervalMs: number,
    readonly maxKeys: number,
  ) {}

  get size(): number {
    return this.map.size;
  }

  /**
   * Decides about one line for `key`: returns the number of lines suppressed before it when it may
   * be written (0 for the first), or -1 when it is suppressed (and counted).
   */
  admit(key: string, now: number): number {
    let w = this.map.get(key);
    if (!w && this.map.size >= this.maxKeys) {
      this.prune(now);
      if (this.map.size >= this.maxKeys) {
        key = OVERFLOW;
        w = this.map.get(OVERFLOW);
      }
    }
    if (!w) {
      this.map.set(key, { until: now + this.intervalMs, suppressed: 0 });
      return 0;
    }
    if (now < w.until) {
      w.suppressed++;
      return -1;
    }
    const n = w.suppressed;
    w.until = now + this.intervalMs;
    w.suppressed = 0;
    return n;
  }

  /**
   * Removes keys whose window has passed with nothing suppressed, and keys quiet for a further
   * interval (their suppressed count is then only in the refusal counters, not in a log line).
   */
  prune(now: number): void {
    for (const [k, w] of this.map) {
      if (now >= w.until + (w.suppressed === 0 ? 0 : this.intervalMs)) this.map.delete(k);
    }
  }
}
