/**
 * Applies the cluster-wide admin state of servers (core ServerStateStore, the `#servers` table) to
 * this node's RuntimeServers, and runs the drain watch.
 *
 * Applying: whenever a record or override changes (an admin call here, or a peer's update the
 * table took, snapshot restore included) the server's effective state and weight (override >
 * cluster record > config) are set on its RuntimeServer and its backend's candidate set is rebuilt
 * (off the request path; remote changes coalesce per event-loop turn). Every backend the proxy
 * builds, at start and on each reload, goes through `prepare` before it serves. Records naming
 * servers the config does not have are kept (another node, or the next reload, may have them) and
 * otherwise ignored.
 *
 * Drain watch (every node, every DRAIN_POLL_MS while a server drains): the bindings of a server
 * drained cluster-wide are its stick entries (the tables replicate, so this node's count is the
 * cluster's) plus the open connections of every live node: this node's own, and for each peer
 * whose session is live its `conns` record. Each node publishes its own count as such a record
 * when it changes, and once after each new drain, at most once per poll. A peer whose record
 * predates the drain has not reported yet: `autoMaint` waits for it. A dead peer's connections are
 * gone with it and are not counted; nor are those of a peer of the previous version, whose
 * session does not carry `#servers` (it cannot report, and does not know of the drain either). When the bindings reach zero (`autoMaint`) or
 * the deadline passes, the node writes `maint` with the reason, provided the record is still that
 * drain; several nodes may do so at once and converge on one record (same value, newest version).
 * A per-node drain override is watched the same way over this node's connections alone, and ends
 * as a maint override.
 */
import {
  compareVersions, type Effective, type StateValue, type StickTable, ServerStateStore, type DrainEnd,
} from '@stickmesh/core';
import type { RuntimeBackend, RuntimeServer } from '@stickmesh/proxy';

/** How often draining servers are re-counted (and their connection counts published). */
export const DRAIN_POLL_MS = 500;

export interface ServerStatesHost {
  readonly name: string;
  /** The proxy's current backends (they change on reload). */
  backends(): ReadonlyMap<string, RuntimeBackend>;
  /** Peers whose session is up (live or resyncing) and carries `#servers`. */
  livePeers(): readonly string[];
  log(level: 'info' | 'warn', fields: Record<string, unknown>, msg: string): void;
}

/** A server's bindings as the drain watch counts them. */
export interface Bindings {
  sticky: number;
  /** Open connections: this node's plus, for a cluster drain, those live peers reported. */
  conns: number;
  /** Live peers that have not reported their connections since the drain started (cluster drains). */
  unreported: string[];
}

/** Tables the backend's stick rules use. */
export function backendTables(b: RuntimeBackend): StickTable[] {
  const st = b.stick;
  if (!st) return [];
  return [...new Set([...st.match, ...st.storeRequest, ...st.storeResponse].map((r) => r.table))];
}

/** Stick entries naming `s` (by name or address, per table `srvkey`) over the backend's tables; `counts` caches each table's scan. */
export function stickyCount(b: RuntimeBackend, s: RuntimeServer, counts?: Map<StickTable, Map<string, number>>): number {
  let n = 0;
  for (const t of backendTables(b)) {
    let byServer = counts?.get(t);
    if (!byServer) {
      byServer = t.serverCounts().byServer;
      counts?.set(t, byServer);
    }
    n += byServer.get(t.cfg.srvkey === 'addr' ? `${s.address}:${s.port}` : s.name) ?? 0;
  }
  return n;
}

export class ServerStates {
  readonly store: ServerStateStore;
  private timer: NodeJS.Timeout | undefined;
  private pollSoon: NodeJS.Immediate | undefined;
  private lastPollAt = 0;
  /** The watch runs between start() (the node's proxy is up) and stop(). */
  private started = false;
  private stopped = false;
  /**
   * `backend/server` of the servers this node watches: a cluster drain record (this node then
   * reports its connections, even under an override) or an effective drain here. Bounded by the
   * records and overrides (each bounded); a server that leaves the config is dropped at the next poll.
   */
  private readonly draining = new Set<string>();
  /** When this node last published its connections to a server (at most once per DRAIN_POLL_MS). */
  private readonly publishedAt = new WeakMap<RuntimeServer, number>();

