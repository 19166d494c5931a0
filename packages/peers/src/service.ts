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
import WebSocket, { WebSocketServer } from 'ws';
import type { Logger } from 'pino';
import { StickmeshError, TimerWheel, urlHost, type SharedTicketKeys, type WheelTask } from '@stickmesh/core';
import { backoffMs } from './backoff.js';
import { AE_BUCKETS, CAP_ANTI_ENTROPY, CAP_COUNTERS, CAP_TICKET_KEYS, encode, MAX_COUNTER_WIDTH, MAX_SHARES_PER_FRAME, NONCE_BYTES, PEERS_PATH, PROTO, type TableSchema } from './codec.js';
import { CLOSE_GOING_AWAY, CLOSE_REPLACED, Conn, type ConnHost } from './conn.js';
import { isInternalTable, schemaOf, sharedInternal } from './handshake.js';
import { LagWindow } from './lag-window.js';
import { PeersListener, rejectUpgrade, remoteOf, type ListenerHost, type ListenerLimits } from './listener.js';
import { LogSampler } from './log-sampler.js';
import { clip, type RefusalReason } from './refusals.js';
import { deriveBoxKey } from './ticket-box.js';
import { TokenBuckets } from './token-buckets.js';
import {
  encodeShareFrames, type AntiEntropyLimits, type LinkStats, type PeerSession, type RecvCursor, type SessionHost, type SessionLimits, type TicketKeyLink,
} from './session.js';
import type { AntiEntropyStats, PeerState, PeerStatus, PeersServiceOptions, ReadyResult, ReplicatedCounters, ReplicatedTable, ShareUpdate } from './types.js';

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
    sent: 0, received: 0, lagMs: 0, resyncsSent: 0, resyncsReceived: 0, bytesSent: 0, bytesReceived: 0, lastAckAt: 0, lastDataAt: 0, sessions: 0,
    aeRounds: 0, bucketsCompared: 0, bucketsRepaired: 0, entriesRepaired: 0, repairSent: 0,
    sharesSent: 0, sharesReceived: 0, sharesRejected: 0, sharesIgnored: 0, counterLag: new LagWindow(),
    ticketKeysSent: 0, ticketKeysReceived: 0, ticketKeysLearned: 0, ticketKeysRefused: 0,
  };
  /** Refusals/drops concerning this peer, by reason (only once the other end is known to be this peer). */
  readonly refusals: Partial<Record<RefusalReason, number>> = {};
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
  /** A configured peer's name, or the remote address while the other end is unauthenticated. */
  peer: string;
  reason: RefusalReason;
  detail: string;
  side: 'local' | 'remote';
  /** address:port of an unauthenticated other end. */
  remote?: string;
  /** The node name an unauthenticated auth claimed, clipped (remote text). */
  claimed?: string;
  /** The peer's own close reason when it is not one of ours, clipped (remote text). */
  remoteReason?: string;
}

/** Reasons that refuse a connection cheaply for load: they do not use up the source's failure budget. */
const LOAD_REASONS: ReadonlySet<RefusalReason> = new Set<RefusalReason>([
  'too-many-connections', 'too-many-from-source', 'too-many-unauthenticated', 'rate-limited', 'shutdown',
]);

/** Refusals for a node-wide condition: sampled as one source, whoever hit it. */
const NODE_WIDE: ReadonlySet<RefusalReason> = new Set<RefusalReason>(['too-many-connections', 'too-many-unauthenticated', 'shutdown']);

/** Table slots one anti-entropy export step examines at most (about 1 ms of scanning). */
const REPAIR_SCAN_SLOTS = 65536;

/** Bounds of the source-keyed maps are pruned at most this often (they are also bounded at insert). */
const PRUNE_EVERY_MS = 5000;

