/**
 * The HTTP/1.1 data plane for one client connection, driven through the phases of `Phase`
 * (exchange.ts, which declares the connection's state):
 *   request (parse head) → pick upstream (runtime/decide.ts; connect failures: runtime/retry.ts)
 *   → forward (head: request-out.ts; streamed body: body.ts) → response (parse head here; edit
 *   it, persistence cookies included: response-edit.ts; streamed body: body.ts) → log
 *   (access-log.ts). Those modules are plain functions called with the connection.
 *
 * One exchange at a time per connection; pipelined requests wait in the input buffer and are
 * parsed in order once the previous response is complete. All per-connection state (chunk
 * scanners, cookie state, request context, timeout task) is allocated once and reset per
 * request; the head parsers are shared (exchange.ts). Listeners are bound once and read state
 * from fields.
 *
 * Bounds: the input buffer holds at most `MAX_PENDING_BYTES` of not-yet-forwarded client bytes
 * (the socket is paused beyond that); a head is at most `MAX_HEAD_BYTES` (431 beyond); a response
 * head likewise (502 beyond).
 *
 * Client reads (listen/user-buffer.ts) go into the shared read buffer while a request head is
 * expected: the head is parsed in place and whatever outlives the read (pipelined or partial
 * bytes, body bytes that came with the head) is copied (`keep`). While a body or tunnel streams,
 * reads go into a buffer the connection owns, `CLIENT_READ_MIN` bytes at first; a read that
 * fills it makes the next one twice as large, up to `CLIENT_READ_MAX`. After each such read,
 * when a queued write to the server or the input buffer still points into those bytes, the next
 * read goes into a fresh buffer, so held bytes are never overwritten. A keep-alive connection
 * owns no read buffer at all.
 */
import type net from 'node:net';
import type { WheelTask } from '@stickmesh/core';
import { hashAddress, loopNow } from '@stickmesh/core';
import { BodyMode, Exchange, Phase, Tmo, checkRequestHead, claimRequestHead, releaseRequestHead, type HttpFrontendRuntime } from './exchange.js';
import { HeadError, headErrorText, nameIs } from './head.js';
import { errorResponse } from './responses.js';
import { logExchange } from './access-log.js';
import { requestHeadOut } from './request-out.js';
import { dropResponseHead, planResponseHead, writeResponseHead } from './response-edit.js';
import { forwardRequestBody, forwardResponseBody, frameRequestBody, frameResponseBody, keep } from './body.js';
import { UpstreamConn, type UpstreamOwner } from './upstream.js';
import { readInto } from '../listen/user-buffer.js';
import type { RuntimeBackend } from '../runtime/backend.js';
import type { RuntimeServer } from '../runtime/server.js';
import { plainIp } from '../runtime/address.js';
import { cookieValue, stickStoreRequest, stickStoreResponse } from '../runtime/stick.js';
import { decide, type RouteSource } from '../runtime/decide.js';
import { afterConnectFailure } from '../runtime/retry.js';
import type { RuleStream } from '../rules/stream.js';
import { Act, redirectLocation, runRules, type Rule } from '../rules/actions.js';
import { ReplyMode, redirectBytes } from '../rules/replies.js';

export const MAX_PENDING_BYTES = 65536;
export { CLIENT_READ_MAX, CLIENT_READ_MIN, type HttpFrontendRuntime } from './exchange.js';
export class ClientConn extends Exchange implements UpstreamOwner, WheelTask, RouteSource {

  /** The `tarpit` rule holding the current request (Tmo.Tarpit), null otherwise. */
  private tarpitRule: Rule | null = null;
  /** The frontend this connection moves to when its exchange ends (a reload, see moveTo). */
  private heir: HttpFrontendRuntime | null = null;

  /**
   * `rs`: the rule engine's view of the connection when the frontend has rules (proxy.ts ran its
   * connection rules). `socket` is a `tls.TLSSocket` on an `ssl` bind (its handshake done,
   * tls/accept.ts), `sni` the server name of its hello.
   */
  constructor(socket: net.Socket, fe: HttpFrontendRuntime, rs: RuleStream | null = null, sni?: string) {
    super(socket, fe, rs, sni);
    socket.setNoDelay(true);
    socket.on('drain', this.onClientDrain);
    socket.on('end', this.onClientEnd);
    socket.on('error', this.onClientError);
    socket.on('close', this.onClientClose);
    fe.conns.add(this);
    this.arm(Tmo.Request, fe.timeouts.httpRequest);
    this.ctx.reset(fe.wheel.now, false);
    this.ctx.tStart = loopNow();
    this.rbuf.shared = true; // the first read is a request head
    if (!readInto(socket, this.rbuf.next, this.onClientRead)) {
      socket.on('data', this.onClientData);
      socket.resume();
    }
  }

