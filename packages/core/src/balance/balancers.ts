/**
 * The load-balancing algorithms. Shared rules:
 * - `rebuild` copies the candidate list and snapshots weights; servers whose weight is 0 are dropped
 *   there, so they are never picked. The proxy rebuilds on every weight change, so the snapshot is current.
 * - `pick` returns undefined only when no candidate has a weight above 0, never allocates, and avoids
 *   `exclude` whenever another candidate exists (it is returned when it is the only one).
 */
import type { BalanceAlgorithm, HashType } from '../config/model.js';
import { hashString, mix32 } from './hash.js';
import type { Balancer, ServerRef } from './types.js';

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** Candidates with weight > 0 and their weights, snapshotted so later mutation by the caller is harmless. */
function snapshot<S extends ServerRef>(servers: readonly S[]): { list: S[]; weights: Float64Array<ArrayBuffer> } {
  const list = servers.filter((s) => s.weight > 0);
  const weights = new Float64Array(list.length);
  for (let i = 0; i < list.length; i++) weights[i] = list[i]!.weight;
  return { list, weights };
}

/**
 * Smooth weighted round robin (NGINX): each pick adds every candidate's weight to its running
 * `current`, takes the largest and subtracts the total from it. Over any window of `sum(weights)`
 * picks each server is chosen exactly `weight` times, and heavy servers are interleaved with light
 * ones instead of being picked in bursts (5,1,1 gives a a b a c a a).
 */
export class RoundRobinBalancer<S extends ServerRef = ServerRef> implements Balancer<S> {
  readonly algorithm = 'roundrobin';
  private servers: S[] = [];
  private weights: Float64Array<ArrayBuffer> = new Float64Array(0);
  private current = new Float64Array(0);

  rebuild(servers: readonly S[]): void {
    const { list, weights } = snapshot(servers);
    this.servers = list;
    this.weights = weights;
    this.current = new Float64Array(list.length);
  }

  pick(_hash: number, exclude?: S): S | undefined {
    const n = this.servers.length;
    if (n === 0) return undefined;
    if (n === 1) return this.servers[0];
    // An excluded server sits this round out entirely (NGINX's `tried` bitmap), so the others keep
    // their relative order; it only takes part when it is the sole candidate.
    let total = 0;
    let best = -1;
    for (let i = 0; i < n; i++) {
      if (this.servers[i] === exclude) continue;
      const w = this.weights[i]!;
      const c = this.current[i]! + w;
      this.current[i] = c;
      total += w;
      if (best < 0 || c > this.current[best]!) best = i;
    }
    this.current[best] = this.current[best]! - total;
    return this.servers[best];
  }
}

/**
 * Least connections, weighted: picks the lowest `activeConns / weight` (compared by cross
 * multiplication, so no division or rounding). The scan starts one past the previous pick, so
 * servers with equal load take turns instead of the first one absorbing every tie.
 */
export class LeastConnBalancer<S extends ServerRef = ServerRef> implements Balancer<S> {
  readonly algorithm = 'leastconn';
  private servers: S[] = [];
  private weights: Float64Array<ArrayBuffer> = new Float64Array(0);
  private next = 0;

  rebuild(servers: readonly S[]): void {
    const { list, weights } = snapshot(servers);
    this.servers = list;
    this.weights = weights;
    this.next = 0;
  }

  pick(_hash: number, exclude?: S): S | undefined {
    const n = this.servers.length;
    if (n === 0) return undefined;
    let best = -1;
    let bestConns = 0;
    let bestWeight = 1;
    const start = this.next < n ? this.next : 0;
    for (let k = 0; k < n; k++) {
      let i = start + k;
      if (i >= n) i -= n;
      const s = this.servers[i]!;
      if (s === exclude) continue;
      const w = this.weights[i]!;
      const conns = s.activeConns;
      if (best < 0 || conns * bestWeight < bestConns * w) {
        best = i;
        bestConns = conns;
        bestWeight = w;
      }
    }
    if (best < 0) return exclude; // the excluded server is the only candidate
    this.next = best + 1 < n ? best + 1 : 0;
    return this.servers[best];
  }
}

