/**
 * Assembles the data plane from a config: runtime backends (servers resolved, balancers built,
 * health checks registered) and one listener per frontend bind. Backend sets are built off the hot
 * path and swapped whole.
 */
import net from 'node:net';
import { Listener, PAUSE_BALANCE, type ConnectionHandler } from './listen/listener.js';
import { AcceptBalance } from './threads/accept-balance.js';
import { Admission, ProcessLimit, type FrontendConn } from './listen/admission.js';
import type { AcceptGate } from './listen/gate.js';
import { bindOn, takeOverListeners, type OpenListener } from './listen/bind.js';
import dns from 'node:dns/promises';
import type { Logger } from 'pino';
import {
  sharedWheel,
  StickmeshError,
  type BackendConfig,
  type FrontendConfig,
  type ServerConfig,
  type StickmeshConfig,
  type TimerWheel,
  type StickTable,
  buildTables,
  nextTurn,
  formatIssue,
  loadBindCertificates,
  type BindSslConfig,
  type TicketKeys,
} from '@stickmesh/core';
import { TlsBindRuntime } from './tls/contexts.js';
import { TlsHandshake } from './tls/accept.js';
import { localTicketKeys } from './tls/local-keys.js';
import type { TlsCounts } from './metrics.js';
import type tls from 'node:tls';
import { ClientConn, type HttpFrontendRuntime } from './http/client-conn.js';
import { errorPagesOf, type ErrorPages } from './http/responses.js';
import type { ForwardFor, HttpFrontendRules, HttpRoute } from './http/exchange.js';
import { TcpConn, type TcpFrontendRuntime, type TcpFrontendRules } from './tcp/tcp-conn.js';
import { compileConfigRules, type RulesPlan } from './rules/compile.js';
import { runRules, type Rule } from './rules/actions.js';
import { RuleStream } from './rules/stream.js';
import { plainIp } from './runtime/address.js';
import { metrics, type DenyCounts } from './metrics.js';
import { RuntimeBackend } from './runtime/backend.js';
import { RuntimeServer } from './runtime/server.js';
import { HealthChecker, type CheckHandle } from './health/checker.js';
import { checksOverTls, serverTlsFor, type ServerTls } from './tls/server-tls.js';
import { stickStoreRequest } from './runtime/stick.js';
import { decide } from './runtime/decide.js';
import { DnsResolverSection } from './discovery/resolver.js';
import { ServerDiscovery } from './discovery/discovery.js';
import { assignSlots, type Slot, type SlotTarget } from './discovery/slots.js';

export interface ProxyOptions {
  logger: Logger;
  wheel?: TimerWheel;
  /** Stick tables by id; built from the config (for node `node`) when absent. */
  tables?: ReadonlyMap<string, StickTable>;
  node?: string;
  /**
   * The session-ticket keys of `ssl` binds (the cluster's ring, shared by the peers mesh); a
   * per-process key when absent (sessions then resume on this node only).
   */
  ticketKeys?: TicketKeys;
  /**
   * Called with each backend once built (at start and on every reload), before it serves: the
   * node applies the servers' run-time admin state and weight there (see cli/src/server-states.ts),
   * so a reloaded backend never serves with its config values first.
   */
  prepareBackend?: (b: RuntimeBackend) => void;
  /**
   * The thread's part with `nbthread` > 1 (see `ProxyRole`); 'single' (default): one thread does
   * everything.
   */
  role?: ProxyRole;
  /**
   * Data-plane thread (`role` 'worker'): the node's shared per-thread connection counts
   * (threads/accept-balance.ts `acceptBalanceBuffer`) and this thread's slot in them; the thread
   * stops accepting while it holds clearly more than the least loaded thread.
   */
  acceptBalance?: { buffer: SharedArrayBuffer; index: number; nudge: (thread: number) => void };
}

/**
 * 'main': builds backends with health checks and discovery (for checks, explain and admin state),
 * binds every listener and hands its socket out to the data-plane threads (`handOut`), accepting
 * nothing itself from then on. 'worker': a data-plane thread: no health checks, no discovery,
 * listens on the descriptors the main thread gave it (`listenOn`).
 */
export type ProxyRole = 'single' | 'main' | 'worker';

/** A listening socket as one data-plane thread receives it: the bound address and its own descriptors. */
export interface ThreadBind {
  host: string;
  port: number;
  fds: number[];
}

/** One data-plane thread's descriptors, by `bindKey` of the frontend bind they serve. */
export type ThreadBinds = Record<string, ThreadBind>;

/** Names a frontend's bind line across threads: frontend name and index among its binds. */
export function bindKey(frontend: string, index: number): string {
  return `${frontend}#${index}`;
}

/**
 * The config as one of `threads` data-plane threads applies it: `maxconn` (global and per
 * frontend) is the node's, so each thread takes its share (rounded up; HAProxy counts them per
 * process, across threads). Returns a copy; `config` is unchanged.
 */
