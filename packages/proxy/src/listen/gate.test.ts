import { describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import { AcceptGate, GATE_MAX_HELD } from './gate.js';
import { Listener } from './listener.js';
import { waitFor } from '../../../../test/helpers/wait.js';
import { useScope } from '../../../../test/helpers/scope.js';

const scope = useScope();

async function gatedHttp(gate: AcceptGate): Promise<{ server: http.Server; port: number; served: () => number }> {
  let served = 0;
  const server = http.createServer((_req, res) => {
    served++;
    res.end('ok');
  });
  await new Promise<void>((resolve) =>
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      gate.attach(server);
      resolve();
    }),
  );
  scope.defer(() => {
    server.closeAllConnections();
    server.close();
  });
  return { server, port: (server.address() as net.AddressInfo).port, served: () => served };
}

function client(port: number): { text: () => string; closed: () => boolean } {
  let text = '';
  let closed = false;
  const s = net.connect({ host: '127.0.0.1', port }, () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  s.on('data', (d: Buffer) => (text += d.toString('latin1')));
  s.on('error', () => (closed = true));
  s.on('close', () => (closed = true));
  scope.defer(() => s.destroy());
  return { text: () => text, closed: () => closed };
}

describe('AcceptGate', () => {
  it('holds connections unanswered until open, then serves them in arrival order and later ones directly', async () => {
    const gate = new AcceptGate();
    const h = await gatedHttp(gate);
    const a = client(h.port);
    const b = client(h.port);
    await waitFor(() => gate.waiting === 2, 5000, 'two held');
    expect(h.served()).toBe(0);
    expect(a.text()).toBe('');
    gate.open();
    await waitFor(() => a.text().includes('200 OK') && b.text().includes('200 OK'), 5000, 'held ones answered');
    const c = client(h.port);
    await waitFor(() => c.text().includes('200 OK'), 5000, 'later one answered');
    expect(gate.waiting).toBe(0);
    expect(h.served()).toBe(3);
  });

  it('close: held connections are closed unanswered, and so are later ones', async () => {
    const gate = new AcceptGate();
    const h = await gatedHttp(gate);
    const a = client(h.port);
    await waitFor(() => gate.waiting === 1, 5000, 'one held');
    gate.close();
    await waitFor(() => a.closed(), 5000, 'held one closed');
    const b = client(h.port);
    await waitFor(() => b.closed(), 5000, 'later one closed');
    expect(a.text() + b.text()).toBe('');
    expect(h.served()).toBe(0);
    // Open after close does nothing: the start failed.
    gate.open();
    expect(gate.isOpen).toBe(false);
  });

  it(`holds at most ${GATE_MAX_HELD} connections; beyond, new ones are closed`, async () => {
    const gate = new AcceptGate();
    const h = await gatedHttp(gate);
    const n = GATE_MAX_HELD + 20;
    const clients = Array.from({ length: n }, () => client(h.port));
    await waitFor(() => gate.waiting === GATE_MAX_HELD && clients.filter((c) => c.closed()).length === 20, 10000, 'bound reached');
    gate.open();
    await waitFor(() => clients.filter((c) => c.text().includes('200 OK')).length === GATE_MAX_HELD, 10000, 'held ones answered');
  });

  it('does nothing to a listener attached after it opened', async () => {
    const gate = new AcceptGate();
    gate.open();
    const h = await gatedHttp(gate);
    const a = client(h.port);
    await waitFor(() => a.text().includes('200 OK'), 5000, 'answered at once');
    expect(gate.waiting).toBe(0);
  });

  it('serves a connection held on a listener whose first descriptor was replaced before the gate opened', async () => {
    const gate = new AcceptGate();
    const l = await Listener.bind('127.0.0.1', 0, function answer(socket) {
      socket.resume();
      socket.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    }, gate);
    scope.defer(() => l.close());
    const a = client(l.port);
    await waitFor(() => gate.waiting === 1, 5000, 'held on the first descriptor');
    await l.spread(2, gate);
    expect(l.descriptors).toBe(2);
    const b = client(l.port);
    await waitFor(() => gate.waiting === 2, 5000, 'held on a received descriptor');
    gate.open();
    await waitFor(() => a.text().includes('200 OK') && b.text().includes('200 OK'), 5000, 'both answered');
  });
});
