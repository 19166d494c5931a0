import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StickTableConfig } from '../config/model.js';
import {
  SNAPSHOT_FILE,
  crc32,
  decodeSnapshot,
  encodeSnapshot,
  readSnapshotFile,
  restoreSnapshot,
  restoreSnapshotBuffer,
  restoreSnapshotFile,
  writeSnapshotFile,
} from './snapshot.js';
import { StickTable } from './stick-table.js';
import { CounterTable } from '../counters/counter-table.js';

function cfg(id: string, over: Partial<StickTableConfig> = {}): StickTableConfig {
  return { id, name: id, type: 'ip', keyLen: 32, size: 1000, expire: 0, store: [], srvkey: 'name', loc: { file: 't', line: 1 }, ...over };
}

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

// One contract, run on both backends: plain ArrayBuffers and SharedArrayBuffers (nbthread).
for (const shared of [false, true]) {
describe(`snapshot (shared: ${shared})`, () => {
  describe('snapshot', () => {
    it('crc32 matches the standard check value', () => {
      expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    });

    it('round-trips tables with absolute expiry; expired entries are dropped on restore', () => {
      let t = 100_000;
      const a = new StickTable(cfg('p/a', { expire: 10_000, store: ['conn_cnt'] }), { shared, node: 'n1', now: () => t });
      const b = new StickTable(cfg('p/b', { type: 'string', keyLen: 8 }), { shared, node: 'n1', now: () => t });
      for (let i = 0; i < 50; i++) a.setLocal(`10.1.0.${i}`, `s${i % 4}`);
      a.applyRemote({ key: '2001:db8::9', server: 'é-server', ttl: 500, wall: 99_000, counter: 3, node: 'n2', connCnt: 7, httpReqCnt: 0 });
      b.setLocal('héllo wrld', 'x');
      const buf = encodeSnapshot([a, b]);
      t += 1000;
      const dec = decodeSnapshot(buf, t);
      expect(dec.map((d) => d.id)).toEqual(['p/a', 'p/b']);
      expect(dec[0]!.updates.length).toBe(50); // the 500 ms remote entry has expired
      expect(dec[0]!.updates.find((u) => u.key === '10.1.0.3')).toMatchObject({ server: 's3', ttl: 9000, connCnt: 0, node: 'n1' });
      expect(dec[1]!.updates).toEqual([
        expect.objectContaining({ key: 'héllo w', server: 'x', ttl: 0 }),
      ]);
      const a2 = new StickTable(cfg('p/a', { expire: 10_000, store: ['conn_cnt'] }), { shared, node: 'n1', now: () => t });
      const b2 = new StickTable(cfg('p/b', { type: 'string', keyLen: 8 }), { shared, node: 'n1', now: () => t });
      // A newer version already learned from a peer survives the restore.
      a2.applyRemote({ key: '10.1.0.1', server: 'peer', ttl: 5000, wall: 200_000, counter: 0, node: 'n3', connCnt: 0, httpReqCnt: 0 });
      expect(restoreSnapshot([a2, b2], dec)).toBe(50);
      expect(a2.lookup('10.1.0.1')).toBe('peer');
      expect(a2.get('10.1.0.2')).toMatchObject({ server: 's2', expiresAt: t + 9000 });
      expect(b2.lookup('héllo w')).toBe('x');
      expect(a2.seq).toBe(0); // restored entries are learned, not re-logged
    });

    it('restores from the bytes as decode-then-restore does, counters included or left out; nothing from a corrupt file', async () => {
      let t = 100_000;
      const now = () => t;
      const P = 10_000;
      const data = [{ kind: 'http_req_rate', idx: 0, period: P }, { kind: 'gpc', idx: 0, period: 0 }] as const;
      const tc = cfg('p/rl', { peers: 'p', expire: 60_000, data: [...data] });
      const withCounters = (): StickTable => {
        const x = new StickTable(tc, { shared, node: 'n1', now });
        x.counters = new CounterTable(tc, { node: 'n1', now });
        return x;
      };
      const a = withCounters();
      for (let i = 0; i < 40; i++) a.setLocal(`10.2.0.${i}`, `s${i % 3}`);
      const ca = a.counters as CounterTable;
      ca.add(ca.acquire('10.2.0.1'), 1, 4);
      const plain = new StickTable(cfg('plain', { type: 'string', keyLen: 8 }), { shared, node: 'n1', now });
      plain.setLocal('k', 'x');
      const buf = encodeSnapshot([a, plain]);
      t += 1000;
      const [viaDecode, viaBytes, noCounters] = [withCounters(), withCounters(), withCounters()];
      const [p1, p2] = [0, 1].map(() => new StickTable(cfg('plain', { type: 'string', keyLen: 8 }), { shared, node: 'n1', now }));
      expect(restoreSnapshot([viaDecode, p1!], decodeSnapshot(buf, t))).toBe(41);
      expect(restoreSnapshotBuffer([viaBytes, p2!], buf, t)).toEqual({ tables: 2, applied: 41 });
      expect(viaBytes.digest()).toBe(viaDecode.digest());
      expect(p2!.lookup('k')).toBe('x');
      const cb = viaBytes.counters as CounterTable;
      expect(cb.read(cb.find('10.2.0.1'), 1)).toBe(4);
      expect(restoreSnapshotBuffer([noCounters], buf, t, { counters: false })).toEqual({ tables: 2, applied: 40 });
      expect((noCounters.counters as CounterTable).count).toBe(0);
      // A structural error past a valid CRC (bytes after the last table) applies nothing.
      const body = Buffer.concat([buf.subarray(0, buf.length - 4), Buffer.from([1, 2, 3])]);
      const bad = Buffer.concat([body, Buffer.alloc(4)]);
      bad.writeUInt32LE(crc32(bad, 0, body.length), body.length);
      const untouched = withCounters();
      expect(() => restoreSnapshotBuffer([untouched], bad, t)).toThrow(expect.objectContaining({ code: 'SM_SNAPSHOT_CORRUPT' }));
      expect(untouched.count).toBe(0);
      // No file: nothing, no error.
      const dir = await mkdtemp(join(tmpdir(), 'sm-snap-'));
      dirs.push(dir);
      expect(await restoreSnapshotFile([withCounters()], dir)).toEqual({ tables: 0, applied: 0 });
      await writeFile(join(dir, SNAPSHOT_FILE), buf);
      expect((await restoreSnapshotFile([withCounters()], dir, t)).applied).toBe(40);
    });

    it('detects corruption anywhere in the file', () => {
      const a = new StickTable(cfg('x'), { shared, node: 'n' });
      for (let i = 0; i < 20; i++) a.setLocal(`1.2.3.${i}`, 's');
      const buf = encodeSnapshot([a]);
      for (const pos of [0, 5, 30, Math.floor(buf.length / 2), buf.length - 1]) {
        const bad = Buffer.from(buf);
        bad[pos]! ^= 0x40;
        expect(() => decodeSnapshot(bad), `byte ${pos}`).toThrow(expect.objectContaining({ code: 'SM_SNAPSHOT_CORRUPT' }));
      }
      expect(() => decodeSnapshot(buf.subarray(0, buf.length - 10))).toThrow(expect.objectContaining({ code: 'SM_SNAPSHOT_CORRUPT' }));
      expect(() => decodeSnapshot(Buffer.alloc(3))).toThrow(expect.objectContaining({ code: 'SM_SNAPSHOT_CORRUPT' }));
    });

    it('writes atomically and reads back; a corrupt file is reported, a missing one is empty', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'sm-snap-'));
      dirs.push(dir);
      expect(await readSnapshotFile(dir)).toEqual([]);
      const a = new StickTable(cfg('x', { expire: 60_000 }), { shared, node: 'n' });
      a.setLocal('::1', 's');
      await writeSnapshotFile(join(dir, 'sub'), [a]);
      await writeSnapshotFile(join(dir, 'sub'), [a]);
      expect(await readdir(join(dir, 'sub'))).toEqual([SNAPSHOT_FILE]); // no temp files left
      const got = await readSnapshotFile(join(dir, 'sub'));
      expect(got[0]!.updates[0]).toMatchObject({ key: '::1', server: 's' });
      const file = join(dir, 'sub', SNAPSHOT_FILE);
      const raw = await readFile(file);
      raw[raw.length - 6]! ^= 1;
      await writeFile(file, raw);
      await expect(readSnapshotFile(join(dir, 'sub'))).rejects.toMatchObject({ code: 'SM_SNAPSHOT_CORRUPT' });
    });

    it("keeps this node's counter shares (version 2; gauges restart at 0); files without counters stay version 1", () => {
      const P = 10_000;
      let t = 170_000_000 * P + 1000;
      const now = () => t;
      const data = [
        { kind: 'http_req_rate', idx: 0, period: P },
        { kind: 'conn_cur', idx: 0, period: 0 },
        { kind: 'gpc', idx: 0, period: 0 },
      ] as const;
      const tc = cfg('p/rl', { peers: 'p', expire: 60_000, data: [...data] });
      const a = new StickTable(tc, { shared, node: 'n1', now });
      const ca = new CounterTable(tc, { node: 'n1', now });
      a.counters = ca;
      const s = ca.acquire('10.0.0.1');
      ca.add(s, 0, 7);
      ca.add(s, 1, 2);
      ca.add(s, 2, 3);
      ca.applyShares('n2', { key: '10.0.0.1', v: [170_000_000, 5, 0, 1, 9] });
      const s2 = ca.acquire('10.0.0.2');
      ca.add(s2, 2, 1);
      ca.release(s2);
      const plain = new StickTable(cfg('plain'), { shared, node: 'n1', now });
      plain.setLocal('1.1.1.1', 'x');
      expect(encodeSnapshot([plain]).readUInt16LE(4)).toBe(1);
      const buf = encodeSnapshot([a, plain]);
      expect(buf.readUInt16LE(4)).toBe(2);
      t += 2000;
      const dec = decodeSnapshot(buf, t);
      expect(dec.find((d) => d.id === 'p/rl')!.counters!.schema).toBe('http_req_rate(10000),conn_cur,gpc(0)');
      expect(dec.find((d) => d.id === 'p/rl')!.counters!.shares).toHaveLength(2);
      const b = new StickTable(tc, { shared, node: 'n1', now });
      const cb = new CounterTable(tc, { node: 'n1', now });
      b.counters = cb;
      const plain2 = new StickTable(cfg('plain'), { shared, node: 'n1', now });
      expect(restoreSnapshot([b, plain2], dec)).toBe(1);
      expect(plain2.lookup('1.1.1.1')).toBe('x');
      const r = cb.find('10.0.0.1');
      expect(cb.read(r, 0)).toBe(7); // own share only: n2's is not in the snapshot
      expect(cb.read(r, 1)).toBe(0);
      expect(cb.read(r, 2)).toBe(3);
      expect(cb.read(cb.find('10.0.0.2'), 2)).toBe(1);
      expect(cb.dirty).toBe(2); // queued for the peers
      // Another schema: the shares are dropped.
      const tc2 = cfg('p/rl', { peers: 'p', expire: 60_000, data: [data[0]] });
      const d = new StickTable(tc2, { shared, node: 'n1', now });
      d.counters = new CounterTable(tc2, { node: 'n1', now });
      restoreSnapshot([d], dec);
      expect(d.counters.count).toBe(0);
      // Expired keys are left out.
      t += 58_000;
      expect(decodeSnapshot(buf, t).find((x) => x.id === 'p/rl')!.counters!.shares).toHaveLength(0);
    });
  });
});
}
