/**
 * The counter store of one stick table: per key, this node's share of each stored counter and the
 * shares the other nodes replicated (see types.ts for the semantics every implementation keeps).
 *
 * Built `shared: true`, the whole store lives in SharedArrayBuffers (util/shared.ts) and every
 * thread of the node (`nbthread`) attaches to the same one: the main thread builds it and passes
 * `shareHandle()` to each worker, which calls `CounterTable.attach(handle)`. See the class comment
 * for how writes and reads are made safe.
 */
import { randomBytes } from 'node:crypto';
import type { CounterKind, StickTableConfig, StoredType } from '../config/model.js';
import { StickmeshError } from '../errors.js';
import { KeyCodec, hashKeyWords } from '../table/keys.js';
import { Arena, SeqLock, SpinLock, type ArenaHandle } from '../util/shared.js';
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
  /**
   * Storage in SharedArrayBuffers, for a node whose threads all count into this table (`nbthread`):
   * other threads attach with `CounterTable.attach(table.shareHandle())`. Default false: plain
   * memory, no lock taken.
   */
  shared?: boolean;
}

/** What another thread needs to attach to a shared CounterTable; structured-cloneable (postMessage, workerData). */
export interface CounterTableHandle {
  readonly cfg: StickTableConfig;
  readonly node: string;
  readonly mode: 'cluster' | 'local';
  readonly maxNodes: number;
  /** Every fixed-size array of the table. */
  readonly arena: ArenaHandle;
  /**
   * Other nodes' shares: a growable SharedArrayBuffer holding one block per node place, grown (by
   * whichever thread admits a new node) up to `maxNodes` blocks, so no thread has to be told.
   */
  readonly remote: GrowableSab;
}

/** Options of a thread attaching to a shared table (the rest comes from the handle). */
export interface CounterAttachOptions {
  now?: () => number;
  wheel?: TimerWheel;
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

type Alloc = {
  u8(name: string, n: number): Uint8Array;
  u32(name: string, n: number): Uint32Array;
  f64(name: string, n: number): Float64Array;
};

/** Allocates consecutive arrays in `buf` from byte `at`, each aligned to its element size. */
class Bump implements Alloc {
  constructor(
    private readonly buf: ArrayBufferLike,
    private at: number,
  ) {}

  private take(n: number, size: number): number {
    this.at = Math.ceil(this.at / size) * size;
    const o = this.at;
    this.at += n * size;
    return o;
  }

  u8(_: string, n: number): Uint8Array {
    return new Uint8Array(this.buf, this.take(n, 1), n);
  }

  u32(_: string, n: number): Uint32Array {
    return new Uint32Array(this.buf, this.take(n, 4), n);
  }

  f64(_: string, n: number): Float64Array {
    return new Float64Array(this.buf, this.take(n, 8), n);
  }
}

/** Counts the bytes a Bump would take for the same arrays (and makes empty ones). */
class Sizer implements Alloc {
  bytes = 0;

  private take(n: number, size: number): void {
    this.bytes = Math.ceil(this.bytes / size) * size + n * size;
  }

  u8(_: string, n: number): Uint8Array {
    this.take(n, 1);
    return new Uint8Array(0);
  }

  u32(_: string, n: number): Uint32Array {
    this.take(n, 4);
    return new Uint32Array(0);
  }

  f64(_: string, n: number): Float64Array {
    this.take(n, 8);
    return new Float64Array(0);
  }
}

/** A growable SharedArrayBuffer (ES2024, in Node 20; the project's TypeScript lib predates it). */
interface GrowableSab extends SharedArrayBuffer {
  readonly maxByteLength: number;
  readonly growable: boolean;
  grow(bytes: number): void;
}
const GrowableSab = SharedArrayBuffer as unknown as new (bytes: number, opts: { maxByteLength: number }) => GrowableSab;

/** Plain arrays of their own (unshared remote shares). */
const PLAIN: Alloc = {
  u8: (_, n) => new Uint8Array(n),
  u32: (_, n) => new Uint32Array(n),
  f64: (_, n) => new Float64Array(n),
};

/**
 * One node's shares, column arrays of `capacity` elements: `v` the count, gauge, rate current
 * count or tag value; `t` the rate's period index or the tag's write time; `p` the rate's previous
 * count. `has[s]` = 1 when the node holds a share for slot s (written locally / received). How many
 * slots have it is the table's `nodeLive[idx]`. Invariant: `has[s]` = 0 implies every value of s is 0.
 */
class Shares {
  readonly has: Uint8Array;
  readonly v: (Uint32Array | Float64Array)[] = [];
  readonly t: (Float64Array | undefined)[] = [];
  readonly p: (Uint32Array | Float64Array | undefined)[] = [];

