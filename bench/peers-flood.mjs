// Hostile load on a real node's peers port (issue #17 findings 1-3), measured from outside.
//
// Run: npx tsc -b && node bench/peers-flood.mjs [--root=DIR] [--only=knock,slowloris,badmac,frames]
//        [--conns=15000] [--sources=1000] [--rate=1000] [--flood-ms=20000] [--nofile=20000] [--clients=32] [--badmac-ms=10000]
//
// Starts `stickmesh start` (from --root, default this checkout, so a build of another commit can be
// compared) as node lb2 on 127.0.1.1 (peers :11000, proxy :18080, admin :19100; peer lb1 on
// 127.0.1.2 is configured but not running) in front of one backend in this process, then:
//   knock      GET /stickmesh/peers/1/knock?node=%  -> status, and whether the node still answers.
//   slowloris  --conns connections (opened at --rate/s) from --sources loopback addresses (127.0.128.0/17) that send
//              `GET /stickmesh/peers/1 HTTP/1.1` and one header line every 5 s, for --flood-ms; a
//              prober sends one proxy request every 5 ms (new connection each) for 5 s before and during
//              the flood: p50/p99/errors, the node's open fds and how many flood sockets it left open.
//   badmac     --clients WebSocket clients (one source address each) loop for --badmac-ms: upgrade,
//              hello, an `auth` with a wrong MAC claiming lb1 (then, second run, a 1,024-character
//              name): refusals/s, MAC checks/s (bad-secret), log bytes/s, and lb1 in /api/peers.
//   frames     64 upgrades (64 source addresses) each send a frame header announcing 4 MiB and then
//              4 MiB - 1 bytes of it, and hold: the node's RSS before and at its peak.
// The node runs under `ulimit -n --nofile`; --nice runs this generator at nice 10 (node, prober at 0).
// Prints one JSON object.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')).map(([k, v]) => [k, v ?? '1']));
const root = path.resolve(args.root ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'));
const only = new Set((args.only ?? 'knock,slowloris,badmac,frames').split(','));
const CONNS = Number(args.conns ?? 15000);
const SOURCES = Number(args.sources ?? 1000);
const FLOOD_MS = Number(args['flood-ms'] ?? 20000);
const NOFILE = Number(args.nofile ?? 20000);
const RATE = Number(args.rate ?? 1000);
const CLIENTS = Number(args.clients ?? 32);
const BADMAC_MS = Number(args['badmac-ms'] ?? 10000);
const HOST = '127.0.1.1';
const PEERS = 11000;
const PROXY = 18080;
const ADMIN = 19100;
const BACKEND = 19001;

const WebSocket = (await import(pathToFileURL(path.join(root, 'node_modules/ws/wrapper.mjs')).href)).default;
const { encode } = await import(pathToFileURL(path.join(root, 'packages/peers/dist/codec.js')).href);
const { computeMac } = await import(pathToFileURL(path.join(root, 'packages/peers/dist/handshake.js')).href);
const { decode } = await import(pathToFileURL(path.join(root, 'packages/peers/dist/codec.js')).href);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const src = (i) => `127.0.${128 + ((i >> 8) & 127)}.${(i & 255) || 1}`;

if (args.probe) {
  console.log(JSON.stringify(await probeHere(Number(args.probe))));
  process.exit(0);
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'peers-flood-'));
const cfg = path.join(dir, 'lb.cfg');
writeFileSync(cfg, `global
    admin-bind ${HOST}:${ADMIN}
peers mesh
    bind ${HOST}:${PEERS}
    shared-secret s3cret
    server lb1 127.0.1.2:${PEERS}
    server lb2 ${HOST}:${PEERS}
    table sessions type ip size 10k expire 30m
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend web
    bind ${HOST}:${PROXY}
    default_backend app
backend app
    stick on src table mesh/sessions
    server web1 ${HOST}:${BACKEND} check inter 1s
`);

const backend = http.createServer((_req, res) => res.end('ok'));
await new Promise((r) => backend.listen(BACKEND, HOST, r));

const logFile = path.join(dir, 'node.log');
const node = spawn('sh', ['-c', `ulimit -n ${NOFILE} && exec node ${path.join(root, 'packages/cli/bin/stickmesh.js')} start -c ${cfg} --node lb2 >> ${logFile} 2>&1`], { stdio: 'ignore' });
let exited = null;
/**
 * --nice: the flood generator (this process) runs at nice 10 and the node and the prober at 0, so
 * on a small shared machine the proxy's latency shows the node, not the generator's CPU use.
 */
function unNice(pid) {
  if (!args.nice) return;
  try {
    os.setPriority(pid, 0);
  } catch {
    /* not permitted: measured as is */
  }
}
if (args.nice) os.setPriority(10);
setTimeout(() => unNice(node.pid), 100);
node.on('exit', (code, sig) => (exited = `code ${code} signal ${sig}`));

