/**
 * The counter store of one stick table: per key, this node's share of each stored counter and the
 * shares the other nodes replicated (see types.ts for the semantics every implementation keeps).
 */
import { randomBytes } from 'node:crypto';
import type { CounterKind, StickTableConfig, StoredType } from '../config/model.js';
import { StickmeshError } from '../errors.js';
import { KeyCodec, hashKeyWords } from '../table/keys.js';
import type { TimerWheel, WheelTask } from '../util/timer-wheel.js';
import { freqAdd, freqTotal } from './freq.js';
import type { CounterStats, Counters, KeyShares, ReplicatedCounters, ShareUpdate } from './types.js';

export interface CounterTableOptions {
  /** This node's name (its share is listed under it; peers' shares under theirs). */
  node: string;
  /** Wall clock in ms (tests inject one). Default Date.now. */
  now?: () => number;
  /** When given, expired keys are swept on it (as `start(wheel)`). */
  wheel?: TimerWheel;
  /** Other nodes whose shares are kept (default 32); shares of further nodes are refused. */
  maxNodes?: number;
  /**
   * `local` reads this node's share only and replicates nothing (HAProxy's behaviour); default
   * `cfg.counters ?? 'cluster'`. The registry passes `local` for tables without peers.
   */
  mode?: 'cluster' | 'local';
}

export const DEFAULT_MAX_NODES = 32;
/** Longest node name accepted from a peer (bytes of UTF-16 text). */
export const MAX_NODE_NAME = 255;
/**
 * How far ahead of this node's clock a peer's share may be dated (rate period, gpt write time):
 * more is refused as insane, so a peer with a wild clock cannot pin a tag or a rate.
 */
export const MAX_CLOCK_AHEAD_MS = 60_000;

/** Class of a column: how it is stored, summed and replicated. */
const COUNT = 0;
const GAUGE = 1;
const RATE = 2;
const TAG = 3;

const U32_MAX = 4294967295;

interface Column {
  type: StoredType;
  cls: number;
  /** Rate period in ms (RATE only). */
  period: number;
  /** Float64 counts (bytes counters, whose values outgrow 32 bits), else Uint32 wrapping at 2^32. */
  wide: boolean;
  /** Largest count a peer may send. */
  max: number;
  /** Position of its first number in a share's `v`. */
  off: number;
  /** Canonical wire text (`http_req_rate(10000)`, `gpc(0)`). */
  wire: string;
  /** Display text (`http_req_rate(10s)`, `gpc0`). */
  label: string;
}

/**
 * One node's shares, column arrays of `capacity` elements: `v` the count, gauge, rate current
 * count or tag value; `t` the rate's period index or the tag's write time; `p` the rate's previous
 * count. `has[s]` = 1 when the node holds a share for slot s (written locally / received).
 */
class Shares {
  readonly name: string;
  readonly has: Uint8Array;
  readonly v: (Uint32Array | Float64Array)[] = [];
  readonly t: (Float64Array | undefined)[] = [];
  readonly p: (Uint32Array | Float64Array | undefined)[] = [];
  /** Slots with has = 1. */
  live = 0;

  constructor(name: string, cols: readonly Column[], cap: number) {
    this.name = name;
    this.has = new Uint8Array(cap);
    for (const c of cols) {
      this.v.push(c.wide ? new Float64Array(cap) : new Uint32Array(cap));
      this.t.push(c.cls === RATE || c.cls === TAG ? new Float64Array(cap) : undefined);
      this.p.push(c.cls === RATE ? (c.wide ? new Float64Array(cap) : new Uint32Array(cap)) : undefined);
    }
  }

  clear(s: number): void {
    for (let c = 0; c < this.v.length; c++) {
      this.v[c]![s] = 0;
      const t = this.t[c];
      if (t) t[s] = 0;
      const p = this.p[c];
      if (p) p[s] = 0;
    }
  }
}

const NONE = -1;
const USED = 1;
/** In the dirty queue (kept across release and reuse of the slot, so a slot is queued at most once). */
const DIRTY = 2;

