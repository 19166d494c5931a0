/**
 * In-memory ReplicatedCounters for tests: per key two columns, a count (col 0) and a gauge
 * (col 1, conn_cur-like: dropped by dropNode). Each node's share is kept apart; `read` sums them.
 */
import type { ReplicatedCounters, ShareUpdate } from '../src/types.js';

export class FakeCounters implements ReplicatedCounters {
  readonly width = 2;
  onDirty: (() => void) | undefined = undefined;
  /** node -> key -> share */
  readonly shares = new Map<string, Map<string, number[]>>();
  /** Every share given to applyShares, with its node (the test's echo detector). */
  readonly applied: { node: string; u: ShareUpdate }[] = [];
  readonly dropped: string[] = [];
  private readonly dirtyKeys = new Map<string, number>();

  constructor(readonly node: string, readonly id = 't1', readonly schema = 'http_req_cnt,conn_cur') {
    this.shares.set(node, new Map());
  }

  get dirty(): number {
    return this.dirtyKeys.size;
  }

  /** A local write: adds `n` to this node's share of `col`. */
  add(key: string, n = 1, col = 0): void {
    const mine = this.shares.get(this.node)!;
    let v = mine.get(key);
    if (!v) mine.set(key, (v = [0, 0]));
    v[col] = v[col]! + n;
    if (!this.dirtyKeys.has(key)) {
      const was = this.dirtyKeys.size;
      this.dirtyKeys.set(key, Date.now());
      if (was === 0) this.onDirty?.();
    }
  }

  read(key: string, col = 0): number {
    let sum = 0;
    for (const m of this.shares.values()) sum += m.get(key)?.[col] ?? 0;
    return sum;
  }

  shareOf(node: string, key: string): number[] | undefined {
    return this.shares.get(node)?.get(key);
  }

  drainDirty(max: number, out: ShareUpdate[]): number {
    let oldest = 0;
    const mine = this.shares.get(this.node)!;
    for (const [key, at] of this.dirtyKeys) {
      if (out.length >= max) break;
      this.dirtyKeys.delete(key);
      out.push({ key, v: [...mine.get(key)!] });
      if (oldest === 0 || at < oldest) oldest = at;
    }
    return oldest;
  }

  exportShares(cursor: number, max: number, out: ShareUpdate[]): number {
    const all = [...this.shares.get(this.node)!];
    let i = cursor;
    for (; i < all.length && out.length < max; i++) out.push({ key: all[i]![0], v: [...all[i]![1]] });
    return i >= all.length ? -1 : i;
  }

  applyShares(node: string, u: ShareUpdate): boolean {
    this.applied.push({ node, u });
    if (node === this.node || u.v.length !== this.width || u.key.length === 0) return false;
    let m = this.shares.get(node);
    if (!m) this.shares.set(node, (m = new Map()));
    m.set(u.key, [...u.v]);
    return true;
  }

  dropNode(node: string): void {
    this.dropped.push(node);
    for (const v of this.shares.get(node)?.values() ?? []) v[1] = 0;
  }
}
