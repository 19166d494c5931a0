/**
 * Cluster-wide admin state on three real node processes: a drain, a weight and a maint set through
 * one node apply on every node and name that node; --auto-maint counts the bindings of the whole
 * cluster (a connection held open on another node delays it); a node killed with -9 comes back
 * with the state; a node override affects that node only and is labelled.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type http from 'node:http';
import type { TestBackend } from './helpers/backends.js';
import { request } from './helpers/client.js';
import { startBackedCluster, type BackedCluster, type Cluster, type ClusterNode } from './helpers/cluster.js';
import { waitFor } from './helpers/wait.js';
import { adminCall, clearEverywhere, runCli, type ApiAnswer } from './helpers/admin.js';

const TOKEN = 'state-test-token';

const cfg = (bs: TestBackend[]) => (peersLines: string) => `
global
    admin-bind "127.0.0.1:\${ADMIN_PORT}"
    admin-token ${TOKEN}
peers mesh
${peersLines}
    shared-secret "\${STICKMESH_PEERS_SECRET}"
    resync-timeout 3s
    table sessions type ip size 100k expire 30m
defaults
    mode http
    timeout connect 1s
    timeout client 20s
    timeout server 20s
    option redispatch
frontend web
    bind "127.0.0.1:\${PROXY_PORT}"
    default_backend app
backend app
    balance roundrobin
    stick on src table mesh/sessions
${bs.map((b, i) => `    server ${b.name} 127.0.0.1:${b.port} check inter 200ms fall 1 rise 1${i === 1 ? ' weight 5' : ''}`).join('\n')}
`;

let bs: TestBackend[] = [];
let c: Cluster;
let n1: ClusterNode, n2: ClusterNode, n3: ClusterNode;

const api = (n: ClusterNode, method: string, p: string, body?: unknown): Promise<ApiAnswer> => adminCall(n, TOKEN, method, p, body);

const web = async (n: ClusterNode, s: string) => (await api(n, 'GET', `/api/servers/app/${s}`)).json;

async function served(n: ClusterNode, src: string): Promise<string> {
  const r = await request(n.proxyPort, { localAddress: src });
  expect(r.status).toBe(200);
  return String(r.headers['x-served-by']);
}

const cli = (n: ClusterNode, args: string[]) => runCli(n, TOKEN, args);
const clearSessions = () => clearEverywhere([n1, n2, n3], TOKEN, 'mesh/sessions');

let cluster: BackedCluster | undefined;
beforeAll(async () => {
  cluster = await startBackedCluster((backends) => cfg(backends));
  ({ c, bs } = cluster);
  [n1, n2, n3] = cluster.nodes;
}, 60000);

afterAll(async () => {
  await cluster?.close();
});

describe('cluster-wide server admin state', () => {
  it('a healthy checked server shows its check result, not "pending"', async () => {
    const j = await waitFor(async () => {
      const s = await web(n2, 'web1');
      return s.check !== 'pending' ? s : undefined;
    }, 5000, 'a completed check');
    expect(j.check).toMatch(/^L4OK/);
    expect(j.adminSet).toEqual({ scope: 'config' });
    expect(j.weightSet).toEqual({ scope: 'config' });
  });

  it('a drain through node1 holds on every node; auto-maint waits for a connection held open on node2', async () => {
    await clearSessions();
    const stuck: string[] = [];
    for (let i = 1; stuck.length < 3 && i < 200; i++) {
      const src = `127.44.0.${i}`;
      if ((await served(n1, src)) === 'web1') stuck.push(src);
    }
    expect(stuck.length).toBe(3);
    const set = await cli(n1, ['server', 'set', 'app/web1', 'drain', '--auto-maint']);
    expect(set.code, set.stderr).toBe(0);
    for (const n of [n2, n3]) {
      const j = await waitFor(async () => {
        const s = await web(n, 'web1');
        return s.admin === 'drain' ? s : undefined;
      }, 5000, `${n.name} sees the drain`);
      expect(j.adminSet).toMatchObject({ scope: 'cluster', node: 'n1' });
      expect(j.adminSet.at).toBeGreaterThan(Date.now() - 60_000);
      expect(j.drain).toMatchObject({ by: 'n1', autoMaint: true, bindings: 3 });
    }
    // Bound clients stay on web1 through every node; new ones never get it.
    for (const n of [n2, n3]) for (const src of stuck) expect(await served(n, src)).toBe('web1');
    for (const n of [n2, n3]) for (let i = 1; i <= 20; i++) expect(await served(n, `127.45.${n === n2 ? 2 : 3}.${i}`)).not.toBe('web1');
    const shown = await cli(n3, ['server', 'show']);
    expect(shown.stdout).toMatch(/app\/web1\s.*drain \(n1, /);

    // A request held open on node2 to web1; then the sticky entries go: only node2's connection is left.
    const held: http.ServerResponse[] = [];
    bs[0]!.handler = (_req, res) => held.push(res);
    const pending = request(n2.proxyPort, { localAddress: stuck[0]! });
    await waitFor(() => held.length === 1, 5000, 'request held by web1');
    await waitFor(async () => (await web(n1, 'web1')).drain?.bindings === 4, 5000, "node1 counts the 3 entries and node2's connection");
    await clearSessions();
    const j1 = await waitFor(async () => {
      const s = await web(n1, 'web1');
      return s.drain?.bindings === 1 && s.drain.unreported === undefined ? s : undefined;
    }, 5000, "node1 counts node2's open connection");
    expect(j1.admin).toBe('drain');
    expect(j1.activeConns).toBe(0);
    await new Promise((r) => setTimeout(r, 1500));
    for (const n of [n1, n2, n3]) expect((await web(n, 'web1')).admin).toBe('drain');
    bs[0]!.handler = undefined;
    held[0]!.writeHead(200, { 'x-served-by': 'web1', 'content-length': '2' }).end('ok');
    expect((await pending).status).toBe(200);
    for (const n of [n1, n2, n3]) {
      const j = await waitFor(async () => {
        const s = await web(n, 'web1');
        return s.admin === 'maint' ? s : undefined;
      }, 5000, `${n.name}: auto maint`);
      expect(j.drain).toMatchObject({ ended: 'no-bindings', by: 'n1' });
      expect(j.adminSet.scope).toBe('cluster');
    }
    await waitFor(() => [n1, n2, n3].some((n) => n.logs.some((l) => typeof l.msg === 'string' && l.msg.includes('app/web1 drained: now in maint'))), 3000, 'the drain log line');
    for (const n of [n1, n2, n3]) for (let i = 1; i <= 6; i++) expect(await served(n, `127.46.0.${i}`)).not.toBe('web1');
  });

  it('a weight set through node2 applies everywhere and names node2', async () => {
    const r = await cli(n2, ['server', 'set', 'app/web2', 'weight', '0']);
    expect(r.code, r.stderr).toBe(0);
    for (const n of [n1, n3]) {
      const j = await waitFor(async () => {
        const s = await web(n, 'web2');
        return s.weight === 0 ? s : undefined;
      }, 5000, `${n.name} sees weight 0`);
      expect(j.weightSet).toMatchObject({ scope: 'cluster', node: 'n2' });
      expect(j.admin).toBe('ready');
    }
    // web1 is in maint, web2 has weight 0: new clients all go to web3.
    for (const n of [n1, n3]) for (let i = 1; i <= 6; i++) expect(await served(n, `127.47.${n === n1 ? 1 : 3}.${i}`)).toBe('web3');
    // Clearing the cluster's records (through another node) returns every node to the config.
    expect((await api(n1, 'PUT', '/api/servers/app/web2', { clear: true })).json).toMatchObject({ weight: 5, weightSet: { scope: 'config' } });
    await waitFor(async () => {
      const s = await web(n3, 'web2');
      return s.weight === 5 && s.weightSet.scope === 'config';
    }, 5000, 'weight back to the config on n3');
  });

  it('a node override on node3 affects node3 only and is labelled; clear drops it', async () => {
    const r = await cli(n3, ['server', 'set', 'app/web3', 'maint', '--node-only']);
    expect(r.code, r.stderr).toBe(0);
    const j3 = await web(n3, 'web3');
    expect(j3.admin).toBe('maint');
    expect(j3.adminSet).toMatchObject({ scope: 'node', node: 'n3' });
    expect((await cli(n3, ['server', 'show'])).stdout).toMatch(/app\/web3\s.*maint \(override on this node\)/);
    const metricsText = await (await fetch(`http://127.0.0.1:${n3.adminPort}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    expect(metricsText).toMatch(/stickmesh_server_admin_scope\{backend="app",server="web3",scope="node"\} 1/);
    expect(metricsText).toMatch(/stickmesh_server_admin_scope\{backend="app",server="web1",scope="cluster"\} 1/);
    expect(metricsText).toMatch(/stickmesh_server_admin_state\{backend="app",server="web3",state="maint"\} 1/);
    await new Promise((r) => setTimeout(r, 500));
    for (const n of [n1, n2]) expect(await web(n, 'web3')).toMatchObject({ admin: 'ready', adminSet: { scope: 'config' } });
    for (let i = 1; i <= 6; i++) expect(await served(n3, `127.48.3.${i}`)).toBe('web2');
    // node1 still gives web3 new clients (web2 weighs 5, web3 1: about one in six).
    const onN1: string[] = [];
    for (let i = 1; i <= 60 && !onN1.includes('web3'); i++) onN1.push(await served(n1, `127.48.1.${i}`));
    expect(onN1).toContain('web3');
    const cleared = await api(n3, 'PUT', '/api/servers/app/web3', { scope: 'node', clear: true });
    expect(cleared.status).toBe(200);
    expect(cleared.json).toMatchObject({ admin: 'ready', adminSet: { scope: 'config' } });
  });

  it('a node killed with -9 comes back with the cluster state', async () => {
    expect((await cli(n1, ['server', 'set', 'app/web2', 'drain'])).code).toBe(0);
    await waitFor(async () => (await web(n3, 'web2')).admin === 'drain', 5000, 'n3 sees the drain');
    await c.kill(n3, 'SIGKILL');
    await c.start(n3);
    await c.waitReady(n3);
    const j = await web(n3, 'web2');
    expect(j.admin).toBe('drain');
    expect(j.adminSet).toMatchObject({ scope: 'cluster', node: 'n1' });
    expect((await web(n3, 'web1')).admin).toBe('maint');
    for (let i = 1; i <= 6; i++) expect(await served(n3, `127.49.0.${i}`)).toBe('web3');
  });

  it('bad requests are refused with a reason', async () => {
    expect((await api(n1, 'PUT', '/api/servers/app/web1', { weight: 257 })).status).toBe(400);
    expect((await api(n1, 'PUT', '/api/servers/app/web1', { state: 'ready', scope: 'everywhere' })).status).toBe(400);
    expect((await api(n1, 'PUT', '/api/servers/app/web1', { clear: true, state: 'ready' })).status).toBe(400);
    expect((await api(n1, 'PUT', '/api/servers/app/web1', {})).status).toBe(400);
    expect((await cli(n1, ['server', 'set', 'app/web1', 'weight', 'x'])).code).toBe(2);
  });
});
