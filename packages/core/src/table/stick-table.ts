/**
 * Stick table: key -> server affinity with HLC versions, expiry, LRU eviction and an update log for
 * replication. See types.ts for the replication contract.
 */
import { randomBytes } from 'node:crypto';
import type { StickTableConfig } from '../config/model.js';
import { StickmeshError } from '../errors.js';
import type { TimerWheel, WheelTask } from '../util/timer-wheel.js';
import { HybridClock, HLC_MAX_COUNTER } from './hlc.js';
import { KeyCodec, hashName, hashKeyWords } from './keys.js';
import type { EntryView, SetResult, TableUpdate, Version } from './types.js';
import type { Counters, ReplicatedCounters } from '../counters/types.js';
import { fmix32, mixWord } from '../util/murmur.js';
import { Arena, SeqLock, SpinLock, type ArenaHandle } from '../util/shared.js';

export interface StickTableOptions {
  /** This node's peer name (the version tie-break). */
  node: string;
  /** Shared clock; default a new clock on `now`. */
  clock?: HybridClock;
  /** Wall clock in ms for expiry (tests inject one). Default Date.now. */
  now?: () => number;
  /** Positions in the local update log ring, default 262144. */
  logSize?: number;
  /**
   * Allocate the table in SharedArrayBuffers so other threads can `StickTable.attach` to it
   * (nbthread). Every write then takes the table's SpinLock; point reads go lock-free under its
   * SeqLock. Default false: plain ArrayBuffers, no lock taken anywhere.
   */
  shared?: boolean;
}

/**
 * What another thread needs to attach to a shared table (structured-cloneable: post it or pass it
 * in workerData). The name dictionaries live in the arena too.
 */
export interface StickTableHandle {
  readonly cfg: StickTableConfig;
  readonly node: string;
  readonly epoch: string;
  readonly seed: number;
  readonly logSize: number;
  readonly arena: ArenaHandle;
}

/** Options of a thread attaching to a shared table (its own wall clock; the HLC state is shared). */
export interface StickTableAttachOptions {
  now?: () => number;
}

export interface StickTableStats {
  count: number;
  capacity: number;
  /** Live entries dropped to make room for a new key. */
  evictions: number;
  /** Entries removed because their expiry passed (sweep, lazy removal on access, or reclaimed when full). */
  expired: number;
  /** Versions issued by this node (created, updated, refreshed). */
  localWrites: number;
  remoteApplied: number;
  /**
   * Remote updates not applied because the table already holds the same or a newer version (or,
   * full, only newer ones): normal, e.g. during a resync every entry both nodes hold comes back.
   */
  remoteStale: number;
  /** Remote updates not applied because they are malformed (key, fields) or the server/node name dictionary is full: a problem. */
  remoteInvalid: number;
  /** Local writes ignored because the key is not valid for the table type. */
  invalidKeys: number;
}

/** Distinct server names (and node names) per table: ids are Uint16 and 0 means "no entry". */
export const MAX_DICT_NAMES = 65535;
export const DEFAULT_LOG_SIZE = 262144;
/** Default sweep budget: entries removed per call. */
export const DEFAULT_SWEEP_BUDGET = 10000;

/**
 * Reference-counted name <-> Uint16 id dictionary; ids of names no entry uses any more are reused.
 * `h0`/`h1` hold each name's hash for digest lanes 0 and 1, computed once when the name gets its id.
 */
class NameDict {
  private readonly ids = new Map<string, number>();
  readonly names: (string | undefined)[] = [undefined];
  readonly h0: number[] = [0];
  readonly h1: number[] = [0];
  private readonly refs: number[] = [0];
  private readonly free: number[] = [];

  /** Id of `name` with one more reference, or 0 if the dictionary already holds MAX_DICT_NAMES names. */
  acquire(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      if (this.free.length > 0) id = this.free.pop()!;
      else if (this.names.length <= MAX_DICT_NAMES) {
        id = this.names.length;
        this.names.push(undefined);
        this.h0.push(0);
        this.h1.push(0);
        this.refs.push(0);
      } else return 0;
      this.ids.set(name, id);
      this.names[id] = name;
      this.h0[id] = hashName(name, DIGEST_SEEDS[0]);
      this.h1[id] = hashName(name, DIGEST_SEEDS[1]);
    }
    this.refs[id]!++;
    return id;
  }

  /** One more reference on an id already held. */
  retain(id: number): void {
    this.refs[id]!++;
  }

  release(id: number): void {
    if (id === 0) return;
    const r = this.refs[id]! - 1;
    this.refs[id] = r;
    if (r === 0) {
      this.ids.delete(this.names[id]!);
      this.names[id] = undefined;
      this.free.push(id);
    }
  }

  get size(): number {
    return this.ids.size;
  }

  /** Id of `name` without taking a reference, or 0 when no entry uses it. */
  idOf(name: string): number {
    return this.ids.get(name) ?? 0;
  }

  name(id: number): string | undefined {
    return this.names[id];
  }

  hash0(id: number): number {
    return this.h0[id]!;
  }

  hash1(id: number): number {
    return this.h1[id]!;
  }
}

/** Bounds of the shared server dictionary (ids are never reused there: see SharedNameDict). */
export const SHARED_SERVER_NAMES = MAX_DICT_NAMES;
export const SHARED_SERVER_BYTES = 1 << 20;
/** Bounds of the shared node-name dictionary (peer names: a cluster has a few). */
export const SHARED_NODE_NAMES = 4095;
export const SHARED_NODE_BYTES = 1 << 17;

/**
 * The name dictionary of a shared table: an append-only region in the table's arena (UTF-8 bytes,
 * and offsets: name `id` is bytes[offs[id - 1] .. offs[id])), its length published last with
 * `Atomics.store`, so a thread that reads the length sees every name below it. Appends happen only
 * under the table's lock. Each thread keeps its own decode cache (names, ids, digest hashes) and
 * catches up on the names other threads appended when it meets an id beyond its cache.
 *
 * Ids are never reused (another thread may hold an id it read without the lock), so a name, once
 * in, stays until the process restarts. Bound: `maxNames` names or `maxBytes` bytes of UTF-8,
 * whichever comes first (65535 / 1 MiB for servers, 4095 / 128 KiB for node names); at the bound a
 * new name is refused exactly as when the unshared dictionary is full (acquire returns 0).
 */
class SharedNameDict {
  private readonly bytes: Uint8Array;
  private readonly offs: Uint32Array;
  /** [0]: number of names appended (ids 1..n). */
  private readonly len: Int32Array;
  private readonly maxNames: number;
  private readonly ids = new Map<string, number>();
  private readonly names: (string | undefined)[] = [undefined];
  private readonly h0: number[] = [0];
  private readonly h1: number[] = [0];
  private known = 0;

  constructor(arena: Arena, prefix: string, maxNames: number, maxBytes: number) {
    this.maxNames = maxNames;
    this.bytes = arena.u8(`${prefix}.bytes`, maxBytes);
    this.offs = arena.u32(`${prefix}.offs`, maxNames + 1);
    this.len = arena.i32(`${prefix}.len`, 1);
  }

  /** Decodes the names other threads appended since the last call. */
  private catchUp(): void {
    const n = Atomics.load(this.len, 0);
    const dec = SharedNameDict.decoder;
    for (let id = this.known + 1; id <= n; id++) {
      const name = dec.decode(this.bytes.subarray(this.offs[id - 1]!, this.offs[id]!));
      this.names[id] = name;
      this.ids.set(name, id);
      this.h0[id] = hashName(name, DIGEST_SEEDS[0]);
      this.h1[id] = hashName(name, DIGEST_SEEDS[1]);
    }
    this.known = n;
  }

