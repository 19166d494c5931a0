/**
 * Operations API of a node, served by its admin listener: tables and entries (list, delete, clear —
 * deletes are tombstone writes, so they replicate), servers (show, set ready|drain|maint with
 * session-aware drain), peers, explain, the dashboard summary, and the scrape-time Prometheus
 * gauges (tables, servers, peers). Tables that store counters also show them: schema, mode and
 * stats in the listing, one key's shares per node and their sum (`/api/tables/:table/counters`,
 * and in explain).
 *
 * Server state is cluster-wide: `PUT /api/servers/:b/:s` with `state` (ready|drain|maint) and/or
 * `weight` (0..256) writes a versioned record (scope `cluster`, the default) that the peers mesh
 * replicates to every node and snapshots keep, shown with the node that wrote it (`adminSet`,
 * `weightSet`); scope `node` sets an override on this node only, kept in memory (a restart drops
 * it), shown as such; `clear: true` drops the override (scope node) or the cluster's records
 * (scope cluster). Precedence: override > cluster record > config. Applying and the drain watch
 * live in ../server-states.ts (ServerStates), owned by the node.
 *
 * Session-aware drain: `drain` keeps serving clients bound to the server (cookie or stick entry:
 * `usable` stays true) and sends it no new ones (`pickable` is false). Live bindings = stick-table
 * entries naming the server in the tables its backend's rules use (replicated: the cluster's), plus
 * the open connections of every live node (cookie bindings live in browsers and cannot be counted).
 * With `autoMaint` the server switches to `maint` cluster-wide once bindings reach zero, and with
 * `deadlineMs` when the deadline passes, whichever comes first; `drain.by` names the node that
 * started the drain.
 */
import { CounterTable, MAX_WEIGHT, ServerStateError, canonicalKey, nextTurn, type Effective, type EntryView, type KeyShares, type StateValue, type StickTable } from '@stickmesh/core';
import { AdminError, explainBackend, metrics, type AdminRequest, type AdminRoute, type RuntimeBackend, type RuntimeServer, type StickmeshProxy } from '@stickmesh/proxy';
import type { PeersService } from '@stickmesh/peers';
import { stickyCount, type ServerStates } from '../server-states.js';

/**
 * What the API reads and acts on in its node (StickmeshNode in ../node.ts provides it). Declared
 * here so the node imports the API and the API never imports the node: no import loop.
 */
export interface AdminNode {
  readonly name: string;
  readonly tables: ReadonlyMap<string, StickTable>;
  readonly proxy: StickmeshProxy;
  readonly peers: readonly PeersService[];
  /** The servers' run-time admin state (cluster records, this node's overrides) and the drain watch. */
  readonly serverStates: ServerStates;
  readiness(): { ready: boolean; reason: string };
  uptimeMs(): number;
  log(level: 'info' | 'warn', fields: Record<string, unknown>, msg: string): void;
  /** Data-plane threads (`nbthread`); 1 when the main thread serves alone. */
  readonly threadCount?: number;
  /** With `nbthread` > 1: each thread's open client connections and accept pauses (index 0 = thread 1). */
  threadLoad?(): ReadonlyArray<{ connections: number; pauses: number }>;
}

/** Entries one listing may return. */
export const MAX_LIST_LIMIT = 10000;
/**
 * Slots one listing examines at most (a few tens of ms with a prefix filter): a page may hold
 * fewer than `limit` entries and still name a `next` cursor; the caller goes on from there.
 */
export const SCAN_SLOTS_PER_CALL = 262_144;
/**
 * A clear deletes at most CLEAR_BATCH entries and works at most CLEAR_SLICE_MS per event-loop
 * turn, whichever comes first; the next turn runs after pending I/O (setImmediate).
 */
export const CLEAR_BATCH = 10_000;
export const CLEAR_SLICE_MS = 20;
/** Entries scanned (and then deleted) between two looks at the clock. */
const CLEAR_STEP = 256;
/** Longest key accepted by explain and filters. */
export const MAX_KEY_LENGTH = 1024;
/** Longest drain deadline: one day. */
export const MAX_DRAIN_DEADLINE_MS = 86_400_000;
export { DRAIN_POLL_MS } from '../server-states.js';

