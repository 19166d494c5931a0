import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import WebSocket from 'ws';
import { TicketKeyRing, type TicketKeyEntry } from '@stickmesh/core';
import { waitFor } from '../../../test/helpers/wait.js';
import { makeNode, mesh, statusOf, type Node } from '../test/harness.js';
import { CAP_TICKET_KEYS, decode, decodeTicketKeyList, encode, encodeTicketKeyList, MAX_TK_BOX, PEERS_PATH, PROTO, ProtocolError } from './codec.js';
import { computeMac } from './handshake.js';
import { boxAad, deriveBoxKey, open, seal } from './ticket-box.js';

const started: Node[] = [];
const rings: TicketKeyRing[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.svc.stop()));
  for (const r of rings.splice(0)) r.stop();
});

function ring(node: string, o: Partial<ConstructorParameters<typeof TicketKeyRing>[0]> = {}): TicketKeyRing {
  const r = new TicketKeyRing({ node, ...o });
  rings.push(r);
  return r;
}

const hex = (r: TicketKeyRing) => r.all().map((k) => k.toString('hex'));
const allLive = (nodes: Node[]) => nodes.every((n) => n.svc.status().every((p) => p.state === 'live'));

function protocolReason(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof ProtocolError) return e.reason;
    throw e;
  }
  return undefined;
}

describe('ticket key sealing and codec', () => {
  it('seals and opens; another key, AAD, direction or a flipped byte does not open', () => {
    const k = deriveBoxKey('s3cret');
    expect(k).toHaveLength(32);
    expect(deriveBoxKey('s3cret').equals(k)).toBe(true);
    expect(deriveBoxKey('other').equals(k)).toBe(false);
    const sid = randomBytes(64);
    const aad = boxAad('a', 'b', 'c1', sid, 1);
    const plain = Buffer.from('keys');
    const { iv, box } = seal(k, aad, plain);
    expect(open(k, aad, iv, box)).toEqual(plain);
    expect(open(deriveBoxKey('other'), aad, iv, box)).toBeUndefined();
    expect(open(k, boxAad('b', 'a', 'c1', sid, 1), iv, box)).toBeUndefined(); // reflected
    expect(open(k, boxAad('a', 'b', 'c1', sid, 2), iv, box)).toBeUndefined(); // another seq
    expect(open(k, boxAad('a', 'b', 'c1', randomBytes(64), 1), iv, box)).toBeUndefined(); // another session
    expect(open(k, boxAad('a', 'b', 'c2', sid, 1), iv, box)).toBeUndefined();
    for (let i = 0; i < box.length; i++) {
      const b = Buffer.from(box);
      b[i]! ^= 1;
      expect(open(k, aad, iv, b)).toBeUndefined();
    }
    expect(open(k, aad, iv.subarray(0, 11), box)).toBeUndefined();
    expect(open(k, aad, iv, box.subarray(0, 15))).toBeUndefined();
  });

  it('round-trips a tk frame and a key list; rejects hostile ones as malformed-frame', () => {
    const f = { t: 'tk' as const, seq: 1, iv: Buffer.alloc(12, 1), box: Buffer.alloc(40, 2) };
    expect(decode(encode(f))).toEqual(f);
    const keys: TicketKeyEntry[] = [{ key: Buffer.alloc(48, 3), gen: 7, createdAt: 1_700_000_000_000, node: 'a' }];
    expect(decodeTicketKeyList(encodeTicketKeyList(keys))).toEqual(keys);
    expect(decodeTicketKeyList(encodeTicketKeyList([]))).toEqual([]);
    const frames: Record<string, unknown>[] = [
      { t: 'tk', seq: 0, iv: Buffer.alloc(12), box: Buffer.alloc(40) },
      { t: 'tk', seq: -1, iv: Buffer.alloc(12), box: Buffer.alloc(40) },
      { t: 'tk', seq: 1, iv: Buffer.alloc(11), box: Buffer.alloc(40) },
      { t: 'tk', seq: 1, iv: Buffer.alloc(12), box: Buffer.alloc(15) },
      { t: 'tk', seq: 1, iv: Buffer.alloc(12), box: Buffer.alloc(MAX_TK_BOX + 1) },
      { t: 'tk', seq: 1, iv: Buffer.alloc(12), box: 'text' },
      { t: 'tk', seq: 1.5, iv: Buffer.alloc(12), box: Buffer.alloc(40) },
      { t: 'tk', iv: Buffer.alloc(12), box: Buffer.alloc(40) },
    ];
    for (const x of frames) expect(protocolReason(() => decode(pack(x))), JSON.stringify(x).slice(0, 60)).toBe('malformed-frame');
    const lists: unknown[] = [
      {},
      'x',
      new Array(9).fill([Buffer.alloc(48), 0, 0, 'a']),
      [[Buffer.alloc(47), 0, 0, 'a']],
      [[Buffer.alloc(48), -1, 0, 'a']],
      [[Buffer.alloc(48), 0, 1.5, 'a']],
      [[Buffer.alloc(48), 0, 0, '']],
      [[Buffer.alloc(48), 0, 0, 'x'.repeat(256)]],
      [[Buffer.alloc(48), 0, 0]],
      [[Buffer.alloc(48), 0, 0, 'a', 1]],
      [{ key: Buffer.alloc(48), gen: 0, createdAt: 0, node: 'a' }],
    ];
    for (const l of lists) expect(protocolReason(() => decodeTicketKeyList(pack(l)))).toBe('malformed-frame');
    expect(protocolReason(() => decodeTicketKeyList(Buffer.from([0xc1])))).toBe('malformed-frame');
  });
});

