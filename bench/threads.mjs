// The figures of issue #23 (`nbthread N`: every core of a node, one shared stick table), on this
// machine's cores, UNPINNED: the proxy's threads, wrk and the upstreams share every core, as they
// would on a host where the balancer is given all of them.
//
// Run: npx tsc -b && node bench/threads.mjs [--only http,cpu,stick,failover] [--rounds N]
//        [--seconds S] [--rate R] [--pace poisson|even|tick] [--cpu-rounds N] [--cpu-seconds S]
//        [--nbthread N] [--quick]
//
//   http      stickmesh-http and haproxy-http (cookie persistence, as in `npm run bench`) at
//             `nbthread 1` and `nbthread N` (bench/lib/targets.mjs threadTargets), wrk -t1 at 50 and
//             200 connections, interleaved rounds like the http section (bench/http.mjs), no
//             pinning. Figures: stickmesh N threads / HAProxy N threads req/s (paired: median over
//             rounds of the ratio of two runs seconds apart); each one's gain from 1 to N threads
//             (paired the same way); stickmesh's gain / HAProxy's gain (per round, then median).
//             Memory: RSS of each target at idle and under load (largest RSS right after a run).
//   cpu       CPU per request at a fixed offered rate (bench/lib/fixed-rate.mjs: open loop,
//             Poisson arrivals at --rate req/s (--pace; `tick`, a 1 ms timer releasing requests in
//             lockstep bunches, was the method before 2026-12-07 evening), latency from the due
//             time, over 50 keep-alive connections, the oldest idle one taking the next request),
//             the same four targets, 9 rounds of 8 s (--cpu-rounds, --cpu-seconds: a figure
//             read in 10 ms clock ticks wants more and longer runs than the req/s figures): utime+stime of the proxy process (all its
//             threads, /proc/PID/stat) from the generator's start to its end, divided by the
//             requests answered. Figure: N threads / 1 thread per round, median. Bar <= 1.15x.
//   stick     300 clients x 20 requests, each request on a new connection (Connection: close), each
//             client its own source address (127.23.x.y via localAddress), through one node of N
//             threads with `balance roundrobin` and `stick on src`: % of clients whose 20 requests
//             all reached the server of their first. Bar: 100 %. After every client's first
//             request s1 drains (see drainS1: without it, rendezvous first picks would agree even
//             between threads that each had a table of their own).
//   failover  the same 300 clients through a 3-node cluster of N-thread nodes sharing the table
//             through the peers mesh: 1 request each via node 1, s1 drained cluster-wide, 9 more
//             via node 1, kill -9 of node 1 50 ms after the last, then 10 each via nodes 2 and 3
//             (alternating): % of clients whose 20 requests all reached their first server.
//             Bar: 100 %.
//
// Every N-thread figure depends on the node really serving with N threads; until stickmesh honours
// `nbthread`, it says so and the bars read "not run" (see threadsOf: the node's own log and
// /metrics, and the per-thread CPU of the process under load as evidence).
// Prints each section's report, then one JSON line ({"bench":"threads",...}).
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pairedRatio, runHttpBench, withUpstreams } from './http.mjs';
import { freePort, spawnLogged, stop, tail, threadTicks, waitHttp200, which } from './lib/proc.mjs';
import { busyThreads, threadsActive, threadsOf } from './lib/threads-gate.mjs';
import { median, runMain } from './lib/script.mjs';
import { repoRoot, threadTargets } from './lib/targets.mjs';
import { runFixedRate, runWrk } from './lib/wrk.mjs';

const BIN = path.join(repoRoot, 'packages/cli/bin/stickmesh.js');
const CONNS = [50, 200];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const f2 = (x) => (x == null || Number.isNaN(x) ? '-' : x.toFixed(2));

/** The log files of a handle started by bench/lib/targets.mjs (stdout beside stderr). */
const logsOf = (h) => [h.errPath, h.errPath.replace(/\.err$/, '.out')];

