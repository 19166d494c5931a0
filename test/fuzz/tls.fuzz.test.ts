/**
 * Seeded hostile-input fuzz of the TLS listener (`bind ... ssl`): the ClientHello parser alone
 * (tls/client-hello.ts) on mutated, truncated and random bytes, then a real proxy fed over raw
 * TCP with garbage records, truncated records, random bytes, plaintext HTTP requests and mutated
 * real ClientHellos (captured from node:tls clients: SNI, ALPN, TLS 1.3 PSK ticket, TLS 1.2
 * session ticket).
 *
 * Checks: the parser never throws and never reads out of range (a result for every input, an
 * Ok only from a handshake record); every connection is closed by the proxy within the
 * deadline, none counted as a completed handshake of garbage; failures are counted; afterwards
 * no handshake is left in progress, no connection is open, and a good HTTPS request succeeds.
 * `FUZZ_LONG=1` runs 100,000 cases; replay with `FUZZ_SEED=...`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import tls from 'node:tls';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { makeCert, tempDir } from '../helpers/certs.js';
import { Rng, fuzzRun } from '../helpers/rng.js';
import { waitFor } from '../helpers/wait.js';
import { HelloStatus, MAX_HELLO_BYTES, parseClientHello } from '../../packages/proxy/src/tls/client-hello.js';
import { handshakesInProgress } from '../../packages/proxy/src/tls/accept.js';
import { metrics, TLS_FAILURE_REASONS } from '../../packages/proxy/src/metrics.js';

const { long: LONG, cases: CASES, seed, replay } = fuzzRun(400);
const PARSER_CASES = LONG ? 1_000_000 : 20_000;
const CASE_DEADLINE_MS = 4000;
const BATCH = 25;

let backend: TestBackend;
let px: RunningProxy;
/** Real first flights: [label, bytes, expected SNI]. */
const hellos: Array<{ label: string; bytes: Buffer; sni: string | undefined }> = [];

/** The first bytes a node:tls client sends with `opts`. */
function captureHello(opts: tls.ConnectionOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer((s) => {
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
        srv.close();
      });
    });
    srv.listen(0, '127.0.0.1', () => {
      const c = tls.connect({ host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port, rejectUnauthorized: false, ...opts });
      c.on('error', () => {});
      setTimeout(() => reject(new Error('no hello')), 3000).unref();
    });
  });
}

/** A session (with a ticket) from a real handshake with the proxy. */
function sessionFrom(port: number, opts: tls.ConnectionOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    s.on('session', (b: Buffer) => {
      resolve(b);
      s.destroy();
    });
    s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
    s.on('error', reject);
  });
}

beforeAll(async () => {
  const dir = tempDir();
  const cert = makeCert(dir, 'site', 'fuzz.test', ['fuzz.test', '*.fuzz.test']);
  backend = await startBackend('web1');
  px = await startProxy(
    `
defaults
    mode http
    timeout connect 500ms
    timeout client 300ms
    timeout server 2s
frontend tlsfuzz
    bind 127.0.0.1:{{port}} ssl crt ${cert.pem} alpn http/1.1
    default_backend app
backend app
    server web1 127.0.0.1:{{b}}
`,
    { b: backend.port },
  );
  const s13 = await sessionFrom(px.port, { servername: 'fuzz.test' });
  const s12 = await sessionFrom(px.port, { servername: 'fuzz.test', maxVersion: 'TLSv1.2' });
  const grab = async (label: string, sni: string | undefined, opts: tls.ConnectionOptions) => hellos.push({ label, bytes: await captureHello(opts), sni });
  await grab('plain', undefined, {});
  await grab('sni+alpn', 'fuzz.test', { servername: 'fuzz.test', ALPNProtocols: ['h2', 'http/1.1'] });
  await grab('tls13-ticket', 'fuzz.test', { servername: 'fuzz.test', session: s13 });
  await grab('tls12-ticket', 'fuzz.test', { servername: 'fuzz.test', session: s12, maxVersion: 'TLSv1.2' });
  await grab('upper-sni', 'a.fuzz.test', { servername: 'A.Fuzz.Test' });
});

afterAll(async () => {
  await px?.close();
  await backend?.close();
});

function mutate(r: Rng, src: Buffer): Buffer {
  const b = Buffer.from(src);
  const kind = r.int(0, 5);
  if (kind === 0) {
    for (let i = r.int(1, 8); i > 0; i--) b[r.int(0, b.length - 1)] = r.int(0, 255);
    return b;
  }
  if (kind === 1) return b.subarray(0, r.int(0, b.length - 1)); // truncated
  if (kind === 2) {
    // A length field (record, handshake, extensions) set to something else.
    const at = r.pick([3, 4, 6, 7, 8, r.int(40, Math.max(40, b.length - 2))]);
    if (at < b.length) b[at] = r.pick([0, 0xff, r.int(0, 255)]);
    return b;
  }
  if (kind === 3) return Buffer.concat([b, Buffer.from(Array.from({ length: r.int(1, 64) }, () => r.int(0, 255)))]);
  if (kind === 4) {
    // A chunk of the hello repeated (extension blocks twice, lists doubled).
    const from = r.int(0, b.length - 1);
    const to = r.int(from, Math.min(b.length, from + 200));
    return Buffer.concat([b.subarray(0, to), b.subarray(from, to), b.subarray(to)]);
  }
  return b;
}