export function threadShare(config: StickmeshConfig, threads: number): StickmeshConfig {
  if (threads <= 1) return config;
  const share = (n: number) => (n > 0 ? Math.ceil(n / threads) : n);
  return {
    ...config,
    global: { ...config.global, maxconn: share(config.global.maxconn) },
    frontends: config.frontends.map((f) => ({ ...f, maxconn: share(f.maxconn) })),
  };
}

export interface BoundAddress {
  frontend: string;
  host: string;
  port: number;
}

/** The compiled rules a frontend shares with the connections it accepts. */
interface FrontendRulesBase {
  readonly own: { readonly tcpConnection: readonly Rule[] } | undefined;
  readonly counts: DenyCounts;
}

/**
 * What both frontend kinds share: config, backend, merged timeouts, listeners, connections under
 * `maxconn` (listen/admission.ts), and the TLS contexts of its `ssl` binds (tls/contexts.ts).
 */
abstract class FrontendBase<C extends FrontendConn> {
  readonly name: string;
  readonly backend: RuntimeBackend | undefined;
  readonly timeouts: FrontendConfig['timeouts'];
  readonly logger: Logger;
  readonly wheel: TimerWheel;
  readonly admission: Admission<C>;
  readonly conns: Set<C>;
  readonly listeners: Listener[];
  readonly cfg: FrontendConfig;
  /** Per bind (index of `cfg.binds`, as `listeners`): its TLS contexts, undefined for a plain bind. */
  private readonly tlsBinds: Array<TlsBindRuntime | undefined>;
  readonly tlsCounts: TlsCounts;

  constructor(cfg: FrontendConfig, backend: RuntimeBackend | undefined, logger: Logger, wheel: TimerWheel, limit: ProcessLimit, keys: TicketKeys) {
    this.cfg = cfg;
    const built = new Map<BindSslConfig, TlsBindRuntime>();
    this.tlsBinds = cfg.binds.map((b) => {
      if (!b.ssl) return undefined;
      let t = built.get(b.ssl);
      if (!t) built.set(b.ssl, (t = new TlsBindRuntime(b.ssl, cfg.mode === 'http', keys)));
      return t;
    });
    this.tlsCounts = metrics.tlsCounts(cfg.name);
    this.name = cfg.name;
    this.backend = backend;
    this.logger = logger;
    this.wheel = wheel;
    this.timeouts = mergedTimeouts(cfg, backend);
    this.admission = new Admission<C>(cfg.maxconn, limit, (socket, from) => this.admit(socket, from));
    this.conns = this.admission.conns;
    this.listeners = this.admission.listeners;
  }

  get draining(): boolean {
    return this.admission.draining;
  }

  set draining(v: boolean) {
    this.admission.draining = v;
  }

  /**
   * Starts serving a socket accepted by `from`: `tcp-request connection` rules, then on an `ssl`
   * bind the TLS handshake (tls/accept.ts), then the connection object (`serve`).
   */
  private admit(socket: net.Socket, from: Listener): void {
    const rules = this.rulesBase;
    let rs: RuleStream | null = null;
    if (rules !== undefined) {
      rs = this.accepted(socket, rules);
      if (rs === null) return;
    }
    const i = this.listeners.indexOf(from);
    const tb = i >= 0 ? this.tlsBinds[i] : undefined;
    if (tb === undefined) {
      this.serve(socket, rs, undefined);
      return;
    }
    new TlsHandshake(
      socket,
      tb,
      this,
      (t: tls.TLSSocket, sni: string | undefined) => {
        if (rs !== null) {
          rs.ssl = true;
          rs.sni = sni;
        }
        this.serve(t, rs, sni);
      },
      rs === null ? undefined : () => rs.endSession(),
    );
  }

  /** The frontend's rules as `admit` runs them (undefined: none, nothing allocated per connection). */
  protected abstract get rulesBase(): FrontendRulesBase | undefined;

  /** Creates the connection object for a client socket (it adds itself to `conns`). */
  protected abstract serve(socket: net.Socket, rs: RuleStream | null, sni: string | undefined): void;

  /** Stops the TLS contexts following the ticket keys (the frontend no longer accepts). */
  closeTls(): void {
    for (const t of new Set(this.tlsBinds)) t?.close();
  }

  get onConnection(): ConnectionHandler {
    return this.admission.onConnection;
  }

  /**
   * For a frontend with rules: the connection's RuleStream, after its `tcp-request connection`
   * rules ran; null (the socket reset and closed, no log line, as HAProxy) when one rejected it.
   */
  protected accepted(socket: net.Socket, rules: FrontendRulesBase): RuleStream | null {
    const rs = new RuleStream(plainIp(socket.remoteAddress), socket.remotePort ?? 0, this.name, () => ({ ip: plainIp(socket.localAddress), port: socket.localPort ?? 0 }));
    rs.backendName = this.name;
    const list = rules.own?.tcpConnection;
    if (list !== undefined && list.length > 0) {
      if (runRules(list, rs) !== null) {
        rules.counts.connections++;
        rs.endSession();
        socket.on('error', noop);
        socket.resetAndDestroy();
        return null;
      }
      rs.countSession();
    }
    return rs;
  }
}

