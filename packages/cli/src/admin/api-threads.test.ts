/**
 * The admin API of a node with worker threads sees the whole node: a worker's connections (shared
 * counts) and requests (its metrics, fetched before the answer) are in the server routes and the
 * dashboard summary. The worker here is a second set of backends and its own metrics registry,
 * connected through a MessageChannel as a worker thread is.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { parseConfigText } from '@stickmesh/core';
import {
  MainThreadView, MessageThreadPort, ProxyMetrics, RuntimeBackend, RuntimeServer, WorkerThreadView, metrics,
  type AdminRequest, type StickmeshProxy,
} from '@stickmesh/proxy';
import { Ops, type AdminNode } from './api.js';
import { ServerStates } from '../server-states.js';

const CONFIG = 'backend app\n  mode http\n  balance leastconn\n  server s0 10.0.0.1:80\n  server s1 10.0.0.2:80\n';

function backends(): Map<string, RuntimeBackend> {
  const cfg = parseConfigText(CONFIG, 't.cfg', 'haproxy', {}).config;
  return new Map(cfg.backends.map((b) => [b.name, new RuntimeBackend(b, b.servers.map((sc, i) => new RuntimeServer(i, sc, sc.host)))]));
}

const open: MessagePort[] = [];
let view: MainThreadView | undefined;
afterEach(() => {
  view?.stop();
  view = undefined;
  for (const p of open.splice(0)) p.close();
});

describe('admin API with worker threads', () => {
  it("server routes and the summary count the worker's connections and requests", async () => {
    const main = backends();
    const proxy = { backends: main, lastCheck: () => '', connectionCount: () => 0 } as unknown as StickmeshProxy;
    const node: AdminNode = {
      name: 'n1',
      tables: new Map(),
      proxy,
      peers: [],
      serverStates: new ServerStates({ name: 'n1', backends: () => main, livePeers: () => [], log: () => {} }),
      readiness: () => ({ ready: true, reason: 'test' }),
      uptimeMs: () => 0,
      log: () => {},
    };
    const ops = new Ops(node, () => []);
    const call = async (path: string, params: Record<string, string> = {}): Promise<Record<string, unknown>> => {
      const route = ops.routes().find((r) => r.method === 'GET' && r.path === path)!;
      return (await route.handler({ method: 'GET', path, params, query: new URLSearchParams(), body: undefined } as AdminRequest)) as Record<string, unknown>;
    };

    view = new MainThreadView(main, metrics);
    const { port1, port2 } = new MessageChannel();
    open.push(port1, port2);
    const workerMetrics = new ProxyMetrics();
    workerMetrics.enable();
    const worker = backends();
    const w = new WorkerThreadView(new MessageThreadPort(port2), view.initial(), () => 7, workerMetrics);
    w.setBackends(worker);
    view.join(new MessageThreadPort(port1));

    const ws = worker.get('app')!.servers[1]!;
    ws.connOpened();
    ws.connOpened();
    for (let i = 0; i < 6; i++) workerMetrics.http('app', ws, i === 0 ? 502 : 200, 1, false, '-', '-', 'balance', '');

    const s1 = await call('/api/servers/:backend/:server', { backend: 'app', server: 's1' });
    expect(s1).toMatchObject({ activeConns: 2, requests: 6, errors: 1 });
    const summary = await call('/api/summary');
    expect(summary.connections).toBe(7);
    const row = (summary.servers as Array<Record<string, unknown>>).find((x) => x.server === 's1');
    expect(row).toMatchObject({ activeConns: 2, requests: 6, errors: 1 });
  });
});