function nextPow2(n: number): number {
  let p = 4;
  while (p < n) p *= 2;
  return p;
}

function periodText(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

function describe(t: StoredType, off: number): Column {
  const k = t.kind;
  const rate = k.endsWith('_rate');
  const cls = k === 'conn_cur' ? GAUGE : k === 'gpt' ? TAG : rate ? RATE : COUNT;
  const wide = k.startsWith('bytes_');
  let wire: string;
  let label: string;
  if (k === 'gpc' || k === 'gpt') {
    wire = `${k}(${t.idx})`;
    label = `${k}${t.idx}`;
  } else if (k === 'gpc_rate') {
    wire = `gpc_rate(${t.idx},${t.period})`;
    label = `gpc${t.idx}_rate(${periodText(t.period)})`;
  } else if (rate) {
    wire = `${k}(${t.period})`;
    label = `${k}(${periodText(t.period)})`;
  } else {
    wire = k;
    label = k;
  }
  return { type: t, cls, period: rate ? t.period : 0, wide, max: wide ? Number.MAX_SAFE_INTEGER : U32_MAX, off, wire, label };
}

function isCount(x: unknown, max: number): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= max;
}

/**
 * Counters of one stick table, columnar: every per-key array is allocated at construction with
 * `capacity` (= cfg.size) elements, so memory is fixed up front and no per-entry JS object exists.
 * Other nodes' shares are kept in per-node column arrays of the same length, allocated when a node's
 * first share arrives and released when its last share is gone.
 *
 * State bytes per entry (`ip` keys, `store http_req_rate(10s),conn_cur`, cluster mode):
 * - key and index: key 16 (keys.ts: ip 16, integer 8, string len + 2 rounded up to 4), hash 4,
 *   open-addressing index 4 x nextPow2(2 x size) / size (8 to 16; 8.4 at 1M) = 28.4;
 * - entry state: flags 1, references 4, expiry 8, LRU links 8 = 21;
 * - dirty queue (cluster mode only): slot 4 + time of change 8 = 12;
 * - this node's share: presence 1, per rate column 16 (period index 8, current 4, previous 4; bytes
 *   rates 24), per count or gauge 4 (bytes counters 8), per gpt 12 (value 4, write time 8):
 *   1 + 16 + 4 = 21 here;
 * - each other node with shares: the same as this node's share (21 here), for every slot.
 * So 82.4 bytes per entry with no peer and 21 more per peer for that store line; measured at 1M
 * entries: 82.5, 103.6 with one peer, 124.6 with two (`node --expose-gc bench/counters-memory.mjs`).
 *
 * Wire layout of a share (`ShareUpdate.v`), columns in `data` order (the table's `store` order):
 * - count (`gpc`, `*_cnt`): [count], integer 0..2^32-1 (bytes counters: 0..2^53-1);
 * - `conn_cur`: [gauge], integer 0..2^32-1;
 * - rate (`*_rate`, `gpc_rate`): [period index (floor(wall ms / period)), current period's count,
 *   previous period's count]; an index more than MAX_CLOCK_AHEAD_MS ahead of the receiver is refused;
 * - `gpt`: [value 0..2^32-1, wall ms of the write (0 = never written)].
 * `schema` names each column (`http_req_rate(10000),conn_cur,gpc(0)`); `width` is the length of v.
 *
 * Keys: the canonical text of the table type (keys.ts), in an open-addressing index like
 * StickTable's. Eviction: the unreferenced keys form an LRU list ordered by last touch (local
 * write, remote share, release), which is also expiry order since every touch sets expiry to
 * now + expire; a full table evicts the head, and `acquire` fails when every key is referenced.
 */
export class CounterTable implements Counters, ReplicatedCounters {
  readonly id: string;
  readonly cfg: StickTableConfig;
  readonly node: string;
  readonly mode: 'cluster' | 'local';
  readonly data: readonly StoredType[];
  readonly schema: string;
  readonly width: number;
  readonly maxNodes: number;
  readonly now: () => number;
  onDirty: (() => void) | undefined = undefined;

