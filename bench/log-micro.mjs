// CPU cost of one request log line, alone: logExchange (http/access-log.ts) on a made-up finished
// exchange, `--per-turn` lines per event-loop turn, through createLogger's sink into a pipe that
// `cat` (core 1 when taskset is there) reads, as stdout is read in the bench's stickmesh-http-log.
// Prints microseconds of this process's CPU (user + system, every thread) per line. `--dist DIR`
// measures another build of packages/proxy/dist (e.g. a copy made before a change).
//
// Run: npx tsc -b && node bench/log-micro.mjs [--lines 200000] [--per-turn 50] [--dist DIR]
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuPlan, pinned } from './lib/proc.mjs';
import { repoRoot } from './lib/targets.mjs';

const { values } = parseArgs({ options: { lines: { type: 'string', default: '200000' }, 'per-turn': { type: 'string', default: '50' }, dist: { type: 'string' }, child: { type: 'boolean' } } });
const dist = path.resolve(values.dist ?? path.join(repoRoot, 'packages/proxy/dist'));

if (!values.child) {
  // Re-run this script with its stdout a pipe into cat, the way the bench target runs.
  const plan = cpuPlan();
  const cat = spawn(...(([a, ...r]) => [a, r])(pinned(plan, 1, ['cat'])), { stdio: ['pipe', 'ignore', 'inherit'] });
  const me = spawn(...(([a, ...r]) => [a, r])(pinned(plan, 0, [process.execPath, ...process.argv.slice(1), '--child'])), { stdio: ['ignore', cat.stdin, 'pipe'] });
  me.stderr.pipe(process.stderr);
  const code = await new Promise((r) => me.on('exit', r));
  cat.kill();
  process.exit(code ?? 1);
}

const { createLogger } = await import(pathToFileURL(path.join(dist, 'log.js')).href);
const { logExchange } = await import(pathToFileURL(path.join(dist, 'http/access-log.js')).href);
const { RequestContext } = await import(pathToFileURL(path.join(dist, 'http/context.js')).href);
const { logger, flush } = createLogger({ level: 'info', node: 'bench' });
const ctx = new RequestContext();
const conn = {
  ctx,
  fe: { logger, name: 'fe' },
  backend: { name: 'be' },
  clientIp: '127.0.0.1',
  clientPort: 40000,
  tls: false,
  sni: undefined,
  stickState: { result: '' },
};
function fill(i) {
  const now = Date.now();
  ctx.reset(now - 2, true);
  ctx.tHead = now - 2;
  ctx.tConnStart = now - 2;
  ctx.tConnected = now - 1;
  ctx.tResHead = now;
  ctx.status = 200;
  ctx.bytesOut = 256 + (i & 7);
  ctx.bytesIn = 40;
  ctx.server = { name: 's1' };
  ctx.decidedBy = 'balance';
  ctx.method = 'GET';
  ctx.target = '/';
  conn.clientPort = 40000 + (i % 20000);
}
const lines = Number(values.lines);
const perTurn = Number(values['per-turn']);
const turn = () => new Promise((r) => setImmediate(r));
// Warm-up, then the measured run. fill() runs in both arms of the comparison: measured apart.
for (let i = 0; i < 20000; i++) {
  fill(i);
  logExchange(conn);
  if (i % perTurn === 0) await turn();
}
const run = async (log) => {
  const c0 = process.cpuUsage();
  for (let i = 0; i < lines; i++) {
    fill(i);
    if (log) logExchange(conn);
    if (i % perTurn === perTurn - 1) await turn();
  }
  if (log) await flush();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / lines;
};
const base = await run(false);
const withLog = await run(true);
process.stderr.write(`${path.relative(repoRoot, dist) || dist}: ${(withLog - base).toFixed(2)} us CPU per request line (loop alone ${base.toFixed(2)} us, with the line ${withLog.toFixed(2)} us), ${lines} lines, ${perTurn} per turn\n`);
process.exit(0);
