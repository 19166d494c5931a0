// CPU per request of two builds of one stickmesh target, alternated: a change's own cost or gain,
// measured without a second proxy. `A` and `B` are copies of packages/proxy/dist (e.g. made with
// `cp -r packages/proxy/dist /tmp/dist-before` before a change and after it); each round copies
// one into packages/proxy/dist, starts the target alone on core 0, runs wrk (core 1) at each
// connection count and reads the proxy's CPU seconds from /proc. Rounds alternate A, B, B, A, ...
// so a drift of the machine lands on both. Prints each run, then per connection count the medians
// of requests per proxy CPU-second and B/A; leaves packages/proxy/dist as B.
//
// Run: node bench/builds-ab.mjs DIST_A DIST_B [--target stickmesh-https] [--conns 50,200]
//      [--seconds 5] [--rounds 4] [--close]   (--close: wrk sends `Connection: close`, a new
//      connection per request: req/CPU-s is then new connections per CPU-second)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cpuPlan, freePort, stop, treeCpuSeconds, which } from './lib/proc.mjs';
import { repoRoot, startUpstream, targets } from './lib/targets.mjs';
import { runWrk } from './lib/wrk.mjs';
import { makeBenchCert } from './http.mjs';
import { median, runMain } from './lib/script.mjs';

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      target: { type: 'string', default: 'stickmesh-https' },
      conns: { type: 'string', default: '50,200' },
      seconds: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '4' },
      close: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 2) {
    process.stderr.write('usage: node bench/builds-ab.mjs DIST_A DIST_B [--target T] [--conns 50,200] [--seconds 5] [--rounds 4] [--close]\n');
    return 2;
  }
  const dists = positionals.map((p) => path.resolve(p));
  for (const d of dists) if (!fs.existsSync(path.join(d, 'index.js'))) throw new Error(`${d}: not a packages/proxy/dist copy (no index.js)`);
  const wrk = which('wrk');
  if (!wrk) throw new Error('wrk not installed');
  const target = targets().find((t) => t.name === values.target);
  if (!target || target.skip) throw new Error(`target ${values.target}: ${target?.skip ?? 'unknown'}`);
  const plan = cpuPlan();
  const conns = values.conns.split(',').map(Number);
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const live = path.join(repoRoot, 'packages/proxy/dist');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stickmesh-builds-ab-'));
  fs.chmodSync(tmp, 0o755);
  const nginx = which('nginx');
  const ups = [];
  const perCpu = { A: {}, B: {} };
  try {
    for (let i = 1; i <= 2; i++) ups.push(await startUpstream({ nginx, plan, tmp, index: i, port: await freePort() }));
    const env = { plan, tmp, upstreams: ups, tlsCert: target.tls ? makeBenchCert(tmp) : undefined };
    const url = (h) => `${target.tls ? 'https' : 'http'}://127.0.0.1:${h.port}/`;
    for (let r = 0; r < rounds; r++) {
      for (const which_ of r % 2 === 0 ? ['A', 'B'] : ['B', 'A']) {
        fs.rmSync(live, { recursive: true, force: true });
        fs.cpSync(dists[which_ === 'A' ? 0 : 1], live, { recursive: true });
        const h = await target.start(env);
        try {
          for (const c of conns) await runWrk({ wrk, plan, url: url(h), conns: c, seconds: 2, close: values.close });
          for (const c of conns) {
            const cpu0 = treeCpuSeconds(h.child.pid);
            const w = await runWrk({ wrk, plan, url: url(h), conns: c, seconds, close: values.close });
            const cpu = treeCpuSeconds(h.child.pid) - cpu0;
            const rate = (w.rps * seconds) / cpu;
            (perCpu[which_][c] ??= []).push(rate);
            console.log(`  round ${r + 1} ${which_} c=${c}: ${w.rps.toFixed(0)} req/s, proxy cpu ${(cpu / seconds).toFixed(2)}, ${rate.toFixed(0)} req/CPU-s, load ${os.loadavg()[0].toFixed(2)}`);
          }
        } finally {
          await stop(h.child, { signal: 'SIGKILL' });
        }
      }
    }
    const out = { bench: 'builds-ab', target: target.name, close: values.close, a: dists[0], b: dists[1], seconds, rounds, byConns: {}, loadavg: os.loadavg() };
    for (const c of conns) {
      const a = median(perCpu.A[c]);
      const b = median(perCpu.B[c]);
      out.byConns[c] = { a, b, ratio: b / a };
      console.log(`c=${c}: A ${a.toFixed(0)} req/CPU-s, B ${b.toFixed(0)} req/CPU-s, B/A ${(b / a).toFixed(3)}`);
    }
    console.log(JSON.stringify(out));
    return 0;
  } finally {
    fs.rmSync(live, { recursive: true, force: true });
    fs.cpSync(dists[1], live, { recursive: true });
    for (const u of ups) await u.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

runMain(main);