  private static readonly decoder = new TextDecoder();
  private static readonly encoder = new TextEncoder();

  /** Id of `name`, appending it if new (caller holds the table lock), or 0 at the bound. */
  acquire(name: string): number {
    const id = this.ids.get(name);
    if (id !== undefined) return id;
    this.catchUp();
    const again = this.ids.get(name);
    if (again !== undefined) return again;
    const n = this.known;
    if (n >= this.maxNames) return 0;
    const start = n === 0 ? 0 : this.offs[n]!;
    const enc = SharedNameDict.encoder.encode(name);
    if (start + enc.length > this.bytes.length) return 0;
    this.bytes.set(enc, start);
    this.offs[n + 1] = start + enc.length;
    Atomics.store(this.len, 0, n + 1);
    this.catchUp();
    return n + 1;
  }

  retain(_id: number): void {}

  release(_id: number): void {}

  get size(): number {
    return Atomics.load(this.len, 0);
  }

  idOf(name: string): number {
    const id = this.ids.get(name);
    if (id !== undefined) return id;
    this.catchUp();
    return this.ids.get(name) ?? 0;
  }

  /**
   * Name of an id read from the table. Only appended ids are ever stored in an entry, so one not
   * decoded yet is in the region already: catching up until it is there ends (the loop only covers
   * a reader whose load of the length overtook its load of the id).
   */
  name(id: number): string | undefined {
    while (id > this.known) this.catchUp();
    return this.names[id];
  }

  hash0(id: number): number {
    while (id > this.known) this.catchUp();
    return this.h0[id]!;
  }

  hash1(id: number): number {
    while (id > this.known) this.catchUp();
    return this.h1[id]!;
  }
}

type Dict = NameDict | SharedNameDict;

/** The table's scalars, in one Float64Array (`hdr`) so a shared table shares them. */
const H_COUNT = 0;
const H_HWM = 1;
const H_FREE = 2;
const H_HEAP = 3;
const H_SEQ = 4;
const H_SWEEP = 5;
const H_EVICTIONS = 6;
const H_EXPIRED = 7;
const H_LOCAL_WRITES = 8;
const H_REMOTE_APPLIED = 9;
const H_REMOTE_STALE = 10;
const H_REMOTE_INVALID = 11;
const H_INVALID_KEYS = 12;
/** HybridClock state (wall, counter) of a shared table. */
const H_CLOCK = 13;
const HDR_LEN = 16;
/** Batch readers and sweeps of a shared table release and retake the lock every this many slots. */
const CHUNK = 256;
/** A lock-free reader that saw this many concurrent writes in a row takes the lock instead. */
const READ_RETRIES = 8;

const NONE = -1;
/** Server name of a deleted key (see `delete`). Never a valid server name in a config. */
export const TOMBSTONE = '';
const TWO32 = 4294967296;

function nextPow2(n: number): number {
  let p = 4;
  while (p < n) p *= 2;
  return p;
}



const DIGEST_SEEDS = [0x9e3779b9, 0x7f4a7c15, 0x85ebca77, 0xc2b2ae3d] as const;

/**
 * Anti-entropy buckets: the key space is split by a fixed-seed hash of the encoded key (the same on
 * every node, unlike the index hash), so bucket b holds the same keys everywhere. Part of the peers
 * protocol: changing it changes the wire format of `digest` messages.
 */
export const DIGEST_BUCKETS = 256;
const BUCKET_SEED = 0x2545f491;

/**
 * A stick table with a columnar layout: `capacity` (= cfg.size) slots allocated up front as typed
 * arrays (key slab, open-addressing hash index, version, expiry, LRU links, counters), so memory
 * is fixed at construction and no per-entry JS objects exist. Stored counters (`store ...`) live in
 * the table's CounterTable (`counters`), not here.
 *
 * Memory (`byteLength` / size at size 1M, logSize 1M): `ip` 91.4 bytes per entry unshared, 92.9
 * shared (the shared name dictionaries add 1.4 MiB per table); `string len 32` 111.4 / 112.9.
 * Measured with `new StickTable({ type, size: 1_000_000, ... }, { shared }).byteLength / 1e6`;
 * stick-table.threads.test.ts keeps `ip` shared <= 100.
 *
 * Threads (`shared: true`, nbthread): every array and scalar above lives in SharedArrayBuffers of
 * one Arena, and other threads view the same table through `StickTable.attach(shareHandle())`.
 * Every write (setLocal, applyRemote, delete, sweep, clear, exportBuckets' expiry removal, the
 * lazy removal of a dead entry met by lookup) holds the table's SpinLock and bumps its SeqLock
 * around the change, so writes from all threads are serialised and the one update log, the one
 * HLC (its state in the shared header) and the stats stay exact. Point readers (lookup, get,
 * count, seq, stats) take no lock: they read, and retry if the SeqLock moved meanwhile (after 8
 * retries they take the lock). Batch readers (readUpdates, exportBatch, scan, entries, digest,
 * serverCounts, bucketDigests) hold the lock, released and retaken every 256 slots: each entry
 * is read whole, no per-entry retry bookkeeping is needed, and a writer waits at most one chunk;
 * they run on the main thread (mesh, admin, snapshots), off the request path. Callbacks
 * (`onLocalWrite`, `onRemoteApply`) are per thread and run after the lock is released. An
 * unshared table (the default) takes no lock anywhere.
 *
 * Bucket digests (anti-entropy): per bucket of the key space, two 32-bit lanes, each the sum mod 2^32
 * of a hash of (key, server, version) over the entries in the table, maintained on every write,
 * removal, expiry removal and eviction, so `bucketDigests()` costs no scan. They ignore expiry
 * times and counters. Unlike `digest()`, they include entries that have expired but are not removed
 * yet; `exportBuckets` removes those in the buckets it visits, so a repair round settles them.
 *
 * Full table rule: when `count == size` and a new key is written (locally or by a peer), the entry
 * with the oldest version (the least recently written anywhere in the cluster; reads do not count)
 * is removed first; a remote update older than every entry held is not taken. Versions are the same
 * on every node, so nodes that have seen the same writes hold the same `size` newest entries and a
 * full table still converges. An eviction counts in `stats.evictions`, or in `stats.expired` if
 * the entry had already expired. Order is kept in an indexed binary heap (O(log n) per write).
 *
 * Expiry: with `expire > 0` an entry dies at `expiresAt`; a dead entry is invisible to lookup, get,
 * readUpdates, exportBatch, entries and digest, and is removed lazily on access or by `sweep`.
 * `count` includes dead entries not yet removed.
 *
 * Update log: local writes (never learned ones) are appended to a ring of `logSize` positions that
 * peers read with `readUpdates`; a position names a slot, and the slot remembers the sequence
 * number of its latest local write, so older positions of the same key are skipped.
 */
export class StickTable {
  readonly cfg: StickTableConfig;
  readonly node: string;
  readonly clock: HybridClock;
  /**
   * Called after every local write that entered the update log (the peers mesh sets it to flush
   * soon instead of waiting for its poll). Must be cheap: it runs on the request path.
   */
  onLocalWrite: (() => void) | undefined = undefined;
  /**
   * Called with each remote update `applyRemote` took (a peer's write, a resync or repair entry, a
   * snapshot entry). Set only on internal tables that act on their records (the `#servers` admin
   * state); replicated stick tables leave it unset, so the replication path pays one check.
   */
  onRemoteApply: ((u: TableUpdate) => void) | undefined = undefined;
  /**
   * The table's counters (stored data types other than `server_id`), set by `buildTables` when the
   * table stores any; the stick entries above only hold server affinity. See counters/types.ts.
   */
  counters: (Counters & ReplicatedCounters) | undefined = undefined;
  /** Random id of this log's lifetime (16 hex digits); a cursor is only valid with the epoch it came from. */
  readonly epoch: string;
  /** The wall clock this table uses for expiry. */
  readonly now: () => number;