  constructor(private readonly host: ServerStatesHost, store?: ServerStateStore) {
    this.store = store ?? new ServerStateStore({ node: host.name });
    this.store.onChange = (b, s) => this.apply(b, s);
    this.store.onConns = (b, s) => this.connsChanged(b, s);
  }

  /** The effective state of a server here. */
  effective(b: RuntimeBackend, s: RuntimeServer): Effective {
    return this.store.effective(b.name, s.name, { disabled: s.cfg.disabled, weight: s.baseWeight });
  }

  /** Sets every server of a freshly built backend to its effective state (ProxyOptions.prepareBackend). */
  prepare(b: RuntimeBackend): void {
    for (const s of b.servers) this.set(b, s);
    b.rebuild();
  }

  /** Re-applies every server (after a reload: a server new to the config joins the watch). */
  applyAll(): void {
    for (const b of this.host.backends().values()) this.prepare(b);
  }

  /** Applies a changed record or override to the named server, if this config has it. */
  apply(backend: string, server: string): void {
    const b = this.host.backends().get(backend);
    const s = b?.serverByName(server);
    if (!b || !s) return;
    const admin = s.admin;
    const weight = s.weight;
    this.set(b, s);
    if (s.admin !== admin || s.weight !== weight) b.rebuildSoon();
  }

  /** Sets the server's effective state and weight, and whether the drain watch follows it. */
  private set(b: RuntimeBackend, s: RuntimeServer): void {
    const e = this.effective(b, s);
    if (e.admin === 'maint' && s.admin !== 'maint') s.dropIdle();
    s.admin = e.admin;
    s.adminWeight = e.weightSet.scope === 'config' ? undefined : e.weight;
    s.weight = e.weight;
    const key = `${b.name}/${s.name}`;
    if (e.admin === 'drain' || this.clusterDrain(b, s, e)) {
      this.draining.add(key);
      this.watch();
    } else this.draining.delete(key);
  }

  /** Whether the cluster record of the server is a drain (under an override too). */
  private clusterDrain(b: RuntimeBackend, s: RuntimeServer, e: Effective): boolean {
    if (e.adminSet.scope === 'cluster') return e.admin === 'drain';
    if (e.adminSet.scope === 'config') return false; // no cluster record
    return this.store.state(b.name, s.name)?.value.state === 'drain';
  }

