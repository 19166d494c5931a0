import { describe, expect, it } from 'vitest';
import { TimerWheel } from '../util/timer-wheel.js';
import { TICKET_KEY_BYTES, TicketKeyRing, type TicketKeyRingOptions } from './ticket-keys.js';
import type { TicketKeyEntry } from './types.js';

const HOUR = 3_600_000;

/** A fake wall clock driving one wheel: every ring of a test reads the same time. */
function world(start = Date.now()) {
  let t = start;
  const wheel = new TimerWheel(100, 64);
  wheel.advance(t);
  let seq = 0;
  return {
    wheel,
    now: () => t,
    /** Deterministic, distinct key bytes. */
    random: (n: number) => {
      const b = Buffer.alloc(n);
      b.writeUInt32BE(++seq, 0);
      b.writeUInt32BE(seq * 2654435761 >>> 0, 4);
      return b;
    },
    /** Moves the clock forward by `ms`, firing what falls due (in steps the wheel can take). */
    advance(ms: number) {
      const end = t + ms;
      while (t < end) {
        t = Math.min(end, t + 100 * 32);
        wheel.advance(t);
      }
    },
    ring(node: string, o: Partial<TicketKeyRingOptions> = {}) {
      return new TicketKeyRing({ node, wheel, now: () => t, random: this.random, rotateMs: HOUR, ...o });
    },
  };
}

const gens = (r: TicketKeyRing) => r.entries().map((e) => `${e.gen}:${e.node}`);