  private readonly codec: KeyCodec;
  private readonly words: number;
  private readonly cap: number;
  private readonly keys: Buffer;
  private readonly keyWords: Uint32Array;
  private readonly scratch: Buffer;
  private readonly scratchWords: Uint32Array;
  /** Open-addressing index: slot + 1, 0 = empty. Power-of-two size >= 2 x capacity. */
  private readonly index: Int32Array;
  private readonly mask: number;
  private readonly hashes: Uint32Array;
  /** Server dictionary id; 0 = slot not in use. */
  private readonly srv: Uint16Array;
  private readonly vWall: Float64Array;
  private readonly vCounter: Uint16Array;
  private readonly vNode: Uint16Array;
  /** Absolute expiry in ms, 0 = never. */
  private readonly expires: Float64Array;
  /** When the entry's current value was last logged (locally or at its origin), for the refresh rule. */
  private readonly loggedAt: Float64Array;
  /** Seq of the entry's latest local log position, 0 = current value not written locally. */
  private readonly logSeqOf: Float64Array;
  /** Per slot: its two digest-lane hashes and its bucket, as last added to `bucketSums`. */
  private readonly eh0: Uint32Array;
  private readonly eh1: Uint32Array;
  private readonly bucketOf: Uint8Array;
  /** Per bucket b: lane sums at [2b] and [2b + 1]. */
  private readonly bucketSums: Uint32Array;
  /**
   * Eviction order: a binary min-heap of live slots by version (oldest version at heap[0]), with
   * each slot's heap position in `hpos` (NONE when not in the heap). Its size is hdr[H_HEAP].
   */
  private readonly heap: Int32Array;
  private readonly hpos: Int32Array;
  /** Free-list link for released slots (head at hdr[H_FREE]). */
  private readonly next: Int32Array;
  /**
   * Scalars (see H_*): count, high-water mark (slots below it were used at least once), free-list
   * head, heap size, log seq, sweep cursor, stats, and a shared table's clock.
   */
  private readonly hdr: Float64Array;
  private readonly ring: Int32Array;
  private readonly logSize: number;
  private servers: Dict;
  private nodes: Dict;
  private localNodeId: number;
  private readonly seed: number;
  private readonly refreshAfter: number;
  private sweepTask: WheelTask | undefined;
  private sweepWheel: TimerWheel | undefined;
  private readonly arena: Arena;
  /** Writers' lock and readers' sequence of a shared table; undefined when unshared (no locking). */
  private readonly lock: SpinLock | undefined;
  private readonly seqLock: SeqLock | undefined;

  /**
   * Builds a table. `attachTo` is internal: `StickTable.attach` passes another thread's handle,
   * and the table then views that table's memory instead of initialising its own.
   */
  constructor(cfg: StickTableConfig, opts: StickTableOptions, attachTo?: StickTableHandle) {
    if (!Number.isInteger(cfg.size) || cfg.size < 1 || cfg.size > 0x3fffffff) {
      throw new StickmeshError('SM_TABLE_CONFIG', `stick table '${cfg.id}': size must be an integer in 1..2^30, got ${cfg.size}`);
    }
    // At least one position per entry, so a peer that is behind by less than a table's worth of
    // writes resumes from deltas instead of needing a full resync (4 bytes per slot).
    const logSize = opts.logSize ?? Math.max(DEFAULT_LOG_SIZE, cfg.size);
    if (!Number.isInteger(logSize) || logSize < 1) {
      throw new StickmeshError('SM_TABLE_CONFIG', `stick table '${cfg.id}': logSize must be a positive integer`);
    }
    this.cfg = cfg;
    this.node = opts.node;
    this.now = opts.now ?? Date.now;
    this.epoch = attachTo ? attachTo.epoch : randomBytes(8).toString('hex');
    this.seed = attachTo ? attachTo.seed : randomBytes(4).readUInt32LE(0);
    const arena = (this.arena = attachTo ? new Arena(true, attachTo.arena) : new Arena(opts.shared === true));
    const init = !arena.attached;
    this.codec = new KeyCodec(cfg.type, cfg.keyLen);
    const width = this.codec.width;
    this.words = width >>> 2;
    const cap = (this.cap = cfg.size);
    const kb = arena.u8('keys', cap * width);
    this.keys = Buffer.from(kb.buffer, 0, cap * width);
    this.keyWords = new Uint32Array(kb.buffer, 0, cap * this.words);
    this.scratch = Buffer.from(new ArrayBuffer(width));
    this.scratchWords = new Uint32Array(this.scratch.buffer, 0, this.words);
    const isz = nextPow2(2 * cap);
    this.index = arena.i32('index', isz);
    this.mask = isz - 1;
    this.hashes = arena.u32('hashes', cap);
    this.srv = arena.u16('srv', cap);
    this.vWall = arena.f64('vWall', cap);
    this.vCounter = arena.u16('vCounter', cap);
    this.vNode = arena.u16('vNode', cap);
    this.expires = arena.f64('expires', cap);
    this.loggedAt = arena.f64('loggedAt', cap);
    this.logSeqOf = arena.f64('logSeqOf', cap);
    this.eh0 = arena.u32('eh0', cap);
    this.eh1 = arena.u32('eh1', cap);
    this.bucketOf = arena.u8('bucketOf', cap);
    this.bucketSums = arena.u32('bucketSums', 2 * DIGEST_BUCKETS);
    this.heap = arena.i32('heap', cap);
    this.hpos = arena.i32('hpos', cap);
    this.next = arena.i32('next', cap);
    this.logSize = logSize;
    this.ring = arena.i32('ring', logSize);
    this.hdr = arena.f64('hdr', HDR_LEN);
    if (arena.shared) {
      const cells = arena.i32('lock', 2);
      this.lock = new SpinLock(cells, 0);
      this.seqLock = new SeqLock(cells, 1);
      this.servers = new SharedNameDict(arena, 'servers', SHARED_SERVER_NAMES, SHARED_SERVER_BYTES);
      this.nodes = new SharedNameDict(arena, 'nodes', SHARED_NODE_NAMES, SHARED_NODE_BYTES);
      // One clock for every thread: its state is in the shared header, stepped under the lock.
      this.clock = new HybridClock(opts.node, this.now, this.hdr, H_CLOCK);
      if (init && opts.clock) {
        this.hdr[H_CLOCK] = opts.clock.wall;
        this.hdr[H_CLOCK + 1] = opts.clock.counter;
      }
    } else {
      this.lock = undefined;
      this.seqLock = undefined;
      this.servers = new NameDict();
      this.nodes = new NameDict();
      this.clock = opts.clock ?? new HybridClock(opts.node, this.now);
    }
    if (init) {
      this.hpos.fill(NONE);
      this.hdr[H_FREE] = NONE;
      this.localNodeId = this.nodes.acquire(this.node);
    } else {
      this.localNodeId = this.nodes.idOf(this.node);
      if (this.localNodeId === 0) throw new StickmeshError('SM_TABLE_CONFIG', `stick table '${cfg.id}': attached handle has no node '${this.node}'`);
    }
    this.refreshAfter = Math.max(1000, cfg.expire / 4);
  }

