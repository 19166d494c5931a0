/**
 * PeersService: the full-mesh replication endpoint of one node. ONE session per pair of nodes: the
 * node whose name sorts lower dials, the other accepts (an inbound dial from a higher name is refused
 * as 'wrong-direction'), so there is never a duplicate session to arbitrate. Each session carries all
 * tables.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import type { Logger } from 'pino';
import { StickmeshError, TimerWheel, type WheelTask } from '@stickmesh/core';
import { backoffMs } from './backoff.js';
import { AE_BUCKETS, CAP_ANTI_ENTROPY, PEERS_PATH, type TableSchema } from './codec.js';
import { CLOSE_GOING_AWAY, CLOSE_REPLACED, Conn, type ConnHost } from './conn.js';
import { schemaOf } from './handshake.js';
import type { AntiEntropyLimits, LinkStats, RecvCursor, SessionHost, SessionLimits } from './session.js';
import type { AntiEntropyStats, PeerState, PeerStatus, PeersServiceOptions, ReadyResult, ReplicatedTable } from './types.js';

/** Everything we know about one configured remote peer; outlives its connections. */
class Link {
  readonly dialer: boolean;
  conn: Conn | undefined;
  idleState: PeerState = 'connecting';
  lastError: string | undefined;
  attempt = 0;
  /** When this (dialing) side last honoured a knock from the peer. */
  lastKnockAt = 0;
  readonly recv = new Map<string, RecvCursor>();
  readonly stats: LinkStats = {
    sent: 0, received: 0, lagMs: 0, resyncsSent: 0, resyncsReceived: 0, bytesSent: 0, bytesReceived: 0, lastAckAt: 0, sessions: 0,
    aeRounds: 0, bucketsCompared: 0, bucketsRepaired: 0, entriesRepaired: 0, repairSent: 0,
  };
  /** Refusals/drops concerning this peer, by reason. */
  readonly refusals: Record<string, number> = {};
  readonly reconnect: WheelTask;

  constructor(readonly name: string, readonly host: string, readonly port: number, self: string, redial: (l: Link) => void) {
    this.dialer = self < name;
    this.reconnect = { run: () => redial(this) };
  }

  get state(): PeerState {
    const c = this.conn;
    if (!c || c.phase === 'closed') return this.idleState;
    if (c.phase === 'session') return c.session!.state;
    return c.phase === 'connecting' ? 'connecting' : 'handshake';
  }
}

/** At most one knock per peer is honoured in this interval (a knock can only advance a dial). */
export const KNOCK_MIN_INTERVAL_MS = 500;

export interface RefusalEvent {
  peer: string;
  reason: string;
  detail: string;
  side: 'local' | 'remote';
}

export class PeersService extends EventEmitter implements ConnHost {
  readonly node: string;
  readonly cluster: string;
  readonly secret: string;
  readonly schema: TableSchema[];
  readonly peerNames: ReadonlySet<string>;
  readonly handshakeTimeoutMs: number;
  readonly heartbeatMs: number;
  readonly deadAfterMs: number;
  readonly caps: string[];
  /** Refusals/drops by reason since creation (local and remote decisions). */
  readonly refusals: Record<string, number> = {};
  /** Readiness gate, see readiness(). */
  readonly ready: Promise<ReadyResult>;

  private readonly opts: PeersServiceOptions;
  private readonly logger: Logger;
  private readonly tables = new Map<string, ReplicatedTable>();
  private readonly links = new Map<string, Link>();
  private readonly conns = new Set<Conn>();
  private readonly rawSockets = new Set<Duplex>();
  private readonly limits: SessionLimits;
  private readonly flushMs: number;
  private readonly maxUnauthenticated: number;
  /** Local anti-entropy settings; undefined = disabled (capability not advertised). */
  private readonly antiEntropy: AntiEntropyLimits | undefined;
  private readonly wheel: TimerWheel;
  private readonly ownWheel: boolean;
  private readonly sweep: WheelTask;
  private readonly sweepMs: number;
  private readonly readyTimer: WheelTask;
  private server: http.Server | undefined;
  private wss: WebSocketServer | undefined;
  private boundPort: number | undefined;
  private running = false;
  private startedAt = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushImmediate: NodeJS.Immediate | undefined;
  private lastFlushAt = 0;
  private readyResult: ReadyResult | undefined;
  private resolveReady!: (r: ReadyResult) => void;
  private readonly resynced = new Set<string>();

