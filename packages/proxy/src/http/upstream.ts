/**
 * One TCP connection to a server, owned by at most one client exchange at a time and parked in
 * its server's idle list between exchanges. Listeners are bound once per connection and forward
 * to whichever owner holds it, so reuse allocates nothing.
 *
 * Idle bound: `MAX_IDLE_PER_SERVER` per server; a connection released when the list is full is
 * closed. An idle connection closes after `IDLE_TTL_MS` or on any byte or close from the server.
 *
 * Reads go through `net`'s `onread` option (no allocation and no readable-stream machinery per
 * read): while a response head is expected, into the shared read buffer (the owner copies what
 * it keeps, see listen/read-buffer.ts); while a body streams, into a buffer the connection owns
 * (`READ_BUFFER_BYTES`, HAProxy's default bufsize). The owner must say when it still references
 * the bytes of an own-buffer read after its callback returned (`holdReadBuffer()`: a write the
 * kernel did not take at once); the next read then goes into a fresh buffer, so held bytes are
 * never overwritten.
 *
 * A server with `ssl` is dialed with `tls.connect` (its ServerTls, tls/server-tls.ts, built at
 * load): the connection counts as connected once the handshake and the certificate check passed,
 * so a verification failure is a connect failure like a refused connect (retries, redispatch).
 * The last TLS session the server gave is offered by its next connection (one per server).
 */
import net from 'node:net';
import tls from 'node:tls';
import { sharedWheel, type TimerWheel, type WheelTask } from '@stickmesh/core';
import { ReadBuffer } from '../listen/read-buffer.js';
import { RawWriter } from '../listen/raw-write.js';
import type { ServerTls } from '../tls/server-tls.js';

export const IDLE_TTL_MS = 5000;
/** Idle upstream connections kept per server. At the bound the connection is closed instead of kept. */
export const MAX_IDLE_PER_SERVER = 1024;

/**
 * What a connection needs of its server: where to connect, a connection counter and the idle list
 * it parks in. RuntimeServer (runtime/server.ts) provides it; declared here so runtime/ imports
 * http/ and never the other way round.
 */
export interface UpstreamServer {
  readonly address: string;
  readonly port: number;
  totalConns: number;
  readonly idle: UpstreamConn[];
  /** TLS for traffic to the server (`ssl`); undefined: plain TCP. */
  readonly tls: ServerTls | undefined;
  /** The last TLS session the server issued, offered for resumption by the next connection. */
  tlsSession: Buffer | undefined;
  /** Why the last connect failed ('' when none did since the last success), for logs and the admin API. */
  lastConnectError: string;
  /** A connect succeeded (clears `lastConnectError`). */
  connectOk(): void;
}
/** Size of a connection's read buffer: the most one read hands to the owner. */
export const READ_BUFFER_BYTES = 16384;

/** What an upstream connection reports to its current owner. */
export interface UpstreamOwner {
  onUpstreamConnect(up: UpstreamConn): void;
  /** Bytes `buf[0, n)` from the server, in the connection's read buffer (valid during the call). */
  onUpstreamData(up: UpstreamConn, buf: Buffer, n: number): void;
  onUpstreamDrain(up: UpstreamConn): void;
  onUpstreamClose(up: UpstreamConn, err: Error | undefined): void;
}

export class UpstreamConn implements WheelTask {
  readonly socket: net.Socket;
  /** Request heads go through this (raw writes while nothing is queued on the socket). */
  readonly out: RawWriter;
  readonly server: UpstreamServer;
  owner: UpstreamOwner | null;
  connected = false;
  closed = false;
  /** Number of exchanges this connection has carried (0 while the first is running). */
  reuseCount = 0;
  private lastErr: Error | undefined;
  private readonly wheel: TimerWheel;
  private readonly rbuf = new ReadBuffer(READ_BUFFER_BYTES, READ_BUFFER_BYTES);
  /** Wheel time at which the connection last became idle. */
  private idleSince = 0;
  /** The address and port this connection dialed; DNS discovery may move its server since. */
  private readonly address: string;
  private readonly port: number;
  _gen?: number;
  _due?: number;
  _slot?: number;
  _pos?: number;

