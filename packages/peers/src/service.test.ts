import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { pack } from 'msgpackr';
import { waitFor } from '../../../test/helpers/wait.js';
import { FakeTable } from '../test/fake-table.js';
import { makeNode, mesh, reasons, statusOf, type Node } from '../test/harness.js';
import { decode, encode, PEERS_PATH, PROTO } from './codec.js';
import { computeMac } from './handshake.js';

const started: Node[] = [];
const track = (...ns: Node[]) => {
  started.push(...ns);
  return ns;
};
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.svc.stop()));
});

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const live = (n: Node, peer: string) => statusOf(n, peer).state === 'live';

describe('PeersService replication', () => {
  it('is ready "alone" with no peers', async () => {
    const [a] = track(makeNode('a', {}));
    await a!.svc.start();
    await expect(a!.svc.ready).resolves.toMatchObject({ reason: 'alone' });
    expect(a!.svc.readiness()).toEqual({ ready: true, reason: 'alone' });
  });

  it('two nodes replicate local writes both ways', async () => {
    const [a, b] = track(...(await mesh(['a', 'b'])));
    await expect(a!.svc.ready).resolves.toMatchObject({ reason: 'resynced' });
    await expect(b!.svc.ready).resolves.toMatchObject({ reason: 'resynced' });
    a!.table.set('1.1.1.1', 's1');
    a!.svc.notify();
    b!.table.set('2.2.2.2', 's2');
    b!.svc.notify();
    await waitFor(() => b!.table.entries.get('1.1.1.1')?.server === 's1', 5000, 'a -> b');
    await waitFor(() => a!.table.entries.get('2.2.2.2')?.server === 's2', 5000, 'b -> a');
    await waitFor(() => live(a!, 'b') && live(b!, 'a'), 5000, 'both live');
    // Acks move the sender's cursor to our log position.
    await waitFor(() => statusOf(a!, 'b').cursor.t1 === a!.table.seq, 5000, 'ack cursor');
    // Newest version wins on both sides for a concurrently written key.
    a!.table.set('k', 'from-a');
    b!.table.set('k', 'from-b');
    a!.svc.notify();
    b!.svc.notify();
    await waitFor(
      () => a!.table.entries.get('k')?.server === 'from-b' && b!.table.entries.get('k')?.server === 'from-b',
      5000, 'converged on the newer write',
    );
  });

  it('three nodes: a write reaches both others and is never echoed back', async () => {
    const [a, b, c] = track(...(await mesh(['a', 'b', 'c'])));
    await Promise.all([a!.svc.ready, b!.svc.ready, c!.svc.ready]);
    await waitFor(() => ['b', 'c'].every((p) => live(a!, p)) && live(b!, 'c'), 5000, 'mesh live');
    a!.table.set('k1', 'srvA');
    a!.svc.notify();
    await waitFor(() => b!.table.entries.get('k1') && c!.table.entries.get('k1'), 5000, 'k1 at b and c');
    // A later write from b and from c reaches a over the same ordered sockets: any echo of k1 would be first.
    b!.table.set('mb', 'srvB');
    c!.table.set('mc', 'srvC');
    b!.svc.notify();
    c!.svc.notify();
    await waitFor(() => a!.table.entries.get('mb') && a!.table.entries.get('mc') && b!.table.entries.get('mc') && c!.table.entries.get('mb'), 5000, 'markers');
    expect(a!.table.applied.map((u) => u.key).sort()).toEqual(['mb', 'mc']);
    expect(b!.table.applied.map((u) => u.key).sort()).toEqual(['k1', 'mc']);
    expect(c!.table.applied.map((u) => u.key).sort()).toEqual(['k1', 'mb']);
    expect(statusOf(b!, 'a').sent).toBe(1);
    expect(statusOf(b!, 'c').sent).toBe(1);
    expect(statusOf(a!, 'b').sent).toBe(1);
    expect(statusOf(a!, 'c').sent).toBe(1);
  });

  it('reconnect resumes with only new updates; a new epoch forces a full resync', async () => {
    const [a, b] = track(...(await mesh(['a', 'b'])));
    await Promise.all([a!.svc.ready, b!.svc.ready]);
    for (let i = 0; i < 100; i++) a!.table.set(`k${i}`, 's1');
    a!.svc.notify();
    await waitFor(() => b!.table.count === 100, 5000, '100 at b');
    expect(statusOf(a!, 'b').resyncsSent).toBe(1);

    await a!.svc.stop();
    await waitFor(() => statusOf(b!, 'a').state === 'down', 5000, 'b sees a down');
    for (let i = 100; i < 150; i++) a!.table.set(`k${i}`, 's1');
    await a!.svc.start();
    await waitFor(() => b!.table.count === 150, 5000, '150 at b');
    await waitFor(() => live(a!, 'b'), 5000, 'live again');
    expect(b!.table.applied.length).toBe(150); // only the 50 new ones crossed after the reconnect
    expect(statusOf(a!, 'b').sent).toBe(150);
    expect(statusOf(a!, 'b').resyncsSent).toBe(1);
    expect(statusOf(b!, 'a').resyncsReceived).toBe(1);

    // "Process restart" of a: new table object (new epoch) and a new service with the same name.
    await a!.svc.stop();
    const t2 = new FakeTable('a');
    for (let i = 0; i < 10; i++) t2.set(`n${i}`, 's2');
    const a2 = makeNode('a', { b: b!.svc.address.port }, {}, t2);
    track(a2);
    await a2.svc.start();
    await expect(a2.svc.ready).resolves.toMatchObject({ reason: 'resynced' });
    await waitFor(() => b!.table.count === 160 && a2.table.count === 160, 5000, 'both hold 160');
    expect(statusOf(b!, 'a').resyncsReceived).toBe(2); // old epoch in b's resume -> full resync from a2
    expect(statusOf(b!, 'a').resyncsSent).toBeGreaterThanOrEqual(2); // a2 knew nothing of b's log
  });

  it('a peer whose log lost the resume position sends a full resync', async () => {
    const ta = new FakeTable('a', 't1', { logMax: 10 });
    const [a, b] = track(...(await mesh(['a', 'b'], (n) => (n === 'a' ? { tables: [ta] } : {}))));
    await Promise.all([a!.svc.ready, b!.svc.ready]);
    ta.set('x0', 's');
    a!.svc.notify();
    await waitFor(() => b!.table.count === 1, 5000, 'x0');
    await a!.svc.stop();
    for (let i = 1; i < 40; i++) ta.set(`x${i}`, 's');
    await a!.svc.start();
    await waitFor(() => b!.table.count === 40, 5000, '40 at b');
    expect(statusOf(a!, 'b').resyncsSent).toBe(2);
  });

  it('readiness "resynced" after pulling 10,000 entries from a peer', async () => {
    const b = makeNode('b', { a: 0 });
    track(b);
    for (let i = 0; i < 10_000; i++) b.table.set(`10.0.${i >> 8}.${i & 255}`, `s${i % 7}`);
    await b.svc.start();
    const a = makeNode('a', { b: b.svc.address.port });
    track(a);
    expect(a.svc.readiness().ready).toBe(false);
    await a.svc.start();
    const r = await a.svc.ready;
    expect(r.reason).toBe('resynced');
    expect(a.table.count).toBe(10_000);
    expect(a.svc.readiness()).toEqual({ ready: true, reason: 'resynced' });
    expect(statusOf(a, 'b').received).toBe(10_000);
  });

  it('readiness "timeout" when the only peer is unreachable', async () => {
    const a = makeNode('a', { b: await freePort() }, { resyncTimeoutMs: 300 });
    track(a);
    await a.svc.start();
    const r = await a.svc.ready;
    expect(r.reason).toBe('timeout');
    expect(r.ms).toBeGreaterThanOrEqual(250);
    await waitFor(() => statusOf(a, 'b').lastError, 3000, 'lastError');
    expect(statusOf(a, 'b').lastError).toMatch(/ECONNREFUSED/);
  });
});

