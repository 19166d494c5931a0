/**
 * Multi-node harness: real `stickmesh start` processes (the build `npm test` makes) on 127.0.0.1
 * with free ports, one shared config file whose per-node values come from the environment
 * (`${PROXY_PORT}`, `${PEERS_PORT}`, `${ADMIN_PORT}`), JSON logs captured per node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { freePort, startBackend, type TestBackend } from './backends.js';
import { waitFor } from './wait.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = path.join(root, 'packages/cli/bin/stickmesh.js');

export interface ClusterNode {
  name: string;
  proxyPort: number;
  peersPort: number;
  adminPort: number;
  dataDir: string;
  proc: ChildProcess | undefined;
  logs: Array<Record<string, unknown>>;
  /** Extra environment for this node (e.g. a different secret). */
  env: Record<string, string>;
}

/** What `spawnNode` needs of a node: its name, ports, data directory and extra environment. */
export interface NodeSpec {
  name: string;
  proxyPort: number;
  peersPort: number;
  adminPort: number;
  dataDir: string;
  env: Record<string, string>;
}

/** Calls `onLine` with every complete line `stream` emits (without its '\n'; a last unterminated one is not passed). */
export function forEachLine(stream: Readable, onLine: (line: string) => void): void {
  let partial = '';
  stream.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) onLine(l);
  });
}

/**
 * Starts `stickmesh start` for one node of a shared config file: ports and data directory go in
 * through the environment. `onLine` gets every complete stdout line and every stderr chunk.
 */
export function spawnNode(
  cfgFile: string,
  n: NodeSpec,
  opts: { drainMs: number; secret: string },
  onLine: (line: string, stream: 'stdout' | 'stderr') => void,
): ChildProcess {
  const proc = spawn(process.execPath, [BIN, 'start', '--config', cfgFile, '--node', n.name, '--drain-timeout', String(opts.drainMs)], {
    env: {
      ...process.env,
      PROXY_PORT: String(n.proxyPort),
      PEERS_PORT: String(n.peersPort),
      ADMIN_PORT: String(n.adminPort),
      STICKMESH_DATA_DIR: n.dataDir,
      STICKMESH_PEERS_SECRET: opts.secret,
      STICKMESH_LOG_LEVEL: 'info',
      ...n.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  forEachLine(proc.stdout!, (l) => onLine(l, 'stdout'));
  proc.stderr!.on('data', (d: Buffer) => onLine(d.toString(), 'stderr'));
  return proc;
}

export interface Cluster {
  dir: string;
  cfgFile: string;
  nodes: ClusterNode[];
  start(node: ClusterNode): Promise<void>;
  waitReady(node: ClusterNode, timeoutMs?: number): Promise<{ ready: boolean; reason: string }>;
  kill(node: ClusterNode, signal?: NodeJS.Signals): Promise<number | null>;
  tables(node: ClusterNode): Promise<Array<{ id: string; count: number; digest: string; evictions: number }>>;
  writeConfig(body: string): void;
  stopAll(): Promise<void>;
}

/**
 * `body(peersLines)` returns the config; it must use `${PROXY_PORT}`, `${ADMIN_PORT}` and put
 * `peersLines` (bind + server lines) inside a peers section.
 */
export async function makeCluster(names: string[], body: (peersLines: string) => string): Promise<Cluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-cluster-'));
  const nodes: ClusterNode[] = [];
  for (const name of names) {
    nodes.push({
      name,
      proxyPort: await freePort(),
      peersPort: await freePort(),
      adminPort: await freePort(),
      dataDir: path.join(dir, name),
      proc: undefined,
      logs: [],
      env: {},
    });
  }
  const peersLines = ['    bind "127.0.0.1:${PEERS_PORT}"', ...nodes.map((n) => `    server ${n.name} 127.0.0.1:${n.peersPort}`)].join('\n');
  const cfgFile = path.join(dir, 'cluster.cfg');
  const c: Cluster = {
    dir,
    cfgFile,
    nodes,
    writeConfig(text: string) {
      writeFileSync(cfgFile, text);
    },
    async start(n) {
      n.logs = [];
      const proc = spawnNode(cfgFile, n, { drainMs: 2000, secret: 'test-secret' }, (l, stream) => {
        if (stream === 'stderr') {
          n.logs.push({ stderr: l });
          return;
        }
        try {
          n.logs.push(JSON.parse(l) as Record<string, unknown>);
        } catch {
          n.logs.push({ raw: l });
        }
      });
      n.proc = proc;
      await waitFor(async () => {
        if (proc.exitCode !== null) throw new Error(`${n.name} exited: ${JSON.stringify(n.logs.slice(-5))}`);
        return (await fetch(`http://127.0.0.1:${n.adminPort}/healthz`)).ok;
      }, 15000, `${n.name} to serve /healthz`);
    },
    async waitReady(n, timeoutMs = 15000) {
      return waitFor(async () => {
        const r = await fetch(`http://127.0.0.1:${n.adminPort}/ready`);
        const j = (await r.json()) as { ready: boolean; reason: string };
        return r.status === 200 ? j : undefined;
      }, timeoutMs, `${n.name} /ready`);
    },
    async kill(n, signal = 'SIGKILL') {
      const p = n.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return p?.exitCode ?? null;
      const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
      p.kill(signal);
      return exited;
    },
    async tables(n) {
      const r = await fetch(`http://127.0.0.1:${n.adminPort}/tables`);
      return (await r.json()) as Array<{ id: string; count: number; digest: string; evictions: number }>;
    },
    async stopAll() {
      await Promise.all(nodes.map((n) => c.kill(n, 'SIGKILL')));
    },
  };
  c.writeConfig(body(peersLines));
  return c;
}

export interface BackedCluster {
  c: Cluster;
  bs: TestBackend[];
  nodes: [ClusterNode, ClusterNode, ClusterNode];
  /** Stops every node, then every backend. */
  close(): Promise<void>;
}

/**
 * Three backends web1..web3 and a three-node cluster n1..n3 on `cfg(backends)`, every node
 * started and ready (resynced). For a file's beforeAll; `close` is its afterAll.
 */
export async function startBackedCluster(cfg: (bs: TestBackend[]) => (peersLines: string) => string): Promise<BackedCluster> {
  const bs: TestBackend[] = [];
  for (let i = 1; i <= 3; i++) bs.push(await startBackend(`web${i}`));
  const c = await makeCluster(['n1', 'n2', 'n3'], cfg(bs));
  await Promise.all(c.nodes.map((n) => c.start(n)));
  await Promise.all(c.nodes.map((n) => c.waitReady(n)));
  return {
    c,
    bs,
    nodes: c.nodes as [ClusterNode, ClusterNode, ClusterNode],
    async close() {
      await c.stopAll();
      for (const b of bs) await b.close();
    },
  };
}