function noop(): void {}

function forwardForOf(ff: FrontendConfig['forwardFor']): ForwardFor | undefined {
  if (!ff) return undefined;
  let except: net.BlockList | undefined;
  if (ff.except) {
    except = new net.BlockList();
    const [addr, bits] = ff.except.split('/');
    const family = addr!.includes(':') ? 'ipv6' : 'ipv4';
    except.addSubnet(addr!, bits ? Number(bits) : family === 'ipv6' ? 128 : 32, family);
  }
  return { header: ff.header, lower: ff.header.toLowerCase(), except, ifNone: ff.ifNone };
}

class HttpFrontend extends FrontendBase<FrontendConn> implements HttpFrontendRuntime {
  readonly route: HttpRoute | undefined;
  readonly rules: HttpFrontendRules | undefined;
  readonly errorPages: ErrorPages;

  constructor(
    cfg: FrontendConfig,
    backend: RuntimeBackend | undefined,
    logger: Logger,
    wheel: TimerWheel,
    limit: ProcessLimit,
    plan: RulesPlan,
    backends: ReadonlyMap<string, RuntimeBackend>,
    keys: TicketKeys,
  ) {
    super(cfg, backend, logger, wheel, limit, keys);
    this.errorPages = errorPagesOf(cfg.errorFiles);
    const routes = new Map<RuntimeBackend, HttpRoute>();
    const routeFor = (b: RuntimeBackend): HttpRoute => {
      let r = routes.get(b);
      if (!r) {
        r = {
          backend: b,
          timeouts: mergedTimeouts(cfg, b),
          forwardFor: forwardForOf(b.cfg.forwardFor ?? cfg.forwardFor),
          rules: plan.sameAs.get(b.name) === cfg.name ? undefined : plan.backends.get(b.name),
        };
        routes.set(b, r);
      }
      return r;
    };
    this.route = backend ? routeFor(backend) : undefined;
    const fp = plan.frontends.get(cfg.name);
    const useBackends = (fp?.useBackends ?? []).map((u) => ({ cond: u.cond, route: routeFor(backends.get(u.backend)!) }));
    let any = fp?.own !== undefined || useBackends.length > 0;
    for (const r of routes.values()) if (r.rules !== undefined) any = true;
    this.rules = any ? { own: fp?.own, useBackends, counts: metrics.denyCounts(cfg.name) } : undefined;
  }

  protected get rulesBase(): FrontendRulesBase | undefined {
    return this.rules;
  }

  protected serve(socket: net.Socket, rs: RuleStream | null, sni: string | undefined): void {
    new ClientConn(socket, this, rs, sni);
  }
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

class TcpFrontend extends FrontendBase<FrontendConn> implements TcpFrontendRuntime {
  readonly rules: TcpFrontendRules | undefined;

  constructor(cfg: FrontendConfig, backend: RuntimeBackend | undefined, logger: Logger, wheel: TimerWheel, limit: ProcessLimit, plan: RulesPlan, backends: ReadonlyMap<string, RuntimeBackend>, keys: TicketKeys) {
    super(cfg, backend, logger, wheel, limit, keys);
    const fp = plan.frontends.get(cfg.name);
    const useBackends = (fp?.useBackends ?? []).map((u) => ({ cond: u.cond, backend: backends.get(u.backend)! }));
    const backendRules = (b: RuntimeBackend | undefined) => (b === undefined || plan.sameAs.get(b.name) === cfg.name ? undefined : plan.backends.get(b.name));
    let any = fp?.own !== undefined || useBackends.length > 0 || backendRules(backend) !== undefined;
    for (const u of useBackends) if (backendRules(u.backend) !== undefined) any = true;
    this.rules = any ? { own: fp?.own, useBackends, counts: metrics.denyCounts(cfg.name), backendRules: (b) => backendRules(b)?.tcpContent } : undefined;
  }

  /** The server for a new connection: runtime/decide.ts (stick, stick-first, balance; no cookies in TCP). */
  pick(conn: TcpConn): RuntimeServer | undefined {
    const be = conn.backend;
    return be ? decide(be, conn, undefined, conn.stickState, conn) : undefined;
  }

  /** Stores the stick keys once the server is connected, so the table records the server used. */
  onConnected(conn: TcpConn, server: RuntimeServer): void {
    const be = conn.backend;
    if (be?.stick) stickStoreRequest(be.stick, conn.stickState, server);
  }

  protected get rulesBase(): FrontendRulesBase | undefined {
    return this.rules;
  }

