import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { Arena, SeqLock, SharedMemoryError, SpinLock } from './shared.js';

/** Source run in a worker: increments a plain (non-atomic) pair under the lock, as a table write would. */
const WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const cell = new Int32Array(workerData.lock);
const data = new Float64Array(workerData.data);
function lock() {
  if (Atomics.compareExchange(cell, 0, 0, 1) === 0) return;
  while (Atomics.exchange(cell, 0, 2) !== 0) Atomics.wait(cell, 0, 2, 1);
}
function unlock() { if (Atomics.exchange(cell, 0, 0) === 2) Atomics.notify(cell, 0, 1); }
for (let i = 0; i < workerData.n; i++) {
  lock();
  Atomics.add(cell, 1, 1);
  const v = data[0];
  data[1] = v + 1;
  data[0] = v + 1;
  Atomics.add(cell, 1, 1);
  unlock();
}
parentPort.postMessage('done');
`;

describe('Arena', () => {
  it('views the same memory from a handle and refuses a different layout', () => {
    const a = new Arena(true);
    const x = a.i32('x', 4);
    const y = a.f64('y', 2);
    x[2] = 7;
    const b = new Arena(false, a.handle());
    expect(b.shared).toBe(true);
    expect(b.attached).toBe(true);
    const x2 = b.i32('x', 4);
    expect(x2[2]).toBe(7);
    x2[3] = 9;
    expect(x[3]).toBe(9);
    expect(b.f64('y', 2).buffer).toBe(y.buffer);
    expect(() => b.i32('y', 3)).toThrow(SharedMemoryError);
    expect(() => b.u8('missing', 1)).toThrow(/missing/);
  });

  it('allocates plain buffers when unshared and has no handle', () => {
    const a = new Arena(false);
    expect(a.u16('s', 3).buffer).toBeInstanceOf(ArrayBuffer);
    expect(() => a.handle()).toThrow(SharedMemoryError);
  });
});

describe('SpinLock and SeqLock', () => {
  it('keep a two-field invariant across threads: no update lost, no torn read', async () => {
    const arena = new Arena(true);
    const cell = arena.i32('lock', 2);
    const data = arena.f64('data', 2);
    const lock = new SpinLock(cell, 0);
    const seq = new SeqLock(cell, 1);
    const n = 200_000;
    const w = new Worker(WORKER, { eval: true, workerData: { lock: cell.buffer, data: data.buffer, n } });
    const done = new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    let torn = 0;
    let reads = 0;
    for (let i = 0; i < n; i++) {
      lock.lock();
      seq.begin();
      const v = data[0]!;
      data[0] = v + 1;
      data[1] = v + 1;
      seq.end();
      lock.unlock();
      // A lock-free read of both fields: they must agree whenever the sequence did not move.
      const s = seq.read();
      const a = data[0]!;
      const b = data[1]!;
      if (!seq.changed(s)) {
        reads++;
        if (a !== b) torn++;
      }
    }
    await done;
    await w.terminate();
    expect(data[0]).toBe(2 * n);
    expect(data[1]).toBe(2 * n);
    expect(torn).toBe(0);
    expect(reads).toBeGreaterThan(0);
    expect(Atomics.load(cell, 0)).toBe(0);
    expect(Atomics.load(cell, 1) % 2).toBe(0);
  });
});
