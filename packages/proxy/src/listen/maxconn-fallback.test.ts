import { describe, expect, it, vi } from 'vitest';
import { startBackend } from '../../../../test/helpers/backends.js';
import { startProxy } from '../../../../test/helpers/proxy.js';
import { waitFor } from '../../../../test/helpers/wait.js';
import { useScope } from '../../../../test/helpers/scope.js';
import { openClient, type OpenClient } from '../../../../test/helpers/client.js';

// No helper process: every listener keeps Node's own descriptor, which cannot pause.
vi.mock('./dup.js', async (orig) => ({ ...(await orig<typeof import('./dup.js')>()), duplicateListener: async () => [] }));

const CFG = `
defaults
    mode http
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

/** A client that sends a GET and stays open until the test ends. */
const client = (port: number): OpenClient => openClient(scope, port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');

describe('maxconn on a listener that cannot pause', () => {
  it('holds the connections past maxconn unread and admits them, oldest first, as slots free', async () => {
    const be = await startBackend('web1');
    scope.defer(() => be.close());
    const p = await startProxy(CFG, { p1: be.port });
    scope.defer(() => p.close());
    const a = client(p.port);
    const b = client(p.port);
    await waitFor(() => a.text().includes('200 OK') && b.text().includes('200 OK'), 5000, 'first two answered');
    const c = client(p.port);
    await waitFor(() => p.proxy.waitingCount() === 1, 5000, 'third held');
    const d = client(p.port);
    await waitFor(() => p.proxy.waitingCount() === 2, 5000, 'fourth held');
    expect(p.proxy.connectionCount()).toBe(2);
    expect(c.text() + d.text()).toBe('');
    expect(c.closed() || d.closed()).toBe(false);
    a.sock.destroy();
    await waitFor(() => c.text().includes('200 OK'), 5000, 'third answered');
    expect(d.text()).toBe('');
    b.sock.destroy();
    await waitFor(() => d.text().includes('200 OK'), 5000, 'fourth answered');
    expect(p.proxy.waitingCount()).toBe(0);
  });
});
