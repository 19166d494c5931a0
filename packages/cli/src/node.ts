/**
 * One stickmesh node: stick tables, the proxy, the peers mesh, the admin listener and snapshots,
 * wired from a loaded config. Start order: tables (restored from the last snapshot) → proxy
 * listeners → admin → peers (which then dial and pull a full copy from a peer); `/ready` stays 503
 * until the first resync finished or its timeout passed. The start is all-or-nothing: every
 * listener holds what it accepts (listen/gate.ts) until all are bound, so a node that cannot bind
 * one of them exits having answered nothing. `reload` swaps the config without dropping
 * connections or tables; `stop` drains, snapshots and closes.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import {
  ConfigError,
  StickmeshError,
  TicketKeyRing,
  buildTables,
  parseOrigin,
  urlHost,
  restoreSnapshotFile,
  sharedWheel,
  snapshotFileFor,
  startCounterSweeps,
  tableHandles,
  SNAPSHOT_FILE,
  unsupportedYet,
  writeSnapshotFile,
  type LoadedConfig,
  type PeersConfig,
  type ReplicatedCounters,
  type StickTable,
  type StickmeshConfig,
} from '@stickmesh/core';
import { AcceptGate, AdminServer, DASHBOARD, MainThreadView, StickmeshProxy, isLoopback, metrics, type AdminOrigins, type ThreadBinds } from '@stickmesh/proxy';
import { Ops } from './admin/api.js';
import { ServerStates } from './server-states.js';
import { ThreadPool } from './threads.js';
import type { PeersService } from '@stickmesh/peers';

/** How often tables are written to `data-dir`. */
export const SNAPSHOT_INTERVAL_MS = 30_000;

export interface NodeOptions {
  node: string;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  /**
   * With `nbthread` > 1: writes a data-plane thread's log buffer through the process's log sink
   * (log.ts `createLogger().writeChunk`); without it they go to stdout directly.
   */
  writeLog?: (buf: Buffer, len: number, lines: number, recycle?: (buf: Buffer) => void) => void;
  /**
   * With `nbthread` > 1: a data-plane thread died. Default: one fatal `thread N died: ...` line
   * and exit 1 (no half-alive node); the log sink writes what it holds at exit.
   */
  onThreadDeath?: (id: number, why: string) => void;
}

/** The default `onThreadDeath`: the process goes down at once with one line saying which thread and why. */
function exitOnThreadDeath(logger: Logger): (id: number, why: string) => void {
  return (id, why) => {
    logger.fatal({ thread: id }, `thread ${id} died: ${why}`);
    process.exit(1);
  };
}

/**
 * The admin host of a node whose config names none: its first peers address that is a loopback
 * address (one node per 127.0.0.N shares a host without colliding), else 127.0.0.1. Never a
 * non-loopback address: a default must not expose the API beyond the host.
 */
export function defaultAdminHost(config: StickmeshConfig, node: string): string {
  for (const pc of config.peers) {
    const { host } = peersFor(pc, node).bind;
    if (isLoopback(host)) return host;
  }
  return '127.0.0.1';
}

/** The `onListening` option that hands a listener to the start-up gate, when there is one. */
function heldBy(gate: AcceptGate | undefined): { onListening?: (server: import('node:net').Server) => void } {
  return gate ? { onListening: (server) => gate.attach(server) } : {};
}

/** The peers section this node belongs to, with its own entry and the remote peers. */
function peersFor(cfg: PeersConfig, node: string): { bind: { host: string; port: number }; remote: Array<{ name: string; host: string; port: number }> } {
  const self = cfg.peers.find((p) => p.name === node);
  if (!self) {
    throw new ConfigError([
      {
        loc: cfg.loc,
        directive: 'peers',
        message: `this node is '${node}' but peers section '${cfg.name}' has no peer of that name (set --node, localpeer, or STICKMESH_NODE)`,
      },
    ]);
  }
  const bind = cfg.bind ?? { host: self.host ?? '', port: self.port ?? 10000 };
  const remote: Array<{ name: string; host: string; port: number }> = [];
  for (const p of cfg.peers) {
    if (p.name === node) continue;
    if (p.host === undefined || p.port === undefined) {
      throw new ConfigError([{ loc: p.loc, directive: 'server', message: `peer '${p.name}' needs an address (only the local peer may omit it)` }]);
    }
    remote.push({ name: p.name, host: p.host, port: p.port });
  }
  return { bind, remote };
}

