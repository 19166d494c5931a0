// The cluster-wide rate limit of test/ratelimit.test.ts as a benchmark, for stickmesh and for
// HAProxy side by side, at any rate: three nodes whose `peers` section shares a table storing
// http_req_rate(10s), each frontend with `http-request track-sc0 src table mesh/rl` and
// `http-request deny deny_status 429 if { sc_http_req_rate(0) gt 100 }`; one client address sends
// 1,000 requests round robin over the three at --rate req/s (default 300), paced by a schedule.
// stickmesh adds the nodes' shares; HAProxy's peers send each node's counter as a value and the
// receiver keeps the last one written, so increments made on two nodes at about the same time
// are lost. The test's bar for stickmesh at 300 req/s is 100 to 105 answered 200.
//
// Run: npx tsc -b && node bench/ratelimit.mjs [--proxy=stickmesh|haproxy|both] [--rate=N] [--runs=N]
// Prints one line per run and a JSON line per proxy.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './lib/ports.mjs';
import { run, spawnLogged, stop, tail, waitHttp200, which } from './lib/proc.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(HERE, '..', 'packages/cli/bin/stickmesh.js');
const REQUESTS = 1000;
const arg = (name, fallback) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
};
const PER_SECOND = Number(arg('rate', 300));
const RUNS = Number(arg('runs', 3));
const PROXY = arg('proxy', 'both');

/** Node i's config; the peers section differs: HAProxy names itself without an address, stickmesh binds and lists every node. */
function config(kind, i, ports, upstream) {
  const peers =
    kind === 'haproxy'
      ? ports.map((p, k) => `    server n${k + 1}${k === i ? '' : ` 127.0.0.1:${p.peers}`}`).join('\n')
      : [...ports.map((p, k) => `    server n${k + 1} 127.0.0.1:${p.peers}`), '    shared-secret ratelimit-bench-secret'].join('\n');
  const global = kind === 'haproxy' ? '    nbthread 1' : `    admin-bind 127.0.0.1:${ports[i].admin}\n    log-level warn`;
  return `global
${global}
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
peers mesh
    bind 127.0.0.1:${ports[i].peers}
${peers}
    table rl type ip size 100k expire 30s store http_req_rate(10s)
frontend fe
    bind 127.0.0.1:${ports[i].proxy}
    http-request track-sc0 src table mesh/rl
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 100 }
    default_backend be
backend be
    server s1 127.0.0.1:${upstream}
`;
}

/** 1,000 requests from `src`, request i due at t0 + i/300 s (catching up at twice the rate at most), round robin. */
async function paced(ports, src) {
  const agents = ports.map(() => new http.Agent({ keepAlive: true }));
  const status = new Array(REQUESTS).fill(0);
  const pending = [];
  const spacing = 1000 / PER_SECOND;
  let due = performance.now() + 20;
  for (let i = 0; i < REQUESTS; i++) {
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    due = Math.max(due + spacing, performance.now() + spacing / 2);
    const k = i % ports.length;
    pending.push(
      new Promise((resolve) => {
        const req = http.get({ host: '127.0.0.1', port: ports[k].proxy, path: '/', agent: agents[k], localAddress: src }, (res) => {
          res.resume();
          res.on('end', () => ((status[i] = res.statusCode), resolve()));
        });
        req.on('error', () => resolve());
        req.setTimeout(5000, () => req.destroy(new Error('timeout')));
      }),
    );
  }
  await Promise.all(pending);
  for (const a of agents) a.destroy();
  return status;
}

/** Starts three nodes of `kind`, runs RUNS paced runs from fresh addresses, resolves to the 200 counts. */
async function measure(kind, haproxy, tmp, up) {
  const procs = [];
  try {
    const ports = [];
    for (let i = 0; i < 3; i++) ports.push({ proxy: await freePort(), peers: await freePort(), admin: await freePort() });
    const nodes = ports.map((_, i) => {
      const cfg = path.join(tmp, `${kind}-n${i + 1}.cfg`);
      fs.writeFileSync(cfg, config(kind, i, ports, up));
      const argv = kind === 'haproxy' ? [haproxy, '-db', '-f', cfg, '-L', `n${i + 1}`] : [process.execPath, BIN, 'start', '--config', cfg, '--node', `n${i + 1}`];
      const p = spawnLogged(argv, { name: `${kind}-n${i + 1}`, logDir: tmp });
      procs.push(p.child);
      return p;
    });
    for (const [i, n] of nodes.entries()) {
      try {
        if (kind === 'stickmesh') await waitHttp200(ports[i].admin, { urlPath: '/ready', child: n.child });
        await waitHttp200(ports[i].proxy, { child: n.child });
      } catch (e) {
        throw new Error(`${kind} n${i + 1}: ${e.message}\n${tail(n.errPath, 1000)}`);
      }
    }
    const admitted = [];
    for (let r = 0; r < RUNS; r++) {
      // Each run from its own address: a new key, counted from zero (the readiness GETs came from 127.0.0.1).
      const t0 = performance.now();
      const status = await paced(ports, `127.0.19.${(kind === 'haproxy' ? 201 : 151) + r}`);
      const ms = performance.now() - t0;
      const ok = status.filter((s) => s === 200).length;
      const denied = status.filter((s) => s === 429).length;
      admitted.push(ok);
      console.log(`${kind} run ${r + 1}: ${ok} answered 200, ${denied} 429, ${REQUESTS - ok - denied} other, in ${(ms / 1000).toFixed(2)} s`);
    }
    return admitted;
  } finally {
    for (const c of procs) await stop(c, { signal: 'SIGKILL' });
  }
}

async function main() {
  const haproxy = which('haproxy');
  const kinds = PROXY === 'both' ? ['stickmesh', 'haproxy'] : [PROXY];
  if (kinds.includes('haproxy') && !haproxy) throw new Error('haproxy not installed');
  if (kinds.includes('stickmesh') && !fs.existsSync(path.join(HERE, '..', 'packages/cli/dist/main.js'))) throw new Error('packages/cli/dist missing: run npx tsc -b');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stickmesh-ratelimit-'));
  let upstream;
  try {
    const up = await freePort();
    upstream = spawnLogged([process.execPath, path.join(HERE, 'lib/raw-upstream.mjs'), String(up)], { name: 'upstream', logDir: tmp });
    await waitHttp200(up, { child: upstream.child });
    for (const kind of kinds) {
      const admitted = await measure(kind, haproxy, tmp, up);
      const version = kind === 'haproxy' ? run([haproxy, '-v']).stdout.split('\n')[0].trim() : 'stickmesh';
      console.log(JSON.stringify({ bench: 'ratelimit', proxy: kind, version, requests: REQUESTS, perSecond: PER_SECOND, limit: 100, admitted }));
    }
    return 0;
  } finally {
    if (upstream) await stop(upstream.child, { signal: 'SIGKILL' });
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  (c) => process.exit(c),
  (e) => {
    console.error(e?.stack ?? String(e));
    process.exit(1);
  },
);
