/**
 * Replication over one authenticated connection, for all tables. Per table and direction:
 *
 * sender:   idle --resume--> delta (epoch matches, log still holds the seq)  or  full resync
 *           full: exportBatch in batches while the socket is below the low watermark, then
 *           'resync-done' carrying the seq captured before the export, then delta from that seq.
 * receiver: await --'u'--> live,  await --'resync'...--> resyncing --'resync-done'--> live;
 *           live --'resync'...--> resyncing (the sender restarts a full resync when the receiver's
 *           position fell off its bounded update log).
 *
 * The receiver's (epoch, seq) per peer and table lives in the caller-owned `recv` map so it survives
 * reconnects: the next session resumes from it instead of starting over.
 *
 * Anti-entropy, per table (when both sides advertised it): the dialer sends `digest` once the
 * session is live and then every interval; the acceptor answers `repair` with up to maxBuckets
 * differing buckets; then both stream their entries of those buckets (`repair-u`, under the same
 * low watermark as everything else) and end with `repair-end`. One round per table is in flight at a
 * time; the dialer's next digest waits until both ends of the round are done.
 *
 * Counter shares (tables whose counters both sides replicate with the same schema, `host.counters`):
 * at the session's start each side streams every local share of each such table (`exportShares`,
 * `c` frames with wall 0) under the low watermark, ahead of any table resync or delta in the same
 * pump (a pump does the exports first and everything after them needs the same watermark), so a
 * peer's `resync-done` arrives after its shares. Later changes are not pumped per session: the
 * service drains them once per flush and writes the same frames to every session (`sendShares`).
 * Received shares replace the sender's previous share (`applyShares`); they are never forwarded.
 *
 * TLS ticket keys (both sides advertised 'tk', `host.ticketKeys`): each side sends its whole ring
 * sealed in one `tk` first thing at the session's start (so it precedes every resync-done), and
 * again whenever its node creates a key (the service calls `sendTicketKeys`). Received keys are
 * merged into the ring, never sent on by themselves. A box that does not open drops the session
 * ('ticket-keys-auth-failed') with the ring unchanged.
 */
import type WebSocket from 'ws';
import type { Logger } from 'pino';
import type { SharedTicketKeys } from '@stickmesh/core';
import {
  AE_BUCKETS, AE_DIGEST_BYTES, decodeTicketKeyList, encode, encodeShares, encodeTicketKeyList, encodeUpdates, MAX_SHARES_PER_FRAME, packDigests,
  ProtocolError, type Msg, type TicketKeysMsg,
} from './codec.js';
import { boxAad, open, seal } from './ticket-box.js';
import type { LagWindow } from './lag-window.js';
import type { ReplicatedCounters, ReplicatedTable, ShareUpdate, TableUpdate } from './types.js';

/** The receiver's view of a peer's log: what it last received and applied from it. */
export interface RecvCursor {
  epoch: string;
  seq: number;
}

/** Counters owned by the peer link (they outlive sessions); the session adds to them. */
export interface LinkStats {
  sent: number;
  received: number;
  lagMs: number;
  resyncsSent: number;
  resyncsReceived: number;
  /** Frame bytes written to / read from this peer in sessions (handshake excluded). */
  bytesSent: number;
  bytesReceived: number;
  /** Wall ms of the last ack received from this peer (0 = none yet). */
  lastAckAt: number;
  /** Wall ms of the last frame (message, ping or pong) received from this peer in a session (0 = none yet). */
  lastDataAt: number;
  /** Sessions established with this peer (the first one plus reconnects). */
  sessions: number;
  /** Anti-entropy, see AntiEntropyStats in types.ts. */
  aeRounds: number;
  bucketsCompared: number;
  bucketsRepaired: number;
  entriesRepaired: number;
  repairSent: number;
  /** Counter shares: sent (flushes and exports), received, refused by `applyShares`, ignored (table's counters not exchanged). */
  sharesSent: number;
  sharesReceived: number;
  sharesRejected: number;
  sharesIgnored: number;
  /** Lag of flushed share batches applied from this peer (apply time - `wall`). */
  counterLag: LagWindow;
  /** TLS ticket keys: `tk` messages sent and received, keys from them the ring took and refused. */
  ticketKeysSent: number;
  ticketKeysReceived: number;
  ticketKeysLearned: number;
  ticketKeysRefused: number;
}

