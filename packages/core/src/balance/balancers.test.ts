import { describe, expect, it } from 'vitest';
import type { BalanceAlgorithm, HashType } from '../config/model.js';
import { buildMap, createBalancer, LeastConnBalancer, RandomBalancer, RoundRobinBalancer, SourceBalancer } from './balancers.js';
import { hashAddress, hashString, mix32 } from './hash.js';
import type { Balancer, ServerRef } from './types.js';

function srv(id: number, weight = 1, activeConns = 0): ServerRef {
  return { id, name: `s${id}`, weight, activeConns };
}

function servers(...weights: number[]): ServerRef[] {
  return weights.map((w, i) => srv(i, w));
}

/** Picks with a fresh client hash each time; for leastconn-like balancers, holds the connection open. */
function pickMany(b: Balancer, count: number, hold = false): Map<ServerRef, number> {
  const counts = new Map<ServerRef, number>();
  for (let i = 0; i < count; i++) {
    const s = b.pick(hashString(`client-${i}`));
    expect(s).toBeDefined();
    counts.set(s!, (counts.get(s!) ?? 0) + 1);
    if (hold) s!.activeConns++;
  }
  return counts;
}

const ALGORITHMS: [BalanceAlgorithm, HashType][] = [
  ['roundrobin', 'map-based'],
  ['leastconn', 'map-based'],
  ['source', 'map-based'],
  ['source', 'consistent'],
  ['random', 'map-based'],
];

describe.each(ALGORITHMS)('balancer contract: %s / %s', (algorithm, hashType) => {
  const make = () => createBalancer(algorithm, hashType);

  it('reports its algorithm', () => {
    expect(make().algorithm).toBe(algorithm);
  });

  it('returns undefined on an empty set, before and after a rebuild', () => {
    const b = make();
    expect(b.pick(123)).toBeUndefined();
    b.rebuild(servers(1, 1));
    b.rebuild([]);
    expect(b.pick(123)).toBeUndefined();
    expect(b.pick(123, srv(0))).toBeUndefined();
  });

  it('always picks the single server', () => {
    const b = make();
    const only = srv(7, 3);
    b.rebuild([only]);
    for (let i = 0; i < 200; i++) expect(b.pick(hashString(`c${i}`))).toBe(only);
  });

  it('never picks a weight-0 server', () => {
    const b = make();
    const list = servers(1, 0, 2, 0);
    b.rebuild(list);
    const counts = pickMany(b, 2000, algorithm === 'leastconn');
    expect(counts.has(list[1]!)).toBe(false);
    expect(counts.has(list[3]!)).toBe(false);
    // Only weight-0 servers: nothing is pickable.
    b.rebuild(servers(0, 0));
    expect(b.pick(1)).toBeUndefined();
  });

  it('avoids exclude when another candidate exists and returns it when it is the only one', () => {
    const b = make();
    const list = servers(1, 1, 1);
    b.rebuild(list);
    for (let i = 0; i < 500; i++) {
      const h = hashString(`c${i}`);
      const first = b.pick(h)!;
      const retry = b.pick(h, first);
      expect(retry).toBeDefined();
      expect(retry).not.toBe(first);
      expect(list).toContain(retry);
    }
    const lone = srv(9);
    b.rebuild([lone]);
    expect(b.pick(5, lone)).toBe(lone);
    // Two servers, one excluded: the other one, every time.
    const pair = servers(1, 4);
    b.rebuild(pair);
    for (let i = 0; i < 200; i++) expect(b.pick(hashString(`c${i}`), pair[1])).toBe(pair[0]);
  });

  it('picks only from the current set after a rebuild', () => {
    const b = make();
    const list = servers(1, 1, 1, 1);
    b.rebuild(list);
    pickMany(b, 100);
    const removed = list[2]!;
    b.rebuild([list[0]!, list[1]!, list[3]!]);
    const counts = pickMany(b, 3000);
    expect(counts.has(removed)).toBe(false);
    expect(counts.size).toBe(3);
  });

  it('copies the array given to rebuild', () => {
    const b = make();
    const list = servers(1, 1);
    b.rebuild(list);
    const stranger = srv(99);
    list.length = 0;
    list.push(stranger);
    const counts = pickMany(b, 500);
    expect(counts.has(stranger)).toBe(false);
    expect(counts.size).toBe(2);
  });

  it('picks every server with weight > 0 over many clients', () => {
    const b = make();
    const list = servers(1, 2, 3, 1, 5);
    b.rebuild(list);
    const hold = algorithm === 'leastconn';
    const counts = new Map<ServerRef, number>();
    for (let i = 0; i < 5000; i++) {
      const s = b.pick(hashAddress(`10.1.${i >> 8}.${i & 255}`))!;
      counts.set(s, (counts.get(s) ?? 0) + 1);
      if (hold) {
        s.activeConns++;
        // Release an older connection now and then, as finished requests would.
        if (i % 3 === 0) {
          const victim = list[i % list.length]!;
          if (victim.activeConns > 0) victim.activeConns--;
        }
      }
    }
    for (const s of list) expect(counts.get(s) ?? 0).toBeGreaterThan(0);
  });
});

