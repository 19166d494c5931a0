/**
 * The live dashboard in a real headless browser (Debian chromium via playwright-core) against a
 * running 3-node cluster: it shows every node and its peers, servers with health, admin state and
 * sticky-session counts, table sizes, and follows changes live. Screenshot: test-results/dashboard.png.
 *
 * A state set through one node shows on every node with that node named (a cluster-wide drain),
 * a per-node override as such.
 *
 * Outage, in a 420 px viewport: the node serving the page is killed; the page says so and goes on
 * showing the cluster from the two survivors, which show the dead node as "no data since", logs one
 * console error for the outage (plus the browser's own network error line per retry, bounded by
 * the backoff) and one line when the node is back. The layout is checked on the page (no horizontal
 * page scroll; tables fit or scroll inside a container that fits) and on the screenshot
 * (test-results/dashboard-420.png and -outage.png: 420 px wide, nothing drawn into the right margin).
 *
 * Hostile: a sibling answering with markup in every field runs no script and writes nothing; a
 * sibling not in the node's list is never asked and the token goes to the page's own origin only;
 * a page on another origin can neither read table entries nor write; a DNS-rebound name gets 421.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort, startBackend, type TestBackend } from './helpers/backends.js';
import { request } from './helpers/client.js';
import { makeCluster, type Cluster, type ClusterNode } from './helpers/cluster.js';
import { waitFor } from './helpers/wait.js';

const SHOT = new URL('../test-results/dashboard.png', import.meta.url).pathname;
const SHOT_NARROW = new URL('../test-results/dashboard-420.png', import.meta.url).pathname;
const SHOT_OUTAGE = new URL('../test-results/dashboard-420-outage.png', import.meta.url).pathname;
const NARROW = 420;
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
    // Set through node1, cluster-wide: every node shows it, attributed to node1.
    await page.waitForSelector('[data-testid=server][data-server=web2][data-scope=cluster] [data-testid=admin-by][data-by=node1]');
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

  it('survives the death of the node serving it, at 420 px wide, with one console error for the outage', async () => {
    const [n1, n2, n3] = c.nodes as [ClusterNode, ClusterNode, ClusterNode];
    // The live test above killed node3: the cluster starts whole again.
    if (n3.proc && (n3.proc.exitCode !== null || n3.proc.signalCode !== null)) await c.start(n3);
    await Promise.all([n1, n2, n3].map((n) => c.waitReady(n)));
    const admins = [n1, n2, n3].map((n) => `http://127.0.0.1:${n.adminPort}`);
    const page = await browser.newPage({ viewport: { width: NARROW, height: 900 } });
    const msgs: Array<{ type: string; text: string; at: number }> = [];
    page.on('console', (m) => msgs.push({ type: m.type(), text: m.text(), at: Date.now() }));
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${admins[0]}/?nodes=${admins.join(',')}`);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=peer][data-state=live]').length === 6, undefined, { timeout: 20000 });

    // State attributed to its node: a cluster-wide drain set through node2, an override on node3 alone.
    const put = async (n: ClusterNode, server: string, body: unknown) =>
      expect((await fetch(`http://127.0.0.1:${n.adminPort}/api/servers/app/${server}`, { method: 'PUT', body: JSON.stringify(body) })).status).toBe(200);
    await put(n2, 'web1', { state: 'drain' });
    await put(n3, 'web3', { state: 'maint', scope: 'node' });
    await page.waitForSelector('[data-testid=server][data-server=web1][data-admin=drain][data-scope=cluster] [data-testid=admin-by][data-by=node2]', { timeout: 10000 });
    expect(await page.textContent('[data-testid=server][data-server=web1] [data-testid=admin-by]')).toMatch(/^drain \u2014 set by node2 (just now|\d+ s ago)$/);
    await page.waitForSelector('[data-testid=server][data-server=web3][data-admin=maint][data-scope=node] [data-testid=admin-by][data-scope=node][data-by=node3]', { timeout: 10000 });
    expect(await page.textContent('[data-testid=server][data-server=web3] [data-testid=admin-by][data-scope=node]')).toMatch(/^maint on node3 \u2014 override on that node only, (just now|\d+ s ago)$/);

    await expectFitsWidth(page);
    mkdirSync(new URL('../test-results/', import.meta.url).pathname, { recursive: true });
    await page.screenshot({ path: SHOT_NARROW, fullPage: true });
    await expectScreenshotFits(page, SHOT_NARROW);

    // A healthy cluster leaves the console clean.
    expect(msgs.filter((m) => m.type === 'error' || m.type === 'warning'), JSON.stringify(msgs)).toEqual([]);

    // node1, which served the page, dies: the page reads the cluster from node2 and node3 and says so.
    const killedAt = Date.now();
    await c.kill(n1);
    const notice = page.locator('[data-testid=origin-notice]');
    await notice.waitFor({ state: 'visible', timeout: 10000 });
    await page.waitForFunction(() => document.querySelector('[data-testid=origin-notice]')?.getAttribute('data-reading') === 'node2,node3');
    expect(await notice.textContent()).toMatch(new RegExp(`^node1 \\(${admins[0]}\\), the node that served this page, has not answered since \\d\\d:\\d\\d:\\d\\d: reading the cluster from node2, node3$`));
    // The survivors show node1 as a dead peer: when it was last heard, no stale lag or pending count.
    for (const n of ['node2', 'node3']) {
      const row = `[data-testid=node][data-node=${n}] [data-testid=peer][data-peer=node1]`;
      await page.waitForFunction((sel) => /^no data since \d\d:\d\d:\d\d$/.test(document.querySelector(`${sel} [data-testid=nodata]`)?.textContent ?? ''), row, { timeout: 10000 });
      expect(await page.textContent(row)).not.toMatch(/lag|pending/);
    }
    await page.waitForSelector('[data-testid=node][data-node=node1].down');
    expect(await page.textContent('#k-nodes')).toBe('2 / 3');
    expect(await page.locator('[data-testid=server]').count()).toBe(3);
    // Read from the survivors, the attribution stays.
    expect(await page.getAttribute('[data-testid=server][data-server=web1] [data-testid=admin-by]', 'data-by')).toBe('node2');
    expect(await page.getAttribute('[data-testid=server][data-server=web3]', 'data-scope')).toBe('node');
    await expectFitsWidth(page);
    await page.screenshot({ path: SHOT_OUTAGE, fullPage: true });
    await expectScreenshotFits(page, SHOT_OUTAGE);

    // Ten seconds of outage, measured from the dashboard's own line, while the page keeps repainting.
    const down = msgs.filter((m) => m.text.startsWith('stickmesh dashboard: node1'));
    expect(down.map((m) => m.type)).toEqual(['error']);
    const downAt = down[0]!.at;
    await page.waitForFunction((t) => Number(document.body.getAttribute('data-updated')) >= t, downAt + 10000, { timeout: 20000 });
    const outage = msgs.filter((m) => m.type === 'error' && m.at >= killedAt && m.at <= downAt + 10000);
    const own = outage.filter((m) => m.text.startsWith('stickmesh dashboard:'));
    const network = outage.filter((m) => !m.text.startsWith('stickmesh dashboard:'));
    // One line of ours. The browser adds one network error line per refused fetch: the failure that
    // detected the outage, then the retries of the 5 s / 10 s backoff: 1 within these 10 s.
    expect(own.length).toBe(1);
    expect(network.length, JSON.stringify(network)).toBeLessThanOrEqual(2);
    expect(network.every((m) => /ERR_CONNECTION_REFUSED|Failed to load resource/.test(m.text)), JSON.stringify(network)).toBe(true);

    // node1 is back: asked again as soon as its peers see it, one line says so, the notice goes.
    await c.start(n1);
    await c.waitReady(n1);
    await notice.waitFor({ state: 'hidden', timeout: 15000 });
    await page.waitForSelector('[data-testid=node][data-node=node1] [data-testid=ready]');
    expect(msgs.filter((m) => m.text.startsWith('stickmesh dashboard:')).map((m) => m.type)).toEqual(['error', 'info']);
    expect(msgs.find((m) => m.type === 'info')!.text).toMatch(/node1 .* answers again$/);
    await put(n2, 'web1', { state: 'ready' });
    await put(n3, 'web3', { scope: 'node', clear: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 90000);
});

/** No horizontal page scroll; each table fits the viewport, or scrolls inside a container that does. */
async function expectFitsWidth(page: Page): Promise<void> {
  const got = await page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    return {
      vw,
      scrollWidth: document.documentElement.scrollWidth,
      bodyScrollWidth: document.body.scrollWidth,
      tables: [...document.querySelectorAll('table')].map((t) => {
        const r = t.getBoundingClientRect();
        const box = t.closest('.scroll');
        const b = box?.getBoundingClientRect();
        return {
          id: t.getAttribute('data-testid'),
          left: r.left,
          right: r.right,
          box: b && box ? { left: b.left, right: b.right, overflowX: getComputedStyle(box).overflowX, scrolls: box.scrollWidth > box.clientWidth } : null,
        };
      }),
      cards: [...document.querySelectorAll('.card, .kpi, header, #origin')].map((e) => e.getBoundingClientRect().right),
    };
  });
  expect(got.vw).toBe(NARROW);
  expect(got.scrollWidth).toBeLessThanOrEqual(NARROW);
  expect(got.bodyScrollWidth).toBeLessThanOrEqual(NARROW);
  expect(got.tables.length).toBe(2);
  for (const t of got.tables) {
    if (t.left >= 0 && t.right <= NARROW) continue;
    expect(t.box, `table ${t.id} overflows (${t.left}..${t.right}) outside a scroll container`).not.toBeNull();
    expect(t.box!.left).toBeGreaterThanOrEqual(0);
    expect(t.box!.right).toBeLessThanOrEqual(NARROW);
    expect(['auto', 'scroll']).toContain(t.box!.overflowX);
    expect(t.box!.scrolls).toBe(true);
  }
  for (const r of got.cards) expect(r).toBeLessThanOrEqual(NARROW);
}

