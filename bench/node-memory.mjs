// Resident memory of running stickmesh nodes (issue #22): at idle, under load, and holding a
// 1,000,000-entry stick table learned from a snapshot and through the peers mesh. bench/
// table-memory.mjs measures the table's heap bytes per entry inside one process; this script
// reads what the operating system charges a node (VmRSS of the node and its children, /proc).
//
// Run: npx tsc -b && node bench/node-memory.mjs [--entries 1000000] [--seconds 5] [--conns 200]
//      [--only idle,table]
//   idle   a mode http node as `node bench/run.js` starts stickmesh-http (admin listener,
//          log-level warn, cookie persistence, two upstreams): RSS once it answered and its
//          socket-duplicating helper child exited, its largest RSS during --seconds of wrk at
//          --conns connections (sampled every 100 ms) and right after, then again 3 s later.
//   table  two mode tcp nodes, lb1 and lb2, sharing a `peers` table `type ip size 1m` that
//          `stick on src` uses. lb2 starts first, alone: its RSS with an empty table (then it is
//          killed). lb1 starts alone from a data-dir snapshot holding --entries entries (written
//          here with the core package): its RSS once restored and 15 s later. lb2 starts again,
//          empty, and pulls every entry from lb1 through the mesh: its RSS once its table holds
//          them all and 15 s later; bytes per entry = (lb2 full, 15 s later - lb2 empty) / entries.
// Each node is pinned to core 0, wrk and the upstreams to core 1 when taskset and 2 CPUs exist.
// Prints each figure, then one JSON line ({"bench":"node-memory",...}).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cpuPlan, freePort, rssOf, spawnLogged, stop, tail, treeRss, waitHttp200, which } from './lib/proc.mjs';
import { repoRoot, startUpstream } from './lib/targets.mjs';
import { runWrk } from './lib/wrk.mjs';
import { runMain } from './lib/script.mjs';

const MB = 2 ** 20;
const bin = path.join(repoRoot, 'packages/cli/bin/stickmesh.js');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mb = (b) => Math.round((b / MB) * 10) / 10;

/** Polls `fn` every `everyMs` until it returns a truthy value; throws `what` after `ms`. */
async function until(fn, ms, what, everyMs = 100) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** The RSS of `pid` and its children once the socket-duplicating helper child has exited (it lingers 1 s). */
async function settledRss(pid) {
  await until(async () => treeRss(pid) === rssOf(pid), 10_000, 'the dup helper child to exit');
  await sleep(500);
  return treeRss(pid);
}

function startNode({ plan, tmp, name, cfg, node }) {
  const file = path.join(tmp, `${name}.cfg`);
  fs.writeFileSync(file, cfg);
  const argv = [process.execPath, bin, 'start', '--config', file, '--node', node];
  const { child, errPath } = spawnLogged(plan.pin ? [plan.taskset, '-c', '0', ...argv] : argv, { name, logDir: tmp, cwd: repoRoot });
  return { child, errPath, pid: child.pid, name };
}

async function answered(h, port, deadlineMs = 30_000) {
  try {
    await waitHttp200(port, { child: h.child, urlPath: '/healthz', deadlineMs });
  } catch (e) {
    throw new Error(`${h.name}: ${e.message}\n${tail(h.errPath)}`);
  }
}

async function liveEntries(adminPort) {
  const r = await fetch(`http://127.0.0.1:${adminPort}/api/tables`);
  const tables = await r.json();
  return tables.find((t) => t.id === 'mesh/sessions')?.live ?? 0;
}

