/**
 * TLS sessions survive failover: the nodes share their session-ticket keys through the peers mesh,
 * so a ticket issued by one node resumes (abbreviated handshake) on any other.
 *
 * - Failover, real processes: 200 clients handshake through node 1 and keep their tickets; node 1
 *   is killed (SIGKILL); each client reconnects to node 2 or 3 with its ticket; at least 99 % resume.
 * - Rotation, in-process nodes (rotation is hourly, so the test drives the ring): a ticket made
 *   with the previous key still resumes through another node after a rotation; once its key fell
 *   off the ring (three rotations later) the client gets a full handshake, not an error.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import tls from 'node:tls';
import { pino } from 'pino';
import { parseConfigText } from '@stickmesh/core';
import { StickmeshNode } from '../packages/cli/src/node.js';
import { freePort, startBackend, type TestBackend } from './helpers/backends.js';
import { makeCert, tempDir, type TestCert } from './helpers/certs.js';
import { makeCluster, type Cluster, type ClusterNode } from './helpers/cluster.js';
import { waitFor } from './helpers/wait.js';
import { oneThread } from './helpers/in-process.js';

interface Visit {
  reused: boolean;
  session: Buffer | undefined;
  status: string;
}

/**
 * One HTTPS request on a new TLS connection (optionally offering `session`), read to the close so
 * the TLS 1.3 tickets, which come after the handshake, have arrived. Keeps the last ticket.
 */
function visit(port: number, session?: Buffer): Promise<Visit> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'shop.test', rejectUnauthorized: false, minVersion: 'TLSv1.3', ...(session ? { session } : {}) });
    let ticket: Buffer | undefined;
    let reused = false;
    let body = '';
    const timer = setTimeout(() => s.destroy(new Error('no answer within 10 s')), 10_000);
    s.on('session', (b: Buffer) => (ticket = b));
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.once('secureConnect', () => {
      reused = s.isSessionReused();
      s.end('GET / HTTP/1.1\r\nhost: shop.test\r\nconnection: close\r\n\r\n');
    });
    s.setEncoding('latin1');
    s.on('data', (d: string) => (body += d));
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ reused, session: ticket, status: body.slice(0, body.indexOf('\r\n')) });
    });
  });
}

/** Runs `f` over `items` with at most `n` at a time. */
async function pool<T, R>(items: T[], n: number, f: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!, i);
    }
  }));
  return out;
}

let cert: TestCert;
let backend: TestBackend;
beforeAll(async () => {
  cert = makeCert(tempDir(), 'site', 'shop.test', ['shop.test']);
  backend = await startBackend('web1');
});
afterAll(async () => {
  await backend?.close();
});

function config(peersLines: string, adminBind: string, bind: string, extraPeers = ''): string {
  return `
global
    admin-bind "${adminBind}"
peers mesh
${peersLines}
    shared-secret "\${STICKMESH_PEERS_SECRET}"
    resync-timeout 3s
${extraPeers}
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend web
    bind "${bind}" ssl crt ${cert.pem}
    default_backend app
backend app
    server web1 127.0.0.1:${backend.port}
`;
}

describe('TLS resumption through any node after a failover (processes)', () => {
  let c: Cluster | undefined;
  afterEach(async () => {
    await c?.stopAll();
    c = undefined;
  });

  /** Every node has a live session with every other and received its ticket keys. */
  async function keysShared(nodes: ClusterNode[]): Promise<boolean> {
    for (const n of nodes) {
      const peers = (await (await fetch(`http://127.0.0.1:${n.adminPort}/peers`)).json()) as Array<{ peer: string; state: string; ticketKeysShared?: boolean; ticketKeysReceived?: number }>;
      for (const o of nodes) {
        if (o === n) continue;
        const p = peers.find((x) => x.peer === o.name);
        if (!p || p.state !== 'live' || p.ticketKeysShared !== true || !(p.ticketKeysReceived! >= 1)) return false;
      }
    }
    return true;
  }

  it('200 clients handshake through node 1; node 1 is killed; >= 99 % resume through node 2 or 3', async () => {
    c = await makeCluster(['n1', 'n2', 'n3'], (peersLines) => config(peersLines, '127.0.0.1:${ADMIN_PORT}', '127.0.0.1:${PROXY_PORT}'));
    const [n1, n2, n3] = c.nodes as [ClusterNode, ClusterNode, ClusterNode];
    for (const n of c.nodes) await c.start(n);
    for (const n of c.nodes) await c.waitReady(n);
    await waitFor(() => keysShared(c!.nodes), 10_000, 'ticket keys shared by all three nodes');

    const clients = Array.from({ length: 200 }, (_, i) => i);
    const t0 = performance.now();
    const first = await pool(clients, 50, () => visit(n1.proxyPort));
    const fullMs = performance.now() - t0;
    expect(first.every((v) => v.status === 'HTTP/1.1 200 OK' && !v.reused)).toBe(true);
    const withTicket = first.filter((v) => v.session !== undefined).length;
    expect(withTicket).toBe(200);

    await c.kill(n1, 'SIGKILL');
    const t1 = performance.now();
    const again = await pool(clients, 50, (i) => visit((i % 2 === 0 ? n2 : n3).proxyPort, first[i]!.session));
    const resumeMs = performance.now() - t1;
    const ok = again.filter((v) => v.status === 'HTTP/1.1 200 OK').length;
    const reused = again.filter((v) => v.reused).length;
    console.log(`tls failover: ${reused}/200 resumed through n2/n3 after n1 was killed (${ok} answered 200); 200 full handshakes via n1 in ${fullMs.toFixed(0)} ms, 200 resumptions in ${resumeMs.toFixed(0)} ms (50 at a time)`);
    expect(ok).toBe(200);
    expect(reused / 200).toBeGreaterThanOrEqual(0.99);
  }, 90_000);
});