export class Ops {
  /** Tables with a clear in progress: one at a time per table (a second one gets 409). */
  private readonly clearing = new Set<StickTable>();

  constructor(private readonly node: AdminNode, private readonly peerHosts: () => Array<{ name: string; host: string }>) {}

  /**
   * The routes. Those that show per-server request counts first fetch the other threads' figures
   * (`metrics.refresh`, nbthread > 1; at most its deadline), so they count the whole node.
   */
  routes(): AdminRoute[] {
    return [
      { method: 'GET', path: '/api/summary', handler: async () => (await metrics.refresh(), this.summary()) },
      { method: 'GET', path: '/api/tables', handler: () => this.tables() },
      { method: 'GET', path: '/api/tables/:table/entries', handler: (r) => this.entries(r) },
      { method: 'DELETE', path: '/api/tables/:table/entries', handler: (r) => this.clear(r) },
      { method: 'GET', path: '/api/tables/:table/entries/:key', handler: (r) => this.entry(r) },
      { method: 'GET', path: '/api/tables/:table/counters', handler: (r) => this.counters(r) },
      { method: 'DELETE', path: '/api/tables/:table/entries/:key', handler: (r) => ({ table: r.params.table, key: r.params.key, deleted: this.table(r.params.table!).delete(r.params.key!) }) },
      { method: 'GET', path: '/api/servers', handler: async () => (await metrics.refresh(), this.servers()) },
      { method: 'GET', path: '/api/servers/:backend/:server', handler: async (r) => (await metrics.refresh(), this.serverInfo(...this.server(r.params.backend!, r.params.server!))) },
      { method: 'PUT', path: '/api/servers/:backend/:server', handler: (r) => this.setServer(r) },
      { method: 'GET', path: '/api/peers', handler: () => this.peers() },
      { method: 'GET', path: '/api/explain', handler: (r) => this.explain(r) },
    ];
  }

  stop(): void {
    /* nothing to stop: the drain watch belongs to the node's ServerStates */
  }

  // ---------------------------------------------------------------- tables

  private table(id: string): StickTable {
    const t = this.node.tables.get(id);
    if (!t) throw new AdminError(404, `no stick table '${id}' (tables: ${[...this.node.tables.keys()].join(', ') || 'none'})`);
    return t;
  }

  /**
   * `GET /api/tables` (and its alias `/tables`): per table its type, live entries, stats (`count`
   * includes expired entries not yet removed), expire, live entries per server and the `digest` of
   * its live data (equal on nodes holding the same data: compare them to see convergence). Two scans
   * of each table; the dashboard's summary leaves the digest out (one scan). `counters` (null when
   * the table stores none): the counter schema, mode (`cluster` sums every node's share, `local`
   * is this node's alone), the counter store's stats, the other nodes holding shares and the local
   * changes not yet sent.
   */
  tables(withDigest = true): Array<Record<string, unknown>> {
    return [...this.node.tables.values()].map((t) => {
      const { live, byServer } = t.serverCounts();
      return {
        id: t.cfg.id,
        type: t.cfg.type,
        live,
        ...t.stats,
        expire: t.cfg.expire,
        servers: Object.fromEntries(byServer),
        counters: countersJson(t),
        ...(withDigest ? { digest: t.digest() } : {}),
      };
    });
  }

  /**
   * `GET /api/tables/:table/counters?key=K`: K's counters in the table, each node's share (this node
   * first) and the sum as rules read it now. 404 for an unknown table, a table storing no
   * counters or a key with no counters; 400 for a missing key or one not valid for the table type.
   * At most 1 + maxNodes shares, so the answer is bounded.
   */
  private counters(r: AdminRequest): Record<string, unknown> {
    const t = this.table(r.params.table!);
    const key = strParam(r.query, 'key');
    if (key === undefined) throw new AdminError(400, 'key is required (?key=KEY)');
    if (!t.counters) throw new AdminError(404, `table '${t.cfg.id}' stores no counters`);
    const canon = canonicalKey(t.cfg.type, t.cfg.keyLen, key);
    if (canon === undefined) throw new AdminError(400, `'${key}' is not a valid key for table '${t.cfg.id}' (type ${t.cfg.type})`);
    const sh = t.counters.shares(canon);
    if (!sh) throw new AdminError(404, `no counters for '${canon}' in table '${t.cfg.id}'`);
    return { table: t.cfg.id, mode: t.counters.mode, ...sharesJson(sh, t.now()) };
  }

