/**
 * The live dashboard in a real headless browser (Debian chromium via playwright-core) against a
 * running 3-node cluster: it shows every node and its peers, servers with health, admin state and
 * sticky-session counts, table sizes, and follows changes live. Screenshot: test-results/dashboard.png.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, statSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { startBackend, type TestBackend } from './helpers/backends.js';
import { request } from './helpers/client.js';
import { makeCluster, type Cluster, type ClusterNode } from './helpers/cluster.js';
import { waitFor } from './helpers/wait.js';

const SHOT = new URL('../test-results/dashboard.png', import.meta.url).pathname;
let bs: TestBackend[] = [];
let c: Cluster;
let browser: Browser;

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
  await Promise.all(c.nodes.map((n) => c.start(n)));
  await Promise.all(c.nodes.map((n) => c.waitReady(n)));
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}, 60000);

afterAll(async () => {
  await browser?.close();
  await c?.stopAll();
  for (const b of bs) await b.close();
});

describe('dashboard', () => {
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
});
