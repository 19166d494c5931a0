/**
 * The state of one HTTP client connection and its current exchange, declared in one place.
 * `ClientConn` (client-conn.ts) drives it; the phase modules beside it (request head out,
 * response head edit, body forwarding, access log) are plain functions called with it. Fields are
 * public for those modules only; nothing outside http/ reads them.
 */
import type net from 'node:net';
import type { Logger } from 'pino';
import type { Timeouts, TimerWheel } from '@stickmesh/core';
import { ChunkedScanner } from './chunked.js';
import { RequestContext } from './context.js';
import { RequestHead, ResponseHead } from './head.js';
import type { UpstreamConn } from './upstream.js';
import type { ErrorPages } from './responses.js';
import { RawWriter } from '../listen/raw-write.js';
import { ReadBuffer } from '../listen/read-buffer.js';
import type { FrontendConn } from '../listen/admission.js';
import type { RuntimeBackend } from '../runtime/backend.js';
import type { RuntimeServer } from '../runtime/server.js';
import { plainIp } from '../runtime/address.js';
import { StickState } from '../runtime/stick.js';
import type { RuleStream } from '../rules/stream.js';
import type { DenyCounts } from '../metrics.js';
import type { SectionRules } from '../rules/compile.js';
import type { CompiledCond } from '../rules/types.js';

/** First size of a connection's client read buffer (a request head usually fits). */
export const CLIENT_READ_MIN = 4096;
/** Largest client read buffer, reached by doubling after reads that fill the buffer. */
export const CLIENT_READ_MAX = 65536;

/**
 * One request-head parser for every connection: a request is parsed, routed (cookies, stick
 * rules, balancing) and its head rendered for the server (`reqHead`) within the callback that
 * completed it; what the exchange needs afterwards is copied into the connection.
 */
const requestHead = new RequestHead();

/** The connection whose request head `requestHead` holds while its request starts; null otherwise. */
let requestOwner: Exchange | null = null;
let requestReentries = 0;

/**
 * `conn` starts the request `requestHead` has just parsed. A claim while another connection's
 * request is still starting, or a release by a connection that holds no claim, counts as a
 * re-entry (`requestHeadReentries`), which the tests require to stay 0. Counting, not
 * throwing: a socket callback that threw would take the process down.
 */
export function claimRequestHead(conn: Exchange): void {
  if (requestOwner !== null) requestReentries++;
  requestOwner = conn;
}

/** `conn` is done with the shared request head (its head for the server is rendered). */
export function releaseRequestHead(conn: Exchange): void {
  if (requestOwner !== conn) requestReentries++;
  requestOwner = null;
}

/** `conn` reads the shared request head: counts a re-entry unless it holds the claim. */
export function checkRequestHead(conn: Exchange): void {
  if (requestOwner !== conn) requestReentries++;
}

/** Times the shared request head was used across connections (see claimRequestHead); 0 unless a bug. */
export function requestHeadReentries(): number {
  return requestReentries;
}

/**
 * One response-head parser for every connection (the plan of edits to the head is shared too:
 * response-edit.ts): a response head is parsed, planned and written within the read callback
 * that completed it (writeResponseHead runs before onUpstreamData returns), and what the exchange
 * needs afterwards is copied into the connection (status, `resKeepsConn`). Per-connection
 * parsers were cold memory at a few hundred connections.
 */
const responseHead = new ResponseHead();

/** `option forwardfor`; `lower` is `header` in lower case, for matching the client's own copy. */
export type ForwardFor = { header: string; lower: string; except: net.BlockList | undefined; ifNone: boolean };

/**
 * Where a frontend sends a request: a backend with the timeouts (client side from the frontend,
 * server side from the backend), the `option forwardfor` and the backend's rules that apply.
 * Built per frontend and backend at load; a connection points at one per request.
 */
export interface HttpRoute {
  readonly backend: RuntimeBackend;
  readonly timeouts: Timeouts;
  readonly forwardFor: ForwardFor | undefined;
  /** The backend's rules; undefined when it has none (or shares the frontend's, a listen section). */
  readonly rules: SectionRules | undefined;
}