export class StickmeshNode {
  readonly name: string;
  config: StickmeshConfig;
  tables: Map<string, StickTable>;
  readonly proxy: StickmeshProxy;
  peers: PeersService[] = [];
  admin: AdminServer | undefined;
  /** The admin JSON API (tables, servers, drain, peers, explain, summary, metrics gauges). */
  ops: Ops | undefined;
  adminAddress: { host: string; port: number } | undefined;
  private readonly logger: Logger;
  private readonly env: NodeJS.ProcessEnv;
  private snapshotTimer: NodeJS.Timeout | undefined;
  private originsCache: { config: StickmeshConfig; port: number; value: AdminOrigins } | undefined;
  private readonly startedAt = Date.now();
  /** Per table id: the counters the running peers services replicate (a reload that changes one restarts them). */
  private replicatedCounters = new Map<string, ReplicatedCounters>();
  /**
   * The node's TLS session-ticket keys: used by every `ssl` bind and shared through every peers
   * section that has a shared-secret (see startPeers). Kept in memory only, across reloads; a
   * restarted node learns the cluster's keys from its peers.
   */
  readonly ticketKeys: TicketKeyRing;
  /**
   * The servers' run-time admin state (drain, maint, ready, weight): cluster records in the
   * internal `#servers` table, replicated by the first peers section and kept in snapshots, plus
   * this node's overrides (memory only). See server-states.ts.
   */
  readonly serverStates: ServerStates;
  /** The data-plane threads with `nbthread` > 1 (the main thread then accepts nothing), else undefined. */
  threads: ThreadPool | undefined;
  /** Data-plane threads the node started with (a reload does not change it). */
  readonly threadCount: number;

  private constructor(config: StickmeshConfig, tables: Map<string, StickTable>, proxy: StickmeshProxy, ticketKeys: TicketKeyRing, serverStates: ServerStates, opts: NodeOptions) {
    this.ticketKeys = ticketKeys;
    this.serverStates = serverStates;
    this.name = opts.node;
    this.config = config;
    this.tables = tables;
    this.proxy = proxy;
    this.logger = opts.logger;
    this.env = opts.env ?? process.env;
    this.threadCount = config.global.nbthread;
  }

