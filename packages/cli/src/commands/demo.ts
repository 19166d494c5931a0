/**
 * `stickmesh demo` (what `npm start` runs): three demo backends in this process and three
 * stickmesh nodes as child processes on 127.0.0.1-3 (proxy :8080, peers :10000, admin :9100),
 * replicating a `stick on src` table, plus instructions to watch stickiness survive `kill -9`.
 * Its temporary directory (the nodes' snapshots, and DEMO_RECORD, by which the CLI finds the
 * demo's nodes without flags) is removed when the demo stops on SIGINT or SIGTERM; the directory
 * of a demo killed with -9 is removed by the next demo.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDemoBackend } from './demo-backend.js';
import { parseHostPort, urlHost } from '@stickmesh/core';
import { parseCommand } from './args.js';
import { DEMO_DIR_PREFIX, DEMO_RECORD, removeDeadDemos, type DemoRecord } from '../admin/targets.js';

export const DEMO_HELP = `Usage: stickmesh demo

Start a local demo cluster: backends web1-web3 on 127.0.0.1:9001-9003, and three stickmesh nodes
node1-node3 on http://127.0.0.1:8080, http://127.0.0.2:8080, http://127.0.0.3:8080 (peers on
port 10000, admin and dashboard on http://127.0.0.N:9100/) using examples/cluster.cfg.
While it runs, the Operate commands (peers, server, table, explain) without --admin or --config
ask its nodes in turn, so they keep working after a node is killed.
Stop with Ctrl-C (or SIGTERM): the nodes stop and the demo's temporary directory is removed.
`;

const NODES = ['node1', 'node2', 'node3'];

/**
 * The steps the demo prints (node1's pid in place of `<pid of node1>`), the same as README.md's
 * "Try it" block: test/readme-steps.test.ts runs that block and checks the two are equal.
 */
export const DEMO_STEPS: readonly string[] = [
  'curl -s -b /tmp/jar -c /tmp/jar --resolve app.test:8080:127.0.0.1 http://app.test:8080/   # node1 picks web1: visit 1',
  'curl -s -b /tmp/jar -c /tmp/jar --resolve app.test:8080:127.0.0.2 http://app.test:8080/   # node2: web1 again, visit 2',
  'kill -9 <pid of node1>',
  'curl -s -b /tmp/jar -c /tmp/jar --resolve app.test:8080:127.0.0.3 http://app.test:8080/   # node3: web1, visit 3',
  'npx stickmesh peers                    # node1 is down: the CLI says so and asks node2',
  'npx stickmesh server set app/web1 drain --auto-maint   # web1 takes no new clients, on every node',
  'curl -s -b /tmp/jar -c /tmp/jar --resolve app.test:8080:127.0.0.3 http://app.test:8080/   # yours stays: visit 4',
  'npx stickmesh server show              # web1 in drain, 1 binding left (your stick entry)',
  'npx stickmesh table clear mesh/sessions --key 127.0.0.1   # drop it: web1 goes to maint',
  'curl -s http://127.0.0.2:9100/api/servers/app/web1   # "admin": "maint", on node2 as on node3',
];

function live(c: ChildProcess | undefined): boolean {
  return c !== undefined && c.exitCode === null && c.signalCode === null;
}

