/**
 * `explain` and `table show` run on the main thread, over main's backends and its stick tables;
 * with threads those tables are shared, so what a worker thread stores is what main shows, and
 * with the view applied a worker decides as main's explain says.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { attachTables, buildTables, parseConfigText, tableHandles, type StickTable, type StickTableHandle } from '@stickmesh/core';
import { RuntimeBackend } from '../runtime/backend.js';
import { RuntimeServer } from '../runtime/server.js';
import { explainBackend } from '../runtime/explain.js';
import { MessageThreadPort } from './port.js';
import { ServerViewPublisher, ServerViewSubscriber } from './view.js';

const CONFIG = `
backend app
  mode http
  stick-table type ip size 1k expire 10m
  stick on src
  server s0 10.0.0.1:80
  server s1 10.0.0.2:80
  server s2 10.0.0.3:80
`;

const open: MessagePort[] = [];
afterEach(() => {
  for (const p of open.splice(0)) p.close();
});

function backendsOf(tables: ReadonlyMap<string, StickTable>): Map<string, RuntimeBackend> {
  const cfg = parseConfigText(CONFIG, 't.cfg', 'haproxy', {}).config;
  return new Map(cfg.backends.map((b) => [b.name, new RuntimeBackend(b, b.servers.map((sc, i) => new RuntimeServer(i, sc, sc.host)), tables)]));
}

/** What explain decided (its remaining fields, like the entry's time left, move with the clock). */
const decision = (x: Record<string, unknown>): unknown => ({ decidedBy: x.decidedBy, server: x.server, steps: x.steps });

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('explain and table show see the whole node', () => {
  it("a worker's stick write is what main's explain and table show; with the view both decide alike", async () => {
    const cfg = parseConfigText(CONFIG, 't.cfg', 'haproxy', {}).config;
    const mainTables = buildTables(cfg, 'n1', undefined, { shared: true });
    // The handles cross to the worker as a message does.
    const { port1, port2 } = new MessageChannel();
    open.push(port1, port2);
    const got = new Promise<Record<string, StickTableHandle>>((r) => port2.once('message', (m: { handles: Record<string, StickTableHandle> }) => r(m.handles)));
    port1.postMessage({ handles: tableHandles(mainTables) });
    const workerTables = attachTables(cfg, 'n1', await got);
    const main = backendsOf(mainTables);
    const worker = backendsOf(workerTables);
    const pub = new ServerViewPublisher({ shared: true });
    pub.setBackends(main);
    const sub = new ServerViewSubscriber(new MessageThreadPort(port2));
    sub.setBackends(worker);
    pub.addPort(new MessageThreadPort(port1));
    await until(() => sub.applied === 1);

    // The worker's request from 10.1.2.3 stored its server (as stickStoreRequest does).
    workerTables.get('app')!.setLocal('10.1.2.3', 's1');
    // table show (main's table) and explain (main's backends) see it.
    expect(mainTables.get('app')!.lookup('10.1.2.3')).toBe('s1');
    const ex = explainBackend(main.get('app')!, '10.1.2.3', undefined, 0);
    expect(ex.decidedBy).toBe('stick');
    expect(ex.server).toBe('s1');
    expect(decision(explainBackend(worker.get('app')!, '10.1.2.3', undefined, 0))).toEqual(decision(ex));

    // s1 goes down by main's checks: explain says the key moves, and the worker moves it the same way.
    main.get('app')!.servers[1]!.checkUp = false;
    main.get('app')!.rebuildSoon();
    await until(() => sub.applied === 2);
    const moved = explainBackend(main.get('app')!, '10.1.2.3', undefined, 0);
    expect(moved.server).not.toBe('s1');
    expect(decision(explainBackend(worker.get('app')!, '10.1.2.3', undefined, 0))).toEqual(decision(moved));
  });
});
