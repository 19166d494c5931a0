import { describe, expect, it } from 'vitest';
import type { StickTableConfig } from '../config/model.js';
import { TimerWheel } from '../util/timer-wheel.js';
import { HybridClock } from './hlc.js';
import { StickTable } from './stick-table.js';
import { compareVersions, type TableUpdate } from './types.js';
import { rng } from '../../../../test/helpers/rng.js';

function cfg(over: Partial<StickTableConfig> = {}): StickTableConfig {
  return {
    id: 'be',
    name: 'be',
    type: 'ip',
    keyLen: 32,
    size: 100,
    expire: 0,
    store: [],
    srvkey: 'name',
    loc: { file: 'test', line: 1 },
    ...over,
  };
}

function upd(key: string, server: string, wall: number, counter: number, node: string, ttl = 0): TableUpdate {
  return { key, server, ttl, wall, counter, node, connCnt: 0, httpReqCnt: 0 };
}


// One contract, run on both backends: plain ArrayBuffers and SharedArrayBuffers (nbthread).
for (const shared of [false, true]) {
describe(`StickTable (shared: ${shared})`, () => {
  describe('StickTable basics', () => {
    it('set, lookup and get with canonical keys', () => {
      let t = 1000;
      const tab = new StickTable(cfg({ store: ['conn_cnt', 'http_req_cnt'] }), { shared, node: 'a', now: () => t });
      expect(tab.setLocal('10.0.0.1', 's1')).toBe('created');
      expect(tab.lookup('10.0.0.1')).toBe('s1');
      expect(tab.lookup('::ffff:10.0.0.1')).toBe('s1');
      expect(tab.lookup('10.0.0.2')).toBeUndefined();
      expect(tab.lookup('not an ip')).toBeUndefined();
      expect(tab.setLocal('::ffff:10.0.0.1', 's2')).toBe('updated');
      const e = tab.get('10.0.0.1')!;
      expect(e.key).toBe('10.0.0.1');
      expect(e.server).toBe('s2');
      // The legacy counter fields stay in the view (wire and snapshot compatibility), always 0.
      expect(e.connCnt).toBe(0);
      expect(e.httpReqCnt).toBe(0);
      expect(e.expiresAt).toBe(0);
      expect(e.version).toEqual({ wall: 1000, counter: 1, node: 'a' });
      expect(tab.count).toBe(1);
      expect(tab.capacity).toBe(100);
      expect(tab.setLocal('300.1.1.1', 's1')).toBe('unchanged');
      expect(tab.stats.invalidKeys).toBe(1);
      t = 5000;
      expect(tab.setLocal('2001:DB8::1', 's3')).toBe('created');
      expect(tab.entries().map((x) => x.key).sort()).toEqual(['10.0.0.1', '2001:db8::1']);
      expect(tab.stats).toMatchObject({ count: 2, localWrites: 3, evictions: 0 });
    });

    it('string and integer tables', () => {
      const s = new StickTable(cfg({ type: 'string', keyLen: 4 }), { shared, node: 'a' });
      s.setLocal('abcdef', 'x');
      expect(s.lookup('abcd')).toBe('x');
      expect(s.lookup('abcdzz')).toBe('x');
      expect(s.get('abc')).toBeUndefined();
      expect(s.entries()[0]!.key).toBe('abcd');
      const i = new StickTable(cfg({ type: 'integer' }), { shared, node: 'a' });
      i.setLocal('-9223372036854775808', 'x');
      i.setLocal('+12', 'y');
      expect(i.lookup('-9223372036854775808')).toBe('x');
      expect(i.lookup('12')).toBe('y');
      expect(i.entries().map((e) => e.key).sort()).toEqual(['-9223372036854775808', '12']);
    });

    it('refreshed coalescing: same server re-logged only after max(1000, expire/4)', () => {
      let t = 10_000;
      const tab = new StickTable(cfg({ expire: 8000 }), { shared, node: 'a', now: () => t });
      expect(tab.setLocal('1.1.1.1', 's1')).toBe('created');
      const v1 = tab.get('1.1.1.1')!.version;
      t += 1999;
      expect(tab.setLocal('1.1.1.1', 's1')).toBe('unchanged');
      expect(tab.get('1.1.1.1')!.expiresAt).toBe(t + 8000); // expiry refreshed anyway
      expect(tab.get('1.1.1.1')!.version).toEqual(v1);
      expect(tab.seq).toBe(1);
      t += 1;
      expect(tab.setLocal('1.1.1.1', 's1')).toBe('refreshed');
      expect(tab.seq).toBe(2);
      expect(compareVersions(tab.get('1.1.1.1')!.version, v1)).toBe(1);
      // expire 0: the floor of 1000 ms applies.
      const never = new StickTable(cfg(), { shared, node: 'a', now: () => t });
      never.setLocal('1.1.1.1', 's1');
      t += 999;
      expect(never.setLocal('1.1.1.1', 's1')).toBe('unchanged');
      t += 1;
      expect(never.setLocal('1.1.1.1', 's1')).toBe('refreshed');
    });

    it('refuses the 65536th distinct server name and reuses ids of names no longer used', () => {
      const tab = new StickTable(cfg({ type: 'integer', size: 70_000 }), { shared, node: 'a' });
      for (let i = 0; i < 65535; i++) tab.setLocal(String(i), `s${i}`);
      expect(() => tab.setLocal('70000', 'one-too-many')).toThrow(expect.objectContaining({ code: 'SM_TABLE_SERVER_LIMIT' }));
      expect(tab.applyRemote(upd('70000', 'one-too-many', Date.now() + 1e6, 0, 'b'))).toBe(false);
      expect(tab.lookup('70000')).toBeUndefined();
      // Re-pointing key 0 to an existing name frees 's0' in an unshared table; a shared table never
      // reuses an id (another thread may hold it without the lock), so the bound stays reached.
      tab.setLocal('0', 's1');
      if (shared) {
        expect(() => tab.setLocal('70000', 'now-fits')).toThrow(expect.objectContaining({ code: 'SM_TABLE_SERVER_LIMIT' }));
      } else {
        expect(tab.setLocal('70000', 'now-fits')).toBe('created');
        expect(tab.lookup('70000')).toBe('now-fits');
      }
    });
  });

  describe('versions and applyRemote', () => {
    it('applies only newer versions, observes the clock and never logs remote writes', () => {
      const t = 1000;
      const tab = new StickTable(cfg(), { shared, node: 'b', now: () => t });
      expect(tab.applyRemote(upd('1.2.3.4', 's1', 5000, 0, 'a'))).toBe(true);
      expect(tab.applyRemote(upd('1.2.3.4', 's2', 4000, 9, 'z'))).toBe(false);
      expect(tab.applyRemote(upd('1.2.3.4', 's2', 5000, 0, 'a'))).toBe(false); // same version
      expect(tab.applyRemote(upd('1.2.3.4', 's2', 5000, 0, 'b'))).toBe(true); // node tie-break
      expect(tab.lookup('1.2.3.4')).toBe('s2');
      expect(tab.applyRemote(upd('999.1.1.1', 's', 9000, 0, 'a'))).toBe(false);
      expect(tab.applyRemote({ ...upd('1.2.3.5', 's', 9000, 70000, 'a') })).toBe(false);
      expect(tab.stats).toMatchObject({ remoteApplied: 2, remoteStale: 2, remoteInvalid: 2 });
      expect(tab.seq).toBe(0);
      const out: TableUpdate[] = [];
      expect(tab.readUpdates(0, 100, out)).toBe(0);
      expect(out).toEqual([]);
      // A local write after learning (5000,0,b) must win over it even though physical time is 1000.
      tab.setLocal('1.2.3.4', 's3');
      expect(compareVersions(tab.get('1.2.3.4')!.version, { wall: 5000, counter: 0, node: 'b' })).toBe(1);
      // Remote write over a locally written entry removes it from the log.
      const v = tab.get('1.2.3.4')!.version;
      tab.applyRemote(upd('1.2.3.4', 's4', v.wall + 1, 0, 'a'));
      expect(tab.readUpdates(0, 100, out)).toBe(1);
      expect(out).toEqual([]);
    });

    it('converges: every arrival order of conflicting updates yields the same data', () => {
      const r = rng(42);
      const nodes = ['n1', 'n2', 'n3'];
      const keys = Array.from({ length: 12 }, (_, i) => `10.0.${i >> 2}.${i}`);
      const updates: TableUpdate[] = [];
      const versions = new Set<string>();
      for (let i = 0; i < 300; i++) {
        const u = upd(
            keys[Math.floor(r() * keys.length)]!,
            `srv${Math.floor(r() * 5)}`,
            1000 + Math.floor(r() * 20), // few walls: many ties on wall and counter
            Math.floor(r() * 3),
            nodes[Math.floor(r() * nodes.length)]!,
            60_000,
          );
        // A version names exactly one write: the same stamp never carries two values.
        const vid = `${u.wall}/${u.counter}/${u.node}`;
        if (versions.has(vid)) continue;
        versions.add(vid);
        updates.push(u);
      }
      const expected = new Map<string, TableUpdate>();
      for (const u of updates) {
        const cur = expected.get(u.key);
        if (!cur || compareVersions(u, cur) > 0) expected.set(u.key, u);
      }
      const digests = new Set<string>();
      for (let run = 0; run < 25; run++) {
        const order = [...updates];
        for (let i = order.length - 1; i > 0; i--) {
          const j = Math.floor(r() * (i + 1));
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
        const tab = new StickTable(cfg({ expire: 60_000 }), { shared, node: `x${run}`, now: () => 2000 });
        for (const u of order) tab.applyRemote(u);
        digests.add(tab.digest());
        for (const [k, u] of expected) {
          const e = tab.get(k)!;
          expect(e.server).toBe(u.server);
          expect(e.version).toEqual({ wall: u.wall, counter: u.counter, node: u.node });
        }
        expect(tab.count).toBe(expected.size);
      }
      expect(digests.size).toBe(1);
      // A table missing one entry, or with one different server, has a different digest.
      const [d] = digests;
      const partial = new StickTable(cfg({ expire: 60_000 }), { shared, node: 'p', now: () => 2000 });
      const vals = [...expected.values()];
      for (const u of vals.slice(1)) partial.applyRemote(u);
      expect(partial.digest()).not.toBe(d);
      partial.applyRemote({ ...vals[0]!, server: 'other' });
      expect(partial.digest()).not.toBe(d);
    });

    it('local writes with a shared clock replicate to a peer table with equal digests', () => {
      let t = 1000;
      const a = new StickTable(cfg(), { shared, node: 'a', now: () => t });
      const b = new StickTable(cfg(), { shared, node: 'b', now: () => t });
      for (let i = 0; i < 20; i++) a.setLocal(`1.1.1.${i}`, `s${i % 3}`);
      for (let i = 10; i < 30; i++) b.setLocal(`1.1.1.${i}`, 'bs');
      t += 5;
      const fromA: TableUpdate[] = [];
      const fromB: TableUpdate[] = [];
      a.readUpdates(0, 1000, fromA);
      b.readUpdates(0, 1000, fromB);
      for (const u of fromA) b.applyRemote(u);
      for (const u of fromB) a.applyRemote(u);
      expect(a.digest()).toBe(b.digest());
      expect(a.count).toBe(30);
      // Same wall on both clocks: the higher counter wins (a's 15th write beats b's 5th).
      expect(a.lookup('1.1.1.15')).toBe('s0');
      expect(a.lookup('1.1.1.25')).toBe('bs');
    });
  });

  describe('update log', () => {
    it('readUpdates skips superseded positions and resumes from the cursor', () => {
      const t = 1000;
      const tab = new StickTable(cfg(), { shared, node: 'a', now: () => t });
      tab.setLocal('1.0.0.1', 's1'); // seq 1
      tab.setLocal('1.0.0.2', 's1'); // seq 2
      tab.setLocal('1.0.0.1', 's2'); // seq 3 supersedes 1
      tab.setLocal('1.0.0.3', 's1'); // seq 4
      expect(tab.seq).toBe(4);
      const out: TableUpdate[] = [];
      let cur = tab.readUpdates(0, 2, out);
      expect(out.map((u) => [u.key, u.server])).toEqual([
        ['1.0.0.2', 's1'],
        ['1.0.0.1', 's2'],
      ]);
      expect(cur).toBe(3);
      out.length = 0;
      cur = tab.readUpdates(cur, 10, out);
      expect(cur).toBe(4);
      expect(out.map((u) => u.key)).toEqual(['1.0.0.3']);
      out.length = 0;
      expect(tab.readUpdates(4, 10, out)).toBe(4);
      expect(out).toEqual([]);
      expect(tab.readUpdates(5, 10, out)).toBe(-1); // cursor from the future (other epoch)
      expect(tab.epoch).toMatch(/^[0-9a-f]{16}$/);
      expect(new StickTable(cfg(), { shared, node: 'a' }).epoch).not.toBe(tab.epoch);
    });

    it('returns -1 once the cursor fell off the ring', () => {
      const tab = new StickTable(cfg(), { shared, node: 'a', logSize: 8 });
      for (let i = 0; i < 8; i++) tab.setLocal(`2.0.0.${i}`, 's');
      const out: TableUpdate[] = [];
      expect(tab.readUpdates(0, 100, out)).toBe(8);
      expect(out.length).toBe(8);
      tab.setLocal('2.0.0.100', 's'); // seq 9 overwrites position of seq 1
      out.length = 0;
      expect(tab.readUpdates(0, 100, out)).toBe(-1);
      expect(tab.readUpdates(1, 100, out)).toBe(9);
      expect(out.length).toBe(8);
    });

    it('skips expired and evicted entries', () => {
      let t = 1000;
      const tab = new StickTable(cfg({ size: 2, expire: 100 }), { shared, node: 'a', now: () => t });
      tab.setLocal('3.0.0.1', 's');
      t += 50;
      tab.setLocal('3.0.0.2', 's');
      tab.setLocal('3.0.0.3', 's'); // evicts 3.0.0.1
      t += 60; // 3.0.0.2 and .3 alive (expire at 1150), .1 gone
      const out: TableUpdate[] = [];
      tab.readUpdates(0, 10, out);
      expect(out.map((u) => u.key)).toEqual(['3.0.0.2', '3.0.0.3']);
      expect(out[0]!.ttl).toBe(40);
      t += 100;
      out.length = 0;
      expect(tab.readUpdates(0, 10, out)).toBe(3);
      expect(out).toEqual([]);
    });

    it('exportBatch covers every live entry (local and learned) across batches', () => {
      let t = 1000;
      const tab = new StickTable(cfg({ size: 500, expire: 10_000 }), { shared, node: 'a', now: () => t });
      for (let i = 0; i < 300; i++) tab.setLocal(`4.0.${i >> 8}.${i & 255}`, `s${i % 7}`);
      for (let i = 0; i < 100; i++) tab.applyRemote(upd(`5.0.0.${i}`, 'r', 2000, 0, 'b', 5000));
      // Free some slots in the middle so the export walks over holes.
      for (let i = 0; i < 50; i++) tab.applyRemote(upd(`4.0.0.${i}`, 'r2', 3000, 0, 'b', 1));
      t += 2;
      const seen = new Map<string, TableUpdate>();
      let cursor = 0;
      let calls = 0;
      do {
        const out: TableUpdate[] = [];
        cursor = tab.exportBatch(cursor, 37, out);
        expect(out.length).toBeLessThanOrEqual(37);
        for (const u of out) {
          expect(seen.has(u.key)).toBe(false);
          seen.set(u.key, u);
        }
        calls++;
      } while (cursor >= 0);
      expect(calls).toBeGreaterThan(5);
      expect(seen.size).toBe(350); // 250 local live + 100 learned (50 expired)
      expect(seen.get('5.0.0.7')).toMatchObject({ server: 'r', node: 'b', wall: 2000, ttl: 4998 });
      expect(seen.get('4.0.0.100')!.ttl).toBe(9998);
      expect(seen.has('4.0.0.3')).toBe(false);
    });
  });

  describe('expiry and eviction', () => {
    it('expires entries at expiresAt using the injected clock; sweep removes them within budget', () => {
      let t = 1000;
      const tab = new StickTable(cfg({ expire: 1000 }), { shared, node: 'a', now: () => t });
      for (let i = 0; i < 10; i++) tab.setLocal(`6.0.0.${i}`, 's');
      t = 1999;
      expect(tab.lookup('6.0.0.1')).toBe('s');
      t = 2000;
      expect(tab.lookup('6.0.0.1')).toBeUndefined(); // expired, not yet swept
      expect(tab.get('6.0.0.2')).toBeUndefined();
      expect(tab.entries()).toEqual([]);
      expect(tab.count).toBe(9); // lookup removed one lazily
      expect(tab.sweep(4)).toBe(4);
      expect(tab.sweep()).toBe(5);
      expect(tab.count).toBe(0);
      expect(tab.stats.expired).toBe(10);
      expect(tab.setLocal('6.0.0.1', 's')).toBe('created');
    });

    it('remote ttl sets expiry; ttl 0 falls back to the table expire', () => {
      const t = 1000;
      const tab = new StickTable(cfg({ expire: 5000 }), { shared, node: 'a', now: () => t });
      tab.applyRemote(upd('7.0.0.1', 's', 1, 0, 'b', 300));
      tab.applyRemote(upd('7.0.0.2', 's', 1, 0, 'b', 0));
      expect(tab.get('7.0.0.1')!.expiresAt).toBe(1300);
      expect(tab.get('7.0.0.2')!.expiresAt).toBe(6000);
    });

    it('start(wheel) sweeps periodically; stop() ends it', () => {
      let t = 0;
      const wheel = new TimerWheel(100, 64);
      t = wheel.now;
      const tab = new StickTable(cfg({ expire: 2000 }), { shared, node: 'a', now: () => t });
      tab.setLocal('8.0.0.1', 's');
      tab.start(wheel);
      t += 2100;
      wheel.advance(t); // sweep interval is max(1000, 250) = 1000ms
      expect(tab.count).toBe(0);
      tab.setLocal('8.0.0.2', 's');
      tab.stop();
      t += 5000;
      wheel.advance(t);
      expect(tab.count).toBe(1);
    });

    it('a full table evicts the entry with the oldest version (reads do not count) and counts it', () => {
      let t = 1000;
      const tab = new StickTable(cfg({ size: 3 }), { shared, node: 'a', now: () => t++ });
      tab.setLocal('9.0.0.1', 's');
      tab.setLocal('9.0.0.2', 's');
      tab.setLocal('9.0.0.3', 's');
      tab.lookup('9.0.0.1'); // a read does not make an entry newer
      tab.setLocal('9.0.0.4', 's');
      expect(tab.lookup('9.0.0.1')).toBeUndefined();
      expect(tab.count).toBe(3);
      expect(tab.stats.evictions).toBe(1);
      tab.setLocal('9.0.0.2', 's2'); // rewritten: now the newest
      tab.applyRemote(upd('9.0.0.5', 's', 5000, 0, 'b')); // remote writes evict too: oldest is 9.0.0.3
      expect(tab.lookup('9.0.0.3')).toBeUndefined();
      expect(tab.stats.evictions).toBe(2);
      // A remote update older than everything held is not taken (it would be the next eviction).
      expect(tab.applyRemote(upd('9.0.0.6', 's', 1, 0, 'b'))).toBe(false);
      expect(tab.entries().map((e) => e.key).sort()).toEqual(['9.0.0.2', '9.0.0.4', '9.0.0.5']);
    });

    it('full tables converge: every arrival order of the same writes leaves the same newest entries', () => {
      const r = rng(11);
      const updates: TableUpdate[] = [];
      for (let i = 0; i < 400; i++) updates.push(upd(`10.1.${i % 250}.${i % 7}`, `s${i % 5}`, 10_000 + Math.floor(r() * 1000), i % 3, `n${i % 4}`, 60_000));
      const digests = new Set<string>();
      let keys = '';
      for (let round = 0; round < 6; round++) {
        const order = [...updates];
        for (let i = order.length - 1; i > 0; i--) {
          const k = Math.floor(r() * (i + 1));
          [order[i], order[k]] = [order[k]!, order[i]!];
        }
        const tab = new StickTable(cfg({ size: 50, expire: 0 }), { shared, node: 'x', now: () => 20_000 });
        for (const u of order) tab.applyRemote(u);
        expect(tab.count).toBe(50);
        digests.add(tab.digest());
        keys = tab.entries().map((e) => e.key).sort().join(',');
      }
      expect(digests.size).toBe(1);
      expect(keys.split(',').length).toBe(50);
    });

    it('hash index stays consistent under heavy churn (backward-shift deletion)', () => {
      const r = rng(7);
      const tab = new StickTable(cfg({ type: 'integer', size: 64, expire: 50 }), { shared, node: 'a', now: () => now });
      let now = 0;
      const model = new Map<string, { server: string; exp: number }>();
      for (let i = 0; i < 20_000; i++) {
        now += Math.floor(r() * 3);
        const k = String(Math.floor(r() * 200));
        const s = `s${Math.floor(r() * 4)}`;
        if (r() < 0.6) {
          tab.setLocal(k, s);
          model.set(k, { server: s, exp: now + 50 });
        } else {
          const got = tab.lookup(k);
          const m = model.get(k);
          if (got !== undefined) expect(got).toBe(m!.server);
          if (m && m.exp <= now) expect(got).toBeUndefined();
        }
        if (i % 100 === 0) tab.sweep(10);
        expect(tab.count).toBeLessThanOrEqual(64);
      }
      // Every entry still reachable through the index matches what entries() lists.
      for (const e of tab.entries()) expect(tab.get(e.key)!.server).toBe(e.server);
    });

    it('clear() empties the table and keeps the log sequence', () => {
      const tab = new StickTable(cfg(), { shared, node: 'a', clock: new HybridClock('a') });
      tab.setLocal('1.1.1.1', 's');
      tab.clear();
      expect(tab.count).toBe(0);
      expect(tab.lookup('1.1.1.1')).toBeUndefined();
      expect(tab.seq).toBe(1);
      const out: TableUpdate[] = [];
      expect(tab.readUpdates(0, 10, out)).toBe(1);
      expect(out).toEqual([]);
      expect(tab.setLocal('1.1.1.1', 't')).toBe('created');
      expect(tab.entries()[0]!.version.node).toBe('a');
    });
  });

  describe('StickTable delete (tombstones)', () => {
    it('deletes with a newer version that replicates and wins over the older copy', async () => {
      const { StickTable } = await import('./stick-table.js');
      const cfg = { id: 't', type: 'ip', keyLen: 0, size: 10, expire: 0, store: [], srvkey: 'name', loc: { file: 'x', line: 1 } } as never;
      const a = new StickTable(cfg, { shared, node: 'a' });
      const b = new StickTable(cfg, { shared, node: 'b' });
      a.setLocal('10.0.0.1', 's1');
      a.setLocal('10.0.0.2', 's2');
      const out: import('./types.js').TableUpdate[] = [];
      a.readUpdates(0, 100, out);
      for (const u of out) b.applyRemote(u);
      const from = a.seq;
      expect(a.delete('10.0.0.1')).toBe(true);
      expect(a.delete('10.0.0.1')).toBe(false);
      expect(a.lookup('10.0.0.1')).toBeUndefined();
      expect(a.get('10.0.0.1')).toBeUndefined();
      expect(a.get('10.0.0.1', true)?.server).toBe('');
      expect(a.entries().map((e) => e.key)).toEqual(['10.0.0.2']);
      expect(a.serverCounts()).toEqual({ live: 1, byServer: new Map([['s2', 1]]) });
      out.length = 0;
      a.readUpdates(from, 100, out);
      expect(out).toHaveLength(1);
      expect(b.applyRemote(out[0]!)).toBe(true);
      expect(b.lookup('10.0.0.1')).toBeUndefined();
      expect(b.digest()).toBe(a.digest());
      // A later write brings the key back.
      a.setLocal('10.0.0.1', 's3');
      expect(a.lookup('10.0.0.1')).toBe('s3');
      expect(a.deleteAll()).toBe(2);
      expect(a.serverCounts().live).toBe(0);
    });
  });

  describe('StickTable scan', () => {
    it('pages through live entries by cursor with server and prefix filters, within a slot budget', () => {
      let t = 1000;
      const tab = new StickTable(cfg({ size: 1000, expire: 50 }), { shared, node: 'a', now: () => t });
      for (let i = 0; i < 300; i++) tab.setLocal(`10.0.${i >> 8}.${i & 255}`, `s${i % 3}`);
      tab.delete('10.0.0.0');
      const seen: string[] = [];
      let cursor = 0;
      let calls = 0;
      while (cursor !== -1) {
        const out: import('./types.js').EntryView[] = [];
        cursor = tab.scan(cursor, 7, 1000, out);
        expect(out.length).toBeLessThanOrEqual(7);
        seen.push(...out.map((e) => e.key));
        calls++;
      }
      expect(seen.length).toBe(299);
      expect(new Set(seen).size).toBe(299);
      expect(calls).toBe(Math.ceil(299 / 7));
      // Server filter: ids only; an unknown server matches nothing and ends the scan at once.
      const s1: import('./types.js').EntryView[] = [];
      expect(tab.scan(0, 1000, 1000, s1, { server: 's1' })).toBe(-1);
      expect(s1.length).toBe(100);
      expect(s1.every((e) => e.server === 's1')).toBe(true);
      expect(tab.scan(0, 1000, 1000, [], { server: 'nope' })).toBe(-1);
      expect(tab.scan(0, 1000, 1000, [], { server: '' })).toBe(-1);
      // Prefix filter with a budget: at most `budget` slots examined per call.
      const p: import('./types.js').EntryView[] = [];
      expect(tab.scan(0, 1000, 10, p, { prefix: '10.0.1.' })).toBe(10);
      expect(p).toEqual([]);
      let c = 0;
      while (c !== -1) c = tab.scan(c, 1000, 64, p, { prefix: '10.0.1.' });
      expect(p.map((e) => e.key).sort()).toEqual(Array.from({ length: 44 }, (_, i) => `10.0.1.${i}`).sort());
      // Expired entries are skipped; a bad cursor ends the scan.
      t += 100;
      expect(tab.scan(0, 1000, 1000, [])).toBe(-1);
      const none: import('./types.js').EntryView[] = [];
      tab.scan(0, 1000, 1000, none);
      expect(none).toEqual([]);
      expect(tab.scan(-1, 10, 10, [])).toBe(-1);
      expect(tab.scan(1.5, 10, 10, [])).toBe(-1);
    });

    it('filters string keys by byte prefix, multi-byte characters and truncated keys included', () => {
      const tab = new StickTable(cfg({ type: 'string', keyLen: 8, size: 100 }), { shared, node: 'a', now: () => 1 });
      for (const k of ['sess-1', 'sess-12', 'séss-1', 'sé', 'x', 'sess-123456789']) tab.setLocal(k, 's1');
      const keys = (prefix: string) => {
        const out: import('./types.js').EntryView[] = [];
        tab.scan(0, 100, 100, out, { prefix });
        return out.map((e) => e.key).sort();
      };
      expect(keys('sess-1')).toEqual(['sess-1', 'sess-12', 'sess-123']);
      expect(keys('sé')).toEqual(['sé', 'séss-1']);
      expect(keys('s')).toHaveLength(5);
      expect(keys('sess-1234')).toEqual([]);
      expect(keys('\ud800')).toEqual([]);
    });
  });
});
}
