import { describe, expect, it } from 'vitest';
import type { StickTableConfig } from '../config/model.js';
import { DIGEST_BUCKETS, StickTable } from './stick-table.js';
import type { TableUpdate } from './types.js';
import { rng } from '../../../../test/helpers/rng.js';

function cfg(over: Partial<StickTableConfig> = {}): StickTableConfig {
  return { id: 'be', name: 'be', type: 'ip', keyLen: 32, size: 1000, expire: 0, store: ['conn_cnt'], srvkey: 'name', loc: { file: 'test', line: 1 }, ...over };
}

function upd(key: string, server: string, wall: number, counter: number, node: string, ttl = 0, connCnt = 0): TableUpdate {
  return { key, server, ttl, wall, counter, node, connCnt, httpReqCnt: 0 };
}


function all(t: StickTable): TableUpdate[] {
  const out: TableUpdate[] = [];
  let c = 0;
  while (c !== -1) c = t.exportBatch(c, 1000, out);
  return out;
}

/** A fresh table (new random index seed, as on another node) holding exactly `t`'s live entries. */
function rebuilt(t: StickTable): StickTable {
  const r = new StickTable({ ...t.cfg }, { shared: t.shared, node: 'other', now: t.now });
  for (const u of all(t)) expect(r.applyRemote(u)).toBe(true);
  return r;
}

const differing = (a: Uint32Array, b: Uint32Array): number[] => {
  const out: number[] = [];
  for (let i = 0; i < DIGEST_BUCKETS; i++) if (a[2 * i] !== b[2 * i] || a[2 * i + 1] !== b[2 * i + 1]) out.push(i);
  return out;
};

