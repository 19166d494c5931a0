// The proxy benchmark: wrk against each target in interleaved rounds, medians per (target, conns),
// and the stickmesh CPU profile under load.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { cpuDelta, cpuPlan, cpuSnapshot, freePort, rssOf, run, stop, tail, threadTicks, treeCpuSeconds, treePids, treeRss, which } from './lib/proc.mjs';
import { busyThreads } from './lib/threads-gate.mjs';
import { formatMemory, memorySummary } from './lib/memory.mjs';
import { newestProfile, selfTimes } from './lib/profile.mjs';
import { repoRoot, startUpstream, targets as allTargets } from './lib/targets.mjs';
import { runTlsHandshakes, runWrk } from './lib/wrk.mjs';

const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Versions and hardware, for the report: what produced these numbers. */
export function machineInfo() {
  const first = (argv) => {
    if (!which(argv[0])) return null;
    const r = run(argv);
    return (r.stdout + r.stderr).split('\n').find((l) => l.trim())?.trim() ?? null;
  };
  return {
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    memGB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    haproxy: first(['haproxy', '-v']),
    nginx: first(['nginx', '-v']),
    wrk: first(['wrk', '-v']),
  };
}

/**
 * The certificate the https targets share: ECDSA P-256, self-signed, certificate and key in one
 * PEM file (HAProxy's `crt` layout) in `tmp`, made once per run. Undefined without openssl.
 */
export function makeBenchCert(tmp) {
  if (!which('openssl')) return undefined;
  const key = path.join(tmp, 'bench-tls.key');
  const crt = path.join(tmp, 'bench-tls.crt');
  const r = run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-days', '2',
    '-subj', '/CN=bench.stickmesh.test', '-addext', 'subjectAltName=DNS:bench.stickmesh.test,IP:127.0.0.1']);
  if (r.status !== 0) throw new Error(`openssl could not make the bench certificate: ${r.stderr}`);
  const pem = path.join(tmp, 'bench-tls.pem');
  fs.writeFileSync(pem, fs.readFileSync(crt, 'utf8') + fs.readFileSync(key, 'utf8'));
  return pem;
}

/**
 * Runs `fn(env)` with a temporary directory and two upstreams answering, then stops everything
 * (the directory is removed unless BENCH_KEEP_TMP=1). env: {plan, tmp, upstreams, upstreamKind, tlsCert}.
 * `pin: false` runs everything unpinned even where taskset could pin (the threads section).
 */
