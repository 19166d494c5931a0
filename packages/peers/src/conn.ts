/**
 * One WebSocket from open to close, on either side: handshake state machine, then a PeerSession;
 * heartbeat and deadlines are driven by `tick` from the service's wheel task. Every way a connection
 * can fail (bad frame, bad auth, silence, overflow) ends in closing this one socket and reporting to
 * the host — never in a throw that reaches the event loop.
 */
import type WebSocket from 'ws';
import { decode, encode, PROTO, ProtocolError, type Msg, type TableSchema } from './codec.js';
import { setFrameLimit } from './frame-limit.js';
import { checkAuth, checkHello, compareSchemas, computeMac, macEqual, newNonce } from './handshake.js';
import { clip, remoteReason, type RefusalReason } from './refusals.js';
import { PeerSession, type SessionHost } from './session.js';

/** Close codes (see docs/PEERS-PROTOCOL.md). */
export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_POLICY = 1008;
export const CLOSE_REPLACED = 4000;

export interface ConnHost {
  readonly node: string;
  readonly cluster: string;
  readonly secret: string;
  readonly schema: TableSchema[];
  /** Internal tables (ids starting with `#`), advertised apart as `internal` (see codec.ts AuthMsg). */
  readonly internalSchema: TableSchema[];
  readonly peerNames: ReadonlySet<string>;
  /** Capabilities advertised in auth/welcome (e.g. 'ae'). */
  readonly caps: string[];
  readonly handshakeTimeoutMs: number;
  readonly heartbeatMs: number;
  readonly deadAfterMs: number;
  /** Half-closes an inbound connection's TCP socket (after its close frame); reading is the caller's business. */
  endSocket(conn: Conn): void;
  /** Frame limit once authenticated (the connection starts with the smaller pre-auth limit). */
  readonly maxFrameBytes: number;
  /** True when an inbound connection's source has used up its failed-handshake budget. */
  overBudget(conn: Conn): boolean;
  /** Handshake done: the host binds the connection to its peer link and returns the session's host. */
  onAuthenticated(conn: Conn): SessionHost;
  onClosed(conn: Conn, code: number, reason: string): void;
  /**
   * A refusal or drop, `side` = who decided it. The host logs and counts it, against the peer when
   * `conn.named`, else against `conn.address`. `remoteText` is the peer's own close reason (clipped).
   */
  refused(conn: Conn, reason: RefusalReason, detail: string, side: 'local' | 'remote', remoteText?: string): void;
  wantFlush(): void;
}

type Phase = 'connecting' | 'hello' | 'auth' | 'welcome' | 'session' | 'closed';

export class Conn {
  phase: Phase;
  /**
   * Peer name: the dialed peer (client), or on the server side the source address until the auth's
   * MAC verified, then the peer's node name.
   */
  peer: string;
  /** Server side: the node name the auth claimed, clipped (remote text until `named`). */
  claimed: string | undefined;
  session: PeerSession | undefined;
  lastError: string | undefined;
  /** Capabilities the peer advertised in its auth (server side) or welcome (client side). */
  peerCaps: string[] = [];
  /** The table list the peer sent in its auth (server side) or welcome (client side). */
  peerTables: TableSchema[] = [];
  /** The internal tables the peer listed (none for a node that predates them). */
  peerInternal: TableSchema[] = [];
  private readonly openedAt = Date.now();
  private lastRx = Date.now();
  private lastPing = Date.now();
  private closingAt = 0;
  /** Server side: the auth's MAC verified (the claimed name is the peer's). */
  private verified = false;
  private nonce: Uint8Array | undefined;
  private nonce2: Uint8Array | undefined;

