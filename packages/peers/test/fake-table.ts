/**
 * In-memory ReplicatedTable for tests: a Map of key -> latest TableUpdate, newest version wins, and a
 * bounded local log (local writes only) that `readUpdates` coalesces per key.
 */
import { randomBytes } from 'node:crypto';
import { compareVersions } from '@stickmesh/core';
import type { ReplicatedTable, TableUpdate } from '../src/types.js';

export class FakeTable implements ReplicatedTable {
  readonly cfg: { id: string; type: string; keyLen: number; size: number; expire: number };
  readonly epoch = randomBytes(8).toString('hex');
  readonly entries = new Map<string, TableUpdate>();
  /** log[i] = key written at seq logBase + i + 1. */
  private log: string[] = [];
  private logBase = 0;
  private counter = 0;
  /** Every update given to applyRemote (the test's echo detector). */
  readonly applied: TableUpdate[] = [];

  constructor(readonly node: string, id = 't1', opts: { type?: string; keyLen?: number; logMax?: number } = {}) {
    this.cfg = { id, type: opts.type ?? 'string', keyLen: opts.keyLen ?? 64, size: 1_000_000, expire: 600_000 };
    this.logMax = opts.logMax ?? 1_000_000;
  }
  private readonly logMax: number;

  get seq(): number {
    return this.logBase + this.log.length;
  }

  get count(): number {
    return this.entries.size;
  }

  /** A local write: new HLC-ish version, logged. */
  set(key: string, server: string): void {
    this.entries.set(key, { key, server, ttl: 600_000, wall: Date.now(), counter: ++this.counter, node: this.node, connCnt: 0, httpReqCnt: 0 });
    this.log.push(key);
    if (this.log.length > this.logMax) {
      const drop = this.log.length - this.logMax;
      this.log = this.log.slice(drop);
      this.logBase += drop;
    }
  }

  readUpdates(fromSeq: number, max: number, out: TableUpdate[]): number {
    if (fromSeq < this.logBase) return -1;
    const seen = new Set<string>();
    let i = fromSeq - this.logBase;
    for (; i < this.log.length && out.length < max; i++) {
      const k = this.log[i]!;
      if (seen.has(k)) continue;
      seen.add(k);
      const e = this.entries.get(k);
      if (e) out.push({ ...e });
    }
    return this.logBase + i;
  }

  exportBatch(cursor: number, max: number, out: TableUpdate[]): number {
    const all = [...this.entries.values()];
    const end = Math.min(all.length, cursor + max);
    for (let i = cursor; i < end; i++) out.push({ ...all[i]! });
    return end >= all.length ? -1 : end;
  }

  applyRemote(u: TableUpdate): boolean {
    this.applied.push(u);
    const cur = this.entries.get(u.key);
    if (cur && compareVersions(cur, u) >= 0) return false;
    this.entries.set(u.key, { ...u });
    return true;
  }
}
