import { afterEach, describe, expect, it } from 'vitest';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { parseConfigText, type ServerConfig } from '@stickmesh/core';
import { RuntimeBackend } from '../runtime/backend.js';
import { RuntimeServer } from '../runtime/server.js';
import { MessageThreadPort } from './port.js';
import { ServerViewPublisher, ServerViewSubscriber, VIEW_KIND } from './view.js';

const CONFIG = `
backend app
  mode http
  balance leastconn
  cookie SRV insert dynamic
  dynamic-cookie-key k1
  server s0 10.0.0.1:80
  server s1 10.0.0.2:80
  server s2 10.0.0.3:80
backend rr
  mode http
  server a 10.0.1.1:80 weight 3
  server b 10.0.1.2:80 weight 1
`;

/** One thread's backends built from CONFIG, plus a discovered slot in `app` (index 3). */
function buildBackends(): Map<string, RuntimeBackend> {
  const cfg = parseConfigText(CONFIG, 't.cfg', 'haproxy', {}).config;
  const out = new Map<string, RuntimeBackend>();
  for (const b of cfg.backends) {
    const servers = b.servers.map((sc, i) => new RuntimeServer(i, sc, sc.host));
    if (b.name === 'app') {
      const sc: ServerConfig = { ...b.servers[0]!, name: 'dns1', host: 'svc.local', port: 80 };
      servers.push(new RuntimeServer(servers.length, sc, '', true));
    }
    out.set(b.name, new RuntimeBackend(b, servers));
  }
  return out;
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

const open: MessagePort[] = [];
afterEach(() => {
  for (const p of open.splice(0)) p.close();
});

/** Main's backends and a worker's, the two ends of a MessageChannel between them. */
function harness(): { main: Map<string, RuntimeBackend>; worker: Map<string, RuntimeBackend>; pub: ServerViewPublisher; sub: ServerViewSubscriber; mainPort: MessageThreadPort } {
  const { port1, port2 } = new MessageChannel();
  open.push(port1, port2);
  const main = buildBackends();
  const worker = buildBackends();
  const pub = new ServerViewPublisher({ shared: true });
  pub.setBackends(main);
  const sub = new ServerViewSubscriber(new MessageThreadPort(port2));
  sub.setBackends(worker);
  const mainPort = new MessageThreadPort(port1);
  return { main, worker, pub, sub, mainPort };
}

const names = (b: RuntimeBackend): string[] => b.candidates.map((s) => s.name);

describe('one view of the servers per node', () => {
  it('a worker that joins gets the full view: health, admin state, weights, addresses', async () => {
    const { main, worker, pub, sub, mainPort } = harness();
    const app = main.get('app')!;
    app.servers[1]!.checkUp = false;
    app.servers[1]!.lastCheckStatus = 'L4CON refused';
    app.servers[2]!.admin = 'drain';
    app.servers[0]!.adminWeight = 7;
    app.servers[0]!.weight = 7;
    app.servers[3]!.setTarget({ address: '10.9.9.9', port: 8080, weight: 2 }); // as discovery does (proxy.ts)
    app.refreshCookie(app.servers[3]!);
    app.addressesChanged();
    pub.addPort(mainPort);
    await until(() => sub.applied > 0);
    const w = worker.get('app')!;
    expect(names(w)).toEqual(names(app));
    expect(names(w)).toEqual(['dns1', 's0']); // discovered servers order the candidates by identity
    expect(w.servers[1]!.checkUp).toBe(false);
    expect(w.servers[1]!.lastCheckStatus).toBe('L4CON refused');
    expect(w.servers[2]!.admin).toBe('drain');
    expect(w.servers[0]!.weight).toBe(7);
    expect(w.servers[0]!.adminWeight).toBe(7);
    expect(w.servers[3]!.addrKey).toBe('10.9.9.9:8080');
    expect(w.servers[3]!.baseWeight).toBe(2);
    // The dynamic cookie follows the discovered address, as on main.
    expect(app.servers[3]!.cookieValue).toBeDefined();
    expect(w.servers[3]!.cookieValue).toBe(app.servers[3]!.cookieValue);
    expect(w.serverByCookie(app.servers[3]!.cookieValue!)).toBe(w.servers[3]);
  });

  it('changes reach the worker coalesced per turn, each backend sent whole', async () => {
    const { main, worker, pub, sub, mainPort } = harness();
    pub.addPort(mainPort);
    await until(() => sub.applied === 1);
    const app = main.get('app')!;
    const sentBefore = pub.sent;
    // A burst in one turn: checks fail, an admin drain, a weight set (as server-states.ts does).
    app.servers[0]!.checkUp = false;
    app.rebuildSoon();
    app.servers[1]!.admin = 'maint';
    app.rebuildSoon();
    const rr = main.get('rr')!;
    rr.servers[1]!.weight = 9;
    rr.servers[1]!.adminWeight = 9;
    rr.rebuild();
    await until(() => sub.applied === 2);
    expect(pub.sent - sentBefore).toBe(1);
    expect(names(worker.get('app')!)).toEqual(['s2']);
    expect(worker.get('rr')!.servers[1]!.weight).toBe(9);
    // Back up: the worker follows.
    app.servers[0]!.checkUp = true;
    app.rebuildSoon();
    await until(() => sub.applied === 3);
    expect(names(worker.get('app')!)).toEqual(['s0', 's2']);
  });

  it('a worker whose backends were rebuilt (reload) takes the last state before serving', async () => {
    const { main, sub, pub, mainPort } = harness();
    pub.addPort(mainPort);
    main.get('app')!.servers[2]!.checkUp = false;
    main.get('app')!.rebuild();
    await until(() => sub.applied === 2);
    const fresh = buildBackends();
    sub.setBackends(fresh);
    expect(names(fresh.get('app')!)).toEqual(['s0', 's1']);
  });

  it('without a view the worker keeps its own state (the assertion above can fail)', () => {
    const main = buildBackends();
    const worker = buildBackends();
    main.get('app')!.servers[0]!.checkUp = false;
    main.get('app')!.rebuild();
    expect(names(worker.get('app')!)).not.toEqual(names(main.get('app')!));
  });
});

describe('leastconn counts shared by every thread', () => {
  it("a connection one thread opens counts in the other thread's picks", async () => {
    const { main, worker, pub, sub, mainPort } = harness();
    pub.addPort(mainPort);
    await until(() => sub.applied === 1);
    const w = worker.get('app')!;
    const m = main.get('app')!;
    // Worker B (here: main's backend objects stand in for a second worker) opens 3 connections to s0 and s1.
    for (let i = 0; i < 3; i++) {
      m.servers[0]!.connOpened();
      m.servers[1]!.connOpened();
    }
    expect(w.servers[0]!.activeConns).toBe(3);
    expect(w.servers[0]!.threadConns).toBe(0);
    // Leastconn in the worker therefore avoids s0 and s1.
    for (let i = 0; i < 5; i++) expect(w.pick(0)!.name).toBe('s2');
    w.servers[2]!.connOpened();
    expect(m.servers[2]!.activeConns).toBe(1);
    for (let i = 0; i < 3; i++) {
      m.servers[0]!.connClosed();
      m.servers[1]!.connClosed();
    }
    w.servers[2]!.connClosed();
    expect(w.servers.map((s) => s.activeConns)).toEqual([0, 0, 0, 0]);
  });

  it('moving to a new shared cell (reload) carries the open connections along', async () => {
    const { main, worker, pub, sub, mainPort } = harness();
    pub.addPort(mainPort);
    await until(() => sub.applied === 1);
    const w = worker.get('app')!;
    w.servers[0]!.connOpened();
    w.servers[0]!.connOpened();
    const main2 = buildBackends();
    pub.setBackends(main2); // main reloaded: new backends, new cells, full view
    await until(() => sub.applied === 2);
    expect(main2.get('app')!.servers[0]!.activeConns).toBe(2);
    expect(main.get('app')!.servers[0]!.activeConns).toBe(0);
    w.servers[0]!.connClosed();
    w.servers[0]!.connClosed();
    expect(main2.get('app')!.servers[0]!.activeConns).toBe(0);
  });

  it('unshared (nbthread 1) counts stay in the server object', () => {
    const b = buildBackends().get('app')!;
    b.servers[1]!.connOpened();
    expect(b.servers[1]!.activeConns).toBe(1);
    expect(b.pick(0)!.name).not.toBe('s1');
    expect(VIEW_KIND).toBe('sm:view');
  });
});
