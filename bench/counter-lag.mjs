// Cluster-wide counter lag: how long after a counted request its count is part of the sum on every
// node (issue #19: p99 <= 20 ms at 10,000 counted requests/s over 3 nodes).
//
// Run: npx tsc -b && node bench/counter-lag.mjs [--quick] [--rate=10000] [--seconds=10] [--keys=100]
//        [--flush-ms=5] [--warmup=2] [--impl=auto|core|bench] [--root=DIR]
//
// Three child processes (nodes a, b, c on 127.0.0.1, 127.0.0.2, 127.0.0.3), each a StickTable, a
// counters object and a PeersService in a full mesh. After every session is live, each node makes
// rate/3 increments per second of its own share of a counter, spread round-robin over `keys` keys,
// for `seconds` (after `warmup` seconds of the same load on other keys, not measured), recording the wall time of each increment (its n-th increment of key k makes its
// share of k equal n). Every node records each share it applies from a peer (node, key, value,
// apply time). Afterwards the parent computes, for each increment, the time until both other
// nodes held a share of that node and key >= its n: the moment the increment is in the sum
// everywhere. Reports p50/p90/p99/max over all increments, the shares and frames sent, and each
// process's event-loop delay (to tell CPU starvation from protocol delay).
//
// Counters: `--impl=core` uses core's CounterTable (`store http_req_rate(10s),http_req_cnt`, each
// increment adds 1 to both; the figure follows http_req_cnt), `bench` a minimal
// in-file implementation of ReplicatedCounters (one count per key); `auto` (default) takes core's
// when the build has it. Prints a human summary, then one JSON line {"bench":"counter-lag",...}.
//
// The same file is the child process (`--child`), driven over the fork() IPC channel.
import { fork } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { freePort } from './lib/ports.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const arg = (name, dflt) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};
const ROOT = path.resolve(arg('root', process.env.BENCH_ROOT || path.resolve(HERE, '..')));
const CORE = path.join(ROOT, 'packages/core/dist/index.js');
const PEERS = path.join(ROOT, 'packages/peers/dist/index.js');
const NODES = ['a', 'b', 'c'];
const HOSTS = { a: '127.0.0.1', b: '127.0.0.2', c: '127.0.0.3' };

