// Counter store hot path, CPU ns per operation: acquire+release of an existing key (what a tracked
// connection costs), add (http_req_cnt and http_req_rate alternately) and read (the same columns),
// on a 100,000-entry `type ip` table with 10,000 live keys, cluster mode, one peer's shares present.
// Runs each build given (default: this tree's packages/core/dist) unshared, and shared when the
// build has the option; rounds interleave the variants so a busy machine slows them alike, and
// the median of the rounds is printed with the median per-round ratio to the first variant, then one JSON line ({"bench":"counters-micro",...}). Each
// round runs every variant in a fresh process, so no variant's JIT feedback slows another's.
//
// Run: npx tsc -b packages/core && node bench/counters-micro.mjs [--dist DIR[,DIR...]] [--rounds 7]
//   e.g. compare with an older build: cp -r packages/core/dist /tmp/base-dist (before the change),
//        then node bench/counters-micro.mjs --dist /tmp/base-dist,packages/core/dist
// For a steadier figure on a shared machine pin it: taskset -c 0 node bench/counters-micro.mjs ...
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { dist: { type: 'string', default: 'packages/core/dist' }, rounds: { type: 'string', default: '7' }, child: { type: 'string' } },
});
const ROUNDS = Number(values.rounds);
const KEYS = 10_000;
const OPS = 1_000_000;
const T0 = 1_000_000_000_000;

const cfg = {
  id: 'p/micro',
  name: 'micro',
  type: 'ip',
  keyLen: 32,
  size: 100_000,
  expire: 30 * 60_000,
  store: [],
  srvkey: 'name',
  peers: 'p',
  data: [
    { kind: 'http_req_rate', idx: 0, period: 10_000 },
    { kind: 'conn_cur', idx: 0, period: 0 },
    { kind: 'http_req_cnt', idx: 0, period: 0 },
    { kind: 'gpc', idx: 0, period: 0 },
  ],
  loc: { file: 'bench', line: 1 },
};
const keyText = (i) => `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
const keys = Array.from({ length: KEYS }, (_, i) => keyText(i));

function build(CounterTable, shared) {
  let clock = T0;
  const now = () => clock;
  const t = new CounterTable(cfg, { node: 'a', now, mode: 'cluster', ...(shared ? { shared: true } : {}) });
  const slots = new Int32Array(KEYS);
  for (let i = 0; i < KEYS; i++) {
    slots[i] = t.acquire(keys[i]);
    t.add(slots[i], 0, 1);
    t.applyShares('b', { key: keys[i], v: [Math.floor(T0 / 10_000), 3, 1, 1, 2, 0] });
  }
  // Drain so `add` below runs the common case (key already dirty) after the first round.
  const out = [];
  while (t.dirty > 0) {
    out.length = 0;
    t.drainDirty(4096, out);
  }
  return { t, slots, tick: () => (clock += 1) };
}

/** CPU time (user + system) per op: on a shared machine, time spent waiting for the core is not counted. */
function timeIt(fn) {
  const c0 = process.cpuUsage();
  const sink = fn();
  const c = process.cpuUsage(c0);
  const ns = ((c.user + c.system) * 1000) / OPS;
  if (sink === -12345) console.log('');
  return ns;
}

const ops = {
  acquire: ({ t }) =>
    timeIt(() => {
      let x = 0;
      for (let i = 0; i < OPS; i++) {
        const s = t.acquire(keys[i % KEYS]);
        t.release(s);
        x += s;
      }
      return x;
    }),
  add: ({ t, slots }) =>
    timeIt(() => {
      for (let i = 0; i < OPS; i++) t.add(slots[i % KEYS], (i & 1) === 0 ? 2 : 0, 1);
      return 0;
    }),
  read: ({ t, slots }) =>
    timeIt(() => {
      let x = 0;
      for (let i = 0; i < OPS; i++) x += t.read(slots[i % KEYS], (i & 1) === 0 ? 2 : 0);
      return x;
    }),
};

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s[s.length >> 1];
};

if (values.child) {
  // One variant in a fresh process (its own JIT feedback): warm up, then the median of 5 runs per op.
  const [dir, mode] = values.child.split('|');
  const { CounterTable } = await import(pathToFileURL(path.resolve(dir, 'index.js')).href);
  const env = build(CounterTable, mode === 'shared');
  const res = {};
  for (const op of Object.keys(ops)) ops[op](env);
  for (const op of Object.keys(ops)) {
    const runs = [];
    for (let i = 0; i < 5; i++) {
      env.tick();
      runs.push(ops[op](env));
    }
    res[op] = median(runs);
  }
  process.stdout.write(JSON.stringify(res));
  process.exit(0);
}

const variants = [];
for (const dir of values.dist.split(',')) {
  const mod = await import(pathToFileURL(path.resolve(dir, 'index.js')).href);
  variants.push({ name: `${dir} unshared`, arg: `${dir}|unshared` });
  if (typeof mod.CounterTable.prototype.shareHandle === 'function') variants.push({ name: `${dir} shared`, arg: `${dir}|shared` });
}

const results = variants.map(() => ({ acquire: [], add: [], read: [] }));
for (let r = 0; r < ROUNDS; r++) {
  variants.forEach((v, i) => {
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', v.arg], { encoding: 'utf8' });
    const res = JSON.parse(out);
    for (const op of Object.keys(ops)) results[i][op].push(res[op]);
  });
}
const summary = {};
variants.forEach((v, i) => {
  const m = Object.fromEntries(Object.entries(results[i]).map(([k, a]) => [k, Number(median(a).toFixed(1))]));
  // Median over rounds of this variant's time / the first variant's in the same round.
  const ratio = Object.fromEntries(Object.entries(results[i]).map(([k, a]) => [k, Number(median(a.map((x, r) => x / results[0][k][r])).toFixed(2))]));
  summary[v.name] = { ...m, ratio };
  console.log(
    `${v.name.padEnd(36)} acquire+release ${m.acquire} ns (x${ratio.acquire})  add ${m.add} ns (x${ratio.add})  read ${m.read} ns (x${ratio.read})`,
  );
});
console.log(JSON.stringify({ bench: 'counters-micro', rounds: ROUNDS, ns: summary }));