describe('ticket keys over the mesh', () => {
  it('three nodes converge on one current key; a rotation reaches every node; learned keys are not sent on', async () => {
    const r = { a: ring('a'), b: ring('b'), c: ring('c') };
    // Each ring creates its own first key, at different times: the first one created wins gen 0.
    r.a.start();
    await new Promise((res) => setTimeout(res, 5));
    r.b.start();
    r.c.start();
    const first = r.a.current()!.toString('hex');
    const nodes = await mesh(['a', 'b', 'c'], (n) => ({ ticketKeys: r[n as 'a' | 'b' | 'c'], antiEntropyMs: 0 }));
    started.push(...nodes);
    await waitFor(() => allLive(nodes), 5000, 'mesh live');
    await waitFor(() => [r.a, r.b, r.c].every((x) => x.current()?.toString('hex') === first), 5000, 'same current key');
    expect(hex(r.b)).toEqual([first]);
    for (const n of nodes) for (const p of n.svc.status()) expect(p).toMatchObject({ ticketKeysShared: true, ticketKeysRefused: 0, refusals: {} });
    const sentBefore = nodes.map((n) => n.svc.status().reduce((s, p) => s + p.ticketKeysSent!, 0));
    // b rotates (say its schedule fired): a and c take its key as current, the previous stays.
    const k = r.b.rotate();
    await waitFor(() => [r.a, r.c].every((x) => x.current()?.equals(k.key)), 5000, 'rotation everywhere');
    expect(hex(r.a)).toEqual(hex(r.b));
    expect(hex(r.c)).toEqual([k.key.toString('hex'), first]);
    const sentAfter = nodes.map((n) => n.svc.status().reduce((s, p) => s + p.ticketKeysSent!, 0));
    // Only b sent (one tk to each peer); a and c learned and said nothing.
    expect(sentAfter.map((x, i) => x - sentBefore[i]!)).toEqual([0, 2, 0]);
    expect(statusOf(nodes[0]!, 'b').ticketKeysLearned).toBeGreaterThanOrEqual(1);
  });

  it('a restarted node learns the ring from its peers and does not displace it', async () => {
    const ra = ring('a');
    const rb = ring('b');
    ra.start();
    ra.rotate();
    ra.rotate();
    const cluster = hex(ra);
    await new Promise((res) => setTimeout(res, 5));
    rb.start(); // b's own first key: gen 0, created after a's
    const nodes = await mesh(['a', 'b'], (n) => ({ ticketKeys: n === 'a' ? ra : rb, antiEntropyMs: 0 }));
    started.push(...nodes);
    await waitFor(() => hex(rb).join() === cluster.join(), 5000, 'b learned the ring');
    expect(hex(ra)).toEqual(cluster);
  });

  it('without a shared secret no key travels and the reason is logged once', async () => {
    const ra = ring('a');
    const rb = ring('b');
    ra.start();
    rb.start();
    const nodes = await mesh(['a', 'b'], (n) => ({ ticketKeys: n === 'a' ? ra : rb, secret: '', antiEntropyMs: 0 }));
    started.push(...nodes);
    await waitFor(() => allLive(nodes), 5000, 'live');
    expect(nodes[0]!.svc.caps).not.toContain(CAP_TICKET_KEYS);
    ra.rotate();
    await new Promise((res) => setTimeout(res, 100));
    expect(rb.all()).toHaveLength(1);
    expect(hex(rb)).not.toContain(ra.current()!.toString('hex'));
    expect(statusOf(nodes[0]!, 'b')).toMatchObject({ ticketKeysShared: false, ticketKeysSent: 0, ticketKeysReceived: 0 });
    for (const n of nodes) expect(n.lines.filter((l) => /ticket keys are not shared/.test(l.msg))).toHaveLength(1);
  });

  it('a peer without a ring: the session stays up without keys', async () => {
    const ra = ring('a');
    ra.start();
    const nodes = await mesh(['a', 'b'], (n) => ({ ...(n === 'a' ? { ticketKeys: ra } : {}), antiEntropyMs: 0 }));
    started.push(...nodes);
    await waitFor(() => allLive(nodes), 5000, 'live');
    expect(statusOf(nodes[0]!, 'b')).toMatchObject({ ticketKeysShared: false, refusals: {} });
  });
});

