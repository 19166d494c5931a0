// Concurrency fixture for stick-table.threads.test.ts: the same mix of operations runs on the test's
// main thread (on the source build) and in worker threads (attached through the built package,
// `npx tsc -b` first). Plain .mjs so a worker can load it without a TypeScript loader.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

export const LOCAL_KEYS = 1500;
export const REMOTE_KEYS = 500;
/** Wall of remote stamps: far older than any local write, so the final pass of local writes wins. */
export const OLD_WALL = 1_000_000;

export function localKey(i) {
  return `10.0.${(i >>> 8) & 255}.${i & 255}`;
}

export function remoteKey(i) {
  return `10.9.${(i >>> 8) & 255}.${i & 255}`;
}

/** Remote stamp of thread `id`'s update r on remote key i: distinct per (thread, r, i). */
export function remoteWall(id, r, i) {
  return OLD_WALL + i * 100 + r * 3 + id;
}

/** Servers thread `id` may write. */
export function serversOf(id) {
  return [`t${id}-a`, `t${id}-b`, `t${id}-c`, `t${id}-remote`];
}

function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

/**
 * Runs `rounds` random operations of thread `id` on `table`, then one setLocal per local key.
 * `allowed` is the set of every server any thread writes. Returns { logged, badLookups }: the
 * number of setLocal calls that entered the log, and lookups that saw a server nobody wrote.
 */
export function runOps(table, id, rounds, allowed) {
  const rand = rng(0x9e3779b9 ^ (id * 7919));
  const mine = serversOf(id);
  let logged = 0;
  let badLookups = 0;
  for (let n = 0; n < rounds; n++) {
    const p = rand();
    if (p < 0.4) {
      const i = Math.floor(rand() * LOCAL_KEYS);
      if (table.setLocal(localKey(i), mine[Math.floor(rand() * 3)]) !== 'unchanged') logged++;
    } else if (p < 0.75) {
      const k = rand() < 0.5 ? localKey(Math.floor(rand() * LOCAL_KEYS)) : remoteKey(Math.floor(rand() * REMOTE_KEYS));
      const s = table.lookup(k);
      if (s !== undefined && !allowed.has(s)) badLookups++;
    } else if (p < 0.9) {
      // Remote writes: on remote keys (newest stamp wins) and, stale or not, on local keys.
      const i = Math.floor(rand() * REMOTE_KEYS);
      const r = Math.floor(rand() * 3);
      table.applyRemote({ key: remoteKey(i), server: mine[3], ttl: 0, wall: remoteWall(id, r, i), counter: 0, node: 'peer', connCnt: 0, httpReqCnt: 0 });
      const j = Math.floor(rand() * LOCAL_KEYS);
      table.applyRemote({ key: localKey(j), server: mine[3], ttl: 0, wall: OLD_WALL, counter: id, node: 'peer', connCnt: 0, httpReqCnt: 0 });
    } else if (p < 0.97) {
      const e = table.get(localKey(Math.floor(rand() * LOCAL_KEYS)));
      if (e !== undefined && !allowed.has(e.server)) badLookups++;
    } else {
      // Batch readers racing the writers: what they return is whole entries.
      const out = [];
      if (p < 0.985) table.readUpdates(Math.max(0, table.seq - 600), 300, out);
      else table.exportBatch(Math.floor(rand() * (LOCAL_KEYS + REMOTE_KEYS)), 300, out);
      // Server and version stay paired: local writes name a thread's own server, remote ones '-remote'.
      for (const u of out) if (!allowed.has(u.server) || (u.node === 'a') === u.server.endsWith('-remote')) badLookups++;
    }
  }
  for (let i = 0; i < LOCAL_KEYS; i++) if (table.setLocal(localKey(i), mine[i % 3]) !== 'unchanged') logged++;
  // Every remote stamp of this thread once more, so the winner of each remote key is known: the
  // highest thread id's r = 2.
  for (let i = 0; i < REMOTE_KEYS; i++) {
    for (let r = 0; r < 3; r++) {
      table.applyRemote({ key: remoteKey(i), server: mine[3], ttl: 0, wall: remoteWall(id, r, i), counter: 0, node: 'peer', connCnt: 0, httpReqCnt: 0 });
    }
  }
  return { logged, badLookups };
}

if (!isMainThread && workerData?.fixture === 'shared-table') {
  const { StickTable } = await import('@stickmesh/core');
  const { handle, id, rounds, allowedList, gate } = workerData;
  if (typeof StickTable.attach !== 'function') throw new Error('the built @stickmesh/core is older than the source: run npx tsc -b first');
  const table = StickTable.attach(handle);
  const allowed = new Set(allowedList);
  const g = new Int32Array(gate);
  parentPort.postMessage({ ready: true });
  while (Atomics.load(g, 0) === 0) Atomics.wait(g, 0, 0, 50);
  const r = runOps(table, id, rounds, allowed);
  parentPort.postMessage(r);
}
