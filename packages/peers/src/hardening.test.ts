/**
 * Regression tests for the peers port before authentication (issue #17, findings 1-4): hostile
 * knocks, slowloris heads, connection floods, large pre-auth frames, wrong-MAC floods and hostile
 * close reasons. Hostile clients connect from their own loopback addresses (127.72.x.y) so the
 * per-source bounds they trip never touch the legitimate peer on 127.0.0.1.
 */
import http from 'node:http';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { waitFor } from '../../../test/helpers/wait.js';
import { makeNode, statusOf, type Node, type NodeOpts } from '../test/harness.js';
import { decode, encode, PEERS_PATH, PROTO } from './codec.js';
import { computeMac } from './handshake.js';
import { REFUSAL_REASONS } from './refusals.js';

const started: Node[] = [];
const servers: { close(): void }[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) s.close();
  await Promise.all(started.splice(0).map((n) => n.svc.stop()));
});

/** Node b (acceptor for a) started; a is configured but not started unless asked. */
async function acceptor(opts: NodeOpts = {}): Promise<Node> {
  const b = makeNode('b', { a: 0 }, opts);
  started.push(b);
  await b.svc.start();
  return b;
}

async function legitPeer(b: Node): Promise<Node> {
  const a = makeNode('a', { b: b.svc.address.port });
  started.push(a);
  await a.svc.start();
  await waitFor(() => statusOf(a, 'b').state === 'live' && statusOf(b, 'a').state === 'live', 10_000, 'legit session live');
  return a;
}

function get(port: number, path: string, method = 'GET'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

interface Raw {
  s: net.Socket;
  /** Resolves with ms from connect to close. */
  closed: Promise<number>;
  data: Buffer[];
}

function raw(port: number, localAddress: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    const data: Buffer[] = [];
    const closed = new Promise<number>((r) => s.once('close', () => r(Date.now() - t0)));
    s.on('data', (d: Buffer) => data.push(d));
    s.on('error', () => {});
    s.once('connect', () => resolve({ s, closed, data }));
    s.once('error', reject);
  });
}

const isClosed = (r: Raw) => r.s.destroyed || r.s.readyState === 'closed';
const upgradeHead = (key = randomBytes(16).toString('base64')) =>
  `GET ${PEERS_PATH} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`;

