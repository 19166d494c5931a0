// Rule engine micro-benchmark: ns per evaluation and heap bytes allocated per evaluation of
// compiled ACL conditions over a fake SampleSource (packages/proxy/src/rules/testing.ts).
// Run: npx tsc -b && node --expose-gc --max-semi-space-size=64 bench/rules-micro.mjs
// Prints one line per case: median ns/eval over 7 runs of 2,000,000 evaluations, and bytes/eval
// measured over 1,000,000 evaluations between two forced GCs (the young generation is large enough
// that no collection runs in between, so the heap growth is what the evaluations allocated).
import { compileCond } from '../packages/proxy/dist/rules/acl.js';
import { FakeCounters, FakeHttp, fakeEnv, fakeSource, stored } from '../packages/proxy/dist/rules/testing.js';

if (typeof globalThis.gc !== 'function') {
  console.error('run with: node --expose-gc --max-semi-space-size=64 bench/rules-micro.mjs');
  process.exit(2);
}

const LOC = { file: 'bench.cfg', line: 1 };
const expr = (fetch, args = [], converters = []) => ({ fetch, args, converters, text: fetch });
const anon = (sample, match, patterns, ignoreCase = false) => ({ negate: false, anon: { sample, match, ignoreCase, patterns, loc: LOC } });
const cond = (kind, ...ands) => ({ kind, or: [ands], loc: LOC });

const table = new FakeCounters('t', stored('http_req_rate(10s),conn_cur'));
const env = fakeEnv([table], 't');
const slot = table.track('192.0.2.10');
table.set(slot.slot, 0, 57);

const httpSrc = (target, headers = []) =>
  fakeSource({ clientIp: '192.0.2.10', sc: [slot, undefined, undefined], http: new FakeHttp('GET', target, headers) });
const headers = [
  ['Host', 'www.example.com'],
  ['User-Agent', 'curl/8.0'],
  ['Accept', '*/*'],
  ['X-Forwarded-For', '10.1.2.3, 172.16.0.9'],
];

const CASES = [
  ['if { sc_http_req_rate(0) gt 100 }', cond('if', anon(expr('sc_http_req_rate', ['0']), 'int', ['gt', '100'])), httpSrc('/api/users?id=1', headers), false],
  ['if { path_beg /api } (no query)', cond('if', anon(expr('path'), 'beg', ['/api'])), httpSrc('/api/users', headers), true],
  ['if { path_beg /api } (with query)', cond('if', anon(expr('path'), 'beg', ['/api'])), httpSrc('/api/users?id=1', headers), true],
  ['if { src 10.0.0.0/8 192.168.0.0/16 192.0.2.0/24 }', cond('if', anon(expr('src'), 'ip', ['10.0.0.0/8', '192.168.0.0/16', '192.0.2.0/24'])), httpSrc('/', headers), true],
  ['if { hdr(host) -i www.example.com }', cond('if', anon(expr('hdr', ['host']), 'str', ['www.example.com'], true)), httpSrc('/', headers), true],
  ['if { hdr(x-forwarded-for) -m ip 172.16.0.0/12 }', cond('if', anon(expr('hdr', ['x-forwarded-for']), 'ip', ['172.16.0.0/12'])), httpSrc('/', headers), true],
  ['if METH_POST { sc_http_req_rate(0) gt 100 }', cond('if', { negate: false, acl: 'METH_POST' }, anon(expr('sc_http_req_rate', ['0']), 'int', ['gt', '100'])), httpSrc('/', headers), false],
  ['unless { sc_http_req_rate(0) gt 100 } || LOCALHOST', { kind: 'unless', or: [[anon(expr('sc_http_req_rate', ['0']), 'int', ['gt', '100'])], [{ negate: false, acl: 'LOCALHOST' }]], loc: LOC }, httpSrc('/', headers), true],
];

// Each case gets its own copy of the loop, so one case's closures do not make another's call site polymorphic.
const newLoop = () => new Function('f', 'src', 'n', 'let hits = 0; for (let i = 0; i < n; i++) if (f(src)) hits++; return hits;');

function timeNs(loop, f, src, n) {
  const t0 = process.hrtime.bigint();
  const hits = loop(f, src, n);
  const t1 = process.hrtime.bigint();
  if (hits !== 0 && hits !== n) throw new Error('unstable result');
  return Number(t1 - t0) / n;
}

function bytesPerEval(loop, f, src, n) {
  globalThis.gc();
  globalThis.gc();
  const before = process.memoryUsage().heapUsed;
  loop(f, src, n);
  const after = process.memoryUsage().heapUsed;
  return Math.max(0, (after - before) / n);
}

function measure(name, f, src) {
  const loop = newLoop();
  timeNs(loop, f, src, 2_000_000); // warm up and let the JIT settle
  const runs = Array.from({ length: 7 }, () => timeNs(loop, f, src, 2_000_000)).sort((a, b) => a - b);
  const bytes = bytesPerEval(loop, f, src, 1_000_000);
  return { case: name, nsPerEval: Number(runs[3].toFixed(1)), bytesPerEval: Number(bytes.toFixed(2)) };
}

// Baseline: the cost of calling a closure at all on this machine.
const results = [measure('(baseline: a closure reading one field)', (src) => src.ssl, httpSrc('/'))];
for (const [name, c, src, expect] of CASES) {
  const f = compileCond(c, env);
  if (f(src) !== expect) throw new Error(`${name}: expected ${expect}`);
  results.push(measure(name, f, src));
}
console.log(`node ${process.version}`);
for (const r of results) console.log(`${r.case.padEnd(56)} ${String(r.nsPerEval).padStart(6)} ns/eval  ${String(r.bytesPerEval).padStart(6)} B/eval`);