/** Larger of 8 KiB and twice the auth message this node sends (the largest handshake frame for its tables). */
export function defaultPreAuthFrameBytes(node: string, cluster: string, schema: TableSchema[], caps: string[], internal: TableSchema[] = []): number {
  const nonce = Buffer.alloc(NONCE_BYTES);
  const auth = encode({ t: 'auth', proto: PROTO, cluster, node, nonce2: nonce, mac: Buffer.alloc(32), tables: schema, caps, ...(internal.length > 0 ? { internal } : {}) });
  return Math.max(8192, 2 * auth.length);
}

export class PeersService extends EventEmitter implements ConnHost, ListenerHost {
  readonly node: string;
  readonly cluster: string;
  readonly secret: string;
  readonly schema: TableSchema[];
  readonly internalSchema: TableSchema[];
  readonly peerNames: ReadonlySet<string>;
  readonly handshakeTimeoutMs: number;
  readonly heartbeatMs: number;
  readonly deadAfterMs: number;
  readonly caps: string[];
  /** Refusals/drops by reason since creation (local and remote decisions); keys are RefusalReasons only. */
  readonly refusals: Partial<Record<RefusalReason, number>> = {};
  /** Frame limit once authenticated (ConnHost). */
  readonly maxFrameBytes: number;
  /** Frame limit until the handshake succeeded. */
  readonly preAuthMaxFrameBytes: number;
  /** Readiness gate, see readiness(). */
  readonly ready: Promise<ReadyResult>;

