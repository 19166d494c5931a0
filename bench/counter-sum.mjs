// Cluster-wide counter visibility, end to end: how soon the sum of a counter that one node
// counted is visible through every other node's admin API, under load.
//
// Run: npx tsc -b && node bench/counter-sum.mjs [--quick] [--seconds=N] [--rate=N] [--out=FILE]
//        [--counters=local]   (the table counts per node, nothing replicated: the mesh's CPU share)
//
//   - 3 real `stickmesh start` processes on 127.0.0.1, a `peers` section whose table stores
//     http_req_rate(10s), every frontend with `http-request track-sc0 src table mesh/rl` and a deny
//     over a rate never reached (so the rule reads the counter on every request), one upstream
//     (bench/lib/raw-upstream.mjs).
//   - Load: a child process (this file with --load-child, so its work does not delay the probe's
//     event loop) sends --rate requests/s (default 10,000) for --seconds (default 10) over
//     keep-alive connections from 128 source addresses (127.20.0.1..128) to the three nodes in
//     turn, one request in flight per connection, paced by a schedule. Every request is counted.
//   - Probe, meanwhile, one after another with 20 ms between them: a request from a fresh source
//     address (127.21.x.y, so the key is new and its count goes 0 -> 1) to node A (the three in
//     turn); then the other two nodes' GET /api/tables/mesh%2Frl/counters?key=<address> are
//     polled back to back until each shows the sum >= 1. Visibility = the time from sending the
//     probe's request to the first poll showing it, per observing node; `every node` = the later
//     of the two. It includes node A's request handling and one admin round trip on B (the poll's
//     resolution). Bar (issue #19): p99 <= 20 ms for `every node` at 10,000 counted requests/s.
//   - At the end, each node's /metrics lines about counters; `mesh lag` is the largest of the
//     nodes' stickmesh_counter_replication_lag_seconds quantiles (the mesh's own measure: apply
//     time on the receiver minus the oldest change in the batch, over recent batches).
//
// Prints one JSON line ({"bench":"counter-sum",...}) and a short report; writes --out if given.
import { fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './lib/ports.mjs';
import { spawnLogged, stop, tail, waitHttp200 } from './lib/proc.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const BIN = path.join(ROOT, 'packages/cli/bin/stickmesh.js');
const TABLE = 'mesh/rl';
const RATE_KEY = 'http_req_rate(10s)';
const LOAD_SOURCES = 128;

const arg = (name, fallback) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
};

// ---------------------------------------------------------------------------------------------
// Load child: raw keep-alive HTTP/1.1 over sockets from LOAD_SOURCES source addresses, paced.
// ---------------------------------------------------------------------------------------------

/**
 * Runs the load described by `m` ({ports, rate, ms}) and resolves to
 * {sent, ok, other, deadConnections, lateSlots, ms}: `lateSlots` counts schedule slots dropped after
 * waiting 100 ms for an idle connection.
 */
