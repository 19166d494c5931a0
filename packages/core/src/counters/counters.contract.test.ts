/**
 * The contract of Counters and ReplicatedCounters (types.ts), as a suite any implementation runs:
 * `counterContract(name, make)`. Called below for CounterTable in plain memory, in shared memory,
 * and through a second instance attached to the shared memory (what a worker thread holds).
 */
import { describe, expect, it } from 'vitest';
import type { StickTableConfig, StoredType } from '../config/model.js';
import { CounterTable } from './counter-table.js';
import type { Counters, ReplicatedCounters, ShareUpdate } from './types.js';

export type AnyCounters = Counters & ReplicatedCounters & { sweep?(budget?: number): number };

export interface MakeOptions {
  node: string;
  now: () => number;
  mode?: 'cluster' | 'local';
  maxNodes?: number;
}

export type MakeCounters = (cfg: StickTableConfig, opts: MakeOptions) => AnyCounters;

const P = 10_000;
/** Start of period 100_000 of a 10 s period (aligned on the wall clock). */
const T0 = 100_000 * P;

export function tableCfg(over: Partial<StickTableConfig> = {}): StickTableConfig {
  const data: StoredType[] = [
    { kind: 'http_req_rate', idx: 0, period: P },
    { kind: 'conn_cur', idx: 0, period: 0 },
    { kind: 'http_req_cnt', idx: 0, period: 0 },
    { kind: 'gpt', idx: 0, period: 0 },
    { kind: 'gpc', idx: 0, period: 0 },
  ];
  return {
    id: 'p/t',
    name: 't',
    type: 'ip',
    keyLen: 32,
    size: 100,
    expire: 60_000,
    store: [],
    srvkey: 'name',
    peers: 'p',
    data,
    loc: { file: 'test.cfg', line: 1 },
    ...over,
  };
}