/**
 * A frontend's rules: its own lists, its `use_backend` routes (first whose condition holds wins,
 * else the default route), and its refusal counts. Undefined on a frontend where neither it nor
 * any backend it routes to has rules: such a frontend costs nothing extra per request.
 */
export interface HttpFrontendRules {
  readonly own: SectionRules | undefined;
  readonly useBackends: ReadonlyArray<{ readonly cond: CompiledCond | undefined; readonly route: HttpRoute }>;
  readonly counts: DenyCounts;
}

/** What a connection needs from its frontend. Swapped whole on reload. */
export interface HttpFrontendRuntime {
  readonly name: string;
  /** The default backend (`default_backend`). */
  readonly backend: RuntimeBackend | undefined;
  /** Client-side timeouts (and server-side ones of the default backend). */
  readonly timeouts: Timeouts;
  /** The default backend's route. */
  readonly route: HttpRoute | undefined;
  readonly rules: HttpFrontendRules | undefined;
  /** The frontend's `errorfile` pages (a backend's own come first for errors past routing). */
  readonly errorPages: ErrorPages;
  readonly logger: Logger;
  readonly wheel: TimerWheel;
  readonly conns: Set<FrontendConn>;
  draining: boolean;
}

/**
 * Where a connection is. An exchange opens when a request head parses and closes when its
 * response ends, fails or the client goes:
 *
 *   Idle ──request head parsed──▶ Request ──server connected, head written──▶ Sent
 *   Sent ──first response byte──▶ ResponseHead ──head complete──▶ ResponseBody ──body done──▶ Idle
 *   ResponseHead ──101 to an upgrade──▶ Tunnel ──either side closes──▶ TunnelClosed
 *   any open phase ──error page or abort (fail, destroy)──▶ Idle, the client closing
 *
 * Open phases are those above Idle, in order, so `phase >= Sent` reads "the request head went
 * to the server" and `phase >= ResponseBody` "the response head went to the client". The request
 * body runs beside the response (a server may answer before it is complete), so its end is a
 * fact of its own (`reqDone`); so are the client's FIN (`clientEnded`), its socket's close
 * (`closed`) and whether either connection is kept (`keepAlive`, `keepUpstream`).
 * A retry keeps the phase (Request or Sent) while it connects again.
 */
export const enum Phase {
  /** A tunnel ended; the client is closing and its bytes are dropped (no exchange open). */
  TunnelClosed = -1,
  /** No exchange: waiting for (the rest of) a request head. */
  Idle = 0,
  /** Request head parsed: routing, then connecting; nothing sent to the server yet. */
  Request = 1,
  /** Request head sent; the body may still be flowing; no response byte yet. */
  Sent = 2,
  /** Response bytes arrived, the head not yet complete (1xx interim heads are relayed here). */
  ResponseHead = 3,
  /** The response head went to the client; its body streams. */
  ResponseBody = 4,
  /** 101 Switching Protocols: bytes relayed both ways until either side closes. */
  Tunnel = 5,
}

export const enum BodyMode {
  None = 0,
  Length = 1,
  Chunked = 2,
  UntilClose = 3,
}

export const enum Tmo {
  None,
  KeepAlive,
  Request,
  Client,
  Connect,
  Server,
  Tunnel,
  /** A `tarpit` rule holds the request until `timeout tarpit`. */
  Tarpit,
}


export abstract class Exchange {
  /** Where the connection is (see `Phase`); the one value the booleans below do not repeat. */
  phase = Phase.Idle;
  readonly socket: net.Socket;
  fe: HttpFrontendRuntime;
  readonly clientIp: string;
  readonly clientPort: number;
  /** The client connection came over TLS (an `ssl` bind): `ssl_fc`, X-Forwarded-Proto. */
  readonly tls: boolean;
  /** The server name the client sent in its TLS hello (`ssl_fc_sni`); undefined without TLS or SNI. */
  readonly sni: string | undefined;
  clientHash = -1;
  /** Stick rule outcome of the current request (reused across requests of the connection). */
  readonly stickState = new StickState();

