// CPU cost of one request log line, alone: logExchange (http/access-log.ts) on a made-up finished
// exchange, `--per-turn` lines per event-loop turn, through createLogger's sink into a pipe that
// `cat` (core 1 when taskset is there) reads, as stdout is read in the bench's stickmesh-http-log.
// Prints microseconds of this process's CPU (user + system, every thread) per line: the median
// over `--reps` repetitions of (a run of `--lines` lines) minus (the same loop without logging, run
// just before it), so a machine shared with other work disturbs both sides of each difference alike.
// `--dist DIR` measures another build of packages/proxy/dist (e.g. a copy made before a change);
// `--vs DIR` measures a second build in the same process, its runs alternated with the first's,
// and prints the ratio (a paired comparison, steadier than two invocations). `--uri` sets the
// request target logged (default `/`), `--tls` adds ssl_fc true and an SNI, `--stick` a stick result.
// `--null` sends stdout to /dev/null instead (the sink's blocking writes there cost next to
// nothing): the encoder's cost without the pipe's.
// `--spacing US` spaces requests US µs of wall time apart (busy-waiting, in both arms): a proxy
// doing other work logs a few lines per millisecond, so what the log does once per ms weighs more.
// The lines come from `--conns` connections taking turns (keep-alive, default 200); `--churn K`
// replaces each connection by a new one after K requests (`--churn 1`: a connection per request).
// Requests go to `--servers` servers in turn (default 2, as the bench's `balance roundrobin` over
// two upstreams does), with the cookie flags of its `cookie ... insert` (termination state --NI).
//
// Run: npx tsc -b && node bench/log-micro.mjs [--lines 100000] [--reps 5] [--per-turn 50]
//      [--dist DIR] [--vs DIR] [--uri /path?query] [--tls] [--stick] [--conns 200] [--servers 2] [--churn K] [--null] [--spacing US]
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuPlan, pinned } from './lib/proc.mjs';
import { repoRoot } from './lib/targets.mjs';

const { values } = parseArgs({
  options: {
    lines: { type: 'string', default: '100000' },
    reps: { type: 'string', default: '5' },
    'per-turn': { type: 'string', default: '50' },
    dist: { type: 'string' },
    vs: { type: 'string' },
    uri: { type: 'string', default: '/' },
    tls: { type: 'boolean', default: false },
    stick: { type: 'boolean', default: false },
    conns: { type: 'string', default: '200' },
    servers: { type: 'string', default: '2' },
    churn: { type: 'string', default: '0' },
    null: { type: 'boolean', default: false },
    spacing: { type: 'string', default: '0' },
    child: { type: 'boolean' },
  },
});

if (!values.child) {
  // Re-run this script with its stdout a pipe into cat, the way the bench target runs.
  const plan = cpuPlan();
  const cat = values.null ? null : spawn(...(([a, ...r]) => [a, r])(pinned(plan, 1, ['cat'])), { stdio: ['pipe', 'ignore', 'inherit'] });
  const me = spawn(...(([a, ...r]) => [a, r])(pinned(plan, 0, [process.execPath, ...process.argv.slice(1), '--child'])), { stdio: ['ignore', cat ? cat.stdin : 'ignore', 'pipe'] });
  me.stderr.pipe(process.stderr);
  const code = await new Promise((r) => me.on('exit', r));
  cat?.kill();
  process.exit(code ?? 1);
}

const dists = [values.dist ?? path.join(repoRoot, 'packages/proxy/dist'), ...(values.vs ? [values.vs] : [])].map((d) => path.resolve(d));