  private readonly cols: Column[];
  private readonly colOf = new Map<string, number>();
  private readonly codec: KeyCodec;
  private readonly words: number;
  private readonly cap: number;
  private readonly keys: Buffer;
  private readonly keyWords: Uint32Array;
  private readonly scratch: Buffer;
  private readonly scratchWords: Uint32Array;
  private readonly index: Int32Array;
  private readonly mask: number;
  private readonly hashes: Uint32Array;
  private readonly seed: number;
  private readonly flags: Uint8Array;
  private readonly refs: Uint32Array;
  /** Absolute expiry in ms; 0 = never (table without expire). */
  private readonly expires: Float64Array;
  /** LRU list of unreferenced live slots (oldest touched at lruHead); `lnext` also links free slots. */
  private readonly lprev: Int32Array;
  private readonly lnext: Int32Array;
  private lruHead = NONE;
  private lruTail = NONE;
  private freeHead = NONE;
  private hwm = 0;
  private _count = 0;
  /** Dirty queue (FIFO ring of slots, with the wall time each was queued); empty arrays in local mode. */
  private readonly queue: Int32Array;
  private readonly queueAt: Float64Array;
  private qHead = 0;
  private qLen = 0;
  /** This node's shares at [0], other nodes' after; `byName` maps names to entries of `nodes`. */
  private readonly nodes: Shares[];
  private readonly local: Shares;
  private readonly byName = new Map<string, Shares>();
  private _evictions = 0;
  private _expired = 0;
  private _trackFailures = 0;
  private _remoteApplied = 0;
  private _remoteRejected = 0;
  private _nodesRefused = 0;
  private sweepTask: WheelTask | undefined;
  private sweepWheel: TimerWheel | undefined;

  constructor(cfg: StickTableConfig, opts: CounterTableOptions) {
    if (!Number.isInteger(cfg.size) || cfg.size < 1 || cfg.size > 0x3fffffff) {
      throw new StickmeshError('SM_TABLE_CONFIG', `stick table '${cfg.id}': size must be an integer in 1..2^30, got ${cfg.size}`);
    }
    const data = cfg.data ?? [];
    for (const t of data) {
      if (t.kind.endsWith('_rate') && !(Number.isInteger(t.period) && t.period >= 1)) {
        throw new StickmeshError('SM_TABLE_CONFIG', `stick table '${cfg.id}': ${t.kind} needs a period of at least 1 ms, got ${t.period}`);
      }
    }
    this.id = cfg.id;
    this.cfg = cfg;
    this.node = opts.node;
    this.now = opts.now ?? Date.now;
    this.mode = opts.mode ?? cfg.counters ?? 'cluster';
    this.maxNodes = opts.maxNodes ?? DEFAULT_MAX_NODES;
    this.data = data;
    this.cols = [];
    let off = 0;
    for (const t of data) {
      const c = describe(t, off);
      off += c.cls === RATE ? 3 : c.cls === TAG ? 2 : 1;
      this.colOf.set(`${t.kind}:${t.idx}`, this.cols.length);
      this.cols.push(c);
    }
    this.width = off;
    this.schema = this.cols.map((c) => c.wire).join(',');
    this.codec = new KeyCodec(cfg.type, cfg.keyLen);
    const width = this.codec.width;
    this.words = width >>> 2;
    const cap = (this.cap = cfg.size);
    this.keys = Buffer.from(new ArrayBuffer(cap * width));
    this.keyWords = new Uint32Array(this.keys.buffer, 0, cap * this.words);
    this.scratch = Buffer.from(new ArrayBuffer(width));
    this.scratchWords = new Uint32Array(this.scratch.buffer, 0, this.words);
    const isz = nextPow2(2 * cap);
    this.index = new Int32Array(isz);
    this.mask = isz - 1;
    this.hashes = new Uint32Array(cap);
    this.seed = randomBytes(4).readUInt32LE(0);
    this.flags = new Uint8Array(cap);
    this.refs = new Uint32Array(cap);
    this.expires = new Float64Array(cap);
    this.lprev = new Int32Array(cap);
    this.lnext = new Int32Array(cap);
    const qcap = this.mode === 'cluster' ? cap : 0;
    this.queue = new Int32Array(qcap);
    this.queueAt = new Float64Array(qcap);
    this.local = new Shares(this.node, this.cols, cap);
    this.nodes = [this.local];
    if (opts.wheel) this.start(opts.wheel);
  }

