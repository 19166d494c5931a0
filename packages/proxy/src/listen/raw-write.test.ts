import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { RawWriter, rawWritesSupported } from './raw-write.js';
import { waitFor } from '../../../../test/helpers/wait.js';
import { makeCa, makeCert, pkiDir } from '../../../../test/helpers/tls-pki.js';

const open: net.Server[] = [];
const sockets: net.Socket[] = [];

afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of open.splice(0)) s.close();
});

/** A connected pair over loopback: `a` (the writer's side) and `b` (paused: reads nothing yet). */
async function pair(): Promise<{ a: net.Socket; b: net.Socket }> {
  const srv = net.createServer({ pauseOnConnect: true });
  open.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
  const a = net.connect(port, '127.0.0.1');
  sockets.push(a);
  await new Promise<void>((r) => a.once('connect', r));
  const b = await accepted;
  sockets.push(b);
  return { a, b };
}

/** Everything `b` receives until it ends. */
function collect(b: net.Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  b.on('data', (d: Buffer) => parts.push(d));
  b.resume();
  return new Promise((resolve, reject) => {
    b.once('end', () => resolve(Buffer.concat(parts)));
    b.once('error', reject);
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('RawWriter', () => {
  it('takes the raw path on this Node: the bytes arrive without socket.write', async () => {
    expect(rawWritesSupported).toBe(true);
    const { a, b } = await pair();
    const w = new RawWriter(a, () => {});
    const got = collect(b);
    let streamWrites = 0;
    const write = a.write.bind(a);
    a.write = ((...args: Parameters<net.Socket['write']>) => (streamWrites++, write(...args))) as net.Socket['write'];
    expect(w.write(Buffer.from('GET / HTTP/1.1\r\n'))).toBe(true);
    expect(w.write('host: x\r\n\r\n')).toBe(true);
    expect(w.busy).toBe(false);
    expect(streamWrites).toBe(0);
    a.end();
    expect((await got).toString('latin1')).toBe('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
  });

  it('keeps order and reports backpressure when the kernel does not take a write at once', async () => {
    const { a, b } = await pair();
    let drained = 0;
    const w = new RawWriter(a, () => drained++);
    const big = randomBytes(16 * 2 ** 20); // far beyond loopback socket buffers: libuv queues the rest
    const second = randomBytes(2 ** 20);
    expect(w.write(big)).toBe(false);
    expect(w.busy).toBe(true);
    // Later writes, raw or not, queue behind the pending one.
    expect(w.write(second)).toBe(false);
    expect(w.write('tail\r\n')).toBe(false);
    a.write('end');
    a.end();
    const got = await collect(b);
    expect(got.length).toBe(big.length + second.length + 9);
    expect(sha(got)).toBe(sha(Buffer.concat([big, second, Buffer.from('tail\r\nend')])));
    await waitFor(() => drained > 0 && !w.busy);
  });

  it('writes raw again once a pending write completed', async () => {
    const { a, b } = await pair();
    let drained = 0;
    const w = new RawWriter(a, () => drained++);
    const got = collect(b);
    expect(w.write(randomBytes(8 * 2 ** 20))).toBe(false);
    await waitFor(() => drained === 1);
    expect(w.busy).toBe(false);
    expect(w.write('x')).toBe(true);
    a.end();
    expect((await got).length).toBe(8 * 2 ** 20 + 1);
  });

  it('survives destroy with a write pending: no throw, no drain callback after close', async () => {
    const { a, b } = await pair();
    let drained = 0;
    const w = new RawWriter(a, () => drained++);
    expect(w.write(randomBytes(16 * 2 ** 20))).toBe(false);
    const closed = new Promise((r) => a.once('close', r));
    a.destroy();
    // libuv calls the cancelled write back while closing the handle, before Node emits 'close'.
    await closed;
    b.destroy();
    expect(drained).toBe(0);
  });

  it('falls back to socket.write while Node holds queued bytes (corked), same order', async () => {
    const { a, b } = await pair();
    const w = new RawWriter(a, () => {});
    const got = collect(b);
    a.cork();
    a.write('one,');
    expect(w.write('two,')).toBe(true); // through socket.write: below its high-water mark
    a.uncork();
    expect(w.write('three')).toBe(true);
    a.end();
    expect((await got).toString()).toBe('one,two,three');
  });

  it('on a TLS socket: a write handed to the handle at once frees its buffer (holds false), one queued behind it does not', async () => {
    const pki = pkiDir();
    try {
      const cert = makeCert(makeCa(pki.dir, 'ca'), 'srv', ['127.0.0.1']);
      const { a, b } = await pair();
      const server = new tls.TLSSocket(b, { isServer: true, secureContext: tls.createSecureContext({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }) });
      sockets.push(server);
      const client = tls.connect({ socket: a, rejectUnauthorized: false });
      sockets.push(client);
      await new Promise<void>((r) => server.once('secure', () => r()));
      const got = collect(client);
      let drained = 0;
      const w = new RawWriter(server, () => drained++);
      // Larger than a TLS record: several records from one write.
      const first = randomBytes(40000);
      const second = randomBytes(3000);
      const want = Buffer.concat([first, second]);
      w.write(first);
      expect(w.holds).toBe(false);
      expect(w.busy).toBe(true); // Node completes the write later (from an immediate)
      first.fill(0); // free, says holds: the bytes already left for OpenSSL
      w.write(second); // queued behind the first in Node's Writable
      expect(w.holds).toBe(true);
      await waitFor(() => !w.busy, 2000);
      expect(w.holds).toBe(false);
      server.end();
      const all = await got;
      expect(createHash('sha256').update(all).digest('hex')).toBe(createHash('sha256').update(want).digest('hex'));
    } finally {
      pki.rm();
    }
  });
});