/** One build's logExchange with its own logger and a made-up exchange to log. */
async function load(dist) {
  const { createLogger } = await import(pathToFileURL(path.join(dist, 'log.js')).href);
  const { logExchange } = await import(pathToFileURL(path.join(dist, 'http/access-log.js')).href);
  const { RequestContext } = await import(pathToFileURL(path.join(dist, 'http/context.js')).href);
  const { logger, flush } = createLogger({ level: 'info', node: 'bench' });
  const servers = Array.from({ length: Number(values.servers) }, (_, i) => ({ name: `s${i + 1}` }));
  const fe = { logger, name: 'fe' };
  const backend = { name: 'be' };
  let nextPort = 40000;
  /** A new client connection (the proxy makes one Exchange per connection). */
  const connect = () => ({
    ctx: new RequestContext(),
    fe,
    backend,
    clientIp: '127.0.0.1',
    clientPort: nextPort++ & 0xffff,
    tls: values.tls,
    sni: values.tls ? 'www.example.com' : undefined,
    stickState: { result: values.stick ? 'hit' : '' },
  });
  const conns = Array.from({ length: Number(values.conns) }, connect);
  const churn = Number(values.churn);
  let conn = conns[0];
  /** Request `i`: the connections take turns; with --churn K each is replaced after K requests. */
  const fill = (i) => {
    const k = i % conns.length;
    if (churn > 0 && ((i / conns.length) | 0) % churn === churn - 1) conns[k] = connect();
    conn = conns[k];
    const ctx = conn.ctx;
    const now = Date.now();
    ctx.reset(now - 2, true);
    ctx.tHead = now - 2;
    ctx.tConnStart = now - 2;
    ctx.tConnected = now - 1;
    ctx.tResHead = now;
    ctx.status = 200;
    ctx.bytesOut = 256 + (i & 7);
    ctx.bytesIn = 40;
    ctx.server = servers[i % servers.length];
    ctx.cookie.resFlag = 'I';
    ctx.decidedBy = values.stick ? 'stick' : 'balance';
    ctx.method = 'GET';
    ctx.target = values.uri;
  };
  return { name: path.relative(repoRoot, dist) || dist, log: () => logExchange(conn), fill, flush };
}

const builds = [];
for (const d of dists) builds.push(await load(d));
const lines = Number(values.lines);
const perTurn = Number(values['per-turn']);
const turn = () => new Promise((r) => setImmediate(r));

/** CPU µs per iteration of `lines` iterations: fill, then log when `log`. */
const spacingMs = Number(values.spacing) / 1000;
let due = 0;
/** Busy-waits until `--spacing` µs after the previous request (both arms wait alike; allocates nothing). */
function space() {
  if (spacingMs === 0) return;
  let t = performance.now();
  while (t < due) t = performance.now();
  due = t + spacingMs;
}

async function run(b, log) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < lines; i++) {
    space();
    b.fill(i);
    if (log) b.log();
    if (i % perTurn === perTurn - 1) await turn();
  }
  if (log) await b.flush();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / lines;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
// Warm-up (both arms of every build), then the measured repetitions.
for (const b of builds) {
  await run(b, false);
  await run(b, true);
}
const costs = builds.map(() => []);
for (let r = 0; r < Number(values.reps); r++) {
  for (let k = 0; k < builds.length; k++) {
    const base = await run(builds[k], false);
    costs[k].push((await run(builds[k], true)) - base);
  }
}
const med = costs.map(median);
for (let k = 0; k < builds.length; k++) {
  process.stderr.write(
    `${builds[k].name}: ${(med[k] * 1000).toFixed(0)} ns CPU per request line (median of ${values.reps}: ${costs[k].map((c) => (c * 1000).toFixed(0)).join(' ')}), ` +
      `${lines} lines per run, ${perTurn} per turn, ${values.conns} connections, ${values.servers} servers${Number(values.churn) > 0 ? ` (each replaced after ${values.churn} requests)` : ''}, uri ${values.uri.length > 40 ? `${values.uri.length} chars` : values.uri}${values.tls ? ', tls+sni' : ''}${values.stick ? ', stick' : ''}${values.null ? ', stdout /dev/null' : ''}${Number(values.spacing) > 0 ? `, requests ${values.spacing} µs apart` : ''}\n`,
  );
}
if (builds.length === 2) {
  const ratios = costs[1].map((c, i) => c / costs[0][i]);
  process.stderr.write(`${builds[1].name} / ${builds[0].name}: ${median(ratios).toFixed(2)} (median of the paired ratios)\n`);
}
process.exit(0);