/** A WebSocket from `localAddress` that has received the server's hello. */
function helloFrom(port: number, localAddress: string): Promise<{ ws: WebSocket; nonce: Uint8Array; closed: Promise<{ code: number; reason: string }> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${PEERS_PATH}`, { localAddress, perMessageDeflate: false });
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.once('message', (d: Buffer) => {
      const m = decode(d);
      if (m.t === 'hello') resolve({ ws, nonce: m.nonce, closed });
      else reject(new Error(`expected hello, got ${m.t}`));
    });
    ws.once('error', reject);
  });
}

function badAuth(nonce: Uint8Array, node = 'a', secret = 'not-the-secret'): Buffer {
  const nonce2 = randomBytes(32);
  const mac = computeMac(secret, 'c', nonce, nonce2, node, 'b', 'c1');
  return encode({ t: 'auth', proto: PROTO, cluster: 'c1', node, nonce2, mac, tables: [{ id: 't1', type: 'string', keyLen: 64 }], caps: [] });
}

const warnings = (n: Node, f: (l: Node['lines'][number]) => boolean) => n.lines.filter((l) => l.level === 40 && f(l));

describe('limits before authentication are options', () => {
  it('rejects nonsensical values with SM_PEERS_CONFIG, naming each', () => {
    expect(() => makeNode('b', {}, { headersTimeoutMs: 0, maxRawConnectionsPerSource: 1.5, authFailuresPerSecond: -1 })).toThrow(
      expect.objectContaining({ code: 'SM_PEERS_CONFIG', message: expect.stringMatching(/headersTimeoutMs.*maxRawConnectionsPerSource.*authFailuresPerSecond/) }),
    );
    expect(() => makeNode('b', {}, { preAuthMaxFrameBytes: 100 })).toThrow(/preAuthMaxFrameBytes/);
  });
});

describe('finding 1: hostile knocks', () => {
  it('answers 400 to malformed percent-escapes and keeps serving', async () => {
    const b = await acceptor();
    const port = b.svc.address.port;
    for (const q of ['%', '%E0%A4%A', '%uD800', '%ZZ', '%%', '%ED%A0%80', '%41'.repeat(100)]) {
      expect(await get(port, `${PEERS_PATH}/knock?node=${q}`), q).toBe(400);
    }
    expect(await get(port, `${PEERS_PATH}/knock?node=${'%41'.repeat(60)}`)).toBe(204);
    expect(await get(port, `${PEERS_PATH}/knock?node=a`, 'POST')).toBe(405);
    expect(await get(port, `${PEERS_PATH}/knock?node=a`)).toBe(204);
    expect(await get(port, '/')).toBe(426);
    expect(b.svc.refusals['bad-request']).toBe(8);
    await legitPeer(b);
  });
});

describe('finding 2: connections before the upgrade are bounded', () => {
  it('closes slowloris heads within the header timeout', async () => {
    const b = await acceptor({ headersTimeoutMs: 600, requestTimeoutMs: 1500, idleTimeoutMs: 10_000 });
    const port = b.svc.address.port;
    const socks = await Promise.all(Array.from({ length: 10 }, (_, i) => raw(port, `127.72.0.${1 + (i % 5)}`)));
    for (const r of socks) r.s.write(`GET ${PEERS_PATH} HTTP/1.1\r\n`);
    let n = 0;
    const drip = setInterval(() => {
      for (const r of socks) if (!isClosed(r)) r.s.write(`X-Slow-${n}: ${n}\r\n`);
      n++;
    }, 100);
    try {
      const lifetimes = await Promise.all(socks.map((r) => r.closed));
      // The head deadline (600 ms) plus at most one sweep (250 ms) plus scheduling slack.
      for (const ms of lifetimes) expect(ms).toBeLessThan(600 + 2000);
      for (const ms of lifetimes) expect(ms).toBeGreaterThanOrEqual(550);
    } finally {
      clearInterval(drip);
    }
    expect(b.svc.refusals['header-timeout']).toBe(10);
  });

  it('closes a socket that sends nothing after the idle timeout', async () => {
    const b = await acceptor({ headersTimeoutMs: 5000, requestTimeoutMs: 5000, idleTimeoutMs: 400 });
    const port = b.svc.address.port;
    const quiet = await raw(port, '127.72.0.9');
    const ms = await quiet.closed;
    expect(ms).toBeGreaterThanOrEqual(350);
    expect(ms).toBeLessThan(2000);
    expect(b.svc.refusals['idle-timeout']).toBe(1);
  });

  it('answers and closes a request whose body never ends (no socket held for the body)', async () => {
    const b = await acceptor({ headersTimeoutMs: 400, requestTimeoutMs: 900, idleTimeoutMs: 10_000 });
    const r = await raw(b.svc.address.port, '127.72.0.10');
    r.s.write('POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n');
    const drip = setInterval(() => !isClosed(r) && r.s.write('x'), 50);
    try {
      expect(await r.closed).toBeLessThan(900 + 1000);
    } finally {
      clearInterval(drip);
    }
    expect(Buffer.concat(r.data).toString('latin1')).toMatch(/^HTTP\/1\.1 426 /);
    expect(b.svc.rawConnections).toBe(0);
  });

  it('caps unauthenticated connections per source and in total, closing the excess at once', async () => {
    const b = await acceptor({ maxRawConnections: 8, maxRawConnectionsPerSource: 3, headersTimeoutMs: 20_000, requestTimeoutMs: 20_000, idleTimeoutMs: 20_000 });
    const port = b.svc.address.port;
    const held: Raw[] = [];
    for (let i = 0; i < 3; i++) held.push(await raw(port, '127.72.1.1'));
    const excess = await raw(port, '127.72.1.1');
    expect(await excess.closed).toBeLessThan(1000);
    expect(b.svc.refusals['too-many-from-source']).toBe(1);
    // Upgraded but unauthenticated WebSockets count too.
    const ws: WebSocket[] = [];
    for (let i = 0; i < 3; i++) ws.push((await helloFrom(port, '127.72.1.2')).ws);
    const excess2 = await raw(port, '127.72.1.2');
    expect(await excess2.closed).toBeLessThan(1000);
    expect(b.svc.refusals['too-many-from-source']).toBe(2);
    held.push(await raw(port, '127.72.1.3'), await raw(port, '127.72.1.3'));
    const over = await raw(port, '127.72.1.4');
    expect(await over.closed).toBeLessThan(1000);
    expect(b.svc.refusals['too-many-connections']).toBe(1);
    for (const r of held) expect(isClosed(r)).toBe(false);
    for (const r of held) r.s.destroy();
    for (const w of ws) w.terminate();
    // Released at close: a legitimate peer gets in.
    await legitPeer(b);
  });
});

describe('finding 3: authentication floods', () => {
  it('closes a pre-auth frame above the small limit at its header (1009), and sessions still carry large frames', async () => {
    const b = await acceptor({ maxFrameBytes: 4 * 1024 * 1024 });
    expect(b.svc.preAuthMaxFrameBytes).toBeLessThanOrEqual(8192);
    const port = b.svc.address.port;
    const r = await raw(port, '127.72.2.1');
    r.s.write(upgradeHead());
    await waitFor(() => Buffer.concat(r.data).includes('\r\n\r\n'), 5000, '101');
    // A masked binary frame header announcing 4 MiB, then 64 KiB of it.
    const hdr = Buffer.alloc(14);
    hdr[0] = 0x82;
    hdr[1] = 0x80 | 127;
    hdr.writeBigUInt64BE(BigInt(4 * 1024 * 1024), 2);
    r.s.write(Buffer.concat([hdr, randomBytes(64 * 1024)]));
    const ms = await r.closed;
    expect(ms).toBeLessThan(3000);
    const all = Buffer.concat(r.data);
    // The close frame carries 1009 (0x03f1).
    expect(all.includes(Buffer.from([0x03, 0xf1]))).toBe(true);
    expect(b.svc.refusals['frame-too-large']).toBe(1);

    // After authentication the connection takes frames up to maxFrameBytes: a resync batch of
    // 2000 long keys is far above the pre-auth limit.
    const a = await legitPeer(b);
    for (let i = 0; i < 2000; i++) a.table.set(`${'k'.repeat(60)}${i}`, 'srv');
    a.svc.notify();
    await waitFor(() => b.table.count >= 2000, 10_000, 'large frames replicated');
    expect(statusOf(b, 'a').bytesReceived).toBeGreaterThan(10 * b.svc.preAuthMaxFrameBytes);
  });

  it('rate-limits wrong-MAC floods per source, before the MAC, counted against the address not the claimed name', async () => {
    const b = await acceptor({ authFailureBurst: 5, authFailuresPerSecond: 0.01, refusalLogIntervalMs: 60_000, maxRawConnectionsPerSource: 64 });
    const port = b.svc.address.port;
    // 12 handshakes at once: 5 reach the MAC check, the rest are refused before it.
    const hs = await Promise.all(Array.from({ length: 12 }, () => helloFrom(port, '127.72.3.1')));
    for (const h of hs) h.ws.send(badAuth(h.nonce));
    const closes = await Promise.all(hs.map((h) => h.closed));
    const by = (reason: string) => closes.filter((c) => c.code === 1008 && c.reason === reason).length;
    expect(by('bad-secret')).toBe(5);
    expect(by('rate-limited')).toBe(7);
    // Further connections from that source are closed at accept.
    for (let i = 0; i < 20; i++) {
      const r = await raw(port, '127.72.3.1');
      expect(await r.closed).toBeLessThan(1000);
      expect(r.data.length).toBe(0);
    }
    expect(b.svc.refusals['bad-secret']).toBe(5);
    expect(b.svc.refusals['rate-limited']).toBe(27);
    // One log line per source and reason in the interval; the claimed name only as a field.
    const lines = warnings(b, (l) => l.peer === '127.72.3.1');
    expect(lines.map((l) => l.reason).sort()).toEqual(['bad-secret', 'rate-limited']);
    expect(lines.find((l) => l.reason === 'bad-secret')).toMatchObject({ claimed: 'a' });
    // The configured peer 'a' is not blamed.
    expect(statusOf(b, 'a').refusals).toEqual({});
    expect(statusOf(b, 'a').lastError).toBeUndefined();
    expect(warnings(b, (l) => l.peer === 'a')).toEqual([]);

    // A long claimed name is clipped in its log field and never appears elsewhere.
    const long = 'x'.repeat(1024);
    const h = await helloFrom(port, '127.72.3.2');
    h.ws.send(badAuth(h.nonce, long));
    expect((await h.closed).reason).toBe('unknown-peer');
    const line = warnings(b, (l) => l.peer === '127.72.3.2')[0]!;
    expect(String(line.claimed).length).toBeLessThanOrEqual(65);
    expect(JSON.stringify(line).length).toBeLessThan(600);
    // Other sources are not affected.
    await legitPeer(b);
  });
});

describe('finding 4: refusal reasons are a closed set', () => {
  it('counts a hostile close reason from an inbound connection as "other"', async () => {
    const b = await acceptor();
    const h = await helloFrom(b.svc.address.port, '127.72.4.1');
    h.ws.close(1008, `evil-${randomBytes(8).toString('hex')}`);
    await waitFor(() => b.svc.refusals.other === 1, 5000, 'other counted');
    for (const k of Object.keys(b.svc.refusals)) expect(REFUSAL_REASONS).toContain(k);
    const line = warnings(b, (l) => l.reason === 'other')[0]!;
    expect(line).toMatchObject({ peer: '127.72.4.1', side: 'remote' });
    expect(String(line.remoteReason)).toMatch(/^evil-/);
  });

  it('counts a dialed peer closing with hostile reasons as "other", per peer and service-wide', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    servers.push(wss);
    await new Promise<void>((r) => wss.once('listening', () => r()));
    let n = 0;
    wss.on('connection', (ws) => ws.close(1008, `${'z'.repeat(100)}${n++}`.slice(0, 120)));
    const a = makeNode('a', { b: (wss.address() as net.AddressInfo).port });
    started.push(a);
    await a.svc.start();
    await waitFor(() => (a.svc.refusals.other ?? 0) >= 3, 10_000, 'three hostile closes');
    expect(Object.keys(a.svc.refusals)).toEqual(['other']);
    expect(Object.keys(statusOf(a, 'b').refusals)).toEqual(['other']);
    expect(statusOf(a, 'b').lastError).toBe('refused by peer: other');
  });
});