  protected serve(socket: net.Socket, rs: RuleStream | null, sni: string | undefined): void {
    new TcpConn(socket, this, rs, sni);
  }
}

/** Servers set up between two yields to the event loop while a backend is built. */
const BUILD_CHUNK = 1000;
/**
 * First health checks per second a start or reload aims at: the first checks of N checked servers
 * are spread over N / FIRST_CHECKS_PER_SEC seconds (at least 1 s, at most each server's `inter`),
 * so 40,000 checked servers do not open 40,000 sockets in the first second.
 */
const FIRST_CHECKS_PER_SEC = 2000;

export class StickmeshProxy {
  config: StickmeshConfig;
  backends = new Map<string, RuntimeBackend>();
  readonly tables: ReadonlyMap<string, StickTable>;
  private frontends: Array<HttpFrontend | TcpFrontend> = [];
  /** Global `maxconn`: client connections of every frontend, retired ones included. */
  private readonly limit: ProcessLimit;
  /** Frontends replaced by a reload, kept until their connections are gone. */
  private retired: Array<HttpFrontend | TcpFrontend> = [];
  private readonly logger: Logger;
  private readonly wheel: TimerWheel;
  private readonly checker: HealthChecker;
  /** Server TLS contexts by setting (bound: one per distinct TLS setting of the config). */
  private readonly tlsContexts = new Map<string, ServerTls>();
  /** Health checks by server; one per checked server with an address. */
  private readonly checks = new Map<RuntimeServer, CheckHandle>();
  /** DNS clients by resolvers section name, created when a backend first uses one. */
  private readonly resolvers = new Map<string, DnsResolverSection>();
  /** One per server-template and per `server ... resolvers`; started by `listen`. */
  readonly discoveries: ServerDiscovery[] = [];
  /** Slots of the config this one replaces, by discovery name, so a reload keeps the addresses. */
  private previousSlots = new Map<string, readonly Slot[]>();
  /** Bound of the random delay before a server's first check (see FIRST_CHECKS_PER_SEC). */
  private readonly firstCheckSpreadMs: number;
  /** Session-ticket keys of every `ssl` bind. */
  private readonly ticketKeys: TicketKeys;
  private readonly prepareBackend: ((b: RuntimeBackend) => void) | undefined;
  readonly role: ProxyRole;
  /**
   * Main thread: listeners a reload bound and handed out, by bind key, until `takeHandedOut`
   * passes their descriptors on (bound: one per bind line of the config).
   */
  private handedOut = new Map<string, { listener: Listener; perThread: number[][] }>();
  /** Data-plane thread with `nbthread`: spreads the node's connections over the threads. */
  readonly balance: AcceptBalance | undefined;

  private constructor(config: StickmeshConfig, opts: ProxyOptions) {
    this.config = config;
    this.logger = opts.logger;
    this.wheel = opts.wheel ?? sharedWheel;
    this.checker = new HealthChecker(this.wheel);
    let checked = 0;
    for (const b of config.backends) {
      for (const s of b.servers) if (s.check) checked++;
      for (const t of b.serverTemplates) if (t.template.check) checked += t.count;
    }
    this.firstCheckSpreadMs = Math.max(1000, Math.ceil((checked * 1000) / FIRST_CHECKS_PER_SEC));
    this.tables = opts.tables ?? buildTables(config, opts.node ?? config.global.localPeer ?? 'local');
    this.limit = new ProcessLimit(config.global.maxconn);
    this.ticketKeys = opts.ticketKeys ?? localTicketKeys;
    this.prepareBackend = opts.prepareBackend;
    this.role = opts.role ?? 'single';
    if (opts.acceptBalance) {
      const balance = new AcceptBalance(opts.acceptBalance.buffer, opts.acceptBalance.index, this.onBalance, opts.acceptBalance.nudge);
      this.balance = balance;
      this.limit.onCount = (n) => balance.set(n);
    }
  }

  /** AcceptBalance's `apply`: pauses or resumes every listener of this thread for PAUSE_BALANCE. */
  private readonly onBalance = (pause: boolean): void => {
    for (const fe of this.frontends) for (const l of fe.listeners) if (pause) l.pause(PAUSE_BALANCE); else l.resume(PAUSE_BALANCE);
  };

  /**
   * The result of the last completed health check of `s` (status and detail, e.g. `L7OK 200` or
   * `L4CON ECONNREFUSED`), '' before its first check or when it has none. Unlike
   * `lastCheckStatus`, set only on an UP/DOWN transition, it follows every check.
   */
  lastCheck(s: RuntimeServer): string {
    return this.checks.get(s)?.lastReason ?? '';
  }

  /** Builds the runtime (resolving server host names once with the system resolver). */
  static async create(config: StickmeshConfig, opts: ProxyOptions): Promise<StickmeshProxy> {
    loadCertificates(config);
    const p = new StickmeshProxy(config, opts);
    // Rules first: a RuleCompileError (file:line) stops the start before anything is built.
    const plan = compileConfigRules(config, p.tables);
    for (const b of config.backends) p.backends.set(b.name, await p.buildBackend(b));
    if (opts.prepareBackend) for (const b of p.backends.values()) opts.prepareBackend(b);
    for (const f of config.frontends) p.frontends.push(p.buildFrontend(f, plan, p.limit));
    p.limit.serving = p.frontends.map((f) => f.admission);
    return p;
  }