describe('PeersService refusals', () => {
  it('refuses a wrong secret (both sides log the reason)', async () => {
    const b = makeNode('b', { a: 0 });
    track(b);
    await b.svc.start();
    const a = makeNode('a', { b: b.svc.address.port }, { secret: 'other', resyncTimeoutMs: 300 });
    track(a);
    await a.svc.start();
    await waitFor(() => reasons(b).includes('bad-secret') && reasons(a).includes('bad-secret'), 5000, 'bad-secret logged');
    // Counted against the source address, the claimed name only in its own field, the link untouched.
    expect(b.lines.find((l) => l.reason === 'bad-secret')).toMatchObject({ peer: '127.0.0.1', claimed: 'a' });
    expect(statusOf(b, 'a').refusals).toEqual({});
    expect(b.svc.refusals['bad-secret']).toBeGreaterThanOrEqual(1);
    expect((await a.svc.ready).reason).toBe('timeout');
    expect(statusOf(a, 'b').state).not.toBe('live');
  });

  it('refuses a wrong cluster', async () => {
    const b = makeNode('b', { a: 0 });
    track(b);
    await b.svc.start();
    const a = makeNode('a', { b: b.svc.address.port }, { cluster: 'other' });
    track(a);
    await a.svc.start();
    await waitFor(() => reasons(a).includes('wrong-cluster') && reasons(b).includes('wrong-cluster'), 5000, 'wrong-cluster logged');
    expect(statusOf(a, 'b').lastError).toMatch(/wrong-cluster/);
  });

  it('refuses a table schema mismatch and an unknown table', async () => {
    const b = makeNode('b', { a: 0 }, {}, new FakeTable('b', 't1', { type: 'ip' }));
    track(b);
    await b.svc.start();
    const a = makeNode('a', { b: b.svc.address.port });
    track(a);
    await a.svc.start();
    await waitFor(() => reasons(b).includes('table-mismatch') && reasons(a).includes('table-mismatch'), 5000, 'table-mismatch');

    const c = makeNode('c', { a: 0 }, { tables: [new FakeTable('c', 't1'), new FakeTable('c', 't2')] });
    track(c);
    await c.svc.start();
    const a2 = makeNode('a', { c: c.svc.address.port });
    track(a2);
    await a2.svc.start();
    await waitFor(() => reasons(c).includes('unknown-table'), 5000, 'unknown-table');
  });

  it('refuses an unknown peer name and a dial from the wrong direction', async () => {
    const b = makeNode('b', { c: 0 });
    track(b);
    await b.svc.start();
    const x = makeNode('a', { b: b.svc.address.port });
    track(x);
    await x.svc.start();
    await waitFor(() => reasons(b).includes('unknown-peer'), 5000, 'unknown-peer');
    // c sorts after b, so c must not dial b.
    const c = makeNode('c', { b: b.svc.address.port });
    track(c);
    await c.svc.start(); // c does not dial (it is the acceptor for b); dial by hand as 'c'
    const ws = new WebSocket(`ws://127.0.0.1:${b.svc.address.port}${PEERS_PATH}`);
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.on('message', (data) => {
      const hello = decode(data as Buffer);
      if (hello.t !== 'hello') return;
      const nonce2 = Buffer.alloc(32, 7);
      const mac = computeMac('s3cret', 'c', hello.nonce, nonce2, 'c', 'b', 'c1');
      ws.send(encode({ t: 'auth', proto: PROTO, cluster: 'c1', node: 'c', nonce2, mac, tables: [{ id: 't1', type: 'string', keyLen: 64 }] }));
    });
    expect(await closed).toBe(1008);
    expect(reasons(b)).toContain('wrong-direction');
  });
});

