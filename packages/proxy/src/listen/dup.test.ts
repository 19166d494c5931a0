import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import { startBackend } from '../../../../test/helpers/backends.js';
import { fill, startProxy, type RunningProxy } from '../../../../test/helpers/proxy.js';
import { parseConfigText } from '@stickmesh/core';
import { waitFor, processAlive } from '../../../../test/helpers/wait.js';
import { dupHelperPid, HELPER_IDLE_MS } from './dup.js';

const CFG = `
global
    tune.maxaccept {{acc}}
defaults
    mode http
    maxconn {{maxconn}}
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{{port}}
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
`;

let cleanups: Array<() => Promise<void> | void> = [];
/** Every socket `burst` opened, so a test can close them while the burst is running. */
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
  for (const s of sockets.splice(0)) s.destroy();
});

/** Descriptors of this process that refer to the socket listening on `port` (Linux /proc). */
function listenerFds(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let inode = '';
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(`:${hexPort}`) && f[3] === '0A') inode = f[9] ?? '';
  }
  if (inode === '') return 0;
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === `socket:[${inode}]`) n++;
    } catch {
      /* closed meanwhile */
    }
  }
  return n;
}

async function proxy(acc: number, maxconn: number): Promise<RunningProxy & { reloadWith(acc: number): Promise<void> }> {
  const be = await startBackend('web1');
  cleanups.push(() => be.close());
  const p = await startProxy(CFG, { acc, maxconn, p1: be.port });
  cleanups.push(() => p.close());
  const reloadWith = (a: number) => p.proxy.reload(parseConfigText(fill(CFG, { acc: a, maxconn, p1: be.port, port: p.port }), 'test.cfg').config, p.proxy.tables);
  return { ...p, reloadWith };
}

/** Opens `n` connections at once, sends one keep-alive request on each, resolves with the status lines. */
async function burst(port: number, n: number): Promise<{ answered: number; socks: net.Socket[] }> {
  const socks: net.Socket[] = [];
  const answered = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect({ port, host: '127.0.0.1' }, () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
        socks.push(s);
        sockets.push(s);
        s.once('data', (d: Buffer) => resolve(d.toString('latin1').startsWith('HTTP/1.1 200')));
        s.on('error', () => resolve(false));
        s.on('close', () => resolve(false));
      }),
    ),
  );
  return { answered: answered.filter(Boolean).length, socks };
}

describe('tune.maxaccept: several descriptors per listening socket', () => {
  it('opens the listening socket maxaccept times and serves a burst through all of them', async () => {
    const p = await proxy(6, 1000);
    expect(listenerFds(p.port)).toBe(6);
    const { answered, socks } = await burst(p.port, 120);
    for (const s of socks) s.destroy();
    expect(answered).toBe(120);
  });

  it('keeps one descriptor with tune.maxaccept 1', async () => {
    const p = await proxy(1, 1000);
    expect(listenerFds(p.port)).toBe(1);
  });

  it('enforces the frontend maxconn across all descriptors: the rest wait, none is closed', async () => {
    const p = await proxy(8, 5);
    const first = burst(p.port, 20);
    await waitFor(() => p.proxy.connectionCount() === 5, 2000);
    // The full frontend stopped accepting on every descriptor: the 15 others wait unaccepted.
    expect(p.proxy.connectionCount()).toBe(5);
    expect(p.proxy.waitingCount()).toBe(0);
    // Closing the connections as they are answered lets the rest in, five at a time.
    const done = setInterval(() => {
      for (const s of sockets) if (s.bytesRead > 0) s.destroy();
    }, 10);
    cleanups.push(() => clearInterval(done));
    const { answered } = await first;
    expect(answered).toBe(20);
  });

  it('closes every descriptor when the proxy stops', async () => {
    const p = await proxy(4, 1000);
    const port = p.port;
    expect(listenerFds(port)).toBe(4);
    p.proxy.close();
    await waitFor(() => listenerFds(port) === 0, 2000);
  });

  it('lets the helper process go once idle, and starts a new one for a reload', async () => {
    const p = await proxy(3, 1000);
    expect(listenerFds(p.port)).toBe(3);
    const pid = dupHelperPid();
    expect(pid).toBeTypeOf('number');
    await waitFor(() => dupHelperPid() === undefined && !processAlive(pid!), HELPER_IDLE_MS + 5000);
    // The descriptors it made stay open and accept.
    expect(listenerFds(p.port)).toBe(3);
    await p.reloadWith(5);
    expect(listenerFds(p.port)).toBe(5);
    const { answered, socks } = await burst(p.port, 40);
    for (const s of socks) s.destroy();
    expect(answered).toBe(40);
  });

  it('applies a changed tune.maxaccept to the listener a reload keeps', async () => {
    const p = await proxy(2, 1000);
    expect(listenerFds(p.port)).toBe(2);
    await p.reloadWith(7);
    expect(listenerFds(p.port)).toBe(7);
    const more = await burst(p.port, 60);
    for (const s of more.socks) s.destroy();
    expect(more.answered).toBe(60);
    await p.reloadWith(1);
    await waitFor(() => listenerFds(p.port) === 1, 2000);
    const fewer = await burst(p.port, 20);
    for (const s of fewer.socks) s.destroy();
    expect(fewer.answered).toBe(20);
  });
});
