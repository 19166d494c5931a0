/**
 * Operations against a real 3-node cluster (node processes started from the build): the admin
 * API (tables, replicated delete/clear, servers, peers, explain, token rules), Prometheus metrics,
 * session-aware drain, the operator CLI and `check --against`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TestBackend } from './helpers/backends.js';
import { request } from './helpers/client.js';
import { BIN, startBackedCluster, type BackedCluster, type Cluster, type ClusterNode } from './helpers/cluster.js';
import { waitFor } from './helpers/wait.js';
import { adminCall, clearEverywhere, runCli, type ApiAnswer } from './helpers/admin.js';

const run = promisify(execFile);
const TOKEN = 'ops-test-token';

function cfgBody(bs: TestBackend[], names: string[] = bs.map((b) => b.name), cookieName = 'SRV') {
  return (peersLines: string) => `
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
    timeout client 10s
    timeout server 10s
    option redispatch
frontend web
    bind "127.0.0.1:\${PROXY_PORT}"
    default_backend app
backend app
    balance roundrobin
    cookie ${cookieName} insert indirect nocache
    stick on src table mesh/sessions
${bs.map((b, i) => `    server ${names[i]} 127.0.0.1:${b.port} cookie c${i + 1} check inter 200ms fall 1 rise 1`).join('\n')}
`;
}

let bs: TestBackend[] = [];
let c: Cluster;
let n1: ClusterNode, n2: ClusterNode, n3: ClusterNode;

const api = (n: ClusterNode, method: string, p: string, body?: unknown, token: string | null = TOKEN): Promise<ApiAnswer> => adminCall(n, token, method, p, body);

async function served(n: ClusterNode, src: string, headers?: Record<string, string>) {
  const r = await request(n.proxyPort, { localAddress: src, ...(headers ? { headers } : {}) });
  expect(r.status).toBe(200);
  return { server: String(r.headers['x-served-by']), setCookie: r.headers['set-cookie'] };
}

const cli = (args: string[], n: ClusterNode = n1) => runCli(n, TOKEN, args);
/** Clears the table once writes in flight have replicated, and waits until every node is empty. */
const clearEverywhereNow = () => clearEverywhere([n1, n2, n3], TOKEN, 'mesh/sessions');

let cluster: BackedCluster | undefined;
beforeAll(async () => {
  cluster = await startBackedCluster((backends) => cfgBody(backends));
  ({ c, bs } = cluster);
  [n1, n2, n3] = cluster.nodes;
}, 60000);

afterAll(async () => {
  await cluster?.close();
});

