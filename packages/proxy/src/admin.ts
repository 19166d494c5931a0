/**
 * Admin HTTP listener (default 127.0.0.1 only).
 *
 *   GET /healthz          200 while the process serves (never needs a token: liveness probes)
 *   GET /ready            200 once the node is ready to take traffic, 503 before (no token either)
 *   GET /metrics          Prometheus text
 *   GET / , /dashboard    the live dashboard page, with /dashboard.js and /dashboard.css (static;
 *                         its data comes from the JSON API); /favicon.ico answers 204 (a browser
 *                         asks for it, and a 404 would leave an error line in its console)
 *   GET /api/dashboard    the sibling nodes the dashboard may poll
 *   /api/...              JSON API routes given by the caller, with methods and `:param` segments
 *   GET <route>           short read-only JSON routes given by the caller (the node serves `/tables`,
 *                         an alias of `/api/tables`, and `/peers`)
 *
 * Access, in this order (a request with a valid `Authorization: Bearer TOKEN` skips 1 and 2):
 *   1. Host (every path but /healthz and /ready): the Host header must name this listener (see
 *      admin-access.ts), else 421: a DNS-rebinding page never reaches the API.
 *   2. Origin: a browser call from another origin (an `Origin` header, or `Sec-Fetch-Site:
 *      cross-site|same-site`) is refused (403) unless the origin is a peer's admin listener or in
 *      `admin-allow-origin`; only those get CORS headers, on preflight too.
 *   3. Token: on a loopback address reads are open and writes need the token when one is
 *      configured. On any other address every API call needs the token, and without a configured
 *      token those calls are refused (403): the API is never exposed to the network unauthenticated.
 *
 * Bounds: URL 4096 bytes, request body 64 KiB (JSON only, writes only), 50 headers, 10 s per request.
 */
import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { createHash, timingSafeEqual } from 'node:crypto';
import { HostCheck, NO_ORIGINS, classifyOrigin, isLoopback, type AdminOrigins, type OriginVerdict } from './admin-access.js';
import type { DashboardAssets } from './dashboard.js';

export const MAX_ADMIN_BODY_BYTES = 65536;
export const MAX_ADMIN_URL_BYTES = 4096;

export type AdminMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface AdminRequest {
  method: AdminMethod;
  path: string;
  /** Decoded `:name` path segments. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** Parsed JSON body (writes only), or undefined. */
  body: unknown;
}

export interface AdminRoute {
  method: AdminMethod;
  /** Path with `:name` segments, e.g. `/api/tables/:table/entries/:key`. */
  path: string;
  /** Returns the JSON answer (status 200), or throws AdminError. */
  handler: (req: AdminRequest) => unknown;
}

/** A failed admin call with its HTTP status; the message is sent as `{ "error": message }`. */
export class AdminError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface AdminOptions {
  host: string;
  port: number;
  /** Bearer token; see the access rules above. */
  token?: string;
  /** Returns [ready, reason]. */
  readiness: () => { ready: boolean; reason: string };
  /** Read-only JSON endpoints by exact path (e.g. `/tables`, `/peers`), computed on request. */
  routes?: Record<string, () => unknown>;
  /** JSON API routes (methods other than GET are writes). */
  api?: AdminRoute[];
  /** Prometheus exposition for `/metrics`. */
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** The dashboard page and its script and style. */
  dashboard?: DashboardAssets;
  /**
   * Trusted origins besides the listener's own, asked on every request: return the same object
   * until they change (the derived Host check, origin set and CSP are rebuilt on a new object).
   */
  origins?: () => AdminOrigins;
  /** Called with the server from its 'listening' callback, before the event loop can accept on it. */
  onListening?: (server: net.Server) => void;
}

interface CompiledRoute {
  route: AdminRoute;
  parts: string[];
}

/** What is derived from one AdminOrigins object. */
interface Access {
  of: AdminOrigins;
  host: HostCheck;
  trusted: Set<string>;
  csp: string;
}

const METHODS = 'GET, HEAD, POST, PUT, DELETE, OPTIONS';
/** Longest client-given text (Host, Origin) quoted back in an error message. */
const QUOTE_MAX = 100;

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function quote(v: string): string {
  return v.length > QUOTE_MAX ? `${v.slice(0, QUOTE_MAX)}...` : v;
}

export class AdminServer {
  private readonly server: http.Server;
  private readonly opts: AdminOptions;
  private readonly compiled: CompiledRoute[];
  private readonly loopback: boolean;
  private readonly tokenDigest: Buffer | undefined;
  private port: number;
  private access: Access | undefined;