  /** One client read in the connection's buffer (see the module comment for the reuse rule). */
  private readonly onClientRead = (n: number, buf: Buffer): boolean => {
    if (this.buf === null && this.phase <= Phase.Idle && !this.closed) {
      // A new request with nothing buffered (the common case): parsed in place, without a view
      // of the read; only bytes left over after the head get one (this.buf).
      this.ctx.bytesIn += n;
      this.headArriving();
      this.parseRequest(buf, n);
    } else {
      this.onClientData(keep(buf, 0, n));
    }
    const up = this.up;
    this.rbuf.afterRead(n, buf, this.buf !== null || (up !== null && up.out.holds));
    // The next read goes into the shared buffer unless body or tunnel bytes are expected.
    this.rbuf.shared = this.buf === null && (this.phase <= Phase.Idle || (this.reqDone && this.phase !== Phase.Tunnel));
    return true;
  };

  // ---------------------------------------------------------------- timeouts (shared wheel)

  private arm(kind: Tmo, ms: number): void {
    const d = this.fe.wheel.now + ms;
    this.deadline = d;
    this.tkind = kind;
    if (!((this._gen ?? 0) > 0) || (this._due ?? Infinity) > d) this.fe.wheel.schedule(this, ms);
  }

  /** Pushes the current deadline forward (activity); costs a field write, no timer call. */
  private touch(): void {
    switch (this.tkind) {
      case Tmo.Client: this.deadline = this.fe.wheel.now + this.fe.timeouts.client; break;
      case Tmo.Server: this.deadline = this.fe.wheel.now + this.route!.timeouts.server; break;
      case Tmo.Tunnel: this.deadline = this.fe.wheel.now + this.route!.timeouts.tunnel; break;
      default: break;
    }
  }

