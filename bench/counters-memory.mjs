// Counter store memory: bytes per entry of a 1,000,000-entry `type ip` CounterTable storing
// `http_req_rate(10s),conn_cur`, filled with one local write per key, then with the shares of 1 and
// 2 other nodes for every key; also add+read ops/s on the hot path.
// Run: npx tsc -b packages/core && node --expose-gc bench/counters-memory.mjs
import { CounterTable } from '../packages/core/dist/index.js';

if (typeof globalThis.gc !== 'function') {
  console.error('run with: node --expose-gc bench/counters-memory.mjs');
  process.exit(2);
}

const N = 1_000_000;
const cfg = {
  id: 'p/bench',
  name: 'bench',
  type: 'ip',
  keyLen: 32,
  size: N,
  expire: 30 * 60_000,
  store: [],
  srvkey: 'name',
  peers: 'p',
  data: [
    { kind: 'http_req_rate', idx: 0, period: 10_000 },
    { kind: 'conn_cur', idx: 0, period: 0 },
  ],
  loc: { file: 'bench', line: 1 },
};
const v4 = (i) => `${10 + (i >>> 24)}.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;

function heap() {
  for (let i = 0; i < 4; i++) globalThis.gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
const perEntry = (bytes) => Math.round((bytes / N) * 10) / 10;

const base = heap();
const t = new CounterTable(cfg, { node: 'a' });
const rate = t.column('http_req_rate');
const cur = t.column('conn_cur');
let start = performance.now();
for (let i = 0; i < N; i++) {
  const s = t.acquire(v4(i));
  t.add(s, rate, 1);
  t.add(s, cur, 1);
  t.add(s, cur, -1);
  t.release(s);
}
const fillMs = performance.now() - start;
if (t.count !== N) throw new Error(`count ${t.count}`);
const local = heap() - base;
const out = [];
const k = Math.floor(Date.now() / 10_000);
for (const peer of ['b', 'c']) {
  for (let i = 0; i < N; i++) if (!t.applyShares(peer, { key: v4(i), v: [k, 1 + (i & 7), 0, i & 3] })) throw new Error('refused');
  out.push(perEntry(heap() - base));
}
// Hot path: acquire/add/read/release on keys already present (3 nodes' shares each).
const OPS = 2_000_000;
start = performance.now();
let sum = 0;
for (let i = 0; i < OPS; i++) {
  const s = t.acquire(v4(i % N));
  t.add(s, rate, 1);
  sum += t.read(s, rate);
  t.release(s);
}
const opsPerSec = Math.round(OPS / ((performance.now() - start) / 1000));
console.log(JSON.stringify({
  entries: N,
  store: t.schema,
  bytesPerEntryLocalOnly: perEntry(local),
  bytesPerEntryWith1Peer: out[0],
  bytesPerEntryWith2Peers: out[1],
  fillKeysPerSec: Math.round(N / (fillMs / 1000)),
  trackOpsPerSec: opsPerSec,
  check: sum > 0,
}));