/** A deterministic PRNG (mulberry32) for the fuzz. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function counterContract(name: string, make: MakeCounters): void {
  describe(`Counters contract: ${name}`, () => {
    let clock = T0;
    const now = (): number => clock;
    const mk = (over: Partial<StickTableConfig> = {}, o: Partial<MakeOptions> = {}): AnyCounters =>
      make(tableCfg(over), { node: 'a', now, ...o });
    const cols = (c: AnyCounters) => ({
      rate: c.column('http_req_rate'),
      cur: c.column('conn_cur'),
      cnt: c.column('http_req_cnt'),
      gpt: c.column('gpt', 0),
      gpc: c.column('gpc', 0),
    });
    /** Moves every dirty share of `from` into each of `to`. */
    const ship = (from: AnyCounters, fromName: string, ...to: AnyCounters[]): void => {
      const out: ShareUpdate[] = [];
      while (from.dirty > 0) from.drainDirty(1000, out);
      for (const u of out) for (const t of to) expect(t.applyShares(fromName, u)).toBe(true);
    };

    it('names columns, schema and width', () => {
      clock = T0;
      const c = mk();
      const k = cols(c);
      expect([k.rate, k.cur, k.cnt, k.gpt, k.gpc]).toEqual([0, 1, 2, 3, 4]);
      expect(c.column('gpc', 1)).toBe(-1);
      expect(c.column('bytes_in_cnt')).toBe(-1);
      expect(c.schema).toBe('http_req_rate(10000),conn_cur,http_req_cnt,gpt(0),gpc(0)');
      expect(c.width).toBe(3 + 1 + 1 + 2 + 1);
      expect(c.mode).toBe('cluster');
    });

    it('acquire refuses invalid keys and a table full of referenced keys; release makes keys evictable, oldest touched first', () => {
      clock = T0;
      const c = mk({ size: 3 });
      expect(c.acquire('not-an-ip')).toBe(-1);
      expect(c.stats.trackFailures).toBe(1);
      const a = c.acquire('10.0.0.1');
      const b = c.acquire('10.0.0.2');
      const d = c.acquire('10.0.0.3');
      expect(new Set([a, b, d]).size).toBe(3);
      expect(c.acquire('10.0.0.4')).toBe(-1);
      expect(c.stats.trackFailures).toBe(2);
      expect(c.acquire('10.0.0.1')).toBe(a); // same key, second reference
      c.release(a);
      clock += 1;
      c.release(b);
      clock += 1;
      c.release(a); // a: last touched after b
      const e = c.acquire('10.0.0.4');
      expect(e).toBeGreaterThanOrEqual(0);
      expect(c.find('10.0.0.2')).toBe(-1);
      expect(c.find('10.0.0.1')).toBe(a);
      expect(c.stats.evictions).toBe(1);
      expect(c.count).toBe(3);
      expect(c.stats.capacity).toBe(3);
      // Canonical key text: the IPv4-mapped form is the same key.
      expect(c.find('::ffff:10.0.0.1')).toBe(a);
      expect(c.shares('::ffff:10.0.0.1')?.key).toBe('10.0.0.1');
    });

    it('a key expires `expire` after its last touch, never while referenced', () => {
      clock = T0;
      const c = mk({ expire: 1000 });
      const s = c.acquire('10.0.0.1');
      clock += 5000;
      expect(c.find('10.0.0.1')).toBe(s); // referenced: kept
      c.release(s);
      clock += 999;
      expect(c.find('10.0.0.1')).toBe(s);
      const s2 = c.acquire('10.0.0.2');
      c.add(s2, 0, 1);
      c.release(s2);
      clock += 1;
      expect(c.find('10.0.0.1')).toBe(-1);
      expect(c.stats.expired).toBe(1);
      expect(c.count).toBe(1);
      // A remote touch refreshes expiry too.
      const b = make(tableCfg({ expire: 1000 }), { node: 'b', now });
      const sb = b.acquire('10.0.0.2');
      b.add(sb, 0, 1);
      b.release(sb);
      clock += 900;
      ship(b, 'b', c);
      clock += 900;
      expect(c.find('10.0.0.2')).toBeGreaterThanOrEqual(0);
      if (c.sweep) {
        clock += 100;
        expect(c.sweep(10)).toBe(1);
        expect(c.count).toBe(0);
      }
    });

    it('rates follow HAProxy frequency counters over wall-clock aligned periods', () => {
      clock = T0;
      const c = mk();
      const { rate } = cols(c);
      const s = c.acquire('10.0.0.1');
      clock = T0 + 2000;
      for (let i = 0; i < 100; i++) c.add(s, rate, 1);
      expect(c.read(s, rate)).toBe(100);
      c.add(s, rate, 1);
      expect(c.read(s, rate)).toBe(101); // a `gt 100` threshold sees the 101st
      clock = T0 + 9999;
      expect(c.read(s, rate)).toBe(101);
      // Next period, 2.5 s in: 101 x 7500 / 10000 = 75.75.
      clock = T0 + P + 2500;
      expect(c.read(s, rate)).toBe(75);
      c.add(s, rate, 10);
      expect(c.read(s, rate)).toBe(85);
      // The period after: the 10 of the last period weighted by 9999/10000 = 9.999.
      clock = T0 + 2 * P + 1;
      expect(c.read(s, rate)).toBe(9);
      clock = T0 + 3 * P;
      expect(c.read(s, rate)).toBe(0);
      // Low rate: one event read whole through the next period (no flapping).
      c.add(s, rate, 1);
      clock = T0 + 4 * P + 9000;
      expect(c.read(s, rate)).toBe(1);
      clock = T0 + 5 * P;
      expect(c.read(s, rate)).toBe(0);
      // Adding after a gap of two periods starts afresh (nothing carried over).
      c.add(s, rate, 4);
      expect(c.read(s, rate)).toBe(4);
    });

    it('counts, gauges and tags', () => {
      clock = T0;
      const c = mk();
      const k = cols(c);
      const s = c.acquire('10.0.0.1');
      c.add(s, k.cnt, 1);
      c.add(s, k.cnt, 2);
      c.add(s, k.cnt, -5); // ignored on a count
      c.add(s, k.cur, 1);
      c.add(s, k.cur, 1);
      c.add(s, k.cur, -1);
      c.add(s, k.cur, -1);
      c.add(s, k.cur, -1); // a gauge does not go below 0
      c.add(s, k.gpc, 1);
      c.set(s, k.gpt, 42);
      c.set(s, k.cnt, 9); // set only applies to gpt
      expect(c.read(s, k.cnt)).toBe(3);
      expect(c.read(s, k.cur)).toBe(0);
      expect(c.read(s, k.gpc)).toBe(1);
      expect(c.read(s, k.gpt)).toBe(42);
      expect(c.read(s, 99)).toBe(0);
      expect(c.read(-1, k.cnt)).toBe(0);
    });

    it('three nodes: every node reads the sum of the shares, rates over the same window', () => {
      clock = T0 + 1000;
      const [a, b, d] = (['a', 'b', 'c'] as const).map((n) => make(tableCfg(), { node: n, now }));
      const all = [a!, b!, d!];
      const names = ['a', 'b', 'c'];
      const slots = all.map((t) => t.acquire('10.0.0.1'));
      const k = cols(a!);
      all.forEach((t, i) => {
        for (let j = 0; j <= i; j++) t.add(slots[i]!, k.rate, 10); // 10, 20, 30
        t.add(slots[i]!, k.cur, i + 1); // 1, 2, 3
        t.add(slots[i]!, k.cnt, 100);
      });
      all.forEach((t, i) => ship(t, names[i]!, ...all.filter((x) => x !== t)));
      for (let i = 0; i < 3; i++) {
        expect(all[i]!.read(slots[i]!, k.rate)).toBe(60);
        expect(all[i]!.read(slots[i]!, k.cur)).toBe(6);
        expect(all[i]!.read(slots[i]!, k.cnt)).toBe(300);
      }
      const sh = b!.shares('10.0.0.1')!;
      expect(sh.nodes.map((n) => n.node)).toEqual(['b', 'a', 'c']);
      expect(sh.nodes[0]!.values['http_req_rate(10s)']).toBe(20);
      expect(sh.total['http_req_rate(10s)']).toBe(60);
      expect(sh.total.conn_cur).toBe(6);
      // Next period, half way: 60 x 5000/10000 from the shares of the last one, as one window.
      clock = T0 + P + 5000;
      expect(a!.read(slots[0]!, k.rate)).toBe(30);
      // Replacement: a's new share replaces its old one (not added).
      a!.add(slots[0]!, k.cur, -1);
      ship(a!, 'a', b!, d!);
      expect(b!.read(slots[1]!, k.cur)).toBe(5);
      expect(d!.read(slots[2]!, k.cur)).toBe(5);
    });

    it('a departed node: dropNode drops its conn_cur, its rate fades with the window, counts stay', () => {
      clock = T0;
      const a = make(tableCfg(), { node: 'a', now });
      const b = make(tableCfg(), { node: 'b', now });
      const k = cols(a);
      const sa = a.acquire('10.0.0.9');
      a.add(sa, k.cur, 3);
      a.add(sa, k.rate, 50);
      a.add(sa, k.cnt, 7);
      ship(a, 'a', b);
      const sb = b.acquire('10.0.0.9');
      b.add(sb, k.cur, 1);
      b.add(sb, k.rate, 5);
      expect(b.read(sb, k.cur)).toBe(4);
      expect(b.read(sb, k.rate)).toBe(55);
      b.dropNode('a');
      b.dropNode('never-seen');
      expect(b.read(sb, k.cur)).toBe(1);
      expect(b.read(sb, k.cnt)).toBe(7);
      clock = T0 + P + 5000;
      expect(b.read(sb, k.rate)).toBe(27); // (50 + 5) x 0.5
      clock = T0 + 2 * P;
      expect(b.read(sb, k.rate)).toBe(0);
    });

    it('gpt: the newest write wins; equal times: the larger node name', () => {
      clock = T0;
      const a = make(tableCfg(), { node: 'a', now });
      const b = make(tableCfg(), { node: 'b', now });
      const k = cols(a);
      const sa = a.acquire('10.0.0.1');
      const sb = b.acquire('10.0.0.1');
      a.set(sa, k.gpt, 7);
      clock += 10;
      b.set(sb, k.gpt, 9);
      ship(a, 'a', b);
      ship(b, 'b', a);
      expect(a.read(sa, k.gpt)).toBe(9);
      expect(b.read(sb, k.gpt)).toBe(9);
      clock += 10;
      a.set(sa, k.gpt, 3);
      b.set(sb, k.gpt, 4);
      ship(a, 'a', b);
      ship(b, 'b', a);
      expect(a.read(sa, k.gpt)).toBe(4);
      expect(b.read(sb, k.gpt)).toBe(4);
    });

    it('dirty queue: each key once, onDirty on the first, oldest change time; exportShares pages every local share', () => {
      clock = T0;
      const a = mk();
      const k = cols(a);
      let fired = 0;
      a.onDirty = () => fired++;
      const s1 = a.acquire('10.0.0.1');
      const s2 = a.acquire('10.0.0.2');
      a.acquire('10.0.0.3'); // acquired, never written: no share
      a.add(s1, k.rate, 1);
      clock += 5;
      a.add(s2, k.rate, 1);
      a.add(s1, k.rate, 1);
      expect(a.dirty).toBe(2);
      expect(fired).toBe(1);
      const out: ShareUpdate[] = [];
      expect(a.drainDirty(1, out)).toBe(T0);
      expect(out).toHaveLength(1);
      expect(out[0]!.key).toBe('10.0.0.1');
      expect(out[0]!.v.slice(0, 3)).toEqual([T0 / P, 2, 0]);
      expect(a.drainDirty(10, out)).toBe(T0 + 5);
      expect(a.dirty).toBe(0);
      expect(a.drainDirty(10, out)).toBe(0);
      a.add(s2, k.cnt, 1);
      expect(fired).toBe(2);
      const exp: ShareUpdate[] = [];
      let cursor = 0;
      let rounds = 0;
      while (cursor !== -1 && rounds++ < 10) cursor = a.exportShares(cursor, 1, exp);
      expect(exp.map((u) => u.key).sort()).toEqual(['10.0.0.1', '10.0.0.2']);
      expect(exp.every((u) => u.v.length === a.width)).toBe(true);
    });

    it('refuses shares from more than maxNodes nodes and from itself', () => {
      clock = T0;
      const c = mk({}, { maxNodes: 2 });
      const u = (): ShareUpdate => ({ key: '10.0.0.1', v: [T0 / P, 1, 0, 1, 1, 0, 0, 1] });
      expect(c.applyShares('x', u())).toBe(true);
      expect(c.applyShares('y', u())).toBe(true);
      expect(c.applyShares('z', u())).toBe(false);
      expect(c.applyShares('a', u())).toBe(false);
      expect(c.stats.remoteApplied).toBe(2);
      expect(c.stats.remoteRejected).toBe(2);
      expect(c.read(c.find('10.0.0.1'), 0)).toBe(2);
    });

    it('refuses malformed peer input without throwing or changing reads (fuzz)', () => {
      clock = T0 + 1234;
      const c = mk();
      const k = cols(c);
      const s = c.acquire('10.0.0.1');
      c.add(s, k.rate, 5);
      c.add(s, k.cur, 2);
      const good: ShareUpdate = { key: '10.0.0.1', v: [T0 / P, 3, 1, 1, 4, 5, T0, 6] };
      expect(c.applyShares('b', good)).toBe(true);
      const snapshot = (): number[] => [k.rate, k.cur, k.cnt, k.gpt, k.gpc].map((col) => c.read(s, col));
      const before = snapshot();
      expect(before).toEqual([8, 3, 4, 5, 6]);
      const bad: unknown[] = [
        null,
        undefined,
        42,
        'x',
        [],
        { key: '10.0.0.1' },
        { key: '10.0.0.1', v: 'nope' },
        { key: 1, v: good.v },
        { key: 'not-an-ip', v: good.v },
        { key: '10.0.0.1', v: good.v.slice(1) },
        { key: '10.0.0.1', v: [...good.v, 1] },
        { key: '10.0.0.1', v: good.v.map((x, i) => (i === 1 ? -1 : x)) },
        { key: '10.0.0.1', v: good.v.map((x, i) => (i === 1 ? 1.5 : x)) },
        { key: '10.0.0.1', v: good.v.map((x, i) => (i === 3 ? NaN : x)) },
        { key: '10.0.0.1', v: good.v.map((x, i) => (i === 4 ? Infinity : x)) },
        { key: '10.0.0.1', v: good.v.map((x, i) => (i === 4 ? 2 ** 32 : x)) },
        { key: '10.0.0.1', v: good.v.map((x, i) => (i === 0 ? T0 / P + 100 : x)) }, // period far ahead
        { key: '10.0.0.1', v: good.v.map((x, i) => (i === 6 ? T0 + 3_600_000 : x)) }, // gpt from the future
        { key: '10.0.0.1', v: good.v.map((x, i) => (i === 2 ? '1' : x)) },
      ];
      for (const u of bad) expect(c.applyShares('b', u as ShareUpdate)).toBe(false);
      for (const n of ['', 'x'.repeat(300), 'a', 7 as unknown as string]) expect(c.applyShares(n, good)).toBe(false);
      expect(snapshot()).toEqual(before);
      const r = rng(19);
      const pick = (): unknown => {
        const x = r();
        if (x < 0.3) return Math.floor(r() * 1000);
        if (x < 0.4) return -Math.floor(r() * 1000);
        if (x < 0.5) return r() * 1e12;
        if (x < 0.55) return NaN;
        if (x < 0.6) return Infinity;
        if (x < 0.65) return null;
        if (x < 0.7) return 'a';
        if (x < 0.75) return [];
        if (x < 0.8) return T0 / P;
        if (x < 0.85) return 2 ** 53;
        return Math.floor(r() * 10);
      };
      let accepted = 0;
      for (let i = 0; i < 3000; i++) {
        const len = r() < 0.7 ? c.width : Math.floor(r() * 12);
        const v = Array.from({ length: len }, pick);
        const key = r() < 0.8 ? '10.0.0.1' : r() < 0.5 ? `10.0.${Math.floor(r() * 300)}.1` : String(pick());
        const u = r() < 0.95 ? { key, v } : pick();
        let ok = false;
        expect(() => {
          ok = c.applyShares(r() < 0.9 ? 'b' : 'c', u as ShareUpdate);
        }).not.toThrow();
        if (ok) accepted++;
        // Whatever came in, the local share and every read stay well-formed.
        for (const col of [k.rate, k.cur, k.cnt, k.gpt, k.gpc]) {
          const x = c.read(s, col);
          expect(Number.isFinite(x) && x >= 0).toBe(true);
        }
      }
      // Restoring b's good share and dropping c restores the sums exactly: nothing was corrupted.
      expect(c.applyShares('b', good)).toBe(true);
      const fresh = mk();
      const t = fresh.acquire('10.0.0.1');
      fresh.add(t, k.rate, 5);
      fresh.add(t, k.cur, 2);
      fresh.applyShares('b', good);
      const cs = c.shares('10.0.0.1')!;
      const own = cs.nodes.find((n) => n.node === 'a')!;
      expect(own.values).toEqual(fresh.shares('10.0.0.1')!.nodes[0]!.values);
      expect(cs.nodes.find((n) => n.node === 'b')!.values).toEqual(fresh.shares('10.0.0.1')!.nodes[1]!.values);
      expect(accepted).toBeGreaterThan(0);
      expect(c.stats.remoteRejected).toBeGreaterThan(2000);
    });

    it('local mode: reads this node only, marks nothing dirty, takes no shares', () => {
      clock = T0;
      const c = mk({}, { mode: 'local' });
      expect(c.mode).toBe('local');
      const k = cols(c);
      let fired = 0;
      c.onDirty = () => fired++;
      const s = c.acquire('10.0.0.1');
      c.add(s, k.rate, 3);
      c.add(s, k.cur, 1);
      expect(c.read(s, k.rate)).toBe(3);
      expect(c.dirty).toBe(0);
      expect(fired).toBe(0);
      const out: ShareUpdate[] = [];
      expect(c.drainDirty(10, out)).toBe(0);
      expect(c.exportShares(0, 10, out)).toBe(-1);
      expect(out).toHaveLength(0);
      expect(c.applyShares('b', { key: '10.0.0.1', v: [T0 / P, 1, 0, 1, 1, 0, 0, 1] })).toBe(false);
      expect(c.read(s, k.rate)).toBe(3);
      expect(c.shares('10.0.0.1')!.nodes.map((n) => n.node)).toEqual(['a']);
    });
  });
}

counterContract('CounterTable', (cfg, o) => new CounterTable(cfg, o));
counterContract('CounterTable shared', (cfg, o) => new CounterTable(cfg, { ...o, shared: true }));
// Every call through a second instance attached to the first one's memory, as a worker thread
// does, except drainDirty: only the building thread (the mesh's) drains, and attached ones refuse.
counterContract('CounterTable shared, attached', (cfg, o) => {
  const owner = new CounterTable(cfg, { ...o, shared: true });
  const att = CounterTable.attach(owner.shareHandle(), { now: o.now });
  expect(() => att.drainDirty(1, [])).toThrow(expect.objectContaining({ code: 'SM_COUNTERS_NOT_OWNER' }));
  return new Proxy(att, {
    get: (t, k, r) => (k === 'drainDirty' ? owner.drainDirty.bind(owner) : Reflect.get(t, k, r)),
  });
});
