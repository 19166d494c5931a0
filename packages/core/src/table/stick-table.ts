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

export interface StickTableOptions {
  /** This node's peer name (the version tie-break). */
  node: string;
  /** Shared clock; default a new clock on `now`. */
  clock?: HybridClock;
  /** Wall clock in ms for expiry (tests inject one). Default Date.now. */
  now?: () => number;
  /** Positions in the local update log ring, default 262144. */
  logSize?: number;
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
}

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
 * is fixed at construction (about 88 bytes per slot for `ip`) and no per-entry JS objects exist.
 * Stored counters (`store ...`) live in the table's CounterTable (`counters`), not here.
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
  private readonly bucketSums = new Uint32Array(2 * DIGEST_BUCKETS);
  /**
   * Eviction order: a binary min-heap of live slots by version (oldest version at heap[0]), with
   * each slot's heap position in `hpos` (NONE when not in the heap).
   */
  private readonly heap: Int32Array;
  private readonly hpos: Int32Array;
  private heapSize = 0;
  /** Free-list link for released slots. */
  private readonly next: Int32Array;
  private freeHead = NONE;
  /** Slots below this have been used at least once; the rest were never touched. */
  private hwm = 0;
  private _count = 0;
  private readonly ring: Int32Array;
  private readonly logSize: number;
  private _seq = 0;
  private servers = new NameDict();
  private nodes = new NameDict();
  private localNodeId: number;
  private readonly seed: number;
  private readonly refreshAfter: number;
  private sweepCursor = 0;
  private sweepTask: WheelTask | undefined;
  private sweepWheel: TimerWheel | undefined;
  private _evictions = 0;
  private _expired = 0;
  private _localWrites = 0;
  private _remoteApplied = 0;
  private _remoteStale = 0;
  private _remoteInvalid = 0;
  private _invalidKeys = 0;

  constructor(cfg: StickTableConfig, opts: StickTableOptions) {
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
    this.clock = opts.clock ?? new HybridClock(opts.node, this.now);
    this.epoch = randomBytes(8).toString('hex');
    this.seed = randomBytes(4).readUInt32LE(0);
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
    this.srv = new Uint16Array(cap);
    this.vWall = new Float64Array(cap);
    this.vCounter = new Uint16Array(cap);
    this.vNode = new Uint16Array(cap);
    this.expires = new Float64Array(cap);
    this.loggedAt = new Float64Array(cap);
    this.logSeqOf = new Float64Array(cap);
    this.eh0 = new Uint32Array(cap);
    this.eh1 = new Uint32Array(cap);
    this.bucketOf = new Uint8Array(cap);
    this.heap = new Int32Array(cap);
    this.hpos = new Int32Array(cap).fill(NONE);
    this.next = new Int32Array(cap);
    this.logSize = logSize;
    this.ring = new Int32Array(logSize);
    this.localNodeId = this.nodes.acquire(this.node);
    this.refreshAfter = Math.max(1000, cfg.expire / 4);
  }

  get count(): number {
    return this._count;
  }

  get capacity(): number {
    return this.cap;
  }

  /** Last sequence number of the local update log (0 = nothing written yet). */
  get seq(): number {
    return this._seq;
  }

  get stats(): StickTableStats {
    return {
      count: this._count,
      capacity: this.cap,
      evictions: this._evictions,
      expired: this._expired,
      localWrites: this._localWrites,
      remoteApplied: this._remoteApplied,
      remoteStale: this._remoteStale,
      remoteInvalid: this._remoteInvalid,
      invalidKeys: this._invalidKeys,
    };
  }

  /** Server for a key, or undefined (unknown, expired, deleted or invalid key). Changes nothing. */
  lookup(key: string): string | undefined {
    const s = this.locate(key);
    if (s < 0) return undefined;
    const name = this.servers.names[this.srv[s]!];
    return name === TOMBSTONE ? undefined : name;
  }

  /**
   * Deletes a key cluster-wide: writes a tombstone (server `''`) with a new version, which
   * replicates like any write and so wins over older copies on peers; lookup, get, entries and
   * serverCounts treat it as absent. The tombstone lives until it expires or is evicted. Returns
   * false when the key has no live entry (or is invalid).
   */
  delete(key: string): boolean {
    const s = this.locate(key);
    if (s < 0 || this.servers.names[this.srv[s]!] === TOMBSTONE) return false;
    this.setLocal(key, TOMBSTONE);
    return true;
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
    for (let s = 0; s < this.hwm; s++) {
      const id = this.srv[s]!;
      if (id === 0 || this.isExpired(s, now)) continue;
      perId.set(id, (perId.get(id) ?? 0) + 1);
    }
    const byServer = new Map<string, number>();
    for (const [id, n] of perId) {
      const name = this.servers.names[id]!;
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
   * name in use.
   */
  setLocal(key: string, server: string): SetResult {
    if (!this.codec.encode(key, this.scratch, 0)) {
      this._invalidKeys++;
      return 'unchanged';
    }
    const h = hashKeyWords(this.scratchWords, 0, this.words, this.seed);
    const now = this.now();
    let s = this.find(h);
    if (s >= 0 && this.isExpired(s, now)) {
      this._expired++;
      this.releaseSlot(s);
      s = NONE;
    }
    const expiresAt = this.cfg.expire > 0 ? now + this.cfg.expire : 0;
    let result: SetResult;
    if (s >= 0) {
      const cur = this.srv[s]!;
      if (this.servers.names[cur] === server) {
        this.expires[s] = expiresAt;
        if (now - this.loggedAt[s]! < this.refreshAfter) return 'unchanged';
        this.digestRemove(s);
        result = 'refreshed';
      } else {
        const id = this.acquireServer(server);
        this.digestRemove(s);
        this.servers.release(cur);
        this.srv[s] = id;
        this.expires[s] = expiresAt;
        result = 'updated';
      }
    } else {
      const id = this.acquireServer(server);
      s = this.allocSlot();
      this.keys.set(this.scratch, s * this.codec.width);
      this.hashes[s] = h;
      this.indexInsert(s, h);
      this.srv[s] = id;
      this.vNode[s] = 0;
      this.expires[s] = expiresAt;
      this._count++;
      result = 'created';
    }
    this.clock.step();
    this.setVersion(s, this.clock.wall, this.clock.counter, this.localNodeId);
    this.heapPlace(s);
    this.digestAdd(s);
    this.loggedAt[s] = now;
    this._seq++;
    this.ring[this._seq % this.logSize] = s;
    this.logSeqOf[s] = this._seq;
    this._localWrites++;
    if (this.onLocalWrite !== undefined) this.onLocalWrite();
    return result;
  }

  /**
   * Remote write: applied only if its version is newer than the stored live entry's
   * (compareVersions > 0); expiry = now + u.ttl (u.ttl 0: now + cfg.expire, or never if the table
   * has no expire). The clock observes the stamp. Never appended to the local log. Returns true if
   * applied; false for an older/equal version, an invalid key or field, or a full name dictionary.
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
      this._remoteInvalid++;
      return false;
    }
    const h = hashKeyWords(this.scratchWords, 0, this.words, this.seed);
    const now = this.now();
    this.clock.observeRaw(u.wall, u.counter);
    let s = this.find(h);
    if (s >= 0 && this.isExpired(s, now)) {
      this._expired++;
      this.releaseSlot(s);
      s = NONE;
    }
    if (s >= 0 && this.compareStored(s, u.wall, u.counter, u.node) >= 0) {
      this._remoteStale++;
      return false;
    }
    // Full table and older than everything held: the update would be the next eviction, so it is
    // not taken (every node keeps the newest `size` versions it has seen, hence the same set).
    if (s < 0 && this._count >= this.cap && this.freeHead === NONE && this.heapSize > 0 && this.compareStored(this.heap[0]!, u.wall, u.counter, u.node) > 0) {
      this._remoteStale++;
      return false;
    }
    const sid = this.servers.acquire(u.server);
    const nid = sid === 0 ? 0 : this.nodes.acquire(u.node);
    if (nid === 0) {
      this.servers.release(sid);
      this._remoteInvalid++;
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
      this._count++;
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
    this._remoteApplied++;
    if (this.onRemoteApply !== undefined) this.onRemoteApply(u);
    return true;
  }

  /**
   * The live entry for a key, or undefined. Does not touch the LRU order. A deleted key's tombstone
   * (server `''`) is returned only with `withTombstone`.
   */
  get(key: string, withTombstone = false): EntryView | undefined {
    if (!this.codec.encode(key, this.scratch, 0)) return undefined;
    const s = this.find(hashKeyWords(this.scratchWords, 0, this.words, this.seed));
    if (s < 0 || this.isExpired(s, this.now())) return undefined;
    if (!withTombstone && this.servers.names[this.srv[s]!] === TOMBSTONE) return undefined;
    return this.view(s);
  }

  /**
   * Appends to `out` the local updates with seq > fromSeq, at most `max`, each key once at its
   * latest local write (the current value); positions superseded by a later local write, by a
   * learned remote write, by eviction or by expiry are skipped. Returns the seq to resume from (the
   * last position examined; `fromSeq` if there was nothing new), or -1 if `fromSeq` is older than
   * the ring still holds or newer than `seq` (a cursor from another epoch): do a full resync.
   */
  readUpdates(fromSeq: number, max: number, out: TableUpdate[]): number {
    const last = this._seq;
    if (!Number.isInteger(fromSeq) || fromSeq < 0 || fromSeq > last) return -1;
    if (fromSeq < last - this.logSize) return -1;
    const now = this.now();
    let pos = fromSeq;
    let added = 0;
    while (pos < last && added < max) {
      pos++;
      const s = this.ring[pos % this.logSize]!;
      if (this.logSeqOf[s] !== pos || this.srv[s] === 0 || this.isExpired(s, now)) continue;
      out.push(this.update(s, now));
      added++;
    }
    return pos;
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
    while (s < this.hwm && added < max) {
      if (this.srv[s] !== 0 && !this.isExpired(s, now)) {
        out.push(this.update(s, now));
        added++;
      }
      s++;
    }
    return s >= this.hwm ? -1 : s;
  }

  /**
   * Removes expired entries: scans at most max(8 x budget, 4096) slots from where the previous call
   * stopped and removes at most `budget` entries, so the work per call is bounded. Returns the
   * number removed.
   */
  sweep(budget: number = DEFAULT_SWEEP_BUDGET): number {
    if (this._count === 0) return 0;
    const now = this.now();
    let scan = Math.min(this.hwm, Math.max(budget * 8, 4096));
    let removed = 0;
    let s = this.sweepCursor;
    while (scan-- > 0 && removed < budget) {
      if (s >= this.hwm) s = 0;
      if (this.srv[s] !== 0 && this.isExpired(s, now)) {
        this.releaseSlot(s);
        removed++;
      }
      s++;
    }
    this.sweepCursor = s;
    this._expired += removed;
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
    const hashesOf = (cache: Map<number, number[]>, dict: NameDict, id: number): number[] => {
      let v = cache.get(id);
      if (!v) {
        const name = dict.names[id] ?? '';
        v = DIGEST_SEEDS.map((seed) => hashName(name, seed));
        cache.set(id, v);
      }
      return v;
    };
    let live = 0;
    for (let s = 0; s < this.hwm; s++) {
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
    return live.toString(16).padStart(8, '0') + lanes.map((x) => x.toString(16).padStart(8, '0')).join('');
  }

  /**
   * Copy of the bucket digests: `DIGEST_BUCKETS` x 2 lanes, bucket b at [2b] and [2b + 1] (see the
   * class comment). Equal tables (same keys with the same server and version) have equal arrays on
   * every node; O(DIGEST_BUCKETS), no scan.
   */
  bucketDigests(): Uint32Array {
    return this.bucketSums.slice();
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
    const end = Math.min(this.hwm, cursor + Math.max(1, scanMax));
    while (s < end && added < max) {
      if (this.srv[s] !== 0 && want[this.bucketOf[s]!] !== 0) {
        if (this.isExpired(s, now)) {
          this._expired++;
          this.releaseSlot(s);
        } else {
          out.push(this.update(s, now));
          added++;
        }
      }
      s++;
    }
    return s >= this.hwm ? -1 : s;
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
    const end = Math.min(this.hwm, cursor + Math.max(1, budget));
    let s = cursor;
    let added = 0;
    for (; s < end && added < max; s++) {
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
    return s >= this.hwm ? -1 : s;
  }

  /** Live entries (tombstones excluded) in slot order, at most `limit` (default all). */
  entries(limit = Infinity): EntryView[] {
    const out: EntryView[] = [];
    const now = this.now();
    for (let s = 0; s < this.hwm && out.length < limit; s++) {
      if (this.srv[s] !== 0 && !this.isExpired(s, now) && this.servers.names[this.srv[s]!] !== TOMBSTONE) out.push(this.view(s));
    }
    return out;
  }

  /** Removes every entry. The log's seq and epoch carry on; older positions are skipped by readUpdates. */
  clear(): void {
    this.index.fill(0);
    this.srv.fill(0);
    this.vNode.fill(0);
    this.logSeqOf.fill(0);
    this.bucketSums.fill(0);
    this.freeHead = NONE;
    this.heapSize = 0;
    this.hpos.fill(NONE);
    this.hwm = 0;
    this._count = 0;
    this.sweepCursor = 0;
    this.servers = new NameDict();
    this.nodes = new NameDict();
    this.localNodeId = this.nodes.acquire(this.node);
  }

  // ---- internals ----

  /** Slot of a live key, or NONE; a dead entry found on the way is removed. */
  private locate(key: string): number {
    if (!this.codec.encode(key, this.scratch, 0)) return NONE;
    const s = this.find(hashKeyWords(this.scratchWords, 0, this.words, this.seed));
    if (s < 0) return NONE;
    if (this.expires[s] !== 0 && this.isExpired(s, this.now())) {
      this._expired++;
      this.releaseSlot(s);
      return NONE;
    }
    return s;
  }

  private isExpired(s: number, now: number): boolean {
    const e = this.expires[s]!;
    return e !== 0 && e <= now;
  }

  /** Slot whose key equals the scratch key, or NONE. */
  private find(h: number): number {
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
    return this.nodes.names[this.vNode[a]!]! < this.nodes.names[this.vNode[b]!]!;
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
    const n = this.heapSize;
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
      this.heapSet(this.heapSize++, s);
      this.siftUp(this.heapSize - 1);
    } else {
      this.siftUp(i);
      this.siftDown(this.hpos[s]!);
    }
  }

  private heapRemove(s: number): void {
    const i = this.hpos[s]!;
    if (i === NONE) return;
    this.hpos[s] = NONE;
    const last = this.heap[--this.heapSize]!;
    if (last === s) return;
    this.heapSet(i, last);
    this.siftUp(i);
    this.siftDown(this.hpos[last]!);
  }

  /** A free slot, evicting the entry with the oldest version if the table is full. */
  private allocSlot(): number {
    if (this.freeHead !== NONE) {
      const s = this.freeHead;
      this.freeHead = this.next[s]!;
      return s;
    }
    if (this.hwm < this.cap) return this.hwm++;
    const victim = this.heap[0]!;
    if (this.isExpired(victim, this.now())) this._expired++;
    else this._evictions++;
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
    this.next[s] = this.freeHead;
    this.freeHead = s;
    this._count--;
  }

  private acquireServer(server: string): number {
    const id = this.servers.acquire(server);
    if (id === 0) {
      throw new StickmeshError(
        'SM_TABLE_SERVER_LIMIT',
        `stick table '${this.cfg.id}': more than ${MAX_DICT_NAMES} distinct server names in use`,
      );
    }
    return id;
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
    h = mixWord(mixWord(mixWord(mixWord(mixWord(h, this.servers.h0[sid]!), wlo), whi), c), this.nodes.h0[nid]!);
    const h0 = fmix32(h);
    h = hashKeyWords(this.keyWords, at, this.words, DIGEST_SEEDS[1]);
    h = mixWord(mixWord(mixWord(mixWord(mixWord(h, this.servers.h1[sid]!), wlo), whi), c), this.nodes.h1[nid]!);
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
    const n = this.nodes.names[this.vNode[s]!]!;
    return n < node ? -1 : n > node ? 1 : 0;
  }

  private update(s: number, now: number): TableUpdate {
    const e = this.expires[s]!;
    return {
      key: this.codec.decode(this.keys, s * this.codec.width),
      server: this.servers.names[this.srv[s]!]!,
      ttl: e === 0 ? 0 : Math.max(1, e - now),
      wall: this.vWall[s]!,
      counter: this.vCounter[s]!,
      node: this.nodes.names[this.vNode[s]!]!,
      connCnt: 0,
      httpReqCnt: 0,
    };
  }

  private view(s: number): EntryView {
    const version: Version = { wall: this.vWall[s]!, counter: this.vCounter[s]!, node: this.nodes.names[this.vNode[s]!]! };
    return {
      key: this.codec.decode(this.keys, s * this.codec.width),
      server: this.servers.names[this.srv[s]!]!,
      expiresAt: this.expires[s]!,
      version,
      connCnt: 0,
      httpReqCnt: 0,
    };
  }
}
