/**
 * The HTTP side of the peers port: everything before a connection is handed to ws as an upgraded
 * WebSocket. It promises that no socket lives here unbounded:
 *
 * - admission at accept: a source over its failed-handshake budget, a full total, or a full
 *   per-source count of not-yet-authenticated connections is closed at once (before TLS or HTTP
 *   parsing), counted as 'rate-limited', 'too-many-connections' or 'too-many-from-source';
 * - deadlines: the request head must arrive within `headersTimeoutMs` of the accept, a plain request
 *   be answered and closed within `requestTimeoutMs`, and a socket idle for `idleTimeoutMs` is closed.
 *   Node's own headersTimeout/requestTimeout are set too, but the service's sweep checks every raw
 *   socket itself (`tick`), so the bound holds whatever Node's checking interval;
 * - every listener catches what it throws: a bad request ends in a 400 or a closed socket, never in
 *   an exception on the event loop.
 *
 * A connection counts against the bounds from its accept until it authenticates (`release`) or
 * closes, also after the upgrade (the WebSocket handshake is still unauthenticated).
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { PEERS_PATH } from './codec.js';
import { clip, type RefusalReason } from './refusals.js';

export interface ListenerLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxRawConnections: number;
  maxRawConnectionsPerSource: number;
}

/** One accepted socket that has not authenticated yet. */
export class RawConn {
  /** When the request head arrived (0: not yet). */
  headAt = 0;
  upgraded = false;
  /** Released: closed, refused or authenticated; no longer counted. */
  done = false;
  readonly onClose = (): void => this.owner.socketClosed(this);

  constructor(
    private readonly owner: PeersListener,
    readonly socket: Socket,
    readonly address: string,
    readonly remote: string,
    readonly since: number,
  ) {}
}

export interface ListenerHost {
  readonly running: boolean;
  /** A source over its failed-handshake budget (checked before anything else is done for it). */
  overBudget(address: string, now: number): boolean;
  /** Counts and logs a refusal attributed to a remote address. */
  refuseAddress(address: string, remote: string, reason: RefusalReason, detail: string, extra?: Record<string, unknown>): void;
  /** A well-formed knock naming `name` (decoded; not necessarily a configured peer). */
  knocked(name: string): void;
  /** An upgrade request on the peers path, within the listener's bounds: the host takes the socket. */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, remote: string): void;
}

const KNOCK_PREFIX = `${PEERS_PATH}/knock?node=`;
/** Longest request head accepted (bytes); a peers request head is a few hundred. */
const MAX_HEADER_BYTES = 8192;