describe('admin API on a running cluster', () => {
  it('serves healthz, ready and summary; writes need the token, reads on loopback do not', async () => {
    expect((await api(n1, 'GET', '/healthz', undefined, null)).status).toBe(200);
    expect((await api(n1, 'GET', '/ready', undefined, null)).json.ready).toBe(true);
    const s = await api(n1, 'GET', '/api/summary', undefined, null);
    expect(s.status).toBe(200);
    expect(s.json.node).toBe('n1');
    expect(s.json.servers.map((x: any) => x.server)).toEqual(['web1', 'web2', 'web3']);
    // The dashboard's siblings: the peers' hosts with this node's admin port (all on 127.0.0.1 here).
    expect((await api(n1, 'GET', '/api/dashboard', undefined, null)).json).toEqual({ siblings: [`http://127.0.0.1:${n1.adminPort}`], accepted: [`http://127.0.0.1:${n1.adminPort}`] });
    const denied = await api(n1, 'PUT', '/api/servers/app/web1', { state: 'drain' }, null);
    expect(denied.status).toBe(401);
    expect((await api(n1, 'PUT', '/api/servers/app/web1', { state: 'bogus' })).status).toBe(400);
    expect((await api(n1, 'PUT', '/api/servers/app/nope', { state: 'ready' })).status).toBe(404);
    expect((await api(n1, 'GET', '/api/tables/nope/entries')).status).toBe(404);
    const big = await fetch(`http://127.0.0.1:${n1.adminPort}/api/servers/app/web1`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: 'x'.repeat(70000) });
    expect(big.status).toBe(413);
  });

  it('lists entries with filters; a delete and a clear on one node replicate to the others', async () => {
    const first = new Map<string, string>();
    for (let i = 1; i <= 12; i++) first.set(`127.30.0.${i}`, (await served(n1, `127.30.0.${i}`)).server);
    for (const n of [n2, n3]) await waitFor(async () => (await api(n, 'GET', '/api/tables/mesh%2Fsessions/entries?prefix=127.30.0.')).json.count === 12, 5000, 'replication');
    // /api/tables carries each table's digest; /tables is an alias of the same data. Nodes holding
    // the same entries show the same digest.
    await waitFor(async () => new Set(await Promise.all([n1, n2, n3].map(async (n) => (await api(n, 'GET', '/api/tables')).json[0].digest))).size === 1, 5000, 'same digest');
    const [apiTables, alias] = [await api(n1, 'GET', '/api/tables'), await api(n1, 'GET', '/tables')];
    expect(apiTables.json[0]).toMatchObject({ id: 'mesh/sessions', type: 'ip', live: 12, count: 12, digest: expect.stringMatching(/^[0-9a-f]+$/) });
    expect(alias.json).toEqual(apiTables.json);
    const web1 = [...first].filter(([, s]) => s === 'web1').map(([k]) => k);
    // Pages of one entry, by cursor, until `next` is null: every web1 entry once.
    const paged: string[] = [];
    let cursor: string | null = '0';
    for (let i = 0; cursor !== null && i < 100; i++) {
      const f = await api(n2, 'GET', `/api/tables/mesh%2Fsessions/entries?server=web1&prefix=127.30.0.&limit=1&cursor=${cursor}`);
      expect(f.json.entries.length).toBeLessThanOrEqual(1);
      paged.push(...f.json.entries.map((e: any) => e.key));
      cursor = f.json.next;
    }
    expect(cursor).toBeNull();
    expect(paged.sort()).toEqual([...web1].sort());
    expect((await api(n2, 'GET', '/api/tables/mesh%2Fsessions/entries?cursor=-1')).status).toBe(400);
    const page = await cli(['table', 'show', 'mesh/sessions', '--prefix', '127.30.0.', '--limit', '1'], n2);
    expect(page.stdout).toMatch(/next page: --cursor \d+/);
    const one = await api(n2, 'GET', `/api/tables/mesh%2Fsessions/entries/127.30.0.1`);
    expect(one.json.origin).toBe('n1');
    expect(one.json.server).toBe(first.get('127.30.0.1'));

    const del = await api(n1, 'DELETE', '/api/tables/mesh%2Fsessions/entries/127.30.0.1');
    expect(del.json.deleted).toBe(true);
    for (const n of [n2, n3]) {
      await waitFor(async () => (await api(n, 'GET', '/api/tables/mesh%2Fsessions/entries/127.30.0.1')).status === 404, 5000, `delete on ${n.name}`);
    }
    // CLI clear through n2: every node ends up empty.
    const r = await cli(['table', 'clear', 'mesh/sessions'], n2);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/deleted \d+ entries from mesh\/sessions/);
    for (const n of [n1, n2, n3]) {
      await waitFor(async () => (await api(n, 'GET', '/api/tables')).json[0].live === 0, 5000, `clear on ${n.name}`);
    }
    const shown = await cli(['table', 'show']);
    expect(shown.stdout).toMatch(/TABLE\s+TYPE\s+ENTRIES/);
    expect(shown.stdout).toMatch(/mesh\/sessions\s+ip\s+0/);
  });

  it('explains a key: stick entry with version and origin, server health, deciding rule; and a cookie value', async () => {
    const { server } = await served(n2, '127.31.0.1');
    await waitFor(async () => (await api(n1, 'GET', '/api/tables/mesh%2Fsessions/entries/127.31.0.1')).status === 200, 5000, 'replication');
    const e = await api(n1, 'GET', '/api/explain?key=127.31.0.1');
    const b = e.json.backends[0];
    expect(b.decidedBy).toBe('stick');
    expect(b.server).toBe(server);
    expect(b.health).toBe('up');
    expect(b.stick[0]).toMatchObject({ table: 'mesh/sessions', found: true, server, origin: 'n2', health: 'up', admin: 'ready' });
    expect(b.stick[0].version.node).toBe('n2');
    expect(b.cookie.flag).toBe('I');
    const ck = await api(n1, 'GET', '/api/explain?key=c3');
    expect(ck.json.backends[0]).toMatchObject({ decidedBy: 'cookie', server: 'web3' });
    expect(ck.json.backends[0].cookie.flag).toBe('V');
    const human = await cli(['explain', '127.31.0.1']);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`-> ${server} decided by stick`);
    expect(human.stdout).toMatch(/table\s+mesh\/sessions: web\d \(up, ready\) version \d+\.\d+@n2/);
    const fresh = await api(n1, 'GET', '/api/explain?key=127.31.9.9');
    expect(fresh.json.backends[0].decidedBy).toBe('stick-first');
    // The agreed first pick explain predicts is where the client really goes.
    expect((await served(n3, '127.31.9.9')).server).toBe(fresh.json.backends[0].server);
  });

  it('shows peers with state, lag, pending, last ack and refused connections by reason', async () => {
    // A stranger on the peers port: refused as bad-path.
    await new Promise<void>((resolve) => {
      const s = net.connect(n1.peersPort, '127.0.0.1', () => s.write('GET /nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
      s.on('close', () => resolve());
      s.on('error', () => resolve());
      s.resume();
    });
    await served(n1, '127.32.0.1');
    const p = await waitFor(async () => {
      const j = (await api(n1, 'GET', '/api/peers')).json as any[];
      return j.every((x) => x.connected && x.lastAckAgoMs !== undefined && x.pending === 0) ? j : undefined;
    }, 5000, 'acks');
    expect(p.map((x: any) => x.peer).sort()).toEqual(['n2', 'n3']);
    expect(p[0]).toMatchObject({ state: 'live', connected: true });
    expect(p[0].bytesSent).toBeGreaterThan(0);
    expect(typeof p[0].lagMs).toBe('number');
    const s = await api(n1, 'GET', '/api/summary');
    expect(s.json.refusals['bad-path']).toBeGreaterThanOrEqual(1);
    const human = await cli(['peers']);
    expect(human.stdout).toMatch(/PEER\s+STATE\s+LAG\s+PENDING\s+LAST ACK/);
    expect(human.stdout).toMatch(/n2\s+live/);
  });

  it('exports Prometheus metrics: requests, latency, persistence flags, tables, peers', async () => {
    const first = await request(n3.proxyPort, { localAddress: '127.33.0.1' });
    const cookie = String(first.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
    expect(cookie).toMatch(/^SRV=c\d$/);
    await request(n3.proxyPort, { localAddress: '127.33.0.1', headers: { cookie } });
    const text = await waitFor(async () => {
      const r = await fetch(`http://127.0.0.1:${n3.adminPort}/metrics`);
      const t = await r.text();
      return /stickmesh_table_entries\{table="mesh\/sessions"\} [1-9]/.test(t) ? t : undefined;
    }, 5000, 'metrics');
    expect(text).toMatch(/stickmesh_requests_total\{backend="app",server="web\d",code="2xx"\} \d+/);
    expect(text).toMatch(/stickmesh_request_duration_seconds_bucket\{le="0.005",backend="app",server="web\d"\}/);
    expect(text).toMatch(/stickmesh_persistence_total\{backend="app",request="N",response="I"\} \d+/);
    expect(text).toMatch(/stickmesh_persistence_total\{backend="app",request="V",response="N"\} \d+/);
    expect(text).toMatch(/stickmesh_decisions_total\{backend="app",by="cookie"\} \d+/);
    expect(text).toMatch(/stickmesh_peer_replication_lag_seconds\{peer="n1"\}/);
    expect(text).toMatch(/stickmesh_peer_up\{peer="n1"\} 1/);
    expect(text).toMatch(/stickmesh_peer_pending_updates\{peer="n2"\} \d+/);
    expect(text).toMatch(/stickmesh_peer_sent_bytes\{peer="n2"\} [1-9]/);
    expect(text).toMatch(/stickmesh_peer_reconnects\{peer="n2"\} 0/);
    expect(text).toMatch(/stickmesh_peer_anti_entropy_rounds\{peer="n2"\} \d+/);
    expect(text).toMatch(/stickmesh_peer_anti_entropy_entries_repaired\{peer="n1"\} \d+/);
    expect(text).toMatch(/stickmesh_anti_entropy_buckets_compared \d+/);
    expect(text).toMatch(/stickmesh_peer_counter_shares_sent\{peer="n2"\} \d+/);
    expect(text).toMatch(/stickmesh_server_sticky_entries\{backend="app",server="web\d"\} [1-9]/);
    expect(text).toMatch(/stickmesh_table_evicted_entries\{table="mesh\/sessions"\} 0/);
  });
});

describe('session-aware drain', () => {
  it('keeps stuck clients, sends no new ones, reports bindings, and goes to maint at zero bindings or at a deadline', async () => {
    await clearEverywhereNow();
    // Bind some clients to web1.
    const stuck: string[] = [];
    for (let i = 1; stuck.length < 3 && i < 200; i++) {
      const src = `127.34.0.${i}`;
      if ((await served(n1, src)).server === 'web1') stuck.push(src);
    }
    expect(stuck.length).toBe(3);
    const set = await cli(['server', 'set', 'app/web1', 'drain', '--auto-maint']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout, set.stdout + JSON.stringify((await api(n1, 'GET', '/api/tables/mesh%2Fsessions/entries?server=web1')).json)).toMatch(/app\/web1\s.*drain.*3 bindings left/);
    // Stuck clients keep web1; new clients never get it.
    for (const src of stuck) expect((await served(n1, src)).server).toBe('web1');
    for (let i = 1; i <= 30; i++) expect((await served(n1, `127.35.0.${i}`)).server).not.toBe('web1');
    const shown = await api(n1, 'GET', '/api/servers/app/web1');
    expect(shown.json.admin).toBe('drain');
    expect(shown.json.drain.bindings).toBe(3);
    // The bindings go away (sessions ended): the node switches web1 to maint by itself.
    for (const src of stuck.slice(0, 2)) await api(n2, 'DELETE', `/api/tables/mesh%2Fsessions/entries/${src}`);
    await new Promise((r) => setTimeout(r, 700));
    expect((await api(n1, 'GET', '/api/servers/app/web1')).json).toMatchObject({ admin: 'drain', drain: { bindings: 1 } });
    await api(n2, 'DELETE', `/api/tables/mesh%2Fsessions/entries/${stuck[2]}`);
    const done = await waitFor(async () => {
      const j = (await api(n1, 'GET', '/api/servers/app/web1')).json;
      return j.admin === 'maint' ? j : undefined;
    }, 5000, 'auto maint');
    expect(done.drain.ended).toBe('no-bindings');
    // Every node watches the drain; the one that switches logs it (here often n2, where the entries went).
    await waitFor(() => [n1, n2, n3].some((n) => n.logs.some((l) => typeof l.msg === 'string' && l.msg.includes('app/web1 drained'))), 3000, 'drain log line');

    // Deadline: web2 has bindings but the deadline passes first.
    const src2 = (await waitFor(async () => {
      for (let i = 1; i < 100; i++) if ((await served(n1, `127.36.0.${i}`)).server === 'web2') return `127.36.0.${i}`;
      return undefined;
    }, 5000, 'a web2 client'))!;
    const d = await cli(['server', 'set', 'app/web2', 'drain', '--deadline', '2s', '--json']);
    const dj = JSON.parse(d.stdout);
    expect(dj.drain.bindings).toBeGreaterThanOrEqual(1);
    expect(dj.drain.remainingMs).toBeGreaterThan(0);
    expect((await served(n1, src2)).server).toBe('web2');
    const ended = await waitFor(async () => {
      const j = (await api(n1, 'GET', '/api/servers/app/web2')).json;
      return j.admin === 'maint' ? j : undefined;
    }, 5000, 'deadline maint');
    expect(ended.drain.ended).toBe('deadline');
    // In maint even the stuck client moves (redispatch), and back to ready restores.
    expect((await served(n1, src2)).server).toBe('web3');
    for (const s of ['web1', 'web2']) expect((await cli(['server', 'set', `app/${s}`, 'ready'])).code).toBe(0);
    const list = await cli(['server', 'show']);
    expect(list.stdout).toMatch(/BACKEND\/SERVER\s+ADDRESS\s+HEALTH\s+STATE\s+STICKY/);
    expect(list.stdout).toMatch(/app\/web1\s+127\.0\.0\.1:\d+\s+up\s+ready/);
  });
});

describe('stickmesh check --against', () => {
  it('reports renamed servers and a changed cookie name, counting affected entries on the running node, and exits 1', async () => {
    await clearEverywhereNow();
    let onWeb2 = 0;
    for (let i = 1; i <= 20; i++) if ((await served(n1, `127.37.0.${i}`)).server === 'web2') onWeb2++;
    expect(onWeb2).toBeGreaterThan(0);
    const newFile = path.join(c.dir, 'new.cfg');
    const body = cfgBody(bs, ['web1', 'app2', 'web3'], 'SESSIONSRV')('    bind "127.0.0.1:${PEERS_PORT}"\n    server n1 127.0.0.1:1').replace('balance roundrobin', 'balance source\n    hash-type consistent');
    writeFileSync(newFile, body);
    const env = { ...process.env, PROXY_PORT: '1', ADMIN_PORT: '2', PEERS_PORT: '3', STICKMESH_PEERS_SECRET: 'x' };
    const oldEnv = { ...env };
    const r = await run(process.execPath, [BIN, 'check', '-c', newFile, '--against', c.cfgFile, '--admin', `http://127.0.0.1:${n1.adminPort}`], { env: oldEnv }).catch((e) => e);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`new.cfg:\\d+: persistence: backend 'app': server 'web2' renamed to 'app2' .*\\[${onWeb2} stick entr(y|ies) affected on the running node\\]`));
    expect(r.stderr).toMatch(/cookie name changed from 'SRV' to 'SESSIONSRV'/);
    // roundrobin -> source held no client by address before: nothing to break there.
    expect(r.stderr).not.toMatch(/hash-type changed/);
    const j = await run(process.execPath, [BIN, 'check', '-c', newFile, '--against', c.cfgFile, '--json', '-q'], { env }).catch((e) => e);
    const ws = JSON.parse(j.stdout) as Array<{ kind: string }>;
    expect(ws.map((w) => w.kind).sort()).toEqual(['cookie-name-changed', 'server-renamed']);
    // The running cluster holds the 20 clients above in mesh/sessions: renaming the table or
    // dropping 'stick on src' orphans all of them.
    const live = (await api(n1, 'GET', '/api/tables')).json.find((t: { id: string }) => t.id === 'mesh/sessions').live as number;
    expect(live).toBe(20);
    const base = cfgBody(bs)('    bind "127.0.0.1:${PEERS_PORT}"\n    server n1 127.0.0.1:1');
    for (const [name, text, kind] of [
      ['renamed.cfg', base.replace('table sessions', 'table sess2').replace('mesh/sessions', 'mesh/sess2'), /stick table 'mesh\/sessions' renamed to 'mesh\/sess2'/],
      ['nostick.cfg', base.replace('    stick on src table mesh/sessions\n', ''), /'stick on src table mesh\/sessions' \(\S+:\d+\) was removed/],
    ] as const) {
      writeFileSync(path.join(c.dir, name), text);
      const b = await run(process.execPath, [BIN, 'check', '-c', path.join(c.dir, name), '--against', c.cfgFile, '--admin', `http://127.0.0.1:${n1.adminPort}`], { env }).catch((e) => e);
      expect(b.stderr).toMatch(new RegExp(`${kind.source}.*\\[${live} stick entries affected on the running node\\]`));
      expect(b.code).toBe(1);
    }
    const same = await run(process.execPath, [BIN, 'check', '-c', c.cfgFile, '--against', c.cfgFile], { env });
    expect(same.stderr).toMatch(/no persistence-breaking change/);
  });
});
