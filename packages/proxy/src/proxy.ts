/**
 * Assembles the data plane from a config: runtime backends (servers resolved, balancers built,
 * health checks registered) and one listener per frontend bind. Backend sets are built off the hot
 * path and swapped whole.
 */
import net from 'node:net';
import dns from 'node:dns/promises';
import type { Logger } from 'pino';
import {
  sharedWheel,
  StickmeshError,
  type BackendConfig,
  type FrontendConfig,
  type StickmeshConfig,
  type TimerWheel,
} from '@stickmesh/core';
import { hashAddress } from '@stickmesh/core';
import { ClientConn, type HttpFrontendRuntime } from './http/client-conn.js';
import { TcpConn, type TcpFrontendRuntime } from './tcp/tcp-conn.js';
import { RuntimeBackend } from './runtime/backend.js';
import { RuntimeServer } from './runtime/server.js';
import { HealthChecker, type CheckHandle } from './health/checker.js';

export interface ProxyOptions {
  logger: Logger;
  wheel?: TimerWheel;
}

export interface BoundAddress {
  frontend: string;
  host: string;
  port: number;
}

class HttpFrontend implements HttpFrontendRuntime {
  readonly name: string;
  readonly backend: RuntimeBackend | undefined;
  readonly timeouts: HttpFrontendRuntime['timeouts'];
  readonly forwardFor: HttpFrontendRuntime['forwardFor'];
  readonly logger: Logger;
  readonly wheel: TimerWheel;
  readonly conns = new Set<ClientConn>();
  draining = false;
  readonly servers: net.Server[] = [];
  readonly cfg: FrontendConfig;

  constructor(cfg: FrontendConfig, backend: RuntimeBackend | undefined, logger: Logger, wheel: TimerWheel) {
    this.cfg = cfg;
    this.name = cfg.name;
    this.backend = backend;
    this.logger = logger;
    this.wheel = wheel;
    this.timeouts = mergedTimeouts(cfg, backend);
    const ff = backend?.cfg.forwardFor ?? cfg.forwardFor;
    if (ff) {
      let except: net.BlockList | undefined;
      if (ff.except) {
        except = new net.BlockList();
        const [addr, bits] = ff.except.split('/');
        const family = addr!.includes(':') ? 'ipv6' : 'ipv4';
        except.addSubnet(addr!, bits ? Number(bits) : family === 'ipv6' ? 128 : 32, family);
      }
      this.forwardFor = { header: ff.header, except, ifNone: ff.ifNone };
    } else {
      this.forwardFor = undefined;
    }
  }

  readonly onConnection = (socket: net.Socket): void => {
    new ClientConn(socket, this);
  };
}

/** Merges frontend (client side) and backend (server side) timeouts as HAProxy does. */
function mergedTimeouts(cfg: FrontendConfig, backend: RuntimeBackend | undefined): FrontendConfig['timeouts'] {
  const bt = backend?.cfg.timeouts;
  return {
    ...cfg.timeouts,
    connect: bt?.connect ?? cfg.timeouts.connect,
    server: bt?.server ?? cfg.timeouts.server,
    tunnel: bt?.tunnel ?? cfg.timeouts.tunnel,
    check: bt?.check ?? cfg.timeouts.check,
  };
}

class TcpFrontend implements TcpFrontendRuntime {
  readonly name: string;
  readonly backend: RuntimeBackend | undefined;
  readonly timeouts: TcpFrontendRuntime['timeouts'];
  readonly logger: Logger;
  readonly wheel: TimerWheel;
  readonly conns = new Set<TcpConn>();
  draining = false;
  readonly servers: net.Server[] = [];
  readonly cfg: FrontendConfig;

  constructor(cfg: FrontendConfig, backend: RuntimeBackend | undefined, logger: Logger, wheel: TimerWheel) {
    this.cfg = cfg;
    this.name = cfg.name;
    this.backend = backend;
    this.logger = logger;
    this.wheel = wheel;
    this.timeouts = mergedTimeouts(cfg, backend);
  }

  pick(conn: TcpConn, exclude?: RuntimeServer): RuntimeServer | undefined {
    const be = this.backend;
    if (!be) return undefined;
    conn.decidedBy = conn.decidedBy || 'balance';
    return be.pick(be.hashesSource ? hashAddress(conn.clientIp) : 0, exclude);
  }

  readonly onConnection = (socket: net.Socket): void => {
    new TcpConn(socket, this);
  };
}

export class StickmeshProxy {
  readonly config: StickmeshConfig;
  readonly backends = new Map<string, RuntimeBackend>();
  private readonly frontends: Array<HttpFrontend | TcpFrontend> = [];
  private readonly logger: Logger;
  private readonly wheel: TimerWheel;
  private readonly checker: HealthChecker;
  private readonly checks: CheckHandle[] = [];