  private buildFrontend(f: FrontendConfig, plan: RulesPlan, limit: ProcessLimit): HttpFrontend | TcpFrontend {
    const be = f.defaultBackend ? this.backends.get(f.defaultBackend) : undefined;
    return f.mode === 'tcp'
      ? new TcpFrontend(f, be, this.logger, this.wheel, limit, plan, this.backends, this.ticketKeys)
      : new HttpFrontend(f, be, this.logger, this.wheel, limit, plan, this.backends, this.ticketKeys);
  }

  private async buildBackend(cfg: BackendConfig): Promise<RuntimeBackend> {
    const servers: RuntimeServer[] = [];
    /** Discoveries of this backend: their servers (slot i = servers[i]) and initial slots. */
    const pending: Array<{ name: string; fqdn: string; port: number; weight: number; resolvers: string; servers: RuntimeServer[]; slots: Slot[] }> = [];
    let built = 0;
    for (const sc of cfg.servers) {
      // Thousands of servers take a while to set up: let the running config serve in between.
      if (++built % BUILD_CHUNK === 0) await nextTurn();
      if (sc.resolvers !== undefined) {
        const slots = await this.initialSlots(`${cfg.name}/${sc.name}`, 1, sc.host, sc.port, sc.weight, sc.initAddr ?? ['last', 'libc'], sc);
        const s = new RuntimeServer(servers.length, sc, slots[0]!.target?.address ?? '', false, this.serverTls(sc, cfg.mode));
        servers.push(s);
        // A data-plane thread follows the main thread's discovery instead of running its own.
        if (this.role !== 'worker') pending.push({ name: `${cfg.name}/${sc.name}`, fqdn: sc.host, port: sc.port, weight: sc.weight, resolvers: sc.resolvers, servers: [s], slots });
        continue;
      }
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
      servers.push(new RuntimeServer(servers.length, sc, address, false, this.serverTls(sc, cfg.mode)));
    }
    for (const t of cfg.serverTemplates) {
      const name = `${cfg.name}/${t.prefix}`;
      const slots = await this.initialSlots(name, t.count, t.fqdn, t.port, t.template.weight, t.initAddr, t);
      const slotServers: RuntimeServer[] = [];
      for (let i = 0; i < t.count; i++) {
        // HAProxy numbers template servers PREFIX1..PREFIXN.
        const sc: ServerConfig = { ...t.template, name: `${t.prefix}${i + 1}`, host: t.fqdn, port: t.port, loc: t.loc };
        const s = new RuntimeServer(servers.length, sc, slots[i]!.target?.address ?? '', true, this.serverTls(sc, cfg.mode));
        s.setTarget(slots[i]!.target);
        servers.push(s);
        slotServers.push(s);
      }
      if (t.resolvers !== undefined && this.role !== 'worker') pending.push({ name, fqdn: t.fqdn, port: t.port, weight: t.template.weight, resolvers: t.resolvers, servers: slotServers, slots });
    }
    const backend = new RuntimeBackend(cfg, servers, this.tables);
    for (const s of servers) {
      if (++built % BUILD_CHUNK === 0) await nextTurn();
      this.addCheck(backend, s);
    }
    for (const d of pending) {
      const section = this.resolverSection(d.resolvers);
      this.discoveries.push(
        new ServerDiscovery({
          name: d.name,
          fqdn: d.fqdn,
          port: d.port,
          weight: d.weight,
          resolver: section,
          wheel: this.wheel,
          slots: d.slots,
          onChange: (changed, slots) => {
            for (const i of changed) {
              const s = d.servers[i]!;
              const before = s.address === '' ? 'none' : s.addrKey;
              s.setTarget(slots[i]!.target);
              backend.refreshCookie(s);
              s.dropIdle();
              this.addCheck(backend, s);
              this.logger.info(
                { backend: cfg.name, server: s.name, from: before, to: s.address === '' ? 'none' : s.addrKey, weight: s.weight },
                `server ${cfg.name}/${s.name} address ${before} -> ${s.address === '' ? 'none' : s.addrKey}`,
              );
            }
            backend.addressesChanged();
          },
          onError: (a) => this.logger.warn({ backend: cfg.name, discovery: d.name, status: a.status, detail: a.detail }, `DNS resolution of ${d.fqdn} failed: ${a.status}`),
          onIgnored: (a) =>
            this.logger.warn(
              { backend: cfg.name, discovery: d.name, ignored: a.ignored?.count ?? 0, records: a.ignored?.notes ?? [] },
              `DNS answer for ${d.fqdn}: ${a.ignored?.count ?? 0} record(s) ignored`,
            ),
        }),
      );
    }
    return backend;
  }

  private resolverSection(name: string): DnsResolverSection {
    let r = this.resolvers.get(name);
    if (!r) {
      const cfg = this.config.resolvers.find((x) => x.name === name);
      if (!cfg) throw new StickmeshError('SM_CONFIG', `resolvers section '${name}' does not exist`);
      r = new DnsResolverSection(cfg);
      this.resolvers.set(name, r);
    }
    return r;
  }