  static async start(loaded: LoadedConfig, opts: NodeOptions): Promise<StickmeshNode> {
    const { config } = loaded;
    const notYet = unsupportedYet(config);
    if (notYet.length > 0) throw new ConfigError(notYet);
    for (const p of config.peers) peersFor(p, opts.node);
    // With threads, the stick tables live in shared memory: every thread reads and writes the same
    // entries, and their writes enter the one update log this thread's mesh sends.
    const tables = buildTables(config, opts.node, undefined, { shared: config.global.nbthread > 1 });
    // Created before the proxy, so that every backend is built with its servers' run-time state.
    let node: StickmeshNode | undefined;
    const serverStates = new ServerStates({
      name: opts.node,
      backends: () => node?.proxy.backends ?? new Map(),
      livePeers: () => node?.livePeers() ?? [],
      log: (level, fields, msg) => opts.logger[level](fields, msg),
    });
    const restored = await StickmeshNode.restore(config, [...tables.values(), serverStates.store.table], opts.node, opts.logger);
    const ticketKeys = new TicketKeyRing({
      node: opts.node,
      onListenerError: (err) => opts.logger.error({ err: (err as Error).message }, 'TLS ticket keys: a listener failed on a key change'),
    });
    ticketKeys.start();
    let proxy: StickmeshProxy;
    try {
      const role = config.global.nbthread > 1 ? 'main' : 'single';
      proxy = await StickmeshProxy.create(config, { logger: opts.logger, tables, node: opts.node, ticketKeys, role, prepareBackend: (b) => serverStates.prepare(b) });
    } catch (err) {
      ticketKeys.stop();
      throw err;
    }
    node = new StickmeshNode(config, tables, proxy, ticketKeys, serverStates, opts);
    serverStates.start();
    startCounterSweeps(tables, sharedWheel);
    const gate = new AcceptGate();
    try {
      // Every address first (quick), so a taken one is found before anything else is set up.
      await proxy.bind(gate);
      // With threads, the sockets go to them at once: this thread's own descriptors close, and
      // from then on connections wait in the kernel's backlog for the threads, not for this one
      // (what it accepted before is held by the gate and served here once the node is up).
      const binds = node.threadCount > 1 ? await proxy.handOut(node.threadCount) : undefined;
      await node.startAdmin(gate);
      await node.startPeers(gate);
      if (binds) await node.startThreads(config, binds, opts);
      else await proxy.spread(gate);
    } catch (err) {
      gate.close();
      // Descriptors handed out to threads that never started are this thread's to close.
      if (node.threads === undefined) proxy.reclaimHandedOut();
      await node.stop(0, false);
      throw err;
    }
    gate.open();
    node.threads?.open();
    if (config.global.dataDir) {
      node.snapshotTimer = setInterval(() => void node.snapshot(), SNAPSHOT_INTERVAL_MS);
      node.snapshotTimer.unref();
    }
    if (restored > 0) opts.logger.info({ entries: restored }, 'tables restored from snapshot');
    return node;
  }

  /**
   * Applies the last snapshot (if any) as remote updates, so newer versions from peers still win.
   * The node's own file first; when that holds nothing (none written yet), the file all nodes
   * shared before snapshots were per node.
   */
  private static async restore(config: StickmeshConfig, tables: StickTable[], node: string, logger: Logger): Promise<number> {
    const dir = config.global.dataDir;
    if (!dir) return 0;
    let n = 0;
    try {
      // Applied entry by entry as read (restoreSnapshotFile says why: ~150 MB less at 1M entries).
      let r = await restoreSnapshotFile(tables, dir, Date.now(), snapshotFileFor(node));
      if (r.tables === 0) {
        // The shared file may have been written by another node: its counter shares are not ours.
        r = await restoreSnapshotFile(tables, dir, Date.now(), SNAPSHOT_FILE, { counters: false });
      }
      n = r.applied;
    } catch (err) {
      logger.error({ dir, err: (err as Error).message }, 'snapshot not restored');
    }
    return n;
  }

