/**
 * Fuzz target: one PeersService (node 'b', from the build in dist/) in its own process, so a crash
 * of the service is a dead process the fuzzer can see. Driven over IPC by test/fuzz-peers.ts:
 * it answers one request at a time ({id, cmd, ...} -> {id, ...}) and writes nothing else.
 * Peers: 'a' (the legitimate dialer) and 'a0' (the identity authenticated fuzz cases use); both
 * sort below 'b', so this node only accepts and never dials them.
 */
import { pino } from 'pino';
import { StickTable, TicketKeyRing } from '@stickmesh/core';
import { PeersService } from '../dist/index.js';

const opts = JSON.parse(process.argv[2] ?? '{}');
const table = new StickTable(
  { id: 't1', name: 't1', type: 'string', keyLen: 32, size: 10_000, expire: 0, store: [], srvkey: 'name', loc: { file: 'fuzz', line: 1 } },
  { node: 'b' },
);
/**
 * Minimal ReplicatedCounters (width 2: a count and a gauge) with fixed bounds: at most MAX_KEYS keys
 * per node and MAX_NODES nodes; shares beyond them, or with a value that is not a finite number
 * >= 0, are refused.
 */
const MAX_KEYS = 10_000;
const MAX_NODES = 8;
class Counters {
  id = 't1';
  schema = 'fuzz_cnt,fuzz_cur';
  width = 2;
  onDirty = undefined;
  shares = new Map([['b', new Map()]]);
  dirtyKeys = new Set();
  rejected = 0;
  /** Shares the fuzzer's sessions (a0) got as far as applyShares. */
  fromFuzzer = 0;
  get dirty() { return this.dirtyKeys.size; }
  add(key, n) {
    const mine = this.shares.get('b');
    const v = mine.get(key) ?? [0, 0];
    v[0] += n;
    mine.set(key, v);
    const was = this.dirtyKeys.size;
    this.dirtyKeys.add(key);
    if (was === 0) this.onDirty?.();
  }
  read(key) {
    let sum = 0;
    for (const m of this.shares.values()) sum += m.get(key)?.[0] ?? 0;
    return sum;
  }
  drainDirty(max, out) {
    for (const key of this.dirtyKeys) {
      if (out.length >= max) break;
      this.dirtyKeys.delete(key);
      out.push({ key, v: [...this.shares.get('b').get(key)] });
    }
    return out.length > 0 ? Date.now() : 0;
  }
  exportShares(cursor, max, out) {
    const all = [...this.shares.get('b')];
    let i = cursor;
    for (; i < all.length && out.length < max; i++) out.push({ key: all[i][0], v: [...all[i][1]] });
    return i >= all.length ? -1 : i;
  }
  applyShares(node, u) {
    if (node === 'a0') this.fromFuzzer++;
    if (u.v.length !== 2 || !u.v.every((x) => Number.isFinite(x) && x >= 0) || u.key.length > 64) return (this.rejected++, false);
    let m = this.shares.get(node);
    if (!m) {
      if (this.shares.size >= MAX_NODES) return (this.rejected++, false);
      this.shares.set(node, (m = new Map()));
    }
    if (!m.has(u.key) && m.size >= MAX_KEYS) return (this.rejected++, false);
    m.set(u.key, [...u.v]);
    return true;
  }
  dropNode(node) {
    for (const v of this.shares.get(node)?.values() ?? []) v[1] = 0;
  }
}
const counters = new Counters();
/** TLS ticket keys, shared with 'a' (which has a ring too): hostile `tk` frames must never change it. */
const ring = new TicketKeyRing({ node: 'b' });
ring.start();
const svc = new PeersService({
  node: 'b',
  cluster: 'fuzz',
  bind: { host: '127.0.0.1', port: 0 },
  peers: [
    { name: 'a', host: '127.0.0.1', port: 1 },
    { name: 'a0', host: '127.0.0.1', port: 1 },
  ],
  tables: [table],
  counters: [counters],
  ticketKeys: ring,
  logger: pino({ level: 'silent' }),
  heartbeatMs: 200,
  deadAfterMs: 3000,
  antiEntropyMs: 200,
  ...opts,
});

function heap() {
  for (let i = 0; i < 3; i++) globalThis.gc?.();
  return process.memoryUsage().heapUsed;
}

process.on('message', (m) => {
  let r;
  switch (m.cmd) {
    case 'digest': r = { digest: table.digest(), count: table.count }; break;
    case 'set': table.setLocal(m.key, m.server); svc.notify(); r = {}; break;
    case 'get': r = { server: table.lookup(m.key) ?? null }; break;
    case 'counter-add': counters.add(m.key, m.n); r = {}; break;
    case 'ticket-keys': r = { keys: ring.all().map((k) => k.toString('hex')), stats: ring.stats }; break;
    case 'counter-read': r = { sum: counters.read(m.key), rejected: counters.rejected, fromFuzzer: counters.fromFuzzer }; break;
    // `conns` is the service's set of open connections (private in TS, readable here): its size shows leaks.
    case 'state': r = { heap: heap(), conns: svc.conns.size, raw: svc.rawConnections, refusals: svc.refusals, peers: svc.status(), rss: process.memoryUsage().rss }; break;
    default: r = { error: `unknown command ${m.cmd}` };
  }
  process.send({ id: m.id, ...r });
});

await svc.start();
process.send({ id: 0, port: svc.address.port });