// ---------------------------------------------------------------------------------------------
// http: req/s at 1 and N threads, unpinned
// ---------------------------------------------------------------------------------------------
async function httpSection({ rounds, seconds, n }) {
  const targets = threadTargets(n);
  const res = await runHttpBench({
    rounds,
    seconds,
    conns: CONNS,
    targetList: targets,
    pin: false,
    newConns: false,
    onStarted: async (t, h) => (t.name.startsWith('stickmesh') ? threadsOf({ adminPort: h.adminPort, logFiles: logsOf(h) }) : { reported: t.nbthread, source: 'haproxy config', ignored: false }),
  });
  const [sm1, hap1, hapN, smN] = targets.map((t) => t.name);
  const busy = (name) => median(res.runs.filter((r) => r.target === name && r.busyThreads != null).map((r) => r.busyThreads));
  const busyOf = Object.fromEntries(targets.map((t) => [t.name, Number.isNaN(busy(t.name)) ? null : busy(t.name)]));
  const gate = threadsActive(n, res.probes?.[smN], busyOf[smN]);
  const perConn = {};
  for (const c of CONNS) {
    // Per round: stickmesh's gain over HAProxy's, each gain a ratio of two runs of one round.
    const gainRatios = [];
    for (let round = 1; round <= rounds; round++) {
      const rps = (name) => res.runs.find((r) => r.target === name && r.conns === c && r.round === round && !r.close)?.rps;
      const [a, b, x, y] = [rps(smN), rps(sm1), rps(hapN), rps(hap1)];
      if (a && b && x && y) gainRatios.push(a / b / (x / y));
    }
    perConn[c] = {
      nVsHaproxyN: pairedRatio(res.runs, smN, hapN, c, false, 'rps'),
      oneVsHaproxyOne: pairedRatio(res.runs, sm1, hap1, c, false, 'rps'),
      stickmeshGain: pairedRatio(res.runs, smN, sm1, c, false, 'rps'),
      haproxyGain: pairedRatio(res.runs, hapN, hap1, c, false, 'rps'),
      gainVsHaproxyGain: gainRatios.length ? median(gainRatios) : null,
      perCpuSecN: pairedRatio(res.runs, smN, hapN, c, false, 'perCpuSec'),
    };
  }
  const mem = (name) => res.memory?.find((m) => m.target === name) ?? null;
  return {
    targets: targets.map((t) => t.name),
    threads: { [smN]: res.probes?.[smN] ?? null, [sm1]: res.probes?.[sm1] ?? null, busyUnderLoad: busyOf },
    gate,
    perConn,
    memory: { [smN]: mem(smN), [hapN]: mem(hapN), [sm1]: mem(sm1), [hap1]: mem(hap1) },
    rows: res.rows,
    runs: res.runs,
    settings: res.settings,
    skippedTargets: res.skipped,
    notes: res.notes,
  };
}

