/**
 * Multi-node behaviour with real node processes: replication, kill -9 failover, restart and
 * resync, readiness, concurrent writers converging, reload keeping tables, snapshots across a
 * full-cluster cold start, auth refusal, garbage on the peers port, a table full at `size`.
 */
import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { type TestBackend } from './helpers/backends.js';
import { request } from './helpers/client.js';
import { makeCluster, type Cluster, type ClusterNode } from './helpers/cluster.js';
import { waitFor } from './helpers/wait.js';
import { useScope } from './helpers/scope.js';

const scope = useScope();
const backends = (n: number): Promise<TestBackend[]> => scope.backends(n);

function clusterCfg(bs: TestBackend[], opts: { stick?: string; table?: string; extraPeers?: string; checks?: boolean } = {}) {
  return (peersLines: string) => `
global
    admin-bind "127.0.0.1:\${ADMIN_PORT}"
peers mesh
${peersLines}
    shared-secret "\${STICKMESH_PEERS_SECRET}"
    resync-timeout 3s
    ${opts.table ?? 'table sessions type ip size 100k expire 30m'}
${opts.extraPeers ?? ''}
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    option redispatch
frontend web
    bind "127.0.0.1:\${PROXY_PORT}"
    default_backend app
backend app
    balance roundrobin
    ${opts.stick ?? 'stick on src table mesh/sessions'}
${bs.map((b) => `    server ${b.name} 127.0.0.1:${b.port}${opts.checks ? ' check inter 200ms fall 1 rise 1' : ''}`).join('\n')}
`;
}

async function cluster(names: string[], body: (p: string) => string): Promise<Cluster> {
  const c = await makeCluster(names, body);
  scope.defer(() => c.stopAll());
  return c;
}

/** The server a client (source address `src`) reaches through `node`. */
async function served(node: ClusterNode, src: string): Promise<string> {
  const r = await request(node.proxyPort, { localAddress: src });
  expect(r.status).toBe(200);
  return String(r.headers['x-served-by']);
}