/**
 * Source-address affinity: the same client hash maps to the same server while the candidate set
 * is unchanged.
 * - `map-based` (HAProxy's default): a table where each server occupies `weight / gcd` slots,
 *   interleaved by smooth round robin; the server is `table[hash % length]`. O(1) per pick, but any
 *   change of the set remaps most clients.
 * - `consistent`: weighted rendezvous hashing keyed by server identity (name, or address for DNS-discovered servers). Each server scores
 *   `-weight / ln(u)` with `u` derived from mix32(hash, hash(name)); the highest wins. A server
 *   leaving moves only its own clients (each to its second choice) and its return takes back exactly
 *   those, and a server's share is proportional to its weight. O(servers) per pick.
 */
export class SourceBalancer<S extends ServerRef = ServerRef> implements Balancer<S> {
  readonly algorithm = 'source';
  readonly hashType: HashType;
  private servers: S[] = [];
  private weights: Float64Array<ArrayBuffer> = new Float64Array(0);
  private nameHashes = new Uint32Array(0);
  private map: S[] = [];

  constructor(hashType: HashType = 'map-based') {
    this.hashType = hashType;
  }

  rebuild(servers: readonly S[]): void {
    const { list, weights } = snapshot(servers);
    this.servers = list;
    this.weights = weights;
    if (this.hashType === 'consistent') {
      this.nameHashes = new Uint32Array(list.length);
      for (let i = 0; i < list.length; i++) this.nameHashes[i] = hashString(list[i]!.identity ?? list[i]!.name);
      this.map = [];
      return;
    }
    this.map = buildMap(list, weights);
  }

  pick(hash: number, exclude?: S): S | undefined {
    return this.hashType === 'consistent' ? this.pickConsistent(hash >>> 0, exclude) : this.pickMap(hash >>> 0, exclude);
  }

  private pickMap(hash: number, exclude: S | undefined): S | undefined {
    const len = this.map.length;
    if (len === 0) return undefined;
    let i = hash % len;
    const first = this.map[i]!;
    if (first !== exclude) return first;
    // Probe forward to the next slot held by someone else; the table is interleaved, so this is short.
    for (let k = 1; k < len; k++) {
      if (++i === len) i = 0;
      const s = this.map[i]!;
      if (s !== exclude) return s;
    }
    return first;
  }

  private pickConsistent(hash: number, exclude: S | undefined): S | undefined {
    const n = this.servers.length;
    if (n === 0) return undefined;
    let best = -1;
    let bestScore = -1;
    for (let i = 0; i < n; i++) {
      if (this.servers[i] === exclude) continue;
      // u in (0, 1): never 0 (log would be -Infinity) nor 1 (score would be Infinity).
      const u = (mix32(hash, this.nameHashes[i]!) + 0.5) / 4294967296;
      const score = -this.weights[i]! / Math.log(u);
      if (score > bestScore || (score === bestScore && this.nameHashes[i]! > this.nameHashes[best]!)) {
        best = i;
        bestScore = score;
      }
    }
    return best < 0 ? exclude : this.servers[best];
  }
}

/**
 * The `map-based` table: `weight / gcd` slots per server, ordered by smooth round robin (each
 * step adds every server's slots to its score, picks the highest score, lowest index on a tie, and
 * takes the total off the winner).
 *
 * Computed per weight class rather than per server: servers with the same slots gain score at the
 * same rate, so among them the one picked least often, lowest index first, leads, and they take
 * turns in index order. A class's leader after k steps scores k*slots - total*rounds (rounds = its
 * completed turns). So each step compares one leader per distinct weight (at most 256) instead of
 * every server: O(total * classes), linear in servers for equal weights, where the per-server
 * form cost O(total * servers), seconds for tens of thousands of servers. Same table.
 */