  constructor(
    readonly name: string,
    /** Place in the table's node table (0 = this node). */
    readonly idx: number,
    /** Generation of that place when these arrays were made (a reused place gets a new one). */
    readonly gen: number,
    cols: readonly Column[],
    cap: number,
    a: Alloc,
    prefix: string,
  ) {
    // Float64 arrays first, then 32-bit, then bytes: a Bump block packs without padding.
    for (let c = 0; c < cols.length; c++) {
      const col = cols[c]!;
      this.t.push(col.cls === RATE || col.cls === TAG ? a.f64(`${prefix}t${c}`, cap) : undefined);
    }
    for (let c = 0; c < cols.length; c++) {
      const col = cols[c]!;
      this.v.push(col.wide ? a.f64(`${prefix}v${c}`, cap) : a.u32(`${prefix}v${c}`, cap));
      this.p.push(col.cls === RATE ? (col.wide ? a.f64(`${prefix}p${c}`, cap) : a.u32(`${prefix}p${c}`, cap)) : undefined);
    }
    this.has = a.u8(`${prefix}has`, cap);
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

/** Cells of `meta` (Int32): the table's changing scalars, and its two locks. */
const M_LOCK = 0;
const M_SEQ = 1;
const M_HWM = 2;
const M_COUNT = 3;
const M_LRU_HEAD = 4;
const M_LRU_TAIL = 5;
const M_FREE_HEAD = 6;
const M_QHEAD = 7;
const M_QLEN = 8;
const M_SEED = 9;
/** Bumped on every change to the node table, so each thread knows when to refresh its view of it. */
const M_NODE_EPOCH = 10;
/** Last generation given to a node place. */
const M_NODE_GEN = 11;
const META = 12;

/** Cells of `stats` (Float64: counters that outgrow 32 bits over a long uptime). */
const ST_EVICTIONS = 0;
const ST_EXPIRED = 1;
const ST_TRACK_FAILURES = 2;
const ST_REMOTE_APPLIED = 3;
const ST_REMOTE_REJECTED = 4;
const ST_NODES_REFUSED = 5;
const STATS = 6;

/** Lock-free read attempts that saw a concurrent write before a reader takes the lock instead. */
const READ_TRIES = 8;
/** Entries handled per lock hold by the bulk operations (drain, export, sweep), so writers on other threads wait little. */
const CHUNK = 64;

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
 * Shared, the same arrays live in SharedArrayBuffers (same bytes); the other nodes' blocks sit in
 * one growable buffer that reserves address space (not memory) for `maxNodes` blocks, commits a
 * block when a node's place is first used, and keeps it for the next node to use that place.
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
 *
 * Threads (shared storage): every method that changes anything (acquire, release, add, set,
 * applyShares, restoreOwn, dropNode, sweep, drainDirty, and find when it meets an expired key)
 * holds the table's SpinLock for the whole change, so writers never interleave; the SeqLock is odd
 * meanwhile, except for an `add` that changes one word (a 32-bit count or gauge, a rate's count
 * within its period): no reader can see half of it, and leaving the sequence alone spares two
 * atomic operations on the hot path and the readers' retries. `read` and `find` take no lock: they
 * read, and retry when the SeqLock moved meanwhile (after READ_TRIES such retries they take the
 * lock); a read of a 32-bit count or gauge is one word per share and needs no retry. A slot from `acquire` is held by its reference count in shared memory, so no thread
 * evicts or expires it until the last `release`, whichever thread took it. The dirty queue and its
 * DIRTY flags are shared, so a key is queued once whatever thread wrote it; `onDirty` fires in the
 * thread whose write made the queue non-empty (each thread sets its own: a worker's wakes the main
 * thread), after the lock is released; only the building thread may drain it (the mesh runs there).
 * Unshared (the default), no lock is taken and nothing else differs.
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
  /** Storage in SharedArrayBuffers (built `shared`, or attached). */
  readonly shared: boolean;
  /** Attached to another thread's table (this thread must not drain the dirty queue). */
  readonly attached: boolean;
  onDirty: (() => void) | undefined = undefined;

  private readonly arena: Arena;
  private readonly cols: Column[];
  private readonly colOf = new Map<string, number>();
  private readonly codec: KeyCodec;
  private readonly words: number;
  private readonly cap: number;
  private readonly meta: Int32Array;
  private readonly st: Float64Array;
  private readonly lock: SpinLock;
  private readonly seq: SeqLock;
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
  /** LRU list of unreferenced live slots (oldest touched at its head); `lnext` also links free slots. */
  private readonly lprev: Int32Array;
  private readonly lnext: Int32Array;
  /** Dirty queue (FIFO ring of slots, with the wall time each was queued); empty arrays in local mode. */
  private readonly queue: Int32Array;
  private readonly queueAt: Float64Array;
  /**
   * The node table: place 0 is this node, places 1..maxNodes other nodes. `nodeGen[i]` is 0 for a
   * free place, else the generation given when it was taken; `nodeLive[i]` counts slots with a share.
   */
  private readonly nodeGen: Int32Array;
  private readonly nodeLive: Int32Array;
  private readonly nodeNameLen: Int32Array;
  private readonly nodeName: Uint16Array;
  /** Other nodes' share blocks (shared storage only). */
  private readonly remote: GrowableSab | undefined;
  private readonly block: number;
  /** This thread's Shares per place (views of the remote blocks when shared, own arrays otherwise). */
  private readonly byIdx: (Shares | undefined)[];
  /** This thread's view of the node table: this node first, then the others by place. */
  private nodes: Shares[];
  private readonly local: Shares;
  private byName = new Map<string, Shares>();
  /** M_NODE_EPOCH when `nodes` was built; -1 forces a rebuild. */
  private epoch = 0;
  /** A write under the lock made the dirty queue non-empty: call onDirty once unlocked. */
  private fireDirty = false;
  private sweepTask: WheelTask | undefined;
  private sweepWheel: TimerWheel | undefined;

  constructor(cfg: StickTableConfig, opts: CounterTableOptions);
  constructor(cfg: StickTableConfig, opts: CounterTableOptions, from: CounterTableHandle | undefined);
  constructor(cfg: StickTableConfig, opts: CounterTableOptions, from?: CounterTableHandle) {
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
    if (!Number.isInteger(this.maxNodes) || this.maxNodes < 0 || this.maxNodes > 1024) {
      throw new StickmeshError('SM_TABLE_CONFIG', `stick table '${cfg.id}': maxNodes must be an integer in 0..1024, got ${this.maxNodes}`);
    }
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

    const arena = (this.arena = new Arena(opts.shared === true, from?.arena));
    this.shared = arena.shared;
    this.attached = arena.attached;
    this.meta = arena.i32('meta', META);
    this.st = arena.f64('stats', STATS);
    this.lock = new SpinLock(this.meta, M_LOCK);
    this.seq = new SeqLock(this.meta, M_SEQ);
    const keyBytes = arena.u8('keys', cap * width);
    this.keys = Buffer.from(keyBytes.buffer, keyBytes.byteOffset, keyBytes.byteLength);
    this.keyWords = new Uint32Array(keyBytes.buffer, keyBytes.byteOffset, cap * this.words);
    this.scratch = Buffer.from(new ArrayBuffer(width));
    this.scratchWords = new Uint32Array(this.scratch.buffer, 0, this.words);
    const isz = nextPow2(2 * cap);
    this.index = arena.i32('index', isz);
    this.mask = isz - 1;
    this.hashes = arena.u32('hashes', cap);
    this.flags = arena.u8('flags', cap);
    this.refs = arena.u32('refs', cap);
    this.expires = arena.f64('expires', cap);
    this.lprev = arena.i32('lprev', cap);
    this.lnext = arena.i32('lnext', cap);
    const qcap = this.mode === 'cluster' ? cap : 0;
    this.queue = arena.i32('queue', qcap);
    this.queueAt = arena.f64('queueAt', qcap);
    const places = this.maxNodes + 1;
    this.nodeGen = arena.i32('nodeGen', places);
    this.nodeLive = arena.i32('nodeLive', places);
    this.nodeNameLen = arena.i32('nodeNameLen', places);
    this.nodeName = arena.u16('nodeName', places * MAX_NODE_NAME);
    this.byIdx = new Array<Shares | undefined>(places).fill(undefined);

    // Size of one node's block of shares (the same Bump layout every thread computes).
    const sizer = new Sizer();
    new Shares('', 0, 0, this.cols, cap, sizer, '');
    this.block = Math.ceil(sizer.bytes / 8) * 8;
    if (from) {
      this.remote = from.remote;
      if (!(this.remote instanceof SharedArrayBuffer) || !this.remote.growable || this.remote.maxByteLength !== this.block * this.maxNodes) {
        throw new StickmeshError('SM_SHARED_LAYOUT', `stick table '${cfg.id}': the shared counters' node blocks do not match this table's layout`);
      }
    } else if (this.shared) {
      try {
        this.remote = new GrowableSab(0, { maxByteLength: this.block * this.maxNodes });
      } catch (e) {
        throw new StickmeshError('SM_TABLE_CONFIG', `stick table '${cfg.id}': cannot reserve ${this.block * this.maxNodes} bytes of address space for ${this.maxNodes} nodes' shared counters (${(e as Error).message})`);
      }
    } else this.remote = undefined;

    this.local = new Shares(this.node, 0, 1, this.cols, cap, arena, 's0.');
    this.byIdx[0] = this.local;
    this.nodes = [this.local];
    if (!from) {
      const m = this.meta;
      m[M_LRU_HEAD] = NONE;
      m[M_LRU_TAIL] = NONE;
      m[M_FREE_HEAD] = NONE;
      m[M_SEED] = randomBytes(4).readInt32LE(0);
      m[M_NODE_GEN] = 1;
      this.nodeGen[0] = 1;
      this.setName(0, this.node);
    }
    this.seed = this.meta[M_SEED]!;
    this.epoch = this.shared ? -1 : 0;
    if (this.shared) this.syncNodes();
    if (opts.wheel) this.start(opts.wheel);
  }

  /** Views, from this thread, the shared table whose `shareHandle()` another thread passed. */
  static attach(handle: CounterTableHandle, opts: CounterAttachOptions = {}): CounterTable {
    return new CounterTable(
      handle.cfg,
      { node: handle.node, mode: handle.mode, maxNodes: handle.maxNodes, ...(opts.now ? { now: opts.now } : {}), ...(opts.wheel ? { wheel: opts.wheel } : {}) },
      handle,
    );
  }

  /** The handle another thread attaches with (shared tables only; throws SM_SHARED_LAYOUT otherwise). */
  shareHandle(): CounterTableHandle {
    const arena = this.arena.handle();
    return { cfg: this.cfg, node: this.node, mode: this.mode, maxNodes: this.maxNodes, arena, remote: this.remote! };
  }

  get count(): number {
    return this.meta[M_COUNT]!;
  }

  get capacity(): number {
    return this.cap;
  }

  get dirty(): number {
    return this.meta[M_QLEN]!;
  }

  /** Wall ms when the oldest undrained local change happened, 0 when nothing is dirty (replication lag). */
  get oldestDirty(): number {
    for (let i = 0; ; i++) {
      const s = this.seq.read();
      const v = this.meta[M_QLEN]! > 0 ? this.queueAt[this.meta[M_QHEAD]!]! : 0;
      if (!this.shared || !this.seq.changed(s) || i >= READ_TRIES) return v ?? 0;
    }
  }

  /** Names of the other nodes whose shares are held. */
  get remoteNodes(): string[] {
    this.wlock();
    try {
      return this.nodes.slice(1).map((n) => n.name);
    } finally {
      this.wunlock();
    }
  }

  /** Shares refused because `maxNodes` other nodes already had shares here (also in remoteRejected). */
  get nodesRefused(): number {
    return this.st[ST_NODES_REFUSED]!;
  }

  get stats(): CounterStats {
    const st = this.st;
    return {
      count: this.meta[M_COUNT]!,
      capacity: this.cap,
      evictions: st[ST_EVICTIONS]!,
      expired: st[ST_EXPIRED]!,
      trackFailures: st[ST_TRACK_FAILURES]!,
      remoteApplied: st[ST_REMOTE_APPLIED]!,
      remoteRejected: st[ST_REMOTE_REJECTED]!,
    };
  }

  column(kind: CounterKind, idx = 0): number {
    return this.colOf.get(`${kind}:${idx}`) ?? -1;
  }

  acquire(key: string): number {
    if (!this.codec.encode(key, this.scratch, 0)) {
      this.count1(ST_TRACK_FAILURES);
      return NONE;
    }
    const h = hashKeyWords(this.scratchWords, 0, this.words, this.seed);
    if (!this.shared) return this.acquireAt(h);
    this.wlock();
    try {
      return this.acquireAt(h);
    } finally {
      this.wunlock();
    }
  }

  release(slot: number): void {
    if (!this.shared) {
      this.releaseAt(slot);
      return;
    }
    this.wlock();
    try {
      this.releaseAt(slot);
    } finally {
      this.wunlock();
    }
  }

  find(key: string): number {
    if (!this.codec.encode(key, this.scratch, 0)) return NONE;
    const h = hashKeyWords(this.scratchWords, 0, this.words, this.seed);
    if (!this.shared) return this.lookupLive(h, this.now());
    const now = this.now();
    for (let i = 0; i < READ_TRIES; i++) {
      const q = this.seq.read();
      const s = this.indexFind(h);
      const dead = s >= 0 && this.deadAt(s, now);
      if (this.seq.changed(q)) continue;
      if (!dead) return s;
      break; // expired: removed under the lock below
    }
    this.wlock();
    try {
      return this.lookupLive(h, now);
    } finally {
      this.wunlock();
    }
  }

  add(slot: number, col: number, n: number): void {
    if (this.shared) {
      this.addShared(slot, col, n);
      return;
    }
    // addAt's body, inline: calling addAt from here measured 1.27x the time per unshared add
    // (bench/counters-micro.mjs), and this is the hot path of every tracked request.
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

  /**
   * `add` on shared storage: under the SpinLock; the SeqLock moves only when the change spans
   * words a lock-free reader reads together (a rate rotating to a new period, a Float64 count),
   * since a reader cannot see half of a one-word change.
   */
  private addShared(slot: number, col: number, n: number): void {
    const c = this.cols[col];
    if (c === undefined) return;
    const now = this.now();
    this.lock.lock();
    const whole = c.wide || (c.cls === RATE && this.local.t[col]![slot]! < Math.floor(now / c.period));
    if (whole) this.seq.begin();
    try {
      this.addAt(slot, col, n, now);
    } finally {
      if (whole) this.seq.end();
      this.lock.unlock();
    }
    if (this.fireDirty) this.dirtied();
  }

  set(slot: number, col: number, value: number): void {
    if (!this.shared) {
      this.setAt(slot, col, value);
      return;
    }
    this.wlock();
    try {
      this.setAt(slot, col, value);
    } finally {
      this.wunlock();
    }
    if (this.fireDirty) this.dirtied();
  }

  read(slot: number, col: number): number {
    if (!this.shared) return this.readAt(slot, col);
    // A 32-bit count or gauge: each share is one word, which no write tears, so no retry is needed.
    const c = this.cols[col];
    if (c !== undefined && c.cls <= GAUGE && !c.wide && this.epoch === this.meta[M_NODE_EPOCH]) return this.readAt(slot, col);
    for (let i = 0; i < READ_TRIES; i++) {
      const q = this.seq.read();
      if (this.epoch !== this.meta[M_NODE_EPOCH]) {
        this.syncNodes();
        if (this.seq.changed(q)) {
          this.epoch = -1;
          continue;
        }
      }
      const v = this.readAt(slot, col);
      if (!this.seq.changed(q)) return v;
    }
    this.wlock();
    try {
      return this.readAt(slot, col);
    } finally {
      this.wunlock();
    }
  }

  shares(key: string): KeyShares | undefined {
    const s = this.find(key);
    if (s < 0) return undefined;
    this.wlock();
    try {
      if ((this.flags[s]! & USED) === 0) return undefined;
      const now = this.now();
      const total: Record<string, number> = {};
      for (let c = 0; c < this.cols.length; c++) total[this.cols[c]!.label] = this.readAt(s, c);
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
    } finally {
      this.wunlock();
    }
  }

  drainDirty(max: number, out: ShareUpdate[]): number {
    if (this.attached) {
      throw new StickmeshError('SM_COUNTERS_NOT_OWNER', `stick table '${this.id}': only the thread that built the shared counters drains their dirty queue`);
    }
    const now = this.now();
    let oldest = 0;
    let added = 0;
    // Only the entries queued when the call began: a key drained here and written again meanwhile
    // (by another thread, between two lock holds) is queued behind them, for the next call.
    let left = this.meta[M_QLEN]!;
    while (added < max && left > 0) {
      this.wlock();
      try {
        const stop = Math.min(max, added + CHUNK);
        // Bounded by entries visited too (dropped ones add nothing), so one hold stays short.
        for (let seen = 0; left > 0 && added < stop && seen < 4 * CHUNK; seen++, left--) {
          const head = this.meta[M_QHEAD]!;
          const s = this.queue[head]!;
          const at = this.queueAt[head]!;
          this.meta[M_QHEAD] = head + 1 === this.cap ? 0 : head + 1;
          this.meta[M_QLEN]!--;
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
      } finally {
        this.wunlock();
      }
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
    while (s < this.meta[M_HWM]! && added < max) {
      this.wlock();
      try {
        const stop = Math.min(max, added + CHUNK);
        // Bounded by slots visited too, so a sparse table does not hold the lock for long.
        const last = Math.min(this.meta[M_HWM]!, s + 16 * CHUNK);
        while (s < last && added < stop) {
          if ((this.flags[s]! & USED) !== 0 && this.local.has[s] !== 0 && !this.deadAt(s, now)) {
            out.push(this.localUpdate(s));
            added++;
          }
          s++;
        }
      } finally {
        this.wunlock();
      }
    }
    return s >= this.meta[M_HWM]! ? -1 : s;
  }

  applyShares(node: string, u: ShareUpdate): boolean {
    if (this.mode === 'local' || typeof node !== 'string' || node.length === 0 || node.length > MAX_NODE_NAME || node === this.node) {
      this.count1(ST_REMOTE_REJECTED);
      return false;
    }
    const now = this.now();
    if (!this.validShare(u, now) || !this.codec.encode(u.key, this.scratch, 0)) {
      this.count1(ST_REMOTE_REJECTED);
      return false;
    }
    const h = hashKeyWords(this.scratchWords, 0, this.words, this.seed);
    this.wlock();
    try {
      return this.applyAt(node, h, u.v, now);
    } finally {
      this.wunlock();
    }
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
    let ok: boolean;
    this.wlock();
    try {
      ok = this.restoreAt(h, u.v, now);
    } finally {
      this.wunlock();
    }
    if (this.fireDirty) this.dirtied();
    return ok;
  }

  /**
   * Absolute expiry of a live key for a snapshot: its expiry, or now + expire while referenced (it
   * is refreshed on release); 0 when it never expires or is absent.
   */
  expiryOf(key: string): number {
    const s = this.find(key);
    if (s < 0 || this.cfg.expire <= 0) return 0;
    this.wlock();
    try {
      return this.refs[s]! > 0 ? Math.max(this.expires[s]!, this.now() + this.cfg.expire) : this.expires[s]!;
    } finally {
      this.wunlock();
    }
  }

  dropNode(node: string): void {
    this.wlock();
    try {
      const sh = this.byName.get(node);
      if (sh === undefined) return;
      for (let c = 0; c < this.cols.length; c++) if (this.cols[c]!.cls === GAUGE) sh.v[c]!.fill(0);
    } finally {
      this.wunlock();
    }
  }

  /**
   * Removes expired unreferenced keys from the head of the LRU list (expiry order), at most
   * `budget`. Returns how many.
   */
  sweep(budget = 10_000): number {
    if (this.cfg.expire <= 0) return 0;
    const now = this.now();
    let removed = 0;
    let done = false;
    while (!done && removed < budget) {
      this.wlock();
      try {
        const stop = Math.min(budget, removed + CHUNK);
        while (removed < stop) {
          const s = this.meta[M_LRU_HEAD]!;
          const e = s === NONE ? 0 : this.expires[s]!;
          if (e === 0 || e > now) {
            done = true;
            break;
          }
          this.removeExpired(s);
          removed++;
        }
      } finally {
        this.wunlock();
      }
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

  // ---- locking ----

  /**
   * Takes the table's lock for a change (shared storage; no-op otherwise) and brings this
   * thread's view of the node table up to date. Every caller releases with wunlock in a finally
   * and calls nothing that takes the lock again.
   */
  private wlock(): void {
    if (!this.shared) return;
    this.lock.lock();
    this.seq.begin();
    if (this.epoch !== this.meta[M_NODE_EPOCH]) this.syncNodes();
  }

  private wunlock(): void {
    if (!this.shared) return;
    this.seq.end();
    this.lock.unlock();
  }

  /** Counts one event in a stats cell (under the lock when shared: the cells are plain numbers). */
  private count1(i: number): void {
    this.wlock();
    this.st[i]!++;
    this.wunlock();
  }

  /** Calls onDirty for a write that made the queue non-empty, outside the lock. */
  private dirtied(): void {
    this.fireDirty = false;
    if (this.onDirty !== undefined) this.onDirty();
  }

  // ---- the operations, with the lock held (or unshared) ----

  private acquireAt(h: number): number {
    const now = this.now();
    let s = this.lookupLive(h, now);
    if (s < 0) {
      s = this.create(h);
      if (s < 0) {
        this.st[ST_TRACK_FAILURES]!++;
        return NONE;
      }
    } else if (this.refs[s] === 0) this.lruUnlink(s);
    this.refs[s]!++;
    if (this.cfg.expire > 0) this.expires[s] = now + this.cfg.expire;
    return s;
  }

  private releaseAt(slot: number): void {
    if ((this.flags[slot]! & USED) === 0 || this.refs[slot] === 0) return;
    const r = --this.refs[slot]!;
    if (r === 0) {
      if (this.cfg.expire > 0) this.expires[slot] = this.now() + this.cfg.expire;
      this.lruAppend(slot);
    }
  }

  private addAt(slot: number, col: number, n: number, now: number): void {
    if ((this.flags[slot]! & USED) === 0) return;
    const c = this.cols[col];
    if (c === undefined) return;
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

  private setAt(slot: number, col: number, value: number): void {
    if ((this.flags[slot]! & USED) === 0) return;
    const c = this.cols[col];
    if (c === undefined || c.cls !== TAG || !Number.isFinite(value)) return;
    const now = this.now();
    this.local.v[col]![slot] = value;
    this.local.t[col]![slot] = now;
    this.touchLocal(slot, now);
  }

  private readAt(slot: number, col: number): number {
    const c = this.cols[col];
    if (c === undefined || (this.flags[slot]! & USED) === 0) return 0;
    const nodes = this.nodes;
    const n = this.mode === 'local' ? 1 : nodes.length;
    if (c.cls === RATE) {
      const now = this.now();
      const p = c.period;
      const nowK = Math.floor(now / p);
      let total = 0;
      for (let i = 0; i < n; i++) {
        const sh = nodes[i]!;
        total += freqTotal(sh.t[col]![slot]!, sh.v[col]![slot]!, sh.p[col]![slot]!, now, nowK, p);
      }
      return Math.floor(total / p);
    }
    if (c.cls === TAG) {
      let best = this.local;
      let bestWall = best.t[col]![slot]!;
      for (let i = 1; i < n; i++) {
        const sh = nodes[i]!;
        const w = sh.t[col]![slot]!;
        if (w > bestWall || (w === bestWall && w > 0 && sh.name > best.name)) {
          best = sh;
          bestWall = w;
        }
      }
      return best.v[col]![slot]!;
    }
    let sum = 0;
    for (let i = 0; i < n; i++) sum += nodes[i]!.v[col]![slot]!;
    return sum;
  }

  private applyAt(node: string, h: number, v: readonly number[], now: number): boolean {
    if (!this.byName.has(node) && this.nodes.length - 1 >= this.maxNodes) {
      this.st[ST_NODES_REFUSED]!++;
      this.st[ST_REMOTE_REJECTED]!++;
      return false;
    }
    let s = this.lookupLive(h, now);
    if (s < 0) {
      s = this.create(h);
      if (s < 0) {
        this.st[ST_REMOTE_REJECTED]!++;
        return false;
      }
      if (this.cfg.expire > 0) this.expires[s] = now + this.cfg.expire;
      this.lruAppend(s);
    } else this.touch(s, now);
    // Looked up after `create`: an eviction there may have removed the node's last share (and place).
    const sh = this.byName.get(node) ?? this.takePlace(node);
    this.writeShare(sh, s, v);
    this.st[ST_REMOTE_APPLIED]!++;
    return true;
  }

  private restoreAt(h: number, v: readonly number[], now: number): boolean {
    let s = this.lookupLive(h, now);
    if (s < 0) {
      s = this.create(h);
      if (s < 0) return false;
      if (this.cfg.expire > 0) this.expires[s] = now + this.cfg.expire;
      this.lruAppend(s);
    }
    this.writeShare(this.local, s, v);
    for (let c = 0; c < this.cols.length; c++) if (this.cols[c]!.cls === GAUGE) this.local.v[c]![s] = 0;
    this.touchLocal(s, now);
    return true;
  }

  // ---- the node table ----

  private setName(i: number, name: string): void {
    const n = Math.min(name.length, MAX_NODE_NAME);
    const base = i * MAX_NODE_NAME;
    for (let k = 0; k < n; k++) this.nodeName[base + k] = name.charCodeAt(k);
    this.nodeNameLen[i] = n;
  }

  private nameAt(i: number): string {
    const n = Math.min(Math.max(this.nodeNameLen[i]!, 0), MAX_NODE_NAME);
    const base = i * MAX_NODE_NAME;
    return String.fromCharCode(...this.nodeName.subarray(base, base + n));
  }

  /**
   * Rebuilds this thread's `nodes` and `byName` from the node table (shared storage: views of the
   * remote blocks, made once per place and generation). Lock-free callers check the SeqLock after.
   */
  private syncNodes(): void {
    let epoch = Atomics.load(this.meta, M_NODE_EPOCH);
    const nodes: Shares[] = [this.local];
    const byName = new Map<string, Shares>();
    for (let i = 1; i <= this.maxNodes; i++) {
      const gen = this.nodeGen[i]!;
      if (gen === 0) continue;
      let sh = this.byIdx[i];
      if (sh === undefined || sh.gen !== gen) {
        // Unshared, takePlace made byIdx[i] before this runs; shared, this thread makes its view now.
        if (this.remote === undefined) continue;
        const base = (i - 1) * this.block;
        if (base + this.block > this.remote.byteLength) {
          // Only a torn lock-free read can get here (the place is taken after its block is grown).
          epoch = -1;
          continue;
        }
        sh = new Shares(this.nameAt(i), i, gen, this.cols, this.cap, new Bump(this.remote, base), '');
        this.byIdx[i] = sh;
      }
      nodes.push(sh);
      byName.set(sh.name, sh);
    }
    this.nodes = nodes;
    this.byName = byName;
    this.epoch = epoch;
  }

  /** Takes a free place for `node` (the caller checked there is one) and returns its Shares. */
  private takePlace(node: string): Shares {
    let i = 1;
    while (i <= this.maxNodes && this.nodeGen[i] !== 0) i++;
    if (i > this.maxNodes) throw new StickmeshError('SM_INTERNAL', `stick table '${this.id}': no free node place`);
    if (this.remote !== undefined && this.remote.byteLength < i * this.block) this.remote.grow(i * this.block);
    this.setName(i, node);
    this.nodeLive[i] = 0;
    const gen = ++this.meta[M_NODE_GEN]!;
    this.nodeGen[i] = gen;
    if (this.remote === undefined) this.byIdx[i] = new Shares(node, i, gen, this.cols, this.cap, PLAIN, '');
    Atomics.add(this.meta, M_NODE_EPOCH, 1);
    this.syncNodes();
    return this.byName.get(node)!;
  }

  /** Frees the place of a node with no share left (departed, or its keys expired); its block is all zeros. */
  private freePlace(sh: Shares): void {
    this.nodeGen[sh.idx] = 0;
    this.nodeNameLen[sh.idx] = 0;
    this.byIdx[sh.idx] = undefined;
    Atomics.add(this.meta, M_NODE_EPOCH, 1);
    this.syncNodes();
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
      this.nodeLive[sh.idx]!++;
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
      this.nodeLive[0]!++;
    }
    this.touch(s, now);
    if (this.mode === 'local' || (this.flags[s]! & DIRTY) !== 0) return;
    this.flags[s]! |= DIRTY;
    const m = this.meta;
    let at = m[M_QHEAD]! + m[M_QLEN]!;
    if (at >= this.cap) at -= this.cap;
    this.queue[at] = s;
    this.queueAt[at] = now;
    if (++m[M_QLEN]! === 1) {
      if (this.shared) this.fireDirty = true;
      else if (this.onDirty !== undefined) this.onDirty();
    }
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
    this.st[ST_EXPIRED]!++;
    this.lruUnlink(s);
    this.freeSlot(s);
  }

  /** A new entry for the key in scratch, unreferenced and not in the LRU list; NONE when full of referenced keys. */
  private create(h: number): number {
    const m = this.meta;
    let s: number;
    if (m[M_FREE_HEAD] !== NONE) {
      s = m[M_FREE_HEAD]!;
      m[M_FREE_HEAD] = this.lnext[s]!;
    } else if (m[M_HWM]! < this.cap) s = m[M_HWM]!++;
    else if (m[M_LRU_HEAD] !== NONE) {
      s = m[M_LRU_HEAD]!;
      if (this.deadAt(s, this.now())) this.st[ST_EXPIRED]!++;
      else this.st[ST_EVICTIONS]!++;
      this.lruUnlink(s);
      this.freeSlot(s);
      m[M_FREE_HEAD] = this.lnext[s]!;
    } else return NONE;
    this.keys.set(this.scratch, s * this.codec.width);
    this.hashes[s] = h;
    this.indexInsert(s, h);
    this.flags[s] = USED | (this.flags[s]! & DIRTY);
    this.refs[s] = 0;
    this.expires[s] = 0;
    m[M_COUNT]!++;
    return s;
  }

  /** Releases slot s (not in the LRU list) to the free list, clearing every node's share of it. */
  private freeSlot(s: number): void {
    this.indexRemove(s);
    this.flags[s]! &= DIRTY;
    this.refs[s] = 0;
    const nodes = this.nodes;
    for (let i = nodes.length - 1; i >= 0; i--) {
      const sh = nodes[i]!;
      if (sh.has[s] === 0) continue;
      sh.has[s] = 0;
      sh.clear(s);
      if (--this.nodeLive[sh.idx]! === 0 && i > 0) this.freePlace(sh);
    }
    const m = this.meta;
    this.lnext[s] = m[M_FREE_HEAD]!;
    m[M_FREE_HEAD] = s;
    m[M_COUNT]!--;
  }

  private lruAppend(s: number): void {
    const m = this.meta;
    const tail = m[M_LRU_TAIL]!;
    this.lprev[s] = tail;
    this.lnext[s] = NONE;
    if (tail !== NONE) this.lnext[tail] = s;
    else m[M_LRU_HEAD] = s;
    m[M_LRU_TAIL] = s;
  }

  /** Unlinks s from the LRU list; s must be in it (unreferenced and live). */
  private lruUnlink(s: number): void {
    const m = this.meta;
    const p = this.lprev[s]!;
    const n = this.lnext[s]!;
    if (p !== NONE) this.lnext[p] = n;
    else m[M_LRU_HEAD] = n;
    if (n !== NONE) this.lprev[n] = p;
    else m[M_LRU_TAIL] = p;
  }

  /**
   * Slot whose key equals the scratch key, or NONE. At most one pass over the index, so a
   * lock-free reader racing a writer ends (the SeqLock then has it read again).
   */
  private indexFind(h: number): number {
    const words = this.words;
    const kw = this.keyWords;
    const sw = this.scratchWords;
    const mask = this.mask;
    let i = h & mask;
    for (let n = 0; n <= mask; n++) {
      const e = this.index[i]!;
      if (e === 0) return NONE;
      const s = e - 1;
      if (this.hashes[s] === h) {
        const base = s * words;
        let k = 0;
        while (k < words && kw[base + k] === sw[k]) k++;
        if (k === words) return s;
      }
      i = (i + 1) & mask;
    }
    return NONE;
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