  private readonly opts: PeersServiceOptions;
  private readonly logger: Logger;
  private readonly tables = new Map<string, ReplicatedTable>();
  /** Replicated counters by table id (cluster mode tables only; the node decides which). */
  private readonly counters = new Map<string, ReplicatedCounters>();
  private readonly counterFlushMs: number;
  private counterTimer: NodeJS.Timeout | undefined;
  private counterImmediate: NodeJS.Immediate | undefined;
  /** performance.now() of the last counter flush (sub-millisecond: the spacing bound is exact). */
  private lastCounterFlushAt = -Infinity;
  /** Counter flushes done and `c` frames they encoded (each written to every session exchanging the table). */
  private counterFlushes = 0;
  private counterFrames = 0;
  private readonly shareScratch: ShareUpdate[] = [];
  /** TLS ticket keys: the node's ring, and the key `tk` boxes are sealed with (undefined: not shared). */
  private readonly ticketRing: SharedTicketKeys | undefined;
  private readonly boxKey: Buffer | undefined;
  private offOwnKey: (() => void) | undefined;
  private readonly links = new Map<string, Link>();
  private readonly conns = new Set<Conn>();
  private readonly limits: SessionLimits;
  private readonly failures: TokenBuckets;
  private readonly sampler: LogSampler;
  private lastPrune = 0;
  private listener: PeersListener | undefined;
  private readonly listenerLimits: ListenerLimits;
  private readonly flushMs: number;
  private readonly maxUnauthenticated: number;
  /** Local anti-entropy settings; undefined = disabled (capability not advertised). */
  private readonly antiEntropy: AntiEntropyLimits | undefined;
  private readonly wheel: TimerWheel;
  private readonly ownWheel: boolean;
  private readonly sweep: WheelTask;
  private readonly sweepMs: number;
  private readonly readyTimer: WheelTask;
  private wss: WebSocketServer | undefined;
  private boundPort: number | undefined;
  private active = false;
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
    for (const c of opts.counters ?? []) {
      if (!this.tables.has(c.id)) throw new StickmeshError('SM_PEERS_CONFIG', `counters of table '${c.id}' given but the table is not replicated`);
      if (this.counters.has(c.id)) throw new StickmeshError('SM_PEERS_CONFIG', `counters of table '${c.id}' listed twice`);
      if (!Number.isInteger(c.width) || c.width < 1 || c.width > MAX_COUNTER_WIDTH) {
        throw new StickmeshError('SM_PEERS_CONFIG', `counters of table '${c.id}' have width ${c.width}, must be 1..${MAX_COUNTER_WIDTH}`);
      }
      this.counters.set(c.id, c);
    }
    this.schema = schemaOf(opts.tables.filter((t) => !isInternalTable(t.cfg.id)), this.counters);
    this.internalSchema = schemaOf(opts.tables.filter((t) => isInternalTable(t.cfg.id)));
    if (this.internalSchema.length > 16) throw new StickmeshError('SM_PEERS_CONFIG', 'at most 16 internal tables');
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
    this.counterFlushMs = opts.counterFlushMs ?? 5;
    if (!(this.counterFlushMs >= 1 && Number.isFinite(this.counterFlushMs))) throw new StickmeshError('SM_PEERS_CONFIG', 'counterFlushMs must be >= 1');
    this.maxUnauthenticated = opts.maxUnauthenticated ?? 64;
    const maxFrameBytes = opts.maxFrameBytes ?? 4 * 1024 * 1024;
    const maxQueueBytes = opts.maxQueueBytes ?? 16 * 1024 * 1024;
    const maxBatch = opts.maxBatch ?? 2000;
    const turnBatches = opts.turnBatches ?? 4;
    const repairBatch = opts.repairBatch ?? Math.min(maxBatch, 256);
    if (!Number.isInteger(turnBatches) || turnBatches < 1 || !Number.isInteger(repairBatch) || repairBatch < 1) {
      throw new StickmeshError('SM_PEERS_CONFIG', 'turnBatches and repairBatch must be integers >= 1');
    }
    this.limits = {
      maxBatch,
      turnBatches,
      repairBatch,
      repairScan: REPAIR_SCAN_SLOTS,
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
    this.ticketRing = opts.ticketKeys;
    this.boxKey = opts.ticketKeys && opts.secret !== '' ? deriveBoxKey(opts.secret) : undefined;
    this.caps = [...(this.antiEntropy ? [CAP_ANTI_ENTROPY] : []), CAP_COUNTERS, ...(this.boxKey ? [CAP_TICKET_KEYS] : [])];
    this.maxFrameBytes = maxFrameBytes;
    this.preAuthMaxFrameBytes = Math.min(maxFrameBytes, opts.preAuthMaxFrameBytes ?? defaultPreAuthFrameBytes(this.node, this.cluster, this.schema, this.caps, this.internalSchema));
    const maxSources = opts.maxTrackedSources ?? 4096;
    this.listenerLimits = {
      headersTimeoutMs: opts.headersTimeoutMs ?? 3000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 5000,
      idleTimeoutMs: opts.idleTimeoutMs ?? 2000,
      maxRawConnections: opts.maxRawConnections ?? 256,
      maxRawConnectionsPerSource: opts.maxRawConnectionsPerSource ?? 16,
    };
    const burst = opts.authFailureBurst ?? 10;
    const perSecond = opts.authFailuresPerSecond ?? 1;
    const logMs = opts.refusalLogIntervalMs ?? 10_000;
    const bad = [
      ...Object.entries({ ...this.listenerLimits, maxTrackedSources: maxSources, authFailureBurst: burst }).filter(([, v]) => !(Number.isInteger(v) && v >= 1)).map(([k]) => `${k} must be an integer >= 1`),
      ...(perSecond > 0 && Number.isFinite(perSecond) ? [] : ['authFailuresPerSecond must be > 0']),
      ...(logMs >= 0 && Number.isFinite(logMs) ? [] : ['refusalLogIntervalMs must be >= 0']),
      ...(Number.isInteger(this.preAuthMaxFrameBytes) && this.preAuthMaxFrameBytes >= 1024 ? [] : ['preAuthMaxFrameBytes must be an integer >= 1024 (and at most maxFrameBytes)']),
    ];
    if (bad.length > 0) throw new StickmeshError('SM_PEERS_CONFIG', bad.join('; '));
    this.failures = new TokenBuckets(burst, perSecond, maxSources);
    this.sampler = new LogSampler(logMs, maxSources);
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
    if (this.active) return;
    const listener = new PeersListener(this, this.listenerLimits, this.opts.tls);
    const server = listener.server;
    // Every inbound WebSocket starts unauthenticated: the small limit, raised per connection at auth.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.preAuthMaxFrameBytes, perMessageDeflate: false, clientTracking: false });
    this.wss.on('wsClientError', this.onWsClientError);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.boundPort ?? this.opts.bind.port, this.opts.bind.host, () => {
        this.opts.onListening?.(server);
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.error({ err }, 'peers: listener error'));
    this.listener = listener;
    const addr = server.address();
    if (addr && typeof addr === 'object') this.boundPort = addr.port;
    this.active = true;
    this.startedAt = Date.now();
    this.wheel.start();
    this.wheel.schedule(this.sweep, this.sweepMs);
    if (!this.readyResult) {
      if (this.links.size === 0) this.settleReady('alone');
      else this.wheel.schedule(this.readyTimer, this.opts.resyncTimeoutMs ?? 5000);
    }
    for (const c of this.counters.values()) c.onDirty = this.counterDirty;
    this.counterDirty();
    if (this.boxKey) this.offOwnKey = this.ticketRing!.onOwnKey(this.broadcastTicketKeys);
    else if (this.ticketRing && this.links.size > 0) {
      this.logger.warn({ cluster: this.cluster }, 'peers: TLS ticket keys are not shared with peers: no shared-secret is set (anyone who can reach the peers port could join and read them); a client resumes its TLS session only on the node that issued its ticket');
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
    if (!this.active) return;
    this.active = false;
    this.wheel.cancel(this.sweep);
    this.wheel.cancel(this.readyTimer);
    for (const l of this.links.values()) this.wheel.cancel(l.reconnect);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.flushImmediate) clearImmediate(this.flushImmediate);
    this.flushImmediate = undefined;
    for (const c of this.counters.values()) if (c.onDirty === this.counterDirty) c.onDirty = undefined;
    this.offOwnKey?.();
    this.offOwnKey = undefined;
    if (this.counterTimer) clearTimeout(this.counterTimer);
    this.counterTimer = undefined;
    if (this.counterImmediate) clearImmediate(this.counterImmediate);
    this.counterImmediate = undefined;
    const closed = [...this.conns].map((c) => new Promise<void>((r) => (c.phase === 'closed' ? r() : c.ws.once('close', () => r()))));
    for (const c of this.conns) c.close(CLOSE_GOING_AWAY, 'shutdown');
    const grace = setTimeout(() => {
      for (const c of this.conns) c.ws.terminate();
    }, 500);
    await Promise.all(closed);
    clearTimeout(grace);
    const listener = this.listener;
    this.listener = undefined;
    if (listener) {
      listener.destroyAll();
      await new Promise<void>((r) => listener.server.close(() => r()));
    }
    this.wss?.close();
    if (this.ownWheel) this.wheel.stop();
    for (const l of this.links.values()) l.idleState = 'down';
  }