function formatHttpSection(h, n) {
  const out = [];
  const head = ['target', 'conns', 'req/s', 'p99 ms', 'proxy CPU', 'req/CPU-s', 'busy thr', 'RSS MB'];
  const body = h.rows.map((r) => [r.target, String(r.conns), r.rps.toFixed(0), f2(r.p99), f2(r.proxyCpu), r.perCpuSec == null ? '-' : r.perCpuSec.toFixed(0), String(median(h.runs.filter((x) => x.target === r.target && x.conns === r.conns).map((x) => x.busyThreads ?? NaN)) || '-'), f2(r.rssMB)]);
  const w = head.map((x, i) => Math.max(x.length, ...body.map((b) => b[i].length)));
  out.push(head.map((x, i) => (i ? x.padStart(w[i]) : x.padEnd(w[i]))).join('  '));
  for (const b of body) out.push(b.map((x, i) => (i ? x.padStart(w[i]) : x.padEnd(w[i]))).join('  '));
  out.push('  (busy thr: threads of the process that each carried >= 20% of its CPU in the run, median)');
  out.push('');
  for (const c of CONNS) {
    const p = h.perConn[c];
    out.push(
      `@${c}: stickmesh ${n}t / HAProxy ${n}t ${f2(p.nVsHaproxyN)}x (1t / 1t ${f2(p.oneVsHaproxyOne)}x); gain 1->${n} threads: stickmesh ${f2(p.stickmeshGain)}x, HAProxy ${f2(p.haproxyGain)}x; stickmesh gain / HAProxy gain ${f2(p.gainVsHaproxyGain)}x`,
    );
  }
  out.push('');
  out.push('RSS MB            idle   under load');
  for (const [name, m] of Object.entries(h.memory)) if (m) out.push(`${name.padEnd(17)} ${f2(m.idleMB).padStart(5)}  ${f2(m.loadMB).padStart(10)}`);
  out.push(`threads: ${h.gate.active ? 'ACTIVE' : 'NOT ACTIVE'}: ${h.gate.why}`);
  for (const s of h.skippedTargets) out.push(`SKIPPED ${s.target}: ${s.reason}`);
  for (const x of h.notes) out.push(`note: ${x}`);
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// cpu: CPU per request at a fixed offered rate
// ---------------------------------------------------------------------------------------------
/** utime+stime of one process (every thread of it) in clock ticks, from /proc/PID/stat. */
function procTicks(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

async function cpuSection({ rounds, seconds, rate, pace = 'poisson', n, log = console.log }) {
  const notes = [];
  // Each pair a ratio divides runs back to back: stickmesh 1t beside stickmesh Nt, HAProxy Nt
  // beside HAProxy 1t (the http section's order pairs each N-thread target with its HAProxy peer).
  const [sm1t, hap1t, hapNt, smNt] = threadTargets(n);
  const targets = [sm1t, smNt, hapNt, hap1t].filter((t) => !t.skip);
  const hz = 100; // USER_HZ: /proc reports clock ticks of 10 ms on Linux
  return withUpstreams(
    notes,
    async (env) => {
      const running = [];
      try {
        for (const t of targets) {
          const h = await t.start(env);
          const probe = t.name.startsWith('stickmesh') ? await threadsOf({ adminPort: h.adminPort, logFiles: logsOf(h) }) : null;
          running.push({ t, h, probe });
          h.child.kill('SIGSTOP');
        }
        const one = async (t, h, secs) => {
          let c0;
          let c1;
          let k0;
          let k1;
          const r = await runFixedRate({
            port: h.port,
            rate,
            pace,
            seconds: secs,
            conns: 50,
            onStart: () => ((c0 = procTicks(h.pid)), (k0 = threadTicks(h.pid))),
            onEnd: () => ((c1 = procTicks(h.pid)), (k1 = threadTicks(h.pid))),
          });
          const ticks = c1 - c0;
          return { ...r, cpuSec: ticks / hz, usPerReq: r.completed ? ((ticks / hz) * 1e6) / r.completed : null, busy: busyThreads(k0, k1).busy };
        };
        // Idle: what each target burns per second with no load (timers, each thread's event loop,
        // GC), read over 3 s after its warm-up. At a fixed rate it is part of every request's
        // share, more so at low rates and with more threads; `netUsPerReq` takes it out.
        const idle = {};
        for (const r of running) {
          const { t, h } = r;
          h.child.kill('SIGCONT');
          // Warm-up: 2 s of wrk at full speed (every thread's JIT compiles the request path, as
          // in a balancer that has been up for a while), then 2 s at the run's rate.
          log(`  warm-up ${t.name} (2s of wrk -c50, 2s at ${rate} req/s), then 3s idle`);
          const wrk = which('wrk');
          if (wrk) await runWrk({ wrk, plan: env.plan, url: `http://127.0.0.1:${h.port}/`, conns: 50, seconds: 2 }).catch((e) => notes.push(`${t.name} wrk warm-up: ${e.message.split('\n')[0]}`));
          await one(t, h, 2).catch((e) => notes.push(`${t.name} warm-up: ${e.message.split('\n')[0]}`));
          await sleep(500);
          const c0 = procTicks(h.pid);
          await sleep(3000);
          idle[t.name] = (procTicks(h.pid) - c0) / hz / 3;
          h.child.kill('SIGSTOP');
        }
        const runs = [];
        for (let round = 1; round <= rounds; round++) {
          const order = round % 2 ? running : [...running].reverse();
          for (const { t, h } of order) {
            h.child.kill('SIGCONT');
            try {
              const r = await one(t, h, seconds);
              r.netUsPerReq = r.completed ? (Math.max(0, r.cpuSec - idle[t.name] * seconds) * 1e6) / r.completed : null;
              runs.push({ target: t.name, round, ...r });
              log(
                `  round ${round}/${rounds} ${t.name.padEnd(18)} offered ${rate}/s answered ${r.achieved.toFixed(0)}/s${r.sustained ? '' : ' (NOT SUSTAINED)'}  cpu ${r.cpuSec.toFixed(2)} s  ${f2(r.usPerReq)} us/req  p99 ${f2(r.p99)} ms  busy threads ${r.busy}`,
              );
            } catch (e) {
              notes.push(`${t.name} round ${round}: ${e.message.split('\n')[0]}`);
            } finally {
              h.child.kill('SIGSTOP');
            }
          }
        }
        const [sm1, hap1, hapN, smN] = threadTargets(n).map((t) => t.name);
        const per = (a, b, k = 'usPerReq') => {
          const xs = [];
          for (let round = 1; round <= rounds; round++) {
            const ra = runs.find((r) => r.target === a && r.round === round);
            const rb = runs.find((r) => r.target === b && r.round === round);
            if (ra?.sustained && rb?.sustained && ra[k] && rb[k]) xs.push(ra[k] / rb[k]);
          }
          return xs.length ? median(xs) : null;
        };
        const us = (name, k = 'usPerReq') => {
          const xs = runs.filter((r) => r.target === name && r[k] != null).map((r) => r[k]);
          return xs.length ? median(xs) : null;
        };
        const busy = (name) => {
          const xs = runs.filter((r) => r.target === name).map((r) => r.busy);
          return xs.length ? median(xs) : null;
        };
        const probe = running.find((r) => r.t.name === smN)?.probe ?? null;
        return {
          rate,
          pace,
          seconds,
          conns: 50,
          usPerReq: Object.fromEntries([sm1, smN, hap1, hapN].map((x) => [x, us(x)])),
          netUsPerReq: Object.fromEntries([sm1, smN, hap1, hapN].map((x) => [x, us(x, 'netUsPerReq')])),
          idleCores: idle,
          stickmeshNvs1: per(smN, sm1),
          haproxyNvs1: per(hapN, hap1),
          stickmeshNvs1Net: per(smN, sm1, 'netUsPerReq'),
          haproxyNvs1Net: per(hapN, hap1, 'netUsPerReq'),
          ...(per(smN, sm1) == null ? { missingWhy: `no round in which both ${sm1} and ${smN} answered the offered ${rate} req/s` } : {}),
          unsustained: runs.filter((r) => !r.sustained).map((r) => `${r.target} round ${r.round}: answered ${r.completed} of ${r.offered}, dropped ${r.dropped}, errors ${r.errors}`),
          threads: probe,
          gate: threadsActive(n, probe, busy(smN)),
          runs,
          notes,
        };
      } finally {
        for (const { h } of running) {
          h.child.kill('SIGCONT');
          await h.stop();
        }
      }
    },
    { pin: false },
  );
}

function formatCpu(c, n) {
  const out = [`fixed offered rate ${c.rate} req/s (${c.pace} arrivals) over ${c.conns} keep-alive connections, ${c.seconds} s per run (bench/lib/fixed-rate.mjs, open loop)`];
  for (const [k, v] of Object.entries(c.usPerReq)) {
    out.push(`  ${k.padEnd(18)} ${f2(v)} us of proxy CPU per request (median); idle ${f2(c.idleCores[k] * 100)}% of a core; net of idle ${f2(c.netUsPerReq[k])} us`);
  }
  out.push(`  stickmesh ${n}t / 1t: ${f2(c.stickmeshNvs1)}x (net of idle ${f2(c.stickmeshNvs1Net)}x)   HAProxy ${n}t / 1t: ${f2(c.haproxyNvs1)}x (net ${f2(c.haproxyNvs1Net)}x)`);
  out.push('  (per round, then median; only rounds where both sustained the rate)');
  for (const u of c.unsustained) out.push(`  NOT SUSTAINED: ${u}`);
  out.push(`threads: ${c.gate.active ? 'ACTIVE' : 'NOT ACTIVE'}: ${c.gate.why}`);
  for (const x of c.notes) out.push(`note: ${x}`);
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// stick and failover: 300 clients x 20 requests on new connections
// ---------------------------------------------------------------------------------------------
/** Three HTTP backends in this process, each answering with its name in `x-served-by`. */
async function startBackends(k = 3) {
  const out = [];
  for (let i = 1; i <= k; i++) {
    const name = `s${i}`;
    const srv = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain', 'x-served-by': name }).end(name));
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    out.push({
      name,
      port: srv.address().port,
      close: () => new Promise((r) => (srv.closeAllConnections(), srv.close(() => r()))),
    });
  }
  return out;
}

/** One GET on a new connection from `localAddress`; resolves to the server that answered, or an error string. */
function getFrom(port, localAddress) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, localAddress, headers: { connection: 'close' }, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? (res.headers['x-served-by'] ?? 'no x-served-by') : `status ${res.statusCode}`));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(`error ${e.code ?? e.message}`));
  });
}