function get(port, p, opts = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.request({ host: HOST, port, path: p, agent: false, timeout: 3000, ...opts }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body, ms: performance.now() - t0 }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, error: e.code ?? e.message, ms: performance.now() - t0 }));
    req.end();
  });
}

const summary = async () => JSON.parse((await get(ADMIN, '/api/summary')).body || '{}');
const fds = () => {
  try {
    return readdirSync(`/proc/${nodePid()}/fd`).length;
  } catch {
    return -1;
  }
};
const rss = () => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${nodePid()}/status`, 'utf8'))[1]) * 1024;
  } catch {
    return -1;
  }
};
/** The node's pid: sh execs node, so it is the child's pid. */
const nodePid = () => node.pid;
const logBytes = () => statSync(logFile).size;
/** CPU seconds (user + system) the node has used so far. */
const cpuSeconds = () => {
  try {
    const f = readFileSync(`/proc/${nodePid()}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return -1;
  }
};

const peersUp = () => new Promise((resolve) => {
  const s = net.connect({ host: HOST, port: PEERS }, () => (s.destroy(), resolve(true)));
  s.on('error', () => resolve(false));
});
for (let i = 0; ; i++) {
  if ((await get(PROXY, '/')).status === 200 && (await peersUp()) && (await get(ADMIN, '/api/summary')).status === 200) break;
  if (i > 200 || exited) throw new Error(`node did not start: ${exited ?? 'timeout'}\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
  await sleep(100);
}

function pct(xs, p) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] * 100) / 100;
}

/**
 * One proxy request every 5 ms (new connection each) for `ms`, from a child process (so the flood's
 * own event loop does not show up as proxy latency): latency percentiles and errors.
 */
function probe(ms) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), `--probe=${ms}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    unNice(child.pid);
    let outText = '';
    child.stdout.on('data', (d) => (outText += d));
    child.on('exit', () => {
      try {
        resolve(JSON.parse(outText));
      } catch (e) {
        reject(e);
      }
    });
  });
}

async function probeHere(ms) {
  const lat = [];
  const errors = {};
  const end = Date.now() + ms;
  const inflight = [];
  while (Date.now() < end) {
    inflight.push(get(PROXY, '/').then((r) => (r.status === 200 ? lat.push(r.ms) : (errors[r.error ?? r.status] = (errors[r.error ?? r.status] ?? 0) + 1))));
    await sleep(5);
  }
  await Promise.all(inflight);
  return { requests: lat.length + Object.values(errors).reduce((a, b) => a + b, 0), p50: pct(lat, 50), p99: pct(lat, 99), max: pct(lat, 100), errors };
}

const out = { root, nofile: NOFILE };

if (only.has('knock')) {
  const r = await get(PEERS, '/stickmesh/peers/1/knock?node=%');
  await sleep(1000);
  const alive = !exited && (await get(PROXY, '/')).status === 200;
  out.knock = { status: r.status || r.error, nodeAlive: alive };
  if (!alive) {
    console.log(JSON.stringify(out, null, 1));
    process.exit(1);
  }
}

if (only.has('slowloris')) {
  const cpu0 = cpuSeconds();
  const before = await probe(5000);
  const cpu1 = cpuSeconds();
  const socks = [];
  let opened = 0;
  let resets = 0;
  let closedByNode = 0;
  const head = `GET /stickmesh/peers/1 HTTP/1.1\r\nHost: ${HOST}\r\n`;
  const t0 = Date.now();
  const open = (i) => new Promise((resolve) => {
    const s = net.connect({ host: HOST, port: PEERS, localAddress: src(i % SOURCES) });
    s.on('connect', () => {
      opened++;
      s.connected = true;
      s.write(head);
      resolve();
    });
    s.on('error', () => {
      resets++;
      resolve();
    });
    s.on('close', () => closedByNode++);
    s.on('data', () => {});
    socks.push(s);
  });
  const drip = setInterval(() => {
    for (const s of socks) if (s.connected && !s.destroyed) s.write(`X-Slow: ${Date.now()}\r\n`);
  }, 5000);
  const samples = [];
  const sampler = setInterval(() => samples.push({ t: Date.now() - t0, nodeFds: fds(), floodOpen: socks.filter((s) => !s.destroyed).length }), 1000);
  const during = probe(FLOOD_MS);
  // Batches of 100 at --rate connections/s (0: as fast as the client can).
  for (let i = 0; i < CONNS; i += 100) {
    const due = t0 + (RATE > 0 ? (i / RATE) * 1000 : 0);
    if (due > Date.now()) await sleep(due - Date.now());
    await Promise.all(Array.from({ length: Math.min(100, CONNS - i) }, (_, j) => open(i + j)));
  }
  const openedInMs = Date.now() - t0;
  const d = await during;
  const cpu2 = cpuSeconds();
  clearInterval(drip);
  clearInterval(sampler);
  const stillOpen = socks.filter((s) => !s.destroyed).length;
  for (const s of socks) s.destroy();
  const sum = await summary();
  out.slowloris = {
    conns: CONNS, sources: SOURCES, rate: RATE, opened, resets, openedInMs, stillOpenAtEnd: stillOpen,
    nodeFdsMax: Math.max(...samples.map((s) => s.nodeFds)), samples: samples.filter((_, i) => i % 2 === 0),
    proxyBefore: before, proxyDuring: d, nodeCpuPctBefore: Math.round(((cpu1 - cpu0) / 5) * 100), nodeCpuPctDuring: Math.round(((cpu2 - cpu1) / Math.max(FLOOD_MS, openedInMs) * 1000) * 100),
    refusals: sum.refusals, nodeAlive: !exited,
  };
  await sleep(4000);
}