export function buildMap<S extends ServerRef>(list: readonly S[], weights: Float64Array): S[] {
  const n = list.length;
  if (n === 0) return [];
  let g = 0;
  for (let i = 0; i < n; i++) g = gcd(weights[i]!, g);
  let total = 0;
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const s = weights[i]! / g;
    total += s;
    const members = byClass.get(s);
    if (members) members.push(i);
    else byClass.set(s, [i]);
  }
  const classes = [...byClass].map(([slots, members]) => ({ slots, members, next: 0, rounds: 0 }));
  const map: S[] = new Array<S>(total);
  for (let k = 1; k <= total; k++) {
    let best = classes[0]!;
    let bestScore = k * best.slots - total * best.rounds;
    for (let c = 1; c < classes.length; c++) {
      const cl = classes[c]!;
      const score = k * cl.slots - total * cl.rounds;
      if (score > bestScore || (score === bestScore && cl.members[cl.next]! < best.members[best.next]!)) {
        best = cl;
        bestScore = score;
      }
    }
    map[k - 1] = list[best.members[best.next]!]!;
    if (++best.next === best.members.length) {
      best.next = 0;
      best.rounds++;
    }
  }
  return map;
}

/**
 * Power of two choices: draws two distinct candidates with probability proportional to weight and
 * keeps the one with the lower `activeConns / weight`. Nearly as even as least connections, but a
 * fleet of proxies does not herd onto the same momentarily idle server.
 */
export class RandomBalancer<S extends ServerRef = ServerRef> implements Balancer<S> {
  readonly algorithm = 'random';
  private servers: S[] = [];
  private weights: Float64Array<ArrayBuffer> = new Float64Array(0);
  /** starts[i] = sum of weights before i; the draw line is [0, total). */
  private starts = new Float64Array(0);
  private total = 0;
  private index = new Map<S, number>();

  rebuild(servers: readonly S[]): void {
    const { list, weights } = snapshot(servers);
    this.servers = list;
    this.weights = weights;
    this.starts = new Float64Array(list.length);
    this.index = new Map();
    let acc = 0;
    for (let i = 0; i < list.length; i++) {
      this.starts[i] = acc;
      acc += weights[i]!;
      this.index.set(list[i]!, i);
    }
    this.total = acc;
  }

  pick(_hash: number, exclude?: S): S | undefined {
    const n = this.servers.length;
    if (n === 0) return undefined;
    const ex = exclude === undefined ? -1 : (this.index.get(exclude) ?? -1);
    const candidates = ex < 0 ? n : n - 1;
    if (candidates === 0) return exclude;
    if (candidates === 1) return this.servers[ex === 0 ? 1 : 0];
    const exWeight = ex < 0 ? 0 : this.weights[ex]!;
    const a = this.draw(Math.random() * (this.total - exWeight), ex, -1);
    const b = this.draw(Math.random() * (this.total - exWeight - this.weights[a]!), ex, a);
    const sa = this.servers[a]!;
    const sb = this.servers[b]!;
    return sb.activeConns * this.weights[a]! < sa.activeConns * this.weights[b]! ? sb : sa;
  }

  /**
   * Maps `r`, uniform over the draw line with the intervals of `skipA` and `skipB` (-1 = none)
   * removed, back onto the full line and returns the server whose interval holds it. Never returns a
   * skipped index, so a draw costs one random number and a binary search.
   */
  private draw(r: number, skipA: number, skipB: number): number {
    let lo = skipA;
    let hi = skipB;
    if (lo > hi) {
      lo = skipB;
      hi = skipA;
    }
    if (lo >= 0 && r >= this.starts[lo]!) r += this.weights[lo]!;
    if (hi >= 0 && r >= this.starts[hi]!) r += this.weights[hi]!;
    // Largest i with starts[i] <= r.
    const n = this.servers.length;
    let left = 0;
    let right = n - 1;
    while (left < right) {
      const mid = (left + right + 1) >>> 1;
      if (this.starts[mid]! <= r) left = mid;
      else right = mid - 1;
    }
    // Floating-point edges can land on a skipped interval; step to a neighbour that is allowed.
    while (left === skipA || left === skipB) left = left + 1 < n ? left + 1 : 0;
    return left;
  }
}

/** The balancer for a backend's `balance` algorithm and `hash-type`. */
export function createBalancer<S extends ServerRef = ServerRef>(algorithm: BalanceAlgorithm, hashType: HashType): Balancer<S> {
  switch (algorithm) {
    case 'roundrobin':
      return new RoundRobinBalancer<S>();
    case 'leastconn':
      return new LeastConnBalancer<S>();
    case 'source':
      return new SourceBalancer<S>(hashType);
    case 'random':
      return new RandomBalancer<S>();
  }
}