/** Runs `fn(i)` for i in [0, n) with at most `conc` in flight. */
async function pool(n, conc, fn) {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < n; i = next++) await fn(i);
  };
  await Promise.all(Array.from({ length: Math.min(conc, n) }, worker));
}

const clientAddr = (i) => `127.23.${Math.floor(i / 250)}.${(i % 250) + 1}`;

/**
 * Puts server s1 in `drain` (cluster-wide, through `adminPort`'s API) and waits until new clients
 * no longer reach it through every port in `proxies`: 30 fresh source addresses in a row answered
 * by s2 or s3 on each (deadline 10 s). Why: stickmesh gives a new key its first server by
 * rendezvous hashing, so two threads (or nodes) that each had a table of their own would still
 * agree on it; only once s1 takes no new clients does a client bound to s1 stay there solely
 * because its entry was found. Resolves to {inEffect, ms, freshOnS1 (of the last probe round)}.
 */
async function drainS1(adminPort, proxies, freshBase) {
  const t0 = Date.now();
  const r = await fetch(`http://127.0.0.1:${adminPort}/api/servers/be/s1`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ state: 'drain' }),
  });
  if (!r.ok) throw new Error(`drain s1: ${r.status} ${await r.text()}`);
  let probe = 0;
  let onS1 = 0;
  while (Date.now() - t0 < 10_000) {
    onS1 = 0;
    for (const port of proxies) {
      for (let k = 0; k < 30; k++, probe++) {
        if ((await getFrom(port, `${freshBase}.${Math.floor(probe / 250) % 250}.${(probe % 250) + 1}`)) === 's1') onS1++;
      }
    }
    if (onS1 === 0) return { inEffect: true, ms: Date.now() - t0, freshOnS1: 0 };
    await sleep(100);
  }
  return { inEffect: false, ms: Date.now() - t0, freshOnS1: onS1 };
}