  /**
   * Views the shared table `handle` describes (from `shareHandle()` on another thread): same
   * entries, log, stats and clock. `onLocalWrite`/`onRemoteApply`, the sweep timer and the key
   * scratch are this thread's own.
   */
  static attach(handle: StickTableHandle, opts: StickTableAttachOptions = {}): StickTable {
    return new StickTable(handle.cfg, { node: handle.node, logSize: handle.logSize, ...(opts.now ? { now: opts.now } : {}) }, handle);
  }

  /** Whether the table lives in SharedArrayBuffers (built with `shared: true`, or attached). */
  get shared(): boolean {
    return this.lock !== undefined;
  }

  /** The handle another thread passes to `StickTable.attach` (only for a shared table). */
  shareHandle(): StickTableHandle {
    return { cfg: this.cfg, node: this.node, epoch: this.epoch, seed: this.seed, logSize: this.logSize, arena: this.arena.handle() };
  }

  /** Bytes of typed-array memory the table holds (keys, index, columns, log, dictionaries of a shared table). */
  get byteLength(): number {
    if (this.arena.shared) {
      let n = 0;
      for (const b of Object.values(this.arena.handle().buffers)) n += b.byteLength;
      return n;
    }
    const cols = [this.keys, this.index, this.hashes, this.srv, this.vWall, this.vCounter, this.vNode, this.expires, this.loggedAt, this.logSeqOf, this.eh0, this.eh1, this.bucketOf, this.bucketSums, this.heap, this.hpos, this.next, this.ring, this.hdr];
    return cols.reduce((n, a) => n + a.byteLength, 0);
  }

  // ---- locking (shared tables only; callers test `this.lock` first) ----

  private wlock(): void {
    this.lock!.lock();
    this.seqLock!.begin();
  }

  private wunlock(): void {
    this.seqLock!.end();
    this.lock!.unlock();
  }

  get count(): number {
    return this.seqLock === undefined ? this.hdr[H_COUNT]! : this.readHdr(H_COUNT);
  }

  get capacity(): number {
    return this.cap;
  }

  /** Last sequence number of the local update log (0 = nothing written yet). */
  get seq(): number {
    return this.seqLock === undefined ? this.hdr[H_SEQ]! : this.readHdr(H_SEQ);
  }

  get stats(): StickTableStats {
    const sl = this.seqLock;
    for (let tries = 0; ; tries++) {
      const q = sl === undefined ? 0 : sl.read();
      const h = this.hdr;
      const st: StickTableStats = {
        count: h[H_COUNT]!,
        capacity: this.cap,
        evictions: h[H_EVICTIONS]!,
        expired: h[H_EXPIRED]!,
        localWrites: h[H_LOCAL_WRITES]!,
        remoteApplied: h[H_REMOTE_APPLIED]!,
        remoteStale: h[H_REMOTE_STALE]!,
        remoteInvalid: h[H_REMOTE_INVALID]!,
        invalidKeys: h[H_INVALID_KEYS]!,
      };
      if (sl === undefined || !sl.changed(q) || tries >= READ_RETRIES) return st;
    }
  }

  /** Server for a key, or undefined (unknown, expired, deleted or invalid key). Changes nothing. */
  lookup(key: string): string | undefined {
    if (!this.codec.encode(key, this.scratch, 0)) return undefined;
    const h = hashKeyWords(this.scratchWords, 0, this.words, this.seed);
    if (this.seqLock === undefined) return this.lookupLocked(h);
    const sl = this.seqLock;
    for (let tries = 0; tries < READ_RETRIES; tries++) {
      const q = sl.read();
      const s = this.find(h);
      const id = s < 0 ? 0 : this.srv[s]!;
      const exp = s < 0 ? 0 : this.expires[s]!;
      if (sl.changed(q)) continue;
      if (id === 0) return undefined;
      if (exp !== 0 && exp <= this.now()) {
        // Removing the dead entry is a write: done under the lock, after checking again there.
        this.wlock();
        try {
          this.lookupLocked(h);
        } finally {
          this.wunlock();
        }
        return undefined;
      }
      const name = this.servers.name(id);
      return name === TOMBSTONE ? undefined : name;
    }
    this.wlock();
    try {
      return this.lookupLocked(h);
    } finally {
      this.wunlock();
    }
  }

  /**
   * Deletes a key cluster-wide: writes a tombstone (server `''`) with a new version, which
   * replicates like any write and so wins over older copies on peers; lookup, get, entries and
   * serverCounts treat it as absent. The tombstone lives until it expires or is evicted. Returns
   * false when the key has no live entry (or is invalid).
   */
  delete(key: string): boolean {
    if (!this.codec.encode(key, this.scratch, 0)) return false;
    const h = hashKeyWords(this.scratchWords, 0, this.words, this.seed);
    if (this.lock !== undefined) this.wlock();
    let done = false;
    try {
      const s = this.locateLocked(h);
      if (s >= 0 && this.servers.name(this.srv[s]!) !== TOMBSTONE) {
        if (this.writeLocked(h, TOMBSTONE) === undefined) throw this.serverLimit();
        done = true;
      }
    } finally {
      if (this.lock !== undefined) this.wunlock();
    }
    if (done && this.onLocalWrite !== undefined) this.onLocalWrite();
    return done;
  }

  /** Deletes every live entry with `delete` (replicated); returns how many. */
  deleteAll(): number {
    const keys = this.entries().map((e) => e.key);
    for (const k of keys) this.setLocal(k, TOMBSTONE);
    return keys.length;
  }

  /**
   * Live entries per server name (tombstones excluded) and their total, without allocating per
   * entry: one pass over the used slots.
   */
  serverCounts(): { live: number; byServer: Map<string, number> } {
    const now = this.now();
    const perId = new Map<number, number>();
    let live = 0;
    const lk = this.lock;
    if (lk !== undefined) lk.lock();
    try {
      for (let s = 0; s < this.hdr[H_HWM]!; s++) {
        if (lk !== undefined && (s & (CHUNK - 1)) === 0 && s > 0) this.relock(lk);
        const id = this.srv[s]!;
        if (id === 0 || this.isExpired(s, now)) continue;
        perId.set(id, (perId.get(id) ?? 0) + 1);
      }
    } finally {
      if (lk !== undefined) lk.unlock();
    }
    const byServer = new Map<string, number>();
    for (const [id, n] of perId) {
      const name = this.servers.name(id)!;
      if (name === TOMBSTONE) continue;
      byServer.set(name, n);
      live += n;
    }
    return { live, byServer };
  }

  /**
   * Local write (stick store). A new key or a new server gets a new HLC version and a log position.
   * The same server again refreshes the expiry and touches the entry; it is re-versioned and re-logged
   * ('refreshed') only if its value was last logged at least max(1000, expire/4) ms ago, otherwise
   * 'unchanged'.
   * A key that is not valid for the table type (e.g. a header value in an `integer` table) stores
   * nothing, as in HAProxy when a sample does not convert: 'unchanged', counted in stats.invalidKeys.
   * Throws StickmeshError SM_TABLE_SERVER_LIMIT if `server` would be the 65536th distinct server
   * name in use (on a shared table: beyond the shared dictionary's bound, see SharedNameDict).
   */
  setLocal(key: string, server: string): SetResult {
    if (!this.codec.encode(key, this.scratch, 0)) {
      this.bump(H_INVALID_KEYS);
      return 'unchanged';
    }
    const h = hashKeyWords(this.scratchWords, 0, this.words, this.seed);
    let result: SetResult | undefined;
    if (this.lock === undefined) result = this.writeLocked(h, server);
    else {
      // writeLocked does not throw (it reports the full dictionary), so no try/finally here.
      this.wlock();
      result = this.writeLocked(h, server);
      this.wunlock();
    }
    if (result === undefined) throw this.serverLimit();
    if (result !== 'unchanged' && this.onLocalWrite !== undefined) this.onLocalWrite();
    return result;
  }