async function load({ ports, rate, ms }) {
  const conns = [];
  for (let s = 0; s < LOAD_SOURCES; s++) {
    for (const port of ports) {
      const c = { sock: null, busy: true, buf: '', ok: 0, other: 0, dead: false };
      c.sock = net.connect({ host: '127.0.0.1', port, localAddress: `127.20.0.${s + 1}` });
      c.sock.setNoDelay(true);
      c.sock.setEncoding('latin1');
      c.sock.once('connect', () => (c.busy = false));
      c.sock.on('data', (d) => onData(c, d));
      c.sock.on('error', () => (c.dead = true));
      c.sock.on('close', () => (c.dead = true));
      conns.push(c);
    }
  }
  const head = 'GET / HTTP/1.1\r\nHost: bench\r\n\r\n';
  // One response: head, then Content-Length bytes (the proxy's own answers have one too).
  function onData(c, d) {
    c.buf += d;
    for (;;) {
      const end = c.buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(c.buf.slice(0, end));
      const total = end + 4 + (m ? Number(m[1]) : 0);
      if (c.buf.length < total) return;
      if (c.buf.startsWith('HTTP/1.1 200')) c.ok++;
      else c.other++;
      c.buf = c.buf.slice(total);
      c.busy = false;
    }
  }
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('load connections not established within 5 s')), 5000);
    const check = () => (conns.every((c) => !c.busy || c.dead) ? (clearTimeout(t), resolve()) : setTimeout(check, 5));
    check();
  });
  let sent = 0;
  let late = 0;
  let next = 0;
  const t0 = performance.now();
  await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now() - t0;
      if (now >= ms) return resolve();
      const due = Math.floor((now * rate) / 1000);
      while (sent < due) {
        let tries = 0;
        while (tries < conns.length && (conns[next].busy || conns[next].dead)) {
          next = (next + 1) % conns.length;
          tries++;
        }
        if (tries === conns.length) {
          // Every connection busy: the slots wait for the next tick, up to 100 ms of them; older
          // ones are dropped (counted in lateSlots) rather than sent in one burst.
          const backlog = due - sent;
          const keep = Math.ceil(rate / 10);
          if (backlog > keep) {
            late += backlog - keep;
            sent += backlog - keep;
          }
          break;
        }
        const c = conns[next];
        next = (next + 1) % conns.length;
        c.busy = true;
        c.sock.write(head);
        sent++;
      }
      setTimeout(tick, 1);
    };
    tick();
  });
  const ended = performance.now() - t0;
  // Let the last responses arrive.
  const deadline = Date.now() + 3000;
  while (conns.some((c) => c.busy && !c.dead) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const ok = conns.reduce((a, c) => a + c.ok, 0);
  const other = conns.reduce((a, c) => a + c.other, 0);
  const errors = conns.filter((c) => c.dead).length;
  for (const c of conns) c.sock.destroy();
  return { sent: sent - late, ok, other, deadConnections: errors, lateSlots: late, ms: ended };
}

if (process.argv.includes('--load-child')) {
  process.once('message', (m) => {
    load(m).then(
      (r) => process.send({ ok: true, r }, () => process.exit(0)),
      (e) => process.send({ ok: false, error: e.message }, () => process.exit(1)),
    );
  });
} else {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(e?.stack ?? String(e));
      process.exit(1);
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Parent: nodes, probe, report.
// ---------------------------------------------------------------------------------------------

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : null);
const summary = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99), max: s.at(-1) ?? null };
};

function nodeConfig(n, nodes, upstreamPort, counters) {
  return `global
    admin-bind 127.0.0.1:${n.admin}
    log-level warn
peers mesh
    bind 127.0.0.1:${n.peers}
${nodes.map((o) => `    server ${o.name} 127.0.0.1:${o.peers}`).join('\n')}
    shared-secret counter-sum-bench-secret
    table rl type ip size 1m expire 30s store ${RATE_KEY} counters ${counters}
defaults
    mode http
    maxconn 10000
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s
frontend fe
    bind 127.0.0.1:${n.proxy}
    http-request track-sc0 src table ${TABLE}
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000000 }
    default_backend be
backend be
    server s1 127.0.0.1:${upstreamPort}
`;
}

/** The sum node `n` shows for `key` (0 when it has no entry), over a keep-alive agent. */
function readSum(n, key) {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port: n.admin, path: `/api/tables/${encodeURIComponent(TABLE)}/counters?key=${encodeURIComponent(key)}`, agent: n.agent, timeout: 2000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          if (res.statusCode === 404) return resolve(0);
          if (res.statusCode !== 200) return reject(new Error(`${n.name}: counters answered ${res.statusCode}: ${body.slice(0, 200)}`));
          try {
            resolve(Number(JSON.parse(body)?.total?.[RATE_KEY] ?? 0));
          } catch (e) {
            reject(e);
          }
        });
      },
    );
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', reject);
  });
}

/** One request from `src` to node `n`'s frontend on a new connection; resolves to the status. */
function probeRequest(n, src) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: n.proxy, path: '/probe', agent: false, localAddress: src, timeout: 2000 }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode));
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', reject);
  });
}

/** Source address of probe `i` (i >= 0): 127.21.0.1 upwards, never .0 or .255. */
const probeAddr = (i) => `127.21.${Math.floor(i / 254)}.${(i % 254) + 1}`;

/**
 * Probes until `until()` is true; resolves to {perObserver: ms[], everyNode: ms[], response: ms[],
 * timeouts}. A probe not visible on a node within 1 s counts as a timeout, not a sample.
 */
