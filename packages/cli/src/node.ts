/**
 * One stickmesh node: stick tables, the proxy, the peers mesh, the admin listener and snapshots,
 * wired from a loaded config. Start order: tables (restored from the last snapshot) → proxy
 * listeners → peers (which pull a full copy from a peer) → admin, whose `/ready` stays 503 until
 * the first resync finished or its timeout passed. `reload` swaps the config without dropping
 * connections or tables; `stop` drains, snapshots and closes.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import {
  ConfigError,
  StickmeshError,
  buildTables,
  parseOrigin,
  readSnapshotFile,
  unsupportedYet,
  writeSnapshotFile,
  type LoadedConfig,
  type PeersConfig,
  type StickTable,
  type StickmeshConfig,
} from '@stickmesh/core';
import { AdminServer, DASHBOARD, StickmeshProxy, metrics, type AdminOrigins } from '@stickmesh/proxy';
import { Ops } from './ops.js';
import { PeersService } from '@stickmesh/peers';

/** How often tables are written to `data-dir`. */
export const SNAPSHOT_INTERVAL_MS = 30_000;

export interface NodeOptions {
  node: string;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
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

  private constructor(config: StickmeshConfig, tables: Map<string, StickTable>, proxy: StickmeshProxy, opts: NodeOptions) {
    this.name = opts.node;
    this.config = config;
    this.tables = tables;
    this.proxy = proxy;
    this.logger = opts.logger;
    this.env = opts.env ?? process.env;
  }

  static async start(loaded: LoadedConfig, opts: NodeOptions): Promise<StickmeshNode> {
    const { config } = loaded;
    const notYet = unsupportedYet(config);
    if (notYet.length > 0) throw new ConfigError(notYet);
    for (const p of config.peers) peersFor(p, opts.node);
    const tables = buildTables(config, opts.node);
    const restored = await StickmeshNode.restore(config, tables, opts.logger);
    const proxy = await StickmeshProxy.create(config, { logger: opts.logger, tables, node: opts.node });
    const node = new StickmeshNode(config, tables, proxy, opts);
    try {
      await proxy.listen();
      await node.startPeers();
      await node.startAdmin();
    } catch (err) {
      await node.stop(0, false);
      throw err;
    }
    if (config.global.dataDir) {
      node.snapshotTimer = setInterval(() => void node.snapshot(), SNAPSHOT_INTERVAL_MS);
      node.snapshotTimer.unref();
    }
    if (restored > 0) opts.logger.info({ entries: restored }, 'tables restored from snapshot');
    return node;
  }

  /** Applies the last snapshot (if any) as remote updates, so newer versions from peers still win. */
  private static async restore(config: StickmeshConfig, tables: Map<string, StickTable>, logger: Logger): Promise<number> {
    const dir = config.global.dataDir;
    if (!dir || tables.size === 0) return 0;
    let n = 0;
    try {
      const snap = await readSnapshotFile(dir);
      for (const t of snap) {
        const table = tables.get(t.id);
        if (!table) continue;
        for (const u of t.updates) if (table.applyRemote(u)) n++;
      }
    } catch (err) {
      logger.error({ dir, err: (err as Error).message }, 'snapshot not restored');
    }
    return n;
  }

  private async startPeers(): Promise<void> {
    for (const pc of this.config.peers) {
      const { bind, remote } = peersFor(pc, this.name);
      const secret = pc.secret ?? this.env.STICKMESH_PEERS_SECRET ?? '';
      if (secret === '' && remote.length > 0) {
        this.logger.warn({ peers: pc.name }, `peers section '${pc.name}' has no shared-secret: any process that can reach ${bind.host || '*'}:${bind.port} may join`);
      }
      const tables = pc.tables.map((t) => this.tables.get(t.id)!).filter((t) => t !== undefined);
      const svc = new PeersService({
        node: this.name,
        cluster: pc.cluster ?? pc.name,
        secret,
        bind,
        peers: remote,
        tables,
        logger: this.logger,
        resyncTimeoutMs: pc.resyncTimeout ?? 5000,
        ...(pc.tls?.cert && pc.tls.key
          ? { tls: { cert: readFileSync(pc.tls.cert), key: readFileSync(pc.tls.key), ...(pc.tls.ca ? { ca: readFileSync(pc.tls.ca) } : {}) } }
          : {}),
      });
      await svc.start();
      for (const t of tables) t.onLocalWrite = svc.notify.bind(svc);
      this.peers.push(svc);
      void svc.ready.then((r) => this.logger.info({ peers: pc.name, reason: r.reason, ms: r.ms }, 'peers ready'));
    }
  }

