// Requests per proxy CPU-second of two bench targets, measured one after the other: both proxies
// run (pinned to core 0 as in the main bench), wrk loads one at a time, and each run reads the
// loaded proxy's CPU seconds (user + system, so kernel time of its writes counts) from /proc.
// The ratio A/B is what `bench/ab.mjs` estimates from shared-core req/s, but read from CPU time,
// which a machine busy with other work disturbs less than it disturbs req/s. Runs alternate A, B,
// B, A, ... so a drift of the machine lands on both.
//
// Run: npx tsc -b && node bench/cpu-ab.mjs A B [--conns 50,200] [--seconds 4] [--rounds 5]
//   e.g. node bench/cpu-ab.mjs stickmesh-http-log stickmesh-http
// Prints each run, the median req/CPU-s per target and connection count and their ratio, then one
// JSON line ({"bench":"cpu-ab",...}).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cpuPlan, freePort, treeCpuSeconds, which } from './lib/proc.mjs';
import { startUpstream } from './lib/targets.mjs';
import { runWrk } from './lib/wrk.mjs';
import { makeBenchCert } from './http.mjs';
import { median, pickTargets, runMain } from './lib/script.mjs';

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { conns: { type: 'string', default: '50,200' }, seconds: { type: 'string', default: '4' }, rounds: { type: 'string', default: '5' } },
  });
  if (positionals.length !== 2) {
    process.stderr.write('usage: node bench/cpu-ab.mjs TARGET_A TARGET_B [--conns 50,200] [--seconds 4] [--rounds 5]\n');
    return 2;
  }
  const wrk = which('wrk');
  if (!wrk) throw new Error('wrk not installed');
  const pair = pickTargets(positionals);
  const conns = values.conns.split(',').map(Number);
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const plan = cpuPlan();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stickmesh-cpu-ab-'));
  fs.chmodSync(tmp, 0o755);
  const nginx = which('nginx');
  const ups = [];
  const hs = [];
  const rate = [{}, {}];
  try {
    for (let i = 1; i <= 2; i++) ups.push(await startUpstream({ nginx, plan, tmp, index: i, port: await freePort() }));
    const env = { plan, tmp, upstreams: ups, tlsCert: pair.some((t) => t.tls) ? makeBenchCert(tmp) : undefined };
    for (const t of pair) hs.push(await t.start(env));
    const url = (i) => `${pair[i].tls ? 'https' : 'http'}://127.0.0.1:${hs[i].port}/`;
    for (const i of [0, 1]) for (const c of conns) await runWrk({ wrk, plan, url: url(i), conns: c, seconds: 2 });
    for (let r = 0; r < rounds; r++) {
      for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
        for (const c of conns) {
          const cpu0 = treeCpuSeconds(hs[i].pid);
          const w = await runWrk({ wrk, plan, url: url(i), conns: c, seconds });
          const cpu = treeCpuSeconds(hs[i].pid) - cpu0;
          const perCpu = (w.rps * seconds) / cpu;
          (rate[i][c] ??= []).push(perCpu);
          console.log(`  round ${r + 1} ${pair[i].name} c=${c}: ${w.rps.toFixed(0)} req/s, proxy cpu ${(cpu / seconds).toFixed(2)}, ${perCpu.toFixed(0)} req/CPU-s${w.non2xx + w.socketErrors ? ' (errors!)' : ''}`);
        }
      }
    }
    const out = { bench: 'cpu-ab', a: pair[0].name, b: pair[1].name, seconds, rounds, byConns: {}, loadavg: os.loadavg() };
    for (const c of conns) {
      const a = median(rate[0][c]);
      const b = median(rate[1][c]);
      out.byConns[c] = { a, b, ratio: a / b };
      console.log(`${pair[0].name} / ${pair[1].name} @${c}: ${a.toFixed(0)} / ${b.toFixed(0)} req/CPU-s, ratio ${(a / b).toFixed(3)}`);
    }
    console.log(JSON.stringify(out));
    return 0;
  } finally {
    for (const h of hs) await h.stop({ signal: 'SIGKILL' });
    for (const u of ups) await u.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

runMain(main);