  /**
   * Remote write: applied only if its version is newer than the stored live entry's
   * (compareVersions > 0); expiry = now + u.ttl (u.ttl 0: now + cfg.expire, or never if the table
   * has no expire). The clock observes the stamp. Never appended to the local log. Returns true if
   * applied; false for an older/equal version, an invalid key or field, or a full name dictionary.
   * `onRemoteApply` runs on the calling thread, after the table's lock is released.
   */
  applyRemote(u: TableUpdate): boolean {
    if (
      typeof u.server !== 'string' ||
      typeof u.node !== 'string' ||
      typeof u.key !== 'string' ||
      !Number.isFinite(u.wall) ||
      !Number.isInteger(u.counter) ||
      u.counter < 0 ||
      u.counter > HLC_MAX_COUNTER ||
      !Number.isFinite(u.ttl) ||
      u.ttl < 0 ||
      !this.codec.encode(u.key, this.scratch, 0)
    ) {
      this.bump(H_REMOTE_INVALID);
      return false;
    }
    const h = hashKeyWords(this.scratchWords, 0, this.words, this.seed);
    let applied: boolean;
    if (this.lock === undefined) applied = this.applyLocked(h, u);
    else {
      this.wlock();
      try {
        applied = this.applyLocked(h, u);
      } finally {
        this.wunlock();
      }
    }
    if (applied && this.onRemoteApply !== undefined) this.onRemoteApply(u);
    return applied;
  }

  /**
   * The live entry for a key, or undefined. Does not touch the LRU order. A deleted key's tombstone
   * (server `''`) is returned only with `withTombstone`.
   */
  get(key: string, withTombstone = false): EntryView | undefined {
    if (!this.codec.encode(key, this.scratch, 0)) return undefined;
    const h = hashKeyWords(this.scratchWords, 0, this.words, this.seed);
    const sl = this.seqLock;
    if (sl === undefined) return this.getLocked(h, withTombstone);
    for (let tries = 0; tries < READ_RETRIES; tries++) {
      const q = sl.read();
      const v = this.getLocked(h, withTombstone);
      if (!sl.changed(q)) return v;
    }
    const lk = this.lock!;
    lk.lock();
    try {
      return this.getLocked(h, withTombstone);
    } finally {
      lk.unlock();
    }
  }

  /**
   * Appends to `out` the local updates with seq > fromSeq, at most `max`, each key once at its
   * latest local write (the current value); positions superseded by a later local write, by a
   * learned remote write, by eviction or by expiry are skipped. Returns the seq to resume from (the
   * last position examined; `fromSeq` if there was nothing new), or -1 if `fromSeq` is older than
   * the ring still holds or newer than `seq` (a cursor from another epoch): do a full resync.
   */
  readUpdates(fromSeq: number, max: number, out: TableUpdate[]): number {
    const lk = this.lock;
    if (lk !== undefined) lk.lock();
    try {
      const last = this.hdr[H_SEQ]!;
      if (!Number.isInteger(fromSeq) || fromSeq < 0 || fromSeq > last) return -1;
      if (fromSeq < last - this.logSize) return -1;
      const now = this.now();
      let pos = fromSeq;
      let added = 0;
      while (pos < last && added < max) {
        pos++;
        if (lk !== undefined && (pos & (CHUNK - 1)) === 0) {
          this.relock(lk);
          // The ring wrapped over positions not read yet while the lock was free: resync.
          if (pos <= this.hdr[H_SEQ]! - this.logSize) return -1;
        }
        const s = this.ring[pos % this.logSize]!;
        if (this.logSeqOf[s] !== pos || this.srv[s] === 0 || this.isExpired(s, now)) continue;
        out.push(this.update(s, now));
        added++;
      }
      return pos;
    } finally {
      if (lk !== undefined) lk.unlock();
    }
  }

  /**
   * Full export (resync, snapshots): appends at most `max` live entries (local or learned) from slot
   * `cursor` on; returns the next cursor, or -1 when done. Start with cursor 0. `ttl` is the
   * remaining lifetime.
   *
   * Concurrent writes: an entry written while an export is in progress may land in a slot the
   * cursor has already passed and then is NOT in the export. Callers take `seq` before the first
   * batch and afterwards stream `readUpdates(thatSeq)`: every local write during the export is
   * picked up there (some entries may arrive twice, harmlessly: equal versions are not re-applied).
   * Writes learned from other peers during the export reach the receiver from their origin (full mesh).
   */
  exportBatch(cursor: number, max: number, out: TableUpdate[]): number {
    if (!Number.isInteger(cursor) || cursor < 0) return -1;
    const now = this.now();
    let s = cursor;
    let added = 0;
    const lk = this.lock;
    if (lk !== undefined) lk.lock();
    try {
      while (s < this.hdr[H_HWM]! && added < max) {
        if (lk !== undefined && s !== cursor && (s & (CHUNK - 1)) === 0) this.relock(lk);
        if (this.srv[s] !== 0 && !this.isExpired(s, now)) {
          out.push(this.update(s, now));
          added++;
        }
        s++;
      }
      return s >= this.hdr[H_HWM]! ? -1 : s;
    } finally {
      if (lk !== undefined) lk.unlock();
    }
  }