  /**
   * First addresses of a discovered server set: the slots of the config this one replaces when it
   * had the same count, else `init-addr` methods in order (`libc`: the system resolver; `none`:
   * start empty; an IP literal; `last` has no state file here and is skipped). Throws when every
   * method failed, as HAProxy refuses to start.
   */
  private async initialSlots(
    name: string,
    count: number,
    fqdn: string,
    port: number,
    weight: number,
    methods: readonly string[],
    at: { loc: { file: string; line: number } },
  ): Promise<Slot[]> {
    const prev = this.previousSlots.get(name);
    if (prev && prev.length === count) return prev.map((x) => ({ target: x.target, obsoleteSince: x.obsoleteSince }));
    const slots: Slot[] = Array.from({ length: count }, () => ({ target: undefined, obsoleteSince: 0 }));
    const errors: string[] = [];
    for (const m of methods) {
      let targets: SlotTarget[] | undefined;
      if (m === 'none') targets = [];
      else if (net.isIP(m) !== 0) targets = [{ address: m, port, weight }];
      else if (m === 'libc' && !fqdn.startsWith('_')) {
        try {
          const found = await dns.lookup(fqdn, { all: true });
          targets = found.map((f) => ({ address: f.address, port, weight }));
        } catch (err) {
          errors.push(`libc: ${(err as Error).message}`);
        }
      }
      if (targets !== undefined) {
        assignSlots(slots, targets, Date.now(), 0);
        return slots;
      }
    }
    throw new StickmeshError(
      'SM_RESOLVE',
      `${at.loc.file}:${at.loc.line}: '${name}': no init-addr method (${methods.join(',')}) gave an address${errors.length ? `: ${errors.join('; ')}` : ''}`,
    );
  }

  /** The TLS of server `sc` for traffic and for checks (tls/server-tls.ts), shared by equal settings. */
  private serverTls(sc: ServerConfig, mode: 'http' | 'tcp'): { traffic: ServerTls | undefined; checks: ServerTls | undefined } {
    const t = serverTlsFor(sc, mode, this.tlsContexts);
    return { traffic: sc.ssl === true ? t : undefined, checks: checksOverTls(sc) ? t : undefined };
  }

