/**
 * Session tickets on an ssl bind follow the TicketKeys ring: a handshake starts with the context
 * holding the key named in the offered ticket (OpenSSL decrypts with the initial context's keys,
 * whatever context SNI switches to), new tickets use the current key, a key out of the ring
 * means a full handshake.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import tls from 'node:tls';
import { Writable } from 'node:stream';
import pino from 'pino';
import { parseConfigText, TimerWheel, type TicketKeys } from '@stickmesh/core';
import { StickmeshProxy } from '../proxy.js';
import { startBackend, freePort, type TestBackend } from '../../../../test/helpers/backends.js';
import { makeCert, tempDir } from '../../../../test/helpers/certs.js';
import { metrics } from '../metrics.js';

/** A ring the test rotates by hand. */
class Ring implements TicketKeys {
  keys: Buffer[] = [];
  private listeners = new Set<() => void>();
  current(): Buffer | undefined {
    return this.keys[0];
  }
  byName(name: Uint8Array): Buffer | undefined {
    return this.keys.find((k) => k.subarray(0, 16).equals(name));
  }
  all(): readonly Buffer[] {
    return this.keys;
  }
  onChange(l: () => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(keys: Buffer[]): void {
    this.keys = keys;
    for (const l of this.listeners) l();
  }
}

/** A TLS connection that sends one request and waits for the close; answers reuse and the session. */
function connect(port: number, servername: string, session?: Buffer): Promise<{ reused: boolean; session: Buffer | undefined; subject: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false, ...(session ? { session } : {}) });
    let sess: Buffer | undefined;
    s.on('session', (b: Buffer) => (sess = b));
    s.on('error', reject);
    s.once('secureConnect', () => {
      const subject = s.getPeerCertificate().subject?.CN ?? '';
      const reused = s.isSessionReused();
      s.write('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
      s.resume();
      s.on('close', () => resolve({ reused, session: sess, subject }));
    });
  });
}

let be: TestBackend;
let proxy: StickmeshProxy;
let port: number;
let wheel: TimerWheel;
const ring = new Ring();
const K1 = randomBytes(48);
const K2 = randomBytes(48);

beforeAll(async () => {
  const dir = tempDir();
  const def = makeCert(dir, 'a-default', 'default.test');
  const other = makeCert(dir, 'b-other', 'other.test');
  be = await startBackend('web1');
  port = await freePort();
  ring.set([K1]);
  const text = `
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend tls
    bind 127.0.0.1:${port} ssl crt ${def.pem} crt ${path.join(dir, 'b-other.pem')}
    default_backend app
backend app
    server web1 127.0.0.1:${be.port}
`;
  void other;
  wheel = new TimerWheel(20, 1024);
  const logger = pino({ level: 'silent' }, new Writable({ write: (_c, _e, cb) => cb() }));
  proxy = await StickmeshProxy.create(parseConfigText(text, 'test.cfg').config, { logger, wheel, ticketKeys: ring });
  await proxy.listen();
});

afterAll(async () => {
  await proxy.drain(1000);
  wheel.stop();
  await be.close();
});

describe('ticket keys of an ssl bind', () => {
  it('resumes a ticket of a previous key still in the ring, through the SNI-switched certificate; issues with the current key', async () => {
    const first = await connect(port, 'other.test');
    expect(first.subject).toBe('other.test');
    expect(first.reused).toBe(false);
    expect(first.session!.includes(K1.subarray(0, 16))).toBe(true);
    ring.set([K2, K1]);
    const fresh = await connect(port, 'other.test');
    expect(fresh.session!.includes(K2.subarray(0, 16))).toBe(true);
    const resumed = await connect(port, 'other.test', first.session);
    expect(resumed.reused).toBe(true);
    const counts = metrics.tlsCounts('tls');
    expect(counts.resumed).toBeGreaterThanOrEqual(1);
  });

  it('does a full handshake when the ticket key left the ring', async () => {
    ring.set([K1]);
    const first = await connect(port, 'default.test');
    ring.set([K2]);
    const again = await connect(port, 'default.test', first.session);
    expect(again.reused).toBe(false);
  });

  it('would not resume if the context were chosen without the ticket name (control: OpenSSL uses the initial context keys)', async () => {
    ring.set([K1]);
    const first = await connect(port, 'other.test');
    // K1 stays accepted but a stale name lookup is simulated by a ring that hides it from byName.
    const hidden = ring.byName.bind(ring);
    ring.byName = () => undefined;
    ring.set([K2, K1]);
    const again = await connect(port, 'other.test', first.session);
    ring.byName = hidden;
    expect(again.reused).toBe(false);
  });
});