  /**
   * Starts the drain watch once the host's backends are in place (servers applied before that,
   * by `prepare`, are watched from now on).
   */
  start(): void {
    this.started = true;
    if (this.draining.size > 0) this.watch();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.pollSoon) clearImmediate(this.pollSoon);
    this.pollSoon = undefined;
  }

  /**
   * Starts the poll if needed and polls on the next turn (a new drain publishes its counts at once);
   * `throttled` (a peer's count changed) skips the early poll if one ran in the last DRAIN_POLL_MS / 5.
   */
  private watch(throttled = false): void {
    if (this.stopped || !this.started) return;
    if (!this.timer) {
      this.timer = setInterval(() => this.poll(), DRAIN_POLL_MS);
      this.timer.unref();
    }
    if (this.pollSoon || (throttled && Date.now() - this.lastPollAt < DRAIN_POLL_MS / 5)) return;
    this.pollSoon = setImmediate(() => {
      this.pollSoon = undefined;
      this.poll();
    });
  }

  /** A peer's connection count changed: a drain waiting on it may end now. */
  private connsChanged(backend: string, server: string): void {
    if (this.draining.has(`${backend}/${server}`)) this.watch(true);
  }

  /**
   * The bindings of a draining server (see the module comment); for a node override (or
   * `local`), this node's connections alone.
   */
  bindings(b: RuntimeBackend, s: RuntimeServer, counts?: Map<StickTable, Map<string, number>>, local = false): Bindings {
    const sticky = stickyCount(b, s, counts);
    let conns = s.activeConns;
    const unreported: string[] = [];
    const rec = local ? undefined : this.store.state(b.name, s.name);
    if (rec && this.store.override(b.name, s.name)?.state === undefined) {
      for (const peer of this.host.livePeers()) {
        const c = this.store.conns(b.name, s.name, peer);
        if (!c || compareVersions(c.version!, rec.version!) < 0) unreported.push(peer);
        else conns += c.value;
      }
    }
    return { sticky, conns, unreported };
  }

  /** One round of the drain watch over the servers it follows; stops the timer when none is left. */
  poll(): void {
    if (this.stopped || !this.started) return;
    const now = Date.now();
    this.lastPollAt = now;
    const counts = new Map<StickTable, Map<string, number>>();
    for (const key of [...this.draining]) {
      const slash = key.indexOf('/');
      const b = this.host.backends().get(key.slice(0, slash));
      const s = b?.serverByName(key.slice(slash + 1));
      if (!b || !s) {
        this.draining.delete(key);
        continue;
      }
      const e = this.effective(b, s);
      const cluster = this.clusterDrain(b, s, e);
      if (cluster) this.publish(b, s, now);
      if (e.admin !== 'drain' || !e.stateValue) {
        if (!cluster) this.draining.delete(key);
        continue;
      }
      const v = e.stateValue;
      const n = this.bindings(b, s, counts, e.adminSet.scope !== 'cluster');
      const total = n.sticky + n.conns;
      const reason: DrainEnd | undefined =
        v.autoMaint && total === 0 && n.unreported.length === 0 ? 'no-bindings' : v.deadline !== undefined && now >= v.deadline ? 'deadline' : undefined;
      if (reason) this.end(b, s, e, reason, total);
    }
    if (this.draining.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /**
   * Publishes this node's open connections to a server drained cluster-wide: at once when its
   * record predates the drain, else when the count changed, about once per DRAIN_POLL_MS at most.
   * A connection opened here is thus seen by the other nodes up to a poll later (plus the
   * replication delay): a window in which their watch may end a drain whose last stick entry has
   * just gone.
   */
  private publish(b: RuntimeBackend, s: RuntimeServer, now: number): void {
    const rec = this.store.state(b.name, s.name);
    if (!rec) return;
    const mine = this.store.conns(b.name, s.name, this.host.name);
    const current = mine !== undefined && compareVersions(mine.version!, rec.version!) > 0;
    // 0.8: the interval's own ticks may come a little early; they must not skip a change.
    if (current && (mine.value === s.activeConns || now - (this.publishedAt.get(s) ?? 0) < 0.8 * DRAIN_POLL_MS)) return;
    try {
      this.store.setConns(b.name, s.name, s.activeConns);
      this.publishedAt.set(s, now);
    } catch (err) {
      this.host.log('warn', { backend: b.name, server: s.name, err: (err as Error).message }, 'drain: open connections not published');
    }
  }

  /** Switches a finished drain to maint (cluster record or override), if it is still the drain that was watched. */
  private end(b: RuntimeBackend, s: RuntimeServer, e: Effective, reason: DrainEnd, bindings: number): void {
    const set = e.adminSet;
    if (set.scope === 'config') return; // a drain always comes from a record or an override
    const maint: StateValue = { state: 'maint', autoMaint: false, by: e.stateValue?.by ?? set.node, since: set.at, reason };
    try {
      if (set.scope === 'node') this.store.setOverride(b.name, s.name, { state: maint });
      else {
        const cur = this.store.state(b.name, s.name);
        if (!cur || cur.value.state !== 'drain' || cur.at !== set.at || cur.node !== set.node) return;
        this.store.setState(b.name, s.name, maint);
      }
    } catch (err) {
      this.host.log('warn', { backend: b.name, server: s.name, err: (err as Error).message }, 'drain: switch to maint refused');
      return;
    }
    this.host.log('info', { backend: b.name, server: s.name, reason, bindings, scope: e.adminSet.scope }, `server ${b.name}/${s.name} drained: now in maint`);
  }
}