/** What a session that exchanges TLS ticket keys needs (see ticket-box.ts for the sealing). */
export interface TicketKeyLink {
  ring: SharedTicketKeys;
  /** AES-256-GCM key derived from the shared secret. */
  boxKey: Buffer;
  /** This node's name and the cluster's (AAD). */
  self: string;
  cluster: string;
  /** serverNonce | clientNonce of this session's handshake (AAD). */
  sessionId: Buffer;
}

/** Anti-entropy settings of a session; absent when either side does not take part. */
export interface AntiEntropyLimits {
  intervalMs: number;
  /** Buckets exchanged per table per round, 1..AE_BUCKETS. */
  maxBuckets: number;
}

export interface SessionLimits {
  maxBatch: number;
  /**
   * Update frames (delta, resync or share export, each of at most maxBatch entries) one pump writes
   * to this session; the rest waits for the next pump, which the service runs on the next turn of
   * the event loop. Bounds the synchronous work of one turn, so reading frames (and, on a node,
   * proxying) interleaves with a long export.
   */
  turnBatches: number;
  /** Entries per `repair-u` frame; one such frame per table per pump (see pumpRepair). */
  repairBatch: number;
  /** Slots of the table one `exportBuckets` call examines at most. */
  repairScan: number;
  maxFrameBytes: number;
  maxQueueBytes: number;
  /** Send more only while ws.bufferedAmount is below this. */
  lowWaterBytes: number;
}

export interface SessionHost {
  tables: ReadonlyMap<string, ReplicatedTable>;
  /** Per table id: receiver cursor for this peer (caller-owned, survives reconnects). */
  recv: Map<string, RecvCursor>;
  stats: LinkStats;
  limits: SessionLimits;
  logger: Logger;
  /** A full resync of `table` from this peer completed (readiness). */
  onResynced(table: string): void;
  /** Drop the connection (queue overflow). */
  drop(reason: 'queue-overflow', detail: string): void;
  /** This side dialed (it drives anti-entropy rounds). */
  dialer: boolean;
  antiEntropy: AntiEntropyLimits | undefined;
  /** Per table id: the counters whose shares this session exchanges (both sides, same schema). */
  counters: ReadonlyMap<string, ReplicatedCounters>;
  /** TLS ticket keys, when both sides advertised 'tk'; undefined otherwise. */
  ticketKeys: TicketKeyLink | undefined;
}

interface Sender {
  mode: 'idle' | 'full' | 'delta';
  exportCursor: number;
  seqAtStart: number;
  /** Our log position sent so far. */
  sentSeq: number;
  /** Our log position the peer acknowledged. */
  ackedSeq: number;
  /** Send a (possibly empty) delta even without new writes: tells the peer its resume was accepted. */
  mustSend: boolean;
}

interface Receiver {
  mode: 'await' | 'resyncing' | 'live';
  ackDue: boolean;
}

/**
 * Anti-entropy round state of one table. Dialer: idle -> waiting (digest sent) -> exchange (or back
 * to idle if nothing differed). Acceptor: idle -> exchange (after answering a digest with buckets).
 * An exchange ends when our export is done (`cursor` -1) and the peer's `repair-end` arrived.
 */
interface Repair {
  phase: 'idle' | 'waiting' | 'exchange';
  /** Flag per bucket: exchanged in the current round. */
  readonly want: Uint8Array;
  /** Our export position in the current round; -1 = done. */
  cursor: number;
  peerDone: boolean;
  /** Dialer: wall ms of the next digest. */
  nextAt: number;
  /** Acceptor: bucket to start the next selection from, so persistent differences cannot starve others. */
  rotate: number;
}