function nodeConfig({ n, admin, proxy, backends, peers }) {
  const lines = ['global', `    nbthread ${n}`, `    admin-bind 127.0.0.1:${admin}`, '    log-level warn', ''];
  if (peers) {
    lines.push('peers mesh', `    bind 127.0.0.1:${peers.me.peersPort}`, ...peers.all.map((p) => `    server ${p.name} 127.0.0.1:${p.peersPort}`));
    lines.push('    shared-secret bench-threads-secret', '    resync-timeout 3s', '    table ip type ip size 1m expire 30m', '');
  }
  lines.push('defaults', '    mode http', '    maxconn 10000', '    timeout connect 2s', '    timeout client 10s', '    timeout server 10s', '    option redispatch', '');
  lines.push('frontend fe', `    bind 127.0.0.1:${proxy}`, '    default_backend be', '', 'backend be', '    balance roundrobin');
  if (peers) lines.push('    stick on src table mesh/ip');
  else lines.push('    stick-table type ip size 1m expire 30m', '    stick on src');
  lines.push(...backends.map((b) => `    server ${b.name} 127.0.0.1:${b.port}`), '');
  return lines.join('\n');
}

async function startNode({ tmp, name, cfg, admin, proxy }) {
  const file = path.join(tmp, `${name}.cfg`);
  fs.writeFileSync(file, cfg);
  const { child, errPath, outPath } = spawnLogged([process.execPath, BIN, 'start', '--config', file, '--node', name, '--drain-timeout', '1000'], { name, logDir: tmp, cwd: repoRoot });
  const h = { name, child, pid: child.pid, errPath, outPath, admin, proxy };
  try {
    await waitHttp200(admin, { child, urlPath: '/ready', deadlineMs: 30_000 });
    await waitHttp200(proxy, { child, deadlineMs: 10_000 });
  } catch (e) {
    await stop(child, { signal: 'SIGKILL' });
    throw new Error(`${name}: ${e.message}\n${tail(errPath, 800)}${tail(outPath, 800)}`);
  }
  h.threads = await threadsOf({ adminPort: admin, logFiles: [errPath, outPath] });
  return h;
}