  private constructor(config: StickmeshConfig, opts: ProxyOptions) {
    this.config = config;
    this.logger = opts.logger;
    this.wheel = opts.wheel ?? sharedWheel;
    this.checker = new HealthChecker(this.wheel);
  }

  /** Builds the runtime (resolving server host names once with the system resolver). */
  static async create(config: StickmeshConfig, opts: ProxyOptions): Promise<StickmeshProxy> {
    const p = new StickmeshProxy(config, opts);
    for (const b of config.backends) p.backends.set(b.name, await p.buildBackend(b));
    for (const f of config.frontends) {
      const be = f.defaultBackend ? p.backends.get(f.defaultBackend) : undefined;
      p.frontends.push(f.mode === 'tcp' ? new TcpFrontend(f, be, p.logger, p.wheel) : new HttpFrontend(f, be, p.logger, p.wheel));
    }
    return p;
  }

  private async buildBackend(cfg: BackendConfig): Promise<RuntimeBackend> {
    const servers: RuntimeServer[] = [];
    for (let i = 0; i < cfg.servers.length; i++) {
      const sc = cfg.servers[i]!;
      let address = sc.host;
      if (net.isIP(address) === 0) {
        try {
          address = (await dns.lookup(sc.host)).address;
        } catch (err) {
          throw new StickmeshError(
            'SM_RESOLVE',
            `${sc.loc.file}:${sc.loc.line}: 'server ${sc.name}': cannot resolve '${sc.host}': ${(err as Error).message}`,
          );
        }
      }
      servers.push(new RuntimeServer(i, sc, address));
    }
    const backend = new RuntimeBackend(cfg, servers);
    for (const s of servers) {
      if (!s.cfg.check) continue;
      const handle = this.checker.add({
        name: `${cfg.name}/${s.name}`,
        host: s.address,
        port: s.cfg.checkPort ?? s.port,
        inter: s.cfg.inter,
        fastinter: s.cfg.fastinter,
        downinter: s.cfg.downinter,
        rise: s.cfg.rise,
        fall: s.cfg.fall,
        timeoutMs: cfg.timeouts.check > 0 ? cfg.timeouts.check : s.cfg.inter,
        connectTimeoutMs: cfg.timeouts.connect,
        http: cfg.httpCheck,
        onChange: (up: boolean, reason: string) => {
          s.checkUp = up;
          s.lastCheckStatus = reason;
          if (!up) s.dropIdle();
          backend.rebuild();
          this.logger.warn({ backend: cfg.name, server: s.name, up, reason }, `server ${cfg.name}/${s.name} is ${up ? 'UP' : 'DOWN'}`);
        },
      });
      this.checks.push(handle);
    }
    return backend;
  }

  /** Starts every listener; resolves once all are bound. */
  async listen(): Promise<void> {
    this.wheel.start();
    for (const fe of this.frontends) {
      for (const b of fe.cfg.binds) {
        const srv = net.createServer({ allowHalfOpen: true, noDelay: true }, fe.onConnection);
        srv.maxConnections = fe.cfg.maxconn;
        const host = b.host === '' || b.host === '*' ? undefined : b.host;
        await new Promise<void>((resolve, reject) => {
          srv.once('error', (err) =>
            reject(new StickmeshError('SM_BIND', `${b.loc.file}:${b.loc.line}: 'bind': cannot listen on ${b.host || '*'}:${b.port}: ${err.message}`)),
          );
          srv.listen({ host, port: b.port }, () => resolve());
        });
        fe.servers.push(srv);
      }
    }
  }

  addresses(): BoundAddress[] {
    const out: BoundAddress[] = [];
    for (const fe of this.frontends) {
      for (const s of fe.servers) {
        const a = s.address();
        if (a && typeof a === 'object') out.push({ frontend: fe.name, host: a.address, port: a.port });
      }
    }
    return out;
  }

  /** Number of open client connections across frontends. */
  connectionCount(): number {
    let n = 0;
    for (const fe of this.frontends) n += fe.conns.size;
    return n;
  }

  /**
   * Stops accepting, lets in-flight exchanges finish (idle keep-alive connections close at once),
   * and resolves when every connection closed or `timeoutMs` passed (the rest are then cut).
   */
  async drain(timeoutMs: number): Promise<void> {
    for (const fe of this.frontends) {
      fe.draining = true;
      for (const s of fe.servers) s.close();
      for (const c of fe.conns) c.drain();
    }
    const deadline = Date.now() + timeoutMs;
    while (this.connectionCount() > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const fe of this.frontends) for (const c of fe.conns) c.destroy();
    this.close();
  }

  /** Releases timers, checks and idle connections. */
  close(): void {
    for (const h of this.checks) h.remove();
    this.checks.length = 0;
    for (const fe of this.frontends) for (const s of fe.servers) s.close();
    for (const b of this.backends.values()) for (const s of b.servers) s.dropIdle();
  }
}