function clientAddr(i: number): string {
  return `127.10.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}

async function converged(c: Cluster, nodes: ClusterNode[], expected?: number): Promise<boolean> {
  const views = await Promise.all(nodes.map((n) => c.tables(n)));
  const first = views[0]![0]!;
  if (expected !== undefined && first.count !== expected) return false;
  return views.every((v) => v[0]!.digest === first.digest && v[0]!.count === first.count);
}

describe('peers mesh across node processes', () => {
  it('replicates stick entries and routes every client to the same server after kill -9 of its node', async () => {
    const bs = await backends(3);
    const c = await cluster(['n1', 'n2', 'n3'], clusterCfg(bs));
    const [n1, n2, n3] = c.nodes as [ClusterNode, ClusterNode, ClusterNode];
    await Promise.all(c.nodes.map((n) => c.start(n)));
    await Promise.all(c.nodes.map((n) => c.waitReady(n)));
    // An isolated write reaches the other nodes within the 50 ms window the failover guarantee names.
    for (let i = 0; i < 5; i++) {
      await served(n1, clientAddr(1000 + i));
      await new Promise((r) => setTimeout(r, 50));
      for (const n of [n2, n3]) expect((await c.tables(n))[0]!.count).toBe(i + 1);
    }
    const CLIENTS = 300;
    const first = new Map<string, string>();
    for (let i = 0; i < CLIENTS; i++) first.set(clientAddr(i), await served(n1, clientAddr(i)));
    expect(new Set(first.values()).size).toBe(3);
    await waitFor(() => converged(c, c.nodes, CLIENTS + 5), 10000, 'tables to converge');
    await c.kill(n1);
    let same = 0;
    for (let i = 0; i < CLIENTS; i++) {
      const via = i % 2 === 0 ? n2 : n3;
      if ((await served(via, clientAddr(i))) === first.get(clientAddr(i))) same++;
    }
    expect(same).toBe(CLIENTS);
    // The dead node comes back, pulls a full copy, and is ready with every entry.
    await c.start(n1);
    const ready = await c.waitReady(n1);
    expect(ready.reason).toMatch(/resynced/);
    await waitFor(() => converged(c, c.nodes, CLIENTS + 5), 10000, 'restarted node to converge');
    for (let i = 0; i < 30; i++) expect(await served(n1, clientAddr(i))).toBe(first.get(clientAddr(i)));
  });

  it('converges when two nodes write the same keys to different servers at the same time', async () => {
    const bs = await backends(2);
    // store-request without match: each node balances on its own, so the writes conflict.
    const c = await cluster(['a', 'b', 'c'], clusterCfg(bs, { stick: 'stick store-request src table mesh/sessions' }));
    await Promise.all(c.nodes.map((n) => c.start(n)));
    await Promise.all(c.nodes.map((n) => c.waitReady(n)));
    const [a, b] = c.nodes as [ClusterNode, ClusterNode];
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => Promise.all([served(a, clientAddr(i)), served(b, clientAddr(i)), served(a, clientAddr(i))])),
    );
    await waitFor(() => converged(c, c.nodes, 50), 10000, 'conflicting writes to converge');
  });

  it('readiness waits for the first resync and reports a timeout when no peer answers', async () => {
    const bs = await backends(1);
    const c = await cluster(['solo', 'ghost'], clusterCfg(bs));
    const [solo] = c.nodes as [ClusterNode];
    await c.start(solo);
    const r = await fetch(`http://127.0.0.1:${solo.adminPort}/ready`);
    expect(r.status).toBe(503);
    const ready = await c.waitReady(solo, 10000);
    expect(ready.reason).toMatch(/timeout/);
  });

  it('keeps tables and open connections across a SIGHUP reload, and refuses a broken config', async () => {
    const bs = await backends(3);
    const c = await cluster(['r1'], clusterCfg(bs.slice(0, 2)));
    const [r1] = c.nodes as [ClusterNode];
    await c.start(r1);
    await c.waitReady(r1);
    const first = new Map<string, string>();
    for (let i = 0; i < 20; i++) first.set(clientAddr(i), await served(r1, clientAddr(i)));
    c.writeConfig(clusterCfg(bs)(['    bind "127.0.0.1:${PEERS_PORT}"', `    server r1 127.0.0.1:${r1.peersPort}`].join('\n')));
    r1.proc!.kill('SIGHUP');
    await waitFor(() => r1.logs.some((l) => l.msg === 'reloaded'), 5000, 'reload').catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(r1.logs.filter((l) => l.msg !== 'request').slice(-5))}`);
    });
    expect((await c.tables(r1))[0]!.count).toBe(20);
    for (let i = 0; i < 20; i++) expect(await served(r1, clientAddr(i))).toBe(first.get(clientAddr(i)));
    const newcomers = new Set<string>();
    for (let i = 100; i < 130; i++) newcomers.add(await served(r1, clientAddr(i)));
    expect(newcomers.has('web3')).toBe(true);
    c.writeConfig('frontend broken\n    bind\n');
    r1.proc!.kill('SIGHUP');
    await waitFor(() => r1.logs.some((l) => l.msg === 'reload failed; keeping the running config'), 5000, 'failed reload');
    expect(await served(r1, clientAddr(0))).toBe(first.get(clientAddr(0)));
  });

  it('restores tables from snapshots after a full-cluster stop', async () => {
    const bs = await backends(3);
    const c = await cluster(['s1', 's2'], clusterCfg(bs));
    await Promise.all(c.nodes.map((n) => c.start(n)));
    await Promise.all(c.nodes.map((n) => c.waitReady(n)));
    const [s1, s2] = c.nodes as [ClusterNode, ClusterNode];
    const first = new Map<string, string>();
    for (let i = 0; i < 40; i++) first.set(clientAddr(i), await served(s1, clientAddr(i)));
    await waitFor(() => converged(c, c.nodes, 40), 10000, 'replication');
    expect(await c.kill(s1, 'SIGTERM')).toBe(0);
    expect(await c.kill(s2, 'SIGTERM')).toBe(0);
    await Promise.all(c.nodes.map((n) => c.start(n)));
    await Promise.all(c.nodes.map((n) => c.waitReady(n)));
    expect((await c.tables(s2))[0]!.count).toBe(40);
    for (let i = 0; i < 40; i++) expect(await served(i % 2 ? s1 : s2, clientAddr(i))).toBe(first.get(clientAddr(i)));
  });

  it('refuses a peer with the wrong secret and survives garbage on the peers port', async () => {
    const bs = await backends(2);
    const c = await cluster(['g1', 'g2'], clusterCfg(bs));
    const [g1, g2] = c.nodes as [ClusterNode, ClusterNode];
    g2.env = { STICKMESH_PEERS_SECRET: 'wrong' };
    await Promise.all(c.nodes.map((n) => c.start(n)));
    await served(g1, clientAddr(1));
    await waitFor(() => [...g1.logs, ...g2.logs].some((l) => /secret|auth|mac/i.test(String(l.reason ?? l.msg ?? ''))), 8000, 'auth refusal logged').catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify([...g1.logs, ...g2.logs].filter((l) => l.msg !== 'request').slice(-8))}`);
    });
    expect((await c.tables(g2))[0]!.count).toBe(0);
    // Raw garbage, then a garbage WebSocket upgrade, on g1's peers port.
    for (const payload of [Buffer.from('\x00\x01garbage\r\n\r\n'), Buffer.from('GET /stickmesh/peers/1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n\x82\x85\x00\x00\x00\x00\xff\xff\xff\xff\xff')]) {
      await new Promise<void>((resolve) => {
        const s = net.connect(g1.peersPort, '127.0.0.1', () => s.end(payload));
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.resume();
      });
    }
    expect(g1.proc!.exitCode).toBeNull();
    expect(await served(g1, clientAddr(2))).toMatch(/^web/);
    expect((await c.tables(g1))[0]!.count).toBe(2);
  });

  it('replicates over wss when the peers section names a certificate', async () => {
    const bs = await backends(2);
    const c = await cluster(['w1', 'w2'], (p) => clusterCfg(bs, { extraPeers: `    tls-cert "\${TLS_DIR}/c.pem"\n    tls-key "\${TLS_DIR}/k.pem"\n    tls-ca "\${TLS_DIR}/c.pem"` })(p));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(c.dir, 'k.pem'), '-out', path.join(c.dir, 'c.pem'),
      '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    for (const n of c.nodes) n.env = { TLS_DIR: c.dir };
    await Promise.all(c.nodes.map((n) => c.start(n)));
    await Promise.all(c.nodes.map((n) => c.waitReady(n)));
    const [w1, w2] = c.nodes as [ClusterNode, ClusterNode];
    const s = await served(w1, clientAddr(7));
    await waitFor(() => converged(c, c.nodes, 1), 5000, 'replication over wss');
    expect(await served(w2, clientAddr(7))).toBe(s);
    const peers = (await (await fetch(`http://127.0.0.1:${w1.adminPort}/peers`)).json()) as Array<{ state: string }>;
    expect(peers[0]!.state).toBe('live');
  });

  it('keeps a table at its size by evicting the oldest entries', async () => {
    const bs = await backends(2);
    const c = await cluster(['f1'], clusterCfg(bs, { table: 'table sessions type ip size 50 expire 30m' }));
    const [f1] = c.nodes as [ClusterNode];
    await c.start(f1);
    for (let i = 0; i < 80; i++) await served(f1, clientAddr(i));
    const t = (await c.tables(f1))[0]!;
    expect(t.count).toBe(50);
    expect(t.evictions).toBe(30);
    expect(f1.proc!.exitCode).toBeNull();
  });
});
