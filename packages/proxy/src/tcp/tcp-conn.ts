/**
 * `mode tcp`: one client connection piped to one server connection, server chosen by the
 * backend's persistence (stick table, when configured) and balancer. Bytes are relayed with
 * backpressure both ways; no parsing. The server is chosen by runtime/decide.ts and connection
 * failures follow runtime/retry.ts (`retries`, `option redispatch`), as in HTTP mode.
 *
 * Both sockets read into buffers the connection owns (listen/read-buffer.ts: 4 KiB, growing to
 * 64 KiB under bulk transfer), reused unless the bytes of the last read are still queued for the
 * other side or waiting for the server connection.
 *
 * A server with `ssl` is dialed over TLS (its ServerTls, built at load): connected means the
 * handshake and the certificate check passed; a failed verification is a failed connect.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { Timeouts, TimerWheel, WheelTask } from '@stickmesh/core';
import { hashAddress, loopNow } from '@stickmesh/core';
import type { RuntimeBackend } from '../runtime/backend.js';
import type { RuntimeServer } from '../runtime/server.js';
import { metrics } from '../metrics.js';
import { StickState } from '../runtime/stick.js';
import type { DecidedBy, RouteSource } from '../runtime/decide.js';
import { afterConnectFailure, type RetryState } from '../runtime/retry.js';
import { plainIp } from '../runtime/address.js';
import { ReadBuffer } from '../listen/read-buffer.js';
import { readInto } from '../listen/user-buffer.js';
import { RawWriter } from '../listen/raw-write.js';
import type { FrontendConn } from '../listen/admission.js';
import type { RuleStream } from '../rules/stream.js';
import type { SectionRules } from '../rules/compile.js';
import type { CompiledCond } from '../rules/types.js';
import { runRules, type Rule } from '../rules/actions.js';
import type { DenyCounts } from '../metrics.js';

/** First and largest size of a relay read buffer (see ReadBuffer). */
export const TCP_READ_MIN = 4096;
export const TCP_READ_MAX = 65536;

/**
 * A TCP frontend's rules: its own lists, `use_backend` (first match, else the default backend),
 * each backend's `tcp-request content` list, and its refusal counts. Undefined when neither the
 * frontend nor a backend it routes to has rules.
 */
export interface TcpFrontendRules {
  readonly own: SectionRules | undefined;
  readonly useBackends: ReadonlyArray<{ readonly cond: CompiledCond | undefined; readonly backend: RuntimeBackend }>;
  readonly counts: DenyCounts;
  backendRules(b: RuntimeBackend | undefined): readonly Rule[] | undefined;
}

export interface TcpFrontendRuntime {
  readonly name: string;
  /** The default backend. */
  readonly backend: RuntimeBackend | undefined;
  readonly rules: TcpFrontendRules | undefined;
  readonly timeouts: Timeouts;
  readonly logger: Logger;
  readonly wheel: TimerWheel;
  readonly conns: Set<FrontendConn>;
  draining: boolean;
  /** Chooses the server for a new connection (runtime/decide.ts); undefined when none is usable. */
  pick(conn: TcpConn): RuntimeServer | undefined;
  /** Called once the server connection is established (stick store). */
  onConnected?(conn: TcpConn, server: RuntimeServer): void;
}

