// Micro-benchmark of the stick table's hot path: setLocal (a mix of created, updated and unchanged
// writes) and lookup (hits), in CPU ns per operation (process.cpuUsage, so other load on the
// machine matters less than with wall time), median of --reps repetitions.
//
// Run: npx tsc -b && taskset -c 0 node bench/table-micro.mjs [--dist DIR] [--base DIR] [--shared] [--reps 7] [--n 200000]
//   --dist: a built packages/core/dist (default this checkout's).
//   --base: another build (e.g. a copy of main's dist): each repetition then runs base and dist in
//           turn in this one process, and the medians of the per-repetition ratios dist/base are
//           printed too (steadier than two runs on a shared machine).
//   --shared: the tables of --dist are built with `shared: true` (base tables never are).
// Prints one JSON line: {"bench":"table-micro","shared":false,"setLocal_ns":..,"lookup_ns":..}.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    dist: { type: 'string', default: path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'packages', 'core', 'dist') },
    base: { type: 'string' },
    shared: { type: 'boolean', default: false },
    reps: { type: 'string', default: '7' },
    n: { type: 'string', default: '200000' },
  },
});
const load = async (dir) => (await import(pathToFileURL(path.join(dir, 'table', 'stick-table.js')).href)).StickTable;
const StickTable = await load(values.dist);
const BaseTable = values.base ? await load(values.base) : undefined;
const N = Number(values.n);
const reps = Number(values.reps);
const cfg = { id: 'be', name: 'be', type: 'ip', keyLen: 32, size: N, expire: 1_800_000, store: [], srvkey: 'name', loc: { file: 'bench', line: 1 } };
const keys = Array.from({ length: N }, (_, i) => `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`);
const servers = ['s1', 's2', 's3', 's4'];

function cpuNs(fn) {
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) * 1000;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const opts = { node: 'a', ...(values.shared ? { shared: true } : {}) };
let sink = 0;

/** CPU ns per setLocal and per lookup on a fresh table of class C. */
function once(C, o) {
  const t = new C(cfg, o);
  // Pass 1 creates every key, pass 2 changes each server (updated), pass 3 writes the same again (unchanged).
  const ns = cpuNs(() => {
    for (let p = 0; p < 3; p++) {
      const sv = p === 0 ? 0 : 1;
      for (let i = 0; i < N; i++) t.setLocal(keys[i], servers[(i + sv) & 3]);
    }
  });
  const nl = cpuNs(() => {
    for (let p = 0; p < 3; p++) for (let i = 0; i < N; i++) if (t.lookup(keys[i]) !== undefined) sink++;
  });
  return [ns / (3 * N), nl / (3 * N)];
}

const set = [];
const look = [];
const rs = [];
const rl = [];
for (let r = 0; r < reps + 1; r++) {
  // Alternate which build goes first, so neither always pays the other's garbage.
  const baseFirst = (r & 1) === 0;
  let b = BaseTable && baseFirst ? once(BaseTable, { node: 'a' }) : undefined;
  const [s1, l1] = once(StickTable, opts);
  if (BaseTable && !baseFirst) b = once(BaseTable, { node: 'a' });
  if (r === 0) continue; // warm-up
  set.push(s1);
  look.push(l1);
  if (b) {
    rs.push(s1 / b[0]);
    rl.push(l1 / b[1]);
  }
}
if (sink === 0) throw new Error('no lookups hit');
const res = { bench: 'table-micro', shared: values.shared, setLocal_ns: Math.round(median(set)), lookup_ns: Math.round(median(look)), n: N, reps };
if (BaseTable) Object.assign(res, { setLocal_vs_base: +median(rs).toFixed(3), lookup_vs_base: +median(rl).toFixed(3) });
console.log(JSON.stringify(res));