  get count(): number {
    return this._count;
  }

  get capacity(): number {
    return this.cap;
  }

  get dirty(): number {
    return this.qLen;
  }

  /** Wall ms when the oldest undrained local change happened, 0 when nothing is dirty (replication lag). */
  get oldestDirty(): number {
    return this.qLen > 0 ? this.queueAt[this.qHead]! : 0;
  }

  /** Names of the other nodes whose shares are held. */
  get remoteNodes(): string[] {
    return this.nodes.slice(1).map((n) => n.name);
  }

  /** Shares refused because `maxNodes` other nodes already had shares here (also in remoteRejected). */
  get nodesRefused(): number {
    return this._nodesRefused;
  }

  get stats(): CounterStats {
    return {
      count: this._count,
      capacity: this.cap,
      evictions: this._evictions,
      expired: this._expired,
      trackFailures: this._trackFailures,
      remoteApplied: this._remoteApplied,
      remoteRejected: this._remoteRejected,
    };
  }

  column(kind: CounterKind, idx = 0): number {
    return this.colOf.get(`${kind}:${idx}`) ?? -1;
  }

  acquire(key: string): number {
    if (!this.codec.encode(key, this.scratch, 0)) {
      this._trackFailures++;
      return NONE;
    }
    const h = hashKeyWords(this.scratchWords, 0, this.words, this.seed);
    const now = this.now();
    let s = this.lookupLive(h, now);
    if (s < 0) {
      s = this.create(h);
      if (s < 0) {
        this._trackFailures++;
        return NONE;
      }
    } else if (this.refs[s] === 0) this.lruUnlink(s);
    this.refs[s]!++;
    if (this.cfg.expire > 0) this.expires[s] = now + this.cfg.expire;
    return s;
  }

  release(slot: number): void {
    if ((this.flags[slot]! & USED) === 0 || this.refs[slot] === 0) return;
    const r = --this.refs[slot]!;
    if (r === 0) {
      if (this.cfg.expire > 0) this.expires[slot] = this.now() + this.cfg.expire;
      this.lruAppend(slot);
    }
  }

  find(key: string): number {
    if (!this.codec.encode(key, this.scratch, 0)) return NONE;
    return this.lookupLive(hashKeyWords(this.scratchWords, 0, this.words, this.seed), this.now());
  }

  add(slot: number, col: number, n: number): void {
    if ((this.flags[slot]! & USED) === 0) return;
    const c = this.cols[col];
    if (c === undefined) return;
    const now = this.now();
    const sh = this.local;
    if (c.cls === GAUGE) {
      if (!Number.isFinite(n)) return;
      const v = sh.v[col]!;
      const x = v[slot]! + n;
      v[slot] = x < 0 ? 0 : x;
    } else if (c.cls === RATE) {
      if (!(n > 0) || n === Infinity) return;
      freqAdd(sh.t[col]!, sh.v[col]!, sh.p[col]!, slot, n, now, c.period);
    } else if (c.cls === COUNT) {
      if (!(n > 0) || n === Infinity) return;
      const v = sh.v[col]!;
      v[slot] = v[slot]! + n;
    } else return;
    this.touchLocal(slot, now);
  }

  set(slot: number, col: number, value: number): void {
    if ((this.flags[slot]! & USED) === 0) return;
    const c = this.cols[col];
    if (c === undefined || c.cls !== TAG || !Number.isFinite(value)) return;
    const now = this.now();
    this.local.v[col]![slot] = value;
    this.local.t[col]![slot] = now;
    this.touchLocal(slot, now);
  }