export class TcpConn implements WheelTask, RouteSource, RetryState {
  readonly client: net.Socket;
  /** Writes to the client (raw while nothing is queued); `busy` is the hold rule for upBuf. */
  private readonly clientOut: RawWriter;
  readonly clientIp: string;
  readonly clientPort: number;
  /** The client connection came over TLS (an `ssl` bind), with the hello's server name. */
  readonly tls: boolean;
  readonly sni: string | undefined;
  readonly fe: TcpFrontendRuntime;
  /** The backend this connection goes to: `use_backend`'s choice, else the default. */
  backend: RuntimeBackend | undefined;
  /** The rule engine's view of the connection; null when the frontend has no rules. */
  private readonly rs: RuleStream | null;
  /** `file:line` of the rule that rejected the connection, '' otherwise. */
  private rule = '';
  server: RuntimeServer | undefined;
  private up: net.Socket | null = null;
  /** Writes to `up`: set and cleared with it. */
  private upOut: RawWriter | null = null;
  private readonly clientBuf = new ReadBuffer(TCP_READ_MIN, TCP_READ_MAX);
  private readonly upBuf = new ReadBuffer(TCP_READ_MIN, TCP_READ_MAX);
  private connected = false;
  private closed = false;
  /** Connect failures so far, and whether one moved the client to another server (runtime/retry.ts). */
  retries = 0;
  redispatched = false;
  private clientHash = -1;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private tStart = loopNow();
  private tConnStart = 0;
  /** The socket error of the server connection being dialed, and why the last dial failed (logged as `server_error`). */
  private upErr: Error | undefined;
  private connectError = '';
  private tConnected = 0;
  bytesIn = 0;
  bytesOut = 0;
  term = '--';
  decidedBy: DecidedBy = '';
  /** Stick rule outcome for this connection. */
  readonly stickState = new StickState();
  private deadline = 0;
  private connecting = false;
  private clientEnded = false;
  /** The server sent its FIN (its 'end'). */
  private upEnded = false;
  // The wheel's fields (core/util/timer-wheel.ts) start as numbers: stored first as undefined,
  // each connection's first schedule() changed the object's field representation, so the wheel's
  // stores missed their inline caches on every connection (4% of the new-connection profile).
  _gen = 0;
  _due = 0;
  _slot = -1;
  _pos = 0;

  static readonly MAX_PENDING = 65536;

  get localIp(): string {
    return plainIp(this.client.localAddress);
  }

  /** Hash of the client address for `balance source`, computed once per connection. */
  sourceHash(): number {
    if (this.clientHash === -1) this.clientHash = hashAddress(this.clientIp);
    return this.clientHash;
  }

  /** `client` is a `tls.TLSSocket` on an `ssl` bind (handshake done, tls/accept.ts), `sni` its hello's server name. */
  constructor(client: net.Socket, fe: TcpFrontendRuntime, rs: RuleStream | null = null, sni?: string) {
    this.client = client;
    this.tls = (client as { encrypted?: boolean }).encrypted === true;
    this.sni = this.tls ? sni : undefined;
    this.clientOut = new RawWriter(client, this.onClientDrain);
    this.fe = fe;
    this.backend = fe.backend;
    this.rs = rs;
    this.clientIp = plainIp(client.remoteAddress);
    this.clientPort = client.remotePort ?? 0;
    client.setNoDelay(true);
    client.on('end', this.onClientEnd);
    client.on('error', noop);
    client.on('close', this.onClientClose);
    client.on('drain', this.onClientDrain);
    fe.conns.add(this);
    if (!readInto(client, this.clientBuf.next, this.onClientRead)) {
      client.on('data', this.onClientData);
      client.resume();
    }
    if (rs !== null && !this.runContentRules(rs, fe.rules!)) return;
    this.dial(fe.pick(this));
  }

  /**
   * `tcp-request content` rules before connecting (evaluated once, without waiting for data: no
   * `inspect-delay`), the frontend's, then `use_backend`, then the chosen backend's. Returns
   * false when a rule rejected the connection (it is closed).
   */
  private runContentRules(rs: RuleStream, rules: TcpFrontendRules): boolean {
    let hit: Rule | null = null;
    if (rules.own !== undefined) hit = runRules(rules.own.tcpContent, rs);
    if (hit === null) {
      for (const u of rules.useBackends) {
        if (u.cond === undefined || u.cond(rs)) {
          this.backend = u.backend;
          break;
        }
      }
      rs.backendName = this.backend?.name ?? this.fe.name;
      const br = rules.backendRules(this.backend);
      if (br !== undefined) hit = runRules(br, rs);
    }
    if (hit === null) return true;
    rules.counts.connections++;
    this.rule = hit.where;
    this.term = 'PR';
    this.destroy();
    return false;
  }

  private readonly onClientRead = (n: number, buf: Buffer): boolean => {
    this.onClientData(buf.subarray(0, n));
    this.clientBuf.afterRead(n, buf, this.pendingBytes > 0 || this.upOut?.holds === true);
    return true;
  };

  private readonly onUpRead = (n: number, buf: Buffer): boolean => {
    this.onUpData(buf.subarray(0, n));
    this.upBuf.afterRead(n, buf, this.clientOut.holds);
    return true;
  };