export async function withUpstreams(notes, fn, { pin = true } = {}) {
  const plan = pin ? cpuPlan() : { ...cpuPlan(), pin: false, unpinnedOnPurpose: true };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stickmesh-bench-'));
  fs.chmodSync(tmp, 0o755); // nginx workers drop root and must reach their temp paths
  const nginx = which('nginx');
  if (!nginx) notes.push('nginx not installed: upstreams are the raw net responder (bench/lib/raw-upstream.mjs), not nginx');
  const upstreams = [];
  try {
    for (let i = 1; i <= 2; i++) upstreams.push(await startUpstream({ nginx, plan, tmp, index: i, port: await freePort() }));
    return await fn({ plan, tmp, upstreams, upstreamKind: nginx ? 'nginx' : 'raw-net', tlsCert: makeBenchCert(tmp) });
  } finally {
    for (const u of upstreams) await u.stop();
    if (process.env.BENCH_KEEP_TMP === '1') notes.push(`temporary files kept in ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Response headers of one GET / to `port` (no connection reuse; over TLS without verification when `tls`). */
function headersOf(port, tls = false) {
  return new Promise((resolve, reject) => {
    (tls ? https : http)
      .get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 2000, rejectUnauthorized: false }, (res) => {
        res.resume();
        res.once('end', () => resolve(res.headers));
      })
      .once('timeout', function () {
        this.destroy(new Error('timeout'));
      })
      .once('error', reject);
  });
}

/** Status of one GET `path` to `port` (no connection reuse). */
function statusOf(port, urlPath) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 2000 }, (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode));
      })
      .once('timeout', function () {
        this.destroy(new Error('timeout'));
      })
      .once('error', reject);
  });
}

/**
 * What stickmesh-http-rules counted for wrk's address, read from its admin API after the runs:
 * `http_req_rate(10s)` of key 127.0.0.1 in table `be`, or a string saying why it could not be read.
 */
async function countedRate(adminPort) {
  try {
    const r = await fetch(`http://127.0.0.1:${adminPort}/api/tables/be/counters?key=127.0.0.1`);
    if (!r.ok) return `admin API answered ${r.status}`;
    const j = await r.json();
    return j?.total?.['http_req_rate(10s)'] ?? `no http_req_rate(10s) in ${JSON.stringify(j).slice(0, 200)}`;
  } catch (e) {
    return e.message;
  }
}

/**
 * The proxy benchmark. Starts every runnable target, warms each up, then runs `rounds` rounds;
 * a round runs every target at every connection count once, so slow drift of the machine spreads
 * over all targets instead of landing on one. Resolves to {runs (raw), rows (medians), ratios,
 * skipped, notes, settings}. Never throws for one target's failure: that target is skipped with
 * the reason.
 */
export async function runHttpBench({ rounds, seconds, conns, only, log = console.log, targetList, pin = true, newConns = true, onStarted }) {
  const skipped = [];
  const notes = [];
  const wrk = which('wrk');
  if (!wrk) {
    skipped.push({ target: 'all proxy targets', reason: 'wrk not installed (apt-get install -y wrk)' });
    return { skipped, notes, runs: [], rows: [], ratios: {} };
  }
  // targetList (the threads section's own targets) replaces the table's; `only` filters either.
  const list = (targetList ?? allTargets()).filter((t) => !only || only.includes(t.name));
  for (const t of list) if (t.skip) skipped.push({ target: t.name, reason: t.skip });

  return withUpstreams(notes, async (env) => {
    const { plan } = env;
    // The load of one run: wrk (keep-alive, or `Connection: close` for `new` rows), except the
    // `new` rows of TLS targets, which use bench/lib/tls-handshakes.mjs (a full handshake per
    // connection; wrk would resume sessions).
    const load = (t, h, c, secs, close) =>
      close && t.tls
        ? runTlsHandshakes({ plan, port: h.port, conns: c, seconds: secs })
        : runWrk({ wrk, plan, url: `${t.tls ? 'https' : 'http'}://127.0.0.1:${h.port}/`, conns: c, seconds: secs, close });
    notes.push(
      plan.pin
        ? 'pinned with taskset: proxy under test on core 0; wrk and the nginx upstreams on core 1'
        : `not pinned (${plan.unpinnedOnPurpose ? 'on purpose: proxy threads, wrk and upstreams share every core' : !plan.taskset ? 'taskset missing' : plan.cpus < 2 ? 'fewer than 2 CPUs' : 'BENCH_NO_PIN=1'})`,
    );
    const running = [];
    for (const t of list.filter((x) => !x.skip)) {
      try {
        const h = await t.start(env);
        // Idle memory: after the target answers its readiness probe, before any load; the whole
        // process tree and the main process. stickmesh's socket-duplicating helper exits about 1 s
        // after its last answer, so a stickmesh target is read once it is gone (at most 5 s).
        if (t.name.startsWith('stickmesh')) {
          const until = Date.now() + 5000;
          while (treePids(h.pid).length > 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
        }
        // onStarted(t, h): what the caller wants to know of a started target (the threads
        // section asks how many threads it serves with), kept as `probes[name]`.
        const probe = onStarted ? await onStarted(t, h).catch((e) => ({ error: e.message })) : undefined;
        running.push({ t, h, rssIdle: treeRss(h.pid), rssIdleMain: rssOf(h.pid), probe });
      } catch (e) {
        skipped.push({ target: t.name, reason: `failed to start: ${e.message}` });
      }
    }
    const runs = [];
    // Only the target being measured may run: the others are SIGSTOPped, so a proxy that just
    // took load cannot spend core 0 on garbage collection or timers during the next one's run.
    const pause = (h) => !h.shared && h.child.exitCode === null && h.child.kill('SIGSTOP');
    const resume = (h) => !h.shared && h.child.exitCode === null && h.child.kill('SIGCONT');
    try {
      // Both configs insert the persistence cookie; a missing Set-Cookie means the two are not
      // doing the same work, which the table would hide.
      for (const { t, h } of running) {
        if (!/^(haproxy|stickmesh)-http/.test(t.name)) continue;
        const sc = String((await headersOf(h.port, t.tls))['set-cookie'] ?? '');
        if (!/SERVERID=s[12]/.test(sc)) notes.push(`${t.name}: no SERVERID cookie inserted (Set-Cookie: ${sc || 'none'})`);
        // The rules targets must deny the ACL's path, or they are not running the rules at all.
        if (t.name.endsWith('-rules')) {
          const st = await statusOf(h.port, '/private');
          if (st !== 403) notes.push(`${t.name}: GET /private answered ${st}, not 403: the http-request rules are not in effect`);
        }
      }
      for (const { h } of running) pause(h);
      const warm = Math.max(1, Math.min(2, seconds));
      for (const { t, h } of running) {
        log(`  warm-up ${t.name} (${warm}s at each connection count, then 1s of new connections)`);
        resume(h);
        // Every connection count once (the first run at a new count otherwise pays for growing
        // pools and buffers), then the connection set-up path often enough for a JIT to compile
        // it, as a long-running balancer has; without it the first runs measure interpreted code.
        for (const [c, close] of [...conns.map((c) => [c, false]), ...(newConns ? [[conns[0], true]] : [])]) {
          await load(t, h, c, close ? 1 : warm, close).catch((e) => notes.push(`${t.name} warm-up: ${e.message.split('\n')[0]}`));
        }
        pause(h);
      }
      // A round runs every (connections, new connections?) setting in turn and, within it, every
      // target back to back: the runs a ratio compares are seconds apart, so the machine's drift
      // (10-20% within minutes on a shared VM) lands on both sides of a pair alike.
      const settings = conns.flatMap((c) => (c === conns[0] && newConns ? [[c, false], [c, true]] : [[c, false]]));
      for (let round = 1; round <= rounds; round++) {
        // Every other round runs the targets in reverse, so no target always follows the same one.
        const order = round % 2 === 1 ? running : [...running].reverse();
        for (const [c, close] of settings) {
          for (const { t, h } of order) {
            if (h.child.exitCode !== null || h.child.signalCode !== null) {
              const why = `exited (code ${h.child.exitCode}, signal ${h.child.signalCode})`;
              if (!skipped.some((s) => s.target === t.name)) skipped.push({ target: t.name, reason: `${why} during the run: ${tail(h.errPath, 500).trim()}` });
              continue;
            }
            const dead = env.upstreams.find((u) => u.child.exitCode !== null || u.child.signalCode !== null);
            if (dead) throw new Error(`an upstream exited (code ${dead.child.exitCode}, signal ${dead.child.signalCode}): ${tail(dead.errPath, 500)}`);
            resume(h);
            const pids = [h.pid, ...env.upstreams.map((u) => u.pid)].flatMap(treePids);
            const cpu0 = cpuSnapshot(pids);
            const proxyCpu0 = treeCpuSeconds(h.pid);
            const ticks0 = threadTicks(h.pid);
            const t0 = performance.now();
            let r;
            try {
              r = await load(t, h, c, seconds, close);
              // What stickmesh counted for wrk's address (read before the target is paused again):
              // proof the rules ran on every request. The 10 s rate holds the whole run, or at
              // least half of it when a period boundary fell inside the run.
              if (t.name === 'stickmesh-http-rules' && h.adminPort) {
                const counted = await countedRate(h.adminPort);
                if (typeof counted !== 'number' || counted < r.requests * Math.min(1, 10 / seconds) * 0.5) {
                  notes.push(`${t.name} c=${c}${close ? ' close' : ''} round ${round}: counted http_req_rate(10s) ${counted} for ${r.requests} requests`);
                }
              }
            } catch (e) {
              notes.push(`${t.name} c=${c}${close ? ' close' : ''} round ${round}: ${e.message.split('\n')[0]}`);
              continue;
            } finally {
              pause(h);
            }
            const otherCpu = cpuDelta(cpu0, cpuSnapshot(pids));
            // The proxy's own CPU (cores, averaged over the run), and requests (new connections in
            // the `new` rows) per CPU-second of it: when the load generator is the bottleneck, this
            // is what still tells what the proxy's work costs.
            const proxyCpu = t.mode === 'direct' ? null : (treeCpuSeconds(h.pid) - proxyCpu0) / ((performance.now() - t0) / 1000);
            const perCpuSec = proxyCpu ? r.rps / proxyCpu : null;
            const rss = treeRss(h.pid);
            // Threads of the proxy process that carried a share of this run (nbthread evidence).
            const threads = t.mode === 'direct' ? null : busyThreads(ticks0, threadTicks(h.pid));
            const { raw, ...nums } = r;
            runs.push({ target: t.name, mode: t.mode, conns: c, close, round, ...nums, rssMB: rss / 2 ** 20, otherCpu, proxyCpu, perCpuSec, busyThreads: threads?.busy ?? null, threadShares: threads?.shares ?? null });
            log(
              `  round ${round}/${rounds} ${t.name.padEnd(18)} c=${String(c).padEnd(3)}${close ? ' close' : '      '} ${r.rps.toFixed(0).padStart(7)} req/s` +
                `  p50 ${fmt(r.p50)} ms  p99 ${fmt(r.p99)} ms  rss ${(rss / 2 ** 20).toFixed(1)} MB  proxy cpu ${fmt(proxyCpu)}  other cpu ${otherCpu.toFixed(2)}` +
                (threads && t.nbthread > 1 ? `  busy threads ${threads.busy} (${threads.shares.join('/')})` : '') +
                (r.resumed ? `  RESUMED ${r.resumed}` : '') +
                (r.socketErrors || r.non2xx ? `  errors: socket ${r.socketErrors}, non-2xx ${r.non2xx}` : ''),
            );
          }
        }
      }
    } finally {
      for (const { h } of running) {
        resume(h);
        await h.stop();
      }
    }
    const rows = summarise(runs, list, conns);
    return {
      settings: { rounds, seconds, conns, upstream: env.upstreamKind, pinned: plan.pin, wrkThreads: 1 },
      runs,
      rows,
      memory: memorySummary(running, rows),
      ratios: ratios(rows, runs, conns),
      probes: Object.fromEntries(running.filter((r) => r.probe !== undefined).map((r) => [r.t.name, r.probe])),
      skipped,
      notes,
    };
  }, { pin });
}

/** Median per (target, conns, kept or new connections) over the rounds, and req/s relative to HAProxy of the same mode. */
function summarise(runs, list, conns) {
  const rows = [];
  const cells = [false, true].flatMap((close) => list.flatMap((t) => conns.map((c) => ({ t, c, close }))));
  for (const { t, c, close } of cells) {
    const rs = runs.filter((r) => r.target === t.name && r.conns === c && Boolean(r.close) === close);
    if (!rs.length) continue;
    rows.push({
      target: t.name,
      mode: t.mode,
      conns: c,
      close,
      rounds: rs.length,
      rps: median(rs.map((r) => r.rps)),
      p50: median(rs.map((r) => r.p50)),
      p99: median(rs.map((r) => r.p99)),
      rssMB: median(rs.map((r) => r.rssMB)),
      otherCpu: median(rs.map((r) => r.otherCpu)),
      proxyCpu: median(rs.map((r) => r.proxyCpu)),
      perCpuSec: median(rs.map((r) => r.perCpuSec)),
      errors: rs.reduce((a, r) => a + r.socketErrors + r.non2xx, 0),
    });
  }
  // vs HAProxy: the median of the per-round ratios to the target's HAProxy anchor (same mode, same rules).
  const anchor = new Map(list.map((t) => [t.name, t.anchor ?? `haproxy-${t.mode}`]));
  for (const row of rows) {
    row.vsHaproxy = row.mode === 'direct' ? null : pairedRatio(runs, row.target, anchor.get(row.target), row.conns, row.close, 'rps');
  }
  return rows;
}

const div = (x, y) => (x == null || y == null || y === 0 ? null : x / y);

/**
 * The median over rounds of `a`'s metric `k` divided by `b`'s in the same round (the two ran
 * seconds apart, so what the machine did that minute cancels out); null when no round has both.
 */
export function pairedRatio(runs, a, b, conns, close, k) {
  const xs = [];
  for (const ra of runs) {
    if (ra.target !== a || ra.conns !== conns || Boolean(ra.close) !== close) continue;
    const rb = runs.find((r) => r.target === b && r.conns === conns && Boolean(r.close) === close && r.round === ra.round);
    if (rb) xs.push(div(ra[k], rb[k]));
  }
  return median(xs);
}

/**
 * The headline ratios, two ways: `paired` (pairedRatio) and `ofMedians`, the ratio of the two
 * medians. Null when either side did not run.
 */
function ratios(rows, runs, conns) {
  const get = (target, c, k, close) => rows.find((r) => r.target === target && r.conns === c && r.close === close)?.[k] ?? null;
  const out = {};
  const add = (label, a, b, c, k, close = false) => {
    out[label] = { paired: pairedRatio(runs, a, b, c, close, k), ofMedians: div(get(a, c, k, close), get(b, c, k, close)) };
  };
  for (const c of conns) {
    add(`stickmesh-http / haproxy-http req/s @${c}`, 'stickmesh-http', 'haproxy-http', c, 'rps');
    add(`stickmesh-http / haproxy-http p99 @${c}`, 'stickmesh-http', 'haproxy-http', c, 'p99');
    add(`stickmesh-http / node-http-proxy req/s @${c}`, 'stickmesh-http', 'node-http-proxy', c, 'rps');
    add(`stickmesh-tcp / haproxy-tcp req/s @${c}`, 'stickmesh-tcp', 'haproxy-tcp', c, 'rps');
    add(`stickmesh-tcp / haproxy-tcp p99 @${c}`, 'stickmesh-tcp', 'haproxy-tcp', c, 'p99');
    add(`node-relay / haproxy-tcp req/s @${c}`, 'node-relay', 'haproxy-tcp', c, 'rps');
    add(`node-relay / haproxy-tcp p99 @${c}`, 'node-relay', 'haproxy-tcp', c, 'p99');
    add(`stickmesh-tcp / node-relay req/s @${c}`, 'stickmesh-tcp', 'node-relay', c, 'rps');
    for (const m of ['http', 'tcp']) {
      add(`node-floor-${m} / haproxy-${m} req/s @${c}`, `node-floor-${m}`, `haproxy-${m}`, c, 'rps');
      add(`node-floor-${m} / haproxy-${m} p99 @${c}`, `node-floor-${m}`, `haproxy-${m}`, c, 'p99');
      add(`stickmesh-${m} / node-floor-${m} req/s @${c}`, `stickmesh-${m}`, `node-floor-${m}`, c, 'rps');
      add(`stickmesh-${m} / node-floor-${m} p99 @${c}`, `stickmesh-${m}`, `node-floor-${m}`, c, 'p99');
    }
    add(`stickmesh-http-log / stickmesh-http req/s @${c}`, 'stickmesh-http-log', 'stickmesh-http', c, 'rps');
    add(`stickmesh-http-rules / stickmesh-http req/s @${c}`, 'stickmesh-http-rules', 'stickmesh-http', c, 'rps');
    add(`stickmesh-http-rules / haproxy-http-rules req/s @${c}`, 'stickmesh-http-rules', 'haproxy-http-rules', c, 'rps');
    add(`stickmesh-http-rules / haproxy-http-rules p99 @${c}`, 'stickmesh-http-rules', 'haproxy-http-rules', c, 'p99');
    add(`stickmesh-http-rules / stickmesh-http req per proxy CPU-s @${c}`, 'stickmesh-http-rules', 'stickmesh-http', c, 'perCpuSec');
    add(`stickmesh-http-rules / haproxy-http-rules req per proxy CPU-s @${c}`, 'stickmesh-http-rules', 'haproxy-http-rules', c, 'perCpuSec');
    add(`haproxy-http-rules / haproxy-http req/s @${c}`, 'haproxy-http-rules', 'haproxy-http', c, 'rps');
  }
  for (const c of conns) {
    add(`stickmesh-https / haproxy-https req/s @${c}`, 'stickmesh-https', 'haproxy-https', c, 'rps');
    add(`stickmesh-https / haproxy-https p99 @${c}`, 'stickmesh-https', 'haproxy-https', c, 'p99');
    add(`stickmesh-https / haproxy-https req per proxy CPU-s @${c}`, 'stickmesh-https', 'haproxy-https', c, 'perCpuSec');
  }
  const c0 = conns[0];
  add(`stickmesh-http / haproxy-http new connections/s @${c0}`, 'stickmesh-http', 'haproxy-http', c0, 'rps', true);
  add(`stickmesh-tcp / haproxy-tcp new connections/s @${c0}`, 'stickmesh-tcp', 'haproxy-tcp', c0, 'rps', true);
  add(`node-relay / haproxy-tcp new connections/s @${c0}`, 'node-relay', 'haproxy-tcp', c0, 'rps', true);
  add(`stickmesh-tcp / node-relay new connections/s @${c0}`, 'stickmesh-tcp', 'node-relay', c0, 'rps', true);
  add(`node-floor-tcp / haproxy-tcp new connections/s @${c0}`, 'node-floor-tcp', 'haproxy-tcp', c0, 'rps', true);
  add(`stickmesh-tcp / node-floor-tcp new connections/s @${c0}`, 'stickmesh-tcp', 'node-floor-tcp', c0, 'rps', true);
  add(`stickmesh-https / haproxy-https new TLS connections/s @${c0}`, 'stickmesh-https', 'haproxy-https', c0, 'rps', true);
  add(`stickmesh-https / haproxy-https new TLS conns per proxy CPU-s @${c0}`, 'stickmesh-https', 'haproxy-https', c0, 'perCpuSec', true);
  return out;
}

export function fmt(x, digits = 2) {
  return x == null ? '-' : x.toFixed(digits);
}

/** The result table and ratios as printable text. */
export function formatHttp(res) {
  const head = ['target', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'RSS MB', 'vs HAProxy', 'errors', 'proxy CPU', 'req/CPU-s', 'other CPU'];
  const body = res.rows.map((r) => [
    r.target,
    r.close ? `${r.conns} new` : String(r.conns),
    r.rps.toFixed(0),
    fmt(r.p50),
    fmt(r.p99),
    fmt(r.rssMB, 1),
    r.vsHaproxy == null ? '-' : `${r.vsHaproxy.toFixed(2)}x`,
    String(r.errors),
    fmt(r.proxyCpu),
    r.perCpuSec == null ? '-' : r.perCpuSec.toFixed(0),
    fmt(r.otherCpu),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
  const mem = formatMemory(res.memory);
  if (mem.length) out.push('', ...mem);
  const rat = Object.entries(res.ratios).filter(([, v]) => v.paired != null || v.ofMedians != null);
  if (rat.length) {
    const w = Math.max(...rat.map(([k]) => k.length));
    out.push('', `${'ratios'.padEnd(w + 2)}  paired  of medians`);
    out.push(`  ${'(paired: median over rounds of the ratio of two runs seconds apart)'}`);
    for (const [k, v] of rat) out.push(`  ${k.padEnd(w)}  ${fmt(v.paired).padStart(6)}  ${fmt(v.ofMedians).padStart(10)}`);
  }
  const busiest = Math.max(0, ...res.rows.map((r) => r.otherCpu ?? 0));
  if (busiest > 0.1) {
    out.push('', `WARNING: other processes used up to ${busiest.toFixed(2)} cores (median per row) during the runs: the machine was shared and the numbers are noisy`);
  }
  return out.join('\n');
}

/**
 * Runs `targetName` (stickmesh-http by default) under `node --cpu-prof` with wrk at `conns`
 * connections for `seconds` (with `handshakes`, bench/lib/tls-handshakes.mjs instead: a full TLS
 * handshake and one request per connection; with `close`, wrk sends `Connection: close`), stops it with SIGTERM (the profile is written at
 * exit) and resolves to {file, top} with the `topN` functions by self time.
 */
export async function runProfile({ seconds, conns, topN = 15, log = console.log, targetName = 'stickmesh-http', handshakes = false, close = false }) {
  const notes = [];
  const wrk = which('wrk');
  if (!wrk) return { skipped: 'wrk not installed', notes };
  const profileDir = path.join(repoRoot, 'bench/results/prof');
  fs.mkdirSync(profileDir, { recursive: true });
  const target = allTargets().find((t) => t.name === targetName);
  if (target.skip) return { skipped: target.skip, notes };
  const since = Date.now();
  const result = await withUpstreams(notes, async (env) => {
    const h = await target.start({ ...env, profileDir });
    let w;
    try {
      log(`  profiling ${targetName}: ${handshakes ? 'tls-handshakes' : 'wrk'}${close ? ' (Connection: close)' : ''} -c${conns} ${seconds}s`);
      w = handshakes
        ? await runTlsHandshakes({ plan: env.plan, port: h.port, conns, seconds })
        : await runWrk({ wrk, plan: env.plan, url: `${target.tls ? 'https' : 'http'}://127.0.0.1:${h.port}/`, conns, seconds, close });
    } finally {
      const ex = await stop(h.child, { signal: 'SIGTERM', graceMs: 20000 });
      if (ex.signal === 'SIGKILL') notes.push('stickmesh did not exit on SIGTERM within 20 s; killed, so no profile');
    }
    return { rps: w.rps, p99: w.p99 };
  });
  const file = newestProfile(profileDir, since - 1000);
  if (!file) return { skipped: 'no .cpuprofile written', notes, ...result };
  const top = selfTimes(JSON.parse(fs.readFileSync(file, 'utf8')), repoRoot).slice(0, topN);
  return { file: path.relative(repoRoot, file), conns, seconds, ...result, top, notes };
}

/** The profile's top functions as printable text. */
export function formatProfile(p) {
  const head = ['self ms', '%', '% busy', 'function', 'location'];
  const body = p.top.map((r) => [r.ms.toFixed(0), r.pct.toFixed(1), r.pctBusy == null ? '-' : r.pctBusy.toFixed(1), r.fn, r.where]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i < 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
