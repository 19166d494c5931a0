// Stick table memory and throughput benchmark.
// Run: npx tsc -b packages/core && node --expose-gc bench/table-memory.mjs
// Prints one JSON line: heap bytes per entry (heapUsed + arrayBuffers delta after gc) for a
// 1,000,000-entry `type ip` table filled with IPv4 and with IPv6 keys, the same for a naive
// Map<string, object> anchor, and setLocal / applyRemote ops/s (median of 5 runs).
import { StickTable } from '../packages/core/dist/index.js';

if (typeof globalThis.gc !== 'function') {
  console.error('run with: node --expose-gc bench/table-memory.mjs');
  process.exit(2);
}

const N = 1_000_000;
const cfg = (over = {}) => ({
  id: 'bench',
  name: 'bench',
  type: 'ip',
  keyLen: 32,
  size: N,
  expire: 30 * 60_000,
  store: [],
  srvkey: 'name',
  loc: { file: 'bench', line: 1 },
  ...over,
});

const v4 = (i) => `${10 + (i >>> 24)}.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
const v6 = (i) => `2001:db8:${(i >>> 16).toString(16)}::${(i & 0xffff).toString(16)}`;
const servers = Array.from({ length: 8 }, (_, i) => `srv${i}`);

function heap() {
  for (let i = 0; i < 4; i++) globalThis.gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function measure(build) {
  const before = heap();
  let keep = build();
  const after = heap();
  const bytes = after - before;
  keep = null;
  heap();
  return Math.round((bytes / N) * 10) / 10;
}

const tableIpv4 = measure(() => {
  const t = new StickTable(cfg(), { node: 'bench' });
  for (let i = 0; i < N; i++) t.setLocal(v4(i), servers[i & 7]);
  if (t.count !== N) throw new Error(`count ${t.count}`);
  return t;
});

const tableIpv6 = measure(() => {
  const t = new StickTable(cfg(), { node: 'bench' });
  for (let i = 0; i < N; i++) t.setLocal(v6(i), servers[i & 7]);
  if (t.count !== N) throw new Error(`count ${t.count}`);
  return t;
});

const naiveMapIpv4 = measure(() => {
  const m = new Map();
  const now = Date.now();
  for (let i = 0; i < N; i++) {
    m.set(v4(i), { server: servers[i & 7], wall: now, counter: i & 0xffff, node: 'bench', expiresAt: now + 1800_000, connCnt: 0, httpReqCnt: 0 });
  }
  return m;
});

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// Throughput: keys (and remote updates) prepared beforehand, so only table work is timed.
const keys = Array.from({ length: N }, (_, i) => v4(i));
const setRuns = [];
const lookupRuns = [];
for (let r = 0; r < 5; r++) {
  const t = new StickTable(cfg(), { node: 'bench' });
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) t.setLocal(keys[i], servers[i & 7]);
  setRuns.push(N / (Number(process.hrtime.bigint() - t0) / 1e9));
  t0 = process.hrtime.bigint();
  let hits = 0;
  for (let i = 0; i < N; i++) if (t.lookup(keys[i]) !== undefined) hits++;
  lookupRuns.push(N / (Number(process.hrtime.bigint() - t0) / 1e9));
  if (hits !== N) throw new Error('lookup misses');
}
const wall0 = Date.now();
const updates = keys.map((key, i) => ({ key, server: servers[i & 7], ttl: 60_000, wall: wall0, counter: i & 0xffff, node: `peer${i & 3}`, connCnt: 0, httpReqCnt: 0 }));
const remoteRuns = [];
for (let r = 0; r < 5; r++) {
  const t = new StickTable(cfg(), { node: 'bench' });
  const t0 = process.hrtime.bigint();
  let ok = 0;
  for (let i = 0; i < N; i++) if (t.applyRemote(updates[i])) ok++;
  remoteRuns.push(N / (Number(process.hrtime.bigint() - t0) / 1e9));
  if (ok !== N) throw new Error(`applied ${ok}`);
}

console.log(
  JSON.stringify({
    entries: N,
    node: process.version,
    bytesPerEntry: { tableIpv4, tableIpv6, naiveMapIpv4 },
    opsPerSec: {
      setLocalCreate: Math.round(median(setRuns)),
      lookupHit: Math.round(median(lookupRuns)),
      applyRemoteCreate: Math.round(median(remoteRuns)),
    },
  }),
);