  constructor(opts: PeersServiceOptions) {
    super();
    this.opts = opts;
    this.node = opts.node;
    this.cluster = opts.cluster;
    this.secret = opts.secret;
    this.logger = opts.logger;
    for (const t of opts.tables) {
      if (this.tables.has(t.cfg.id)) throw new StickmeshError('SM_PEERS_CONFIG', `table '${t.cfg.id}' listed twice`);
      this.tables.set(t.cfg.id, t);
    }
    this.schema = schemaOf(opts.tables);
    for (const p of opts.peers) {
      if (p.name === opts.node) throw new StickmeshError('SM_PEERS_CONFIG', `peer list must not include the local node '${p.name}'`);
      if (this.links.has(p.name)) throw new StickmeshError('SM_PEERS_CONFIG', `peer '${p.name}' listed twice`);
      this.links.set(p.name, new Link(p.name, p.host, p.port, opts.node, (l) => this.dial(l)));
    }
    this.peerNames = new Set(this.links.keys());
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 5000;
    this.heartbeatMs = opts.heartbeatMs ?? 1000;
    this.deadAfterMs = opts.deadAfterMs ?? 3000;
    this.flushMs = opts.flushMs ?? 2;
    this.maxUnauthenticated = opts.maxUnauthenticated ?? 64;
    const maxFrameBytes = opts.maxFrameBytes ?? 4 * 1024 * 1024;
    const maxQueueBytes = opts.maxQueueBytes ?? 16 * 1024 * 1024;
    this.limits = {
      maxBatch: opts.maxBatch ?? 2000,
      maxFrameBytes,
      maxQueueBytes,
      lowWaterBytes: Math.min(1024 * 1024, Math.floor(maxQueueBytes / 4)),
    };
    const aeMs = opts.antiEntropyMs ?? 2000;
    const aeBuckets = opts.antiEntropyBuckets ?? 16;
    if (!(aeMs >= 0) || !Number.isInteger(aeBuckets) || aeBuckets < 1 || aeBuckets > AE_BUCKETS) {
      throw new StickmeshError('SM_PEERS_CONFIG', `antiEntropyMs must be >= 0 and antiEntropyBuckets an integer in 1..${AE_BUCKETS}`);
    }
    this.antiEntropy = aeMs > 0 ? { intervalMs: aeMs, maxBuckets: aeBuckets } : undefined;
    this.caps = this.antiEntropy ? [CAP_ANTI_ENTROPY] : [];
    this.ownWheel = !opts.wheel;
    this.wheel = opts.wheel ?? new TimerWheel(20, 512);
    this.sweepMs = Math.max(this.wheel.tickMs, Math.min(250, Math.floor(this.heartbeatMs / 2), Math.floor(this.deadAfterMs / 4)));
    this.sweep = { run: () => this.onSweep() };
    this.readyTimer = { run: () => this.settleReady('timeout') };
    this.ready = new Promise((resolve) => (this.resolveReady = resolve));
    this.setMaxListeners(0);
  }

  get address(): { host: string; port: number } {
    return { host: this.opts.bind.host, port: this.boundPort ?? this.opts.bind.port };
  }