if (only.has('badmac')) {
  out.badmac = [];
  for (const claimed of ['lb1', 'x'.repeat(1024)]) {
    const s0 = await summary();
    const l0 = logBytes();
    const t0 = Date.now();
    const end = t0 + BADMAC_MS;
    let handshakes = 0;
    const client = async (c) => {
      while (Date.now() < end) {
        await new Promise((resolve) => {
          const ws = new WebSocket(`ws://${HOST}:${PEERS}/stickmesh/peers/1`, { localAddress: `127.0.5.${c + 1}`, perMessageDeflate: false });
          ws.on('message', (d) => {
            const h = decode(d);
            if (h.t !== 'hello') return;
            handshakes++;
            const nonce2 = randomBytes(32);
            ws.send(encode({ t: 'auth', proto: 1, cluster: 'mesh', node: claimed, nonce2, mac: computeMac('wrong', 'c', h.nonce, nonce2, claimed, 'lb2', 'mesh'), tables: [{ id: 'mesh/sessions', type: 'ip', keyLen: 16 }], caps: [] }));
          });
          ws.on('error', () => {});
          ws.on('close', resolve);
        });
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    const secs = (Date.now() - t0) / 1000;
    const s1 = await summary();
    const total = (s) => Object.values(s.refusals ?? {}).reduce((a, b) => a + b, 0);
    const peers = JSON.parse((await get(ADMIN, '/api/peers')).body || '[]');
    const lb1 = peers.find((p) => p.peer === 'lb1');
    out.badmac.push({
      claimedLength: claimed.length, clients: CLIENTS, seconds: Math.round(secs * 10) / 10,
      helloPerSec: Math.round(handshakes / secs),
      refusalsPerSec: Math.round((total(s1) - total(s0)) / secs),
      macChecksPerSec: Math.round(((s1.refusals?.['bad-secret'] ?? 0) - (s0.refusals?.['bad-secret'] ?? 0)) / secs),
      logBytesPerSec: Math.round((logBytes() - l0) / secs),
      refusals: s1.refusals,
      lb1: { state: lb1?.state, refusals: lb1?.refusals, lastError: lb1?.lastError },
    });
    await sleep(2000);
  }
}

if (only.has('frames')) {
  const rss0 = rss();
  const socks = [];
  let peak = rss0;
  const hdr = Buffer.alloc(14);
  hdr[0] = 0x82;
  hdr[1] = 0x80 | 127;
  hdr.writeBigUInt64BE(BigInt(4 * 1024 * 1024), 2);
  hdr.writeUInt32BE(0x01020304, 10);
  const body = randomBytes(4 * 1024 * 1024 - 1);
  const key = randomBytes(16).toString('base64');
  let upgraded = 0;
  let closedEarly = 0;
  await Promise.all(Array.from({ length: 64 }, (_, i) => new Promise((resolve) => {
    const s = net.connect({ host: HOST, port: PEERS, localAddress: `127.0.6.${i + 1}` });
    socks.push(s);
    let got = '';
    s.on('error', () => resolve());
    s.on('close', () => {
      closedEarly++;
      resolve();
    });
    s.on('connect', () => s.write(`GET /stickmesh/peers/1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`));
    s.on('data', (d) => {
      if (got.includes('\r\n\r\n')) return;
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) {
        if (got.startsWith('HTTP/1.1 101')) upgraded++;
        s.write(hdr);
        s.write(body, () => resolve());
      }
    });
  })));
  const t0 = Date.now();
  while (Date.now() - t0 < 8000) {
    peak = Math.max(peak, rss());
    await sleep(200);
  }
  const held = socks.filter((s) => !s.destroyed).length;
  for (const s of socks) s.destroy();
  const sum = await summary();
  out.frames = { upgrades: 64, upgraded, closedByNode: closedEarly, heldAfter8s: held, rssBeforeMiB: Math.round(rss0 / 1048576), rssPeakMiB: Math.round(peak / 1048576), refusals: sum.refusals };
}

out.nodeAlive = !exited;
node.kill('SIGTERM');
backend.close();
console.log(JSON.stringify(out, null, 1));
process.exit(0);