/**
 * The threads gate, unless the drain of s1 never took effect: then the figure cannot tell one
 * shared table from a table per thread, and it does not count.
 */
function drainGate(gate, drain) {
  if (!gate.active || drain.inEffect) return gate;
  return { active: false, why: `drain of s1 not in effect after ${drain.ms} ms (${drain.freshOnS1} new clients still reached it), so the figure cannot tell a shared table from one per thread` };
}

/** Clients whose every answer came from their first server, of `first.length`, plus what failed. */
function sameCount(answers) {
  let same = 0;
  const errors = [];
  for (const a of answers) {
    if (a.every((s) => s === a[0]) && /^s\d$/.test(a[0])) same++;
    else if (errors.length < 5) errors.push(a.join(','));
  }
  return { same, examples: errors };
}

async function stickSection({ n, clients, perClient, conc = 30 }) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stickmesh-threads-stick-'));
  const backends = await startBackends();
  let node;
  try {
    const [admin, proxy] = [await freePort(), await freePort()];
    node = await startNode({ tmp, name: 'stick', cfg: nodeConfig({ n, admin, proxy, backends }), admin, proxy });
    const k0 = threadTicks(node.pid);
    const answers = Array.from({ length: clients }, () => []);
    const t0 = Date.now();
    // Each client's first request binds it; then s1 drains; then the other requests.
    await pool(clients, conc, async (i) => void answers[i].push(await getFrom(proxy, clientAddr(i))));
    const drain = await drainS1(admin, [proxy], '127.24');
    await pool(clients, conc, async (i) => {
      for (let r = 1; r < perClient; r++) answers[i].push(await getFrom(proxy, clientAddr(i)));
    });
    const ms = Date.now() - t0;
    const busy = busyThreads(k0, threadTicks(node.pid));
    const { same, examples } = sameCount(answers);
    const onDrained = answers.filter((a) => a[0] === 's1');
    const spread = {};
    for (const a of answers) spread[a[0]] = (spread[a[0]] ?? 0) + 1;
    return {
      nbthread: n,
      clients,
      perClient,
      ms,
      same,
      pct: (100 * same) / clients,
      firstServers: spread,
      examples,
      drain,
      onDrained: onDrained.length,
      onDrainedSame: onDrained.filter((a) => a.every((x) => x === 's1')).length,
      threads: node.threads,
      busyThreads: busy.busy,
      threadShares: busy.shares,
      gate: drainGate(threadsActive(n, node.threads, busy.busy), drain),
    };
  } finally {
    if (node) await stop(node.child, { signal: 'SIGKILL' });
    for (const b of backends) await b.close();
    if (process.env.BENCH_KEEP_TMP !== '1') fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function failoverSection({ n, clients, perClient, conc = 30 }) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stickmesh-threads-failover-'));
  const backends = await startBackends();
  const nodes = [];
  try {
    const all = [];
    for (const name of ['n1', 'n2', 'n3']) all.push({ name, peersPort: await freePort(), admin: await freePort(), proxy: await freePort() });
    // Started together: a node's `/ready` waits for its mesh resync with the others.
    const started = await Promise.allSettled(
      all.map((p) => startNode({ tmp, name: p.name, cfg: nodeConfig({ n, admin: p.admin, proxy: p.proxy, backends, peers: { me: p, all } }), admin: p.admin, proxy: p.proxy })),
    );
    for (const s of started) if (s.status === 'fulfilled') nodes.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const [n1, n2, n3] = nodes;
    const before = perClient >> 1;
    const answers = Array.from({ length: clients }, () => []);
    const k0 = threadTicks(n1.pid);
    await pool(clients, conc, async (i) => void answers[i].push(await getFrom(n1.proxy, clientAddr(i))));
    // Drained cluster-wide through n1: n2 and n3 must then find s1's clients in the replicated table.
    const drain = await drainS1(n1.admin, [n1.proxy, n2.proxy, n3.proxy], '127.25');
    await pool(clients, conc, async (i) => {
      for (let r = 1; r < before; r++) answers[i].push(await getFrom(n1.proxy, clientAddr(i)));
    });
    const busy = busyThreads(k0, threadTicks(n1.pid));
    await sleep(50);
    n1.child.kill('SIGKILL');
    await n1.child.exited;
    const tables = async (h) => {
      try {
        return Object.fromEntries((await (await fetch(`http://127.0.0.1:${h.admin}/tables`)).json()).map((t) => [t.id, t.count]));
      } catch (e) {
        return { error: e.message };
      }
    };
    const atKill = { n2: await tables(n2), n3: await tables(n3) };
    const [k2, k3] = [threadTicks(n2.pid), threadTicks(n3.pid)];
    await pool(clients, conc, async (i) => {
      for (let r = before; r < perClient; r++) answers[i].push(await getFrom((r + i) % 2 ? n3.proxy : n2.proxy, clientAddr(i)));
    });
    const busy2 = busyThreads(k2, threadTicks(n2.pid)).busy;
    const busy3 = busyThreads(k3, threadTicks(n3.pid)).busy;
    const { same, examples } = sameCount(answers);
    const threads = { n1: n1.threads, n2: n2.threads, n3: n3.threads };
    const gates = [n1, n2, n3].map((h, i) => threadsActive(n, h.threads, [busy.busy, busy2, busy3][i]));
    const onDrained = answers.filter((a) => a[0] === 's1');
    return {
      nbthread: n,
      clients,
      perClient,
      killAfter: before,
      same,
      pct: (100 * same) / clients,
      survivorsTablesAtKill: atKill,
      drain,
      onDrained: onDrained.length,
      onDrainedSame: onDrained.filter((a) => a.every((x) => x === 's1')).length,
      examples,
      threads,
      busyThreads: { n1: busy.busy, n2: busy2, n3: busy3 },
      // Every node must run its threads for the figure to count as the N-thread one.
      gate: drainGate(gates.every((g) => g.active) ? { active: true, why: `each node: ${[...new Set(gates.map((g) => g.why))].join('; ')}` } : { active: false, why: gates.find((g) => !g.active).why }, drain),
    };
  } finally {
    for (const h of nodes) await stop(h.child, { signal: 'SIGKILL' });
    for (const b of backends) await b.close();
    if (process.env.BENCH_KEEP_TMP !== '1') fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const formatStick = (s, what) =>
  [
    `${what}: ${s.same}/${s.clients} clients (${s.pct.toFixed(1)}%) reached their first server on all ${s.perClient} requests${s.killAfter != null ? ` (kill -9 of n1 after ${s.killAfter})` : ''}`,
    s.firstServers ? `  first servers: ${JSON.stringify(s.firstServers)}; ${s.ms} ms; busy threads ${s.busyThreads} (${(s.threadShares ?? []).join('/')})` : `  survivors' tables at the kill: ${JSON.stringify(s.survivorsTablesAtKill)}; busy threads ${JSON.stringify(s.busyThreads)}`,
    `  s1 drained after each client's first request (${s.drain.inEffect ? `in effect in ${s.drain.ms} ms` : `NOT in effect after ${s.drain.ms} ms`}): ${s.onDrainedSame}/${s.onDrained} clients bound to s1 stayed on it`,
    ...(s.examples.length ? [`  e.g. ${s.examples.join(' | ')}`] : []),
    `threads: ${s.gate.active ? 'ACTIVE' : 'NOT ACTIVE'}: ${s.gate.why}`,
  ].join('\n');

// ---------------------------------------------------------------------------------------------
async function main() {
  const { values } = parseArgs({
    options: {
      only: { type: 'string', default: 'http,cpu,stick,failover' },
      rounds: { type: 'string', default: process.env.BENCH_ROUNDS ?? '5' },
      seconds: { type: 'string', default: '5' },
      rate: { type: 'string', default: '2000' },
      pace: { type: 'string', default: 'poisson' },
      'cpu-rounds': { type: 'string', default: '9' },
      'cpu-seconds': { type: 'string', default: '8' },
      nbthread: { type: 'string', default: '2' },
      quick: { type: 'boolean' },
      out: { type: 'string' },
    },
  });
  const only = new Set(values.only.split(',').map((s) => s.trim()));
  const rounds = values.quick ? 1 : Number(values.rounds);
  const seconds = values.quick ? 2 : Number(values.seconds);
  const rate = Number(values.rate);
  const n = Number(values.nbthread);
  const out = { bench: 'threads', nbthread: n, cpus: os.availableParallelism(), rounds, seconds };
  if (!which('wrk') && only.has('http')) out.http = { skipped: 'wrk not installed (apt-get install -y wrk)' };
  if (only.has('http') && !out.http) {
    console.log(`\n-- http: stickmesh-http and haproxy-http at nbthread 1 and ${n}, unpinned, wrk -t1 -c${CONNS.join('/')} -d${seconds}s, ${rounds} round(s) --`);
    out.http = await httpSection({ rounds, seconds, n });
    console.log(formatHttpSection(out.http, n));
  }
  if (only.has('cpu')) {
    const cpuRounds = values.quick ? 1 : Number(values['cpu-rounds']);
    const cpuSeconds = values.quick ? 2 : Number(values['cpu-seconds']);
    console.log(`\n-- cpu: proxy CPU per request at a fixed ${rate} req/s, nbthread 1 and ${n}, unpinned, ${cpuRounds} round(s) of ${cpuSeconds}s --`);
    out.cpu = await cpuSection({ rounds: cpuRounds, seconds: cpuSeconds, rate, pace: values.pace, n });
    console.log(formatCpu(out.cpu, n));
  }
  if (only.has('stick')) {
    console.log(`\n-- stick: 300 clients x 20 requests on new connections through one node of ${n} threads (stick on src) --`);
    out.stick = await stickSection({ n, clients: 300, perClient: 20 });
    console.log(formatStick(out.stick, `one node, nbthread ${n}`));
  }
  if (only.has('failover')) {
    console.log(`\n-- failover: the same clients through 3 nodes of ${n} threads, kill -9 of node 1 halfway --`);
    out.failover = await failoverSection({ n, clients: 300, perClient: 20 });
    console.log(formatStick(out.failover, `3 nodes, nbthread ${n}`));
  }
  // The raw runs stay in --out; the JSON line carries the figures.
  if (values.out) {
    fs.mkdirSync(path.dirname(values.out), { recursive: true });
    fs.writeFileSync(values.out, `${JSON.stringify(out, null, 2)}\n`);
  }
  const slim = JSON.parse(JSON.stringify(out));
  if (slim.http) delete slim.http.runs;
  if (slim.cpu) delete slim.cpu.runs;
  console.log(JSON.stringify(slim));
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) runMain(main);