  private armIdle(): void {
    const t = this.fe.timeouts;
    const ms = this.connecting ? t.connect : Math.max(t.client, t.server, t.tunnel);
    this.deadline = this.fe.wheel.now + ms;
    if (!((this._gen ?? 0) > 0) || (this._due ?? Infinity) > this.deadline) this.fe.wheel.schedule(this, ms);
  }

  run(now: number): void {
    if (this.closed) return;
    if (this.deadline > now) {
      this.fe.wheel.schedule(this, this.deadline - now);
      return;
    }
    if (this.connecting) {
      this.onUpError();
      return;
    }
    this.term = 'cD';
    this.destroy();
  }

  private dial(s: RuntimeServer | undefined): void {
    if (!s) {
      this.server = undefined;
      this.term = 'SC';
      this.destroy();
      return;
    }
    this.server = s;
    s.connOpened();
    s.totalConns++;
    this.connecting = true;
    this.tConnStart = loopNow();
    this.armIdle();
    this.upErr = undefined;
    // allowHalfOpen: a server that ends its side may still read; the client's bytes keep flowing.
    const t = s.tls;
    let up: net.Socket;
    if (t === undefined) {
      up = net.connect({ host: s.address, port: s.port, noDelay: true, allowHalfOpen: true, onread: { buffer: this.upBuf.next, callback: this.onUpRead } });
      up.on('connect', this.onUpConnect);
    } else {
      // Node's TLS client takes `onread` as net's does (the type only lacks it).
      const ts = tls.connect(<tls.ConnectionOptions & Pick<net.TcpSocketConnectOpts, 'onread'>>{
        host: s.address,
        port: s.port,
        allowHalfOpen: true,
        onread: { buffer: this.upBuf.next, callback: this.onUpRead },
        secureContext: t.context,
        servername: t.servername,
        rejectUnauthorized: t.rejectUnauthorized,
        checkServerIdentity: t.checkServerIdentity,
        ALPNProtocols: t.alpn,
        session: t.reuse ? s.tlsSession : undefined,
      });
      ts.setNoDelay(true);
      ts.on('secureConnect', this.onUpConnect);
      if (t.reuse) ts.on('session', (session: Buffer) => { s.tlsSession = session; });
      up = ts;
    }
    this.up = up;
    this.upOut = new RawWriter(up, this.onUpDrain);
    up.on('end', this.onUpEnd);
    up.on('drain', this.onUpDrain);
    up.on('error', this.onUpSocketError);
    up.on('close', this.onUpClose);
  }

  private readonly onUpSocketError = (err: Error): void => {
    this.upErr = err;
  };

  private readonly onUpConnect = (): void => {
    if (this.server) this.server.connectOk();
    this.connected = true;
    this.connecting = false;
    this.tConnected = loopNow();
    this.armIdle();
    if (this.server) this.fe.onConnected?.(this, this.server);
    // The bytes read before the connection was up (their read buffers are held, see onClientRead)
    // go out through upOut like any later chunk: raw while nothing is queued.
    let flowing = true;
    if (this.pending.length > 0) {
      for (const b of this.pending) if (!this.upOut!.write(b)) flowing = false;
      this.pending = [];
      this.pendingBytes = 0;
    }
    if (flowing) this.client.resume();
  };

  /** The dial failed (socket error, close before connected, `timeout connect`): retry, redispatch or `SC`. */
  private onUpError(): void {
    const s = this.server;
    const e = this.upErr;
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    this.connectError = e === undefined ? (this.connecting && this.deadline <= this.fe.wheel.now ? 'timeout connect' : 'connection closed')
      : code !== undefined && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
    if (s) s.connectFailed(this.connectError);
    if (s) s.connClosed();
    this.server = undefined;
    this.connecting = false;
    const up = this.up;
    this.up = null;
    this.upOut = null;
    if (up) {
      up.removeListener('close', this.onUpClose);
      up.destroy();
    }
    const be = this.backend;
    const next = be !== undefined && s !== undefined && !this.closed ? afterConnectFailure(be, s, this, this) : undefined;
    if (next === undefined) {
      this.term = 'SC';
      this.destroy();
      return;
    }
    this.dial(next);
  }