  buf: Buffer | null = null;
  /** Where client reads go (replaced when its bytes are still referenced after a read). */
  readonly rbuf = new ReadBuffer(CLIENT_READ_MIN, CLIENT_READ_MAX);
  /** The request head parser, shared (see `requestHead`): valid only while a request starts. */
  readonly req = requestHead;
  /** The head to send to the server, rendered when the request started (sent again on a retry). */
  reqHead = '';
  /** From the request head: HEAD, POST, an upgrade asked for (Connection: upgrade + Upgrade). */
  reqIsHead = false;
  reqIsPost = false;
  reqUpgrade = false;
  /** The response head parser, shared (see `responseHead`). */
  readonly res = responseHead;
  /** From the response head: the server keeps the connection open after this response. */
  resKeepsConn = false;
  readonly reqChunks = new ChunkedScanner();
  readonly resChunks = new ChunkedScanner();
  readonly ctx = new RequestContext();

  backend: RuntimeBackend | undefined;
  /** The current request's route (backend, server-side timeouts, forwardfor, backend rules). */
  route: HttpRoute | undefined;
  /** The rule engine's view of this connection; null when the frontend has no rules. */
  readonly rs: RuleStream | null;
  up: UpstreamConn | null = null;
  upReused = false;
  upBuf: Buffer | null = null;
  reqBodyMode = BodyMode.None;
  reqBodyLeft = 0;
  reqDone = false;
  resBodyMode = BodyMode.None;
  resBodyLeft = 0;
  keepAlive = true;
  /** Exchanges this connection completed or ended (a drain keeps a connection with none yet for its first request). */
  exchanges = 0;
  clientEnded = false;
  closed = false;
  pausedForUpstream = false;
  pausedForBuffer = false;
  /** The server connection may carry another request after this exchange. */
  keepUpstream = true;
  /** A cookie rule changed or removed a request header: the head is rebuilt, not copied. */
  reqEdited = false;
  /**
   * Server bytes holding the response head not yet written (it waits for the first body bytes of
   * the same read; see onUpstreamData), with the edits planned by onResponseHead: replace
   * `[editFrom[k], editTo[k])` of the head by `editText[k]`, in increasing offset order. The head
   * starts at `headSrc[headAt]`; edit offsets are relative to it (offsets in `res.text`).
   */
  headSrc: Buffer | null = null;
  headAt = 0;

  /** The server whose `activeConns` this exchange currently holds. */
  counted: RuntimeServer | null = null;

  deadline = 0;
  tkind = Tmo.None;
  _gen?: number;
  _due?: number;
  _slot?: number;
  _pos?: number;

  /** Response heads go through this (raw writes while nothing is queued on the client socket). */
  readonly out: RawWriter;

  constructor(socket: net.Socket, fe: HttpFrontendRuntime, rs: RuleStream | null, sni: string | undefined) {
    this.socket = socket;
    this.tls = (socket as { encrypted?: boolean }).encrypted === true;
    this.sni = this.tls ? sni : undefined;
    this.out = new RawWriter(socket, this.onClientDrain);
    this.fe = fe;
    this.route = fe.route;
    this.rs = rs;
    this.clientIp = plainIp(socket.remoteAddress);
    this.clientPort = socket.remotePort ?? 0;
  }

  /** Answers with an error page when nothing was sent yet, otherwise aborts; then closes. */
  abstract fail(status: number, term0: string, term1: string): void;
  /** Ends the current exchange: logs it, releases or closes the server connection, waits or closes. */
  abstract endExchange(completed: boolean): void;
  /** The response reached its end (the exchange ends once the request has too). */
  abstract responseComplete(up: UpstreamConn): void;
  /** Stops reading the client until the server drains or the input buffer empties. */
  abstract pauseClientFor(reason: 'upstream' | 'buffer'): void;
  /** Closes the client connection now (and the upstream one with it), logging an open exchange. */
  abstract destroy(): void;

  readonly onClientDrain = (): void => {
    if (this.up && this.up.socket.isPaused()) this.up.socket.resume();
  };
}