  constructor(opts: AdminOptions) {
    this.opts = opts;
    this.port = opts.port;
    this.loopback = isLoopback(opts.host);
    this.tokenDigest = opts.token ? digest(opts.token) : undefined;
    this.compiled = (opts.api ?? []).map((route) => ({ route, parts: route.path.split('/') }));
    this.server = http.createServer(this.onRequest);
    this.server.on('connect', refuseConnect);
    // A client may half-close right after its request (`nc -N`, `sock.end(req)`): the answer still
    // goes out, then the connection closes. Node's default ends the socket at the client's FIN and
    // drops an answer not yet written, which an asynchronous one (the first /metrics scrape loads
    // prom-client) always is.
    (this.server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    this.server.maxHeadersCount = 50;
    this.server.headersTimeout = 5000;
    this.server.requestTimeout = 10000;
  }

  private hasToken(req: http.IncomingMessage): boolean {
    if (!this.tokenDigest) return false;
    const h = req.headers.authorization ?? '';
    if (!h.startsWith('Bearer ') || h.length > 1024) return false;
    return timingSafeEqual(digest(h.slice(7).trim()), this.tokenDigest);
  }

  /** The Host check, trusted origins and dashboard CSP for the current origins. */
  private currentAccess(): Access {
    const of = this.opts.origins?.() ?? NO_ORIGINS;
    if (this.access?.of === of && this.access.host.port === this.port) return this.access;
    const trusted = new Set([...of.peers, ...of.allowed].map((o) => o.toLowerCase()));
    const connect = ["'self'", ...trusted].join(' ');
    const csp = `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src ${connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
    this.access = { of, host: new HostCheck(this.opts.host, this.port, of.allowed), trusted, csp };
    return this.access;
  }

  /** Undefined when the token rules allow the call, else [status, message]. */
  private denied(token: boolean, write: boolean): [number, string] | undefined {
    if (token) return undefined;
    if (!this.loopback) {
      return this.tokenDigest
        ? [401, 'admin token required (Authorization: Bearer TOKEN)']
        : [403, 'the admin API is bound to a non-loopback address without admin-token: set admin-token to use it'];
    }
    if (write && this.tokenDigest) return [401, 'admin token required for write calls (Authorization: Bearer TOKEN)'];
    return undefined;
  }

  private readonly onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    res.setHeader('x-content-type-options', 'nosniff');
    const url = req.url ?? '/';
    if (url.length > MAX_ADMIN_URL_BYTES) return json(res, 414, { error: 'URL too long' });
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    if (path === '/healthz') {
      if (method !== 'GET') return text(res, 405, 'method not allowed\n');
      return text(res, 200, 'ok\n');
    }
    if (path === '/ready') {
      if (method !== 'GET') return text(res, 405, 'method not allowed\n');
      const r = this.opts.readiness();
      return json(res, r.ready ? 200 : 503, r);
    }
    const token = this.hasToken(req);
    const access = this.currentAccess();
    const hostHeader = req.headers.host;
    if (!token && !access.host.accepts(hostHeader)) {
      return json(res, 421, { error: `Host '${quote(hostHeader ?? '')}' does not name this admin listener (use its address or localhost, with port ${this.port}; admin-allow-origin adds a name)` });
    }
    const origin = req.headers.origin;
    const fetchSite = req.headers['sec-fetch-site'];
    const verdict = classifyOrigin(origin, typeof fetchSite === 'string' ? fetchSite : undefined, hostHeader === undefined ? undefined : `http://${hostHeader.toLowerCase()}`, access.trusted);
    if (origin !== undefined) res.setHeader('vary', 'origin');
    if (verdict.allowOrigin !== undefined) res.setHeader('access-control-allow-origin', verdict.allowOrigin);
    if (method === 'OPTIONS') return this.options(req, res, verdict);
    const d = this.opts.dashboard;
    if (d && (path === '/' || path === '/dashboard' || path === '/dashboard.js' || path === '/dashboard.css' || path === '/favicon.ico')) {
      if (method !== 'GET') return text(res, 405, 'method not allowed\n');
      if (path === '/favicon.ico') {
        res.writeHead(204, { 'cache-control': 'max-age=86400' }).end();
        return;
      }
      if (path === '/dashboard.js') return asset(res, 'text/javascript; charset=utf-8', d.script);
      if (path === '/dashboard.css') return asset(res, 'text/css; charset=utf-8', d.style);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': access.csp, 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer' }).end(d.html);
      return;
    }
    if (verdict.foreign && !token) {
      return json(res, 403, { error: `cross-origin request refused: ${origin === undefined ? 'a cross-site page' : `origin '${quote(origin)}'`} is not allowed (admin-allow-origin)` });
    }
    const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
    if (path === '/metrics' && this.opts.metrics) {
      if (method !== 'GET') return text(res, 405, 'method not allowed\n');
      const dn = this.denied(token, false);
      if (dn) return json(res, dn[0], { error: dn[1] });
      this.opts.metrics().then(
        (m) => res.writeHead(200, { 'content-type': m.contentType }).end(m.body),
        (err: Error) => json(res, 500, { error: err.message }),
      );
      return;
    }
    if (path === '/api/dashboard' && d) {
      if (method !== 'GET') return json(res, 405, { error: `method ${method} not allowed on ${path}` });
      const dn = this.denied(token, false);
      if (dn) return json(res, dn[0], { error: dn[1] });
      return json(res, 200, { siblings: access.of.peers, accepted: [...access.of.peers, ...access.of.allowed] });
    }
    let pathMatched = false;
    for (const c of this.compiled) {
      const params = matchPath(c.parts, path);
      if (!params) continue;
      pathMatched = true;
      if (c.route.method !== method) continue;
      const write = method !== 'GET';
      const dn = this.denied(token, write);
      if (dn) return json(res, dn[0], { error: dn[1] });
      if (!write) return this.run(res, c.route, { method, path, params, query, body: undefined });
      this.readBody(req, res, (body) => this.run(res, c.route, { method, path, params, query, body }));
      return;
    }
    if (pathMatched) return json(res, 405, { error: `method ${quote(method)} not allowed on ${quote(path)}` });
    const route = this.opts.routes?.[path];
    if (route && Object.hasOwn(this.opts.routes!, path)) {
      if (method !== 'GET') return text(res, 405, 'method not allowed\n');
      const dn = this.denied(token, false);
      if (dn) return json(res, dn[0], { error: dn[1] });
      try {
        return json(res, 200, route());
      } catch (err) {
        return text(res, 500, `${(err as Error).message}\n`);
      }
    }
    text(res, 404, 'not found\n');
  };

  /**
   * OPTIONS: a CORS preflight (Origin and Access-Control-Request-Method) from a trusted origin gets
   * the methods and headers the API takes; from any other origin 403 without CORS headers, so the
   * browser never sends the call. A plain OPTIONS gets the methods.
   */
  private options(req: http.IncomingMessage, res: http.ServerResponse, v: OriginVerdict): void {
    if (req.headers.origin === undefined || req.headers['access-control-request-method'] === undefined) {
      res.writeHead(204, { allow: METHODS }).end();
      return;
    }
    if (v.allowOrigin === undefined) return json(res, 403, { error: `cross-origin request refused: origin '${quote(req.headers.origin)}' is not allowed (admin-allow-origin)` });
    res.writeHead(204, { 'access-control-allow-methods': 'GET, POST, PUT, DELETE', 'access-control-allow-headers': 'authorization, content-type', 'access-control-max-age': '600' }).end();
  }

  private readBody(req: http.IncomingMessage, res: http.ServerResponse, then: (body: unknown) => void): void {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_ADMIN_BODY_BYTES) {
      json(res, 413, { error: `body larger than ${MAX_ADMIN_BODY_BYTES} bytes` }, true);
      req.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_ADMIN_BODY_BYTES) {
        if (!over) json(res, 413, { error: `body larger than ${MAX_ADMIN_BODY_BYTES} bytes` }, true);
        over = true;
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (over) return;
      const raw = Buffer.concat(chunks).toString('utf8').trim();
      if (raw === '') return then(undefined);
      try {
        then(JSON.parse(raw));
      } catch {
        json(res, 400, { error: 'body is not valid JSON' });
      }
    });
    req.on('error', () => req.destroy());
  }

  private run(res: http.ServerResponse, route: AdminRoute, req: AdminRequest): void {
    let out: unknown;
    try {
      out = route.handler(req);
    } catch (err) {
      return sendError(res, err);
    }
    if (out instanceof Promise) {
      out.then(
        (v) => json(res, 200, v),
        (err) => sendError(res, err),
      );
      return;
    }
    json(res, 200, out);
  }

  async listen(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.opts.host, port: this.opts.port }, () => {
        this.opts.onListening?.(this.server);
        resolve();
      });
    });
    const a = this.server.address();
    const bound = typeof a === 'object' && a ? { host: a.address, port: a.port } : { host: this.opts.host, port: this.opts.port };
    this.port = bound.port;
    return bound;
  }

  close(): void {
    this.server.close();
    this.server.closeAllConnections();
  }
}