  /**
   * Starts one service per peers section; `gate` (at start) holds their connections until the node
   * is up. The first section also carries the servers' admin state (internal table `#servers`).
   */
  private async startPeers(gate?: AcceptGate): Promise<void> {
    if (this.config.peers.length === 0) return;
    // Loaded by the first peers section: a node without one never loads the mesh (ws, msgpackr
    // and its native addon: about 4 MiB of resident memory, docs/BENCHMARKS.md#memory).
    const { PeersService } = await import('@stickmesh/peers');
    for (const pc of this.config.peers) {
      const first = this.peers.length === 0;
      const { bind, remote } = peersFor(pc, this.name);
      const secret = pc.secret ?? this.env.STICKMESH_PEERS_SECRET ?? '';
      if (secret === '' && remote.length > 0) {
        this.logger.warn({ peers: pc.name }, `peers section '${pc.name}' has no shared-secret: any process that can reach ${bind.host || '*'}:${bind.port} may join`);
      }
      // The section's own tables, and backend or frontend tables that name it (`stick-table ... peers NAME`).
      const ids = pc.tables.map((t) => t.id);
      for (const p of [...this.config.backends, ...this.config.frontends]) if (p.stickTable?.peers === pc.name) ids.push(p.stickTable.id);
      const tables = ids.map((id) => this.tables.get(id)).filter((t) => t !== undefined);
      if (first) tables.push(this.serverStates.store.table);
      // Cluster-wide counters only: a `counters local` table keeps HAProxy's per-node counts.
      const counters: ReplicatedCounters[] = [];
      for (const t of tables) {
        if (t.counters?.mode !== 'cluster') continue;
        counters.push(t.counters);
        this.replicatedCounters.set(t.cfg.id, t.counters);
      }
      // Ticket keys travel only under a secret (the service refuses to send them without one and
      // says why); without a secret the ring goes along only when this node terminates TLS, so
      // the warning is not noise.
      const shareKeys = secret !== '' || hasSslBind(this.config);
      const svc = new PeersService({
        node: this.name,
        ...(shareKeys ? { ticketKeys: this.ticketKeys } : {}),
        cluster: pc.cluster ?? pc.name,
        secret,
        bind,
        peers: remote,
        tables,
        counters,
        logger: this.logger,
        resyncTimeoutMs: pc.resyncTimeout ?? 5000,
        ...(pc.tls?.cert && pc.tls.key
          ? { tls: { cert: readFileSync(pc.tls.cert), key: readFileSync(pc.tls.key), ...(pc.tls.ca ? { ca: readFileSync(pc.tls.ca) } : {}) } }
          : {}),
        ...heldBy(gate),
      });
      try {
        await svc.start();
      } catch (err) {
        // The address comes from the section's `bind`, else from this node's own peer line.
        const self = pc.peers.find((x) => x.name === this.name);
        const [at, directive] = pc.bind?.loc ? [pc.bind.loc, 'bind'] : self ? [self.loc, 'server'] : [pc.loc, 'peers'];
        throw new StickmeshError('SM_BIND', `${at.file}:${at.line}: '${directive}': peers '${pc.name}' cannot listen on ${bind.host || '*'}:${bind.port}: ${(err as Error).message}`);
      }
      for (const t of tables) t.onLocalWrite = svc.notify.bind(svc);
      this.peers.push(svc);
      void svc.ready.then((r) => this.logger.info({ peers: pc.name, reason: r.reason, ms: r.ms }, 'peers ready'));
    }
  }

  /**
   * Starts the `nbthread` data-plane threads on the descriptors handed out to them; resolves once each
   * listens (their gates hold what they accept until `threads.open`).
   */
  private async startThreads(config: StickmeshConfig, binds: ThreadBinds[], opts: NodeOptions): Promise<void> {
    this.threads = await ThreadPool.start({
      count: this.threadCount,
      node: this.name,
      config,
      binds,
      tables: tableHandles(this.tables),
      writeLog: opts.writeLog ?? ((buf, len) => process.stdout.write(buf.subarray(0, len))),
      // A thread wrote a stick entry or made a counters dirty queue non-empty: the mesh sends the
      // update log's news and the counters' dirty shares (their onDirty is the mesh's flush).
      onNotify: () => {
        for (const p of this.peers) p.notify();
        for (const t of this.tables.values()) t.counters?.onDirty?.();
      },
      onDeath: opts.onThreadDeath ?? exitOnThreadDeath(this.logger),
      view: new MainThreadView(this.proxy.backends),
      ticketKeys: this.ticketKeys,
    });
  }

  /** Each data-plane thread's open client connections and accept pauses; empty without `nbthread` > 1. */
  threadLoad(): ReadonlyArray<{ connections: number; pauses: number }> {
    return this.threads?.connectionsPerThread() ?? [];
  }

