/**
 * The live dashboard in a real headless browser (Debian chromium via playwright-core) against a
 * running 3-node cluster: it shows every node and its peers, servers with health, admin state and
 * sticky-session counts, table sizes, and follows changes live. Screenshot: test-results/dashboard.png.
 *
 * Hostile: a sibling answering with markup in every field runs no script and writes nothing; a
 * sibling not in the node's list is never asked and the token goes to the page's own origin only;
 * a page on another origin can neither read table entries nor write; a DNS-rebound name gets 421.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, statSync } from 'node:fs';
import http from 'node:http';
import { chromium, type Browser } from 'playwright-core';
import { freePort, startBackend, type TestBackend } from './helpers/backends.js';
import { request } from './helpers/client.js';
import { makeCluster, type Cluster, type ClusterNode } from './helpers/cluster.js';
import { waitFor } from './helpers/wait.js';

const SHOT = new URL('../test-results/dashboard.png', import.meta.url).pathname;
let bs: TestBackend[] = [];
let c: Cluster;
let browser: Browser;

/** A fake sibling node: markup in every field of its summary, and a log of what it was sent. */
const PAYLOAD = `<img src=x onerror="window.__pwned=1;fetch('/api/servers/app/web1',{method:'PUT',body:'{\\"state\\":\\"maint\\"}'})">'"><svg onload=window.__pwned=2>`;
interface Fake { origin: string; seen: Array<{ url: string; headers: http.IncomingHttpHeaders }>; close(): Promise<void> }
const fakes: Fake[] = [];
async function startFake(): Promise<Fake> {
  const seen: Fake['seen'] = [];
  const srv = http.createServer(function fakeSibling(req, res) {
    seen.push({ url: req.url ?? '', headers: req.headers });
    if (req.url === '/evil.html') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>evil</title>');
      return;
    }
    const s = {
      node: PAYLOAD, time: PAYLOAD, uptimeMs: PAYLOAD, ready: PAYLOAD, connections: PAYLOAD,
      tables: [{ id: PAYLOAD, live: PAYLOAD, capacity: PAYLOAD, evictions: PAYLOAD, expired: PAYLOAD, servers: { [PAYLOAD]: PAYLOAD } }],
      servers: [{ backend: PAYLOAD, server: PAYLOAD, health: PAYLOAD, admin: PAYLOAD, sticky: PAYLOAD, activeConns: PAYLOAD, requests: PAYLOAD, errors: PAYLOAD, drain: { bindings: PAYLOAD, remainingMs: PAYLOAD } }],
      peers: [{ peer: PAYLOAD, host: PAYLOAD, state: PAYLOAD, connected: true, lagMs: PAYLOAD, pending: PAYLOAD }],
    };
    res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*', 'access-control-allow-headers': '*' }).end(JSON.stringify(s));
  });
  const port = await freePort();
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  const f: Fake = { origin: `http://127.0.0.1:${port}`, seen, close: () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }) };
  fakes.push(f);
  return f;
}
let hostile: Fake;
let stranger: Fake;

beforeAll(async () => {
  for (let i = 1; i <= 3; i++) bs.push(await startBackend(`web${i}`));
  c = await makeCluster(['node1', 'node2', 'node3'], (peersLines) => `
global
    admin-bind "127.0.0.1:\${ADMIN_PORT}"
peers mesh
${peersLines}
    shared-secret "\${STICKMESH_PEERS_SECRET}"
    table sessions type ip size 100k expire 30m
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend web
    bind "127.0.0.1:\${PROXY_PORT}"
    default_backend app
backend app
    balance roundrobin
    stick on src table mesh/sessions
${bs.map((b) => `    server ${b.name} 127.0.0.1:${b.port} check inter 200ms fall 1 rise 1`).join('\n')}
`);
  hostile = await startFake();
  stranger = await startFake();
  // Local siblings on other ports are not the default peer layout (one port, one host each): list them.
  const siblings = c.nodes.map((n) => `http://127.0.0.1:${n.adminPort}`);
  for (const n of c.nodes) n.env.STICKMESH_ADMIN_ALLOW_ORIGIN = [...siblings, hostile.origin].join(',');
  await Promise.all(c.nodes.map((n) => c.start(n)));
  await Promise.all(c.nodes.map((n) => c.waitReady(n)));
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--host-resolver-rules=MAP rebind.test 127.0.0.1'],
  });
}, 60000);

