/**
 * Contract of a table's counters (HAProxy's stored data types other than `server_id`), shared by
 * the counter store (core/counters), the proxy's rules and the peers mesh.
 *
 * Cluster-wide counting: every node owns a *share* of each counter of each key and is the only
 * writer of it. Local writes (`add`, `set`) change this node's share; a peer's share arrives whole
 * through `applyShares` and replaces what this node held of that peer's share for the key; shares
 * are never re-broadcast. `read` returns the sum of the shares (`counters cluster`, the default in a
 * replicated table) or this node's share alone (`counters local`, HAProxy's behaviour, and every
 * table without peers).
 *
 * Rates (`*_rate(period)`) are HAProxy frequency counters: the count of the current period plus the
 * previous period's count weighted by the part of the period still ahead. Periods are aligned on
 * the wall clock (period k covers [k*period, (k+1)*period)), so every node's shares are in the same
 * windows and the sum is a rate over one window. A share whose periods are past reads as 0, so the
 * shares of a node that left the cluster fade out with the window. `conn_cur` is a gauge: a
 * departed node's gauge shares are dropped (`dropNode`) when its session is declared dead. `gpt`
 * is a tag, not additive: the newest share written wins (ties: larger node name).
 *
 * Bounds: at most `size` keys (the table's `size`); a key nobody tracks (no reference) is the
 * first evicted, oldest touched first; when every key is referenced, `acquire` of a new key fails
 * (-1) and the request is not tracked, as HAProxy does. Keys expire `expire` ms after their last
 * local or remote touch, never while referenced. The nodes whose shares are kept are bounded by
 * `maxNodes`; shares from further nodes are refused (counted in `stats.remoteRejected`).
 */
import type { CounterKind, StoredType } from '../config/model.js';


/** One key's share of one node, as replicated: `v` holds `width` finite numbers in the table's wire layout. */
export interface ShareUpdate {
  key: string;
  v: number[];
}

/** Per-node view of one key, for the admin API and `explain`. Values by data type text (`http_req_rate(10s)`, `gpc0`, ...). */
export interface KeyShares {
  key: string;
  /** Absolute expiry (ms since epoch), 0 = never. */
  expiresAt: number;
  /** The sum (or local value in local mode), as `read` gives it now. */
  total: Record<string, number>;
  /** Each node's share now; this node first. */
  nodes: { node: string; values: Record<string, number> }[];
}

export interface CounterStats {
  count: number;
  capacity: number;
  evictions: number;
  expired: number;
  /** `acquire` refused: table full of tracked keys, or key invalid for the table type. */
  trackFailures: number;
  remoteApplied: number;
  remoteRejected: number;
}

/** The hot-path API the proxy's rules use. Slots are small integers valid while referenced. */
export interface Counters {
  readonly id: string;
  readonly mode: 'cluster' | 'local';
  readonly data: readonly StoredType[];
  /** Column of a stored type, or -1 when the table does not store it. */
  column(kind: CounterKind, idx?: number): number;
  /**
   * Finds or creates the entry for `key` (canonical text for the table type, as StickTable keys)
   * and takes a reference on it; refreshes its expiry. Returns its slot, or -1 when the key is not
   * valid for the table type or no slot can be freed.
   */
  acquire(key: string): number;
  /** Drops one reference taken by `acquire`. */
  release(slot: number): void;
  /** Slot of a live entry without creating it or taking a reference, -1 when absent or expired. */
  find(key: string): number;
  /** Adds `n` to this node's share of `col` (count, rate event count, or the conn_cur gauge with n = -1). Refreshes expiry. */
  add(slot: number, col: number, n: number): void;
  /** Sets this node's share of a `gpt` column. Refreshes expiry. */
  set(slot: number, col: number, value: number): void;
  /** The value now: sum of the shares (cluster) or this node's share (local); rates over their period. */
  read(slot: number, col: number): number;
  /** Live entries. */
  readonly count: number;
  readonly stats: CounterStats;
  /** Per-node shares of `key`, undefined when absent. */
  shares(key: string): KeyShares | undefined;
}

/** What the peers mesh needs from a table's counters (cluster mode only; local tables are not replicated). */
export interface ReplicatedCounters {
  /** The table id, as the stick table's `cfg.id`. */
  readonly id: string;
  /**
   * Canonical text of the stored types and wire layout (e.g. `http_req_rate(10000),conn_cur`);
   * peers whose schema for a table differs ignore each other's shares for it.
   */
  readonly schema: string;
  /** Numbers per share update (`ShareUpdate.v.length`). */
  readonly width: number;
  /** Local shares changed since they were last drained. */
  readonly dirty: number;
  /**
   * Called (cheaply, on the request path) when a local share becomes dirty and none was; the mesh
   * sets it to schedule a flush.
   */
  onDirty: (() => void) | undefined;
  /**
   * Moves up to `max` dirty local shares into `out` (each key once, its share as of now) and marks
   * them clean. Returns the wall ms of the oldest change among those drained (for lag), 0 if none.
   */
  drainDirty(max: number, out: ShareUpdate[]): number;
  /** Every live local share, for a peer that (re)connects; cursor starts at 0, returns the next or -1 when done. */
  exportShares(cursor: number, max: number, out: ShareUpdate[]): number;
  /** A peer's share for a key; replaces the previous share of `node` for it. False if refused (bad key or values, node limit). */
  applyShares(node: string, u: ShareUpdate): boolean;
  /** `node`'s session was declared dead: drop its gauge (conn_cur) shares. Its rate shares fade with their window. */
  dropNode(node: string): void;
}