  /** For explain: the key's counters in every table storing some (tables where it is not a valid key, or absent, are skipped). */
  private keyCounters(key: string): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const t of this.node.tables.values()) {
      if (!t.counters) continue;
      const canon = canonicalKey(t.cfg.type, t.cfg.keyLen, key);
      const sh = canon === undefined ? undefined : t.counters.shares(canon);
      if (sh) out.push({ table: t.cfg.id, mode: t.counters.mode, ...sharesJson(sh, t.now()) });
    }
    return out;
  }

  /**
   * One page of a table's live entries in slot order (not by age), filtered by server name and key
   * prefix: at most `limit` matches, at most SCAN_SLOTS_PER_CALL slots examined, views built only
   * for matches. `next` is the opaque cursor of the following page, null at the end of the table.
   */
  private entries(r: AdminRequest): Record<string, unknown> {
    const t = this.table(r.params.table!);
    const limit = intParam(r.query, 'limit', 100, 1, MAX_LIST_LIMIT);
    const cursor = intParam(r.query, 'cursor', 0, 0, t.capacity);
    const server = strParam(r.query, 'server');
    const prefix = strParam(r.query, 'prefix');
    const page: EntryView[] = [];
    const next = t.scan(cursor, limit, SCAN_SLOTS_PER_CALL, page, { ...(server !== undefined ? { server } : {}), ...(prefix !== undefined ? { prefix } : {}) });
    const now = t.now();
    return { table: t.cfg.id, count: page.length, next: next === -1 ? null : String(next), entries: page.map((e) => entryJson(e, now)) };
  }

  /**
   * Deletes every live entry (tombstones, which replicate) in slices of at most CLEAR_BATCH
   * entries and CLEAR_SLICE_MS per event-loop turn, so clearing a large table never stalls the
   * node; answers once done with the count. Entries written during the clear into slots it has
   * passed survive it.
   */
  private async clear(r: AdminRequest): Promise<Record<string, unknown>> {
    const t = this.table(r.params.table!);
    if (this.clearing.has(t)) throw new AdminError(409, `a clear of table '${t.cfg.id}' is already in progress`);
    this.clearing.add(t);
    try {
      const batch: EntryView[] = [];
      let cursor = 0;
      let deleted = 0;
      for (;;) {
        const until = performance.now() + CLEAR_SLICE_MS;
        let n = 0;
        do {
          batch.length = 0;
          cursor = t.scan(cursor, CLEAR_STEP, 4 * CLEAR_STEP, batch);
          for (const e of batch) if (t.delete(e.key)) deleted++;
          n += batch.length;
        } while (cursor !== -1 && n < CLEAR_BATCH && performance.now() < until);
        if (cursor === -1) return { table: t.cfg.id, deleted };
        await nextTurn();
      }
    } finally {
      this.clearing.delete(t);
    }
  }

  private entry(r: AdminRequest): Record<string, unknown> {
    const t = this.table(r.params.table!);
    const e = t.get(r.params.key!);
    if (!e) throw new AdminError(404, `no entry '${r.params.key}' in table '${t.cfg.id}'`);
    return entryJson(e, t.now());
  }

  // ---------------------------------------------------------------- servers and drain

  private server(backend: string, server: string): [RuntimeBackend, RuntimeServer] {
    const b = this.node.proxy.backends.get(backend);
    if (!b) throw new AdminError(404, `no backend '${backend}'`);
    const s = b.serverByName(server);
    if (!s) throw new AdminError(404, `no server '${server}' in backend '${backend}'`);
    return [b, s];
  }

  /**
   * One server as the API shows it: `admin` and `weight` are the effective values, `adminSet` and
   * `weightSet` say where they come from (a cluster record with the node that wrote it, this node's
   * override, or the config), `drain` the drain in progress or how the last one ended.
   */
  private serverInfo(b: RuntimeBackend, s: RuntimeServer, counts?: Map<StickTable, Map<string, number>>): Record<string, unknown> {
    const states = this.node.serverStates;
    const sticky = stickyCount(b, s, counts);
    const e = states.effective(b, s);
    const tot = metrics.totals(s, b.name);
    return {
      backend: b.name,
      server: s.name,
      address: `${s.address}:${s.port}`,
      health: s.checkUp ? 'up' : 'down',
      check: s.cfg.check ? this.node.proxy.lastCheck(s) || 'pending' : 'off',
      admin: s.admin,
      adminSet: e.adminSet,
      weight: s.weight,
      weightSet: e.weightSet,
      backup: s.backup,
      cookie: s.cookieValue,
      activeConns: s.activeConns,
      ...(s.tls !== undefined ? { ssl: true } : {}),
      // With nbthread, the data-plane threads connect: the latest outcome of any thread.
      ...(tot.lastConnectError ? { lastConnectError: tot.lastConnectError } : {}),
      sticky,
      requests: tot.requests,
      errors: tot.errors,
      ...this.drainInfo(b, s, e, counts),
    };
  }

  private drainInfo(b: RuntimeBackend, s: RuntimeServer, e: Effective, counts?: Map<StickTable, Map<string, number>>): Record<string, unknown> {
    const v = e.stateValue;
    const set = e.adminSet;
    if (!v || set.scope === 'config') return {};
    if (e.admin === 'drain') {
      const n = this.node.serverStates.bindings(b, s, counts, set.scope === 'node');
      return {
        drain: {
          scope: set.scope,
          since: set.at,
          by: v.by ?? set.node,
          bindings: n.sticky + n.conns,
          autoMaint: v.autoMaint,
          ...(v.deadline !== undefined ? { deadline: v.deadline, remainingMs: Math.max(0, v.deadline - Date.now()) } : {}),
          ...(n.unreported.length > 0 ? { unreported: n.unreported } : {}),
        },
      };
    }
    if (e.admin === 'maint' && v.reason) {
      return { drain: { scope: set.scope, ...(v.since !== undefined ? { since: v.since } : {}), ...(v.by !== undefined ? { by: v.by } : {}), bindings: stickyCount(b, s, counts) + s.activeConns, ended: v.reason, endedAt: set.at, endedBy: set.node } };
    }
    return {};
  }

  servers(): Array<Record<string, unknown>> {
    const counts = new Map<StickTable, Map<string, number>>();
    return [...this.node.proxy.backends.values()].flatMap((b) => b.servers.map((s) => this.serverInfo(b, s, counts)));
  }

  /**
   * `PUT /api/servers/:backend/:server` `{ state?, weight?, scope?, clear?, autoMaint?, deadlineMs? }`.
   * scope `cluster` (default): a replicated record every node applies, shown with this node as its
   * author; `clear: true` drops the cluster's state and weight (back to the config). scope `node`:
   * an override on this node only, in memory (a restart drops it); `clear: true` drops it.
   */
  private setServer(r: AdminRequest): Record<string, unknown> {
    const [b, s] = this.server(r.params.backend!, r.params.server!);
    const body = (r.body ?? {}) as Record<string, unknown>;
    if (typeof body !== 'object' || Array.isArray(body)) throw new AdminError(400, 'body must be a JSON object');
    const { state, weight, scope = 'cluster', clear } = body;
    if (scope !== 'cluster' && scope !== 'node') throw new AdminError(400, "scope must be 'cluster' or 'node'");
    if (clear !== undefined && clear !== true) throw new AdminError(400, 'clear must be true');
    if (state !== undefined && state !== 'ready' && state !== 'drain' && state !== 'maint') throw new AdminError(400, "state must be 'ready', 'drain' or 'maint'");
    if (weight !== undefined && (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0 || weight > MAX_WEIGHT)) throw new AdminError(400, `weight must be an integer in 0..${MAX_WEIGHT}`);
    if (clear && (state !== undefined || weight !== undefined)) throw new AdminError(400, 'clear takes no state or weight');
    if (!clear && state === undefined && weight === undefined) throw new AdminError(400, 'give state, weight or clear');
    let deadline: number | undefined;
    if (body.deadlineMs !== undefined) {
      const d = body.deadlineMs;
      if (state !== 'drain') throw new AdminError(400, 'deadlineMs applies to drain only');
      if (typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > MAX_DRAIN_DEADLINE_MS) throw new AdminError(400, `deadlineMs must be an integer in 0..${MAX_DRAIN_DEADLINE_MS}`);
      deadline = Date.now() + d;
    }
    if (body.autoMaint !== undefined && typeof body.autoMaint !== 'boolean') throw new AdminError(400, 'autoMaint must be a boolean');
    const autoMaint = body.autoMaint === true;
    if (autoMaint && state !== 'drain') throw new AdminError(400, 'autoMaint applies to drain only');
    const store = this.node.serverStates.store;
    const value: StateValue | undefined =
      state === undefined ? undefined : { state, autoMaint, ...(deadline !== undefined ? { deadline } : {}), ...(state === 'drain' ? { by: this.node.name } : {}) };
    try {
      if (scope === 'node') {
        if (clear) store.clearOverride(b.name, s.name);
        else store.setOverride(b.name, s.name, { ...(value ? { state: value } : {}), ...(weight !== undefined ? { weight: weight as number } : {}) });
      } else if (clear) {
        store.clear(b.name, s.name, 'state');
        store.clear(b.name, s.name, 'weight');
      } else {
        if (value) store.setState(b.name, s.name, value);
        if (weight !== undefined) store.setWeight(b.name, s.name, weight as number);
      }
    } catch (err) {
      if (err instanceof ServerStateError) throw new AdminError(err.code === 'SM_ADMIN_STATE_FULL' ? 507 : 400, err.message);
      throw err;
    }
    // The store applied it (admin, weight); the candidate set is rebuilt now, not at the end of the turn.
    b.rebuild();
    return this.serverInfo(b, s);
  }

  // ---------------------------------------------------------------- peers

  peers(): Array<Record<string, unknown>> {
    const hosts = new Map(this.peerHosts().map((p) => [p.name, p.host]));
    const now = Date.now();
    return this.node.peers.flatMap((svc) =>
      svc.status().map((p) => ({
        ...p,
        host: hosts.get(p.peer),
        connected: p.state === 'live' || p.state === 'resyncing',
        lastAckAgoMs: p.lastAckAt > 0 ? now - p.lastAckAt : undefined,
      })),
    );
  }

  /** Refusals of every peers service by reason (including dialers that never became a peer). */
  refusals(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const svc of this.node.peers) for (const [k, v] of Object.entries(svc.refusals)) out[k] = (out[k] ?? 0) + v;
    return out;
  }

  // ---------------------------------------------------------------- explain

  /**
   * What would happen to a client presenting KEY as its stick key (e.g. its address) and COOKIE
   * as the backend's persistence cookie (`cookie=` empty: no cookie; no `cookie` parameter: KEY
   * is tried as the cookie too): per backend, the cookie outcome (HAProxy's request flag), each
   * stick table's entry with version and origin node, the named server's health, and the rule
   * that decides. Computed by the proxy's own decision (explainBackend), so it cannot disagree.
   */
  private explain(r: AdminRequest): Record<string, unknown> {
    const key = strParam(r.query, 'key');
    if (key === undefined) throw new AdminError(400, 'key is required (?key=KEY)');
    const cookie = r.query.has('cookie') ? strParam(r.query, 'cookie') : key;
    const only = strParam(r.query, 'backend');
    const backends = [...this.node.proxy.backends.values()].filter((b) => only === undefined || b.name === only);
    if (only !== undefined && backends.length === 0) throw new AdminError(404, `no backend '${only}'`);
    const nowSec = Math.floor(Date.now() / 1000);
    return {
      node: this.node.name,
      key,
      ...(cookie !== key ? { cookie: cookie ?? null } : {}),
      backends: backends.map((b) => explainBackend(b, key, cookie, nowSec)),
      counters: this.keyCounters(key),
    };
  }

  // ---------------------------------------------------------------- summary and metrics

  /** Everything the dashboard shows about this node, in one call. */
  summary(): Record<string, unknown> {
    const ready = this.node.readiness();
    return {
      node: this.node.name,
      time: Date.now(),
      uptimeMs: this.node.uptimeMs(),
      ready: ready.ready,
      readyReason: ready.reason,
      connections: this.node.proxy.connectionCount() + metrics.otherConnections,
      tables: this.tables(false).map((t) => ({ id: t.id, live: t.live, capacity: t.capacity, evictions: t.evictions, expired: t.expired, servers: t.servers })),
      servers: this.servers(),
      peers: this.peers().map((p) => ({ peer: p.peer, host: p.host, state: p.state, connected: p.connected, lagMs: p.lagMs, pending: p.pending, lastAckAgoMs: p.lastAckAgoMs, lastDataAt: p.lastDataAt, reconnects: p.reconnects, lastError: p.lastError })),
      refusals: this.refusals(),
    };
  }

  /** Registers the scrape-time gauges on the process registry. */
  registerMetrics(): void {
    const node = this.node;
    metrics.gauge('stickmesh_threads', "Data-plane threads serving this node's connections ('nbthread').", [], (set) => set({}, node.threadCount ?? 1));
    // With nbthread > 1: how the node's connections spread over its threads (proxy threads/accept-balance.ts).
    metrics.gauge('stickmesh_thread_connections', 'Open client connections per data-plane thread (nbthread > 1).', ['thread'], (set) => {
      node.threadLoad?.().forEach((t, i) => set({ thread: String(i + 1) }, t.connections));
    });
    metrics.gauge('stickmesh_thread_accept_pauses_total', 'Times a data-plane thread stopped accepting because it held more than its share of the connections, since start (monotonic).', ['thread'], (set) => {
      node.threadLoad?.().forEach((t, i) => set({ thread: String(i + 1) }, t.pauses));
    });
    metrics.gauge('stickmesh_table_entries', 'Live entries per stick table (deleted keys excluded).', ['table'], (set) => {
      for (const t of node.tables.values()) set({ table: t.cfg.id }, t.serverCounts().live);
    });
    metrics.gauge('stickmesh_table_capacity', 'Configured size per stick table.', ['table'], (set) => {
      for (const t of node.tables.values()) set({ table: t.cfg.id }, t.capacity);
    });
    metrics.gauge('stickmesh_table_evicted_entries', 'Live entries evicted to make room, since start (monotonic).', ['table'], (set) => {
      for (const t of node.tables.values()) set({ table: t.cfg.id }, t.stats.evictions);
    });
    metrics.gauge('stickmesh_table_expired_entries', 'Entries removed on expiry, since start (monotonic).', ['table'], (set) => {
      for (const t of node.tables.values()) set({ table: t.cfg.id }, t.stats.expired);
    });
    metrics.gauge('stickmesh_table_remote_stale_updates', "Peers' updates not applied because this node held the same or a newer version (normal during a resync), since start (monotonic).", ['table'], (set) => {
      for (const t of node.tables.values()) set({ table: t.cfg.id }, t.stats.remoteStale);
    });
    metrics.gauge('stickmesh_table_remote_invalid_updates', "Peers' updates refused as malformed or for a full server/node name dictionary, since start (monotonic).", ['table'], (set) => {
      for (const t of node.tables.values()) set({ table: t.cfg.id }, t.stats.remoteInvalid);
    });
    const counted = (set: (labels: Record<string, string>, v: number) => void, f: (c: NonNullable<StickTable['counters']>, t: StickTable) => number | undefined) => {
      for (const t of node.tables.values()) {
        if (!t.counters) continue;
        const v = f(t.counters, t);
        if (v !== undefined) set({ table: t.cfg.id }, v);
      }
    };
    metrics.gauge('stickmesh_table_counter_entries', 'Keys with counters per table.', ['table'], (set) => counted(set, (c) => c.count));
    metrics.gauge('stickmesh_table_counter_track_failures', 'Keys not tracked: table full of tracked keys or key invalid for the table, since start (monotonic).', ['table'], (set) =>
      counted(set, (c) => c.stats.trackFailures),
    );
    metrics.gauge('stickmesh_table_counter_remote_applied', "Peers' counter shares applied, since start (monotonic).", ['table'], (set) => counted(set, (c) => c.stats.remoteApplied));
    metrics.gauge('stickmesh_table_counter_remote_rejected', "Peers' counter shares refused (malformed, node limit, table full), since start (monotonic).", ['table'], (set) =>
      counted(set, (c) => c.stats.remoteRejected),
    );
    metrics.gauge('stickmesh_table_counter_dirty_keys', 'Keys whose local counter share changed and is not yet sent to the peers.', ['table'], (set) => counted(set, (c) => c.dirty));
    metrics.gauge('stickmesh_table_counter_oldest_unsent_seconds', 'Age of the oldest local counter change not yet sent to the peers (0 when none): the sending part of the replication lag.', ['table'], (set) =>
      counted(set, (c, t) => (c instanceof CounterTable ? (c.oldestDirty === 0 ? 0 : Math.max(0, t.now() - c.oldestDirty) / 1000) : undefined)),
    );
    metrics.gauge('stickmesh_server_up', 'Health of a server as seen by checks (1 up, 0 down).', ['backend', 'server'], (set) => {
      for (const b of node.proxy.backends.values()) for (const s of b.servers) set({ backend: b.name, server: s.name }, s.checkUp ? 1 : 0);
    });
    metrics.gauge('stickmesh_server_admin_state', 'Administrative state of a server (1 for the current state).', ['backend', 'server', 'state'], (set) => {
      for (const b of node.proxy.backends.values()) for (const s of b.servers) for (const st of ['ready', 'drain', 'maint']) set({ backend: b.name, server: s.name, state: st }, s.admin === st ? 1 : 0);
    });
    metrics.gauge('stickmesh_server_admin_scope', "Where a server's admin state comes from (1 for the current source): config, cluster (a replicated record) or node (this node's override).", ['backend', 'server', 'scope'], (set) => {
      for (const b of node.proxy.backends.values()) {
        for (const s of b.servers) {
          const scope = node.serverStates.effective(b, s).adminSet.scope;
          for (const sc of ['config', 'cluster', 'node']) set({ backend: b.name, server: s.name, scope: sc }, scope === sc ? 1 : 0);
        }
      }
    });
    metrics.gauge('stickmesh_server_sticky_entries', 'Stick-table entries naming a server (its sticky sessions).', ['backend', 'server'], (set) => {
      const counts = new Map<StickTable, Map<string, number>>();
      for (const b of node.proxy.backends.values()) for (const s of b.servers) set({ backend: b.name, server: s.name }, stickyCount(b, s, counts));
    });
    metrics.gauge('stickmesh_server_active_connections', 'Open connections to a server.', ['backend', 'server'], (set) => {
      for (const b of node.proxy.backends.values()) for (const s of b.servers) set({ backend: b.name, server: s.name }, s.activeConns);
    });
    const perPeer = (name: string, help: string, f: (p: ReturnType<PeersService['status']>[number]) => number) =>
      metrics.gauge(name, help, ['peer'], (set) => {
        for (const svc of node.peers) for (const p of svc.status()) set({ peer: p.peer }, f(p));
      });
    perPeer('stickmesh_peer_up', 'Peer session established (1) or not (0).', (p) => (p.state === 'live' || p.state === 'resyncing' ? 1 : 0));
    perPeer('stickmesh_peer_replication_lag_seconds', 'Delay of the last delta batch applied from the peer (apply time - newest version in it).', (p) => p.lagMs / 1000);
    perPeer('stickmesh_peer_pending_updates', 'Local log positions the peer has not acknowledged.', (p) => p.pending);
    perPeer('stickmesh_peer_sent_bytes', 'Frame bytes sent to the peer since start (monotonic).', (p) => p.bytesSent);
    perPeer('stickmesh_peer_received_bytes', 'Frame bytes received from the peer since start (monotonic).', (p) => p.bytesReceived);
    perPeer('stickmesh_peer_sent_updates', 'Table updates sent to the peer since start (monotonic).', (p) => p.sent);
    perPeer('stickmesh_peer_received_updates', 'Table updates received from the peer since start (monotonic).', (p) => p.received);
    perPeer('stickmesh_peer_reconnects', 'Sessions re-established with the peer after the first (monotonic).', (p) => p.reconnects);
    perPeer('stickmesh_peer_anti_entropy_rounds', 'Anti-entropy digest exchanges with the peer, per table (monotonic).', (p) => p.antiEntropyRounds);
    perPeer('stickmesh_peer_anti_entropy_buckets_repaired', 'Differing digest buckets exchanged with the peer (monotonic).', (p) => p.bucketsRepaired);
    perPeer('stickmesh_peer_anti_entropy_entries_repaired', 'Entries received from the peer in repairs and applied (monotonic).', (p) => p.entriesRepaired);
    metrics.gauge(
      'stickmesh_counter_replication_lag_seconds',
      'Counter replication lag from the peer: apply time - oldest change of each flushed share batch, quantiles over the last 60 s (at most 1024 batches). Absent before any batch.',
      ['peer', 'quantile'],
      (set) => {
        for (const svc of node.peers) {
          for (const p of svc.status()) {
            if (p.counterLagP50Ms === undefined || p.counterLagP99Ms === undefined) continue;
            set({ peer: p.peer, quantile: '0.5' }, p.counterLagP50Ms / 1000);
            set({ peer: p.peer, quantile: '0.99' }, p.counterLagP99Ms / 1000);
          }
        }
      },
    );
    perPeer('stickmesh_peer_counter_shares_sent', 'Counter shares sent to the peer since start (monotonic).', (p) => p.sharesSent ?? 0);
    perPeer('stickmesh_peer_counter_shares_received', 'Counter shares received from the peer since start (monotonic).', (p) => p.sharesReceived ?? 0);
    perPeer('stickmesh_peer_counter_shares_rejected', 'Counter shares from the peer refused by the counters (bad key or values, node limit), since start (monotonic).', (p) => p.sharesRejected ?? 0);
    metrics.gauge('stickmesh_anti_entropy_buckets_compared', 'Digest buckets compared by this node, all peers and tables (monotonic).', [], (set) => {
      let n = 0;
      for (const svc of node.peers) n += svc.stats().bucketsCompared;
      set({}, n);
    });
    metrics.gauge('stickmesh_peer_refused_connections', 'Peer connections refused or dropped, by reason, since start (monotonic).', ['reason'], (set) => {
      for (const [reason, n] of Object.entries(this.refusals())) set({ reason }, n);
    });
  }
}

