import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { startRawBackend } from '../../../../test/helpers/backends.js';
import { startProxy } from '../../../../test/helpers/proxy.js';
import { writeInPieces } from '../../../../test/helpers/pieces.js';

const CFG = `
defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{{port}}
    default_backend be
backend be
    stick-table type ip size 1k
    stick on src
    server s1 127.0.0.1:{{p1}}
`;

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Collects what `s` receives until it ends, starting to read only after `delayMs`. */
function collect(s: net.Socket, delayMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.pause();
    setTimeout(() => s.resume(), delayMs);
    s.on('data', (c: Buffer) => parts.push(c));
    s.on('end', () => resolve(Buffer.concat(parts)));
    s.on('error', reject);
  });
}

describe('mode tcp relay', () => {
  it('relays 12 MiB each way intact between a client and a server that both read late', async () => {
    // Both directions at once, half-closed at different times, bytes sent before the server
    // connection is up, and both readers late (the proxy's writes back up and it pauses reading).
    const up = randomBytes(12 * 1024 * 1024);
    const down = randomBytes(12 * 1024 * 1024);
    let serverGot: Promise<Buffer> | undefined;
    const raw = await startRawBackend((s) => {
      // The client's FIN may arrive while this side still sends: keep sending (half-open).
      s.allowHalfOpen = true;
      serverGot = collect(s, 300);
      writeInPieces(s, down, () => s.end());
    });
    cleanups.push(() => raw.close());
    const p = await startProxy(CFG, { p1: raw.port });
    cleanups.push(() => p.close());
    // Half-open: the client keeps sending after the server's FIN reached it.
    const c = net.connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
    cleanups.push(() => void c.destroy());
    // The first bytes leave at once, before the proxy's server connection can be up.
    const clientGot = collect(c, 300);
    writeInPieces(c, up, () => c.end());
    const got = await clientGot;
    expect(got.length).toBe(down.length);
    expect(sha(got)).toBe(sha(down));
    const atServer = await serverGot!;
    expect(atServer.length).toBe(up.length);
    expect(sha(atServer)).toBe(sha(up));
  });

  it('delivers what a client sent before it closed, when the server reads it after the client is gone', async () => {
    // The server answers and ends at once but reads late; the client reads at once, so it is
    // fully closed while most of its bytes still wait in the proxy for the server.
    const up = randomBytes(12 * 1024 * 1024);
    let serverGot: Promise<Buffer> | undefined;
    const raw = await startRawBackend((s) => {
      s.allowHalfOpen = true;
      serverGot = collect(s, 1000);
      s.end('bye');
    });
    cleanups.push(() => raw.close());
    const p = await startProxy(CFG, { p1: raw.port });
    cleanups.push(() => p.close());
    // Half-open: the client keeps sending after the server's FIN reached it.
    const c = net.connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
    cleanups.push(() => void c.destroy());
    const clientGot = collect(c, 0);
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    writeInPieces(c, up, () => c.end());
    expect((await clientGot).toString()).toBe('bye');
    await closed;
    const atServer = await serverGot!;
    expect(atServer.length).toBe(up.length);
    expect(sha(atServer)).toBe(sha(up));
  });

  /** What a socket ends with: its bytes, and whether it ended with a FIN (`end`) or an error (reset). */
  function outcome(s: net.Socket): Promise<{ bytes: string; how: string }> {
    return new Promise((resolve) => {
      let bytes = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => (bytes += d));
      s.once('end', () => resolve({ bytes, how: 'end' }));
      s.once('error', (e: NodeJS.ErrnoException) => resolve({ bytes, how: e.code ?? 'error' }));
    });
  }

  async function logged(p: { logs: Array<Record<string, unknown>> }): Promise<Record<string, unknown>> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const l = p.logs.find((x) => x.msg === 'connection');
      if (l !== undefined) return l;
      if (Date.now() > deadline) throw new Error('no connection log line');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it('client FIN first, then the server answers and closes: both peers get every byte and a clean FIN, logged --', async () => {
    // The proxy closes both sockets at the server's FIN (both FINs in, nothing queued) instead
    // of shutting the client down: the answer must still arrive whole, before a FIN, not a reset.
    let atServer: Promise<{ bytes: string; how: string }> | undefined;
    const raw = await startRawBackend((s) => {
      s.allowHalfOpen = true;
      atServer = outcome(s);
      void atServer.then(() => s.end('pong'.repeat(1000)));
    });
    cleanups.push(() => raw.close());
    const p = await startProxy(CFG, { p1: raw.port });
    cleanups.push(() => p.close());
    const c = net.connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
    cleanups.push(() => void c.destroy());
    const atClient = outcome(c);
    c.end('ping');
    expect(await atClient).toEqual({ bytes: 'pong'.repeat(1000), how: 'end' });
    expect(await atServer!).toEqual({ bytes: 'ping', how: 'end' });
    const l = await logged(p);
    expect(l.termination_state).toBe('--');
    expect(l.bytes_read).toBe(4000);
    expect(l.bytes_uploaded).toBe(4);
  });

  it('server FIN first, then the client sends and closes: the server gets those bytes and a clean FIN, logged --', async () => {
    let atServer: Promise<{ bytes: string; how: string }> | undefined;
    const raw = await startRawBackend((s) => {
      s.allowHalfOpen = true;
      atServer = outcome(s);
      s.end('hello');
    });
    cleanups.push(() => raw.close());
    const p = await startProxy(CFG, { p1: raw.port });
    cleanups.push(() => p.close());
    const c = net.connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
    cleanups.push(() => void c.destroy());
    const atClient = outcome(c);
    expect(await atClient).toEqual({ bytes: 'hello', how: 'end' });
    c.end('bye'.repeat(2000));
    expect(await atServer!).toEqual({ bytes: 'bye'.repeat(2000), how: 'end' });
    const l = await logged(p);
    expect(l.termination_state).toBe('--');
    expect(l.bytes_uploaded).toBe(6000);
  });
});