function garbage(r: Rng): Buffer {
  const kind = r.int(0, 6);
  const rand = (n: number) => Buffer.from(Array.from({ length: n }, () => r.int(0, 255)));
  switch (kind) {
    case 0:
      return rand(r.int(1, 3000));
    case 1:
      return Buffer.from(r.pick(['GET / HTTP/1.1\r\nhost: x\r\n\r\n', 'POST /a HTTP/1.0\r\ncontent-length: 3\r\n\r\nabc', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'OPTIONS * HTTP/1.1\r\n\r\n']));
    case 2: {
      // A handshake record header announcing more than ever comes.
      const h = Buffer.from([22, 3, 1, 0, 0]);
      h.writeUInt16BE(r.int(1, 0xffff), 3);
      return Buffer.concat([h, rand(r.int(0, 100))]);
    }
    case 3:
      // Many tiny handshake records (fragmented hello) up to past the bound.
      return Buffer.concat(Array.from({ length: r.int(1, 4000) }, () => Buffer.from([22, 3, 1, 0, 1, r.int(0, 255)])));
    case 4:
      // SSLv2-style hello, alerts, change cipher spec, application data.
      return Buffer.concat([Buffer.from([r.pick([0x80, 21, 20, 23, 24]), 3, r.int(0, 4)]), rand(r.int(0, 50))]);
    case 5:
      return Buffer.alloc(r.int(1, MAX_HELLO_BYTES + 100), 22);
    default:
      return Buffer.from([22, 3, 1]); // truncated header
  }
}

function failuresTotal(): number {
  const f = metrics.tlsCounts('tlsfuzz').failures;
  let n = 0;
  for (let i = 0; i < TLS_FAILURE_REASONS.length; i++) n += f[i]!;
  return n;
}

describe(`TLS listener fuzz (${replay})`, () => {
  it('parses real hellos, and any bytes without throwing', () => {
    for (const h of hellos) {
      const r = parseClientHello(h.bytes);
      expect(r.status, h.label).toBe(HelloStatus.Ok);
      if (r.status === HelloStatus.Ok) {
        expect(r.info.sni, h.label).toBe(h.sni);
        if (h.label.includes('ticket')) expect(r.info.ticketName?.length, h.label).toBe(16);
        if (h.label === 'sni+alpn') expect(r.info.alpn).toEqual(['h2', 'http/1.1']);
      }
      for (let n = 0; n < h.bytes.length; n++) expect(parseClientHello(h.bytes.subarray(0, n)).status, `${h.label} cut at ${n}`).not.toBe(HelloStatus.Ok);
    }
    // The same hello fragmented over two handshake records reads the same.
    const whole = hellos[2]!.bytes;
    const body = whole.subarray(5);
    const cut = 100;
    const rec = (b: Buffer) => Buffer.concat([Buffer.from([22, 3, 1, b.length >> 8, b.length & 0xff]), b]);
    const split = parseClientHello(Buffer.concat([rec(body.subarray(0, cut)), rec(body.subarray(cut))]));
    const one = parseClientHello(whole);
    expect(split).toEqual(one);
    expect(parseClientHello(rec(body.subarray(0, cut))).status).toBe(HelloStatus.Incomplete);
    const r = new Rng(seed);
    for (let i = 0; i < PARSER_CASES; i++) {
      const input = r.chance(0.7) ? mutate(r, r.pick(hellos).bytes) : garbage(r);
      const out = parseClientHello(input);
      if (out.status === HelloStatus.Ok) expect(input[0], `case ${i}`).toBe(22);
    }
  }, LONG ? 1_800_000 : 30_000);

  it('closes every hostile connection, counts it, and keeps serving', async () => {
    const r = new Rng(seed ^ 0x5eed);
    const before = failuresTotal();
    const handshakesBefore = metrics.tlsCounts('tlsfuzz').handshakes;
    let lingering = 0;
    for (let c = 0; c < CASES; c += BATCH) {
      const batch: Array<Promise<void>> = [];
      for (let k = c; k < Math.min(CASES, c + BATCH); k++) {
        const bytes = r.chance(0.6) ? mutate(r, r.pick(hellos).bytes) : garbage(r);
        const halfClose = r.chance(0.5);
        batch.push(
          new Promise<void>((resolve) => {
            const s = net.connect(px.port, '127.0.0.1', () => {
              s.write(bytes);
              if (halfClose) s.end();
            });
            const timer = setTimeout(() => {
              lingering++;
              s.destroy();
              resolve();
            }, CASE_DEADLINE_MS);
            s.resume();
            s.on('error', () => {});
            s.on('close', () => {
              clearTimeout(timer);
              resolve();
            });
          }),
        );
      }
      await Promise.all(batch);
    }
    expect(lingering, `connections the proxy left open past ${CASE_DEADLINE_MS} ms (${replay})`).toBe(0);
    await waitFor(() => handshakesInProgress() === 0 && px.proxy.connectionCount() === 0, 5000, 'handshakes and connections gone');
    // Every case ended as a counted failure (a mutation that still completes a handshake is
    // impossible: the client never sends its Finished).
    expect(failuresTotal() - before).toBe(CASES);
    expect(metrics.tlsCounts('tlsfuzz').handshakes).toBe(handshakesBefore);
    const ok = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: px.port, servername: 'fuzz.test', rejectUnauthorized: false }, () => s.write('GET /after HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'));
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString()));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
    expect(ok).toMatch(/^HTTP\/1\.1 200 /);
  }, LONG ? 1_800_000 : 30_000);
});