async function idlePhase({ plan, tmp, ups, seconds, conns, wrk }) {
  const [port, admin] = [await freePort(), await freePort()];
  const servers = ups.map((u, i) => `    server s${i + 1} 127.0.0.1:${u.port} cookie s${i + 1}`);
  const cfg = [
    'global', `    admin-bind 127.0.0.1:${admin}`, '    log-level warn', '',
    'defaults', '    mode http', '    maxconn 10000', '    timeout connect 5s', '    timeout client 30s', '    timeout server 30s',
    '    timeout http-keep-alive 30s', '    option http-keep-alive', '',
    'frontend fe', `    bind 127.0.0.1:${port}`, '    default_backend be', '',
    'backend be', '    balance roundrobin', '    cookie SERVERID insert indirect nocache', ...servers, '',
  ].join('\n');
  const h = startNode({ plan, tmp, name: 'http-node', cfg, node: 'bench' });
  try {
    await answered(h, admin);
    await waitHttp200(port, { child: h.child });
    const idle = await settledRss(h.pid);
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, treeRss(h.pid))), 100);
    const w = await runWrk({ wrk, plan, url: `http://127.0.0.1:${port}/`, conns, seconds });
    clearInterval(sampler);
    const after = treeRss(h.pid);
    await sleep(3000);
    const later = treeRss(h.pid);
    return { idleMB: mb(idle), loadPeakMB: mb(Math.max(peak, after)), afterLoadMB: mb(after), after3sMB: mb(later), rps: Math.round(w.rps), conns, seconds };
  } finally {
    await stop(h.child, { signal: 'SIGKILL' });
  }
}

/** A snapshot of `entries` `type ip` entries of table mesh/sessions, as lb1's own file in `dir`. */
async function writeSnapshot(dir, entries) {
  const { StickTable, writeSnapshotFile, snapshotFileFor } = await import(path.join(repoRoot, 'packages/core/dist/index.js'));
  const t = new StickTable(
    { id: 'mesh/sessions', name: 'sessions', type: 'ip', keyLen: 32, size: Math.max(entries, 1), expire: 30 * 60_000, store: [], srvkey: 'name', loc: { file: 'bench', line: 1 } },
    { node: 'lb1' },
  );
  for (let i = 0; i < entries; i++) t.setLocal(`${10 + (i >>> 24)}.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`, i & 1 ? 's2' : 's1');
  if (t.count !== entries) throw new Error(`snapshot table holds ${t.count} of ${entries}`);
  await writeSnapshotFile(dir, [t], snapshotFileFor('lb1'));
}

