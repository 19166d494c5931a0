/**
 * The view, the shared leastconn counts and the whole-node metrics across a real worker thread:
 * the worker runs the built package (dist, as `npm test` builds it first) and the test's main
 * thread the sources; they share only messages and SharedArrayBuffers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { parseConfigText } from '@stickmesh/core';
import { ProxyMetrics } from '../metrics.js';
import { RuntimeBackend } from '../runtime/backend.js';
import { RuntimeServer } from '../runtime/server.js';
import { MessageThreadPort } from './port.js';
import { MainThreadView } from './view-node.js';

const CONFIG = `
backend app
  mode http
  balance leastconn
  server s0 10.0.0.1:80
  server s1 10.0.0.2:80
  server s2 10.0.0.3:80
`;

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = (pkg: string): string => pathToFileURL(path.resolve(here, `../../../${pkg}/dist/index.js`)).href;

/** The worker: builds the same backends, follows the view, answers metrics, and obeys test commands. */
const WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
(async () => {
  const core = await import(workerData.core);
  const p = await import(workerData.proxy);
  const cfg = core.parseConfigText(workerData.config, 't.cfg', 'haproxy', {}).config;
  const backends = new Map(cfg.backends.map((b) => [b.name, new p.RuntimeBackend(b, b.servers.map((sc, i) => new p.RuntimeServer(i, sc, sc.host)))]));
  const port = new p.MessageThreadPort(parentPort);
  const view = new p.WorkerThreadView(port, workerData.view, () => 4);
  view.setBackends(backends);
  const app = backends.get('app');
  port.on('test:state', () => port.post({ t: 'test:state', candidates: app.candidates.map((s) => s.name) }));
  port.on('test:open', (m) => {
    const s = app.serverByName(m.server);
    for (let i = 0; i < m.n; i++) s.connOpened();
    port.post({ t: 'test:opened' });
  });
  port.on('test:pick', () => port.post({ t: 'test:pick', server: app.pick(0).name }));
  port.on('test:serve', (m) => {
    for (let i = 0; i < m.n; i++) p.metrics.http('app', app.pick(0), 200, 1, false, '-', '-', 'balance', '');
    port.post({ t: 'test:served' });
  });
  port.post({ t: 'test:ready' });
})();
`;

let worker: Worker | undefined;
afterEach(async () => {
  await worker?.terminate();
  worker = undefined;
});

function ask(port: MessageThreadPort, t: string, fields: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    port.on(t === 'test:open' ? 'test:opened' : t === 'test:serve' ? 'test:served' : t, (m) => resolve(m as Record<string, unknown>));
    port.post({ t, ...fields });
  });
}

async function until(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('one node, two threads (real worker_threads)', () => {
  it('the worker follows the view, shares leastconn counts, and its requests are in /metrics', async () => {
    const cfg = parseConfigText(CONFIG, 't.cfg', 'haproxy', {}).config;
    const main = new Map(cfg.backends.map((b) => [b.name, new RuntimeBackend(b, b.servers.map((sc, i) => new RuntimeServer(i, sc, sc.host)))]));
    const app = main.get('app')!;
    const m = new ProxyMetrics();
    const view = new MainThreadView(main, m);
    const threads = view.threadMetrics;
    // State main had before the thread started comes with its workerData.
    app.servers[2]!.admin = 'maint';
    app.rebuild();

    worker = new Worker(WORKER, { eval: true, workerData: { config: CONFIG, core: dist('core'), proxy: dist('proxy'), view: view.initial() } });
    worker.on('error', (e) => {
      throw e;
    });
    const port = new MessageThreadPort(worker);
    await new Promise<void>((r) => port.on('test:ready', () => r()));
    expect((await ask(port, 'test:state')).candidates).toEqual(['s0', 's1']);
    view.join(port);
    m.enable(); // main's admin listener is up: the thread's metrics go on too
    app.servers[2]!.admin = 'ready';
    app.rebuild();

    // Health seen by main's checks (and admin state) reaches the worker's balancer.
    app.servers[1]!.checkUp = false;
    app.rebuildSoon();
    await until(async () => String((await ask(port, 'test:state')).candidates) === 's0,s2');

    // Connections the worker opens count in main's (explain, admin API) and main's picks.
    await ask(port, 'test:open', { server: 's0', n: 3 });
    expect(app.servers[0]!.activeConns).toBe(3);
    expect(app.servers[0]!.threadConns).toBe(0);
    expect(app.pick(0)!.name).toBe('s2');
    // ... and main's connections count in the worker's picks.
    app.servers[2]!.connOpened();
    app.servers[2]!.connOpened();
    app.servers[2]!.connOpened();
    app.servers[2]!.connOpened();
    expect((await ask(port, 'test:pick')).server).toBe('s0');

    // The worker's requests are in main's /metrics and in the per-server totals.
    await ask(port, 'test:serve', { n: 5 });
    const text = await m.text();
    const line = text.split('\n').find((l) => l.startsWith('stickmesh_requests_total{backend="app",server="s0",code="2xx"}'));
    expect(line).toBeDefined();
    expect(Number(line!.split(' ').pop())).toBe(5);
    expect(m.totals(app.servers[0]!, 'app').requests).toBe(5);
    expect(m.otherConnections).toBe(4);
    expect(threads.misses).toBe(0);
  });
});