export async function runDemo(argv: string[]): Promise<number> {
  const p = parseCommand(argv, DEMO_HELP, {});
  if (p.exit !== undefined) return p.exit;
  const cfg = fileURLToPath(new URL('../../../../examples/cluster.cfg', import.meta.url));
  const bin = fileURLToPath(new URL('../../bin/stickmesh.js', import.meta.url));
  const backends: import('node:http').Server[] = [];
  try {
    for (let i = 1; i <= 3; i++) backends.push(await startDemoBackend(`web${i}`, '127.0.0.1', 9000 + i));
  } catch (err) {
    process.stderr.write(`demo: cannot start demo backends on 127.0.0.1:9001-9003: ${(err as Error).message}\n`);
    for (const b of backends) b.close();
    return 1;
  }
  removeDeadDemos();
  const dataRoot = mkdtempSync(path.join(os.tmpdir(), DEMO_DIR_PREFIX));
  const record: DemoRecord = { pid: process.pid, config: cfg, nodes: NODES.map((node, i) => ({ url: `http://127.0.0.${i + 1}:9100`, node })) };
  writeFileSync(path.join(dataRoot, DEMO_RECORD), JSON.stringify(record) + '\n');
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  // Three nodes share this machine: each would otherwise take a thread per CPU (the default), and a
  // thread is a V8 isolate of about 25 MB. Two each still show the threads; the user's own
  // STICKMESH_NBTHREAD wins.
  const threads = process.env.STICKMESH_NBTHREAD ?? String(Math.min(2, os.availableParallelism()));
  const startNode = (name: string, i: number): void => {
    const ip = `127.0.0.${i + 1}`;
    const child = spawn(process.execPath, [bin, 'start', '--config', cfg, '--node', name], {
      env: { ...process.env, NODE_IP: ip, STICKMESH_DATA_DIR: path.join(dataRoot, name), STICKMESH_PEERS_SECRET: process.env.STICKMESH_PEERS_SECRET ?? 'demo-secret', STICKMESH_NBTHREAD: threads },
      // The IPC channel lets a node notice the demo is gone (even after kill -9) and stop itself.
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    children.set(name, child);
    child.stdout!.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        if (!line) continue;
        try {
          const j = JSON.parse(line) as Record<string, unknown>;
          if (j.msg === 'request') {
            process.stdout.write(`${name}: ${j.client_ip} -> ${j.server} ${j.status} ${j.decided_by}${j.stick ? ` (stick ${j.stick})` : ''}\n`);
          } else process.stdout.write(`${name}: ${j.msg}${j.reason ? ` (${j.reason})` : ''}\n`);
        } catch {
          process.stdout.write(`${name}: ${line}\n`);
        }
      }
    });
    child.on('exit', (code, sig) => {
      if (stopping) return;
      const other = NODES.find((n) => n !== name && live(children.get(n)));
      const oi = other ? NODES.indexOf(other) + 1 : undefined;
      process.stdout.write(
        `\n${name} (pid ${child.pid}) exited (${sig ?? code}). The other nodes keep every mapping` +
          (oi !== undefined ? `; ${other}'s dashboard: http://127.0.0.${oi}:9100/ (the CLI asks ${other} by itself).\n` : '.\n') +
          `Restart it to watch it resync: NODE_IP=${ip} STICKMESH_NBTHREAD=${threads} STICKMESH_DATA_DIR=${path.join(dataRoot, name)} STICKMESH_PEERS_SECRET=demo-secret node ${path.relative(process.cwd(), bin)} start -c ${path.relative(process.cwd(), cfg)} -L ${name}\n` +
          `   then: curl -s http://${ip}:9100/ready\n\n`,
      );
    });
  };
  // Output whose reader is gone (a pipe into tee or a pager that the same Ctrl-C stopped) is
  // dropped: EPIPE must not end the demo before it has stopped its nodes and removed its directory.
  process.stdout.on('error', function onDemoOutputGone() {});
  NODES.forEach(startNode);
  const rel = (f: string): string => path.relative(process.cwd(), f) || f;
  process.stdout.write(
    [
      '',
      `stickmesh demo cluster (config ${rel(cfg)}, temporary files in ${dataRoot})`,
      `  backends: web1 127.0.0.1:9001  web2 127.0.0.1:9002  web3 127.0.0.1:9003; ${threads} data-plane thread(s) per node (STICKMESH_NBTHREAD)`,
      ...NODES.map((n, i) => `  ${n}: proxy http://127.0.0.${i + 1}:8080  dashboard http://127.0.0.${i + 1}:9100/  peers 127.0.0.${i + 1}:10000  pid ${children.get(n)!.pid}`),
      '',
      'Try it, from another terminal in this directory. The curl lines give the three nodes one site',
      "name (app.test), as DNS or a VIP would, so the cookie jar carries the app's session from node to",
      'node and its visit count goes on:',
      ...DEMO_STEPS.map((l) => `  ${l.replace('<pid of node1>', String(children.get('node1')!.pid))}`),
      '',
      'Dashboards (live, all three nodes): ' + NODES.map((_, i) => `http://127.0.0.${i + 1}:9100/`).join('  '),
      'The CLI finds these nodes by itself while the demo runs. To name them (a script, another user):',
      `  npx stickmesh peers --config ${path.resolve(cfg)}   # or export STICKMESH_CONFIG=that file`,
      '',
      `Ctrl-C stops everything and removes ${dataRoot}.`,
      '',
    ].join('\n'),
  );
  return new Promise<number>((resolve) => {
    const stop = () => {
      if (stopping) return;
      stopping = true;
      const running = [...children.values()].filter(live);
      let left = running.length;
      const done = () => {
        for (const b of backends) b.close();
        try {
          rmSync(dataRoot, { recursive: true, force: true });
          process.stdout.write(`demo stopped; removed ${dataRoot}\n`);
        } catch (err) {
          process.stderr.write(`demo: cannot remove ${dataRoot}: ${(err as Error).message}\n`);
        }
        resolve(0);
      };
      if (left === 0) done();
      for (const c of running) {
        c.once('exit', () => {
          if (--left === 0) done();
        });
        c.kill('SIGTERM');
      }
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export const DEMO_BACKENDS_HELP = `Usage: stickmesh demo-backends [[HOST:]PORT ...]

Run the demo web application (what 'stickmesh demo' puts behind its nodes) on each address given,
named web1, web2, ... in that order; default 127.0.0.1:9001 127.0.0.1:9002 127.0.0.1:9003, the
servers of examples/demo.cfg and examples/cluster.cfg. Each answers 'served by NAME; session ID;
visit N' and counts visits per app_session cookie, and answers /health. Stop with Ctrl-C.
`;

/** `stickmesh demo-backends`: the demo backends alone, in the foreground, until SIGINT/SIGTERM. */
export async function runDemoBackends(argv: string[]): Promise<number> {
  const p = parseCommand(argv, DEMO_BACKENDS_HELP, {}, true);
  if (p.exit !== undefined) return p.exit;
  const addrs: Array<{ host: string; port: number }> = [];
  for (const a of p.positionals.length > 0 ? p.positionals : ['127.0.0.1:9001', '127.0.0.1:9002', '127.0.0.1:9003']) {
    const hp = parseHostPort(a.includes(':') ? a : `127.0.0.1:${a}`);
    if (typeof hp === 'string' || hp.port === undefined || hp.port === 0) {
      process.stderr.write(`stickmesh: '${a}' is not [HOST:]PORT\n\n${DEMO_BACKENDS_HELP}`);
      return 2;
    }
    addrs.push({ host: hp.host === '' ? '127.0.0.1' : hp.host, port: hp.port });
  }
  const servers: import('node:http').Server[] = [];
  for (const [i, a] of addrs.entries()) {
    try {
      servers.push(await startDemoBackend(`web${i + 1}`, a.host, a.port));
    } catch (err) {
      process.stderr.write(`demo-backends: cannot listen on ${a.host}:${a.port}: ${(err as Error).message}\n`);
      for (const s of servers) s.close();
      return 1;
    }
    process.stdout.write(`web${i + 1} listening on http://${urlHost(a.host)}:${a.port}/\n`);
  }
  process.stdout.write('Ctrl-C stops them.\n');
  return new Promise<number>((resolve) => {
    const stop = (): void => {
      for (const s of servers) {
        s.close();
        s.closeAllConnections();
      }
      resolve(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
