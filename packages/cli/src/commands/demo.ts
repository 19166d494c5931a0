/**
 * `stickmesh demo` (what `npm start` runs): three demo backends in this process and three
 * stickmesh nodes as child processes on 127.0.0.1-3 (proxy :8080, peers :10000, admin :9100),
 * replicating a `stick on src` table, plus instructions to watch stickiness survive `kill -9`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDemoBackend } from './demo-backend.js';
import { parseCommand } from './args.js';

export const DEMO_HELP = `Usage: stickmesh demo

Start a local demo cluster: backends web1-web3 on 127.0.0.1:9001-9003, and three stickmesh nodes
node1-node3 on http://127.0.0.1:8080, http://127.0.0.2:8080, http://127.0.0.3:8080 (peers on
port 10000, admin on port 9100 of each address) using examples/cluster.cfg. Stop with Ctrl-C.
`;

const NODES = ['node1', 'node2', 'node3'];

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
  const dataRoot = mkdtempSync(path.join(os.tmpdir(), 'stickmesh-demo-'));
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  const startNode = (name: string, i: number): void => {
    const ip = `127.0.0.${i + 1}`;
    const child = spawn(process.execPath, [bin, 'start', '--config', cfg, '--node', name], {
      env: { ...process.env, NODE_IP: ip, STICKMESH_DATA_DIR: path.join(dataRoot, name), STICKMESH_PEERS_SECRET: process.env.STICKMESH_PEERS_SECRET ?? 'demo-secret' },
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
      process.stdout.write(
        `\n${name} (pid ${child.pid}) exited (${sig ?? code}). The other nodes keep every mapping.\n` +
          `Restart it to watch it resync: NODE_IP=${ip} STICKMESH_DATA_DIR=${path.join(dataRoot, name)} STICKMESH_PEERS_SECRET=demo-secret node ${path.relative(process.cwd(), bin)} start -c ${path.relative(process.cwd(), cfg)} -L ${name}\n` +
          `   then: curl -s http://${ip}:9100/ready\n\n`,
      );
    });
  };
  NODES.forEach(startNode);
  process.stdout.write(
    [
      '',
      'stickmesh demo cluster',
      '  backends: web1 127.0.0.1:9001  web2 127.0.0.1:9002  web3 127.0.0.1:9003',
      ...NODES.map((n, i) => `  ${n}: http://127.0.0.${i + 1}:8080  (peers 127.0.0.${i + 1}:10000, admin http://127.0.0.${i + 1}:9100/ready) pid ${children.get(n)!.pid}`),
      '',
      'Try it: clients stick by source address, through any node:',
      '  curl -s --interface 127.0.0.50 http://127.0.0.1:8080/     # first visit: a server is chosen on node1',
      '  curl -s --interface 127.0.0.50 http://127.0.0.2:8080/     # node2 sends you to the same server',
      `  kill -9 ${children.get('node1')!.pid}                                      # node1 dies`,
      '  curl -s --interface 127.0.0.50 http://127.0.0.3:8080/     # still the same server, via node3',
      '  curl -s http://127.0.0.2:9100/api/tables                  # the replicated table and its digest',
      '',
      'Dashboard (live, all three nodes): http://127.0.0.1:9100/',
      '  npx stickmesh peers --admin http://127.0.0.1:9100          # peers, lag, pending updates',
      '  npx stickmesh explain 127.0.0.50                           # how that client is routed',
      '  curl -s http://127.0.0.1:9100/metrics                       # Prometheus metrics',
      '',
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
  return new Promise<number>((resolve) => {
    const stop = () => {
      if (stopping) return;
      stopping = true;
      const live = [...children.values()].filter((c) => c.exitCode === null && c.signalCode === null);
      let left = live.length;
      const done = () => {
        for (const b of backends) b.close();
        resolve(0);
      };
      if (left === 0) done();
      for (const c of live) {
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