  read(slot: number, col: number): number {
    const c = this.cols[col];
    if (c === undefined || (this.flags[slot]! & USED) === 0) return 0;
    const n = this.mode === 'local' ? 1 : this.nodes.length;
    if (c.cls === RATE) {
      const now = this.now();
      const p = c.period;
      const nowK = Math.floor(now / p);
      let total = 0;
      for (let i = 0; i < n; i++) {
        const sh = this.nodes[i]!;
        total += freqTotal(sh.t[col]![slot]!, sh.v[col]![slot]!, sh.p[col]![slot]!, now, nowK, p);
      }
      return Math.floor(total / p);
    }
    if (c.cls === TAG) {
      let best = this.local;
      let bestWall = best.t[col]![slot]!;
      for (let i = 1; i < n; i++) {
        const sh = this.nodes[i]!;
        const w = sh.t[col]![slot]!;
        if (w > bestWall || (w === bestWall && w > 0 && sh.name > best.name)) {
          best = sh;
          bestWall = w;
        }
      }
      return best.v[col]![slot]!;
    }
    let sum = 0;
    for (let i = 0; i < n; i++) sum += this.nodes[i]!.v[col]![slot]!;
    return sum;
  }

  shares(key: string): KeyShares | undefined {
    const s = this.find(key);
    if (s < 0) return undefined;
    const total: Record<string, number> = {};
    for (let c = 0; c < this.cols.length; c++) total[this.cols[c]!.label] = this.read(s, c);
    const now = this.now();
    const nodes: KeyShares['nodes'] = [];
    const n = this.mode === 'local' ? 1 : this.nodes.length;
    for (let i = 0; i < n; i++) {
      const sh = this.nodes[i]!;
      if (i > 0 && sh.has[s] === 0) continue;
      const values: Record<string, number> = {};
      for (let c = 0; c < this.cols.length; c++) values[this.cols[c]!.label] = this.shareValue(sh, s, c, now);
      nodes.push({ node: sh.name, values });
    }
    return { key: this.codec.decode(this.keys, s * this.codec.width), expiresAt: this.expires[s]!, total, nodes };
  }

  drainDirty(max: number, out: ShareUpdate[]): number {
    const now = this.now();
    let oldest = 0;
    let added = 0;
    while (this.qLen > 0 && added < max) {
      const s = this.queue[this.qHead]!;
      const at = this.queueAt[this.qHead]!;
      this.qHead = this.qHead + 1 === this.cap ? 0 : this.qHead + 1;
      this.qLen--;
      this.flags[s]! &= ~DIRTY;
      if ((this.flags[s]! & USED) === 0 || this.local.has[s] === 0) continue;
      if (this.deadAt(s, now)) {
        this.removeExpired(s);
        continue;
      }
      if (added === 0) oldest = at;
      out.push(this.localUpdate(s));
      added++;
    }
    return oldest;
  }

  exportShares(cursor: number, max: number, out: ShareUpdate[]): number {
    if (this.mode === 'local') return -1;
    return this.exportOwn(cursor, max, out);
  }

  /** Like exportShares in either mode (snapshots): this node's live shares from slot `cursor` on. */
  exportOwn(cursor: number, max: number, out: ShareUpdate[]): number {
    if (!Number.isInteger(cursor) || cursor < 0) return -1;
    const now = this.now();
    let s = cursor;
    let added = 0;
    while (s < this.hwm && added < max) {
      if ((this.flags[s]! & USED) !== 0 && this.local.has[s] !== 0 && !this.deadAt(s, now)) {
        out.push(this.localUpdate(s));
        added++;
      }
      s++;
    }
    return s >= this.hwm ? -1 : s;
  }