  /**
   * `address`: the source address (server side) or the dialed peer's name (client side); `remote`:
   * address:port of the other end (server side; the key of its raw-connection record).
   */
  constructor(
    readonly role: 'client' | 'server',
    readonly ws: WebSocket,
    readonly address: string,
    private readonly host: ConnHost,
    readonly remote = address,
  ) {
    this.peer = address;
    this.phase = role === 'client' ? 'connecting' : 'auth';
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => {
      this.phase = 'hello';
      this.lastRx = Date.now();
    });
    ws.on('message', (data, isBinary) => this.onFrame(data as Buffer, isBinary));
    ws.on('pong', () => this.onControl());
    ws.on('ping', () => this.onControl());
    ws.on('error', (err: Error & { code?: string }) => this.onError(err));
    ws.on('close', (code, reason) => this.onClose(code, reason.toString()));
    if (role === 'server') {
      this.nonce = newNonce();
      this.sendMsg({ t: 'hello', proto: PROTO, cluster: host.cluster, node: host.node, nonce: this.nonce });
    }
  }

  /** The session's identity once established: the server's nonce then the client's (64 bytes). */
  get sessionId(): Buffer {
    return Buffer.concat([this.nonce!, this.nonce2!]);
  }

  /** The other end is a configured peer we dialed, or one whose MAC verified: refusals name it. */
  get named(): boolean {
    return this.role === 'client' || this.verified;
  }

  /** True while the connection has not proven itself. */
  get unauthenticated(): boolean {
    return this.phase !== 'session' && this.phase !== 'closed';
  }

  /**
   * Still in its handshake: unauthenticated and not being closed (counts against maxUnauthenticated;
   * a refused connection waiting out its close no longer takes a handshake slot, its socket still
   * counts against the raw-connection bounds until it is gone).
   */
  get inHandshake(): boolean {
    return this.unauthenticated && this.closingAt === 0;
  }

  private sendMsg(m: Msg): void {
    this.ws.send(encode(m));
  }

  /** A ping or pong arrived: the peer is alive (heartbeat), and in a session its status says so. */
  private onControl(): void {
    this.lastRx = Date.now();
    if (this.phase === 'session') this.session!.heard(this.lastRx);
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (this.phase === 'closed' || this.closingAt) return;
    this.lastRx = Date.now();
    try {
      if (!isBinary) throw new ProtocolError('malformed-frame', 'text frame');
      const msg = decode(data);
      switch (this.phase) {
        case 'session':
          this.session!.received(data.length, this.lastRx);
          this.session!.handle(msg);
          this.host.wantFlush();
          return;
        case 'auth':
          return this.onAuth(msg);
        case 'hello':
          return this.onHello(msg);
        case 'welcome':
          return this.onWelcome(msg);
        default:
          throw new ProtocolError('unexpected-message', `'${msg.t}' in phase ${this.phase}`);
      }
    } catch (err) {
      if (err instanceof ProtocolError) return this.refuse(err.reason, err.message);
      // A table implementation threw: drop this session (the peer will resync) rather than the process.
      this.refuse('unexpected-message', `error handling frame: ${(err as Error).message}`);
    }
  }

  private onAuth(m: Msg): void {
    if (m.t !== 'auth') throw new ProtocolError('unexpected-message', `expected auth, got '${m.t}'`);
    this.claimed = clip(m.node);
    const h = this.host;
    // Sources that failed too often are refused before the MAC is computed.
    if (h.overBudget(this)) return this.refuse('rate-limited', 'source over its failed-handshake budget');
    const bad = checkAuth(m, { cluster: h.cluster, node: h.node, secret: h.secret, nonce: this.nonce!, peers: h.peerNames });
    if (bad) return this.refuse(bad.reason, bad.detail);
    this.peer = m.node;
    this.verified = true;
    this.nonce2 = m.nonce2;
    const badTables = compareSchemas(h.schema, m.tables);
    if (badTables) return this.refuse(badTables.reason, badTables.detail);
    const mac2 = computeMac(h.secret, 's', m.nonce2, this.nonce!, m.node, h.node, h.cluster);
    this.peerCaps = m.caps;
    this.peerTables = m.tables;
    this.peerInternal = m.internal ?? [];
    this.sendMsg({ t: 'welcome', mac2, tables: h.schema, caps: h.caps, ...(h.internalSchema.length > 0 ? { internal: h.internalSchema } : {}) });
    this.establish();
  }

  private onHello(m: Msg): void {
    if (m.t !== 'hello') throw new ProtocolError('unexpected-message', `expected hello, got '${m.t}'`);
    const h = this.host;
    const bad = checkHello(m, h.cluster, this.peer);
    if (bad) return this.refuse(bad.reason, bad.detail);
    this.nonce = m.nonce;
    this.nonce2 = newNonce();
    const mac = computeMac(h.secret, 'c', m.nonce, this.nonce2, h.node, this.peer, h.cluster);
    this.sendMsg({ t: 'auth', proto: PROTO, cluster: h.cluster, node: h.node, nonce2: this.nonce2, mac, tables: h.schema, caps: h.caps, ...(h.internalSchema.length > 0 ? { internal: h.internalSchema } : {}) });
    this.phase = 'welcome';
  }

  private onWelcome(m: Msg): void {
    if (m.t !== 'welcome') throw new ProtocolError('unexpected-message', `expected welcome, got '${m.t}'`);
    const h = this.host;
    const want = computeMac(h.secret, 's', this.nonce2!, this.nonce!, h.node, this.peer, h.cluster);
    if (!macEqual(want, m.mac2)) return this.refuse('peer-auth-failed', 'server MAC does not verify (different secret?)');
    const bad = compareSchemas(h.schema, m.tables);
    if (bad) return this.refuse(bad.reason, bad.detail);
    this.peerCaps = m.caps;
    this.peerTables = m.tables;
    this.peerInternal = m.internal ?? [];
    this.establish();
  }

  private establish(): void {
    setFrameLimit(this.ws, this.host.maxFrameBytes);
    this.phase = 'session';
    this.session = new PeerSession(this.peer, this.ws, this.host.onAuthenticated(this));
    this.session.start();
    this.host.wantFlush();
  }

  /** Refuses/drops this connection: log via host, close 1008 with the reason (terminated if it lingers). */
  refuse(reason: RefusalReason, detail: string, code = CLOSE_POLICY): void {
    if (this.phase === 'closed' || this.closingAt) return;
    this.lastError = `${reason}: ${detail}`;
    this.host.refused(this, reason, detail, 'local');
    this.close(code, reason);
  }

  /**
   * After a framing error on an unauthenticated inbound connection (e.g. a frame header announcing
   * more than the pre-auth limit) the rest of what it sends is not read and discarded at full
   * speed: reading stops (deferred past ws's own resume) and the socket is ended right after the
   * close frame ws already wrote, so the other end sees the close code and then end-of-stream; what
   * it still sends stays in the kernel (TCP flow control) until `tick` terminates the socket.
   */
  private stopReadingIfUnproven(): void {
    if (this.role !== 'server' || this.verified) return;
    setImmediate(this.quietNow);
  }

  private readonly quietNow = (): void => {
    try {
      this.ws.pause();
      this.host.endSocket(this);
    } catch {
      /* already closed */
    }
  };

  /** Starts a close handshake; `tick` terminates the socket if the peer does not complete it within 1 s. */
  close(code: number, reason: string): void {
    if (this.phase === 'closed' || this.closingAt) return;
    this.closingAt = Date.now();
    this.session?.close();
    try {
      if (this.ws.readyState === this.ws.CONNECTING) this.ws.terminate();
      else this.ws.close(code, reason);
    } catch {
      this.ws.terminate();
    }
  }

  /** Drops the connection at once (no close handshake): for peers that cannot be expected to answer. */
  drop(reason: RefusalReason, detail: string): void {
    if (this.phase === 'closed' || this.closingAt) return;
    this.lastError = `${reason}: ${detail}`;
    this.host.refused(this, reason, detail, 'local');
    this.closingAt = Date.now();
    this.session?.close();
    this.ws.terminate();
  }

  private onError(err: Error & { code?: string }): void {
    let reason: RefusalReason | undefined;
    if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') reason = 'frame-too-large';
    else if (err.code?.startsWith('WS_ERR_')) reason = 'malformed-frame';
    if (reason) {
      this.lastError = `${reason}: ${err.message}`;
      if (!this.closingAt) this.host.refused(this, reason, err.message, 'local');
      this.closingAt ||= Date.now(); // ws is already closing the socket with 1009/1002
      this.stopReadingIfUnproven();
    } else {
      this.lastError = err.message;
    }
  }

  private onClose(code: number, reason: string): void {
    if (this.phase === 'closed') return;
    const wasSession = this.phase === 'session';
    this.phase = 'closed';
    this.session?.close();
    if (code === CLOSE_POLICY && !this.closingAt) {
      // The other side refused us; its close reason is remote text: counted by our name for it.
      const known = remoteReason(reason);
      this.lastError = `refused by peer: ${known}`;
      this.host.refused(this, known, wasSession ? 'peer closed the session' : 'peer refused the handshake', 'remote', clip(reason));
    } else if (!this.lastError && code !== CLOSE_NORMAL) {
      this.lastError = `closed ${code}${reason ? ` ${JSON.stringify(clip(reason))}` : ''}`;
    }
    this.host.onClosed(this, code, reason);
  }

  /** Heartbeat and deadlines; called every few hundred ms at most by the service's wheel task. */
  tick(now: number): void {
    if (this.phase === 'closed') return;
    if (this.closingAt) {
      if (now - this.closingAt > 1000) this.ws.terminate();
      return;
    }
    if (this.phase !== 'session' && now - this.openedAt > this.host.handshakeTimeoutMs) {
      return this.refuse('handshake-timeout', `no handshake within ${this.host.handshakeTimeoutMs} ms`);
    }
    if (this.phase === 'connecting') return;
    if (now - this.lastRx > this.host.deadAfterMs) {
      return this.drop('heartbeat-timeout', `silent for ${now - this.lastRx} ms`); // a frozen peer never completes a close
    }
    if (now - this.lastPing >= this.host.heartbeatMs) {
      this.lastPing = now;
      try {
        this.ws.ping();
      } catch {
        /* socket closing; 'close' follows */
      }
    }
  }
}