/**
 * Encodes `shares` as `c` frames of at most `maxFrameBytes`: one frame when it fits, else halves
 * until each piece fits; a single share that cannot fit is reported to `tooLarge` and skipped.
 */
export function encodeShareFrames(
  id: string, wall: number, shares: ShareUpdate[], maxFrameBytes: number,
  emit: (buf: Buffer, n: number) => void, tooLarge: (key: string, bytes: number) => void,
): void {
  const buf = encodeShares(id, wall, shares);
  if (buf.length <= maxFrameBytes) return emit(buf, shares.length);
  if (shares.length <= 1) return tooLarge(shares[0]?.key ?? '', buf.length);
  const mid = shares.length >> 1;
  encodeShareFrames(id, wall, shares.slice(0, mid), maxFrameBytes, emit, tooLarge);
  encodeShareFrames(id, wall, shares.slice(mid), maxFrameBytes, emit, tooLarge);
}

export class PeerSession {
  private readonly send = new Map<string, Sender>();
  private readonly rcv = new Map<string, Receiver>();
  /** Tables taking part in anti-entropy (both methods present and the session negotiated it). */
  private readonly repair = new Map<string, Repair>();
  private readonly scratch: TableUpdate[] = [];
  /** Per table with exchanged counters: position of the start-of-session share export, -1 = done. */
  private readonly shareExport = new Map<string, number>();
  private readonly shareScratch: ShareUpdate[] = [];
  private closed = false;
  /** Update frames this pump may still write (limits.turnBatches at each pump's start). */
  private budget = 0;
  /** The last pump stopped on its frame budget with room left in the socket: pump again on the next turn. */
  busy = false;
  /** Last `tk` seq sent and received in this session. */
  private tkSent = 0;
  private tkReceived = 0;

  constructor(readonly peer: string, private readonly ws: WebSocket, private readonly host: SessionHost) {
    for (const [id, t] of host.tables) {
      this.send.set(id, { mode: 'idle', exportCursor: 0, seqAtStart: 0, sentSeq: 0, ackedSeq: 0, mustSend: false });
      this.rcv.set(id, { mode: 'await', ackDue: false });
      if (!host.recv.has(id)) host.recv.set(id, { epoch: '', seq: 0 });
      if (host.antiEntropy && t.bucketDigests && t.exportBuckets) {
        this.repair.set(id, { phase: 'idle', want: new Uint8Array(AE_BUCKETS), cursor: -1, peerDone: false, nextAt: 0, rotate: 0 });
      }
    }
    for (const id of host.counters.keys()) if (host.tables.has(id)) this.shareExport.set(id, 0);
  }

  /** Opens replication: tells the peer, per table, where to resume its log from our point of view. */
  start(): void {
    this.sendTicketKeys();
    for (const id of this.host.tables.keys()) {
      const c = this.host.recv.get(id)!;
      this.write(encode({ t: 'resume', table: id, epoch: c.epoch, seq: c.seq }));
    }
  }

  /** 'resyncing' until every table is live in both directions. */
  get state(): 'resyncing' | 'live' {
    for (const s of this.send.values()) if (s.mode !== 'delta') return 'resyncing';
    for (const r of this.rcv.values()) if (r.mode !== 'live') return 'resyncing';
    return 'live';
  }

  /** Counts a received message frame's bytes and notes when it came, `now` (status). */
  received(bytes: number, now: number): void {
    this.host.stats.bytesReceived += bytes;
    this.host.stats.lastDataAt = now;
  }

  /** Notes a control frame (ping or pong) from the peer at `now`: the peer is still talking (status). */
  heard(now: number): void {
    this.host.stats.lastDataAt = now;
  }

  /** Local log positions not yet acknowledged by the peer, summed over tables (status). */
  pending(): number {
    let n = 0;
    for (const [id, s] of this.send) n += Math.max(0, (this.host.tables.get(id)?.seq ?? 0) - s.ackedSeq);
    return n;
  }