/** Minimal ReplicatedCounters: one count per key and node (the bench's fallback). */
class BenchCounters {
  constructor(node, id) {
    this.node = node;
    this.id = id;
    this.schema = 'bench_cnt';
    this.width = 1;
    this.onDirty = undefined;
    this.mine = new Map();
    this.theirs = new Map();
    this.dirtyAt = new Map();
  }
  get dirty() {
    return this.dirtyAt.size;
  }
  add(key) {
    this.mine.set(key, (this.mine.get(key) ?? 0) + 1);
    if (!this.dirtyAt.has(key)) {
      this.dirtyAt.set(key, Date.now());
      if (this.dirtyAt.size === 1) this.onDirty?.();
    }
  }
  drainDirty(max, out) {
    let oldest = 0;
    for (const [key, at] of this.dirtyAt) {
      if (out.length >= max) break;
      this.dirtyAt.delete(key);
      out.push({ key, v: [this.mine.get(key)] });
      if (oldest === 0 || at < oldest) oldest = at;
    }
    return oldest;
  }
  exportShares(cursor, max, out) {
    const all = [...this.mine];
    let i = cursor;
    for (; i < all.length && out.length < max; i++) out.push({ key: all[i][0], v: [all[i][1]] });
    return i >= all.length ? -1 : i;
  }
  applyShares(node, u) {
    this.theirs.set(`${node}\n${u.key}`, u.v[0]);
    return true;
  }
  dropNode() {}
  /** `node`'s share of `key` as held here. */
  shareOf(node, key) {
    return this.theirs.get(`${node}\n${key}`) ?? 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Child: one node.
// ---------------------------------------------------------------------------------------------
async function child() {
  const core = await import(CORE);
  const { PeersService } = await import(PEERS);
  const me = JSON.parse(process.env.BENCH_NODE);
  const nop = () => {};
  const logger = { trace: nop, debug: nop, info: nop, warn: nop, error: (o, m) => process.stderr.write(`${me.name}: ${m} ${JSON.stringify(o)}\n`), fatal: nop };
  logger.child = () => logger;
  const tcfg = { id: 'rl', name: 'rl', type: 'string', keyLen: 32, size: 10_000, expire: 60_000, store: [], srvkey: 'name', loc: { file: 'bench', line: 1 } };
  const table = new core.StickTable(tcfg, { node: me.name });
  let counters;
  let add;
  let shareOf;
  if (me.impl === 'core') {
    // core's CounterTable with one count column; its own share API gives a node's share.
    const data = [{ kind: 'http_req_rate', idx: 0, period: 10_000 }, { kind: 'http_req_cnt', idx: 0, period: 0 }];
    counters = new core.CounterTable({ ...tcfg, data, counters: 'cluster' }, { node: me.name, mode: 'cluster' });
    const col = counters.column('http_req_cnt');
    const rateCol = counters.column('http_req_rate');
    const slots = new Map();
    add = (key) => {
      let s = slots.get(key);
      if (s === undefined) slots.set(key, (s = counters.acquire(key)));
      counters.add(s, rateCol, 1);
      counters.add(s, col, 1);
    };
    shareOf = (node, key) => counters.shares(key)?.nodes.find((n) => n.node === node)?.values.http_req_cnt ?? 0;
  } else {
    counters = new BenchCounters(me.name, 'rl');
    add = (key) => counters.add(key);
    shareOf = (node, key) => counters.shareOf(node, key);
  }
  // Every share applied from a peer: [nodeIndex, keyIndex, value, applyWallMs], preallocated (a
  // growing array would add copying and GC pauses to what is measured). At most one share per key
  // and peer per flush, plus the exports; past the capacity events are counted, not kept.
  const cap = 4 * (me.keys * 2 * Math.ceil((1000 / me.flushMs) * (me.seconds + 2)) + 2 * me.keys);
  const applied = new Float64Array(cap);
  let nApplied = 0;
  let overflow = 0;
  const apply = counters.applyShares.bind(counters);
  counters.applyShares = (node, u) => {
    const ok = apply(node, u);
    if (u.key.charCodeAt(0) !== 107 /* k: measured keys; w: warm-up */) return ok;
    if (nApplied + 4 > cap) {
      overflow++;
      return ok;
    }
    applied[nApplied++] = NODES.indexOf(node);
    applied[nApplied++] = Number(u.key.slice(1));
    applied[nApplied++] = shareOf(node, u.key);
    applied[nApplied++] = Date.now();
    return ok;
  };
  const svc = new PeersService({
    node: me.name, cluster: 'bench', secret: 'bench', bind: { host: me.host, port: me.port }, peers: me.peers,
    tables: [table], counters: [counters], logger, counterFlushMs: me.flushMs, antiEntropyMs: 0,
  });
  const eld = monitorEventLoopDelay({ resolution: 1 });
  const keyNames = (prefix) => Array.from({ length: me.keys }, (_, k) => `${prefix}${k}`);
  await svc.start();
  process.on('message', async (m) => {
    if (m.cmd === 'live') {
      const live = svc.status().every((p) => p.state === 'live' && (p.counterTables ?? []).includes('rl'));
      process.send({ id: m.id, live });
    } else if (m.cmd === 'run') {
      // rate per node for `seconds`, starting at wall time m.startAt; keys round-robin.
      const KEYS = keyNames(m.prefix);
      const total = Math.round(m.rate * m.seconds);
      const per = Math.ceil(total / m.keys);
      const times = new Float64Array(m.keys * per);
      const count = new Int32Array(m.keys);
      let done = 0;
      while (Date.now() < m.startAt) await new Promise((r) => setTimeout(r, 1));
      if (m.prefix === 'k') eld.enable();
      await new Promise((resolve) => {
        const tick = () => {
          const due = Math.min(total, Math.floor(((Date.now() - m.startAt) * m.rate) / 1000));
          for (; done < due; done++) {
            const k = done % m.keys;
            add(KEYS[k]);
            times[k * per + count[k]++] = Date.now();
          }
          if (done >= total) resolve();
          else setTimeout(tick, 1);
        };
        tick();
      });
      process.send({ id: m.id, times: Array.from({ length: m.keys }, (_, k) => Array.from(times.subarray(k * per, k * per + count[k]))) });
    } else if (m.cmd === 'collect') {
      eld.disable();
      const st = svc.status();
      process.send({
        id: m.id, applied: Array.from(applied.subarray(0, nApplied)), overflow, counterStats: svc.counterStats(),
        sharesSent: st.reduce((n, p) => n + (p.sharesSent ?? 0), 0),
        eld: { p50: eld.percentile(50) / 1e6, p99: eld.percentile(99) / 1e6, max: eld.max / 1e6 },
      });
    } else if (m.cmd === 'stop') {
      await svc.stop();
      process.send({ id: m.id });
      process.exit(0);
    }
  });
  process.send({ id: 0, ready: true });
}

// ---------------------------------------------------------------------------------------------
// Parent.
// ---------------------------------------------------------------------------------------------
function rpcOf(proc) {
  let next = 1;
  const waiting = new Map();
  proc.on('message', (m) => waiting.get(m.id)?.(m));
  return (cmd, extra = {}) => new Promise((resolve) => {
    const id = next++;
    waiting.set(id, (m) => {
      waiting.delete(id);
      resolve(m);
    });
    proc.send({ id, cmd, ...extra });
  });
}

const q = (xs, p) => xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(p * xs.length) - 1))];