/**
 * The full-page screenshot is exactly the viewport wide (a page wider than its viewport gives a
 * wider shot), and nothing is drawn into main's right padding: the 8 px column left of the edge is
 * the page background on every row of main (the header and notices above it span the width).
 */
async function expectScreenshotFits(shown: Page, file: string): Promise<void> {
  const main = await shown.evaluate(() => {
    const r = document.querySelector('main')!.getBoundingClientRect();
    return { top: Math.ceil(r.top + window.scrollY), bottom: Math.floor(r.bottom + window.scrollY) };
  });
  const png = readFileSync(file);
  expect(png.subarray(1, 4).toString()).toBe('PNG');
  expect(png.readUInt32BE(16)).toBe(NARROW);
  const height = png.readUInt32BE(20);
  expect(height).toBeGreaterThan(900);
  const page = await browser.newPage();
  try {
    const stray = await page.evaluate(async ([b64, top, bottom]) => {
      const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
      const img = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
      const cv = new OffscreenCanvas(img.width, img.height);
      const ctx = cv.getContext('2d')!;
      ctx.drawImage(img, 0, 0);
      const { data } = ctx.getImageData(img.width - 10, 0, 8, img.height);
      let bad = 0;
      let rows = 0;
      for (let y = top; y < Math.min(bottom, img.height); y++) {
        const i0 = y * 8 * 4;
        const isBg = (i: number) => Math.abs(data[i]! - 0x0d) <= 2 && Math.abs(data[i + 1]! - 0x11) <= 2 && Math.abs(data[i + 2]! - 0x17) <= 2;
        rows++;
        for (let x = 0; x < 8; x++) if (!isBg(i0 + x * 4)) bad++;
      }
      return { bad, rows };
    }, [png.toString('base64'), main.top, main.bottom] as const);
    expect(main.top).toBeGreaterThan(40);
    expect(stray.rows).toBeGreaterThan(500);
    expect(stray.bad).toBe(0);
  } finally {
    await page.close();
  }
}