describe('TicketKeyRing', () => {
  it('creates its first key at start and looks keys up by their 16-byte name', () => {
    const w = world();
    const r = w.ring('a');
    expect(r.current()).toBeUndefined();
    r.start();
    const k = r.current()!;
    expect(k.length).toBe(TICKET_KEY_BYTES);
    expect(r.byName(k.subarray(0, 16))).toBe(k);
    expect(r.byName(Buffer.alloc(16, 0xee))).toBeUndefined();
    expect(r.all()).toEqual([k]);
    expect(r.entries()[0]).toMatchObject({ gen: 0, node: 'a', createdAt: w.now() });
    r.stop();
  });

  it('rotates every rotateMs on the wheel, keeps `size` keys and drops the oldest at the bound', () => {
    const w = world();
    const r = w.ring('a', { size: 3 });
    r.start();
    const first = r.current()!;
    w.advance(HOUR - 1000);
    expect(r.current()).toBe(first);
    w.advance(1200);
    const second = r.current()!;
    expect(second).not.toBe(first);
    expect(r.all()).toEqual([second, first]);
    expect(r.byName(first.subarray(0, 16))).toBe(first);
    w.advance(HOUR);
    expect(r.all()).toHaveLength(3);
    w.advance(HOUR);
    expect(r.all()).toHaveLength(3);
    expect(gens(r)).toEqual(['3:a', '2:a', '1:a']);
    expect(r.byName(first.subarray(0, 16))).toBeUndefined();
    expect(r.byName(second.subarray(0, 16))).toBe(second);
    expect(r.stats).toMatchObject({ created: 4, dropped: 1 });
    r.stop();
  });

  it('a node that did not create the current key waits graceMs more, and does not rotate if the creator did', () => {
    const w = world();
    const a = w.ring('a');
    const b = w.ring('b');
    a.start();
    b.merge(a.entries(), 'a');
    b.start();
    expect(b.current()).toEqual(a.current());
    expect(b.dueAt()).toBe(a.dueAt() + b.graceMs);
    // The creator rotates on time and tells b (as the mesh does on onOwnKey).
    a.onOwnKey(() => b.merge(a.entries(), 'a'));
    w.advance(HOUR + 200);
    expect(gens(b)).toEqual(['1:a', '0:a']);
    w.advance(b.graceMs + 200);
    expect(b.stats.created).toBe(0);
    // The creator is gone: b takes over after the grace.
    a.stop();
    w.advance(HOUR + b.graceMs + 200);
    expect(gens(b)).toEqual(['2:b', '1:a', '0:a']);
    b.stop();
  });

  it('concurrent rotations converge on one key per generation whatever the order (first created, then larger node)', () => {
    const w = world();
    const a = w.ring('a');
    const b = w.ring('b');
    const c = w.ring('c');
    a.start();
    for (const r of [b, c]) r.merge(a.entries(), 'a');
    // Three rotations of gen 1 a few ms apart, heard in different orders.
    const ka = a.rotate();
    w.advance(5);
    const kb = b.rotate();
    const kc = c.rotate();
    expect(kb.createdAt).toBe(kc.createdAt);
    a.merge([kc], 'c'); a.merge([kb], 'b');
    b.merge([ka], 'a'); b.merge([kc], 'c');
    c.merge([kb, ka], 'b');
    for (const r of [a, b, c]) expect(gens(r)).toEqual(['1:a', '0:a']);
    // Same createdAt: the larger node name wins.
    const w2 = world();
    const x = w2.ring('x');
    const y = w2.ring('y');
    x.rotate();
    const ky = y.rotate();
    x.merge(y.entries(), 'y');
    y.merge(x.entries(), 'x');
    expect(x.current()!.equals(ky.key)).toBe(true);
    expect(gens(x)).toEqual(['0:y']);
    expect(gens(y)).toEqual(['0:y']);
  });

  it('converges under random delivery orders and subsets (property)', () => {
    for (let trial = 0; trial < 50; trial++) {
      const w = world();
      let s = trial * 7919 + 1;
      const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      const rings = ['a', 'b', 'c', 'd'].map((n) => w.ring(n, { size: 3 }));
      const seen: TicketKeyEntry[] = [];
      for (let step = 0; step < 20; step++) {
        const r = rings[Math.floor(rnd() * rings.length)]!;
        if (rnd() < 0.4) seen.push(r.rotate());
        else {
          // Deliver some known keys to some ring, in random order.
          const subset = seen.filter(() => rnd() < 0.5).sort(() => rnd() - 0.5);
          r.merge(subset, 'x');
        }
        w.advance(Math.floor(rnd() * 3));
      }
      for (const r of rings) r.merge([...seen].sort(() => rnd() - 0.5), 'x');
      const want = gens(rings[0]!);
      for (const r of rings) {
        expect(gens(r)).toEqual(want);
        expect(r.all().map((k) => k.toString('hex'))).toEqual(rings[0]!.all().map((k) => k.toString('hex')));
      }
    }
  });

  it("a restarted node's first key never displaces the cluster's keys", () => {
    const w = world();
    const a = w.ring('a');
    a.start();
    for (let i = 0; i < 4; i++) w.advance(HOUR + 200);
    const before = a.all().slice();
    let changes = 0;
    a.onChange(() => changes++);
    const fresh = w.ring('z');
    fresh.start();
    expect(fresh.entries()[0]).toMatchObject({ gen: 0, node: 'z' });
    // Both send their whole ring at the session's start.
    expect(a.merge(fresh.entries(), 'z')).toEqual({ installed: 0, refused: 0 });
    fresh.merge(a.entries(), 'a');
    expect(a.all()).toEqual(before);
    expect(changes).toBe(0);
    expect(fresh.all().map((k) => k.toString('hex'))).toEqual(before.map((k) => k.toString('hex')));
    // A young cluster (gen 0 only): the older gen-0 key wins.
    const w2 = world();
    const old = w2.ring('b');
    old.start();
    w2.advance(1000);
    const young = w2.ring('zz');
    young.start();
    young.merge(old.entries(), 'b');
    old.merge(young.entries(), 'zz');
    expect(gens(young)).toEqual(['0:b']);
    expect(gens(old)).toEqual(['0:b']);
    a.stop();
    fresh.stop();
    old.stop();
    young.stop();
  });

  it('refuses malformed, stale, future and name-clashing keys without changing the ring', () => {
    const w = world();
    const r = w.ring('a');
    r.start();
    const mine = r.entries()[0]!;
    const before = r.all().slice();
    const now = w.now();
    const good = (o: Partial<TicketKeyEntry>): TicketKeyEntry => ({ key: Buffer.alloc(48, 7), gen: 5, createdAt: now, node: 'b', ...o });
    const hostile: TicketKeyEntry[] = [
      good({ key: Buffer.alloc(47) }),
      good({ key: Buffer.alloc(80) }),
      good({ gen: -1 }),
      good({ gen: 1.5 }),
      good({ gen: Number.MAX_SAFE_INTEGER + 2 }),
      good({ createdAt: now + r.maxSkewMs + 1 }),
      good({ createdAt: now - r.maxAgeMs - 1 }),
      good({ createdAt: NaN }),
      good({ node: '' }),
      good({ node: 'x'.repeat(300) }),
      good({ key: Buffer.concat([mine.key.subarray(0, 16), Buffer.alloc(32, 1)]) }),
      { ...mine, gen: mine.gen + 1 },
      { key: 'not bytes', gen: 1, createdAt: now, node: 'b' } as unknown as TicketKeyEntry,
    ];
    expect(r.merge(hostile, 'b')).toEqual({ installed: 0, refused: hostile.length });
    expect(r.all()).toEqual(before);
    // Two keys under one name in one message: only the first is considered.
    const twin = [good({ key: Buffer.alloc(48, 9) }), good({ key: Buffer.concat([Buffer.alloc(16, 9), Buffer.alloc(32, 3)]), gen: 6 })];
    expect(r.merge(twin, 'b')).toEqual({ installed: 1, refused: 1 });
    // The same key sent again is neither new nor refused.
    expect(r.merge([twin[0]!], 'b')).toEqual({ installed: 0, refused: 0 });
    r.stop();
  });

  it('copies learned keys, tells onChange about every change and onOwnKey only about its own keys', () => {
    const w = world();
    const r = w.ring('a');
    let changes = 0;
    let own = 0;
    const offChange = r.onChange(() => changes++);
    r.onOwnKey(() => own++);
    r.onOwnKey(() => {
      throw new Error('a broken listener');
    });
    r.start();
    expect([changes, own]).toEqual([1, 1]);
    const k = Buffer.alloc(48, 4);
    r.merge([{ key: k, gen: 1, createdAt: w.now(), node: 'b' }], 'b');
    expect([changes, own]).toEqual([2, 1]);
    k.fill(0);
    expect(r.current()!.equals(Buffer.alloc(48, 4))).toBe(true);
    offChange();
    r.rotate();
    expect([changes, own]).toEqual([2, 2]);
    r.stop();
  });

  it('drops keys older than maxAgeMs that did not rotate out', () => {
    const w = world();
    const r = w.ring('b', { size: 3 });
    r.start();
    // A peer's key, learned when it is almost maxAgeMs old: it is current, and long due for rotation.
    const t = w.now();
    r.merge([{ key: Buffer.alloc(48, 5), gen: 1, createdAt: t - r.maxAgeMs + 1000, node: 'a' }], 'a');
    w.advance(300);
    expect(gens(r)).toEqual(['2:b', '1:a', '0:b']);
    w.advance(1200);
    expect(gens(r)).toEqual(['2:b', '0:b']);
    r.stop();
  });

  it('rejects bad options with SM_TLS_TICKET_KEYS', () => {
    for (const o of [{ size: 1 }, { size: 9 }, { rotateMs: 1 }, { graceMs: -1 }, { node: '' }]) {
      expect(() => new TicketKeyRing({ node: 'a', ...o })).toThrow(expect.objectContaining({ code: 'SM_TLS_TICKET_KEYS' }));
    }
  });
});
