/**
 * A shared CounterTable used by three threads at once (the main thread and two worker_threads
 * attached through shareHandle), as with `nbthread`: every count exact, every reference returned,
 * each touched key in the dirty queue once, and every thread reading the same totals.
 *
 * The workers run the BUILT package (packages/core/dist, `npx tsc -b`), as worker threads of a
 * node do.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { StickTableConfig } from '../config/model.js';
import { CounterTable } from './counter-table.js';
import type { ShareUpdate } from './types.js';

const DIST = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
const K = 50;
const N = 100_000;
/** Every thread's clock: one instant, so the rate window is the same for all and the rate exact. */
const NOW = 1_000_000 * 10_000 + 1234;

const cfg: StickTableConfig = {
  id: 'p/threads',
  name: 'threads',
  type: 'ip',
  keyLen: 32,
  size: K,
  expire: 60_000,
  store: [],
  srvkey: 'name',
  peers: 'p',
  data: [
    { kind: 'http_req_cnt', idx: 0, period: 0 },
    { kind: 'gpc', idx: 0, period: 0 },
    { kind: 'http_req_rate', idx: 0, period: 10_000 },
    { kind: 'conn_cur', idx: 0, period: 0 },
  ],
  loc: { file: 'test', line: 1 },
};
const keyOf = (i: number): string => `10.1.0.${i}`;

/**
 * One thread's work: N rounds of acquire, add to every column (conn_cur up then down), a
 * lock-free read that must never go backwards for its key, release. Returns the reads that did
 * go backwards (must be 0). Written as source so a worker runs the same code as the main thread.
 */