async function main() {
  const quick = process.argv.includes('--quick');
  const rate = Number(arg('rate', 10_000));
  const seconds = Number(arg('seconds', quick ? 2 : 10));
  const keys = Number(arg('keys', 100));
  const flushMs = Number(arg('flush-ms', 5));
  const warmup = Number(arg('warmup', quick ? 0.5 : 2));
  const core = await import(CORE);
  const implArg = arg('impl', 'auto');
  const impl = implArg === 'auto' ? (core.CounterTable ? 'core' : 'bench') : implArg;
  if (impl === 'core' && !core.CounterTable) throw new Error('--impl=core: this build of core has no CounterTable');
  const ports = {};
  for (const n of NODES) ports[n] = await freePort();
  const procs = {};
  const rpc = {};
  for (const n of NODES) {
    const peers = NODES.filter((x) => x !== n).map((x) => ({ name: x, host: HOSTS[x], port: ports[x] }));
    const env = { ...process.env, BENCH_NODE: JSON.stringify({ name: n, host: HOSTS[n], port: ports[n], peers, flushMs, impl, keys, seconds }) };
    procs[n] = fork(fileURLToPath(import.meta.url), ['--child', `--root=${ROOT}`], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    rpc[n] = rpcOf(procs[n]);
    await new Promise((r) => procs[n].once('message', r));
  }
  const deadline = Date.now() + 15_000;
  for (;;) {
    const s = await Promise.all(NODES.map((n) => rpc[n]('live')));
    if (s.every((x) => x.live)) break;
    if (Date.now() > deadline) throw new Error('mesh not live within 15 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  const perNode = rate / NODES.length;
  if (warmup > 0) {
    // Same load on other keys first, not measured: JIT and first-GC effects out of the figures.
    const at = Date.now() + 200;
    await Promise.all(NODES.map((n) => rpc[n]('run', { rate: perNode, seconds: warmup, keys, startAt: at, prefix: 'w' })));
  }
  const startAt = Date.now() + 200;
  const runs = await Promise.all(NODES.map((n) => rpc[n]('run', { rate: perNode, seconds, keys, startAt, prefix: 'k' })));
  // Let the last flushes land, then collect.
  await new Promise((r) => setTimeout(r, 500));
  const col = await Promise.all(NODES.map((n) => rpc[n]('collect')));
  await Promise.all(NODES.map((n) => rpc[n]('stop')));

  // Per receiver r, sender s, key k: apply events in order (value nondecreasing).
  const lat = [];
  let missing = col.reduce((n, c) => n + c.overflow, 0);
  for (let s = 0; s < NODES.length; s++) {
    const times = runs[s].times;
    for (let k = 0; k < keys; k++) {
      const incs = times[k];
      const seenAt = new Float64Array(incs.length).fill(0);
      for (let r = 0; r < NODES.length; r++) {
        if (r === s) continue;
        // Walk r's applies of (s, k): each value v makes increments 1..v visible at that time.
        const ev = col[r].applied;
        let upTo = 0;
        const at = new Float64Array(incs.length).fill(Infinity);
        for (let i = 0; i < ev.length; i += 4) {
          if (ev[i] !== s || ev[i + 1] !== k) continue;
          const v = Math.min(ev[i + 2], incs.length);
          for (; upTo < v; upTo++) at[upTo] = ev[i + 3];
        }
        for (let j = 0; j < incs.length; j++) seenAt[j] = Math.max(seenAt[j], at[j]);
      }
      for (let j = 0; j < incs.length; j++) {
        if (seenAt[j] === Infinity) missing++;
        else lat.push(Math.max(0, seenAt[j] - incs[j]));
      }
    }
  }
  lat.sort((x, y) => x - y);
  const total = runs.reduce((n, r) => n + r.times.reduce((m, t) => m + t.length, 0), 0);
  const result = {
    bench: 'counter-lag', impl, rate, seconds, warmupSeconds: warmup, keys, counterFlushMs: flushMs, increments: total, missing,
    lagMs: { p50: q(lat, 0.5), p90: q(lat, 0.9), p99: q(lat, 0.99), max: lat.at(-1) },
    // Over the warm-up and the measured run (the services count from their start).
    sharesSentPerSecond: Math.round(col.reduce((n, c) => n + c.sharesSent, 0) / (seconds + warmup)),
    framesEncodedPerSecond: Math.round(col.reduce((n, c) => n + c.counterStats.frames, 0) / (seconds + warmup)),
    eventLoopDelayMs: Object.fromEntries(NODES.map((n, i) => [n, { p50: +col[i].eld.p50.toFixed(2), p99: +col[i].eld.p99.toFixed(2), max: +col[i].eld.max.toFixed(2) }])),
    bar: { p99Ms: 20, pass: missing === 0 && q(lat, 0.99) <= 20 },
  };
  console.log(`counter lag (${impl} counters), ${rate}/s over 3 nodes for ${seconds}s after ${warmup}s of warm-up, ${keys} keys, counterFlushMs ${flushMs}, load average ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} CPUs`);
  console.log(`  increments ${total}, not visible everywhere ${missing}`);
  console.log(`  time until in the sum on every node: p50 ${result.lagMs.p50} ms, p90 ${result.lagMs.p90} ms, p99 ${result.lagMs.p99} ms, max ${result.lagMs.max} ms (bar p99 <= 20 ms: ${result.bar.pass ? 'PASS' : 'FAIL'})`);
  console.log(`  shares sent ${result.sharesSentPerSecond}/s (all nodes), frames encoded ${result.framesEncodedPerSecond}/s`);
  console.log(`  event-loop delay p99 ms: ${NODES.map((n) => `${n} ${result.eventLoopDelayMs[n].p99}`).join(', ')}`);
  console.log(JSON.stringify(result));
}

if (process.argv.includes('--child')) await child();
else await main();