afterAll(async () => {
  await browser?.close();
  await c?.stopAll();
  for (const b of bs) await b.close();
  for (const f of fakes) await f.close();
});

describe('dashboard', () => {
  it('renders a hostile sibling as text: no script runs, nothing is written, the token stays home', async () => {
    const [n1] = c.nodes as [ClusterNode];
    const self = `http://127.0.0.1:${n1.adminPort}`;
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.addInitScript(() => {
      (window as unknown as { __violations: string[] }).__violations = [];
      document.addEventListener('securitypolicyviolation', (e) => (window as unknown as { __violations: string[] }).__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    await page.goto(`${self}/?nodes=${self},${hostile.origin},${stranger.origin}#token=secret-token`);
    await page.waitForFunction((p) => document.getElementById('nodes')!.textContent!.includes(p.slice(0, 20)), PAYLOAD);
    const first = await page.getAttribute('body', 'data-updated');
    await page.waitForFunction((t) => document.body.getAttribute('data-updated') !== t, first);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.evaluate(() => (window as unknown as { __violations: string[] }).__violations)).toEqual([]);
    expect(await page.locator('img, script:not([src]), [onerror], [onload]').count()).toBe(0);
    expect(await page.textContent('#nodes')).toContain(PAYLOAD);
    // Polled without the token; the sibling not in the node's list was never asked.
    expect(hostile.seen.length).toBeGreaterThan(0);
    expect(hostile.seen.every((r) => r.headers.authorization === undefined)).toBe(true);
    expect(stranger.seen).toEqual([]);
    const web1 = await (await fetch(`${self}/api/servers/app/web1`)).json();
    expect(web1.admin).toBe('ready');
    expect(errors).toEqual([]);
    await page.close();
  }, 30000);

  it('keeps polling with a malformed #token=%', async () => {
    const [n1] = c.nodes as [ClusterNode];
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${n1.adminPort}/#token=%`);
    await page.waitForSelector('[data-testid=node][data-node=node1]');
    const t = await page.getAttribute('body', 'data-updated');
    await page.waitForFunction((x) => document.body.getAttribute('data-updated') !== x, t);
    await page.close();
  }, 30000);

  it('shows the cluster live in a headless browser and is captured as a screenshot', async () => {
    const [n1, n2, n3] = c.nodes as [ClusterNode, ClusterNode, ClusterNode];
    for (let i = 1; i <= 30; i++) await request(c.nodes[i % 3]!.proxyPort, { localAddress: `127.40.0.${i}` });
    const url = `http://127.0.0.1:${n1.adminPort}/?nodes=${[n1, n2, n3].map((n) => `http://127.0.0.1:${n.adminPort}`).join(',')}`;
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForSelector('[data-testid=node][data-node=node3] [data-testid=ready]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=peer][data-state=live]').length === 6);
    expect(await page.textContent('[data-testid=cluster-status]')).toBe('cluster healthy');
    expect(await page.locator('[data-testid=node]').count()).toBe(3);
    for (const n of ['node1', 'node2', 'node3']) {
      expect(await page.textContent(`[data-testid=node][data-node=${n}] [data-testid=ready]`)).toBe('ready');
      expect(await page.locator(`[data-testid=node][data-node=${n}] [data-testid=peer]`).count()).toBe(2);
    }
    expect(await page.textContent('#k-nodes')).toBe('3 / 3');
    // Servers with health and sticky counts that add up to the replicated table.
    const rows = page.locator('[data-testid=server]');
    expect(await rows.count()).toBe(3);
    let sticky = 0;
    for (let i = 0; i < 3; i++) {
      const r = rows.nth(i);
      expect(await r.getAttribute('data-health')).toBe('up');
      expect(await r.getAttribute('data-admin')).toBe('ready');
      sticky += Number(await r.getAttribute('data-sticky'));
    }
    expect(sticky).toBe(30);
    expect(await page.getAttribute('[data-testid=table][data-node=node2]', 'data-live')).toBe('30');

    // Live: traffic shows as a request rate, a drained server and a dead backend show up without reload.
    const load = (async () => {
      for (let i = 0; i < 120; i++) await request(n2.proxyPort, { localAddress: `127.41.0.${(i % 200) + 1}` });
    })();
    await page.waitForFunction(() => Number(document.getElementById('k-rps')?.textContent) > 0, undefined, { timeout: 10000 });
    await load;
    await fetch(`http://127.0.0.1:${n1.adminPort}/api/servers/app/web2`, { method: 'PUT', body: JSON.stringify({ state: 'drain' }) });
    await page.waitForSelector('[data-testid=server][data-server=web2][data-admin=drain]');
    await bs[2]!.close();
    await page.waitForSelector('[data-testid=server][data-server=web3][data-health=down]', { timeout: 10000 });
    await page.waitForFunction(() => Number(document.getElementById('k-sticky')?.textContent) >= 30);
    mkdirSync(new URL('../test-results/', import.meta.url).pathname, { recursive: true });
    await page.screenshot({ path: SHOT, fullPage: true });
    expect(statSync(SHOT).size).toBeGreaterThan(10000);
    // A killed node shows as down, seen through its peers.
    await c.kill(n3);
    await page.waitForSelector('[data-testid=node][data-node=node3].down', { timeout: 10000 });
    expect(await page.textContent('[data-testid=cluster-status]')).toBe('cluster degraded');
    expect(errors).toEqual([]);
    await waitFor(() => true);
  }, 60000);

  it('a page on another origin cannot read table entries or write; a DNS-rebound name gets 421', async () => {
    const [n1] = c.nodes as [ClusterNode];
    for (let i = 1; i <= 3; i++) await request(n1.proxyPort, { localAddress: `127.42.0.${i}` });
    const admin = `http://127.0.0.1:${n1.adminPort}`;
    const page = await browser.newPage();
    await page.goto(`${stranger.origin}/evil.html`);
    const got = await page.evaluate(async (a) => {
      const out: string[] = [];
      for (const [m, path, body] of [['GET', '/api/tables/mesh%2Fsessions/entries'], ['DELETE', '/api/tables/mesh%2Fsessions/entries'], ['PUT', '/api/servers/app/web1', '{"state":"maint"}'], ['POST', '/api/servers/app/web1', '{"state":"maint"}']] as Array<[string, string, string?]>) {
        try {
          const r = await fetch(a + path, { method: m, ...(body ? { body, headers: { 'content-type': 'text/plain' } } : {}) });
          out.push(`${m} read ${r.status} ${(await r.text()).slice(0, 40)}`);
        } catch (e) {
          out.push(`${m} blocked`);
        }
      }
      try {
        await fetch(a + '/api/tables/mesh%2Fsessions/entries', { mode: 'no-cors' });
        out.push('no-cors sent');
      } catch {
        out.push('no-cors blocked');
      }
      return out;
    }, admin);
    expect(got).toEqual(['GET blocked', 'DELETE blocked', 'PUT blocked', 'POST blocked', 'no-cors sent']);
    const tables = await (await fetch(`${admin}/api/tables`)).json();
    expect(tables[0].live).toBeGreaterThanOrEqual(3);
    expect((await (await fetch(`${admin}/api/servers/app/web1`)).json()).admin).toBe('ready');
    const rebound = await page.goto(`http://rebind.test:${n1.adminPort}/api/tables/mesh%2Fsessions/entries`);
    expect(rebound!.status()).toBe(421);
    expect(await page.textContent('body')).not.toContain('127.42.0.');
    expect((await page.goto(`http://rebind.test:${n1.adminPort}/`))!.status()).toBe(421);
    await page.close();
  }, 30000);
});