// One contract, run on both backends: plain ArrayBuffers and SharedArrayBuffers (nbthread).
for (const shared of [false, true]) {
describe(`StickTable bucket digests (shared: ${shared})`, () => {
  describe('StickTable bucket digests', () => {
    it('an empty table has all-zero digests of DIGEST_BUCKETS x 2 lanes', () => {
      const t = new StickTable(cfg(), { shared, node: 'a' });
      const d = t.bucketDigests();
      expect(d.length).toBe(2 * DIGEST_BUCKETS);
      expect(d.every((x) => x === 0)).toBe(true);
    });

    it('stay equal to a from-scratch rebuild through random writes, deletes, expiry, eviction and sweeps', () => {
      let now = 1_000_000;
      const t = new StickTable(cfg({ size: 300, expire: 5000 }), { shared, node: 'a', now: () => now });
      const r = rng(42);
      for (let i = 0; i < 20_000; i++) {
        const key = `10.0.${(r() * 4) | 0}.${(r() * 250) | 0}`;
        const op = r();
        if (op < 0.45) t.setLocal(key, `s${(r() * 5) | 0}`);
        else if (op < 0.8) t.applyRemote(upd(key, `s${(r() * 5) | 0}`, now + ((r() * 2000) | 0) - 1000, (r() * 10) | 0, r() < 0.5 ? 'b' : 'c', (r() * 6000) | 0));
        else if (op < 0.88) t.delete(key);
        else if (op < 0.9) t.lookup(key);
        else if (op < 0.905) t.sweep(10);
        now += (r() * 20) | 0;
        if (i % 2500 === 2499) {
          // Remove every expired entry, then the digests must describe exactly the live entries.
          t.sweep(1e9);
          expect(differing(t.bucketDigests(), rebuilt(t).bucketDigests())).toEqual([]);
        }
      }
      expect(t.stats.evictions).toBeGreaterThan(0);
      expect(t.stats.expired).toBeGreaterThan(0);
      t.clear();
      expect(t.bucketDigests().every((x) => x === 0)).toBe(true);
    });

    it('are independent of arrival order, remaining TTL and counters', () => {
      const ups: TableUpdate[] = [];
      for (let i = 0; i < 500; i++) ups.push(upd(`192.168.${i >> 8}.${i & 255}`, `s${i % 7}`, 1000 + i, i % 3, i % 2 ? 'b' : 'c', 1000 + i));
      const a = new StickTable(cfg({ expire: 60_000 }), { shared, node: 'a' });
      const b = new StickTable(cfg({ expire: 60_000 }), { shared, node: 'b' });
      for (const u of ups) a.applyRemote(u);
      for (const u of [...ups].reverse()) b.applyRemote({ ...u, ttl: 50_000, connCnt: 9 });
      expect(differing(a.bucketDigests(), b.bucketDigests())).toEqual([]);
      expect(a.digest()).toBe(b.digest());
    });

    it('one differing key changes exactly its own bucket', () => {
      const a = new StickTable(cfg(), { shared, node: 'a' });
      const b = new StickTable(cfg(), { shared, node: 'b' });
      for (let i = 0; i < 200; i++) {
        const u = upd(`10.1.0.${i}`, 's1', 5000, 0, 'c');
        a.applyRemote(u);
        b.applyRemote(u);
      }
      b.applyRemote(upd('10.1.0.7', 's2', 6000, 0, 'c'));
      expect(differing(a.bucketDigests(), b.bucketDigests())).toEqual([a.bucketOfKey('10.1.0.7')]);
      expect(a.bucketOfKey('10.1.0.7')).toBe(b.bucketOfKey('::ffff:10.1.0.7'));
      expect(a.bucketOfKey('not-an-ip')).toBe(-1);
      // Same server, newer version: still a difference (the version is part of the digest).
      a.applyRemote(upd('10.1.0.7', 's2', 6000, 1, 'c'));
      expect(differing(a.bucketDigests(), b.bucketDigests())).toEqual([a.bucketOfKey('10.1.0.7')]);
      b.applyRemote(upd('10.1.0.7', 's2', 6000, 1, 'c'));
      expect(differing(a.bucketDigests(), b.bucketDigests())).toEqual([]);
    });

    it('exportBuckets returns exactly the wanted buckets (tombstones included) and removes expired entries', () => {
      let now = 10_000;
      const t = new StickTable(cfg({ expire: 1000 }), { shared, node: 'a', now: () => now });
      for (let i = 0; i < 400; i++) t.setLocal(`10.2.${i >> 8}.${i & 255}`, `s${i % 3}`);
      t.delete('10.2.0.5');
      const want = new Uint8Array(DIGEST_BUCKETS);
      const wanted = new Set<number>();
      for (let b = 0; b < DIGEST_BUCKETS; b += 3) {
        want[b] = 1;
        wanted.add(b);
      }
      const out: TableUpdate[] = [];
      let c = 0;
      while (c !== -1) c = t.exportBuckets(want, c, 7, out);
      const expected = all(t).filter((u) => wanted.has(t.bucketOfKey(u.key)));
      expect(out.map((u) => u.key).sort()).toEqual(expected.map((u) => u.key).sort());
      expect(out.length).toBeGreaterThan(50);
      expect(out.some((u) => u.server === '')).toBe(t.bucketOfKey('10.2.0.5') % 3 === 0);

      // Expired but not yet swept: still in the bucket digests until exportBuckets visits the bucket.
      now += 2000;
      const before = t.bucketDigests();
      const empty = new StickTable(cfg({ expire: 1000 }), { shared, node: 'b', now: () => now });
      expect(differing(before, empty.bucketDigests()).length).toBeGreaterThan(0);
      want.fill(1);
      const none: TableUpdate[] = [];
      c = 0;
      while (c !== -1) c = t.exportBuckets(want, c, 1000, none);
      expect(none).toEqual([]);
      expect(t.count).toBe(0);
      expect(differing(t.bucketDigests(), empty.bucketDigests())).toEqual([]);
    });

    it('exportBuckets with scanMax examines at most that many slots per call and still returns every wanted entry', () => {
      const t = new StickTable(cfg(), { shared, node: 'a' });
      for (let i = 0; i < 1000; i++) t.setLocal(`10.3.${i >> 8}.${i & 255}`, 's1');
      const want = new Uint8Array(DIGEST_BUCKETS);
      want[t.bucketOfKey('10.3.0.1')] = 1;
      const out: TableUpdate[] = [];
      let c = 0;
      let calls = 0;
      while (c !== -1) {
        const from = c;
        c = t.exportBuckets(want, c, 1000, out, 64);
        calls++;
        if (c !== -1) expect(c - from).toBeLessThanOrEqual(64);
      }
      expect(calls).toBeGreaterThanOrEqual(Math.ceil(1000 / 64));
      const expected = all(t).filter((u) => t.bucketOfKey(u.key) === t.bucketOfKey('10.3.0.1'));
      expect(out.map((u) => u.key).sort()).toEqual(expected.map((u) => u.key).sort());
      expect(out.length).toBeGreaterThan(0);
    });
  });
});
}
