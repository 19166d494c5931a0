// Scaling of one shared stick table across threads: T worker threads attach to the same table
// (built with `shared: true` on the main thread) and run the same loop at once; prints the
// aggregate operations per second for T = 1 and T = --threads, and the CPU each operation cost its
// thread (utime + stime of /proc/thread-self/stat, so it holds on a loaded machine too, where the
// wall-clock rate does not). Lookups are lock-free (SeqLock), setLocal serialises on the table's
// SpinLock: contention shows as CPU per operation growing with T (spinning, cache lines moving).
//
// Run: npx tsc -b && node bench/table-threads.mjs [--threads 2] [--writes 0.1] [--ms 1500] [--n 100000]
// Prints one JSON line per T: {"bench":"table-threads","threads":T,"writes":..,"mops":..,"cpu_ns_per_op":..}.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';

const dist = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'packages', 'core', 'dist');
const { StickTable } = await import(pathToFileURL(path.join(dist, 'table', 'stick-table.js')).href);
const key = (i) => `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;

if (!isMainThread) {
  const { handle, n, writes, ms, id, gate } = workerData;
  const t = StickTable.attach(handle);
  const keys = Array.from({ length: n }, (_, i) => key(i));
  const g = new Int32Array(gate);
  const cpu = () => {
    const f = fs.readFileSync('/proc/thread-self/stat', 'utf8');
    const v = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(v[11]) + Number(v[12])) / 100;
  };
  parentPort.postMessage('ready');
  while (Atomics.load(g, 0) === 0) Atomics.wait(g, 0, 0, 20);
  let x = (id + 1) * 0x9e3779b9;
  let ops = 0;
  const c0 = cpu();
  const end = Date.now() + ms;
  while (Date.now() < end) {
    for (let k = 0; k < 1000; k++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      const i = (x >>> 0) % n;
      if ((x >>> 0) / 4294967296 < writes) t.setLocal(keys[i], (x & 1) ? 's1' : 's2');
      else t.lookup(keys[i]);
    }
    ops += 1000;
  }
  parentPort.postMessage({ ops, cpu: cpu() - c0 });
} else {
  const { values } = parseArgs({ options: { threads: { type: 'string', default: '2' }, writes: { type: 'string', default: '0.1' }, ms: { type: 'string', default: '1500' }, n: { type: 'string', default: '100000' } } });
  const n = Number(values.n);
  const cfg = { id: 'be', name: 'be', type: 'ip', keyLen: 32, size: n, expire: 0, store: [], srvkey: 'name', loc: { file: 'bench', line: 1 } };
  const table = new StickTable(cfg, { node: 'a', shared: true });
  for (let i = 0; i < n; i++) table.setLocal(key(i), 's1');
  for (const T of [1, Number(values.threads)]) {
    const gate = new Int32Array(new SharedArrayBuffer(4));
    const ws = Array.from({ length: T }, (_, id) => new Worker(new URL(import.meta.url), { workerData: { handle: table.shareHandle(), n, writes: Number(values.writes), ms: Number(values.ms), id, gate: gate.buffer } }));
    const done = ws.map((w) => new Promise((resolve, reject) => { w.on('error', reject); w.on('message', (m) => { if (m !== 'ready') resolve(m); }); }));
    await Promise.all(ws.map((w) => new Promise((r) => w.once('message', r))));
    Atomics.store(gate, 0, 1);
    Atomics.notify(gate, 0);
    const res = await Promise.all(done);
    const ops = res.reduce((a, b) => a + b.ops, 0);
    const cpu = res.reduce((a, b) => a + b.cpu, 0);
    await Promise.all(ws.map((w) => w.terminate()));
    console.log(JSON.stringify({ bench: 'table-threads', threads: T, writes: Number(values.writes), mops: +(ops / Number(values.ms) / 1000).toFixed(3), cpu_ns_per_op: Math.round((cpu / ops) * 1e9) }));
  }
}