const WORK = `
function work(t, N, K, keyOf) {
  const cnt = t.column('http_req_cnt'), gpc = t.column('gpc', 0), rate = t.column('http_req_rate'), cur = t.column('conn_cur');
  const last = new Float64Array(K);
  let backwards = 0;
  for (let i = 0; i < N; i++) {
    const k = i % K;
    const s = t.acquire(keyOf(k));
    if (s < 0) throw new Error('acquire failed for ' + keyOf(k));
    t.add(s, cur, 1);
    t.add(s, cnt, 1);
    t.add(s, gpc, 1);
    t.add(s, rate, 1);
    const seen = t.read(s, cnt);
    if (seen < last[k]) backwards++;
    last[k] = seen;
    t.add(s, cur, -1);
    t.release(s);
  }
  return backwards;
}
`;

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
${WORK}
const keyOf = (i) => '10.1.0.' + i;
import(workerData.dist).then(({ CounterTable }) => {
  const clock = workerData.clock ? new Float64Array(workerData.clock) : undefined;
  const t = CounterTable.attach(workerData.handle, { now: clock ? () => clock[0] : () => workerData.now });
  const go = new Int32Array(workerData.go);
  parentPort.postMessage({ t: 'ready' });
  Atomics.wait(go, 0, 0);
  const backwards = work(t, workerData.n, workerData.k, keyOf);
  parentPort.postMessage({ t: 'done', backwards });
  parentPort.on('message', (m) => {
    if (m === 'read') {
      const cols = ['http_req_cnt', 'gpc', 'http_req_rate', 'conn_cur'].map((c) => t.column(c, 0));
      const reads = [];
      for (let k = 0; k < workerData.k; k++) reads.push(cols.map((c) => t.read(t.find(keyOf(k)), c)));
      parentPort.postMessage({ t: 'reads', reads });
    } else if (m === 'touch') {
      const cnt = t.column('http_req_cnt');
      for (let k = 0; k < workerData.k; k++) {
        const s = t.acquire(keyOf(k));
        t.add(s, cnt, 1);
        t.release(s);
      }
      parentPort.postMessage({ t: 'touched' });
    }
  });
}).catch((e) => { throw e; });
`;

// eslint-disable-next-line @typescript-eslint/no-implied-eval
const work = new Function(`${WORK}; return work;`)() as (t: CounterTable, n: number, k: number, keyOf: (i: number) => string) => number;

interface Msg {
  t: string;
  backwards?: number;
  reads?: number[][];
}

/** The next message of type `t` from `w` (messages are queued by the listener from the start). */
function inbox(w: Worker): (t: string) => Promise<Msg> {
  const queue: Msg[] = [];
  const waiters: Array<() => void> = [];
  let failed: Error | undefined;
  w.on('message', (m: Msg) => {
    queue.push(m);
    waiters.splice(0).forEach((f) => f());
  });
  w.on('error', (e) => {
    failed = e;
    waiters.splice(0).forEach((f) => f());
  });
  return async (t) => {
    for (;;) {
      if (failed) throw failed;
      const i = queue.findIndex((m) => m.t === t);
      if (i >= 0) return queue.splice(i, 1)[0]!;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
}

describe('CounterTable shared by three threads', () => {
  it('counts exactly, returns every reference, queues each key once and reads alike everywhere', async () => {
    expect(existsSync(DIST), 'run `npx tsc -b` first: the workers load packages/core/dist').toBe(true);
    const dist = await import(pathToFileURL(DIST).href);
    expect(typeof dist.CounterTable?.attach, 'packages/core/dist is older than this source: run `npx tsc -b`').toBe('function');

    const t = new CounterTable(cfg, { node: 'a', now: () => NOW, shared: true });
    const go = new Int32Array(new SharedArrayBuffer(4));
    const workers = [0, 1].map(
      () => new Worker(WORKER, { eval: true, workerData: { dist: pathToFileURL(DIST).href, handle: t.shareHandle(), go: go.buffer, n: N, k: K, now: NOW } }),
    );
    try {
      const boxes = workers.map(inbox);
      await Promise.all(boxes.map((b) => b('ready')));
      let wakes = 0;
      t.onDirty = () => wakes++;
      Atomics.store(go, 0, 1);
      Atomics.notify(go, 0);
      // The main thread works too, and drains the dirty queue as the mesh would, meanwhile.
      const shipped = new Map<string, number>();
      let duplicates = 0;
      const drain = (): void => {
        const out: ShareUpdate[] = [];
        t.drainDirty(1000, out);
        const seen = new Set<string>();
        for (const u of out) {
          if (seen.has(u.key)) duplicates++;
          seen.add(u.key);
          shipped.set(u.key, u.v[0]!);
        }
      };
      let backwards = 0;
      for (let r = 0; r < 10; r++) {
        backwards += work(t, N / 10, K, keyOf);
        drain();
      }
      const done = await Promise.all(boxes.map((b) => b('done')));
      for (const d of done) backwards += d.backwards!;
      drain();
      expect(backwards).toBe(0);
      expect(duplicates).toBe(0);

      // Exact totals, read by every thread.
      const per = (3 * N) / K;
      const mine = Array.from({ length: K }, (_, k) => ['http_req_cnt', 'gpc', 'http_req_rate', 'conn_cur'].map((c) => t.read(t.find(keyOf(k)), t.column(c as 'gpc', 0))));
      for (const row of mine) expect(row).toEqual([per, per, per, 0]);
      workers.forEach((w) => w.postMessage('read'));
      const theirs = await Promise.all(boxes.map((b) => b('reads')));
      for (const m of theirs) expect(m.reads).toEqual(mine);
      // The last share shipped of every key is its final count: no write was left unqueued.
      expect(shipped.size).toBe(K);
      for (let k = 0; k < K; k++) expect(shipped.get(keyOf(k))).toBe(per);
      expect(t.dirty).toBe(0);

      // Each key written by both workers sits in the dirty queue once.
      for (const w of workers) w.postMessage('touch');
      await Promise.all(boxes.map((b) => b('touched')));
      expect(t.dirty).toBe(K);
      const out: ShareUpdate[] = [];
      t.drainDirty(10 * K, out);
      expect(out.map((u) => u.key).sort()).toEqual(Array.from({ length: K }, (_, k) => keyOf(k)).sort());
      expect(out.every((u) => u.v[0] === per + 2)).toBe(true);

      // onDirty fires in the thread whose write made the queue non-empty, once: the queue is empty
      // now, so main's next write wakes it and the one after does not. (Whether main or a worker
      // woke during the concurrent rounds above is up to the scheduler.)
      const woke = wakes;
      t.add(t.find(keyOf(0)), t.column('gpc', 0), 1);
      t.add(t.find(keyOf(1)), t.column('gpc', 0), 1);
      expect(wakes - woke).toBe(1);
      expect(t.dirty).toBe(2);

      // Every reference came back: a full table of K keys makes room for K new ones.
      expect(t.count).toBe(K);
      for (let k = 0; k < K; k++) expect(t.acquire(`10.2.0.${k}`)).toBeGreaterThanOrEqual(0);
      expect(t.stats.evictions).toBe(K);
      expect(t.stats.trackFailures).toBe(0);
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  }, 60_000);

  it('loses no event when the rate period turns while three threads count', async () => {
    const clock = new Float64Array(new SharedArrayBuffer(8));
    clock[0] = NOW;
    const t = new CounterTable(cfg, { node: 'a', now: () => clock[0]!, shared: true });
    const go = new Int32Array(new SharedArrayBuffer(4));
    const workers = [0, 1].map(
      () =>
        new Worker(WORKER, {
          eval: true,
          workerData: { dist: pathToFileURL(DIST).href, handle: t.shareHandle(), go: go.buffer, n: N, k: K, now: NOW, clock: clock.buffer },
        }),
    );
    try {
      const boxes = workers.map(inbox);
      await Promise.all(boxes.map((b) => b('ready')));
      Atomics.store(go, 0, 1);
      Atomics.notify(go, 0);
      for (let r = 0; r < 10; r++) {
        if (r === 5) clock[0] = NOW + 10_000; // the next period, while the workers count
        work(t, N / 10, K, keyOf);
      }
      await Promise.all(boxes.map((b) => b('done')));
      const per = (3 * N) / K;
      const out: ShareUpdate[] = [];
      expect(t.exportOwn(0, 10 * K, out)).toBe(-1);
      expect(out).toHaveLength(K);
      const k0 = Math.floor((NOW + 10_000) / 10_000);
      for (const u of out) {
        expect(u.v[0]).toBe(per); // http_req_cnt
        // http_req_rate: [period, current count, previous count]; every event in one of the two.
        expect(u.v[2]).toBe(k0);
        expect(u.v[3]! + u.v[4]!).toBe(per);
      }
      const rate = t.column('http_req_rate');
      const mine = Array.from({ length: K }, (_, k) => t.read(t.find(keyOf(k)), rate));
      workers.forEach((w) => w.postMessage('read'));
      const theirs = await Promise.all(boxes.map((b) => b('reads')));
      for (const m of theirs) expect(m.reads!.map((row) => row[2])).toEqual(mine);
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  }, 60_000);

  it("an attached instance follows the node table: a departed node's place taken by another, and the blocks grown by either side", () => {
    let clock = NOW;
    const now = (): number => clock;
    const main = new CounterTable({ ...cfg, size: 8, expire: 1000 }, { node: 'a', now, shared: true, maxNodes: 2 });
    const other = CounterTable.attach(structuredClone(main.shareHandle()), { now });
    const cnt = main.column('http_req_cnt');
    const share = (n: number): ShareUpdate => ({ key: keyOf(1), v: [n, 0, 0, 0, 0, 0] });
    expect(main.applyShares('b', share(5))).toBe(true);
    expect(other.applyShares('c', share(7))).toBe(true); // the attached side takes the second place
    expect(main.applyShares('x', share(1))).toBe(false); // maxNodes 2, whoever counts
    expect(main.nodesRefused).toBe(1);
    expect(main.read(main.find(keyOf(1)), cnt)).toBe(12);
    expect(other.read(other.find(keyOf(1)), cnt)).toBe(12);
    expect(other.remoteNodes).toEqual(['b', 'c']);
    // The key expires: b and c hold no share any more, their places are freed and taken again.
    clock += 1001;
    expect(main.sweep()).toBe(1);
    expect(other.remoteNodes).toEqual([]);
    expect(main.applyShares('d', { key: keyOf(2), v: [3, 0, 0, 0, 0, 0] })).toBe(true);
    const s = other.find(keyOf(2));
    expect(other.read(s, cnt)).toBe(3);
    expect(other.shares(keyOf(2))!.nodes.map((n) => n.node)).toEqual(['a', 'd']);
    const mine = other.acquire(keyOf(2));
    other.add(mine, cnt, 2);
    expect(main.read(main.find(keyOf(2)), cnt)).toBe(5);
    expect(main.shares(keyOf(2))!.nodes).toEqual([
      { node: 'a', values: expect.objectContaining({ http_req_cnt: 2 }) },
      { node: 'd', values: expect.objectContaining({ http_req_cnt: 3 }) },
    ]);
  });
});
