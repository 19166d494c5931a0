import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { StickTableConfig } from '../config/model.js';
// @ts-expect-error: a plain .mjs fixture (workers load it without a TypeScript loader), no types.
import * as fx from './shared-table.fixture.mjs';
import { StickTable } from './stick-table.js';
import type { EntryView, TableUpdate } from './types.js';

const F = fx as {
  LOCAL_KEYS: number;
  REMOTE_KEYS: number;
  OLD_WALL: number;
  localKey(i: number): string;
  remoteKey(i: number): string;
  remoteWall(id: number, r: number, i: number): number;
  serversOf(id: number): string[];
  runOps(t: StickTable, id: number, rounds: number, allowed: Set<string>): { logged: number; badLookups: number };
};

function cfg(over: Partial<StickTableConfig> = {}): StickTableConfig {
  return { id: 'be', name: 'be', type: 'ip', keyLen: 32, size: 10_000, expire: 0, store: [], srvkey: 'name', loc: { file: 'test', line: 1 }, ...over };
}

function all<T>(page: (cursor: number, out: T[]) => number): T[] {
  const out: T[] = [];
  let c = 0;
  while (c !== -1) c = page(c, out);
  return out;
}

describe('shared StickTable across threads', () => {
  it('a second view in the same thread sees every write, the log and the stats, and can write', () => {
    const a = new StickTable(cfg(), { node: 'n', shared: true });
    const b = StickTable.attach(structuredClone(a.shareHandle()));
    a.setLocal('1.1.1.1', 's1');
    expect(b.lookup('1.1.1.1')).toBe('s1');
    expect(b.setLocal('1.1.1.2', 'new-name')).toBe('created');
    expect(a.lookup('1.1.1.2')).toBe('new-name');
    expect(a.seq).toBe(2);
    expect(b.count).toBe(2);
    const out: TableUpdate[] = [];
    a.readUpdates(0, 10, out);
    expect(out.map((u) => `${u.key}=${u.server}`)).toEqual(['1.1.1.1=s1', '1.1.1.2=new-name']);
    // One clock: the second write's stamp is after the first's whichever view made it.
    // (Compared as a pair: wall * 65536 + counter is beyond 2^53, where + 1 is lost.)
    const [u0, u1] = [out[0]!, out[1]!];
    expect(u1.wall > u0.wall || (u1.wall === u0.wall && u1.counter > u0.counter)).toBe(true);
    expect(b.digest()).toBe(a.digest());
    expect(a.delete('1.1.1.1')).toBe(true);
    expect(b.lookup('1.1.1.1')).toBeUndefined();
    b.clear();
    expect(a.count).toBe(0);
    expect(a.stats.localWrites).toBe(3);
  });

  it('attaching to a table built from another layout is refused', () => {
    const a = new StickTable(cfg(), { node: 'n', shared: true });
    const h = a.shareHandle();
    expect(() => StickTable.attach({ ...h, cfg: cfg({ size: 20_000 }) })).toThrow(expect.objectContaining({ code: 'SM_SHARED_LAYOUT' }));
  });

  it('bytes per entry at 1M entries stay <= 100 for type ip', () => {
    const t = new StickTable(cfg({ size: 1_000_000 }), { node: 'n', shared: true });
    expect(t.byteLength / 1_000_000).toBeLessThanOrEqual(100);
  });

  it('2 workers and the main thread write, read and apply remote updates on the same keys; the table stays consistent', async () => {
    // An expire no entry reaches during the test, so 'unchanged' writes still refresh expiries.
    const table = new StickTable(cfg({ expire: 600_000 }), { node: 'a', shared: true });
    const allowed = new Set<string>();
    for (const id of [0, 1, 2]) for (const s of F.serversOf(id)) allowed.add(s);
    const gate = new Int32Array(new SharedArrayBuffer(4));
    const rounds = 20_000;
    const workers = [1, 2].map(
      (id) =>
        new Worker(new URL('./shared-table.fixture.mjs', import.meta.url), {
          workerData: { fixture: 'shared-table', handle: table.shareHandle(), id, rounds, allowedList: [...allowed], gate: gate.buffer },
        }),
    );
    const results = workers.map(
      (w) =>
        new Promise<{ logged: number; badLookups: number }>((resolve, reject) => {
          w.on('error', reject);
          w.on('message', (m: { ready?: boolean; logged: number; badLookups: number }) => {
            if (!m.ready) resolve(m);
          });
        }),
    );
    await Promise.all(workers.map((w) => new Promise<void>((resolve) => w.once('message', () => resolve()))));
    Atomics.store(gate, 0, 1);
    Atomics.notify(gate, 0);
    const mine = F.runOps(table, 0, rounds, allowed);
    const theirs = await Promise.all(results);
    await Promise.all(workers.map((w) => w.terminate()));

    // No lookup anywhere saw a server nobody wrote (no torn read).
    expect([mine, ...theirs].map((r) => r.badLookups)).toEqual([0, 0, 0]);
    // Every local write that entered the log is counted once, whichever thread made it.
    const logged = mine.logged + theirs[0]!.logged + theirs[1]!.logged;
    expect(table.seq).toBe(logged);
    expect(table.stats.localWrites).toBe(logged);

    const entries = all<EntryView>((c, out) => table.scan(c, 1000, 1000, out));
    expect(table.count).toBe(entries.length);
    expect(entries.length).toBe(F.LOCAL_KEYS + F.REMOTE_KEYS);
    for (const e of entries) {
      expect(allowed.has(e.server)).toBe(true);
      expect(table.lookup(e.key)).toBe(e.server);
    }
    // Remote keys: the newest stamp (thread 2, r = 2) won everywhere, server and version together.
    for (let i = 0; i < F.REMOTE_KEYS; i++) {
      const e = table.get(F.remoteKey(i))!;
      expect(e.server).toBe('t2-remote');
      expect(e.version).toEqual({ wall: F.remoteWall(2, 2, i), counter: 0, node: 'peer' });
    }
    // The log: every local key once, at its current value, with distinct stamps (one clock).
    const log: TableUpdate[] = [];
    expect(table.readUpdates(0, 1_000_000, log)).toBe(table.seq);
    expect(log.length).toBe(F.LOCAL_KEYS);
    expect(new Set(log.map((u) => u.key)).size).toBe(F.LOCAL_KEYS);
    for (const u of log) {
      expect(u.node).toBe('a');
      expect(table.lookup(u.key)).toBe(u.server);
    }
    expect(new Set(log.map((u) => `${u.wall}.${u.counter}`)).size).toBe(F.LOCAL_KEYS);
    // Same data as an unshared table fed the final entries.
    const plain = new StickTable(cfg({ expire: 600_000 }), { node: 'z' });
    for (const u of all<TableUpdate>((c, out) => table.exportBatch(c, 500, out))) expect(plain.applyRemote(u)).toBe(true);
    expect(plain.digest()).toBe(table.digest());
    expect(Buffer.from(plain.bucketDigests().buffer).equals(Buffer.from(table.bucketDigests().buffer))).toBe(true);
  }, 60_000);
});
