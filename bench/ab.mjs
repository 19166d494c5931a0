// Same-core A/B of two bench targets: both proxies pinned to core 0 at once, one wrk against each
// at the same time (wrk and the upstreams on core 1). Each proxy is one thread or event loop, so
// CFS gives each half of core 0 and the ratio of their req/s is the inverse ratio of their CPU cost
// per request. Whatever else the machine does lands on both alike, so on a shared machine this
// ratio is far steadier than two runs a few seconds apart (an A/A run gives 1.00 +- 0.015).
//
// Run: npx tsc -b && node bench/ab.mjs A B [--conns 50,200] [--seconds 4] [--reps 5] [--close]
//   e.g. node bench/ab.mjs stickmesh-http-rules stickmesh-http
//        node bench/ab.mjs stickmesh-http-rules haproxy-http-rules
//        node bench/ab.mjs stickmesh-tcp haproxy-tcp --close --conns 50   (new connections/s)
// Target names as in `node bench/run.js --targets` (bench/lib/targets.mjs). Prints each repetition
// and the median of A/B per connection count, with each proxy's user and system CPU µs per request
// (where a gap lies: the proxy's own code, or the kernel's TCP work its system calls start), then
// one JSON line ({"bench":"ab",...}).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cpuPlan, freePort, which } from './lib/proc.mjs';
import { startUpstream } from './lib/targets.mjs';
import { runWrk } from './lib/wrk.mjs';
import { makeBenchCert } from './http.mjs';
import { median, pickTargets, runMain } from './lib/script.mjs';

/** User and system CPU seconds used so far by `pid` (utime and stime of /proc/PID/stat), or zeros once it is gone. */
function userSys(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const hz = 100;
    return { user: Number(f[11]) / hz, sys: Number(f[12]) / hz };
  } catch {
    return { user: 0, sys: 0 };
  }
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { conns: { type: 'string', default: '50,200' }, seconds: { type: 'string', default: '4' }, reps: { type: 'string', default: '5' }, close: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 2) {
    process.stderr.write('usage: node bench/ab.mjs TARGET_A TARGET_B [--conns 50,200] [--seconds 4] [--reps 5] [--close]\n');
    return 2;
  }
  const wrk = which('wrk');
  if (!wrk) throw new Error('wrk not installed');
  const pair = pickTargets(positionals);
  const conns = values.conns.split(',').map(Number);
  const seconds = Number(values.seconds);
  const reps = Number(values.reps);
  const plan = cpuPlan();
  if (!plan.pin) throw new Error('needs taskset and 2 CPUs: both proxies share core 0, wrk and upstreams take core 1');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stickmesh-ab-'));
  fs.chmodSync(tmp, 0o755);
  const nginx = which('nginx');
  const ups = [];
  const hs = [];
  try {
    for (let i = 1; i <= 2; i++) ups.push(await startUpstream({ nginx, plan, tmp, index: i, port: await freePort() }));
    const env = { plan, tmp, upstreams: ups, tlsCert: pair.some((t) => t.tls) ? makeBenchCert(tmp) : undefined };
    for (const t of pair) hs.push(await t.start(env));
    const both = (c, s, close = false) =>
      Promise.all(hs.map((h, i) => runWrk({ wrk, plan, url: `${pair[i].tls ? 'https' : 'http'}://127.0.0.1:${h.port}/`, conns: c, seconds: s, close })));
    // Warm-up as the main bench does: every connection count, then new connections.
    for (const c of conns) await both(c, 2);
    await both(conns[0], 1, true);
    const out = { bench: 'ab', a: pair[0].name, b: pair[1].name, seconds, reps, close: values.close, upstream: nginx ? 'nginx' : 'raw-net', byConns: {} };
    for (const c of conns) {
      const ratios = [];
      // Per proxy: user and system CPU µs per request in each repetition (/proc, 10 ms ticks).
      const split = hs.map(() => ({ user: [], sys: [] }));
      for (let r = 1; r <= reps; r++) {
        const t0 = hs.map((h) => userSys(h.pid));
        const [ra, rb] = await both(c, seconds, values.close);
        const t1 = hs.map((h) => userSys(h.pid));
        ratios.push(ra.rps / rb.rps);
        const per = [ra, rb].map((res, i) => {
          const n = Math.max(1, res.rps * seconds);
          const u = (1e6 * (t1[i].user - t0[i].user)) / n;
          const sy = (1e6 * (t1[i].sys - t0[i].sys)) / n;
          split[i].user.push(u);
          split[i].sys.push(sy);
          return `${u.toFixed(1)}+${sy.toFixed(1)}`;
        });
        console.log(`  c=${c} rep ${r}/${reps}: ${pair[0].name} ${ra.rps.toFixed(0)} req/s (${per[0]} µs user+sys/req), ${pair[1].name} ${rb.rps.toFixed(0)} req/s (${per[1]}), ratio ${(ra.rps / rb.rps).toFixed(3)}, p99 ${ra.p99} / ${rb.p99} ms${ra.non2xx + rb.non2xx + ra.socketErrors + rb.socketErrors ? ' (errors!)' : ''}`);
      }
      const cpu = split.map((x) => ({ userUsPerReq: median(x.user), sysUsPerReq: median(x.sys) }));
      out.byConns[c] = { ratios, median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), cpu: { [pair[0].name]: cpu[0], [pair[1].name]: cpu[1] } };
      console.log(`${pair[0].name} / ${pair[1].name} @${c}: median ${median(ratios).toFixed(3)} (range ${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)}); CPU µs/req user+sys (medians): ${pair[0].name} ${cpu[0].userUsPerReq.toFixed(1)}+${cpu[0].sysUsPerReq.toFixed(1)}, ${pair[1].name} ${cpu[1].userUsPerReq.toFixed(1)}+${cpu[1].sysUsPerReq.toFixed(1)}`);
    }
    out.loadavg = os.loadavg();
    console.log(JSON.stringify(out));
    return 0;
  } finally {
    for (const h of hs) await h.stop({ signal: 'SIGKILL' });
    for (const u of ups) await u.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

runMain(main);