describe('RoundRobinBalancer', () => {
  it('gives NGINX smooth weighted sequence for weights 5,1,1', () => {
    const b = new RoundRobinBalancer();
    const [a, bb, c] = [srv(0, 5), srv(1, 1), srv(2, 1)];
    b.rebuild([a, bb, c]);
    const seq = Array.from({ length: 7 }, () => b.pick(0)!.name);
    expect(seq).toEqual(['s0', 's0', 's1', 's0', 's2', 's0', 's0']);
  });

  it('gives exact proportions over 700 picks', () => {
    const b = new RoundRobinBalancer();
    const list = servers(5, 1, 1);
    b.rebuild(list);
    const counts = pickMany(b, 700);
    expect(list.map((s) => counts.get(s))).toEqual([500, 100, 100]);
  });

  it('keeps the other servers in rotation while one is excluded', () => {
    const b = new RoundRobinBalancer();
    const list = servers(1, 1, 1);
    b.rebuild(list);
    const seen = new Set<ServerRef>();
    for (let i = 0; i < 10; i++) seen.add(b.pick(0, list[0])!);
    expect([...seen].sort((x, y) => x.id - y.id)).toEqual([list[1], list[2]]);
  });
});

describe('LeastConnBalancer', () => {
  it('picks the least loaded server', () => {
    const b = new LeastConnBalancer();
    const list = [srv(0, 1, 5), srv(1, 1, 2), srv(2, 1, 9)];
    b.rebuild(list);
    expect(b.pick(0)).toBe(list[1]);
    list[1]!.activeConns = 10;
    expect(b.pick(0)).toBe(list[0]);
  });

  it('compares load relative to weight', () => {
    const b = new LeastConnBalancer();
    // 6/3 = 2 per weight unit beats 3/1.
    const list = [srv(0, 1, 3), srv(1, 3, 6)];
    b.rebuild(list);
    expect(b.pick(0)).toBe(list[1]);
  });

  it('shares ties between equally loaded servers', () => {
    const b = new LeastConnBalancer();
    const list = servers(1, 1, 1);
    b.rebuild(list);
    const counts = pickMany(b, 300);
    expect(list.map((s) => counts.get(s))).toEqual([100, 100, 100]);
  });

  it('balances held connections by weight', () => {
    const b = new LeastConnBalancer();
    const list = servers(1, 2, 3);
    b.rebuild(list);
    pickMany(b, 600, true);
    expect(list.map((s) => s.activeConns)).toEqual([100, 200, 300]);
  });
});

describe('SourceBalancer map-based', () => {
  it('is deterministic for the same hash', () => {
    const b = new SourceBalancer('map-based');
    b.rebuild(servers(1, 2, 3));
    const other = new SourceBalancer('map-based');
    other.rebuild(servers(1, 2, 3));
    for (let i = 0; i < 1000; i++) {
      const h = hashAddress(`192.168.${i >> 8}.${i & 255}`);
      const s = b.pick(h)!;
      expect(b.pick(h)).toBe(s);
      expect(other.pick(h)!.name).toBe(s.name);
    }
  });

  it('spreads clients in proportion to weight', () => {
    const b = new SourceBalancer('map-based');
    const list = servers(2, 4, 6);
    b.rebuild(list);
    const counts = pickMany(b, 12000);
    list.forEach((s, i) => {
      const expected = (12000 * s.weight) / 12;
      expect(Math.abs(counts.get(s)! - expected) / expected, `server ${i}`).toBeLessThan(0.15);
    });
  });
});

