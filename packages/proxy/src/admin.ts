/**
 * Admin HTTP listener (default 127.0.0.1 only).
 *
 *   GET /healthz          200 while the process serves (never needs a token: liveness probes)
 *   GET /ready            200 once the node is ready to take traffic, 503 before (no token either)
 *   GET /metrics          Prometheus text
 *   GET / , /dashboard    the live dashboard page (static HTML; its data comes from the JSON API)
 *   /api/...              JSON API routes given by the caller, with methods and `:param` segments
 *   GET <route>           legacy read-only JSON routes (`/tables`, `/peers`)
 *
 * Access: on a loopback address reads are open and writes need the token when one is configured.
 * On any other address every call except /healthz, /ready and the dashboard page needs
 * `Authorization: Bearer TOKEN`, and without a configured token those calls are refused (403): the
 * API is never exposed to the network unauthenticated.
 *
 * Bounds: URL 4096 bytes, request body 64 KiB (JSON only, writes only), 50 headers, 10 s per request.
 * Cross-origin reads are allowed only from another loopback origin (the dashboard of a local
 * cluster showing its sibling nodes), or with a token.
 */
import http from 'node:http';
import net from 'node:net';
import { createHash, timingSafeEqual } from 'node:crypto';
import { plainIp } from './runtime/address.js';

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
  /** Read-only JSON endpoints by path (e.g. `/tables`, `/peers`), computed on request. */
  routes?: Record<string, () => unknown>;
  /** JSON API routes (methods other than GET are writes). */
  api?: AdminRoute[];
  /** Prometheus exposition for `/metrics`. */
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** HTML served at `/` and `/dashboard`. */
  dashboard?: string;
  /** Called with the server from its 'listening' callback, before the event loop can accept on it. */
  onListening?: (server: net.Server) => void;
}

interface CompiledRoute {
  route: AdminRoute;
  parts: string[];
}

/** True for 127.0.0.0/8, ::1 and ::ffff:127.x: addresses only this host can reach. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  const v4 = plainIp(host);
  return net.isIPv4(v4) && v4.startsWith('127.');
}

const LOOPBACK_ORIGIN = /^http:\/\/(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\]):\d{1,5}$/;

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export class AdminServer {
  private readonly server: http.Server;
  private readonly opts: AdminOptions;
  private readonly compiled: CompiledRoute[];
  private readonly loopback: boolean;
  private readonly tokenDigest: Buffer | undefined;

  constructor(opts: AdminOptions) {
    this.opts = opts;
    this.loopback = isLoopback(opts.host);
    this.tokenDigest = opts.token ? digest(opts.token) : undefined;
    this.compiled = (opts.api ?? []).map((route) => ({ route, parts: route.path.split('/') }));
    this.server = http.createServer(this.onRequest);
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

  /** Undefined when allowed, else [status, message]. */
  private denied(req: http.IncomingMessage, write: boolean): [number, string] | undefined {
    if (this.hasToken(req)) return undefined;
    if (!this.loopback) {
      return this.tokenDigest
        ? [401, 'admin token required (Authorization: Bearer TOKEN)']
        : [403, 'the admin API is bound to a non-loopback address without admin-token: set admin-token to use it'];
    }
    if (write && this.tokenDigest) return [401, 'admin token required for write calls (Authorization: Bearer TOKEN)'];
    return undefined;
  }

  private cors(req: http.IncomingMessage, res: http.ServerResponse): void {
    const origin = req.headers.origin;
    if (typeof origin === 'string' && (LOOPBACK_ORIGIN.test(origin) || this.tokenDigest)) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'origin');
    }
  }

  private readonly onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = req.url ?? '/';
    if (url.length > MAX_ADMIN_URL_BYTES) return json(res, 414, { error: 'URL too long' });
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    this.cors(req, res);
    if (method === 'OPTIONS') {
      res.writeHead(204, { 'access-control-allow-methods': 'GET, POST, PUT, DELETE', 'access-control-allow-headers': 'authorization, content-type', 'access-control-max-age': '600' }).end();
      return;
    }
    if (path === '/healthz') {
      if (method !== 'GET') return text(res, 405, 'method not allowed\n');
      return text(res, 200, 'ok\n');
    }
    if (path === '/ready') {
      if (method !== 'GET') return text(res, 405, 'method not allowed\n');
      const r = this.opts.readiness();
      return json(res, r.ready ? 200 : 503, r);
    }
    if ((path === '/' || path === '/dashboard') && this.opts.dashboard !== undefined) {
      if (method !== 'GET') return text(res, 405, 'method not allowed\n');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'self' http: https:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:", 'x-frame-options': 'DENY' }).end(this.opts.dashboard);
      return;
    }
    if (path === '/metrics' && this.opts.metrics) {
      if (method !== 'GET') return text(res, 405, 'method not allowed\n');
      const d = this.denied(req, false);
      if (d) return json(res, d[0], { error: d[1] });
      this.opts.metrics().then(
        (m) => res.writeHead(200, { 'content-type': m.contentType }).end(m.body),
        (err: Error) => json(res, 500, { error: err.message }),
      );
      return;
    }
    let pathMatched = false;
    for (const c of this.compiled) {
      const params = matchPath(c.parts, path);
      if (!params) continue;
      pathMatched = true;
      if (c.route.method !== method) continue;
      const write = method !== 'GET';
      const d = this.denied(req, write);
      if (d) return json(res, d[0], { error: d[1] });
      if (!write) return this.run(res, c.route, { method, path, params, query, body: undefined });
      this.readBody(req, res, (body) => this.run(res, c.route, { method, path, params, query, body }));
      return;
    }
    if (pathMatched) return json(res, 405, { error: `method ${method} not allowed on ${path}` });
    const route = this.opts.routes?.[path];
    if (route) {
      if (method !== 'GET') return text(res, 405, 'method not allowed\n');
      const d = this.denied(req, false);
      if (d) return json(res, d[0], { error: d[1] });
      try {
        return json(res, 200, route());
      } catch (err) {
        return text(res, 500, `${(err as Error).message}\n`);
      }
    }
    text(res, 404, 'not found\n');
  };

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
    return typeof a === 'object' && a ? { host: a.address, port: a.port } : { host: this.opts.host, port: this.opts.port };
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

function sendError(res: http.ServerResponse, err: unknown): void {
  if (err instanceof AdminError) json(res, err.status, { error: err.message });
  else json(res, 500, { error: (err as Error).message });
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