async function tablePhase({ plan, tmp, ups, entries }) {
  const ports = {};
  for (const k of ['p1', 'p2', 'a1', 'a2', 'x1', 'x2']) ports[k] = await freePort();
  const size = entries >= 1_000_000 ? `${Math.ceil(entries / 1_000_000)}m` : String(Math.max(entries, 1));
  const cfg = (me, admin, proxy, dataDir) => [
    'global', `    admin-bind 127.0.0.1:${admin}`, '    log-level warn', `    data-dir ${dataDir}`, '',
    'peers mesh',
    `    peer lb1 127.0.0.1:${ports.p1}`,
    `    peer lb2 127.0.0.1:${ports.p2}`,
    '    shared-secret bench-node-memory-secret',
    '    resync-timeout 2s',
    `    table sessions type ip size ${size} expire 30m`, '',
    'defaults', '    mode tcp', '    maxconn 10000', '    timeout connect 5s', '    timeout client 30s', '    timeout server 30s', '',
    'frontend fe', `    bind 127.0.0.1:${proxy}`, '    default_backend be', '',
    'backend be', '    balance roundrobin', '    stick on src table mesh/sessions',
    ...ups.map((u, i) => `    server s${i + 1} 127.0.0.1:${u.port}`), '',
  ].join('\n');
  const [d1, d2] = ['lb1-data', 'lb2-data'].map((d) => fs.mkdirSync(path.join(tmp, d), { recursive: true }) ?? path.join(tmp, d));
  const t0 = Date.now();
  await writeSnapshot(d1, entries);
  const snapshotSec = (Date.now() - t0) / 1000;
  const hs = [];
  try {
    // lb2 alone, empty: the baseline. Killed (no snapshot written), started again below.
    let lb2 = startNode({ plan, tmp, name: 'lb2-empty', cfg: cfg('lb2', ports.a2, ports.x2, d2), node: 'lb2' });
    hs.push(lb2);
    await answered(lb2, ports.a2);
    const lb2Empty = await settledRss(lb2.pid);
    await stop(lb2.child, { signal: 'SIGKILL' });
    // lb1 alone, from its snapshot: restoring happens before the listeners open.
    const t1start = Date.now();
    const lb1 = startNode({ plan, tmp, name: 'lb1', cfg: cfg('lb1', ports.a1, ports.x1, d1), node: 'lb1' });
    hs.push(lb1);
    await answered(lb1, ports.a1, 300_000);
    await until(async () => (await liveEntries(ports.a1)) >= entries, 120_000, `lb1 to restore ${entries} entries`, 250);
    const lb1StartSec = (Date.now() - t1start) / 1000;
    const lb1Restored = await settledRss(lb1.pid);
    await sleep(15_000);
    const lb1Restored15s = treeRss(lb1.pid);
    // lb2 again, empty: it pulls every entry from lb1 through the mesh.
    const t2 = Date.now();
    lb2 = startNode({ plan, tmp, name: 'lb2', cfg: cfg('lb2', ports.a2, ports.x2, d2), node: 'lb2' });
    hs.push(lb2);
    await until(async () => (await liveEntries(ports.a2)) >= entries, 300_000, `lb2 to receive ${entries} entries`, 250);
    const meshSec = (Date.now() - t2) / 1000;
    await sleep(1000);
    const lb2Full = treeRss(lb2.pid);
    const lb1AfterSending = treeRss(lb1.pid);
    await sleep(15_000);
    const lb2Full15s = treeRss(lb2.pid);
    return {
      entries,
      lb2EmptyMB: mb(lb2Empty),
      lb1FromSnapshotMB: mb(lb1Restored),
      lb1FromSnapshot15sMB: mb(lb1Restored15s),
      lb1AfterSendingMB: mb(lb1AfterSending),
      lb2FromMeshMB: mb(lb2Full),
      lb2FromMesh15sMB: mb(lb2Full15s),
      bytesPerEntry: Math.round((lb2Full15s - lb2Empty) / entries),
      snapshotSec: Math.round(snapshotSec * 10) / 10,
      lb1StartSec: Math.round(lb1StartSec * 10) / 10,
      meshSec: Math.round(meshSec * 10) / 10,
    };
  } finally {
    for (const h of hs) await stop(h.child, { signal: 'SIGKILL' });
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      entries: { type: 'string', default: '1000000' },
      seconds: { type: 'string', default: '5' },
      conns: { type: 'string', default: '200' },
      only: { type: 'string', default: 'idle,table' },
    },
  });
  const only = new Set(values.only.split(','));
  const wrk = which('wrk');
  if (only.has('idle') && !wrk) throw new Error('wrk not installed (apt-get install -y wrk), or run with --only table');
  const plan = cpuPlan();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stickmesh-node-memory-'));
  fs.chmodSync(tmp, 0o755);
  const ups = [];
  const out = { bench: 'node-memory', node: process.version };
  try {
    for (let i = 1; i <= 2; i++) ups.push(await startUpstream({ nginx: which('nginx'), plan, tmp, index: i, port: await freePort() }));
    if (only.has('idle')) {
      out.http = await idlePhase({ plan, tmp, ups, wrk, seconds: Number(values.seconds), conns: Number(values.conns) });
      const h = out.http;
      console.log(`http node: idle ${h.idleMB} MB, under load (c=${h.conns}, ${h.rps} req/s) peak ${h.loadPeakMB} MB, right after ${h.afterLoadMB} MB, 3 s later ${h.after3sMB} MB`);
    }
    if (only.has('table')) {
      out.table = await tablePhase({ plan, tmp, ups, entries: Number(values.entries) });
      const t = out.table;
      console.log(`tcp node with a peers table: empty ${t.lb2EmptyMB} MB`);
      console.log(`  ${t.entries} entries from a snapshot (lb1, up in ${t.lb1StartSec} s): ${t.lb1FromSnapshotMB} MB, 15 s later ${t.lb1FromSnapshot15sMB} MB, after sending them to lb2 ${t.lb1AfterSendingMB} MB`);
      console.log(`  ${t.entries} entries through the mesh (lb2, ${t.meshSec} s): ${t.lb2FromMeshMB} MB, 15 s later ${t.lb2FromMesh15sMB} MB (${t.bytesPerEntry} B/entry over empty)`);
    }
    console.log(JSON.stringify(out));
    return 0;
  } finally {
    for (const u of ups) await u.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

runMain(main);