  /** True between start() and stop() (ListenerHost). */
  get running(): boolean {
    return this.active;
  }

  /** Connections on the peers port not authenticated yet, from their accept on (bounded by maxRawConnections). */
  get rawConnections(): number {
    return this.listener?.rawCount ?? 0;
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
      ...(l.stats.lastDataAt > 0 ? { lastDataAt: l.stats.lastDataAt } : {}),
      pending: l.conn?.session?.pending() ?? 0,
      reconnects: Math.max(0, l.stats.sessions - 1),
      refusals: { ...l.refusals },
      antiEntropyRounds: l.stats.aeRounds,
      bucketsRepaired: l.stats.bucketsRepaired,
      entriesRepaired: l.stats.entriesRepaired,
      ...(this.internalSchema.length > 0 ? { internalTables: this.internalSchema.map((t) => t.id).filter((id) => l.conn?.phase === 'session' && l.conn.session?.carries(id) === true) } : {}),
      ...(this.counters.size > 0 || l.stats.sharesReceived + l.stats.sharesIgnored > 0 ? this.counterStatus(l) : {}),
      ...(this.ticketRing ? {
        ticketKeysShared: l.conn?.phase === 'session' && l.conn.session?.sharesTicketKeys() === true,
        ticketKeysSent: l.stats.ticketKeysSent,
        ticketKeysReceived: l.stats.ticketKeysReceived,
        ticketKeysLearned: l.stats.ticketKeysLearned,
        ticketKeysRefused: l.stats.ticketKeysRefused,
      } : {}),
    }));
  }

  private counterStatus(l: Link): Partial<PeerStatus> {
    const st = l.stats;
    const now = Date.now();
    const q = st.counterLag.quantiles([0.5, 0.99], now);
    return {
      counterTables: [...(l.conn?.session ? this.counters.keys() : [])].filter((id) => l.conn!.session!.sharesCounters(id)),
      sharesSent: st.sharesSent,
      sharesReceived: st.sharesReceived,
      sharesRejected: st.sharesRejected,
      sharesIgnored: st.sharesIgnored,
      counterLagMs: st.counterLag.last,
      counterLagSamples: st.counterLag.count(now),
      ...(q ? { counterLagP50Ms: q[0]!, counterLagP99Ms: q[1]! } : {}),
    };
  }

  /** Counter flushes since creation and the `c` frames they encoded (each written once per session exchanging its table). */
  counterStats(): { flushes: number; frames: number } {
    return { flushes: this.counterFlushes, frames: this.counterFrames };
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

  /**
   * Local writes happened: flush them (the sweep also picks writes up). A write after a quiet period leaves on the next turn of the
   * event loop (setImmediate, so a burst of writes in one turn still goes as one batch); writes
   * closer together than `flushMs` are batched on a timer, which bounds the flush rate.
   */
  notify(): void {
    if (!this.active || this.flushTimer || this.flushImmediate) return;
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
    let busy = false;
    for (const l of this.links.values()) {
      const s = l.conn?.session;
      if (s && s.pump()) {
        more = true;
        if (s.busy) busy = true;
      }
    }
    if (!more || !this.active || this.flushTimer || this.flushImmediate) return;
    // A pump stopped on its per-turn frame budget with room in the socket: go on next turn, after
    // the I/O that queued meanwhile. Otherwise (backpressure, a resync or round waiting on the
    // peer): poll again after flushMs (never a busy loop).
    if (busy) this.flushImmediate = setImmediate(this.flushNow);
    else this.flushTimer = setTimeout(this.flushNow, this.flushMs);
  }

  /**
   * `onDirty` of every replicated counters: a local share became dirty. Schedules one flush, at
   * most one per `counterFlushMs`: on the next turn after a quiet period, else on a timer at
   * `counterFlushMs` after the previous flush. One pending timer per service, whatever the keys.
   */
  private readonly counterDirty = (): void => {
    if (!this.active || this.counterTimer || this.counterImmediate) return;
    const wait = this.counterFlushMs - (performance.now() - this.lastCounterFlushAt);
    if (wait <= 0) this.counterImmediate = setImmediate(this.counterFlushNow);
    else this.counterTimer = setTimeout(this.counterFlushNow, Math.ceil(wait));
  };

  private readonly counterFlushNow = (): void => {
    this.counterImmediate = undefined;
    this.counterTimer = undefined;
    // Timers may fire up to a millisecond early (the loop's cached clock): the spacing is a promise.
    const wait = this.counterFlushMs - (performance.now() - this.lastCounterFlushAt);
    if (wait > 0) this.counterTimer = setTimeout(this.counterFlushNow, Math.ceil(wait));
    else this.flushCounters();
  };

  /**
   * Drains every table's dirty shares once (each key at most once: the drain takes the keys dirty
   * now and nothing runs between its batches) and writes the same encoded frames to every session
   * exchanging the table. Sessions not established get the whole export when they start.
   */
  private flushCounters(): void {
    if (!this.active) return;
    this.lastCounterFlushAt = performance.now();
    this.counterFlushes++;
    const max = Math.min(this.limits.maxBatch, MAX_SHARES_PER_FRAME);
    const out = this.shareScratch;
    const targets: PeerSession[] = [];
    for (const [id, c] of this.counters) {
      let budget = c.dirty;
      if (budget <= 0) continue;
      targets.length = 0;
      for (const l of this.links.values()) {
        const s = l.conn?.session;
        if (s && l.conn!.phase === 'session' && s.sharesCounters(id)) targets.push(s);
      }
      while (budget > 0) {
        out.length = 0;
        const wall = c.drainDirty(Math.min(max, budget), out);
        if (out.length === 0) break;
        budget -= out.length;
        if (targets.length === 0) continue;
        encodeShareFrames(id, wall, out, this.limits.maxFrameBytes, (buf, n) => {
          this.counterFrames++;
          for (const s of targets) s.sendShares(buf, n);
        }, (key, bytes) => this.logger.warn({ table: id, key, bytes }, 'peers: counter share larger than maxFrameBytes not replicated'));
      }
    }
  }

  /** The ring's own node created a key: every session that exchanges keys gets the whole ring again. */
  private readonly broadcastTicketKeys = (): void => {
    if (!this.active) return;
    for (const l of this.links.values()) if (l.conn?.phase === 'session') l.conn.session?.sendTicketKeys();
  };

  private settleReady(reason: ReadyResult['reason']): void {
    if (this.readyResult) return;
    this.wheel.cancel(this.readyTimer);
    this.readyResult = { reason, ms: Date.now() - this.startedAt };
    this.logger.info({ reason, ms: this.readyResult.ms }, 'peers: ready');
    this.resolveReady(this.readyResult);
  }

  private onSweep(): void {
    if (!this.active) return;
    const now = Date.now();
    for (const c of this.conns) c.tick(now);
    this.listener?.tick(now);
    if (now - this.lastPrune >= PRUNE_EVERY_MS) {
      this.lastPrune = now;
      this.failures.prune(now);
      this.sampler.prune(now);
    }
    // Also the poll that picks up local writes made without notify().
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flush();
    for (const c of this.counters.values()) {
      if (c.dirty > 0) {
        this.counterDirty();
        break;
      }
    }
    this.wheel.schedule(this.sweep, this.sweepMs);
  }

  private dial(l: Link): void {
    if (!this.active || (l.conn && l.conn.phase !== 'closed')) return;
    const tls = this.opts.tls;
    const url = `${tls ? 'wss' : 'ws'}://${urlHost(l.host)}:${l.port}${PEERS_PATH}`;
    const ws = new WebSocket(url, {
      maxPayload: this.preAuthMaxFrameBytes, // raised at welcome
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

  /** ListenerHost: a knock asks this (dialing) side to dial `name` now; see knock(). */
  knocked(name: string): void {
    const l = this.links.get(name);
    if (!l || !l.dialer || !this.active || (l.conn && l.conn.phase !== 'closed')) return;
    const now = Date.now();
    if (now - l.lastKnockAt < KNOCK_MIN_INTERVAL_MS) return;
    l.lastKnockAt = now;
    l.attempt = 0;
    this.wheel.cancel(l.reconnect);
    this.dial(l);
  }

  /** ListenerHost: an upgrade on the peers path; the listener already applied its bounds. */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, remote: string): void {
    const address = req.socket.remoteAddress ?? '?';
    if (!this.active || !this.wss) {
      this.refuseAddress(address, remote, 'shutdown', 'service stopping');
      return rejectUpgrade(socket, '503 Service Unavailable');
    }
    let pending = 0;
    for (const c of this.conns) if (c.role === 'server' && c.inHandshake) pending++;
    if (pending >= this.maxUnauthenticated) {
      this.refuseAddress(address, remote, 'too-many-unauthenticated', `${pending} connections still in handshake`);
      return rejectUpgrade(socket, '503 Service Unavailable');
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (!this.active) return ws.terminate();
      const conn = new Conn('server', ws, address, this, remote);
      this.conns.add(conn);
    });
  }

  /** ws refused the upgrade request itself (bad key, version, headers): 400, counted against the source. */
  private readonly onWsClientError = (err: Error, socket: Duplex, req: http.IncomingMessage): void => {
    try {
      this.refuseAddress(req.socket.remoteAddress ?? '?', remoteOf(req.socket), 'bad-request', `WebSocket upgrade: ${err.message}`);
    } finally {
      rejectUpgrade(socket, '400 Bad Request');
    }
  };

  /** ConnHost: ends our side of an inbound connection's TCP socket. */
  endSocket(conn: Conn): void {
    this.listener?.endRaw(conn.remote);
  }

  /** ListenerHost and ConnHost: `address` (an inbound source) has used up its failed-handshake budget. */
  overBudget(x: string | Conn, now = Date.now()): boolean {
    if (typeof x === 'string') return this.failures.over(x, now);
    return x.role === 'server' && !x.named && this.failures.over(x.address, now);
  }

  /** ListenerHost: a refusal of an unauthenticated connection, counted against its source address. */
  refuseAddress(address: string, remote: string, reason: RefusalReason, detail: string, extra?: Pick<RefusalEvent, 'claimed' | 'remoteReason' | 'side'>): void {
    const now = Date.now();
    if (!LOAD_REASONS.has(reason)) this.failures.take(address, now);
    this.count({ peer: address, reason, detail, side: extra?.side ?? 'local', remote, ...(extra?.claimed !== undefined ? { claimed: extra.claimed } : {}), ...(extra?.remoteReason !== undefined ? { remoteReason: extra.remoteReason } : {}) }, now);
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
    if (conn.role === 'server') this.listener?.release(conn.remote);
    this.logger.info({ peer: l.name, role: conn.role }, 'peers: session established');
    if (this.tables.size === 0) this.settleReady('resynced');
    const counters = this.negotiateCounters(conn, l);
    return {
      tables: this.sessionTables(conn, l),
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
      counters,
      ticketKeys: this.ticketLink(conn, l),
    };
  }

  /**
   * The tables a session carries: every configured table (the handshake checked that both sides
   * have the same) and the internal tables both sides list. An internal table left out counts as
   * resynced for readiness (the peer has nothing of it to send), and is logged.
   */
  private sessionTables(conn: Conn, l: Link): ReadonlyMap<string, ReplicatedTable> {
    if (this.internalSchema.length === 0) return this.tables;
    const { shared, absent, mismatched } = sharedInternal(this.internalSchema, conn.peerInternal);
    if (absent.length + mismatched.length === 0) return this.tables;
    const out = new Map<string, ReplicatedTable>();
    for (const [id, t] of this.tables) if (!isInternalTable(id) || shared.has(id)) out.set(id, t);
    if (absent.length > 0) this.logger.info({ peer: l.name, tables: absent }, 'peers: the peer does not have these internal tables (an older version?); they are not exchanged with it');
    if (mismatched.length > 0) this.logger.warn({ peer: l.name, tables: mismatched }, 'peers: internal tables with another type or key length on the peer are not exchanged with it');
    for (const id of [...absent, ...mismatched]) this.resynced.add(id);
    if (this.resynced.size >= this.tables.size) this.settleReady('resynced');
    return out;
  }

  /** Ticket keys travel on this session when both sides advertised 'tk' (each has a ring and a secret). */
  private ticketLink(conn: Conn, l: Link): TicketKeyLink | undefined {
    if (!this.boxKey) return undefined;
    if (!conn.peerCaps.includes(CAP_TICKET_KEYS)) {
      this.logger.info({ peer: l.name }, 'peers: the peer does not share TLS ticket keys; sessions it issued do not resume here, nor ours there');
      return undefined;
    }
    return { ring: this.ticketRing!, boxKey: this.boxKey, self: this.node, cluster: this.cluster, sessionId: conn.sessionId };
  }

  /**
   * The tables whose counter shares this session exchanges: both sides replicate the table's
   * counters (the peer advertised CAP_COUNTERS) with the same schema. Every other table with
   * counters on either side is counted and logged (sampled) as 'counter-schema-mismatch'; the
   * session stays up and the table replicates as usual, without shares.
   */
  private negotiateCounters(conn: Conn, l: Link): Map<string, ReplicatedCounters> {
    const out = new Map<string, ReplicatedCounters>();
    const capable = conn.peerCaps.includes(CAP_COUNTERS);
    const theirs = new Map(conn.peerTables.map((t) => [t.id, t.counters]));
    for (const id of this.tables.keys()) {
      const mine = this.counters.get(id);
      const other = capable ? theirs.get(id) : undefined;
      if (mine && other === mine.schema) {
        out.set(id, mine);
        continue;
      }
      if (!mine && other === undefined) continue;
      const detail = !capable
        ? `table '${id}': the peer does not replicate counters; shares not exchanged`
        : `table '${id}': counters here ${mine ? JSON.stringify(mine.schema) : 'not replicated'}, peer ${other === undefined ? 'not replicated' : JSON.stringify(clip(other))}; shares not exchanged`;
      l.refusals['counter-schema-mismatch'] = (l.refusals['counter-schema-mismatch'] ?? 0) + 1;
      this.count({ peer: l.name, reason: 'counter-schema-mismatch', detail, side: 'local' }, Date.now());
    }
    return out;
  }

  onClosed(conn: Conn, code: number, reason: string): void {
    this.conns.delete(conn);
    const l = this.links.get(conn.peer);
    if (!l || l.conn !== conn) return; // pre-auth inbound or a replaced session
    l.conn = undefined;
    l.idleState = 'down';
    if (conn.lastError) l.lastError = conn.lastError;
    // The session is dead (closed, errored, heartbeat timeout): the peer's gauge shares stop counting.
    if (conn.session) for (const c of this.counters.values()) c.dropNode(l.name);
    if (conn.session) this.logger.info({ peer: l.name, code, reason }, 'peers: session closed');
    if (l.dialer && this.active) {
      const delay = backoffMs(l.attempt++);
      this.logger.debug({ peer: l.name, delay, error: conn.lastError }, 'peers: reconnect scheduled');
      this.wheel.schedule(l.reconnect, delay);
    }
  }

  refused(conn: Conn, reason: RefusalReason, detail: string, side: 'local' | 'remote', remoteText?: string): void {
    const extra = remoteText !== undefined && remoteText !== reason ? { remoteReason: remoteText } : {};
    if (!conn.named) {
      return this.refuseAddress(conn.address, conn.remote, reason, detail, { side, ...extra, ...(conn.claimed !== undefined ? { claimed: conn.claimed } : {}) });
    }
    const l = this.links.get(conn.peer);
    if (l) {
      l.lastError = conn.lastError ?? `${reason}: ${detail}`;
      l.refusals[reason] = (l.refusals[reason] ?? 0) + 1;
    }
    this.count({ peer: conn.peer, reason, detail, side, ...extra }, Date.now());
  }

  /**
   * Counts a refusal; logs it unless its source (for a node-wide condition: anyone) already logged
   * this reason within the sampling interval.
   */
  private count(ev: RefusalEvent, now: number): void {
    this.refusals[ev.reason] = (this.refusals[ev.reason] ?? 0) + 1;
    const suppressed = this.sampler.admit(NODE_WIDE.has(ev.reason) ? ev.reason : `${ev.peer}\n${ev.reason}`, now);
    if (suppressed > 0) this.logger.warn({ ...ev, suppressed }, side(ev));
    else if (suppressed === 0) this.logger.warn(ev, side(ev));
    this.emit('refused', ev);
  }
}

function side(ev: RefusalEvent): string {
  return ev.side === 'local' ? 'peers: connection refused or dropped' : 'peers: refused by peer';
}