  /** Ready when every peers section finished its first resync (or timed out, reported as such). */
  readiness(): { ready: boolean; reason: string } {
    if (this.peers.length === 0) return { ready: true, reason: 'serving (no peers)' };
    const parts = this.peers.map((p) => p.readiness());
    const notReady = parts.find((p) => !p.ready);
    if (notReady) return { ready: false, reason: notReady.reason };
    return { ready: true, reason: parts.map((p) => p.reason).join(', ') };
  }

  private async startAdmin(): Promise<void> {
    const a = this.config.global.admin;
    if (a.port <= 0) return;
    const ops = new Ops(this, () => this.config.peers.flatMap((p) => p.peers.filter((x) => x.name !== this.name && x.host !== undefined).map((x) => ({ name: x.name, host: x.host! }))));
    this.ops = ops;
    metrics.enable();
    ops.registerMetrics();
    this.admin = new AdminServer({
      host: a.host,
      port: a.port,
      ...(a.token ? { token: a.token } : {}),
      readiness: () => this.readiness(),
      routes: {
        '/tables': () => this.tableStats(),
        '/peers': () => this.peers.flatMap((p) => p.status()),
      },
      api: ops.routes(),
      metrics: async () => ({ contentType: metrics.contentType, body: await metrics.text() }),
      dashboard: DASHBOARD,
      origins: () => this.adminOrigins(),
    });
    try {
      this.adminAddress = await this.admin.listen();
    } catch (err) {
      throw new StickmeshError('SM_BIND', `admin listener ${a.host}:${a.port}: ${(err as Error).message}`);
    }
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
    for (const p of this.config.peers) {
      for (const x of p.peers) {
        if (x.name === this.name || x.host === undefined) continue;
        const o = parseOrigin(`http://${x.host.includes(':') ? `[${x.host}]` : x.host}:${port}`);
        if (typeof o === 'string' && !peers.includes(o)) peers.push(o);
      }
    }
    const value: AdminOrigins = { peers, allowed: this.config.global.admin.allowOrigins ?? [] };
    this.originsCache = { config: this.config, port, value };
    return value;
  }

  tableStats(): Array<Record<string, unknown>> {
    return [...this.tables.values()].map((t) => ({ id: t.cfg.id, ...t.stats, digest: t.digest() }));
  }

  /** Writes every table to `data-dir` atomically; errors are logged, never thrown. */
  async snapshot(): Promise<void> {
    const dir = this.config.global.dataDir;
    if (!dir || this.tables.size === 0) return;
    try {
      await writeSnapshotFile(dir, [...this.tables.values()]);
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
    const tables = buildTables(config, this.name, this.tables);
    await this.proxy.reload(config, tables);
    const peersChanged = JSON.stringify(strip(config.peers)) !== JSON.stringify(strip(this.config.peers)) || [...tables].some(([id, t]) => this.tables.get(id) !== t);
    this.config = config;
    this.tables = tables;
    if (peersChanged) {
      for (const p of this.peers) await p.stop();
      this.peers = [];
      await this.startPeers();
    }
  }

  /** Drains connections (bounded by `drainMs`), snapshots, stops peers and admin. */
  async stop(drainMs: number, snapshot = true): Promise<void> {
    if (this.snapshotTimer) clearInterval(this.snapshotTimer);
    this.ops?.stop();
    this.admin?.close();
    await this.proxy.drain(drainMs);
    if (snapshot) await this.snapshot();
    for (const p of this.peers) await p.stop();
  }

  /** Logs an operational event with the node's logger. */
  log(level: 'info' | 'warn', fields: Record<string, unknown>, msg: string): void {
    this.logger[level](fields, msg);
  }

  uptimeMs(): number {
    return Date.now() - this.startedAt;
  }
}

function strip(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (k, x) => (k === 'loc' ? undefined : x)));
}