  /**
   * Peers whose session is up and carries `#servers` (first section): those whose drain reports
   * count. A peer of the previous version (no `#servers`) is left out: it cannot report.
   */
  livePeers(): string[] {
    const svc = this.peers[0];
    if (!svc) return [];
    const id = this.serverStates.store.table.cfg.id;
    return svc.status().filter((p) => (p.state === 'live' || p.state === 'resyncing') && p.internalTables?.includes(id) === true).map((p) => p.peer);
  }

  /** Ready when every peers section finished its first resync (or timed out, reported as such). */
  readiness(): { ready: boolean; reason: string } {
    if (this.peers.length === 0) return { ready: true, reason: 'serving (no peers)' };
    const parts = this.peers.map((p) => p.readiness());
    const notReady = parts.find((p) => !p.ready);
    if (notReady) return { ready: false, reason: notReady.reason };
    return { ready: true, reason: parts.map((p) => p.reason).join(', ') };
  }

  /**
   * The admin listener. An address written in the config (`admin-bind`, see GlobalConfig.admin)
   * must bind or the node stops. Without one it binds this node's peers address on port 9100 when
   * the peers `bind` (or this node's peer line) names a loopback address, else 127.0.0.1:9100, so
   * nodes sharing a host each get their own and no default ever exposes the API beyond this host;
   * when that default cannot be bound (another node, or another program, has it) the node runs
   * without admin and logs one warning.
   */
  private async startAdmin(gate?: AcceptGate): Promise<void> {
    const a = this.config.global.admin;
    if (a.port <= 0) return;
    const host = a.loc ? a.host : defaultAdminHost(this.config, this.name);
    const ops = new Ops(this, () => this.remotePeers());
    const admin = new AdminServer({
      host,
      port: a.port,
      ...(a.token ? { token: a.token } : {}),
      readiness: () => this.readiness(),
      routes: {
        '/tables': () => ops.tables(), // alias of /api/tables
        '/peers': () => this.peers.flatMap((p) => p.status()),
      },
      api: ops.routes(),
      metrics: async () => ({ contentType: metrics.contentType, body: await metrics.text() }),
      dashboard: DASHBOARD,
      origins: () => this.adminOrigins(),
      ...heldBy(gate),
    });
    try {
      this.adminAddress = await admin.listen();
    } catch (err) {
      const msg = (err as Error).message;
      if (a.loc) {
        const where = a.loc.line > 0 ? `${a.loc.file}:${a.loc.line}: 'admin-bind'` : `environment ${a.loc.file}`;
        throw new StickmeshError('SM_BIND', `${where}: admin listener cannot listen on ${host}:${a.port}: ${msg}`);
      }
      this.logger.warn({ address: `${host}:${a.port}`, err: msg }, `admin listener not started: default address ${host}:${a.port} unavailable (${msg}); set admin-bind to give this node its own`);
      return;
    }
    this.admin = admin;
    this.ops = ops;
    metrics.enable();
    ops.registerMetrics();
  }


  /** The other nodes of this node's peers sections that have an address, in config order. */
  private remotePeers(): Array<{ name: string; host: string }> {
    return this.config.peers.flatMap((p) => p.peers.filter((x) => x.name !== this.name && x.host !== undefined).map((x) => ({ name: x.name, host: x.host! })));
  }

  /**
   * Origins the admin listener trusts besides its own: its peers' admin listeners, taken to be
   * `http://PEER_HOST:PORT` with this node's admin port (the one-host and one-port-per-host
   * layouts), and `admin-allow-origin`. The same object until the config or the port changes.
   */
  adminOrigins(): AdminOrigins {
    const port = this.adminAddress?.port ?? this.config.global.admin.port;
    const c = this.originsCache;
    if (c && c.config === this.config && c.port === port) return c.value;
    const peers: string[] = [];
    for (const x of this.remotePeers()) {
      const o = parseOrigin(`http://${urlHost(x.host)}:${port}`);
      if (typeof o === 'string' && !peers.includes(o)) peers.push(o);
    }
    const value: AdminOrigins = { peers, allowed: this.config.global.admin.allowOrigins ?? [] };
    this.originsCache = { config: this.config, port, value };
    return value;
  }