  applyShares(node: string, u: ShareUpdate): boolean {
    if (this.mode === 'local' || typeof node !== 'string' || node.length === 0 || node.length > MAX_NODE_NAME || node === this.node) {
      this._remoteRejected++;
      return false;
    }
    const now = this.now();
    if (!this.validShare(u, now) || !this.codec.encode(u.key, this.scratch, 0)) {
      this._remoteRejected++;
      return false;
    }
    if (!this.byName.has(node) && this.nodes.length - 1 >= this.maxNodes) {
      this._nodesRefused++;
      this._remoteRejected++;
      return false;
    }
    const h = hashKeyWords(this.scratchWords, 0, this.words, this.seed);
    let s = this.lookupLive(h, now);
    if (s < 0) {
      s = this.create(h);
      if (s < 0) {
        this._remoteRejected++;
        return false;
      }
      if (this.cfg.expire > 0) this.expires[s] = now + this.cfg.expire;
      this.lruAppend(s);
    } else this.touch(s, now);
    // Looked up after `create`: an eviction there may have removed the node's last share (and entry).
    let sh = this.byName.get(node);
    if (sh === undefined) {
      sh = new Shares(node, this.cols, this.cap);
      this.byName.set(node, sh);
      this.nodes.push(sh);
    }
    this.writeShare(sh, s, u.v);
    this._remoteApplied++;
    return true;
  }

  /**
   * Loads this node's own share of a key (from a snapshot written before a restart), as if written
   * locally now: replaces the local share, with its gauges (conn_cur) at 0 since this node's
   * connections did not survive the restart, and queues it for the peers. Same checks as
   * applyShares; false when refused.
   */
  restoreOwn(u: ShareUpdate): boolean {
    const now = this.now();
    if (!this.validShare(u, now) || !this.codec.encode(u.key, this.scratch, 0)) return false;
    const h = hashKeyWords(this.scratchWords, 0, this.words, this.seed);
    let s = this.lookupLive(h, now);
    if (s < 0) {
      s = this.create(h);
      if (s < 0) return false;
      if (this.cfg.expire > 0) this.expires[s] = now + this.cfg.expire;
      this.lruAppend(s);
    }
    this.writeShare(this.local, s, u.v);
    for (let c = 0; c < this.cols.length; c++) if (this.cols[c]!.cls === GAUGE) this.local.v[c]![s] = 0;
    this.touchLocal(s, now);
    return true;
  }

  /**
   * Absolute expiry of a live key for a snapshot: its expiry, or now + expire while referenced (it
   * is refreshed on release); 0 when it never expires or is absent.
   */
  expiryOf(key: string): number {
    const s = this.find(key);
    if (s < 0 || this.cfg.expire <= 0) return 0;
    return this.refs[s]! > 0 ? Math.max(this.expires[s]!, this.now() + this.cfg.expire) : this.expires[s]!;
  }

  dropNode(node: string): void {
    const sh = this.byName.get(node);
    if (sh === undefined) return;
    for (let c = 0; c < this.cols.length; c++) if (this.cols[c]!.cls === GAUGE) sh.v[c]!.fill(0);
  }

  /**
   * Removes expired unreferenced keys from the head of the LRU list (expiry order), at most
   * `budget`. Returns how many.
   */
  sweep(budget = 10_000): number {
    if (this.cfg.expire <= 0) return 0;
    const now = this.now();
    let removed = 0;
    while (removed < budget && this.lruHead !== NONE) {
      const s = this.lruHead;
      const e = this.expires[s]!;
      if (e === 0 || e > now) break;
      this.removeExpired(s);
      removed++;
    }
    return removed;
  }

  /** Sweeps every max(1000, min(expire/8, 10000)) ms on `wheel` until stop(). No-op without expire. */
  start(wheel: TimerWheel): void {
    this.stop();
    if (this.cfg.expire <= 0) return;
    const every = Math.max(1000, Math.min(this.cfg.expire / 8, 10000));
    const task: WheelTask = {
      run: () => {
        this.sweep();
        if (this.sweepTask === task) wheel.schedule(task, every);
      },
    };
    this.sweepTask = task;
    this.sweepWheel = wheel;
    wheel.schedule(task, every);
  }

  /** Whether a sweep is scheduled (start was called and stop was not). */
  get sweeping(): boolean {
    return this.sweepTask !== undefined;
  }

  stop(): void {
    if (this.sweepTask && this.sweepWheel) this.sweepWheel.cancel(this.sweepTask);
    this.sweepTask = undefined;
    this.sweepWheel = undefined;
  }

  // ---- internals ----

