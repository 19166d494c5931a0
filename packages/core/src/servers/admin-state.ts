/**
 * Cluster-wide admin state of servers (drain, maint, ready, weight), replicated like stick entries.
 *
 * The records live in an internal StickTable of type `string`, id `#servers` (`#` starts a comment
 * in haproxy.cfg, so no configured table can take the id), without expiry. The peers mesh carries
 * it like any table (as an internal table: exchanged only with peers that also list it, see
 * docs/PEERS-PROTOCOL.md) and snapshots hold it, so a record survives restarts and reaches every
 * node; the newest version wins everywhere (the table's rule), and the version names the node that
 * wrote the record and when. Keys, with B the backend and S the server:
 *
 *   state:B/S        {"s":"drain","a":1,"d":DEADLINE,"b":"node1","f":SINCE,"r":"no-bindings"}
 *   weight:B/S       {"w":50}
 *   conns:B/S@NODE   {"c":3}     NODE's open connections to S while S drains (see the node's drain watch)
 *
 * State and weight are separate keys so that a state change on one node and a weight change on
 * another do not overwrite each other. A record `{}` clears: the server falls back to its config.
 * A record that does not decode (written by a newer node, or damaged) counts as absent.
 *
 * Precedence of the effective value: this node's override (memory only, lost on restart) > the
 * cluster record > the config (`disabled` is maint; `weight`).
 *
 * Bound: the table has SERVER_STATE_CAPACITY slots. A local write of a new key is refused with
 * ServerStateError `SM_ADMIN_STATE_FULL` once the table holds MAX_SERVER_STATE_RECORDS records,
 * never by evicting a state; the slots above that absorb records other nodes create at the same
 * moment. Only more than that many concurrent creations cluster-wide at the bound could make the
 * table's full rule drop its oldest record. Overrides are bounded the same way (MAX_OVERRIDES).
 */
import { StickmeshError } from '../errors.js';
import { StickTable } from '../table/stick-table.js';
import type { Version } from '../table/types.js';

export const SERVER_STATE_TABLE = '#servers';
/** Slots of the `#servers` table. */
export const SERVER_STATE_CAPACITY = 65_536;
/** Records past which a local write of a new key is refused (see the module comment). */
export const MAX_SERVER_STATE_RECORDS = 65_000;
/** Longest record key in bytes (the table's key length): `conns:` + backend/server@node. */
export const SERVER_STATE_KEY_LEN = 256;
/** Servers with a per-node override, at most; one more is refused with SM_ADMIN_STATE_FULL. */
export const MAX_OVERRIDES = 65_536;
/** Highest weight, as in HAProxy. */
export const MAX_WEIGHT = 256;

export type AdminStateName = 'ready' | 'drain' | 'maint';
export type DrainEnd = 'no-bindings' | 'deadline';

export class ServerStateError extends StickmeshError {}

/** A server's admin state as written by `set`. */
export interface StateValue {
  state: AdminStateName;
  /** Drain only: switch to maint once the cluster's bindings reach zero. */
  autoMaint: boolean;
  /** Drain only: absolute wall ms at which the drain switches to maint. */
  deadline?: number;
  /** The node that started the drain (kept on the maint record that ends it). */
  by?: string;
  /** When the drain started (on the maint record that ends it; a drain record's own time is its version). */
  since?: number;
  /** On a maint record written by the drain watch: why the drain ended. */
  reason?: DrainEnd;
}

/** Where an effective value comes from: the contract of `adminSet`/`weightSet` in the admin API. */
export type SetBy = { scope: 'cluster'; node: string; at: number } | { scope: 'node'; node: string; at: number } | { scope: 'config' };

export interface Stamped<T> {
  value: T;
  /** The node that wrote it and when (wall ms). */
  node: string;
  at: number;
  /** The full record version (cluster records); absent on overrides. */
  version?: Version;
}

