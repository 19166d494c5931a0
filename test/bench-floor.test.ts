// The bench's Node floor (bench/lib/node-floor-server.mjs) must do the traffic's whole work, or its
// figures would flatter Node: every response whole and in order, the persistence cookie and
// Cache-Control inserted, servers in round robin, bytes relayed both ways in tcp mode.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from './helpers/backends.js';
import { useScope } from './helpers/scope.js';
import { waitFor } from './helpers/wait.js';

const root = path.resolve(import.meta.dirname, '..');
const BODY = 'x'.repeat(99) + '\n';

/** An upstream answering each bodiless GET with its own name in a header and a fixed body. */
function upstream(name: string): Promise<{ port: number; server: net.Server }> {
  const res = Buffer.from(`HTTP/1.1 200 OK\r\nX-Server: ${name}\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`);
  const server = net.createServer((s) => {
    let pending = '';
    s.on('data', (d) => {
      pending += d.toString('latin1');
      for (let i = pending.indexOf('\r\n\r\n'); i >= 0; i = pending.indexOf('\r\n\r\n')) {
        pending = pending.slice(i + 4);
        s.write(res);
      }
    });
    s.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as net.AddressInfo).port, server })));
}

/** An upstream echoing every byte back. */
function echo(): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer((s) => {
    s.on('data', (d) => s.write(d));
    s.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as net.AddressInfo).port, server })));
}

async function startFloor(mode: 'http' | 'tcp', ports: number[], defer: (fn: () => void) => void): Promise<number> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [path.join(root, 'bench/lib/node-floor-server.mjs'), mode, String(port), ...ports.map(String)], { stdio: 'ignore' });
  defer(() => { child.kill('SIGKILL'); });
  await waitFor(() => new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  }), 10_000, 'the floor to listen');
  return port;
}

/** Sends `n` keep-alive GETs one after another on one connection; returns the raw responses. */
async function keepAliveGets(port: number, n: number): Promise<string[]> {
  const sock = net.connect(port, '127.0.0.1');
  const out: string[] = [];
  let buf = '';
  try {
    for (let i = 0; i < n; i++) {
      sock.write(`GET /${i} HTTP/1.1\r\nHost: floor.test\r\n\r\n`);
      const res = await new Promise<string>((resolve, reject) => {
        const onData = (d: Buffer): void => {
          buf += d.toString('latin1');
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const len = Number(/\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, end))?.[1]);
          if (buf.length < end + 4 + len) return;
          sock.off('data', onData);
          const r = buf.slice(0, end + 4 + len);
          buf = buf.slice(end + 4 + len);
          resolve(r);
        };
        sock.on('data', onData);
        sock.once('error', reject);
        sock.once('close', () => reject(new Error(`closed after ${out.length} responses`)));
      });
      out.push(res);
    }
  } finally {
    sock.destroy();
  }
  return out;
}

describe('bench Node floor (node-floor-server.mjs)', () => {
  const scope = useScope();

  it('http: forwards keep-alive GETs in round robin and inserts the persistence cookie', async () => {
    const ups = [await upstream('one'), await upstream('two')];
    for (const u of ups) scope.defer(() => { u.server.close(); });
    const port = await startFloor('http', ups.map((u) => u.port), scope.defer);
    const res = await keepAliveGets(port, 6);
    expect(res).toHaveLength(6);
    const servers = res.map((r) => /\r\nX-Server: (\w+)/.exec(r)?.[1]);
    expect(servers).toEqual(['one', 'two', 'one', 'two', 'one', 'two']);
    for (const [i, r] of res.entries()) {
      expect(r.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
      expect(r).toContain(`\r\nSet-Cookie: SERVERID=s${(i % 2) + 1}; path=/\r\n`);
      expect(r).toContain('\r\nCache-Control: private\r\n');
      expect(r.endsWith(`\r\n\r\n${BODY}`)).toBe(true);
    }
  });

  it('tcp: relays bytes both ways, one server per connection in round robin', async () => {
    const up = await echo();
    scope.defer(() => { up.server.close(); });
    const port = await startFloor('tcp', [up.port], scope.defer);
    const sock = net.connect(port, '127.0.0.1');
    scope.defer(() => { sock.destroy(); });
    const big = Buffer.alloc(200_000, 7);
    let got = 0;
    sock.on('data', (d) => { got += d.length; });
    sock.write('hello');
    sock.write(big);
    await waitFor(() => got === 5 + big.length, 10_000, 'the echo of every byte');
    expect(got).toBe(5 + big.length);
  });
});