  /** Whether u is an object with a string key and `width` numbers sane for their columns. */
  private validShare(u: unknown, now: number): u is ShareUpdate {
    if (typeof u !== 'object' || u === null) return false;
    const { key, v } = u as { key?: unknown; v?: unknown };
    if (typeof key !== 'string' || !Array.isArray(v) || v.length !== this.width) return false;
    for (const c of this.cols) {
      const o = c.off;
      if (c.cls === RATE) {
        const aheadK = Math.floor((now + MAX_CLOCK_AHEAD_MS) / c.period);
        if (!isCount(v[o], aheadK) || !isCount(v[o + 1], c.max) || !isCount(v[o + 2], c.max)) return false;
      } else if (c.cls === TAG) {
        const w: unknown = v[o + 1];
        if (!isCount(v[o], U32_MAX) || typeof w !== 'number' || !Number.isFinite(w) || w < 0 || w > now + MAX_CLOCK_AHEAD_MS) return false;
      } else if (!isCount(v[o], c.max)) return false;
    }
    return true;
  }

  /** Replaces node `sh`'s share of slot s with the validated numbers of `v`. */
  private writeShare(sh: Shares, s: number, v: readonly number[]): void {
    for (let c = 0; c < this.cols.length; c++) {
      const col = this.cols[c]!;
      const o = col.off;
      sh.v[c]![s] = col.cls === RATE ? v[o + 1]! : v[o]!;
      if (col.cls === RATE) {
        sh.t[c]![s] = v[o]!;
        sh.p[c]![s] = v[o + 2]!;
      } else if (col.cls === TAG) sh.t[c]![s] = v[o + 1]!;
    }
    if (sh.has[s] === 0) {
      sh.has[s] = 1;
      sh.live++;
    }
  }

  /** Node `sh`'s value of column c for slot s now (its own rate over the period). */
  private shareValue(sh: Shares, s: number, c: number, now: number): number {
    const col = this.cols[c]!;
    if (col.cls === RATE) {
      const p = col.period;
      return Math.floor(freqTotal(sh.t[c]![s]!, sh.v[c]![s]!, sh.p[c]![s]!, now, Math.floor(now / p), p) / p);
    }
    return sh.v[c]![s]!;
  }

  private localUpdate(s: number): ShareUpdate {
    const v = new Array<number>(this.width);
    const sh = this.local;
    for (let c = 0; c < this.cols.length; c++) {
      const col = this.cols[c]!;
      const o = col.off;
      if (col.cls === RATE) {
        v[o] = sh.t[c]![s]!;
        v[o + 1] = sh.v[c]![s]!;
        v[o + 2] = sh.p[c]![s]!;
      } else if (col.cls === TAG) {
        v[o] = sh.v[c]![s]!;
        v[o + 1] = sh.t[c]![s]!;
      } else v[o] = sh.v[c]![s]!;
    }
    return { key: this.codec.decode(this.keys, s * this.codec.width), v };
  }

  /** After a local write: the share exists, expiry refreshed, and (cluster mode) the slot queued for the peers. */
  private touchLocal(s: number, now: number): void {
    if (this.local.has[s] === 0) {
      this.local.has[s] = 1;
      this.local.live++;
    }
    this.touch(s, now);
    if (this.mode === 'local' || (this.flags[s]! & DIRTY) !== 0) return;
    this.flags[s]! |= DIRTY;
    let at = this.qHead + this.qLen;
    if (at >= this.cap) at -= this.cap;
    this.queue[at] = s;
    this.queueAt[at] = now;
    if (++this.qLen === 1 && this.onDirty !== undefined) this.onDirty();
  }

  /** Refreshes expiry; an unreferenced slot becomes the most recently touched. */
  private touch(s: number, now: number): void {
    if (this.cfg.expire > 0) this.expires[s] = now + this.cfg.expire;
    if (this.refs[s] === 0) {
      this.lruUnlink(s);
      this.lruAppend(s);
    }
  }

  /** Expired: unreferenced and past its expiry. */
  private deadAt(s: number, now: number): boolean {
    const e = this.expires[s]!;
    return e !== 0 && e <= now && this.refs[s] === 0;
  }