  /**
   * Removes expired entries: scans at most max(8 x budget, 4096) slots from where the previous call
   * stopped and removes at most `budget` entries, so the work per call is bounded. Returns the
   * number removed. A shared table is unlocked between chunks of slots, so writers wait little.
   */
  sweep(budget: number = DEFAULT_SWEEP_BUDGET): number {
    if (this.count === 0) return 0;
    const now = this.now();
    const lk = this.lock;
    if (lk !== undefined) this.wlock();
    let removed = 0;
    try {
      let scan = Math.min(this.hdr[H_HWM]!, Math.max(budget * 8, 4096));
      let s = this.hdr[H_SWEEP]!;
      let n = 0;
      while (scan-- > 0 && removed < budget) {
        if (lk !== undefined && ++n % CHUNK === 0) {
          this.wunlock();
          this.wlock();
        }
        if (s >= this.hdr[H_HWM]!) s = 0;
        if (this.srv[s] !== 0 && this.isExpired(s, now)) {
          this.releaseSlot(s);
          this.hdr[H_EXPIRED]!++;
          removed++;
        }
        s++;
      }
      this.hdr[H_SWEEP] = s;
    } finally {
      if (lk !== undefined) this.wunlock();
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

  stop(): void {
    if (this.sweepTask && this.sweepWheel) this.sweepWheel.cancel(this.sweepTask);
    this.sweepTask = undefined;
    this.sweepWheel = undefined;
  }

  /**
   * Order-independent digest of (key, server, version) over live entries: 128 bits (four 32-bit
   * lanes, each a sum of per-entry hashes) plus the entry count, as hex. Two tables with the same
   * data have equal digests; different data collides only by hash accident.
   */
  digest(): string {
    const now = this.now();
    const lanes = [0, 0, 0, 0];
    const srvHash = new Map<number, number[]>();
    const nodeHash = new Map<number, number[]>();
    const hashesOf = (cache: Map<number, number[]>, dict: Dict, id: number): number[] => {
      let v = cache.get(id);
      if (!v) {
        const name = dict.name(id) ?? '';
        v = DIGEST_SEEDS.map((seed) => hashName(name, seed));
        cache.set(id, v);
      }
      return v;
    };
    let live = 0;
    const lk = this.lock;
    if (lk !== undefined) lk.lock();
    try {
      for (let s = 0; s < this.hdr[H_HWM]!; s++) {
        if (lk !== undefined && (s & (CHUNK - 1)) === 0 && s > 0) this.relock(lk);
        if (this.srv[s] === 0 || this.isExpired(s, now)) continue;
        live++;
        const sh = hashesOf(srvHash, this.servers, this.srv[s]!);
        const nh = hashesOf(nodeHash, this.nodes, this.vNode[s]!);
        const wall = this.vWall[s]!;
        const wlo = wall % TWO32 >>> 0;
        const whi = Math.floor(wall / TWO32) | 0;
        for (let l = 0; l < 4; l++) {
          let h = hashKeyWords(this.keyWords, s * this.words, this.words, DIGEST_SEEDS[l]!);
          h = mixWord(h, sh[l]!);
          h = mixWord(h, wlo);
          h = mixWord(h, whi);
          h = mixWord(h, this.vCounter[s]!);
          h = mixWord(h, nh[l]!);
          lanes[l] = (lanes[l]! + fmix32(h)) >>> 0;
        }
      }
    } finally {
      if (lk !== undefined) lk.unlock();
    }
    return live.toString(16).padStart(8, '0') + lanes.map((x) => x.toString(16).padStart(8, '0')).join('');
  }

  /**
   * Copy of the bucket digests: `DIGEST_BUCKETS` x 2 lanes, bucket b at [2b] and [2b + 1] (see the
   * class comment). Equal tables (same keys with the same server and version) have equal arrays on
   * every node; O(DIGEST_BUCKETS), no scan.
   */
  bucketDigests(): Uint32Array {
    const lk = this.lock;
    if (lk === undefined) return this.bucketSums.slice();
    lk.lock();
    try {
      return this.bucketSums.slice();
    } finally {
      lk.unlock();
    }
  }

  /** Bucket of `key` (0..DIGEST_BUCKETS-1, the same on every node), or -1 if the key is invalid. */
  bucketOfKey(key: string): number {
    if (!this.codec.encode(key, this.scratch, 0)) return -1;
    return hashKeyWords(this.scratchWords, 0, this.words, BUCKET_SEED) >>> 24;
  }

  /**
   * Like exportBatch, restricted to entries whose bucket b has `want[b] !== 0` (`want` has
   * DIGEST_BUCKETS flags): appends at most `max` live entries (tombstones included) from slot
   * `cursor` on and returns the next cursor, or -1 when done. Expired entries met on the way are
   * removed (as on any access), which also brings the bucket digests up to date. At most
   * `scanMax` slots are examined per call (default: no limit), so a call costs O(scanMax) however
   * few entries the wanted buckets hold; a call that stops on that limit may append nothing and
   * still return a cursor (not -1).
   */
  exportBuckets(want: Uint8Array, cursor: number, max: number, out: TableUpdate[], scanMax = Infinity): number {
    if (!Number.isInteger(cursor) || cursor < 0) return -1;
    const now = this.now();
    let s = cursor;
    let added = 0;
    const lk = this.lock;
    if (lk !== undefined) this.wlock();
    try {
      const end = Math.min(this.hdr[H_HWM]!, cursor + Math.max(1, scanMax));
      while (s < end && added < max) {
        if (lk !== undefined && s !== cursor && (s & (CHUNK - 1)) === 0) {
          this.wunlock();
          this.wlock();
        }
        if (this.srv[s] !== 0 && want[this.bucketOf[s]!] !== 0) {
          if (this.isExpired(s, now)) {
            this.hdr[H_EXPIRED]!++;
            this.releaseSlot(s);
          } else {
            out.push(this.update(s, now));
            added++;
          }
        }
        s++;
      }
      return s >= this.hdr[H_HWM]! ? -1 : s;
    } finally {
      if (lk !== undefined) this.wunlock();
    }
  }

  /**
   * Admin listing and clearing: from slot `cursor` on, in slot order, appends to `out` the live
   * entries (tombstones excluded) that name `filter.server` and whose key starts with
   * `filter.prefix` (each when given), at most `max` of them, examining at most `budget` slots, so
   * one call costs O(budget) whatever the table holds. A view is built only for a match; the server
   * filter compares ids, and on a `string` table the prefix filter compares key bytes (other types
   * decode each key). Returns the slot to resume from, or -1 once the end is reached. Slots do
   * not move, so a cursor stays valid across writes; an entry written meanwhile into a slot before
   * the cursor is not seen by this scan.
   */
  scan(cursor: number, max: number, budget: number, out: EntryView[], filter: { server?: string; prefix?: string } = {}): number {
    if (!Number.isInteger(cursor) || cursor < 0) return -1;
    const tomb = this.servers.idOf(TOMBSTONE);
    let want = 0;
    if (filter.server !== undefined) {
      want = filter.server === TOMBSTONE ? 0 : this.servers.idOf(filter.server);
      if (want === 0) return -1;
    }
    const prefix = filter.prefix;
    // UTF-8 keeps string prefixes as byte prefixes (for well-formed text: checked by the round trip).
    let bytes: Buffer | undefined;
    if (prefix !== undefined && this.cfg.type === 'string') {
      bytes = Buffer.from(prefix, 'utf8');
      if (bytes.toString('utf8') !== prefix) bytes = undefined;
    }
    const width = this.codec.width;
    const now = this.now();
    let s = cursor;
    let added = 0;
    const lk = this.lock;
    if (lk !== undefined) lk.lock();
    try {
      const end = Math.min(this.hdr[H_HWM]!, cursor + Math.max(1, budget));
      for (; s < end && added < max; s++) {
        if (lk !== undefined && s !== cursor && (s & (CHUNK - 1)) === 0) this.relock(lk);
        const id = this.srv[s]!;
        if (id === 0 || id === tomb || (want !== 0 && id !== want) || this.isExpired(s, now)) continue;
        if (bytes !== undefined) {
          const off = s * width;
          if ((this.keys[off]! | (this.keys[off + 1]! << 8)) < bytes.length) continue;
          let i = 0;
          while (i < bytes.length && this.keys[off + 2 + i] === bytes[i]) i++;
          if (i < bytes.length) continue;
        } else if (prefix !== undefined && !this.codec.decode(this.keys, s * width).startsWith(prefix)) continue;
        out.push(this.view(s));
        added++;
      }
      return s >= this.hdr[H_HWM]! ? -1 : s;
    } finally {
      if (lk !== undefined) lk.unlock();
    }
  }

  /** Live entries (tombstones excluded) in slot order, at most `limit` (default all). */
  entries(limit = Infinity): EntryView[] {
    const out: EntryView[] = [];
    const now = this.now();
    const lk = this.lock;
    if (lk !== undefined) lk.lock();
    try {
      for (let s = 0; s < this.hdr[H_HWM]! && out.length < limit; s++) {
        if (lk !== undefined && (s & (CHUNK - 1)) === 0 && s > 0) this.relock(lk);
        if (this.srv[s] !== 0 && !this.isExpired(s, now) && this.servers.name(this.srv[s]!) !== TOMBSTONE) out.push(this.view(s));
      }
    } finally {
      if (lk !== undefined) lk.unlock();
    }
    return out;
  }

  /**
   * Removes every entry. The log's seq and epoch carry on; older positions are skipped by readUpdates.
   * A shared table keeps its name dictionaries (other threads hold ids), an unshared one starts afresh.
   */
  clear(): void {
    if (this.lock !== undefined) this.wlock();
    try {
      this.index.fill(0);
      this.srv.fill(0);
      this.vNode.fill(0);
      this.logSeqOf.fill(0);
      this.bucketSums.fill(0);
      this.hdr[H_FREE] = NONE;
      this.hdr[H_HEAP] = 0;
      this.hpos.fill(NONE);
      this.hdr[H_HWM] = 0;
      this.hdr[H_COUNT] = 0;
      this.hdr[H_SWEEP] = 0;
      if (this.lock === undefined) {
        this.servers = new NameDict();
        this.nodes = new NameDict();
        this.localNodeId = this.nodes.acquire(this.node);
      }
    } finally {
      if (this.lock !== undefined) this.wunlock();
    }
  }

  // ---- shared-table helpers ----

  /** One header scalar read without the lock (SeqLock retry). */
  private readHdr(i: number): number {
    const sl = this.seqLock!;
    for (;;) {
      const q = sl.read();
      const v = this.hdr[i]!;
      if (!sl.changed(q)) return v;
    }
  }

  /** Adds 1 to a header counter (under the lock on a shared table). */
  private bump(i: number): void {
    if (this.lock === undefined) {
      this.hdr[i]!++;
      return;
    }
    this.wlock();
    this.hdr[i]!++;
    this.wunlock();
  }

  /** Lets waiting writers in between two chunks of a long read. */
  private relock(lk: SpinLock): void {
    lk.unlock();
    lk.lock();
  }

  /** lookup's work once the key is in `scratch` with hash h (caller holds the lock if shared). */
  private lookupLocked(h: number): string | undefined {
    const s = this.locateLocked(h);
    if (s < 0) return undefined;
    const name = this.servers.name(this.srv[s]!);
    return name === TOMBSTONE ? undefined : name;
  }

  /** get's work; changes nothing, so shared readers run it under the SeqLock. */
  private getLocked(h: number, withTombstone: boolean): EntryView | undefined {
    const s = this.find(h);
    if (s < 0 || this.isExpired(s, this.now())) return undefined;
    if (!withTombstone && this.servers.name(this.srv[s]!) === TOMBSTONE) return undefined;
    return this.view(s);
  }

  /**
   * setLocal's work once the key is in `scratch` with hash h (caller holds the lock if shared).
   * Never throws: undefined when `server` would overflow the name dictionary (nothing changed).
   */
  private writeLocked(h: number, server: string): SetResult | undefined {
    const now = this.now();
    let s = this.find(h);
    if (s >= 0 && this.isExpired(s, now)) {
      this.hdr[H_EXPIRED]!++;
      this.releaseSlot(s);
      s = NONE;
    }
    const expiresAt = this.cfg.expire > 0 ? now + this.cfg.expire : 0;
    let result: SetResult;
    if (s >= 0) {
      const cur = this.srv[s]!;
      if (this.servers.name(cur) === server) {
        this.expires[s] = expiresAt;
        if (now - this.loggedAt[s]! < this.refreshAfter) return 'unchanged';
        this.digestRemove(s);
        result = 'refreshed';
      } else {
        const id = this.servers.acquire(server);
        if (id === 0) return undefined;
        this.digestRemove(s);
        this.servers.release(cur);
        this.srv[s] = id;
        this.expires[s] = expiresAt;
        result = 'updated';
      }
    } else {
      const id = this.servers.acquire(server);
      if (id === 0) return undefined;
      s = this.allocSlot();
      this.keys.set(this.scratch, s * this.codec.width);
      this.hashes[s] = h;
      this.indexInsert(s, h);
      this.srv[s] = id;
      this.vNode[s] = 0;
      this.expires[s] = expiresAt;
      this.hdr[H_COUNT]!++;
      result = 'created';
    }
    this.clock.step();
    this.setVersion(s, this.clock.wall, this.clock.counter, this.localNodeId);
    this.heapPlace(s);
    this.digestAdd(s);
    this.loggedAt[s] = now;
    const seq = ++this.hdr[H_SEQ]!;
    this.ring[seq % this.logSize] = s;
    this.logSeqOf[s] = seq;
    this.hdr[H_LOCAL_WRITES]!++;
    return result;
  }

  /** applyRemote's work once the update is valid and its key in `scratch` (caller holds the lock if shared). */
  private applyLocked(h: number, u: TableUpdate): boolean {
    const now = this.now();
    this.clock.observeRaw(u.wall, u.counter);
    let s = this.find(h);
    if (s >= 0 && this.isExpired(s, now)) {
      this.hdr[H_EXPIRED]!++;
      this.releaseSlot(s);
      s = NONE;
    }
    if (s >= 0 && this.compareStored(s, u.wall, u.counter, u.node) >= 0) {
      this.hdr[H_REMOTE_STALE]!++;
      return false;
    }
    // Full table and older than everything held: the update would be the next eviction, so it is
    // not taken (every node keeps the newest `size` versions it has seen, hence the same set).
    if (s < 0 && this.hdr[H_COUNT]! >= this.cap && this.hdr[H_FREE] === NONE && this.hdr[H_HEAP]! > 0 && this.compareStored(this.heap[0]!, u.wall, u.counter, u.node) > 0) {
      this.hdr[H_REMOTE_STALE]!++;
      return false;
    }
    const sid = this.servers.acquire(u.server);
    const nid = sid === 0 ? 0 : this.nodes.acquire(u.node);
    if (nid === 0) {
      this.servers.release(sid);
      this.hdr[H_REMOTE_INVALID]!++;
      return false;
    }
    if (s >= 0) {
      this.digestRemove(s);
      this.servers.release(this.srv[s]!);
    } else {
      s = this.allocSlot();
      this.keys.set(this.scratch, s * this.codec.width);
      this.hashes[s] = h;
      this.indexInsert(s, h);
      this.vNode[s] = 0;
      this.hdr[H_COUNT]!++;
    }
    this.srv[s] = sid;
    this.setVersion(s, u.wall, u.counter, nid);
    this.heapPlace(s);
    this.nodes.release(nid); // setVersion took its own reference
    this.digestAdd(s);
    const ttl = u.ttl > 0 ? u.ttl : this.cfg.expire;
    this.expires[s] = ttl > 0 ? now + ttl : 0;
    this.loggedAt[s] = now;
    this.logSeqOf[s] = 0;
    this.hdr[H_REMOTE_APPLIED]!++;
    return true;
  }

  // ---- internals ----

  /**
   * Slot of the live key in `scratch` (hash h), or NONE; a dead entry found on the way is removed
   * (caller holds the lock if shared).
   */
  private locateLocked(h: number): number {
    const s = this.find(h);
    if (s < 0) return NONE;
    if (this.expires[s] !== 0 && this.isExpired(s, this.now())) {
      this.hdr[H_EXPIRED]!++;
      this.releaseSlot(s);
      return NONE;
    }
    return s;
  }

  private isExpired(s: number, now: number): boolean {
    const e = this.expires[s]!;
    return e !== 0 && e <= now;
  }

  /**
   * Slot whose key equals the scratch key, or NONE. Gives up (NONE) after a full turn of the index,
   * which only a lock-free reader racing writers can make (it then sees the SeqLock moved, retries).
   */
  private find(h: number): number {
    const words = this.words;
    const kw = this.keyWords;
    const sw = this.scratchWords;
    let i = h & this.mask;
    for (let n = 0; n <= this.mask; n++) {
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
    return NONE;
  }

  private indexInsert(s: number, h: number): void {
    let i = h & this.mask;
    while (this.index[i] !== 0) i = (i + 1) & this.mask;
    this.index[i] = s + 1;
  }

  /** Deletes slot `s` from the index by backward shift, so no tombstones accumulate. */
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
      // Move e back into the hole if the hole lies on its probe path (between home and j).
      if (((j - home) & mask) >= ((j - i) & mask)) {
        this.index[i] = e;
        i = j;
      }
    }
    this.index[i] = 0;
  }

  /** Whether slot a's version is older than slot b's (HLC order: wall, counter, node name). */
  private older(a: number, b: number): boolean {
    const wa = this.vWall[a]!;
    const wb = this.vWall[b]!;
    if (wa !== wb) return wa < wb;
    const ca = this.vCounter[a]!;
    const cb = this.vCounter[b]!;
    if (ca !== cb) return ca < cb;
    return this.nodes.name(this.vNode[a]!)! < this.nodes.name(this.vNode[b]!)!;
  }

  private heapSet(i: number, s: number): void {
    this.heap[i] = s;
    this.hpos[s] = i;
  }

  private siftUp(i: number): void {
    const s = this.heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const ps = this.heap[p]!;
      if (!this.older(s, ps)) break;
      this.heapSet(i, ps);
      i = p;
    }
    this.heapSet(i, s);
  }