/** `:name` segment matching; undefined when `path` does not fit. Segments are URI-decoded. */
function matchPath(parts: string[], path: string): Record<string, string> | undefined {
  const got = path.split('/');
  if (got.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    const g = got[i]!;
    if (p.startsWith(':')) {
      if (g === '') return undefined;
      try {
        params[p.slice(1)] = decodeURIComponent(g);
      } catch {
        return undefined;
      }
    } else if (p !== g) return undefined;
  }
  return params;
}

const CONNECT_REFUSED = 'HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\nContent-Length: 19\r\nConnection: close\r\n\r\nmethod not allowed\n';

/** CONNECT is no admin method: answered 405 and closed (without a listener Node drops the socket unanswered). */
function refuseConnect(_req: http.IncomingMessage, socket: Duplex): void {
  socket.on('error', () => socket.destroy());
  socket.end(CONNECT_REFUSED);
}

function sendError(res: http.ServerResponse, err: unknown): void {
  if (err instanceof AdminError) json(res, err.status, { error: err.message });
  else json(res, 500, { error: (err as Error).message });
}

function asset(res: http.ServerResponse, type: string, body: string): void {
  res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' }).end(body);
}

function text(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
}

function json(res: http.ServerResponse, status: number, v: unknown, close = false): void {
  if (res.headersSent) return;
  let body: string;
  try {
    body = JSON.stringify(v) + '\n';
  } catch (err) {
    status = 500;
    body = JSON.stringify({ error: (err as Error).message }) + '\n';
  }
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...(close ? { connection: 'close' } : {}) }).end(body);
}