describe('TLS resumption across a rotation (in-process nodes)', () => {
  const nodes: StickmeshNode[] = [];
  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.stop(0, false);
  });

  async function startNodes(names: string[], secret = 'rotation-secret') {
    const ports: Record<string, number> = {};
    for (const n of names) for (const k of ['peers', 'admin', 'proxy']) ports[`${n}-${k}`] = await freePort();
    const peersLines = names.map((n) => `    server ${n} 127.0.0.1:${ports[`${n}-peers`]}`).join('\n');
    const logger = pino({ level: 'silent' });
    const out = new Map<string, StickmeshNode>();
    for (const n of [...names].reverse()) {
      const text = config(peersLines, `127.0.0.1:${ports[`${n}-admin`]}`, `127.0.0.1:${ports[`${n}-proxy`]}`);
      const node = await StickmeshNode.start(oneThread(parseConfigText(text, `${n}.cfg`, 'haproxy', { STICKMESH_PEERS_SECRET: secret })), { node: n, logger });
      nodes.push(node);
      out.set(n, node);
    }
    const all = [...out.values()];
    const same = () => all.every((x) => x.ticketKeys.all().map((k) => k.toString('hex')).join() === all[0]!.ticketKeys.all().map((k) => k.toString('hex')).join());
    const shared = secret !== '';
    await waitFor(() => all.every((x) => x.peers[0]!.status().every((p) => p.state === 'live' && (!shared || p.ticketKeysReceived! >= 1))) && (!shared || same()), 10_000, 'peers live, keys converged');
    return { node: (n: string) => out.get(n)!, port: (n: string) => ports[`${n}-proxy`]!, same };
  }

  it('a ticket of the previous key resumes through another node after a rotation; once its key left the ring, a full handshake', async () => {
    const { node, port, same } = await startNodes(['r1', 'r2', 'r3']);
    const ring1 = node('r1').ticketKeys;
    expect(ring1.size).toBe(3);
    const before = await visit(port('r1'));
    expect(before.session).toBeDefined();
    const oldKey = ring1.current()!;

    // r2 rotates (its schedule, driven here): every node takes its key; the old one stays accepted.
    const k = node('r2').ticketKeys.rotate();
    await waitFor(() => same() && ring1.current()!.equals(k.key), 5000, 'rotation reached every node');
    expect(node('r3').ticketKeys.byName(oldKey.subarray(0, 16))).toBeDefined();
    const resumed = await visit(port('r3'), before.session);
    expect(resumed).toMatchObject({ reused: true, status: 'HTTP/1.1 200 OK' });
    // A fresh full handshake now gets a ticket of the new key.
    const fresh = await visit(port('r1'));
    expect(fresh.session!.includes(k.key.subarray(0, 16))).toBe(true);

    // Two more rotations (by other nodes): the ring keeps 3 keys, so the first key is gone.
    const k3 = node('r3').ticketKeys.rotate();
    await waitFor(() => same() && ring1.current()!.equals(k3.key), 5000, 'second rotation');
    const k4 = node('r1').ticketKeys.rotate();
    await waitFor(() => same() && node('r2').ticketKeys.current()!.equals(k4.key), 5000, 'third rotation');
    expect(node('r2').ticketKeys.byName(oldKey.subarray(0, 16))).toBeUndefined();
    const dropped = await visit(port('r2'), before.session);
    expect(dropped).toMatchObject({ reused: false, status: 'HTTP/1.1 200 OK' });
    expect(dropped.session).toBeDefined();
    // The ticket of the first rotation's key is still in the ring: it resumes.
    expect((await visit(port('r2'), fresh.session)).reused).toBe(true);
  }, 60_000);

  it('control: without a shared secret the keys are not shared, and a ticket resumes only on the node that issued it', async () => {
    const { node, port } = await startNodes(['u1', 'u2'], '');
    expect(node('u1').ticketKeys.current()!.equals(node('u2').ticketKeys.current()!)).toBe(false);
    const first = await visit(port('u1'));
    expect((await visit(port('u1'), first.session)).reused).toBe(true);
    expect(await visit(port('u2'), first.session)).toMatchObject({ reused: false, status: 'HTTP/1.1 200 OK' });
  }, 30_000);
});