  /** Slot of the key in scratch (hash h) if live; an expired one found is removed. */
  private lookupLive(h: number, now: number): number {
    const s = this.indexFind(h);
    if (s >= 0 && this.deadAt(s, now)) {
      this.removeExpired(s);
      return NONE;
    }
    return s;
  }

  private removeExpired(s: number): void {
    this._expired++;
    this.lruUnlink(s);
    this.freeSlot(s);
  }

  /** A new entry for the key in scratch, unreferenced and not in the LRU list; NONE when full of referenced keys. */
  private create(h: number): number {
    let s: number;
    if (this.freeHead !== NONE) {
      s = this.freeHead;
      this.freeHead = this.lnext[s]!;
    } else if (this.hwm < this.cap) s = this.hwm++;
    else if (this.lruHead !== NONE) {
      s = this.lruHead;
      if (this.deadAt(s, this.now())) this._expired++;
      else this._evictions++;
      this.lruUnlink(s);
      this.freeSlot(s);
      this.freeHead = this.lnext[s]!;
    } else return NONE;
    this.keys.set(this.scratch, s * this.codec.width);
    this.hashes[s] = h;
    this.indexInsert(s, h);
    this.flags[s] = USED | (this.flags[s]! & DIRTY);
    this.refs[s] = 0;
    this.expires[s] = 0;
    this._count++;
    return s;
  }

  /** Releases slot s (not in the LRU list) to the free list, clearing every node's share of it. */
  private freeSlot(s: number): void {
    this.indexRemove(s);
    this.flags[s]! &= DIRTY;
    this.refs[s] = 0;
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const sh = this.nodes[i]!;
      if (sh.has[s] === 0) continue;
      sh.has[s] = 0;
      sh.clear(s);
      if (--sh.live === 0 && i > 0) {
        // A node with no share left (departed, or its keys expired) frees its arrays and its place.
        this.nodes.splice(i, 1);
        this.byName.delete(sh.name);
      }
    }
    this.lnext[s] = this.freeHead;
    this.freeHead = s;
    this._count--;
  }

  private lruAppend(s: number): void {
    this.lprev[s] = this.lruTail;
    this.lnext[s] = NONE;
    if (this.lruTail !== NONE) this.lnext[this.lruTail] = s;
    else this.lruHead = s;
    this.lruTail = s;
  }

  /** Unlinks s from the LRU list; s must be in it (unreferenced and live). */
  private lruUnlink(s: number): void {
    const p = this.lprev[s]!;
    const n = this.lnext[s]!;
    if (p !== NONE) this.lnext[p] = n;
    else this.lruHead = n;
    if (n !== NONE) this.lprev[n] = p;
    else this.lruTail = p;
  }

  /** Slot whose key equals the scratch key, or NONE. */
  private indexFind(h: number): number {
    const words = this.words;
    const kw = this.keyWords;
    const sw = this.scratchWords;
    let i = h & this.mask;
    for (;;) {
      const e = this.index[i]!;
      if (e === 0) return NONE;
      const s = e - 1;
      if (this.hashes[s] === h) {
        const base = s * words;
        let k = 0;
        while (k < words && kw[base + k] === sw[k]) k++;
        if (k === words) return s;
      }
      i = (i + 1) & this.mask;
    }
  }

  private indexInsert(s: number, h: number): void {
    let i = h & this.mask;
    while (this.index[i] !== 0) i = (i + 1) & this.mask;
    this.index[i] = s + 1;
  }

  /** Deletes slot s from the index by backward shift, so no tombstones accumulate. */
  private indexRemove(s: number): void {
    const mask = this.mask;
    let i = this.hashes[s]! & mask;
    while (this.index[i] !== s + 1) i = (i + 1) & mask;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const e = this.index[j]!;
      if (e === 0) break;
      const home = this.hashes[e - 1]! & mask;
      if (((j - home) & mask) >= ((j - i) & mask)) {
        this.index[i] = e;
        i = j;
      }
    }
    this.index[i] = 0;
  }
}