  private siftDown(i: number): void {
    const s = this.heap[i]!;
    const n = this.hdr[H_HEAP]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.older(this.heap[r]!, this.heap[l]!) ? r : l;
      const cs = this.heap[c]!;
      if (!this.older(cs, s)) break;
      this.heapSet(i, cs);
      i = c;
    }
    this.heapSet(i, s);
  }

  /** Puts slot s at its place in the eviction heap after its version was set (new or newer). */
  private heapPlace(s: number): void {
    const i = this.hpos[s]!;
    if (i === NONE) {
      const n = this.hdr[H_HEAP]!;
      this.hdr[H_HEAP] = n + 1;
      this.heapSet(n, s);
      this.siftUp(n);
    } else {
      this.siftUp(i);
      this.siftDown(this.hpos[s]!);
    }
  }

  private heapRemove(s: number): void {
    const i = this.hpos[s]!;
    if (i === NONE) return;
    this.hpos[s] = NONE;
    const last = this.heap[--this.hdr[H_HEAP]!]!;
    if (last === s) return;
    this.heapSet(i, last);
    this.siftUp(i);
    this.siftDown(this.hpos[last]!);
  }

  /** A free slot, evicting the entry with the oldest version if the table is full. */
  private allocSlot(): number {
    const free = this.hdr[H_FREE]!;
    if (free !== NONE) {
      const s = free;
      this.hdr[H_FREE] = this.next[s]!;
      return s;
    }
    const hwm = this.hdr[H_HWM]!;
    if (hwm < this.cap) {
      this.hdr[H_HWM] = hwm + 1;
      return hwm;
    }
    const victim = this.heap[0]!;
    if (this.isExpired(victim, this.now())) this.hdr[H_EXPIRED]!++;
    else this.hdr[H_EVICTIONS]!++;
    this.releaseSlot(victim);
    return this.allocSlot();
  }

  private releaseSlot(s: number): void {
    this.digestRemove(s);
    this.indexRemove(s);
    this.heapRemove(s);
    this.servers.release(this.srv[s]!);
    this.nodes.release(this.vNode[s]!);
    this.srv[s] = 0;
    this.vNode[s] = 0;
    this.logSeqOf[s] = 0;
    this.next[s] = this.hdr[H_FREE]!;
    this.hdr[H_FREE] = s;
    this.hdr[H_COUNT]!--;
  }

  private serverLimit(): StickmeshError {
    return new StickmeshError(
      'SM_TABLE_SERVER_LIMIT',
      `stick table '${this.cfg.id}': more than ${this.lock === undefined ? MAX_DICT_NAMES : 'the shared dictionary holds'} distinct server names in use`,
    );
  }

  /** Sets the version; the slot takes its own reference on node id `nid`. */
  private setVersion(s: number, wall: number, counter: number, nid: number): void {
    this.nodes.retain(nid);
    this.nodes.release(this.vNode[s]!);
    this.vWall[s] = wall;
    this.vCounter[s] = counter;
    this.vNode[s] = nid;
  }

  /**
   * Adds slot s (in use, key/server/version set) to its bucket's digest and remembers what it added,
   * so digestRemove subtracts exactly that. Lane l hashes as in digest(): key, server, wall, counter,
   * node.
   */
  private digestAdd(s: number): void {
    const at = s * this.words;
    const wall = this.vWall[s]!;
    const wlo = wall % TWO32 >>> 0;
    const whi = Math.floor(wall / TWO32) | 0;
    const c = this.vCounter[s]!;
    const sid = this.srv[s]!;
    const nid = this.vNode[s]!;
    let h = hashKeyWords(this.keyWords, at, this.words, DIGEST_SEEDS[0]);
    h = mixWord(mixWord(mixWord(mixWord(mixWord(h, this.servers.hash0(sid)), wlo), whi), c), this.nodes.hash0(nid));
    const h0 = fmix32(h);
    h = hashKeyWords(this.keyWords, at, this.words, DIGEST_SEEDS[1]);
    h = mixWord(mixWord(mixWord(mixWord(mixWord(h, this.servers.hash1(sid)), wlo), whi), c), this.nodes.hash1(nid));
    const h1 = fmix32(h);
    const b = hashKeyWords(this.keyWords, at, this.words, BUCKET_SEED) >>> 24;
    this.eh0[s] = h0;
    this.eh1[s] = h1;
    this.bucketOf[s] = b;
    this.bucketSums[2 * b] = (this.bucketSums[2 * b]! + h0) >>> 0;
    this.bucketSums[2 * b + 1] = (this.bucketSums[2 * b + 1]! + h1) >>> 0;
  }

  /** Subtracts what digestAdd added for slot s (which must be in use). */
  private digestRemove(s: number): void {
    const b = this.bucketOf[s]!;
    this.bucketSums[2 * b] = (this.bucketSums[2 * b]! - this.eh0[s]!) >>> 0;
    this.bucketSums[2 * b + 1] = (this.bucketSums[2 * b + 1]! - this.eh1[s]!) >>> 0;
  }

  /** compareVersions(stored version of s, (wall, counter, node)). */
  private compareStored(s: number, wall: number, counter: number, node: string): number {
    const w = this.vWall[s]!;
    if (w !== wall) return w < wall ? -1 : 1;
    const c = this.vCounter[s]!;
    if (c !== counter) return c < counter ? -1 : 1;
    const n = this.nodes.name(this.vNode[s]!)!;
    return n < node ? -1 : n > node ? 1 : 0;
  }

  private update(s: number, now: number): TableUpdate {
    const e = this.expires[s]!;
    return {
      key: this.codec.decode(this.keys, s * this.codec.width),
      server: this.servers.name(this.srv[s]!)!,
      ttl: e === 0 ? 0 : Math.max(1, e - now),
      wall: this.vWall[s]!,
      counter: this.vCounter[s]!,
      node: this.nodes.name(this.vNode[s]!)!,
      connCnt: 0,
      httpReqCnt: 0,
    };
  }

  private view(s: number): EntryView {
    const version: Version = { wall: this.vWall[s]!, counter: this.vCounter[s]!, node: this.nodes.name(this.vNode[s]!)! };
    return {
      key: this.codec.decode(this.keys, s * this.codec.width),
      server: this.servers.name(this.srv[s]!)!,
      expiresAt: this.expires[s]!,
      version,
      connCnt: 0,
      httpReqCnt: 0,
    };
  }
}