  /** Writes every table to `data-dir` atomically; errors are logged, never thrown. */
  async snapshot(): Promise<void> {
    const dir = this.config.global.dataDir;
    if (!dir) return;
    try {
      await writeSnapshotFile(dir, [...this.tables.values(), this.serverStates.store.table], snapshotFileFor(this.name));
    } catch (err) {
      this.logger.error({ dir, err: (err as Error).message }, 'snapshot failed');
    }
  }

  /**
   * Applies a new config (SIGHUP). Tables are kept (copied when their schema changed); the proxy
   * swaps backends and frontends; peers restart only if their section changed. On any error the
   * running config stays and the error is thrown.
   */
  async reload(loaded: LoadedConfig): Promise<void> {
    const { config } = loaded;
    const notYet = unsupportedYet(config);
    if (notYet.length > 0) throw new ConfigError(notYet);
    for (const p of config.peers) peersFor(p, this.name);
    if (config.global.nbthread !== this.threadCount) {
      this.logger.warn({ running: this.threadCount, config: config.global.nbthread }, `nbthread ${config.global.nbthread} takes effect at the next start; running ${this.threadCount}`);
      config.global.nbthread = this.threadCount;
    }
    const tables = buildTables(config, this.name, this.tables, { shared: this.threadCount > 1 });
    await this.proxy.reload(config, tables);
    // The threads apply the same config; new binds on the descriptors the main thread opened.
    if (this.threads) await this.threads.reload(config, this.proxy.takeHandedOut(this.threadCount), this.proxy.backends, tableHandles(tables));
    // The new backends were prepared before they served; once they are the proxy's, the drain
    // watch follows their servers (one new to the config included).
    this.serverStates.applyAll();
    const replicated = new Set(config.peers.flatMap((p) => p.tables.map((t) => t.id)));
    const countersOf = (t: StickTable) => (t.counters?.mode === 'cluster' ? t.counters : undefined);
    const peersChanged = JSON.stringify(strip(config.peers)) !== JSON.stringify(strip(this.config.peers)) ||
      [...tables].some(([id, t]) => this.tables.get(id) !== t || (replicated.has(id) && countersOf(t) !== this.replicatedCounters.get(id)));
    this.config = config;
    startCounterSweeps(tables, sharedWheel, this.tables);
    this.tables = tables;
    if (peersChanged) {
      for (const p of this.peers) await p.stop();
      this.peers = [];
      this.replicatedCounters = new Map();
      await this.startPeers();
    }
  }

  /** Drains connections (bounded by `drainMs`), snapshots, stops peers and admin. */
  async stop(drainMs: number, snapshot = true): Promise<void> {
    if (this.snapshotTimer) clearInterval(this.snapshotTimer);
    this.ops?.stop();
    this.admin?.close();
    await Promise.all([this.proxy.drain(drainMs), this.threads?.drain(drainMs)]);
    this.serverStates.stop();
    if (snapshot) await this.snapshot();
    for (const p of this.peers) await p.stop();
    this.ticketKeys.stop();
    startCounterSweeps(new Map(), sharedWheel, this.tables);
  }

  /** Logs an operational event with the node's logger. */
  log(level: 'info' | 'warn', fields: Record<string, unknown>, msg: string): void {
    this.logger[level](fields, msg);
  }

  uptimeMs(): number {
    return Date.now() - this.startedAt;
  }
}

/** True when a frontend terminates TLS on one of its binds. */
function hasSslBind(config: StickmeshConfig): boolean {
  return config.frontends.some((f) => f.binds.some((b) => b.ssl !== undefined));
}

function strip(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (k, x) => (k === 'loc' ? undefined : x)));
}