async function probe(nodes, until) {
  const perObserver = [];
  const everyNode = [];
  const response = [];
  let timeouts = 0;
  for (let i = 0; !until(); i++) {
    const a = nodes[i % nodes.length];
    const observers = nodes.filter((x) => x !== a);
    const src = probeAddr(i);
    const t0 = performance.now();
    const sent = probeRequest(a, src).then((st) => {
      response.push(performance.now() - t0);
      if (st !== 200) throw new Error(`probe answered ${st}`);
    });
    const seen = await Promise.all(
      observers.map(async (o) => {
        while (performance.now() - t0 < 1000) {
          if ((await readSum(o, src)) >= 1) return performance.now() - t0;
        }
        return null;
      }),
    );
    await sent;
    if (seen.some((x) => x === null)) timeouts++;
    for (const s of seen) if (s !== null) perObserver.push(s);
    if (seen.every((x) => x !== null)) everyNode.push(Math.max(...seen));
    await new Promise((r) => setTimeout(r, 20));
  }
  return { perObserver, everyNode, response, timeouts };
}

/** utime + stime of `pid` in seconds (0 when unreadable). */
function cpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/** Lines of `n`'s /metrics that mention counters (the mesh's counter replication figures). */
async function counterMetrics(n) {
  try {
    const r = await fetch(`http://127.0.0.1:${n.admin}/metrics`);
    const text = await r.text();
    return text.split('\n').filter((l) => /counter/i.test(l) && !l.startsWith('#'));
  } catch (e) {
    return [`unreadable: ${e.message}`];
  }
}