function entryJson(e: EntryView, now: number): Record<string, unknown> {
  return {
    key: e.key,
    server: e.server,
    version: e.version,
    origin: e.version.node,
    expiresInMs: e.expiresAt === 0 ? null : Math.max(0, e.expiresAt - now),
  };
}

function strParam(q: URLSearchParams, name: string): string | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (v.length > MAX_KEY_LENGTH) throw new AdminError(400, `${name} longer than ${MAX_KEY_LENGTH} characters`);
  return v;
}

function intParam(q: URLSearchParams, name: string, dflt: number, min: number, max: number): number {
  const v = q.get(name);
  if (v === null || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new AdminError(400, `${name} must be an integer in ${min}..${max}`);
  return n;
}

/** The `counters` field of a table in the listing, null when it stores none. */
function countersJson(t: StickTable): Record<string, unknown> | null {
  const c = t.counters;
  if (!c) return null;
  return {
    schema: c.schema,
    mode: c.mode,
    ...c.stats,
    dirty: c.dirty,
    ...(c instanceof CounterTable ? { nodes: c.remoteNodes, nodesRefused: c.nodesRefused } : {}),
  };
}

function sharesJson(sh: KeyShares, now: number): Record<string, unknown> {
  return { key: sh.key, expiresInMs: sh.expiresAt === 0 ? null : Math.max(0, sh.expiresAt - now), total: sh.total, nodes: sh.nodes };
}