/** The per-server smooth round robin the map is defined by (O(slots * servers)), as reference. */
function referenceMap(list: ServerRef[]): ServerRef[] {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const g = list.reduce((a, s) => gcd(s.weight, a), 0);
  const slots = list.map((s) => s.weight / g);
  const total = slots.reduce((a, b) => a + b, 0);
  const current = slots.map(() => 0);
  const map: ServerRef[] = [];
  for (let k = 0; k < total; k++) {
    let best = 0;
    for (let i = 0; i < list.length; i++) {
      current[i]! += slots[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    map.push(list[best]!);
  }
  return map;
}

describe('buildMap (map-based table by weight class)', () => {
  it('gives the same table as per-server smooth round robin', () => {
    let seed = 12345;
    const rand = (n: number): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    const cases: number[][] = [[1], [3], [1, 1, 1], [5, 1, 1], [2, 4, 6], [1, 2, 1, 2, 3], [256, 1, 255]];
    for (let c = 0; c < 300; c++) cases.push(Array.from({ length: 1 + rand(40) }, () => 1 + rand(rand(2) === 0 ? 4 : 256)));
    for (const ws of cases) {
      const list = servers(...ws);
      expect(buildMap(list, Float64Array.from(ws)).map((s) => s.id), `weights ${ws.join(',')}`).toEqual(referenceMap(list).map((s) => s.id));
    }
  });

  it('builds the table of 100,000 equal servers in one pass (it was 10^10 steps)', () => {
    const list = servers(...Array.from({ length: 100_000 }, () => 1));
    const map = buildMap(list, new Float64Array(100_000).fill(1));
    expect(map.length).toBe(100_000);
    expect(map[99_999]).toBe(list[99_999]);
  }, 60_000);
});

describe('SourceBalancer consistent', () => {
  const HASHES = Array.from({ length: 10000 }, (_, i) => hashString(`client-${i}`));

  it('moves only the clients of a server that leaves, and restores them when it returns', () => {
    const b = new SourceBalancer('consistent');
    const list = servers(1, 1, 1, 1, 1);
    b.rebuild(list);
    const before = HASHES.map((h) => b.pick(h)!);
    const leaving = list[2]!;
    b.rebuild(list.filter((s) => s !== leaving));
    let moved = 0;
    HASHES.forEach((h, i) => {
      const now = b.pick(h)!;
      expect(now).not.toBe(leaving);
      if (before[i] === leaving) moved++;
      else expect(now).toBe(before[i]);
    });
    expect(moved).toBeGreaterThan(1000);
    b.rebuild(list);
    HASHES.forEach((h, i) => expect(b.pick(h)).toBe(before[i]));
  });

  it('does not depend on the order of the servers', () => {
    const b = new SourceBalancer('consistent');
    const list = servers(1, 2, 3, 1);
    b.rebuild(list);
    const before = HASHES.map((h) => b.pick(h)!.name);
    const reordered = new SourceBalancer('consistent');
    reordered.rebuild([...list].reverse());
    HASHES.forEach((h, i) => expect(reordered.pick(h)!.name).toBe(before[i]));
  });

  it('excluding the owner gives the owner it would get if that server left', () => {
    const b = new SourceBalancer('consistent');
    const list = servers(1, 1, 1, 1);
    b.rebuild(list);
    const without = new SourceBalancer('consistent');
    without.rebuild(list.slice(1));
    for (const h of HASHES.slice(0, 2000)) {
      if (b.pick(h) === list[0]) expect(b.pick(h, list[0])).toBe(without.pick(h));
    }
  });

  it('spreads clients in proportion to weight (within 15%)', () => {
    const b = new SourceBalancer('consistent');
    const list = servers(1, 2, 3, 4, 5);
    b.rebuild(list);
    const counts = new Map<ServerRef, number>();
    for (const h of HASHES) {
      const s = b.pick(h)!;
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    for (const s of list) {
      const expected = (HASHES.length * s.weight) / 15;
      expect(Math.abs(counts.get(s)! - expected) / expected, s.name).toBeLessThan(0.15);
    }
  });
});

describe('RandomBalancer', () => {
  it('rarely picks a heavily loaded server', () => {
    const b = new RandomBalancer();
    const list = [srv(0, 1, 100), srv(1, 1, 0), srv(2, 1, 0), srv(3, 1, 0)];
    b.rebuild(list);
    const counts = pickMany(b, 4000);
    // Only when both draws are the loaded server, which cannot happen (draws are distinct).
    expect(counts.get(list[0]!) ?? 0).toBe(0);
    for (const s of list.slice(1)) expect(counts.get(s) ?? 0).toBeGreaterThan(1000);
  });

  it('picks the less loaded of two', () => {
    const b = new RandomBalancer();
    const list = [srv(0, 1, 5), srv(1, 1, 1)];
    b.rebuild(list);
    for (let i = 0; i < 100; i++) expect(b.pick(0)).toBe(list[1]);
  });

  it('draws in proportion to weight when load is equal', () => {
    const b = new RandomBalancer();
    const list = servers(1, 1, 8);
    b.rebuild(list);
    const counts = pickMany(b, 20000);
    // With equal load the first draw wins; first draws follow the weights 1:1:8.
    expect(counts.get(list[2]!)! / 20000).toBeGreaterThan(0.7);
    expect(counts.get(list[0]!)!).toBeGreaterThan(0);
  });
});

describe('hash', () => {
  it('is deterministic and uint32', () => {
    for (const s of ['', 'a', 'hello', '10.0.0.1', '2001:db8::1']) {
      expect(hashString(s)).toBe(hashString(s));
      expect(hashAddress(s)).toBe(hashAddress(s));
      for (const v of [hashString(s), hashAddress(s), mix32(hashString(s), 42)]) {
        expect(Number.isInteger(v) && v >= 0 && v <= 0xffffffff).toBe(true);
      }
    }
    expect(hashString('a')).not.toBe(hashString('b'));
  });

  it('hashes v4-mapped IPv6 like plain IPv4', () => {
    expect(hashAddress('::ffff:10.0.0.1')).toBe(hashAddress('10.0.0.1'));
    expect(hashAddress('::FFFF:10.0.0.1')).toBe(hashAddress('10.0.0.1'));
    expect(hashAddress('::ffff:a00:1')).toBe(hashAddress('10.0.0.1'));
    expect(hashAddress('10.0.0.1')).not.toBe(hashAddress('10.0.0.2'));
    expect(hashAddress('2001:DB8::1')).toBe(hashAddress('2001:db8::1'));
  });

  it('spreads 1000 consecutive IPs evenly mod 4 (within 20%)', () => {
    const buckets = [0, 0, 0, 0];
    for (let i = 0; i < 1000; i++) {
      const n = 0x0a000000 + i;
      const ip = `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
      buckets[hashAddress(ip) % 4]!++;
    }
    for (const c of buckets) expect(Math.abs(c - 250) / 250).toBeLessThan(0.2);
  });

  it('spreads consecutive IPv6 addresses evenly mod 4 (within 20%)', () => {
    const buckets = [0, 0, 0, 0];
    for (let i = 0; i < 1000; i++) buckets[hashAddress(`2001:db8::${i.toString(16)}`) % 4]!++;
    for (const c of buckets) expect(Math.abs(c - 250) / 250).toBeLessThan(0.2);
  });

  it('mix32 avalanches: one flipped input bit flips about half the output bits', () => {
    let flipped = 0;
    const trials = 2000;
    for (let i = 0; i < trials; i++) {
      const a = hashString(`a${i}`);
      const b = i;
      const x = mix32(a, b) ^ mix32(a, b ^ (1 << i % 32));
      flipped += popcount(x);
    }
    expect(flipped / trials).toBeGreaterThan(14);
    expect(flipped / trials).toBeLessThan(18);
  });
});

function popcount(x: number): number {
  let c = 0;
  for (let v = x >>> 0; v !== 0; v &= v - 1) c++;
  return c;
}

describe('roundrobin with a position per thread (nbthread)', () => {
  it("two threads' picks together stay within 5% of the weights, however unevenly the threads are loaded", () => {
    const list = servers(5, 3, 1, 1);
    const total = 10;
    // Each thread has its own balancer (its own position) over the same servers and weights.
    const threads = [new RoundRobinBalancer(), new RoundRobinBalancer()];
    for (const t of threads) t.rebuild(list);
    const counts = new Map<ServerRef, number>();
    let seed = 12345;
    const rand = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
    const picks = 20003; // not a multiple of the weights' sum
    for (let i = 0; i < picks; i++) {
      const t = threads[rand() < 0.7 ? 0 : 1]!;
      const s = t.pick(0)!;
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    for (const s of list) {
      const expected = (picks * s.weight) / total;
      expect(Math.abs((counts.get(s) ?? 0) - expected) / expected).toBeLessThan(0.05);
    }
  });
});