  run(now: number): void {
    if (this.closed || this.tkind === Tmo.None) return;
    if (this.deadline > now) {
      this.fe.wheel.schedule(this, this.deadline - now);
      return;
    }
    switch (this.tkind) {
      case Tmo.KeepAlive:
        this.destroy();
        return;
      case Tmo.Request:
        if (this.buf === null || this.buf.length === 0) {
          this.destroy();
          return;
        }
        this.fail(408, 'c', 'R');
        return;
      case Tmo.Client:
        this.fail(408, 'c', 'D');
        return;
      case Tmo.Connect:
        this.onConnectFailure('timeout connect');
        return;
      case Tmo.Server:
        this.fail(504, 's', this.phase >= Phase.ResponseBody ? 'D' : 'H');
        return;
      case Tmo.Tunnel:
        this.ctx.term0 = 'c';
        this.ctx.term1 = 'D';
        this.destroy();
        return;
      case Tmo.Tarpit: {
        const r = this.tarpitRule;
        this.tarpitRule = null;
        if (r !== null) this.replyByRule(r);
        return;
      }
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- client socket listeners

  /** Request bytes from the client; the server socket is corked so head and body go in one writev. */
  private readonly onClientData = (chunk: Buffer): void => {
    const up = this.up;
    if (up === null) {
      this.clientData(chunk);
      return;
    }
    const sock = up.socket;
    sock.cork();
    try {
      this.clientData(chunk);
    } finally {
      sock.uncork();
    }
  };

  private clientData(chunk: Buffer): void {
    this.ctx.bytesIn += chunk.length;
    if (this.phase === Phase.Tunnel || this.phase === Phase.TunnelClosed) {
      this.touch();
      if (this.up && !this.up.socket.write(chunk)) this.pauseClientFor('upstream');
      return;
    }
    if (this.phase >= Phase.Sent && !this.reqDone && this.buf === null) {
      this.touch();
      const n = forwardRequestBody(this, chunk, 0, chunk.length);
      if (n < 0) return;
      if (n < chunk.length) this.buf = chunk.subarray(n);
      return;
    }
    this.buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.phase === Phase.Idle) {
      this.headArriving();
      this.tryParse();
    } else if (this.buf.length > MAX_PENDING_BYTES) {
      this.pauseClientFor('buffer');
    }
  }

  /**
   * Client sent FIN. Between requests or in a tunnel: close our side too. Mid-request with the body
   * incomplete: the body can never complete, so the exchange is aborted at once (HAProxy's `CD`),
   * instead of waiting for `timeout server`. A complete request with a half-closed client still
   * gets its response.
   */
  private readonly onClientEnd = (): void => {
    this.clientEnded = true;
    if (this.tarpitRule !== null) {
      // The client gave up on a tarpitted request: HAProxy's `CT`.
      this.tarpitRule = null;
      this.ctx.term0 = 'C';
      this.ctx.term1 = 'T';
      this.destroy();
      return;
    }
    if (this.phase <= Phase.Idle || this.phase === Phase.Tunnel) {
      this.socket.end();
      if (this.phase === Phase.Tunnel && this.up) this.up.socket.end();
      return;
    }
    this.abortIfBodyCut();
  };

  /**
   * Aborts the exchange when the client has ended, every byte it sent was forwarded, and the
   * request body is still incomplete (it never will be). Bytes still buffered (server not yet
   * connected) are forwarded first: onUpstreamConnect calls this again afterwards.
   */
  private abortIfBodyCut(): void {
    if (!this.clientEnded || this.phase <= Phase.Idle || this.reqDone || this.phase === Phase.Tunnel) return;
    if (this.phase < Phase.Sent || this.buf !== null) return;
    this.ctx.term0 = 'C';
    this.ctx.term1 = 'D';
    this.destroy();
  }

  private readonly onClientError = (): void => {
    /* 'close' follows; nothing else to do */
  };

  private readonly onClientClose = (): void => {
    if (this.closed) return;
    this.closed = true;
    this.fe.wheel.cancel(this);
    this.fe.conns.delete(this);
    // The socket is closed: nothing reads into or writes from these buffers any more.
    this.rbuf.release();
    if (this.phase > Phase.Idle) {
      if (this.ctx.term0 === '-') {
        this.ctx.term0 = 'C';
        this.ctx.term1 = this.phase >= Phase.ResponseBody ? 'D' : this.up?.connected ? 'H' : 'C';
        if (this.phase === Phase.Tunnel) this.ctx.term0 = '-';
      }
      this.endExchange(false);
    }
    // The connection's trackers (tcp-request connection) end with it.
    if (this.rs !== null) this.rs.endSession();
  };

  pauseClientFor(reason: 'upstream' | 'buffer'): void {
    if (reason === 'upstream') this.pausedForUpstream = true;
    else this.pausedForBuffer = true;
    this.socket.pause();
  }

  /** Undoes pauseClientFor; a no-op (no stream call) when the client was not paused. */
  private resumeClient(): void {
    if (!this.pausedForUpstream && !this.pausedForBuffer) return;
    this.pausedForUpstream = false;
    this.pausedForBuffer = false;
    if (!this.closed) this.socket.resume();
  }

  // ---------------------------------------------------------------- phase 1: request

  /**
   * Bytes of a request head reached a connection waiting between requests: the request's time
   * starts now and `timeout http-request` replaces `timeout http-keep-alive`.
   */
  private headArriving(): void {
    if (this.tkind !== Tmo.KeepAlive) return;
    this.ctx.tStart = loopNow();
    this.arm(Tmo.Request, this.fe.timeouts.httpRequest);
  }

  private tryParse(): void {
    if (this.buf === null || this.closed || this.phase > Phase.Idle) return;
    this.parseRequest(this.buf, this.buf.length);
  }

  /**
   * Parses a request head from `buf[0, end)` (the pending bytes, or a read when none were
   * pending) and starts the exchange; an incomplete head is kept in `this.buf`.
   */
  private parseRequest(buf: Buffer, end: number): void {
    const r = this.req.parse(buf, 0, end);
    if (r === HeadError.Incomplete) {
      if (this.buf !== buf) this.buf = keep(buf, 0, end);
      return;
    }
    if (r < 0) {
      if (this.buf !== buf) this.buf = keep(buf, 0, end);
      this.phase = Phase.Request;
      this.ctx.reset(this.fe.wheel.now, false);
      this.ctx.tStart = loopNow();
      this.ctx.method = '<BADREQ>';
      this.fe.logger.debug({ client_ip: this.clientIp, frontend: this.fe.name, error: headErrorText(r) }, 'bad request');
      this.fail(r === HeadError.TooLarge ? 431 : r === HeadError.BadVersion ? 505 : 400, 'P', 'R');
      return;
    }
    this.buf = r < end ? keep(buf, r, end) : null;
    claimRequestHead(this);
    this.startRequest(r);
    releaseRequestHead(this);
    if (this.rs !== null) this.rs.endRequest();
  }

  private startRequest(headBytes: number): void {
    const req = this.req;
    const ctx = this.ctx;
    const tStart = ctx.tStart;
    this.route = this.fe.route;
    this.backend = this.fe.backend;
    let backend = this.backend;
    ctx.reset(this.fe.wheel.now, backend?.cookie !== undefined);
    ctx.tStart = tStart;
    ctx.tHead = loopNow();
    ctx.method = req.method;
    ctx.target = req.target;
    ctx.versionMinor = req.versionMinor;
    this.reqIsHead = req.method === 'HEAD';
    this.reqIsPost = req.method === 'POST';
    this.reqUpgrade = req.connUpgrade && req.upgrade.length > 0;
    ctx.bytesIn = headBytes;
    this.phase = Phase.Request;
    this.reqDone = false;
    this.resKeepsConn = false;
    this.upBuf = null;
    this.reqEdited = false;
    this.keepAlive = req.wantsKeepAlive() && !(this.fe.draining && this.heir === null);
    frameRequestBody(this);
    this.arm(Tmo.Client, this.fe.timeouts.client);
    const rs = this.rs;
    if (rs !== null) {
      if (!this.runRequestRules(rs)) return;
      backend = this.backend;
    }
    if (!backend) {
      this.fail(503, 'S', 'C');
      return;
    }
    this.pickUpstream(backend);
  }

  // ---------------------------------------------------------------- phase 1b: rules

  /**
   * Runs the request's rules in HAProxy's order: the frontend's `tcp-request content` then
   * `http-request`, `use_backend` (first match, else the default backend), the chosen backend's
   * `tcp-request content` then `http-request`. Returns false when a rule answered (or holds) the
   * request; true to route it.
   */
  private runRequestRules(rs: RuleStream): boolean {
    const fr = this.fe.rules!;
    rs.beginRequest(this.req);
    rs.backendName = this.fe.name;
    rs.countRequestOnSession();
    let hit: Rule | null = null;
    const own = fr.own;
    if (own !== undefined) hit = runRules(own.tcpContent, rs) ?? runRules(own.httpRequest, rs);
    if (hit === null) {
      const use = fr.useBackends;
      for (let i = 0; i < use.length; i++) {
        const u = use[i]!;
        if (u.cond === undefined || u.cond(rs)) {
          this.route = u.route;
          break;
        }
      }
      const route = this.route;
      if (route !== undefined) {
        rs.backendName = route.backend.name;
        if (route.backend !== this.backend) {
          this.backend = route.backend;
          this.ctx.cookie.reset(route.backend.cookie !== undefined);
        }
        const br = route.rules;
        if (br !== undefined) hit = runRules(br.tcpContent, rs) ?? runRules(br.httpRequest, rs);
      }
    }
    if (rs.reqEdited) this.reqEdited = true;
    if (hit === null) return true;
    this.answerByRule(hit);
    return false;
  }

  /** A final request rule fired: deny, return, redirect (answered now), tarpit (held), reject (closed). */
  private answerByRule(r: Rule): void {
    const ctx = this.ctx;
    ctx.rule = r.where;
    switch (r.act) {
      case Act.Reject:
        this.fe.rules!.counts.requests++;
        ctx.term0 = 'P';
        ctx.term1 = 'R';
        this.keepAlive = false;
        this.destroy();
        return;
      case Act.Tarpit:
        this.fe.rules!.counts.requests++;
        ctx.term0 = 'P';
        ctx.term1 = 'T';
        this.tarpitRule = r;
        this.arm(Tmo.Tarpit, r.tarpitMs);
        return;
      case Act.Deny:
        this.fe.rules!.counts.requests++;
        ctx.term0 = 'P';
        ctx.term1 = 'R';
        break;
      default:
        ctx.term0 = 'L';
        ctx.term1 = 'R';
        if (r.act === Act.Redirect) this.redirectTarget = redirectLocation(r, this.rs!);
        break;
    }
    this.replyByRule(r);
  }

  /**
   * Sends a rule's reply and ends the exchange. The connection is kept alive as HAProxy does,
   * unless the request has a body (its bytes would have to be read and dropped first) or asked
   * for an upgrade.
   */
  private replyByRule(r: Rule): void {
    if (this.closed) return;
    const ctx = this.ctx;
    // An errorfile (the rule section's, else the frontend's) is sent as written and closes.
    const fePage = r.frontendErrorFile ? this.fe.errorPages.get(r.status) : undefined;
    if (this.reqBodyMode !== BodyMode.None || this.reqUpgrade || fePage !== undefined || r.reply?.closes === true) this.keepAlive = false;
    const mode = (this.keepAlive ? (ctx.versionMinor === 0 ? ReplyMode.KeepAlive10 : ReplyMode.KeepAlive11) : ReplyMode.Close) | (this.reqIsHead ? ReplyMode.Head : 0);
    const bytes = r.act === Act.Redirect ? redirectBytes(r.status, this.redirectTarget, mode) : (fePage ?? r.reply!.bytes(mode));
    this.redirectTarget = '';
    ctx.status = r.status;
    ctx.bytesOut += bytes.length;
    this.socket.write(bytes);
    this.endExchange(true);
  }

  /** The redirect's location, computed while the request head is still held. */
  private redirectTarget = '';

  // ---------------------------------------------------------------- phase 2: pick upstream

  private pickUpstream(backend: RuntimeBackend): void {
    const ctx = this.ctx;
    const req = this.req;
    const cookie = backend.cookie;
    if (cookie) {
      const nowSec = Math.floor(loopNow() / 1000);
      for (let i = 0; i < req.count; i++) {
        if (req.names[i]!.length === 6 && nameIs(req.names[i]!, 'cookie')) {
          const v = cookie.onRequestCookieHeader(req.values[i]!, ctx.cookie, nowSec);
          if (v !== undefined) {
            if (v.length === 0) req.names[i] = '';
            else req.values[i] = v;
            this.reqEdited = true;
          }
        }
      }
    }
    const server = decide(backend, this, ctx.cookie, this.stickState, ctx);
    if (!server) {
      this.fail(503, 'S', 'C');
      return;
    }
    this.reqHead = requestHeadOut(this);
    this.connectTo(server);
  }

  get localIp(): string {
    return plainIp(this.socket.localAddress);
  }

  /** The request's last `lower` header; for stick rules while the request starts (shared parser). */
  requestHeader(lower: string): string | undefined {
    checkRequestHead(this);
    const req = this.req;
    for (let i = req.count - 1; i >= 0; i--) if (req.names[i]!.length === lower.length && nameIs(req.names[i]!, lower)) return req.values[i];
    return undefined;
  }

  /** The request's cookie `name`; for stick rules while the request starts (shared parser). */
  requestCookie(name: string): string | undefined {
    checkRequestHead(this);
    const req = this.req;
    for (let i = 0; i < req.count; i++) {
      if (req.names[i]!.length === 6 && nameIs(req.names[i]!, 'cookie')) {
        const v = cookieValue(req.values[i]!, name);
        if (v !== undefined) return v;
      }
    }
    return undefined;
  }

  /** Hash of the client address for `balance source`, computed once per connection. */
  sourceHash(): number {
    if (this.clientHash === -1) this.clientHash = hashAddress(this.clientIp);
    return this.clientHash;
  }

  // ---------------------------------------------------------------- phase 3: forward

  private connectTo(server: RuntimeServer): void {
    const ctx = this.ctx;
    ctx.server = server;
    server.connOpened();
    this.counted = server;
    ctx.tConnStart = loopNow();
    const idle = UpstreamConn.takeIdle(server, this);
    if (idle) {
      this.up = idle;
      this.upReused = true;
      this.onUpstreamConnect(idle);
      return;
    }
    this.upReused = false;
    this.arm(Tmo.Connect, this.route!.timeouts.connect);
    this.up = new UpstreamConn(server, this, this.fe.wheel);
  }

  onUpstreamConnect(up: UpstreamConn): void {
    if (up !== this.up) return;
    this.ctx.tConnected = loopNow();
    const stick = this.backend?.stick;
    if (stick && this.ctx.server) stickStoreRequest(stick, this.stickState, this.ctx.server);
    this.arm(Tmo.Server, this.route!.timeouts.server);
    up.out.write(this.reqHead);
    this.phase = Phase.Sent;
    if (!this.reqDone && this.buf !== null) {
      const buf = this.buf;
      this.buf = null;
      const n = forwardRequestBody(this, buf, 0, buf.length);
      if (n < 0) return;
      if (n < buf.length) this.buf = this.buf === null ? buf.subarray(n) : Buffer.concat([buf.subarray(n), this.buf]);
    }
    if (this.pausedForBuffer && (this.buf === null || this.buf.length <= MAX_PENDING_BYTES)) this.resumeClient();
    this.abortIfBodyCut();
  }

  onUpstreamDrain(up: UpstreamConn): void {
    if (up === this.up && this.pausedForUpstream) this.resumeClient();
  }

  /** A connect to `ctx.server` failed (`reason`: refused, timeout, TLS verification ...): retry, redispatch or 503. */
  private onConnectFailure(reason: string): void {
    const up = this.up;
    const server = this.ctx.server;
    this.up = null;
    if (up) up.destroy();
    this.ctx.connectError = reason;
    if (server) server.connectFailed(reason);
    if (!server || !this.backend) {
      this.fail(503, 'S', 'C');
      return;
    }
    this.uncount();
    const next = afterConnectFailure(this.backend, server, this, this.ctx, this.ctx.cookie);
    if (next === undefined) {
      this.ctx.server = server;
      this.fail(503, 'S', 'C');
      return;
    }
    this.connectTo(next);
  }

  // ---------------------------------------------------------------- phase 4: response

  /**
   * Response bytes from the server, `buf[0, n)` (the connection's read buffer). A head and the
   * body bytes that came with it leave in one write (writeResponseHead coalesces them, or forwardResBody
   * corks around a large body).
   */
  onUpstreamData(up: UpstreamConn, buf: Buffer, n: number): void {
    if (up !== this.up) return;
    this.upstreamData(up, buf, n);
    if (this.headSrc !== null) {
      // The body did not come with the head: the head must not wait for it.
      if (!this.closed) writeResponseHead(this, null, 0, 0);
      else dropResponseHead(this);
    }
    // `buf` is the connection's read buffer: keep it from being reused while a write the kernel
    // did not take at once, or a partial head, still points into it (a no-op for the shared
    // buffer, whose kept bytes were copied).
    if (this.out.holds || this.upBuf !== null) up.holdReadBuffer();
    // The next read goes into the shared buffer while a response head is expected.
    up.sharedReads = this.up !== up || (this.phase < Phase.ResponseBody && this.upBuf === null);
  }

  private upstreamData(up: UpstreamConn, chunk: Buffer, n: number): void {
    this.touch();
    if (this.phase === Phase.Tunnel) {
      this.ctx.bytesOut += n;
      if (!this.socket.write(keep(chunk, 0, n))) up.socket.pause();
      return;
    }
    if (this.phase <= Phase.Idle) {
      // Bytes after the exchange ended: the server is out of sync; never reuse it.
      up.destroy();
      return;
    }
    if (this.phase === Phase.ResponseBody) {
      forwardResponseBody(this, up, chunk, 0, n);
      return;
    }
    this.phase = Phase.ResponseHead;
    // The head is parsed where it lies: in this read, or in the bytes kept from earlier reads.
    let buf = chunk;
    let end = n;
    if (this.upBuf !== null) {
      buf = Buffer.concat([this.upBuf, chunk.subarray(0, n)]);
      end = buf.length;
      this.upBuf = null;
    }
    let at = 0;
    for (;;) {
      const r = this.res.parse(buf, at, end);
      if (r === HeadError.Incomplete) {
        this.upBuf = keep(buf, at, end);
        return;
      }
      if (r < 0) {
        this.fe.logger.debug({ server: this.ctx.server?.name, error: headErrorText(r) }, 'bad response from server');
        this.fail(502, 'P', 'H');
        return;
      }
      const status = this.res.status;
      if (status >= 100 && status < 200 && status !== 101) {
        // Interim response (100 Continue, 103 Early Hints): relay verbatim, keep waiting.
        this.socket.write(keep(buf, at, at + r));
        this.ctx.bytesOut += r;
        at += r;
        continue;
      }
      const forward = this.onResponseHead(up, buf, at, r, at + r < end);
      at += r;
      if (!forward || this.closed || at === end) return;
      break;
    }
    // onResponseHead moved the phase on (TypeScript still narrows it to ResponseHead).
    if ((this.phase as Phase) === Phase.Tunnel) {
      this.ctx.bytesOut += end - at;
      this.socket.write(keep(buf, at, end));
    } else {
      forwardResponseBody(this, up, buf, at, end);
    }
  }

  /**
   * Takes the response head `src[at, at + headBytes)`: its body framing, the connection's reuse,
   * and the head sent to the client (planned as edits, response-edit.ts). `more`: bytes follow the head in `src`. Returns whether they are to be
   * forwarded (response body or tunnel); false when the response has no body (they are dropped
   * and the server connection is not reused) or the exchange failed.
   */
  private onResponseHead(up: UpstreamConn, src: Buffer, at: number, headBytes: number, more: boolean): boolean {
    const ctx = this.ctx;
    const res = this.res;
    ctx.tResHead = loopNow();
    ctx.status = res.status;
    const rs = this.rs;
    if (rs !== null && !this.runResponseRules(rs)) return false;
    this.phase = Phase.ResponseBody;
    this.resKeepsConn = !res.connClose && (res.versionMinor === 1 || res.connKeepAlive);
    if (res.status === 101) {
      if (!this.reqUpgrade) {
        this.fail(502, 'P', 'H');
        return false;
      }
      this.phase = Phase.Tunnel;
      this.resBodyMode = BodyMode.None;
    } else {
      frameResponseBody(this);
    }
    if (this.resBodyMode === BodyMode.UntilClose || (res.chunked && ctx.versionMinor === 0)) this.keepAlive = false;
    // Like HAProxy, a server that framed a response both ways, or sent Transfer-Encoding as an
    // HTTP/1.0 server, is not trusted with another request on this connection.
    if (res.hasTransferEncoding && (res.clAt !== -1 || res.versionMinor === 0)) this.keepUpstream = false;
    if ((this.fe.draining && this.heir === null) || this.clientEnded) this.keepAlive = false;
    if (!this.reqDone) this.keepAlive = false; // early response: the rest of the request body is unread

    const backend = this.backend;
    if (backend?.stick && backend.stick.storeResponse.length > 0 && ctx.server) stickStoreResponse(backend.stick, ctx.server, res.names, res.values, res.count);
    planResponseHead(this, src, at);
    ctx.bytesOut += headBytes;
    // Without a body the head leaves now; otherwise with the first body bytes, in one buffer
    // (forwardResBody), or at the end of this read (onUpstreamData).
    if (this.phase === Phase.Tunnel || this.resBodyMode === BodyMode.None) {
      writeResponseHead(this, null, 0, 0);
    }
    if (this.phase === Phase.Tunnel) {
      this.arm(Tmo.Tunnel, this.route!.timeouts.tunnel);
      if (this.buf !== null) {
        const b = this.buf;
        this.buf = null;
        up.socket.write(b);
      }
      this.resumeClient();
      return true;
    }
    if (this.resBodyMode === BodyMode.None) {
      // Bytes after a body-less response: drop them and never reuse this connection.
      if (more) this.keepUpstream = false;
      this.responseComplete(up);
      return false;
    }
    return true;
  }

  /**
   * Runs `http-response` rules, the backend's then the frontend's (HAProxy's order), over the
   * response head the shared parser holds; their header edits go into the head's edit plan
   * (response-edit.ts). Returns false when a `deny` replaced the response (answered and ended).
   */
  private runResponseRules(rs: RuleStream): boolean {
    rs.beginResponse(this.res);
    const br = this.route?.rules?.httpResponse;
    const fr = this.fe.rules?.own?.httpResponse;
    let hit: Rule | null = null;
    if (br !== undefined && br.length > 0) hit = runRules(br, rs);
    if (hit === null && fr !== undefined && fr.length > 0) hit = runRules(fr, rs);
    rs.endResponse();
    if (hit === null) return true;
    // deny: the server's response is dropped (and its connection with it), ours goes instead.
    const ctx = this.ctx;
    this.fe.rules!.counts.responses++;
    ctx.rule = hit.where;
    ctx.term0 = 'P';
    ctx.term1 = 'H';
    this.keepAlive = false;
    this.keepUpstream = false;
    const bytes = (hit.frontendErrorFile ? this.fe.errorPages.get(hit.status) : undefined) ?? hit.reply!.bytes(ReplyMode.Close | (this.reqIsHead ? ReplyMode.Head : 0));
    ctx.status = hit.status;
    ctx.bytesOut += bytes.length;
    if (!this.closed) this.socket.write(bytes);
    this.endExchange(false);
    return false;
  }

  private uncount(): void {
    if (this.counted) {
      this.counted.connClosed();
      this.counted = null;
    }
  }

  responseComplete(_up: UpstreamConn): void {
    if (this.reqDone) this.endExchange(true);
    else {
      // The server answered before the whole request body arrived: finish now, close afterwards.
      this.keepAlive = false;
      this.endExchange(true);
    }
  }

  onUpstreamClose(up: UpstreamConn, _err: Error | undefined): void {
    if (up !== this.up) return;
    if (!up.connected) {
      this.onConnectFailure(up.failureReason);
      return;
    }
    this.up = null;
    if (this.closed) return;
    if (this.phase === Phase.Tunnel) {
      this.socket.end();
      this.endExchange(false);
      return;
    }
    if (this.phase < Phase.ResponseHead) {
      if (this.upReused && this.reqBodyMode === BodyMode.None) {
        // A kept-alive connection the server closed before our request reached it: retry afresh.
        const server = this.ctx.server!;
        this.uncount();
        this.connectTo(server);
        return;
      }
      this.fail(502, 'S', 'H');
      return;
    }
    if (this.phase >= Phase.ResponseBody && this.resBodyMode === BodyMode.UntilClose) {
      this.keepUpstream = false;
      this.responseComplete(up);
      return;
    }
    if (this.phase < Phase.ResponseBody) {
      this.fail(502, 'S', 'H');
      return;
    }
    this.ctx.term0 = 'S';
    this.ctx.term1 = 'D';
    this.destroy();
  }

  // ---------------------------------------------------------------- phase 5: log and reuse

  /**
   * Ends the current exchange: logs it, releases or closes the upstream connection, and either
   * waits for the next request or closes the client connection.
   */
  endExchange(completed: boolean): void {
    if (this.phase <= Phase.Idle) return;
    this.exchanges++;
    const tunnel = this.phase === Phase.Tunnel;
    this.phase = tunnel ? Phase.TunnelClosed : Phase.Idle;
    const ctx = this.ctx;
    const up = this.up;
    this.up = null;
    this.uncount();
    if (up) {
      // A connection that carried an upgrade request is not reused even when the server declined
      // (answered without 101): servers such as Node's http stop parsing HTTP on it afterwards,
      // and the next request sent there would never be answered.
      const reusable =
        completed &&
        !tunnel &&
        !this.reqUpgrade &&
        this.keepUpstream &&
        this.reqDone &&
        this.resBodyMode !== BodyMode.UntilClose &&
        this.resKeepsConn;
      if (reusable) up.release();
      else up.destroy();
    }
    this.keepUpstream = true;
    this.reqHead = ''; // an idle connection keeps no request text
    const rs = this.rs;
    if (rs !== null) {
      // A tarpit still holding the request when the exchange ends otherwise (client gone).
      if (this.tarpitRule !== null) this.tarpitRule = null;
      rs.endStream(ctx.status, ctx.term1 === 'T', ctx.bytesIn, ctx.bytesOut);
    }
    logExchange(this);
    if (this.closed) return;
    if (!completed || !this.keepAlive || tunnel) {
      this.closeClient();
      return;
    }
    this.reqBodyMode = BodyMode.None;
    this.resBodyMode = BodyMode.None;
    if (this.heir !== null) this.adopt();
    this.ctx.tStart = loopNow();
    this.arm(Tmo.KeepAlive, this.fe.timeouts.httpKeepAlive);
    this.resumeClient();
    if (this.buf !== null) {
      this.headArriving();
      this.tryParse();
    }
  }

  /**
   * Answers with an error page when nothing was sent yet, otherwise aborts; then closes. The page
   * is the `errorfile` for `status` of the backend the request was routed to (for the errors a
   * backend causes: 502, 503, 504), else of the frontend, else the built-in one.
   */
  fail(status: number, term0: string, term1: string): void {
    const ctx = this.ctx;
    ctx.term0 = term0;
    ctx.term1 = term1;
    this.keepAlive = false;
    if (this.up) {
      this.up.destroy();
    }
    if (this.phase < Phase.ResponseBody && !this.closed) {
      const be = status === 502 || status === 503 || status === 504 ? this.backend : undefined;
      const page = be?.errorPages.get(status) ?? this.fe.errorPages.get(status) ?? errorResponse(status);
      ctx.status = status;
      ctx.bytesOut += page.length;
      this.socket.write(page);
    }
    if (this.phase <= Phase.Idle) this.phase = Phase.Request;
    this.endExchange(false);
  }

  private closeClient(): void {
    this.tkind = Tmo.None;
    this.fe.wheel.cancel(this);
    this.buf = null;
    if (!this.socket.destroyed) {
      this.socket.end();
      this.socket.destroySoon();
    }
  }

  /** Closes the client connection now (and the upstream one with it), logging an open exchange. */
  destroy(): void {
    if (this.up) {
      this.up.destroy();
    }
    if (this.phase > Phase.Idle) this.endExchange(false);
    if (!this.socket.destroyed) this.socket.destroy();
  }

  /**
   * Reload: `next` took over every listener of this connection's frontend (same mode, rules of
   * the same kind). The connection moves there, at once when idle, else when its exchange ends:
   * it stays open (a TLS session keeps its certificate) and its next request runs the new
   * config. False when it cannot move; the caller then drains it.
   */
  moveTo(next: HttpFrontendRuntime): boolean {
    if (this.closed || this.phase === Phase.TunnelClosed || this.clientEnded || (this.rs !== null) !== (next.rules !== undefined)) return false;
    this.heir = next;
    if (this.phase === Phase.Idle) this.adopt();
    return true;
  }

  /** Joins the heir frontend: counted there first, so the counts never dip in between. */
  private adopt(): void {
    const next = this.heir!;
    this.heir = null;
    next.conns.add(this);
    this.fe.conns.delete(this);
    this.fe = next;
  }

  /**
   * Called on shutdown/reload: connections idle between requests close now, busy ones after their
   * response. One that has not had its first exchange yet was accepted for a request the client
   * may already have sent (its bytes not read yet): it stays to answer that one request, then
   * closes (the draining frontend sends `Connection: close`), within the drain deadline.
   */
  drain(): void {
    if (this.phase === Phase.Idle && this.exchanges > 0) this.closeClient();
    else this.keepAlive = false;
  }
}