async function main() {
  const quick = process.argv.includes('--quick');
  const seconds = Number(arg('seconds', quick ? 3 : 10));
  const rate = Number(arg('rate', 10_000));
  const out = arg('out', '');
  // `local`: each node counts alone and nothing is replicated (the probe then times out); for
  // telling the mesh's CPU cost from the rest.
  const counters = arg('counters', 'cluster');
  // --probe=0: load only (the nodes' CPU per request without the probe's polling).
  const probing = arg('probe', '1') !== '0';
  if (!fs.existsSync(path.join(ROOT, 'packages/cli/dist/main.js'))) throw new Error('packages/cli/dist missing: run npx tsc -b');

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stickmesh-counter-sum-'));
  const running = [];
  let loadChild = null;
  try {
    const upPort = await freePort();
    const up = spawnLogged([process.execPath, path.join(HERE, 'lib/raw-upstream.mjs'), String(upPort)], { name: 'upstream', logDir: tmp });
    running.push(up.child);
    await waitHttp200(upPort, { child: up.child });

    const nodes = [];
    for (const name of ['c1', 'c2', 'c3']) nodes.push({ name, proxy: await freePort(), peers: await freePort(), admin: await freePort(), agent: new http.Agent({ keepAlive: true, maxSockets: 1 }) });
    for (const n of nodes) {
      const cfg = path.join(tmp, `${n.name}.cfg`);
      fs.writeFileSync(cfg, nodeConfig(n, nodes, upPort, counters));
      const p = spawnLogged([process.execPath, BIN, 'start', '--config', cfg, '--node', n.name], { name: n.name, logDir: tmp, cwd: ROOT });
      n.child = p.child;
      n.errPath = p.errPath;
      running.push(p.child);
    }
    for (const n of nodes) {
      try {
        await waitHttp200(n.admin, { urlPath: '/ready', child: n.child });
        await waitHttp200(n.proxy, { child: n.child });
      } catch (e) {
        throw new Error(`${n.name}: ${e.message}\n${tail(n.errPath, 1500)}`);
      }
    }
    // The route exists and a key nobody sent is absent.
    await readSum(nodes[0], '127.21.255.254');

    const child = fork(fileURLToPath(import.meta.url), ['--load-child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    loadChild = child;
    const loadDone = new Promise((resolve, reject) => {
      child.once('message', (m) => (m.ok ? resolve(m.r) : reject(new Error(`load: ${m.error}`))));
      child.once('exit', (code) => code !== 0 && reject(new Error(`load child exited ${code}`)));
    });
    let loadFinished = false;
    loadDone.finally(() => (loadFinished = true)).catch(() => {});
    const loadStart = performance.now();
    const cpu0 = nodes.map((n) => cpuSeconds(n.child.pid));
    child.send({ ports: nodes.map((n) => n.proxy), rate, ms: seconds * 1000 });
    // Probes start once the load had 500 ms to reach its rate, and stop with it.
    await new Promise((r) => setTimeout(r, 500));
    const pr = probing ? await probe(nodes, () => loadFinished || performance.now() - loadStart > seconds * 1000) : { perObserver: [], everyNode: [], response: [], timeouts: 0 };
    const ld = await loadDone;
    // CPU the nodes used during the load (the probe's requests and polls included), per request.
    const cpuS = nodes.reduce((a, n, i) => a + cpuSeconds(n.child.pid) - cpu0[i], 0);
    const metrics = {};
    for (const n of nodes) metrics[n.name] = await counterMetrics(n);

    // The mesh's own lag quantiles, largest over every node and peer.
    const meshLag = {};
    for (const lines of Object.values(metrics)) {
      for (const l of lines) {
        const m = /^stickmesh_counter_replication_lag_seconds\{[^}]*quantile="([\d.]+)"[^}]*\}\s+([\d.eE+-]+)/.exec(l);
        if (m) meshLag[`p${Number(m[1]) * 100}`] = Math.max(meshLag[`p${Number(m[1]) * 100}`] ?? 0, Number(m[2]) * 1000);
      }
    }
    const result = {
      bench: 'counter-sum',
      date: new Date().toISOString(),
      settings: { nodes: 3, rate, seconds, loadSources: LOAD_SOURCES, counters },
      nodesCpu: { cores: cpuS / (ld.ms / 1000), usPerRequest: (cpuS * 1e6) / Math.max(1, ld.ok) },
      load: { ...ld, achievedRps: ld.ok / (ld.ms / 1000) },
      visibleEveryNode: summary(pr.everyNode),
      visiblePerNode: summary(pr.perObserver),
      probeResponse: summary(pr.response),
      probeTimeouts: pr.timeouts,
      meshLagMs: meshLag,
      bar: { everyNodeP99Ms: 20 },
      metrics,
    };
    result.pass = result.visibleEveryNode.p99 !== null && result.visibleEveryNode.p99 <= 20 && pr.timeouts === 0;
    console.log(JSON.stringify(result));
    const f = (x) => (x == null ? '-' : x.toFixed(1));
    const row = (label, s) => `${label.padEnd(34)} ${String(s.n).padStart(5)}  ${f(s.p50).padStart(6)}  ${f(s.p90).padStart(6)}  ${f(s.p99).padStart(6)}  ${f(s.max).padStart(6)}`;
    console.log(
      [
        `load: ${ld.ok.toLocaleString('en')} counted 200s in ${(ld.ms / 1000).toFixed(1)} s = ${result.load.achievedRps.toFixed(0)} req/s over 3 nodes (asked ${rate}/s; ${ld.other} other statuses, ${ld.lateSlots} slots dropped with every connection busy, ${ld.deadConnections} connections lost)`,
        `${'ms from the request on node A'.padEnd(34)} ${'n'.padStart(5)}  ${'p50'.padStart(6)}  ${'p90'.padStart(6)}  ${'p99'.padStart(6)}  ${'max'.padStart(6)}`,
        row('sum visible on every other node', result.visibleEveryNode),
        row('sum visible on one other node', result.visiblePerNode),
        row("node A's response", result.probeResponse),
        `probes not visible within 1 s: ${pr.timeouts}; bar: every node p99 <= 20 ms: ${result.pass ? 'met' : 'NOT met'}`,
        `mesh lag from /metrics (largest over nodes and peers): ${Object.entries(meshLag).map(([q, v]) => `${q} ${v.toFixed(1)} ms`).join(', ') || 'not exposed'}`,
        `the 3 nodes used ${result.nodesCpu.cores.toFixed(2)} cores: ${result.nodesCpu.usPerRequest.toFixed(0)} us of CPU per counted request (tracking, proxying, replicating and applying shares, answering the probe)`,
        `load average at the end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (${os.cpus().length} CPUs)`,
        ...Object.entries(metrics).flatMap(([name, lines]) => (lines.length ? [`${name} /metrics:`, ...lines.slice(0, 12).map((l) => `  ${l}`)] : [`${name} /metrics: no counter lines`])),
      ].join('\n'),
    );
    if (out) fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } finally {
    if (loadChild && loadChild.exitCode === null && loadChild.signalCode === null) loadChild.kill('SIGKILL');
    for (const c of running) await stop(c, { signal: 'SIGKILL' });
    if (process.env.BENCH_KEEP_TMP === '1') console.log(`temporary files kept in ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }
}