  /** (Re)registers the health check of `s` at its current address; a slot without address has none. */
  private addCheck(backend: RuntimeBackend, s: RuntimeServer): void {
    this.checks.get(s)?.remove();
    this.checks.delete(s);
    s.checkUp = true;
    // A data-plane thread runs no checks: the main thread's decide for the node.
    if (!s.cfg.check || s.address === '' || this.role === 'worker') return;
    const cfg = backend.cfg;
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
      firstSpreadMs: this.firstCheckSpreadMs,
      connectTimeoutMs: cfg.timeouts.connect,
      http: cfg.httpCheck,
      ...(s.checkTls !== undefined ? { tls: s.checkTls } : {}),
      onChange: (up: boolean, reason: string) => {
        s.checkUp = up;
        s.lastCheckStatus = reason;
        if (!up) s.dropIdle();
        backend.rebuildSoon();
        this.logger.warn({ backend: cfg.name, server: s.name, up, reason }, `server ${cfg.name}/${s.name} is ${up ? 'UP' : 'DOWN'}`);
      },
    });
    this.checks.set(s, handle);
  }

  /** Starts every listener with its `tune.maxaccept` descriptors; resolves once all are bound. */
  async listen(): Promise<void> {
    await this.bind();
    await this.spread();
  }

  /**
   * Binds every frontend address (one descriptor each) and starts timers and discovery. With
   * `gate`, nothing is served until the gate opens (all-or-nothing start, listen/gate.ts). On a
   * failure the listeners already bound stay open for the caller to close (`close` or `drain`).
   */
  async bind(gate?: AcceptGate): Promise<void> {
    this.wheel.start();
    for (const d of this.discoveries) d.start();
    for (const fe of this.frontends) {
      for (const b of fe.cfg.binds) fe.listeners.push(await bindOn(fe, b, gate));
    }
  }

  /** Gives every bound listener its `tune.maxaccept` descriptors (listen/listener.ts), attached to `gate`. */
  async spread(gate?: AcceptGate): Promise<void> {
    for (const fe of this.frontends) for (const l of fe.listeners) await l.spread(this.config.global.maxAccept, gate);
  }

  /**
   * Main thread (`role` 'main'): hands every bound listener out to `threads` data-plane threads
   * (listen/listener.ts `handOut`: `tune.maxaccept` descriptors per thread, this thread's own
   * closed). Answers each thread's descriptors. Call after `bind`, instead of `spread`.
   */
  async handOut(threads: number): Promise<ThreadBinds[]> {
    const out: ThreadBinds[] = Array.from({ length: threads }, () => ({}));
    for (const fe of this.frontends) {
      for (const [i, l] of fe.listeners.entries()) {
        const per = await l.handOut(threads, this.config.global.maxAccept);
        per.forEach((fds, t) => (out[t]![bindKey(fe.name, i)] = { host: l.host, port: l.port, fds }));
      }
    }
    return out;
  }

  /** Main thread, start failed before the threads took their descriptors: closes them. */
  reclaimHandedOut(): void {
    for (const fe of this.frontends) for (const l of fe.listeners) l.reclaim();
  }

  /**
   * Data-plane thread (`role` 'worker'): listens on the descriptors the main thread handed out,
   * one listener per frontend bind, held by `gate` until it opens; starts the timers.
   */
  async listenOn(binds: ThreadBinds, gate?: AcceptGate): Promise<void> {
    this.wheel.start();
    for (const fe of this.frontends) {
      for (const [i, b] of fe.cfg.binds.entries()) fe.listeners.push(await this.listenerFrom(binds, fe, b, i, gate));
    }
    this.balance?.start();
  }

  private async listenerFrom(binds: ThreadBinds, fe: HttpFrontend | TcpFrontend, b: FrontendConfig['binds'][number], i: number, gate?: AcceptGate): Promise<Listener> {
    const given = binds[bindKey(fe.name, i)];
    if (!given) throw new StickmeshError('SM_BIND', `${b.loc.file}:${b.loc.line}: 'bind': no descriptor from the main thread for ${b.host || '*'}:${b.port}`);
    try {
      return await Listener.fromFds(given.host, given.port, given.fds, fe.onConnection, gate);
    } catch (err) {
      throw new StickmeshError('SM_BIND', `${b.loc.file}:${b.loc.line}: 'bind': cannot listen on ${b.host || '*'}:${b.port} in this thread: ${(err as Error).message}`);
    }
  }

  /**
   * Main thread: the descriptors of the listeners the last reload opened, per thread (what each
   * thread's `reload` needs as `binds`); empty afterwards.
   */
  takeHandedOut(threads: number): ThreadBinds[] {
    const out: ThreadBinds[] = Array.from({ length: threads }, () => ({}));
    for (const [key, h] of this.handedOut) h.perThread.forEach((fds, t) => (out[t]![key] = { host: h.listener.host, port: h.listener.port, fds }));
    this.handedOut.clear();
    return out;
  }

  addresses(): BoundAddress[] {
    const out: BoundAddress[] = [];
    for (const fe of this.frontends) for (const l of fe.listeners) out.push({ frontend: fe.name, host: l.host, port: l.port });
    return out;
  }

  /** Connections accepted and waiting for a `maxconn` slot, across frontends. */
  waitingCount(): number {
    let n = 0;
    for (const fe of this.frontends) n += fe.admission.waiting;
    return n;
  }

  /** Number of open client connections across frontends (including ones retired by a reload). */
  connectionCount(): number {
    let n = 0;
    for (const fe of this.frontends) n += fe.conns.size;
    for (const fe of this.retired) n += fe.conns.size;
    return n;
  }

  /**
   * Applies a new config without dropping connections or tables: backends and frontends are rebuilt
   * off to the side and swapped whole; a listener whose address is unchanged is kept (its accept
   * handler moves to the new frontend), others are closed or opened. Connections already open
   * finish their current exchange on the old objects and then close (keep-alive ends), so clients
   * reconnect into the new config. `tables` must be the same map (or a superset) the proxy uses.
   * On error nothing changes.
   */
  async reload(config: StickmeshConfig, tables: ReadonlyMap<string, StickTable>, binds?: ThreadBinds): Promise<void> {
    loadCertificates(config);
    const next = new StickmeshProxy(config, { logger: this.logger, wheel: this.wheel, tables, ticketKeys: this.ticketKeys, role: this.role, ...(this.prepareBackend ? { prepareBackend: this.prepareBackend } : {}) });
    // Compiled off to the side and swapped with the frontends; an error leaves the running config.
    const plan = compileConfigRules(config, tables);
    next.previousSlots = new Map(this.discoveries.map((d) => [d.opts.name, d.slots]));
    for (const b of config.backends) next.backends.set(b.name, await next.buildBackend(b));
    if (this.prepareBackend) for (const b of next.backends.values()) this.prepareBackend(b);
    for (const f of config.frontends) next.frontends.push(next.buildFrontend(f, plan, this.limit));
    let keptFor: Map<Listener, HttpFrontend | TcpFrontend>;
    try {
      keptFor = await takeOverListeners(this.frontends, next.frontends, this.openFor(config, binds));
    } catch (err) {
      // Descriptors handed out by a reload that failed reached no thread: they are this thread's to close.
      for (const h of this.handedOut.values()) h.listener.reclaim();
      this.handedOut.clear();
      for (const h of next.checks.values()) h.remove();
      for (const fe of next.frontends) fe.closeTls();
      throw err;
    }
    for (const fe of this.frontends) {
      fe.closeTls();
      const heir = heirOf(fe, keptFor);
      for (const l of fe.listeners) if (!keptFor.has(l)) l.close();
      fe.listeners.length = 0;
      fe.draining = true;
      // TLS connections stay open on the HTTP frontend that now has their listeners: a kept-alive
      // client keeps its session (no new handshake); its next request runs the new config. The
      // others finish their exchange and close, as before (reconnecting costs them little).
      for (const c of fe.conns) if (!(heir !== undefined && c instanceof ClientConn && c.tls && c.moveTo(heir))) c.drain();
      // Sockets waiting for a slot go to the frontend that now has their listener; a closed
      // listener's are closed, as its backlog is.
      for (const h of fe.admission.takeHeld()) {
        const owner = keptFor.get(h.from);
        if (owner) owner.onConnection(h.socket, h.from);
        else h.socket.destroy();
      }
      if (fe.conns.size > 0) this.retired.push(fe);
    }
    // A listener the old frontend paused when full serves the new one, which has a free slot.
    for (const l of keptFor.keys()) l.resume();
    for (const h of this.checks.values()) h.remove();
    this.checks.clear();
    for (const [s, h] of next.checks) this.checks.set(s, h);
    for (const d of this.discoveries) d.stop();
    this.discoveries.length = 0;
    this.discoveries.push(...next.discoveries);
    for (const d of this.discoveries) d.start();
    for (const b of this.backends.values()) for (const s of b.servers) s.dropIdle();
    this.config = config;
    this.backends = next.backends;
    this.frontends = next.frontends;
    this.limit.max = config.global.maxconn;
    this.limit.serving = this.frontends.map((f) => f.admission);
    this.retired = this.retired.filter((fe) => fe.conns.size > 0);
    for (const l of keptFor.keys()) await l.resize(config.global.maxAccept);
  }

  /**
   * How a reload opens a new bind: 'single' binds with `tune.maxaccept` descriptors; 'main' binds
   * and hands the socket out (kept in `handedOut` for `takeHandedOut`); 'worker' listens on the
   * descriptors of `binds`.
   */
  private openFor(config: StickmeshConfig, binds: ThreadBinds | undefined): number | OpenListener<HttpFrontend | TcpFrontend> {
    if (this.role === 'worker') return (fe, b, i) => this.listenerFrom(binds ?? {}, fe, b, i);
    if (this.role !== 'main') return config.global.maxAccept;
    const threads = config.global.nbthread;
    return async (fe, b, i) => {
      const l = await bindOn(fe, b);
      try {
        this.handedOut.set(bindKey(fe.cfg.name, i), { listener: l, perThread: await l.handOut(threads, config.global.maxAccept) });
      } catch (err) {
        l.close();
        throw new StickmeshError('SM_BIND', `${b.loc.file}:${b.loc.line}: 'bind': ${b.host || '*'}:${b.port}: ${(err as Error).message}`);
      }
      return l;
    };
  }

  /**
   * Stops accepting, lets in-flight exchanges finish (idle keep-alive connections close at once),
   * and resolves when every connection closed or `timeoutMs` passed (the rest are then cut).
   */
  async drain(timeoutMs: number): Promise<void> {
    this.balance?.stop();
    const all = [...this.frontends, ...this.retired];
    for (const fe of all) {
      fe.draining = true;
      for (const l of fe.listeners) l.close();
      for (const h of fe.admission.takeHeld()) h.socket.destroy();
      for (const c of fe.conns) c.drain();
    }
    const deadline = Date.now() + timeoutMs;
    while (this.connectionCount() > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const fe of all) for (const c of fe.conns) c.destroy();
    this.close();
  }

  /** Releases timers, checks and idle connections. */
  close(): void {
    this.balance?.stop();
    for (const h of this.checks.values()) h.remove();
    this.checks.clear();
    for (const d of this.discoveries) d.stop();
    for (const fe of this.frontends) {
      fe.closeTls();
      for (const l of fe.listeners) l.close();
      for (const h of fe.admission.takeHeld()) h.socket.destroy();
    }
    for (const b of this.backends.values()) for (const s of b.servers) s.dropIdle();
  }
}

/**
 * The HTTP frontend of the new config that took over every listener of `fe`, an HTTP frontend
 * too; undefined otherwise (its connections are then drained).
 */
function heirOf(fe: HttpFrontend | TcpFrontend, keptFor: ReadonlyMap<Listener, HttpFrontend | TcpFrontend>): HttpFrontend | undefined {
  if (!(fe instanceof HttpFrontend) || fe.listeners.length === 0) return undefined;
  const heir = keptFor.get(fe.listeners[0]!);
  if (!(heir instanceof HttpFrontend)) return undefined;
  for (const l of fe.listeners) if (keptFor.get(l) !== heir) return undefined;
  return heir;
}

/**
 * Reads the certificates of `ssl` binds a config does not carry yet (one parsed from text rather
 * than loaded from a file, see core/config/load.ts); a problem stops the start or reload with the
 * file named at the bind's line.
 */
function loadCertificates(config: StickmeshConfig): void {
  if (!config.frontends.some((f) => f.binds.some((b) => b.ssl !== undefined && b.ssl.certs.length === 0))) return;
  const issues = loadBindCertificates(config);
  if (issues.length > 0) throw new StickmeshError('SM_CONFIG_INVALID', issues.map(formatIssue).join('\n'));
}