describe('PeersService robustness', () => {
  it('survives raw TCP garbage, garbage ws frames, bad paths and oversized frames, and keeps replicating', async () => {
    const [a, b] = track(...(await mesh(['a', 'b'], () => ({ maxFrameBytes: 64 * 1024 }))));
    await Promise.all([a!.svc.ready, b!.svc.ready]);
    const port = b!.svc.address.port;

    // Raw TCP garbage.
    const sock = net.connect(port, '127.0.0.1');
    sock.on('error', () => {});
    sock.write(Buffer.from([0x16, 0x03, 0x01, 0xff, 0x00, 0x13, 0x37, 0x0d, 0x0a, 0x0d, 0x0a, 0xde, 0xad]));
    await new Promise<void>((r) => sock.on('close', () => r()));

    // Garbage ws binary frame during the handshake.
    const g = new WebSocket(`ws://127.0.0.1:${port}${PEERS_PATH}`);
    const gClosed = new Promise<number>((r) => g.on('close', (code) => r(code)));
    g.on('open', () => g.send(Buffer.from([0xc1, 0xff, 0x00, 0x91, 0x92])));
    expect(await gClosed).toBe(1008);

    // Truncated msgpack, then valid msgpack with an unknown message type.
    for (const frame of [encode({ t: 'ack', table: 't1', seq: 1 }).subarray(0, 3), pack({ t: 'boom', x: 1 })]) {
      const u = new WebSocket(`ws://127.0.0.1:${port}${PEERS_PATH}`);
      const uClosed = new Promise<number>((r) => u.on('close', (code) => r(code)));
      u.on('open', () => u.send(frame));
      expect(await uClosed).toBe(1008);
    }

    // Text frame and oversized frame.
    const t = new WebSocket(`ws://127.0.0.1:${port}${PEERS_PATH}`);
    const tClosed = new Promise<number>((r) => t.on('close', (code) => r(code)));
    t.on('open', () => t.send('hello?'));
    expect(await tClosed).toBe(1008);
    const big = new WebSocket(`ws://127.0.0.1:${port}${PEERS_PATH}`);
    big.on('error', () => {});
    const bigClosed = new Promise<number>((r) => big.on('close', (code) => r(code)));
    big.on('open', () => big.send(Buffer.alloc(100 * 1024)));
    expect(await bigClosed).toBe(1009);

    // Wrong path.
    const p = new WebSocket(`ws://127.0.0.1:${port}/nope`);
    p.on('error', () => {});
    await new Promise<void>((r) => p.on('close', () => r()));

    await waitFor(() => ['malformed-frame', 'unexpected-message', 'frame-too-large', 'bad-path'].every((x) => reasons(b!).includes(x)), 5000, 'reasons logged');
    // The real session was never disturbed and still replicates.
    a!.table.set('after', 'ok');
    a!.svc.notify();
    b!.table.set('after-b', 'ok');
    b!.svc.notify();
    await waitFor(() => b!.table.entries.get('after') && a!.table.entries.get('after-b'), 5000, 'still replicating');
    expect(live(a!, 'b')).toBe(true);
  });

  it('a garbage frame from an authenticated peer closes only that session; it reconnects', async () => {
    const c = makeNode('c', { a: 0, b: 0 });
    track(c);
    await c.svc.start();
    const b2 = makeNode('b', { a: 0, c: c.svc.address.port });
    track(b2);
    await b2.svc.start();
    await waitFor(() => live(b2, 'c'), 5000, 'b-c live');
    // Impersonate 'a' (authenticated) and then send garbage.
    const ws = new WebSocket(`ws://127.0.0.1:${b2.svc.address.port}${PEERS_PATH}`);
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    let nonce2 = Buffer.alloc(32, 1);
    ws.on('message', (data) => {
      const m = decode(data as Buffer);
      if (m.t === 'hello') {
        nonce2 = Buffer.alloc(32, 9);
        const mac = computeMac('s3cret', 'c', m.nonce, nonce2, 'a', 'b', 'c1');
        ws.send(encode({ t: 'auth', proto: PROTO, cluster: 'c1', node: 'a', nonce2, mac, tables: [{ id: 't1', type: 'string', keyLen: 64 }] }));
      } else if (m.t === 'welcome') {
        ws.send(Buffer.from('\x92\xa1u\xff garbage'));
      }
    });
    expect(await closed).toBe(1008);
    expect(reasons(b2)).toContain('malformed-frame');
    b2.table.set('z', 'srv');
    b2.svc.notify();
    await waitFor(() => c.table.entries.get('z'), 5000, 'b still replicates to c');
  });

  it('detects a frozen peer via heartbeats within deadAfterMs + slack, then reconnects', async () => {
    // A fake 'b' that completes the handshake, then never answers anything (no pongs either).
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, autoPong: false });
    await new Promise<void>((r) => wss.on('listening', () => r()));
    let established = 0;
    let connections = 0;
    wss.on('connection', (ws) => {
      connections++;
      const nonce = Buffer.alloc(32, 3);
      ws.send(encode({ t: 'hello', proto: PROTO, cluster: 'c1', node: 'b', nonce }));
      ws.on('message', (data) => {
        const m = decode(data as Buffer);
        if (m.t !== 'auth') return;
        const mac2 = computeMac('s3cret', 's', m.nonce2, nonce, 'a', 'b', 'c1');
        ws.send(encode({ t: 'welcome', mac2, tables: m.tables }));
        established = Date.now();
      });
    });
    const deadAfterMs = 400;
    const a = makeNode('a', { b: (wss.address() as net.AddressInfo).port }, { heartbeatMs: 100, deadAfterMs });
    track(a);
    try {
      await a.svc.start();
      await waitFor(() => established, 5000, 'handshake with fake');
      await waitFor(() => reasons(a).includes('heartbeat-timeout'), 3000, 'heartbeat-timeout');
      const detectedAfter = Date.now() - established;
      expect(detectedAfter).toBeGreaterThanOrEqual(deadAfterMs - 50);
      expect(detectedAfter).toBeLessThanOrEqual(deadAfterMs + 400);
      expect(statusOf(a, 'b').lastError).toMatch(/heartbeat-timeout/);
      await waitFor(() => connections >= 2, 5000, 'reconnect');
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
  });
});

describe('PeersService over TLS', () => {
  it('replicates over wss with a CA-verified certificate', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'peers-tls-'));
    try {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'),
        '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1',
      ], { stdio: 'ignore' });
      const cert = readFileSync(join(dir, 'c.pem'));
      const tls = { key: readFileSync(join(dir, 'k.pem')), cert, ca: cert };
      const [a, b] = track(...(await mesh(['a', 'b'], () => ({ tls }))));
      await expect(a!.svc.ready).resolves.toMatchObject({ reason: 'resynced' });
      a!.table.set('tls', 'yes');
      a!.svc.notify();
      await waitFor(() => b!.table.entries.get('tls'), 5000, 'tls replication');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