export const remoteOf = (s: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string =>
  `${s.remoteAddress ?? '?'}:${s.remotePort ?? 0}`;

/** decodeURIComponent that returns undefined instead of throwing on a malformed escape. */
export function decodeComponent(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

export class PeersListener {
  readonly server: http.Server;
  /** Unreleased raw connections by remote address:port (bounded by maxRawConnections). */
  private readonly raws = new Map<string, RawConn>();
  /** Unreleased raw connections per source address (entries only while > 0). */
  private readonly perSource = new Map<string, number>();
  /** Every open socket of the port, raw or authenticated, for stop(). */
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly host: ListenerHost,
    readonly limits: ListenerLimits,
    tls: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer } | undefined,
  ) {
    const base = {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs),
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 2))),
      maxHeaderSize: MAX_HEADER_BYTES,
      keepAliveTimeout: limits.idleTimeoutMs,
    };
    this.server = tls
      ? https.createServer({ ...base, key: tls.key, cert: tls.cert, ...(tls.ca ? { ca: tls.ca } : {}), handshakeTimeout: limits.headersTimeoutMs })
      : http.createServer(base);
    this.server.setTimeout(limits.idleTimeoutMs);
    this.server.on('connection', this.onConnection);
    this.server.on('request', this.onRequest);
    // No '100 Continue' and no '417': every request is answered (and closed) on its head alone.
    this.server.on('checkContinue', this.onRequest);
    this.server.on('checkExpectation', this.onRequest);
    this.server.on('upgrade', this.onUpgrade);
    this.server.on('clientError', this.onClientError);
    this.server.on('timeout', this.onIdle);
    if (tls) this.server.on('tlsClientError', this.onTlsError);
  }

  /** Unreleased raw connections (all sources). */
  get rawCount(): number {
    return this.raws.size;
  }

  /** The connection from `remote` authenticated: it no longer counts against the raw bounds. */
  release(remote: string): void {
    const r = this.raws.get(remote);
    if (r) this.closed(r);
  }

  /** Half-closes the TCP socket of the unauthenticated connection from `remote` (FIN after what was written). */
  endRaw(remote: string): void {
    this.raws.get(remote)?.socket.end();
  }

  /** Closes raw sockets past their deadlines. Called by the service's sweep (every <= 250 ms). */
  tick(now: number): void {
    const l = this.limits;
    for (const r of this.raws.values()) {
      if (r.upgraded) continue; // the WebSocket handshake deadline applies from here
      if (r.headAt === 0 && now - r.since > l.headersTimeoutMs) this.drop(r, 'header-timeout', `no request head within ${l.headersTimeoutMs} ms`);
      else if (now - r.since > l.requestTimeoutMs) this.drop(r, 'request-timeout', `request not completed within ${l.requestTimeoutMs} ms`);
    }
  }

  /** Destroys every socket of the port. */
  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** The socket of `r` closed (whether or not it had authenticated). */
  socketClosed(r: RawConn): void {
    this.closed(r);
    this.sockets.delete(r.socket);
  }

  /** Stops counting `r` against the raw bounds (idempotent). */
  closed(r: RawConn): void {
    if (r.done) return;
    r.done = true;
    if (this.raws.get(r.remote) === r) this.raws.delete(r.remote);
    const n = (this.perSource.get(r.address) ?? 1) - 1;
    if (n > 0) this.perSource.set(r.address, n);
    else this.perSource.delete(r.address);
  }

  private drop(r: RawConn, reason: RefusalReason, detail: string): void {
    if (r.done) return;
    this.closed(r);
    this.host.refuseAddress(r.address, r.remote, reason, detail);
    r.socket.destroy();
  }

  private rawOf(s: { remoteAddress?: string | undefined; remotePort?: number | undefined }): RawConn | undefined {
    return this.raws.get(remoteOf(s));
  }

  private readonly onConnection = (s: Socket): void => {
    try {
      this.admit(s);
    } catch {
      s.destroy();
    }
  };

  private admit(s: Socket): void {
    s.on('error', swallow);
    const now = Date.now();
    const address = s.remoteAddress ?? '?';
    const remote = remoteOf(s);
    const refuse = (reason: RefusalReason, detail: string): void => {
      this.host.refuseAddress(address, remote, reason, detail);
      s.destroy();
    };
    if (!this.host.running) return refuse('shutdown', 'service stopping');
    if (this.host.overBudget(address, now)) return refuse('rate-limited', 'source over its failed-handshake budget');
    if (this.raws.size >= this.limits.maxRawConnections) {
      return refuse('too-many-connections', `${this.raws.size} unauthenticated connections open`);
    }
    const n = this.perSource.get(address) ?? 0;
    if (n >= this.limits.maxRawConnectionsPerSource) return refuse('too-many-from-source', `${n} unauthenticated connections open from this source`);
    const r = new RawConn(this, s, address, remote, now);
    const old = this.raws.get(remote);
    if (old) this.closed(old);
    this.raws.set(remote, r);
    this.perSource.set(address, n + 1);
    this.sockets.add(s);
    s.once('close', r.onClose);
  }

  private readonly onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    try {
      this.request(req, res);
    } catch {
      this.badRequest(req.socket, res, 'request handler failed');
    }
  };

  private request(req: http.IncomingMessage, res: http.ServerResponse): void {
    const r = this.rawOf(req.socket);
    if (r) r.headAt = Date.now();
    const url = req.url ?? '';
    if (url.startsWith(KNOCK_PREFIX)) {
      if (req.method !== 'GET') {
        this.refuseReq(r, req.socket, 'bad-request', `knock with method ${clip(req.method ?? '')}`);
        res.writeHead(405, { connection: 'close', allow: 'GET', 'content-length': 0 }).end();
        return;
      }
      const name = url.length <= 256 ? decodeComponent(url.slice(KNOCK_PREFIX.length)) : undefined;
      if (name === undefined) return this.badRequest(req.socket, res, 'knock with a malformed or overlong node name');
      this.host.knocked(name);
      res.writeHead(204, { connection: 'close' }).end();
      return;
    }
    res.writeHead(426, { connection: 'close', 'content-type': 'text/plain' }).end('stickmesh peers: WebSocket only\n');
  }

  private badRequest(socket: Duplex, res: http.ServerResponse, detail: string): void {
    this.refuseReq(this.rawOf(socket as Socket), socket, 'bad-request', detail);
    if (res.headersSent) {
      socket.destroy();
      return;
    }
    res.writeHead(400, { connection: 'close', 'content-type': 'text/plain' }).end('bad request\n');
  }

  private refuseReq(r: RawConn | undefined, s: Duplex, reason: RefusalReason, detail: string): void {
    const sock = s as Socket;
    this.host.refuseAddress(r?.address ?? sock.remoteAddress ?? '?', remoteOf(sock), reason, detail);
  }

  private readonly onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    try {
      this.upgradeRequest(req, socket, head);
    } catch {
      this.refuseReq(this.rawOf(socket as Socket), socket, 'bad-request', 'upgrade handler failed');
      socket.destroy();
    }
  };

  private upgradeRequest(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', swallow);
    const r = this.rawOf(socket as Socket);
    if (r) {
      r.headAt = Date.now();
      r.upgraded = true;
    }
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (path !== PEERS_PATH) {
      this.refuseReq(r, socket, 'bad-path', `path ${JSON.stringify(clip(path))}`);
      return rejectUpgrade(socket, '404 Not Found');
    }
    this.host.upgrade(req, socket, head, remoteOf(socket as Socket));
  }

  /** An HTTP parse error or Node's own header/request deadline: the socket is destroyed, no answer. */
  private readonly onClientError = (err: Error & { code?: string }, socket: Duplex): void => {
    try {
      const r = this.rawOf(socket as Socket);
      // A client that reset or closed mid-request went away on its own (not a refusal); an already
      // released socket was counted before.
      if (r?.done || err.code === 'ECONNRESET' || err.code === 'HPE_INVALID_EOF_STATE') return void socket.destroy();
      let reason: RefusalReason = 'bad-request';
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') reason = r && r.headAt > 0 ? 'request-timeout' : 'header-timeout';
      if (r) this.closed(r);
      this.refuseReq(r, socket, reason, `${err.code ?? 'error'}: ${clip(err.message)}`);
    } catch {
      /* fall through to destroy */
    }
    socket.destroy();
  };

  private readonly onTlsError = (err: Error & { code?: string }, socket: Duplex): void => {
    try {
      const r = this.rawOf(socket as Socket);
      if (r && !r.done) {
        this.closed(r);
        this.refuseReq(r, socket, 'bad-request', `TLS: ${err.code ?? clip(err.message)}`);
      }
    } catch {
      /* fall through to destroy */
    }
    socket.destroy();
  };

  private readonly onIdle = (socket: Socket): void => {
    try {
      const r = this.rawOf(socket);
      if (r && !r.done && !r.upgraded) {
        this.closed(r);
        this.refuseReq(r, socket, 'idle-timeout', `no bytes for ${this.limits.idleTimeoutMs} ms`);
      }
    } catch {
      /* fall through to destroy */
    }
    socket.destroy();
  };
}

/** Ends an upgrade request with `status` and no body. */
export function rejectUpgrade(socket: Duplex, status: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  socket.destroy();
}

function swallow(): void {
  /* socket errors end in 'close', which releases the connection */
}