  /** Listens, then dials every peer that sorts higher than us. Rejects if the port cannot be bound. */
  async start(): Promise<void> {
    if (this.running) return;
    const tls = this.opts.tls;
    const server = tls ? https.createServer({ key: tls.key, cert: tls.cert, ...(tls.ca ? { ca: tls.ca } : {}) }) : http.createServer();
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => this.onPlainRequest(req, res));
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    // Raw garbage on the port is an HTTP parse error: drop that socket, nothing else.
    server.on('clientError', (_err, socket) => socket.destroy());
    server.on('connection', (s: Socket) => {
      this.rawSockets.add(s);
      s.on('close', () => this.rawSockets.delete(s));
    });
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.limits.maxFrameBytes, perMessageDeflate: false, clientTracking: false });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.boundPort ?? this.opts.bind.port, this.opts.bind.host, () => {
        this.opts.onListening?.(server);
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.error({ err }, 'peers: listener error'));
    this.server = server;
    const addr = server.address();
    if (addr && typeof addr === 'object') this.boundPort = addr.port;
    this.running = true;
    this.startedAt = Date.now();
    this.wheel.start();
    this.wheel.schedule(this.sweep, this.sweepMs);
    if (!this.readyResult) {
      if (this.links.size === 0) this.settleReady('alone');
      else this.wheel.schedule(this.readyTimer, this.opts.resyncTimeoutMs ?? 5000);
    }
    for (const l of this.links.values()) {
      l.idleState = 'connecting';
      if (l.dialer) this.dial(l);
      else this.knock(l);
    }
    this.logger.info({ port: this.boundPort, peers: [...this.links.keys()] }, 'peers: started');
  }

  /** Closes every session (1001) and the listener. Receive cursors are kept for a later start(). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wheel.cancel(this.sweep);
    this.wheel.cancel(this.readyTimer);
    for (const l of this.links.values()) this.wheel.cancel(l.reconnect);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.flushImmediate) clearImmediate(this.flushImmediate);
    this.flushImmediate = undefined;
    const closed = [...this.conns].map((c) => new Promise<void>((r) => (c.phase === 'closed' ? r() : c.ws.once('close', () => r()))));
    for (const c of this.conns) c.close(CLOSE_GOING_AWAY, 'shutdown');
    const grace = setTimeout(() => {
      for (const c of this.conns) c.ws.terminate();
    }, 500);
    await Promise.all(closed);
    clearTimeout(grace);
    for (const s of this.rawSockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
    this.wss?.close();
    if (this.ownWheel) this.wheel.stop();
    for (const l of this.links.values()) l.idleState = 'down';
  }

  readiness(): { ready: boolean; reason: string } {
    return this.readyResult ? { ready: true, reason: this.readyResult.reason } : { ready: false, reason: 'resyncing' };
  }

  status(): PeerStatus[] {
    return [...this.links.values()].map((l) => ({
      peer: l.name,
      state: l.state,
      ...(l.lastError ? { lastError: l.lastError } : {}),
      sent: l.stats.sent,
      received: l.stats.received,
      lagMs: l.stats.lagMs,
      cursor: l.conn?.session?.cursors() ?? {},
      resyncsSent: l.stats.resyncsSent,
      resyncsReceived: l.stats.resyncsReceived,
      bytesSent: l.stats.bytesSent,
      bytesReceived: l.stats.bytesReceived,
      lastAckAt: l.stats.lastAckAt,
      pending: l.conn?.session?.pending() ?? 0,
      reconnects: Math.max(0, l.stats.sessions - 1),
      refusals: { ...l.refusals },
      antiEntropyRounds: l.stats.aeRounds,
      bucketsRepaired: l.stats.bucketsRepaired,
      entriesRepaired: l.stats.entriesRepaired,
    }));
  }

  /** Anti-entropy counters since creation, summed over peers (they survive reconnects and stop/start). */
  stats(): AntiEntropyStats {
    const out: AntiEntropyStats = { antiEntropyRounds: 0, bucketsCompared: 0, bucketsRepaired: 0, entriesRepaired: 0, repairUpdatesSent: 0 };
    for (const l of this.links.values()) {
      out.antiEntropyRounds += l.stats.aeRounds;
      out.bucketsCompared += l.stats.bucketsCompared;
      out.bucketsRepaired += l.stats.bucketsRepaired;
      out.entriesRepaired += l.stats.entriesRepaired;
      out.repairUpdatesSent += l.stats.repairSent;
    }
    return out;
  }

  /** Schedules a flush within flushMs (local writes happened). Writes are also picked up by the sweep. */
  /**
   * Local writes happened: flush them. A write after a quiet period leaves on the next turn of the
   * event loop (setImmediate, so a burst of writes in one turn still goes as one batch); writes
   * closer together than `flushMs` are batched on a timer, which bounds the flush rate.
   */
  notify(): void {
    if (!this.running || this.flushTimer || this.flushImmediate) return;
    const wait = this.flushMs - (Date.now() - this.lastFlushAt);
    if (wait <= 0) this.flushImmediate = setImmediate(this.flushNow);
    else this.flushTimer = setTimeout(this.flushNow, wait);
  }

  private readonly flushNow = (): void => {
    this.flushImmediate = undefined;
    this.flush();
  };

  wantFlush(): void {
    this.notify();
  }

  private flush(): void {
    this.flushTimer = undefined;
    this.lastFlushAt = Date.now();
    let more = false;
    for (const l of this.links.values()) {
      const s = l.conn?.session;
      if (s && s.pump()) more = true;
    }
    // Resync in progress or backpressured: poll again after flushMs (never a busy loop).
    if (more && this.running && !this.flushTimer && !this.flushImmediate) this.flushTimer = setTimeout(this.flushNow, this.flushMs);
  }

  private settleReady(reason: ReadyResult['reason']): void {
    if (this.readyResult) return;
    this.wheel.cancel(this.readyTimer);
    this.readyResult = { reason, ms: Date.now() - this.startedAt };
    this.logger.info({ reason, ms: this.readyResult.ms }, 'peers: ready');
    this.resolveReady(this.readyResult);
  }

  private onSweep(): void {
    if (!this.running) return;
    const now = Date.now();
    for (const c of this.conns) c.tick(now);
    // Also the poll that picks up local writes made without notify().
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flush();
    this.wheel.schedule(this.sweep, this.sweepMs);
  }

  private dial(l: Link): void {
    if (!this.running || (l.conn && l.conn.phase !== 'closed')) return;
    const tls = this.opts.tls;
    const url = `${tls ? 'wss' : 'ws'}://${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}${PEERS_PATH}`;
    const ws = new WebSocket(url, {
      maxPayload: this.limits.maxFrameBytes,
      perMessageDeflate: false,
      handshakeTimeout: this.handshakeTimeoutMs,
      ...(tls?.ca ? { ca: tls.ca } : {}),
    });
    const conn = new Conn('client', ws, l.name, this);
    l.conn = conn;
    this.conns.add(conn);
  }

  /**
   * A node only accepts sessions from peers that sort lower, so after a (re)start it would wait for
   * each of them to retry on backoff (up to ~6.5 s). Instead it knocks: a plain
   * `GET /stickmesh/peers/1/knock?node=NAME` asking the lower peer to dial now. The knock carries
   * nothing and changes nothing but the timing of a dial that was due anyway; the dialer honours at
   * most one knock per peer per KNOCK_MIN_INTERVAL_MS.
   */
  private knock(l: Link): void {
    const tls = this.opts.tls;
    const mod = tls ? https : http;
    const req = mod.request({
      host: l.host,
      port: l.port,
      method: 'GET',
      path: `${PEERS_PATH}/knock?node=${encodeURIComponent(this.node)}`,
      timeout: 2000,
      agent: false,
      ...(tls?.ca ? { ca: tls.ca } : {}),
    });
    req.on('response', (res) => res.resume());
    req.on('timeout', () => req.destroy());
    req.on('error', () => {
      /* the peer is down: it dials us when it starts */
    });
    req.end();
  }

  private onPlainRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '';
    if (url.length < 256 && url.startsWith(`${PEERS_PATH}/knock?node=`)) {
      const name = decodeURIComponent(url.slice(PEERS_PATH.length + 12));
      const l = this.links.get(name);
      if (l && l.dialer && this.running && (!l.conn || l.conn.phase === 'closed')) {
        const now = Date.now();
        if (now - l.lastKnockAt >= KNOCK_MIN_INTERVAL_MS) {
          l.lastKnockAt = now;
          l.attempt = 0;
          this.wheel.cancel(l.reconnect);
          this.dial(l);
        }
      }
      res.writeHead(204, { connection: 'close' }).end();
      return;
    }
    res.writeHead(426, { connection: 'close', 'content-type': 'text/plain' }).end('stickmesh peers: WebSocket only\n');
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '').split('?')[0];
    const from = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    const reject = (status: string, reason: string, detail: string) => {
      this.count({ peer: from, reason, detail, side: 'local' });
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      socket.destroy();
    };
    if (!this.running || !this.wss) return reject('503 Service Unavailable', 'shutdown', 'service stopping');
    if (path !== PEERS_PATH) return reject('404 Not Found', 'bad-path', `path ${JSON.stringify(path).slice(0, 80)}`);
    let pending = 0;
    for (const c of this.conns) if (c.role === 'server' && c.unauthenticated) pending++;
    if (pending >= this.maxUnauthenticated) {
      return reject('503 Service Unavailable', 'too-many-unauthenticated', `${pending} connections still in handshake`);
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (!this.running) return ws.terminate();
      const conn = new Conn('server', ws, from, this);
      this.conns.add(conn);
    });
  }

  onAuthenticated(conn: Conn): SessionHost {
    const l = this.links.get(conn.peer)!; // checkAuth/checkHello guarantee a configured peer
    if (l.conn && l.conn !== conn && l.conn.phase !== 'closed') {
      // The peer redialed while we still held its old session (e.g. it restarted): newest wins.
      l.conn.close(CLOSE_REPLACED, 'replaced');
    }
    l.conn = conn;
    l.attempt = 0;
    l.stats.sessions++;
    this.logger.info({ peer: l.name, role: conn.role }, 'peers: session established');
    if (this.tables.size === 0) this.settleReady('resynced');
    return {
      tables: this.tables,
      recv: l.recv,
      stats: l.stats,
      limits: this.limits,
      logger: this.logger,
      onResynced: (table) => {
        this.resynced.add(table);
        if (this.resynced.size >= this.tables.size) this.settleReady('resynced');
      },
      drop: (reason, detail) => conn.drop(reason, detail),
      dialer: conn.role === 'client',
      antiEntropy: this.antiEntropy && conn.peerCaps.includes(CAP_ANTI_ENTROPY) ? this.antiEntropy : undefined,
    };
  }

  onClosed(conn: Conn, code: number, reason: string): void {
    this.conns.delete(conn);
    const l = this.links.get(conn.peer);
    if (!l || l.conn !== conn) return; // pre-auth inbound or a replaced session
    l.conn = undefined;
    l.idleState = 'down';
    if (conn.lastError) l.lastError = conn.lastError;
    if (conn.session) this.logger.info({ peer: l.name, code, reason }, 'peers: session closed');
    if (l.dialer && this.running) {
      const delay = backoffMs(l.attempt++);
      this.logger.debug({ peer: l.name, delay, error: conn.lastError }, 'peers: reconnect scheduled');
      this.wheel.schedule(l.reconnect, delay);
    }
  }

  refused(conn: Conn, reason: string, detail: string, side: 'local' | 'remote'): void {
    const l = this.links.get(conn.peer);
    if (l) {
      l.lastError = conn.lastError ?? `${reason}: ${detail}`;
      l.refusals[reason] = (l.refusals[reason] ?? 0) + 1;
    }
    this.count({ peer: conn.peer, reason, detail, side });
  }

  private count(ev: RefusalEvent): void {
    this.refusals[ev.reason] = (this.refusals[ev.reason] ?? 0) + 1;
    this.logger.warn(ev, side(ev));
    this.emit('refused', ev);
  }
}

function side(ev: RefusalEvent): string {
  return ev.side === 'local' ? 'peers: connection refused or dropped' : 'peers: refused by peer';
}