describe('hostile tk frames from an authenticated peer', () => {
  /** Service 'b' with a ring, and a raw WebSocket authenticated as its peer 'a'. */
  async function rawPeer() {
    const rb = ring('b');
    rb.start();
    const b = makeNode('b', { a: 0 }, { ticketKeys: rb, antiEntropyMs: 0 });
    started.push(b);
    await b.svc.start();
    const ws = new WebSocket(`ws://127.0.0.1:${b.svc.address.port}${PEERS_PATH}`, { perMessageDeflate: false });
    const frames: Buffer[] = [];
    ws.on('message', (d: Buffer) => frames.push(d));
    /** The frame at index i, once it arrived. */
    const frame = (i: number) => waitFor(() => frames[i], 2000, `frame ${i} from b`);
    const hello = decode(await frame(0));
    if (hello.t !== 'hello') throw new Error('no hello');
    const nonce2 = randomBytes(32);
    const mac = computeMac('s3cret', 'c', hello.nonce, nonce2, 'a', 'b', 'c1');
    ws.send(encode({ t: 'auth', proto: PROTO, cluster: 'c1', node: 'a', nonce2, mac, tables: [{ id: 't1', type: 'string', keyLen: 64 }], caps: ['ctr', 'tk'] }));
    expect(decode(await frame(1)).t).toBe('welcome');
    const sid = Buffer.concat([hello.nonce, nonce2]);
    const boxKey = deriveBoxKey('s3cret');
    const closed = new Promise<{ code: number; reason: string }>((res) => ws.once('close', (code, reason) => res({ code, reason: reason.toString() })));
    const sealed = (seq: number, keys: unknown, o: { key?: Buffer; sid?: Buffer } = {}) => {
      const plain = Buffer.isBuffer(keys) ? keys : pack(keys);
      const { iv, box } = seal(o.key ?? boxKey, boxAad('a', 'b', 'c1', o.sid ?? sid, seq), plain);
      return encode({ t: 'tk', seq, iv, box });
    };
    return { rb, b, ws, frames, sid, boxKey, closed, sealed };
  }

  const key = (fill: number, gen: number, node = 'a') => [Buffer.alloc(48, fill), gen, Date.now(), node];

  it('a valid sealed ring is learned; the service sent its own ring sealed for this session', async () => {
    const p = await rawPeer();
    await waitFor(() => p.frames.some((f) => decode(f).t === 'tk'), 2000, 'tk from b');
    const tk = decode(p.frames.find((f) => decode(f).t === 'tk')!);
    if (tk.t !== 'tk') throw new Error('not tk');
    const plain = open(p.boxKey, boxAad('b', 'a', 'c1', p.sid, tk.seq), tk.iv, tk.box)!;
    expect(decodeTicketKeyList(plain).map((k) => k.key.toString('hex'))).toEqual(hex(p.rb));
    p.ws.send(p.sealed(1, [key(9, 3)]));
    await waitFor(() => p.rb.current()?.equals(Buffer.alloc(48, 9)) === true, 2000, 'learned');
    expect(statusOf(p.b, 'a').ticketKeysLearned).toBe(1);
    p.ws.terminate();
  });

  const cases: Array<[string, (p: Awaited<ReturnType<typeof rawPeer>>) => Buffer, string]> = [
    ['sealed with another secret', (p) => p.sealed(1, [key(9, 3)], { key: deriveBoxKey('wrong') }), 'ticket-keys-auth-failed'],
    ['sealed for another session', (p) => p.sealed(1, [key(9, 3)], { sid: randomBytes(64) }), 'ticket-keys-auth-failed'],
    ['a flipped byte', (p) => {
      const f = decode(p.sealed(1, [key(9, 3)]));
      if (f.t !== 'tk') throw new Error('x');
      const box = Buffer.from(f.box);
      box[3]! ^= 0x40;
      return encode({ ...f, box });
    }, 'ticket-keys-auth-failed'],
    ['a garbage box', () => encode({ t: 'tk', seq: 1, iv: randomBytes(12), box: randomBytes(100) }), 'ticket-keys-auth-failed'],
    ['a sealed list that is not a key list', (p) => p.sealed(1, { keys: 1 }), 'malformed-frame'],
    ['a sealed list with a short key', (p) => p.sealed(1, [[Buffer.alloc(47), 1, Date.now(), 'a']]), 'malformed-frame'],
    ['sealed garbage bytes', (p) => p.sealed(1, Buffer.from([0xc1, 0xff])), 'malformed-frame'],
  ];
  for (const [what, frame, reason] of cases) {
    it(`${what}: session dropped (${reason}), ring unchanged`, async () => {
      const p = await rawPeer();
      const before = hex(p.rb);
      p.ws.send(frame(p));
      const c = await p.closed;
      expect(c).toEqual({ code: 1008, reason });
      expect(hex(p.rb)).toEqual(before);
      expect(p.b.svc.refusals[reason as 'malformed-frame']).toBe(1);
    });
  }

  it('a replayed tk (same seq) is refused as unexpected-message after the first was applied', async () => {
    const p = await rawPeer();
    const f = p.sealed(1, [key(9, 3)]);
    p.ws.send(f);
    await waitFor(() => p.rb.current()?.equals(Buffer.alloc(48, 9)) === true, 2000, 'learned');
    p.ws.send(f);
    expect(await p.closed).toEqual({ code: 1008, reason: 'unexpected-message' });
  });

  it('keys the ring refuses (from the future, too old) are counted, the session stays', async () => {
    const p = await rawPeer();
    const before = hex(p.rb);
    p.ws.send(p.sealed(1, [[Buffer.alloc(48, 1), 5, Date.now() + 3_600_000, 'a'], [Buffer.alloc(48, 2), 5, 1000, 'a']]));
    await waitFor(() => statusOf(p.b, 'a').ticketKeysRefused === 2, 2000, 'refused');
    expect(hex(p.rb)).toEqual(before);
    expect(p.ws.readyState).toBe(WebSocket.OPEN);
    p.ws.terminate();
  });
});
