import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { readInto, userBufferSupported } from './user-buffer.js';
import { waitFor } from '../../../../test/helpers/wait.js';
import { makeCa, makeCert, pkiDir } from '../../../../test/helpers/tls-pki.js';

let cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.reverse()) c();
  cleanups = [];
});

/** A server with the given options; resolves with its port and the sockets it accepted. */
async function server(opts: net.ServerOpts): Promise<{ port: number; accepted: net.Socket[] }> {
  const accepted: net.Socket[] = [];
  const srv = net.createServer(opts, (s) => accepted.push(s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => {
    for (const s of accepted) s.destroy();
    srv.close();
  });
  return { port: (srv.address() as net.AddressInfo).port, accepted };
}

function client(port: number): net.Socket {
  const c = net.connect({ port, host: '127.0.0.1' });
  cleanups.push(() => c.destroy());
  return c;
}

describe('readInto: accepted sockets reading into caller buffers', () => {
  it('is supported by the Node this runs on', () => {
    expect(userBufferSupported).toBe(true);
  });

  it('hands every read of a paused accepted socket to the callback, in the buffer the generator gave', async () => {
    const { port, accepted } = await server({ pauseOnConnect: true });
    const c = client(port);
    await waitFor(() => accepted.length === 1, 2000);
    const mine = Buffer.alloc(8);
    const got: string[] = [];
    let foreign = 0;
    const onData: unknown[] = [];
    accepted[0]!.on('data', (d) => onData.push(d));
    expect(
      readInto(accepted[0]!, () => mine, (n, buf) => {
        if (buf !== mine) foreign++;
        got.push(buf.subarray(0, n).toString());
        return true;
      }),
    ).toBe(true);
    c.write('0123456789abcdef-xyz');
    await waitFor(() => got.join('') === '0123456789abcdef-xyz', 2000);
    expect(got.every((g) => g.length <= 8)).toBe(true);
    expect(foreign).toBe(0);
    expect(onData).toHaveLength(0);
    // 'end' still arrives through the stream.
    let ended = false;
    accepted[0]!.on('end', () => (ended = true));
    c.end();
    await waitFor(() => ended, 2000);
  });

  it('changes nothing for a socket that already reads', async () => {
    const { port, accepted } = await server({});
    const c = client(port);
    await waitFor(() => accepted.length === 1, 2000);
    const data: string[] = [];
    accepted[0]!.on('data', (d: Buffer) => data.push(d.toString()));
    expect(readInto(accepted[0]!, () => Buffer.alloc(8), () => true)).toBe(false);
    c.write('still streams');
    await waitFor(() => data.join('') === 'still streams', 2000);
  });

  it('hands a TLS socket\'s decrypted reads to the callback when set up from its secure event, bytes sent with the handshake included', async () => {
    const pki = pkiDir();
    cleanups.push(pki.rm);
    const cert = makeCert(makeCa(pki.dir, 'ca'), 'srv', ['127.0.0.1']);
    const context = tls.createSecureContext({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) });
    const { port, accepted } = await server({ pauseOnConnect: true });
    // Written before the handshake ends: the client sends it right behind its Finished.
    const first = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
    const c = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    cleanups.push(() => c.destroy());
    c.write(first);
    await waitFor(() => accepted.length === 1, 2000);
    const t = new tls.TLSSocket(accepted[0]!, { isServer: true, secureContext: context });
    cleanups.push(() => t.destroy());
    const mine = Buffer.alloc(16);
    const got: string[] = [];
    let foreign = 0;
    let taken: boolean | null = null;
    const onData: unknown[] = [];
    t.on('data', (d) => onData.push(d));
    t.once('secure', () => {
      taken = readInto(t, () => mine, (n, buf) => {
        if (buf !== mine) foreign++;
        got.push(buf.subarray(0, n).toString());
        return true;
      });
    });
    await waitFor(() => taken !== null, 2000);
    expect(taken).toBe(true);
    c.write('second-write-0123456789');
    await waitFor(() => got.join('') === first + 'second-write-0123456789', 2000);
    expect(got.every((g) => g.length <= 16)).toBe(true);
    expect(foreign).toBe(0);
    expect(onData).toHaveLength(0);
    // Writes still go through the TLS stream, and the client's end arrives as 'end'.
    let echoed = '';
    c.on('data', (d: Buffer) => (echoed += d.toString()));
    t.write('pong');
    await waitFor(() => echoed === 'pong', 2000);
    let ended = false;
    t.on('end', () => (ended = true));
    c.end();
    await waitFor(() => ended, 2000);
  });
});