  private readonly onClientData = (chunk: Buffer): void => {
    this.bytesIn += chunk.length;
    if (this.connected && this.up) {
      this.deadline = this.fe.wheel.now + Math.max(this.fe.timeouts.client, this.fe.timeouts.tunnel);
      if (!this.upOut!.write(chunk)) this.client.pause();
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes > TcpConn.MAX_PENDING) this.client.pause();
  };

  private readonly onUpData = (chunk: Buffer): void => {
    this.bytesOut += chunk.length;
    this.deadline = this.fe.wheel.now + Math.max(this.fe.timeouts.server, this.fe.timeouts.tunnel);
    if (!this.clientOut.write(chunk)) this.up?.pause();
  };

  private readonly onClientDrain = (): void => {
    this.up?.resume();
  };

  private readonly onUpDrain = (): void => {
    this.client.resume();
  };

  private readonly onClientEnd = (): void => {
    this.clientEnded = true;
    if (this.up === null || !this.connected) this.destroy();
    else if (this.upEnded && this.flushed()) this.destroy();
    else this.up.end();
  };

  private readonly onUpEnd = (): void => {
    this.upEnded = true;
    if (this.clientEnded && this.flushed()) this.destroy();
    else this.client.end();
  };

  /**
   * Both FINs have arrived and no byte waits in Node or libuv for either socket: closing both now
   * sends each peer the FIN a shutdown would (the kernel still delivers what it holds), without
   * the shutdown's extra turn of the loop (libuv waits for writability first), its two epoll
   * changes and Node's end-of-stream callbacks. The session ends as a normal close (`--`).
   * Plain TCP on both sides only: a TLS peer gets its close_notify from `end()`.
   */
  private flushed(): boolean {
    return !this.tls && this.server?.tls === undefined && !this.clientOut.busy && this.upOut !== null && !this.upOut.busy;
  }

  private readonly onUpClose = (): void => {
    this.upBuf.release();
    if (!this.connected) {
      this.onUpError();
      return;
    }
    this.up = null;
    this.upOut = null;
    if (!this.client.destroyed) this.client.end();
    this.finish();
  };

  /**
   * The client connection is gone. After a clean FIN (forwarded with up.end() behind the bytes
   * still queued) the server connection stays until it has taken those bytes and closes, or the
   * timeout cuts it; after an error it is cut now.
   */
  private readonly onClientClose = (): void => {
    this.clientBuf.release();
    const up = this.up;
    if (up !== null && this.clientEnded && this.connected && this.upOut?.busy === true && !up.destroyed) return;
    if (up) up.destroy();
    this.finish();
  };

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.fe.wheel.cancel(this);
    this.fe.conns.delete(this);
    if (this.server && (this.connected || this.connecting)) this.server.connClosed();
    this.connecting = false;
    if (!this.client.destroyed) this.client.destroySoon();
    if (this.rs !== null) this.rs.endSession(this.bytesIn, this.bytesOut);
    const now = loopNow();
    if (metrics.enabled) metrics.tcp(this.backend?.name ?? '<NOSRV>', this.server, now - this.tStart, this.term[0] !== '-', this.decidedBy);
    const logger = this.fe.logger;
    if (!logger.isLevelEnabled('info')) return;
    logger.info(
      {
        client_ip: this.clientIp,
        client_port: this.clientPort,
        frontend: this.fe.name,
        backend: this.backend?.name ?? '<NOSRV>',
        server: this.server?.name ?? '<NOSRV>',
        ssl_fc: this.tls,
        ssl_fc_sni: this.sni,
        Tw: 0,
        Tc: this.tConnected ? this.tConnected - this.tConnStart : -1,
        Tt: now - this.tStart,
        bytes_read: this.bytesOut,
        bytes_uploaded: this.bytesIn,
        retries: this.retries,
        decided_by: this.decidedBy,
        termination_state: this.term,
        rule: this.rule || undefined,
        server_error: this.connectError || undefined,
      },
      'connection',
    );
  }

  destroy(): void {
    if (this.up) this.up.destroy();
    if (!this.client.destroyed) this.client.destroy();
    this.finish();
  }

  drain(): void {
    /* TCP sessions carry no request boundary: they finish on their own or are cut at the deadline */
  }
}

function noop(): void {}
