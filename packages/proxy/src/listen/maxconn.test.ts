import { describe, expect, it } from 'vitest';
import { freePort, startBackend, type TestBackend } from '../../../../test/helpers/backends.js';
import { fill, startProxy, type RunningProxy } from '../../../../test/helpers/proxy.js';
import { parseConfigText } from '@stickmesh/core';
import { acceptQueue, waitFor } from '../../../../test/helpers/wait.js';
import { useScope } from '../../../../test/helpers/scope.js';
import { openClient, type OpenClient } from '../../../../test/helpers/client.js';

const CFG = `
global
    tune.maxaccept {{acc}}
defaults
    mode {{mode}}
    maxconn 2
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{{port}}
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
`;

const scope = useScope();

/** A client that sends `request` and stays open until the test ends. */
const client = (port: number, request: string): OpenClient => openClient(scope, port, request);

const GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';

/** Starts web1 and the proxy on CFG; both are closed after the test. */
async function start(acc: number, mode: 'http' | 'tcp'): Promise<{ be: TestBackend; p: RunningProxy }> {
  const be = await startBackend('web1');
  scope.defer(() => be.close());
  const p = await startProxy(CFG, { acc, mode, p1: be.port });
  scope.defer(() => p.close());
  return { be, p };
}

/** Two clients that fill `maxconn 2` (both answered), and a third left in the accept queue. */
async function fillAndQueue(p: RunningProxy): Promise<{ a: OpenClient; b: OpenClient; c: OpenClient }> {
  const a = client(p.port, GET);
  const b = client(p.port, GET);
  await waitFor(() => a.text().includes('200 OK') && b.text().includes('200 OK'), 5000, 'first two answered');
  const c = client(p.port, GET);
  // Accepted by the kernel, not by the proxy: it sits in the listening socket's queue.
  await waitFor(() => acceptQueue(p.port) === 1, 5000, 'third connection in the accept queue');
  return { a, b, c };
}

describe('maxconn: a full frontend stops accepting, as HAProxy does', () => {
  for (const acc of [1, 4]) {
    it(`http, tune.maxaccept ${acc}: the third connection waits in the backlog, unanswered and open, and is served when a slot frees`, async () => {
      const { p } = await start(acc, 'http');
      const { a, b, c } = await fillAndQueue(p);
      expect(p.proxy.connectionCount()).toBe(2);
      expect(p.proxy.waitingCount()).toBe(0);
      expect(c.text()).toBe('');
      expect(c.closed()).toBe(false);
      a.sock.destroy();
      await waitFor(() => c.text().includes('200 OK'), 5000, 'third connection answered');
      expect(c.closed()).toBe(false);
      expect(acceptQueue(p.port)).toBe(0);
      // The listener accepts again: a fourth client waits only until another slot frees.
      const d = client(p.port, GET);
      await waitFor(() => acceptQueue(p.port) === 1, 5000, 'fourth connection in the accept queue');
      b.sock.destroy();
      await waitFor(() => d.text().includes('200 OK'), 5000, 'fourth connection answered');
    });
  }

  it('tcp: the third connection waits and gets its server once one of the first two closes', async () => {
    const { p } = await start(2, 'tcp');
    const { b, c } = await fillAndQueue(p);
    expect(p.proxy.connectionCount()).toBe(2);
    expect(c.closed()).toBe(false);
    b.sock.destroy();
    await waitFor(() => c.text().includes('200 OK'), 5000, 'third connection answered');
  });

  it('a burst past maxconn is served in turn, none reset', async () => {
    const { p } = await start(8, 'http');
    // Each client closes after its answer, freeing its slot for the next one in the backlog.
    const clients = Array.from({ length: 20 }, () => client(p.port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    await waitFor(() => clients.every((c) => c.closed()), 10000, 'every client answered and closed');
    expect(clients.filter((c) => c.text().startsWith('HTTP/1.1 200')).length).toBe(20);
  });

  it('a reload that keeps the listener of a full frontend lets the waiting connection in (the new frontend has free slots)', async () => {
    const { be, p } = await start(2, 'http');
    const { c } = await fillAndQueue(p);
    const next = parseConfigText(fill(CFG, { acc: 2, mode: 'http', p1: be.port, port: p.port }), 'test.cfg').config;
    await p.proxy.reload(next, p.proxy.tables);
    await waitFor(() => c.text().includes('200 OK'), 5000, 'third connection answered after the reload');
    expect(c.closed()).toBe(false);
  });

  it('global maxconn: the process full pauses every frontend; a connection closing on one lets the other accept', async () => {
    const be = await startBackend('web1');
    scope.defer(() => be.close());
    const port2 = await freePort();
    const cfg = `
global
    maxconn 2
defaults
    mode http
    maxconn 10
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe1
    bind 127.0.0.1:{{port}}
    default_backend be
frontend fe2
    bind 127.0.0.1:{{port2}}
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
`;
    const p = await startProxy(cfg, { p1: be.port, port2 });
    scope.defer(() => p.close());
    const a = client(p.port, GET);
    const b = client(port2, GET);
    await waitFor(() => a.text().includes('200 OK') && b.text().includes('200 OK'), 5000, 'one answered on each frontend');
    const c = client(p.port, GET);
    const d = client(port2, GET);
    await waitFor(() => acceptQueue(p.port) === 1 && acceptQueue(port2) === 1, 5000, 'both frontends stopped accepting');
    expect(p.proxy.connectionCount()).toBe(2);
    b.sock.destroy();
    await waitFor(() => c.text().includes('200 OK') || d.text().includes('200 OK'), 5000, 'one waiting connection answered');
    expect(c.text().includes('200 OK') && d.text().includes('200 OK')).toBe(false);
    expect(p.proxy.connectionCount()).toBe(2);
    a.sock.destroy();
    await waitFor(() => c.text().includes('200 OK') && d.text().includes('200 OK'), 5000, 'both answered');
  });
});