  constructor(server: UpstreamServer, owner: UpstreamOwner, wheel: TimerWheel = sharedWheel) {
    this.server = server;
    this.owner = owner;
    this.wheel = wheel;
    this.rbuf.shared = true; // the first read is a response head
    this.address = server.address;
    this.port = server.port;
    const t = server.tls;
    if (t === undefined) {
      this.socket = net.connect({
        host: server.address,
        port: server.port,
        noDelay: true,
        onread: { buffer: this.rbuf.next, callback: this.onRead },
      });
      this.socket.on('connect', this.onConnect);
    } else {
      // Node's TLS client takes `onread` as net's does (the type only lacks it).
      const s = tls.connect(<tls.ConnectionOptions & Pick<net.TcpSocketConnectOpts, 'onread'>>{
        host: server.address,
        port: server.port,
        onread: { buffer: this.rbuf.next, callback: this.onRead },
        secureContext: t.context,
        servername: t.servername,
        rejectUnauthorized: t.rejectUnauthorized,
        checkServerIdentity: t.checkServerIdentity,
        ALPNProtocols: t.alpn,
        session: t.reuse ? server.tlsSession : undefined,
      });
      s.setNoDelay(true);
      s.on('secureConnect', this.onConnect);
      if (t.reuse) s.on('session', this.onSession);
      this.socket = s;
    }
    this.out = new RawWriter(this.socket, this.onDrain);
    this.socket.on('drain', this.onDrain);
    this.socket.on('error', this.onError);
    this.socket.on('close', this.onClose);
    server.totalConns++;
  }

  private readonly onConnect = (): void => {
    this.connected = true;
    this.server.connectOk();
    this.owner?.onUpstreamConnect(this);
  };

  private readonly onSession = (session: Buffer): void => {
    this.server.tlsSession = session;
  };

  /** Why this connection failed before it was connected (the socket error, or how it closed). */
  get failureReason(): string {
    const e = this.lastErr;
    if (e === undefined) return this.server.tls !== undefined ? 'closed during the TLS handshake' : 'connection closed';
    const code = (e as NodeJS.ErrnoException).code;
    return code !== undefined && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
  }

  /** Returns true: flow control is the owner's (it pauses the socket), not this return value. */
  private readonly onRead = (n: number, buf: Uint8Array): boolean => {
    if (this.owner) this.owner.onUpstreamData(this, buf as Buffer, n);
    else this.destroy(); // bytes on an idle connection: the server is out of sync, never reuse it
    return true;
  };

  /** The owner keeps a reference to the bytes of the current read: the next read must not reuse them. */
  holdReadBuffer(): void {
    this.rbuf.hold();
  }

  /**
   * Whether the next read may go into the shared read buffer (read-buffer.ts): set by the owner
   * after each read; on while a response head is expected and while idle.
   */
  set sharedReads(on: boolean) {
    this.rbuf.shared = on;
  }

  private readonly onDrain = (): void => {
    this.owner?.onUpstreamDrain(this);
  };

  private readonly onError = (err: Error): void => {
    this.lastErr = err;
  };

  private readonly onClose = (): void => {
    this.closed = true;
    this.wheel.cancel(this);
    const owner = this.owner;
    this.owner = null;
    if (owner) {
      owner.onUpstreamClose(this, this.lastErr ?? new Error('upstream closed'));
    } else {
      const i = this.server.idle.indexOf(this);
      if (i !== -1) this.server.idle.splice(i, 1);
    }
  };

  /**
   * Idle expiry, run by the shared wheel. A connection stays on the wheel while it is reused: the
   * check compares against `idleSince` and re-arms for the remainder, so a request costs no wheel
   * insertion (one entry per connection, not one per release).
   */
  run(now: number): void {
    if (this.owner !== null || this.closed) return; // in use: the next release re-arms
    const idleFor = now - this.idleSince;
    if (idleFor >= IDLE_TTL_MS) this.destroy();
    else this.wheel.schedule(this, IDLE_TTL_MS - idleFor);
  }

  /**
   * Returns the connection to its server's idle list, or closes it when the list is full or the
   * server no longer has the address it dialed (discovery moved the slot while this exchange ran:
   * `dropIdle` only reaches connections already idle, so one in use is checked here).
   */
  release(): void {
    this.owner = null;
    this.rbuf.shared = true; // an idle connection's read is dropped with the connection
    this.reuseCount++;
    if (this.closed || this.socket.destroyed) return;
    const idle = this.server.idle;
    if (idle.length >= MAX_IDLE_PER_SERVER || this.server.address !== this.address || this.server.port !== this.port) {
      this.destroy();
      return;
    }
    if (this.socket.isPaused()) this.socket.resume(); // the last owner may have paused it for backpressure
    idle.push(this);
    this.idleSince = this.wheel.now;
    if (!((this._gen ?? 0) > 0)) this.wheel.schedule(this, IDLE_TTL_MS);
  }

  destroy(): void {
    this.owner = null;
    this.wheel.cancel(this);
    if (!this.socket.destroyed) this.socket.destroy();
  }

  /** Takes the most recently used live idle connection of `server` for `owner`, if any. */
  static takeIdle(server: UpstreamServer, owner: UpstreamOwner): UpstreamConn | undefined {
    const idle = server.idle;
    while (idle.length > 0) {
      const up = idle.pop()!;
      if (up.closed || up.socket.destroyed) continue;
      up.owner = owner;
      return up;
    }
    return undefined;
  }
}