export interface Effective {
  admin: AdminStateName;
  adminSet: SetBy;
  /** The state record the admin state comes from (undefined when from the config). */
  stateValue: StateValue | undefined;
  weight: number;
  weightSet: SetBy;
}

/** A record key: what it is about. */
export type RecordKey = { kind: 'state' | 'weight'; backend: string; server: string } | { kind: 'conns'; backend: string; server: string; node: string };

const STATES: ReadonlySet<string> = new Set(['ready', 'drain', 'maint']);

export function stateKey(backend: string, server: string): string {
  return `state:${backend}/${server}`;
}

export function weightKey(backend: string, server: string): string {
  return `weight:${backend}/${server}`;
}

export function connsKey(backend: string, server: string, node: string): string {
  return `conns:${backend}/${server}@${node}`;
}

/**
 * Parses a record key; undefined for anything else. Backend and server names hold neither `/` nor
 * `@` (HAProxy's identifier characters), so the first `/` and the first `@` after it split.
 */
export function parseRecordKey(key: string): RecordKey | undefined {
  const colon = key.indexOf(':');
  if (colon < 0) return undefined;
  const kind = key.slice(0, colon);
  if (kind !== 'state' && kind !== 'weight' && kind !== 'conns') return undefined;
  const slash = key.indexOf('/', colon + 1);
  if (slash <= colon + 1) return undefined;
  const backend = key.slice(colon + 1, slash);
  let server = key.slice(slash + 1);
  if (kind === 'conns') {
    const at = server.indexOf('@');
    if (at <= 0 || at === server.length - 1) return undefined;
    const node = server.slice(at + 1);
    server = server.slice(0, at);
    return { kind, backend, server, node };
  }
  if (server === '') return undefined;
  return { kind, backend, server };
}

export function encodeState(v: StateValue): string {
  const o: Record<string, unknown> = { s: v.state };
  if (v.autoMaint) o.a = 1;
  if (v.deadline !== undefined) o.d = v.deadline;
  if (v.by !== undefined) o.b = v.by;
  if (v.since !== undefined) o.f = v.since;
  if (v.reason !== undefined) o.r = v.reason;
  return JSON.stringify(o);
}