  /** True when this session carries table `id` (an internal table is carried only if both sides list it). */
  carries(id: string): boolean {
    return this.send.has(id);
  }

  /** Acked seq per table (status). */
  cursors(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, s] of this.send) out[id] = s.ackedSeq;
    return out;
  }

  close(): void {
    this.closed = true;
  }

  /** Handles one post-handshake message. Throws ProtocolError on anything out of place. */
  handle(msg: Msg): void {
    switch (msg.t) {
      case 'resume': return this.onResume(msg.table, msg.epoch, msg.seq);
      case 'u': return this.onDelta(msg.table, msg.seq, msg.updates);
      case 'resync': return this.onResyncBatch(msg.table, msg.updates);
      case 'resync-done': return this.onResyncDone(msg.table, msg.epoch, msg.seq);
      case 'ack': {
        const s = this.sender(msg.table);
        if (msg.seq > s.sentSeq) throw new ProtocolError('unexpected-message', `ack ${msg.seq} beyond sent ${s.sentSeq}`);
        if (msg.seq > s.ackedSeq) s.ackedSeq = msg.seq;
        this.host.stats.lastAckAt = Date.now();
        return;
      }
      case 'digest': return this.onDigest(msg.table, msg.digests);
      case 'repair': return this.onRepair(msg.table, msg.buckets, msg.differing);
      case 'repair-u': return this.onRepairUpdates(msg.table, msg.updates);
      case 'c': return this.onShares(msg.table, msg.wall, msg.shares);
      case 'tk': return this.onTicketKeys(msg);
      case 'repair-end': {
        const r = this.repairOf(msg.table, 'exchange', 'repair-end');
        if (r.peerDone) throw new ProtocolError('unexpected-message', `second repair-end for '${msg.table}'`);
        r.peerDone = true;
        return this.finishRound(r);
      }
      default:
        throw new ProtocolError('unexpected-message', `'${msg.t}' after the handshake`);
    }
  }

  private sender(id: string): Sender {
    const s = this.send.get(id);
    if (!s) throw new ProtocolError('unexpected-message', `unknown table '${id}'`);
    return s;
  }

  private receiver(id: string): { r: Receiver; table: ReplicatedTable } {
    const r = this.rcv.get(id);
    const table = this.host.tables.get(id);
    if (!r || !table) throw new ProtocolError('unexpected-message', `unknown table '${id}'`);
    return { r, table };
  }

  /**
   * A peer's shares: replace its previous share per key. A table whose counters this session does
   * not exchange (schema differs, counted at the session's start) ignores them; a share of another
   * width than the table's is a violation.
   */
  private onShares(id: string, wall: number, shares: ShareUpdate[]): void {
    if (!this.host.tables.has(id)) throw new ProtocolError('unexpected-message', `unknown table '${id}'`);
    const st = this.host.stats;
    const c = this.host.counters.get(id);
    if (!c) {
      st.sharesIgnored += shares.length;
      return;
    }
    const first = shares[0];
    if (first && first.v.length !== c.width) throw new ProtocolError('malformed-frame', `shares of width ${first.v.length} for '${id}', expected ${c.width}`);
    let rejected = 0;
    for (const u of shares) if (!c.applyShares(this.peer, u)) rejected++;
    st.sharesReceived += shares.length;
    st.sharesRejected += rejected;
    if (wall > 0 && shares.length > 0) {
      const now = Date.now();
      st.counterLag.record(Math.max(0, now - wall), now);
    }
  }

  /** True when this session exchanges TLS ticket keys. */
  sharesTicketKeys(): boolean {
    return this.host.ticketKeys !== undefined;
  }

  /** Sends the node's whole ticket key ring, sealed; nothing when this session does not exchange keys. */
  sendTicketKeys(): void {
    const tk = this.host.ticketKeys;
    if (!tk || this.closed) return;
    const seq = ++this.tkSent;
    const { iv, box } = seal(tk.boxKey, boxAad(tk.self, this.peer, tk.cluster, tk.sessionId, seq), encodeTicketKeyList(tk.ring.entries()));
    this.write(encode({ t: 'tk', seq, iv, box }));
    this.host.stats.ticketKeysSent++;
  }

  /**
   * A peer's ring: opened with the session's AAD (a box that fails is 'ticket-keys-auth-failed'),
   * decoded strictly (else 'malformed-frame'), then merged; the ring refuses what its own checks
   * reject. Nothing reaches the ring before the box opened and the whole list decoded.
   */
  private onTicketKeys(msg: TicketKeysMsg): void {
    const tk = this.host.ticketKeys;
    if (!tk) throw new ProtocolError('unexpected-message', "'tk' on a session that does not exchange ticket keys");
    if (msg.seq <= this.tkReceived) throw new ProtocolError('unexpected-message', `'tk' seq ${msg.seq} after ${this.tkReceived}`);
    const plain = open(tk.boxKey, boxAad(this.peer, tk.self, tk.cluster, tk.sessionId, msg.seq), msg.iv, msg.box);
    if (!plain) throw new ProtocolError('ticket-keys-auth-failed', "'tk' box does not authenticate (another secret, or altered)");
    const keys = decodeTicketKeyList(plain);
    this.tkReceived = msg.seq;
    const r = tk.ring.merge(keys, this.peer);
    const st = this.host.stats;
    st.ticketKeysReceived++;
    st.ticketKeysLearned += r.installed;
    st.ticketKeysRefused += r.refused;
  }

  /** True when this session exchanges the counters of table `id`. */
  sharesCounters(id: string): boolean {
    return this.host.counters.has(id);
  }

  /** Writes a `c` frame the service encoded once for every session (see the header). */
  sendShares(buf: Buffer, n: number): void {
    this.write(buf);
    this.host.stats.sharesSent += n;
  }

  /** The table's round state, which must be in `phase`; anything else is a protocol violation. */
  private repairOf(id: string, phase: Repair['phase'], what: string): Repair {
    const r = this.repair.get(id);
    if (!r || r.phase !== phase) throw new ProtocolError('unexpected-message', `'${what}' for '${id}' outside an anti-entropy round`);
    return r;
  }

  /** Acceptor: compare, answer with the buckets of this round, start exporting ours. */
  private onDigest(id: string, digests: Uint8Array): void {
    if (this.host.dialer) throw new ProtocolError('unexpected-message', 'digest sent to the dialing side');
    if (this.host.antiEntropy && this.host.tables.has(id) && !this.repair.has(id)) {
      // Negotiated, but this table cannot take part here: nothing to exchange.
      this.write(encode({ t: 'repair', table: id, buckets: [], differing: 0 }));
      return;
    }
    const r = this.repairOf(id, 'idle', 'digest');
    const mine = this.host.tables.get(id)!.bucketDigests!();
    if (mine.length * 4 !== AE_DIGEST_BYTES) throw new Error(`table '${id}' has ${mine.length / 2} digest buckets, expected ${AE_BUCKETS}`);
    const theirs = Buffer.from(digests.buffer, digests.byteOffset, digests.byteLength);
    const limit = this.host.antiEntropy!.maxBuckets;
    const picked: number[] = [];
    let differing = 0;
    for (let i = 0; i < AE_BUCKETS; i++) {
      const b = (r.rotate + i) % AE_BUCKETS;
      if (mine[2 * b] === theirs.readUInt32LE(8 * b) && mine[2 * b + 1] === theirs.readUInt32LE(8 * b + 4)) continue;
      differing++;
      if (picked.length < limit) picked.push(b);
    }
    const st = this.host.stats;
    st.aeRounds++;
    st.bucketsCompared += AE_BUCKETS;
    st.bucketsRepaired += picked.length;
    if (picked.length > 0) r.rotate = (picked[picked.length - 1]! + 1) % AE_BUCKETS;
    picked.sort((x, y) => x - y);
    this.write(encode({ t: 'repair', table: id, buckets: picked, differing }));
    if (picked.length > 0) this.openRound(r, picked);
  }

  /** Dialer: the acceptor chose this round's buckets (none: tables agree). */
  private onRepair(id: string, buckets: number[], differing: number): void {
    if (!this.host.dialer) throw new ProtocolError('unexpected-message', 'repair sent to the accepting side');
    const r = this.repairOf(id, 'waiting', 'repair');
    this.host.stats.bucketsRepaired += buckets.length;
    if (buckets.length === 0) {
      r.phase = 'idle';
      r.nextAt = Date.now() + this.host.antiEntropy!.intervalMs;
      return;
    }
    this.host.logger.debug({ peer: this.peer, table: id, buckets: buckets.length, differing }, 'peers: anti-entropy repair');
    this.openRound(r, buckets);
  }

  private openRound(r: Repair, buckets: number[]): void {
    r.want.fill(0);
    for (const b of buckets) r.want[b] = 1;
    r.phase = 'exchange';
    r.cursor = 0;
    r.peerDone = false;
  }

  private onRepairUpdates(id: string, updates: TableUpdate[]): void {
    this.repairOf(id, 'exchange', 'repair-u');
    const table = this.host.tables.get(id)!;
    let applied = 0;
    for (const u of updates) if (table.applyRemote(u)) applied++;
    this.host.stats.entriesRepaired += applied;
  }

  private finishRound(r: Repair): void {
    if (r.phase !== 'exchange' || !r.peerDone || r.cursor !== -1) return;
    r.phase = 'idle';
    r.want.fill(0);
    if (this.host.dialer) r.nextAt = Date.now() + this.host.antiEntropy!.intervalMs;
  }

  private onResume(id: string, epoch: string, seq: number): void {
    const s = this.sender(id);
    const table = this.host.tables.get(id)!;
    s.ackedSeq = 0;
    if (epoch === table.epoch && seq <= table.seq) {
      // Deltas from the peer's position; pump() falls back to a full resync if the log lost that seq.
      s.mode = 'delta';
      s.sentSeq = seq;
      s.ackedSeq = seq;
      s.mustSend = true;
    } else {
      this.startFull(id, s, table);
    }
  }

  private startFull(id: string, s: Sender, table: ReplicatedTable): void {
    // Capture the log position first: writes made during the export are delivered as deltas afterwards.
    s.mode = 'full';
    s.seqAtStart = table.seq;
    s.exportCursor = 0;
    s.mustSend = false;
    this.host.stats.resyncsSent++;
    this.host.logger.debug({ peer: this.peer, table: id, seq: s.seqAtStart }, 'peers: full resync to peer');
  }

  private onDelta(id: string, seq: number, updates: TableUpdate[]): void {
    const { r, table } = this.receiver(id);
    if (r.mode === 'resyncing') throw new ProtocolError('unexpected-message', `delta for '${id}' during a resync`);
    const cur = this.host.recv.get(id);
    if (!cur || seq < cur.seq) throw new ProtocolError('unexpected-message', `delta for '${id}' goes back to seq ${seq}`);
    r.mode = 'live';
    let newest = 0;
    for (const u of updates) {
      table.applyRemote(u);
      if (u.wall > newest) newest = u.wall;
    }
    this.host.stats.received += updates.length;
    if (updates.length > 0) this.host.stats.lagMs = Math.max(0, Date.now() - newest);
    if (seq > cur.seq) {
      cur.seq = seq;
      r.ackDue = true;
    }
  }

  /**
   * A resync batch may also arrive on a live table: the sender restarts a full resync when this
   * side's position fell off its bounded update log (a slow receiver). The table leaves 'live'
   * until the matching resync-done.
   */
  private onResyncBatch(id: string, updates: TableUpdate[]): void {
    const { r, table } = this.receiver(id);
    r.mode = 'resyncing';
    for (const u of updates) table.applyRemote(u);
    this.host.stats.received += updates.length;
  }

  /** Ends a resync; on a live table it ends an empty restarted resync (see onResyncBatch). */
  private onResyncDone(id: string, epoch: string, seq: number): void {
    const { r } = this.receiver(id);
    r.mode = 'live';
    r.ackDue = true;
    this.host.recv.set(id, { epoch, seq });
    this.host.stats.resyncsReceived++;
    this.host.onResynced(id);
  }

  /**
   * Does all pending send work that fits under the low watermark: resync batches, deltas, acks.
   * Returns true if work remains (the caller polls again on the next flush tick).
   */
  pump(): boolean {
    this.busy = false;
    if (this.closed) return false;
    this.budget = this.host.limits.turnBatches;
    let more = false;
    for (const [id, r] of this.rcv) {
      if (!r.ackDue) continue;
      r.ackDue = false;
      this.write(encode({ t: 'ack', table: id, seq: this.host.recv.get(id)?.seq ?? 0 }));
    }
    if (this.shareExport.size > 0 && this.pumpShareExport()) more = true;
    for (const [id, s] of this.send) {
      const table = this.host.tables.get(id)!;
      if (s.mode === 'full') this.pumpFull(id, s, table);
      if (s.mode === 'delta') this.pumpDelta(id, s, table);
      if (this.closed) return false;
      if (s.mode === 'full' || (s.mode === 'delta' && (s.mustSend || table.seq > s.sentSeq))) more = true;
    }
    if (this.repair.size > 0 && this.pumpRepair()) more = true;
    return more;
  }

  /**
   * Anti-entropy sending: our entries of open rounds (while under the low watermark), then, on the
   * dialer once the session is live, the digests that are due. Returns true if an export remains.
   */
  private pumpRepair(): boolean {
    let more = false;
    const now = Date.now();
    const live = this.host.dialer && this.state === 'live';
    for (const [id, r] of this.repair) {
      const table = this.host.tables.get(id)!;
      if (r.phase === 'exchange' && r.cursor !== -1) {
        // One frame (or one bounded scan) per table per pump: a round's export is background work
        // and must not hold the event loop, nor queue ahead of the deltas of the next turns.
        const out = this.scratch;
        if (this.roomy()) {
          out.length = 0;
          const { repairBatch, repairScan } = this.host.limits;
          r.cursor = table.exportBuckets!(r.want, r.cursor, repairBatch, out, repairScan);
          if (out.length > 0) this.sendBatch('repair-u', id, 0, out);
          if (r.cursor === -1) this.write(encode({ t: 'repair-end', table: id }));
          else if (this.roomy()) this.busy = true;
        }
        if (this.closed) return false;
        if (r.cursor !== -1) more = true;
        else this.finishRound(r);
      } else if (live && r.phase === 'idle' && now >= r.nextAt && this.roomy()) {
        this.write(encode({ t: 'digest', table: id, digests: packDigests(table.bucketDigests!()) }));
        this.host.stats.aeRounds++;
        r.phase = 'waiting';
      }
    }
    return more;
  }

  /** Streams the start-of-session share exports while under the low watermark; true if one remains. */
  private pumpShareExport(): boolean {
    const out = this.shareScratch;
    const max = Math.min(this.host.limits.maxBatch, MAX_SHARES_PER_FRAME);
    for (const [id, cursor] of this.shareExport) {
      const c = this.host.counters.get(id)!;
      let at = cursor;
      while (at !== -1 && this.spend()) {
        out.length = 0;
        at = c.exportShares(at, max, out);
        if (out.length > 0) this.sendShareBatch(id, 0, out);
      }
      if (this.closed) return false;
      if (at !== -1) {
        this.shareExport.set(id, at);
        return true;
      }
      this.shareExport.delete(id);
    }
    return false;
  }

  private sendShareBatch(id: string, wall: number, out: ShareUpdate[]): void {
    encodeShareFrames(id, wall, out, this.host.limits.maxFrameBytes, (buf, n) => this.sendShares(buf, n), (key, bytes) =>
      this.host.logger.warn({ peer: this.peer, table: id, key, bytes }, 'peers: counter share larger than maxFrameBytes not replicated'));
  }

  private roomy(): boolean {
    return !this.closed && this.ws.bufferedAmount < this.host.limits.lowWaterBytes;
  }

  /**
   * True when one more update frame may be written in this pump: the socket is below the low
   * watermark and the pump's frame budget is not used up (then `busy` asks for the next turn).
   */
  private spend(): boolean {
    if (!this.roomy()) return false;
    if (this.budget <= 0) {
      this.busy = true;
      return false;
    }
    this.budget--;
    return true;
  }

  private pumpFull(id: string, s: Sender, table: ReplicatedTable): void {
    const out = this.scratch;
    while (this.spend()) {
      out.length = 0;
      const next = table.exportBatch(s.exportCursor, this.host.limits.maxBatch, out);
      if (out.length > 0) this.sendBatch('resync', id, 0, out);
      if (next === -1) {
        this.write(encode({ t: 'resync-done', table: id, epoch: table.epoch, seq: s.seqAtStart }));
        s.mode = 'delta';
        s.sentSeq = s.seqAtStart;
        s.mustSend = false;
        return;
      }
      s.exportCursor = next;
    }
  }

  private pumpDelta(id: string, s: Sender, table: ReplicatedTable): void {
    const out = this.scratch;
    while ((s.mustSend || table.seq > s.sentSeq) && this.spend()) {
      out.length = 0;
      const from = s.sentSeq;
      const next = table.readUpdates(from, this.host.limits.maxBatch, out);
      if (next === -1) {
        this.host.logger.info({ peer: this.peer, table: id, seq: from }, 'peers: peer position fell off the update log, full resync');
        this.startFull(id, s, table);
        this.pumpFull(id, s, table);
        return;
      }
      const upTo = Math.max(from, next);
      if (out.length > 0 || upTo > from || s.mustSend) this.sendBatch('u', id, upTo, out, from);
      s.sentSeq = upTo;
      s.mustSend = false;
      if (upTo === from && out.length === 0) return; // the log had nothing more to give
    }
  }

  /**
   * Sends an update batch, halving it until each frame fits the peer's maxFrameBytes. For deltas only
   * the last piece claims `seq`; earlier pieces claim `prevSeq` so the receiver never records a
   * position it has not fully applied.
   */
  private sendBatch(t: 'u' | 'resync' | 'repair-u', id: string, seq: number, updates: TableUpdate[], prevSeq = 0): void {
    const buf = encodeUpdates(t, id, seq, updates);
    if (buf.length <= this.host.limits.maxFrameBytes) {
      this.write(buf);
      if (t === 'repair-u') this.host.stats.repairSent += updates.length;
      else this.host.stats.sent += updates.length;
      return;
    }
    if (updates.length <= 1) {
      this.host.logger.warn({ peer: this.peer, table: id, key: updates[0]?.key, bytes: buf.length }, 'peers: update larger than maxFrameBytes not replicated');
      if (t === 'u') this.write(encodeUpdates(t, id, seq, []));
      return;
    }
    const half = updates.length >> 1;
    this.sendBatch(t, id, prevSeq, updates.slice(0, half), prevSeq);
    this.sendBatch(t, id, seq, updates.slice(half), prevSeq);
  }

  private write(buf: Buffer): void {
    if (this.closed) return;
    this.ws.send(buf);
    this.host.stats.bytesSent += buf.length;
    if (this.ws.bufferedAmount > this.host.limits.maxQueueBytes) {
      this.closed = true;
      this.host.drop('queue-overflow', `${this.ws.bufferedAmount} bytes queued to peer`);
    }
  }
}
