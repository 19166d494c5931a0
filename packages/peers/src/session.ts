/**
 * Replication over one authenticated connection, for all tables. Per table and direction:
 *
 * sender:   idle --resume--> delta (epoch matches, log still holds the seq)  or  full resync
 *           full: exportBatch in batches while the socket is below the low watermark, then
 *           'resync-done' carrying the seq captured before the export, then delta from that seq.
 * receiver: await --'u'--> live,  await --'resync'...--> resyncing --'resync-done'--> live.
 *
 * The receiver's (epoch, seq) per peer and table lives in the caller-owned `recv` map so it survives
 * reconnects: the next session resumes from it instead of starting over.
 */
import type WebSocket from 'ws';
import type { Logger } from 'pino';
import { encode, encodeUpdates, ProtocolError, type Msg } from './codec.js';
import type { ReplicatedTable, TableUpdate } from './types.js';

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
  /** Sessions established with this peer (the first one plus reconnects). */
  sessions: number;
}

export interface SessionLimits {
  maxBatch: number;
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

export class PeerSession {
  private readonly send = new Map<string, Sender>();
  private readonly rcv = new Map<string, Receiver>();
  private readonly scratch: TableUpdate[] = [];
  private closed = false;

  constructor(readonly peer: string, private readonly ws: WebSocket, private readonly host: SessionHost) {
    for (const id of host.tables.keys()) {
      this.send.set(id, { mode: 'idle', exportCursor: 0, seqAtStart: 0, sentSeq: 0, ackedSeq: 0, mustSend: false });
      this.rcv.set(id, { mode: 'await', ackDue: false });
      if (!host.recv.has(id)) host.recv.set(id, { epoch: '', seq: 0 });
    }
  }

  /** Opens replication: tells the peer, per table, where to resume its log from our point of view. */
  start(): void {
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

  /** Counts a received frame's bytes (status). */
  received(bytes: number): void {
    this.host.stats.bytesReceived += bytes;
  }

  /** Local log positions not yet acknowledged by the peer, summed over tables (status). */
  pending(): number {
    let n = 0;
    for (const [id, s] of this.send) n += Math.max(0, (this.host.tables.get(id)?.seq ?? 0) - s.ackedSeq);
    return n;
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

  private onResyncBatch(id: string, updates: TableUpdate[]): void {
    const { r, table } = this.receiver(id);
    if (r.mode === 'live') throw new ProtocolError('unexpected-message', `resync batch for live table '${id}'`);
    r.mode = 'resyncing';
    for (const u of updates) table.applyRemote(u);
    this.host.stats.received += updates.length;
  }

  private onResyncDone(id: string, epoch: string, seq: number): void {
    const { r } = this.receiver(id);
    if (r.mode === 'live') throw new ProtocolError('unexpected-message', `resync-done for live table '${id}'`);
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
    if (this.closed) return false;
    let more = false;
    for (const [id, r] of this.rcv) {
      if (!r.ackDue) continue;
      r.ackDue = false;
      this.write(encode({ t: 'ack', table: id, seq: this.host.recv.get(id)?.seq ?? 0 }));
    }
    for (const [id, s] of this.send) {
      const table = this.host.tables.get(id)!;
      if (s.mode === 'full') this.pumpFull(id, s, table);
      if (s.mode === 'delta') this.pumpDelta(id, s, table);
      if (this.closed) return false;
      if (s.mode === 'full' || (s.mode === 'delta' && (s.mustSend || table.seq > s.sentSeq))) more = true;
    }
    return more;
  }

  private roomy(): boolean {
    return !this.closed && this.ws.bufferedAmount < this.host.limits.lowWaterBytes;
  }

  private pumpFull(id: string, s: Sender, table: ReplicatedTable): void {
    const out = this.scratch;
    while (this.roomy()) {
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
    while (this.roomy() && (s.mustSend || table.seq > s.sentSeq)) {
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
  private sendBatch(t: 'u' | 'resync', id: string, seq: number, updates: TableUpdate[], prevSeq = 0): void {
    const buf = encodeUpdates(t, id, seq, updates);
    if (buf.length <= this.host.limits.maxFrameBytes) {
      this.write(buf);
      this.host.stats.sent += updates.length;
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