function parseObject(text: string): Record<string, unknown> | undefined {
  if (text.length === 0 || text.length > 1024 || text[0] !== '{') return undefined;
  try {
    const o: unknown = JSON.parse(text);
    return o !== null && typeof o === 'object' && !Array.isArray(o) ? (o as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const isTime = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0;

/** A state record's value; undefined for a cleared record (`{}`) or one that does not decode. Remote text: every field checked. */
export function decodeState(text: string): StateValue | undefined {
  const o = parseObject(text);
  if (!o || typeof o.s !== 'string' || !STATES.has(o.s)) return undefined;
  const v: StateValue = { state: o.s as AdminStateName, autoMaint: o.a === 1 };
  if (isTime(o.d)) v.deadline = o.d;
  if (typeof o.b === 'string' && o.b.length <= 256) v.by = o.b;
  if (isTime(o.f)) v.since = o.f;
  if (o.r === 'no-bindings' || o.r === 'deadline') v.reason = o.r;
  return v;
}

export function encodeWeight(w: number): string {
  return JSON.stringify({ w });
}

/** A weight record's value; undefined for a cleared record or one that does not decode. */
export function decodeWeight(text: string): number | undefined {
  const o = parseObject(text);
  const w = o?.w;
  return typeof w === 'number' && Number.isInteger(w) && w >= 0 && w <= MAX_WEIGHT ? w : undefined;
}

export function decodeConns(text: string): number | undefined {
  const c = parseObject(text)?.c;
  return typeof c === 'number' && Number.isInteger(c) && c >= 0 ? c : undefined;
}

interface Override {
  state?: Stamped<StateValue>;
  weight?: Stamped<number>;
}

export interface ServerStateStoreOptions {
  node: string;
  /** Wall clock (tests). */
  now?: () => number;
  /** Table slots and the record bound (tests shrink them). */
  capacity?: number;
  maxRecords?: number;
}

/**
 * The `#servers` table and this node's overrides. `onChange` fires after every change of a state
 * or weight record or override (local write, or a remote update the table took) and `onConns`
 * after a conns record changed; both run off the request path (admin calls, replication).
 */
export class ServerStateStore {
  readonly table: StickTable;
  readonly node: string;
  readonly maxRecords: number;
  onChange: ((backend: string, server: string) => void) | undefined = undefined;
  onConns: ((backend: string, server: string) => void) | undefined = undefined;
  private readonly overrides = new Map<string, Override>();
  private readonly now: () => number;

  constructor(opts: ServerStateStoreOptions) {
    this.node = opts.node;
    this.now = opts.now ?? Date.now;
    const capacity = opts.capacity ?? SERVER_STATE_CAPACITY;
    this.maxRecords = Math.min(opts.maxRecords ?? MAX_SERVER_STATE_RECORDS, capacity);
    this.table = new StickTable(
      { id: SERVER_STATE_TABLE, name: SERVER_STATE_TABLE, type: 'string', keyLen: SERVER_STATE_KEY_LEN, size: capacity, expire: 0, store: [], srvkey: 'name', loc: { file: '(internal)', line: 0 } },
      // Admin writes are rare: a small update log (a peer further behind gets a full resync of a small table).
      { node: opts.node, now: this.now, logSize: 4096 },
    );
    this.table.onRemoteApply = (u) => this.applied(u.key);
  }

  // ---------------------------------------------------------------- cluster records

  /** Writes the cluster-wide state of a server; returns the stamped value. Throws ServerStateError at the bound. */
  setState(backend: string, server: string, v: StateValue): Stamped<StateValue> {
    this.write(stateKey(backend, server), encodeState(v));
    return this.state(backend, server)!;
  }

  setWeight(backend: string, server: string, w: number): Stamped<number> {
    if (!Number.isInteger(w) || w < 0 || w > MAX_WEIGHT) throw new ServerStateError('SM_ADMIN_STATE_VALUE', `weight must be an integer in 0..${MAX_WEIGHT}`);
    this.write(weightKey(backend, server), encodeWeight(w));
    return this.weight(backend, server)!;
  }

  /** Drops the cluster-wide state (kind 'state') or weight: a replicated `{}` record; nothing written when there is none. */
  clear(backend: string, server: string, kind: 'state' | 'weight'): boolean {
    const has = kind === 'state' ? this.state(backend, server) : this.weight(backend, server);
    if (!has) return false;
    this.write(kind === 'state' ? stateKey(backend, server) : weightKey(backend, server), '{}');
    return true;
  }

  /** This node's open connections to a draining server, for the other nodes' drain watch. */
  setConns(backend: string, server: string, conns: number): void {
    this.write(connsKey(backend, server, this.node), JSON.stringify({ c: conns }));
  }

  state(backend: string, server: string): Stamped<StateValue> | undefined {
    return this.read(stateKey(backend, server), decodeState);
  }

  weight(backend: string, server: string): Stamped<number> | undefined {
    return this.read(weightKey(backend, server), decodeWeight);
  }

  /** `node`'s conns record for a server, if any. */
  conns(backend: string, server: string, node: string): Stamped<number> | undefined {
    return this.read(connsKey(backend, server, node), decodeConns);
  }

  /** Every server named by a state or weight record (set or cleared), as `backend/server`. */
  servers(): string[] {
    const out = new Set<string>();
    for (const e of this.table.entries()) {
      const k = parseRecordKey(e.key);
      if (k && k.kind !== 'conns') out.add(`${k.backend}/${k.server}`);
    }
    return [...out];
  }

  get count(): number {
    return this.table.count;
  }

  private read<T>(key: string, decode: (text: string) => T | undefined): Stamped<T> | undefined {
    const e = this.table.get(key);
    if (!e) return undefined;
    const value = decode(e.server);
    return value === undefined ? undefined : { value, node: e.version.node, at: e.version.wall, version: e.version };
  }

  private write(key: string, value: string): void {
    if (Buffer.byteLength(key, 'utf8') > SERVER_STATE_KEY_LEN) {
      throw new ServerStateError('SM_ADMIN_STATE_KEY', `server admin record key longer than ${SERVER_STATE_KEY_LEN} bytes: backend and server names too long`);
    }
    if (this.table.get(key, true) === undefined && this.table.count >= this.maxRecords) {
      throw new ServerStateError('SM_ADMIN_STATE_FULL', `server admin state is full (${this.table.count} records, at most ${this.maxRecords}): no state is evicted; the write is refused`);
    }
    this.table.setLocal(key, value);
    this.applied(key);
  }

  private applied(key: string): void {
    const k = parseRecordKey(key);
    if (!k) return;
    if (k.kind === 'conns') this.onConns?.(k.backend, k.server);
    else this.onChange?.(k.backend, k.server);
  }

  // ---------------------------------------------------------------- per-node overrides (memory only)

  /** Sets this node's override of a server's state and/or weight. Kept in memory only: a restart drops it. */
  setOverride(backend: string, server: string, o: { state?: StateValue; weight?: number }): void {
    const key = `${backend}/${server}`;
    let cur = this.overrides.get(key);
    if (!cur) {
      if (this.overrides.size >= MAX_OVERRIDES) throw new ServerStateError('SM_ADMIN_STATE_FULL', `at most ${MAX_OVERRIDES} servers may have a node override`);
      cur = {};
      this.overrides.set(key, cur);
    }
    const at = this.now();
    if (o.state !== undefined) cur.state = { value: o.state, node: this.node, at };
    if (o.weight !== undefined) {
      if (!Number.isInteger(o.weight) || o.weight < 0 || o.weight > MAX_WEIGHT) throw new ServerStateError('SM_ADMIN_STATE_VALUE', `weight must be an integer in 0..${MAX_WEIGHT}`);
      cur.weight = { value: o.weight, node: this.node, at };
    }
    this.onChange?.(backend, server);
  }

  /** Drops this node's override (state, weight or both); true if there was one. */
  clearOverride(backend: string, server: string, what: 'state' | 'weight' | 'both' = 'both'): boolean {
    const key = `${backend}/${server}`;
    const cur = this.overrides.get(key);
    if (!cur) return false;
    if (what !== 'weight') delete cur.state;
    if (what !== 'state') delete cur.weight;
    if (!cur.state && !cur.weight) this.overrides.delete(key);
    this.onChange?.(backend, server);
    return true;
  }

  override(backend: string, server: string): Readonly<Override> | undefined {
    return this.overrides.get(`${backend}/${server}`);
  }

  // ---------------------------------------------------------------- effective values

  /** The state and weight a server runs with here: override > cluster record > config. */
  effective(backend: string, server: string, cfg: { disabled: boolean; weight: number }): Effective {
    const o = this.overrides.get(`${backend}/${server}`);
    let admin: AdminStateName = cfg.disabled ? 'maint' : 'ready';
    let adminSet: SetBy = { scope: 'config' };
    let stateValue: StateValue | undefined;
    const st = o?.state ?? this.state(backend, server);
    if (st) {
      admin = st.value.state;
      stateValue = st.value;
      adminSet = o?.state ? { scope: 'node', node: st.node, at: st.at } : { scope: 'cluster', node: st.node, at: st.at };
    }
    let weight = cfg.weight;
    let weightSet: SetBy = { scope: 'config' };
    const w = o?.weight ?? this.weight(backend, server);
    if (w) {
      weight = w.value;
      weightSet = o?.weight ? { scope: 'node', node: w.node, at: w.at } : { scope: 'cluster', node: w.node, at: w.at };
    }
    return { admin, adminSet, stateValue, weight, weightSet };
  }
}

