/**
 * Client side of a node's admin JSON API (the server side is admin/api.ts), used by every CLI
 * command that talks to a running node. One request at a time, JSON in and out, a bearer token when
 * one is given. It knows a list of nodes (admin/targets.ts) and asks them in order: a node that
 * refuses the connection, does not accept it within ADMIN_CONNECT_TIMEOUT_MS or fails before
 * answering is passed over for the next, and the first that answers is kept for the following
 * calls. An answer, even an HTTP error, is final. Every failure is an AdminCallError whose message
 * names the URL and, for an API error, the node's own message.
 */
import http from 'node:http';
import https from 'node:https';
import { StickmeshError } from '@stickmesh/core';

/** Per request: a node that does not answer within this is reported unreachable. */
export const ADMIN_CALL_TIMEOUT_MS = 10_000;
/** A node that has not accepted the TCP connection within this is passed over. */
export const ADMIN_CONNECT_TIMEOUT_MS = 1_000;
/** An answer larger than this is refused (a page of 10,000 entries is a few MB). */
export const MAX_ADMIN_ANSWER_BYTES = 256 * 1024 * 1024;
/** Default admin URL when neither --admin nor $STICKMESH_ADMIN is given. */
export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9100';

/** A call that did not get a 2xx JSON answer; code SM_ADMIN_CALL. */
export class AdminCallError extends StickmeshError {
  constructor(message: string) {
    super('SM_ADMIN_CALL', message);
  }
}

/** One node's admin listener: its URL, and its node name(s) when known. */
export interface AdminNode {
  url: string;
  node?: string;
}

export interface AdminTarget {
  /** --admin URL; defaults to $STICKMESH_ADMIN, then DEFAULT_ADMIN_URL. Ignored when `nodes` is given. */
  admin?: string | undefined;
  /** --token; defaults to $STICKMESH_ADMIN_TOKEN. */
  token?: string | undefined;
  /** The nodes to ask in order (admin/targets.ts planAdmin). */
  nodes?: AdminNode[] | undefined;
  /** Nodes not asked but named when every node in `nodes` is unreachable. */
  others?: (() => AdminNode[]) | undefined;
  /** The config file `nodes` came from, named when its nodes cannot be reached. */
  configFile?: string | undefined;
  /** What the user can do about `others`, ending the error naming them (default: `pass --config FILE to try them in turn`). */
  othersHow?: string | undefined;
  /** Told one line when a node other than the first answers (the CLI writes it to stderr). */
  onFailover?: ((line: string) => void) | undefined;
}

/** `http://127.0.0.2:9100 (node2)`. */
export function nodeLabel(n: AdminNode): string {
  return n.node ? `${n.url} (${n.node})` : n.url;
}

/** A failure before any answer: the node may be down, so the next one is tried. */
class Unreachable extends Error {}

export class AdminClient {
  private readonly nodes: AdminNode[];
  private readonly token: string | undefined;
  private readonly others: () => AdminNode[];
  private readonly onFailover: ((line: string) => void) | undefined;
  private readonly othersHow: string;
  private readonly configFile: string | undefined;
  /** Index in `nodes` of the node asked first (the last that answered). */
  private current = 0;

  constructor(target: AdminTarget, env: NodeJS.ProcessEnv = process.env) {
    const nodes = target.nodes && target.nodes.length > 0 ? target.nodes : [{ url: target.admin ?? env.STICKMESH_ADMIN ?? DEFAULT_ADMIN_URL }];
    this.nodes = nodes.map((n) => ({ ...n, url: n.url.replace(/\/+$/, '') }));
    this.token = target.token ?? env.STICKMESH_ADMIN_TOKEN;
    this.others = target.others ?? (() => []);
    this.onFailover = target.onFailover;
    this.othersHow = target.othersHow ?? 'pass --config FILE to try them in turn';
    this.configFile = target.configFile;
  }

  /** The admin URL in use (the node that last answered, else the first), without a trailing slash. */
  get base(): string {
    return this.nodes[this.current]!.url;
  }

  /** The node in use (see base). */
  get node(): AdminNode {
    return this.nodes[this.current]!;
  }

  /** Sends one request (body as JSON when given) and returns the parsed JSON answer of a 2xx. */
  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const failed: Array<{ n: AdminNode; why: string }> = [];
    for (let k = 0; k < this.nodes.length; k++) {
      const i = (this.current + k) % this.nodes.length;
      const n = this.nodes[i]!;
      let answer: { status: number; text: string };
      try {
        answer = await this.send(n.url, method, path, body);
      } catch (err) {
        if (!(err instanceof Unreachable)) throw err;
        failed.push({ n, why: err.message });
        continue;
      }
      if (i !== this.current || failed.length > 0) {
        this.current = i;
        this.onFailover?.(`${failed.map((f) => `${nodeLabel(f.n)}: ${f.why}`).join('; ')}; answered by ${nodeLabel(n)}`);
      }
      return this.parse(n.url, path, answer);
    }
    throw new AdminCallError(this.unreachableMessage(failed));
  }

  private unreachableMessage(failed: Array<{ n: AdminNode; why: string }>): string {
    if (this.configFile !== undefined) return `cannot reach any node of ${this.configFile}: ${failed.map((f) => `${nodeLabel(f.n)} (${f.why})`).join(', ')}`;
    if (failed.length === 1) {
      const f = failed[0]!;
      const others = this.others();
      const hint = others.length > 0 ? `; other nodes: ${others.map(nodeLabel).join(', ')} — or ${this.othersHow}` : ' — pass --admin URL or --config FILE (the cluster config: its nodes are tried in turn)';
      return `cannot reach ${f.n.url} (${f.why})${hint}`;
    }
    return `cannot reach any node: ${failed.map((f) => `${nodeLabel(f.n)} (${f.why})`).join(', ')}`;
  }

  private parse(base: string, path: string, r: { status: number; text: string }): unknown {
    let j: unknown;
    try {
      j = JSON.parse(r.text);
    } catch {
      throw new AdminCallError(`${base}${path}: HTTP ${r.status}: ${r.text.slice(0, 200)}`);
    }
    if (r.status < 200 || r.status > 299) throw new AdminCallError(`${base}${path}: ${(j as { error?: string } | null)?.error ?? `HTTP ${r.status}`}`);
    return j;
  }

  /**
   * One request to one node. Rejects with Unreachable when no answer came (refused, connect
   * timeout, reset, overall timeout), with AdminCallError for a bad URL or an oversized answer.
   */
  private send(base: string, method: string, path: string, body: unknown): Promise<{ status: number; text: string }> {
    let url: URL;
    try {
      url = new URL(base + path);
    } catch {
      return Promise.reject(new AdminCallError(`'${base}' is not a URL (expected e.g. http://127.0.0.1:9100)`));
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.reject(new AdminCallError(`'${base}': only http:// and https:// admin URLs`));
    const payload = body !== undefined ? Buffer.from(JSON.stringify(body)) : undefined;
    const headers: http.OutgoingHttpHeaders = {
      ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
      ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
    };
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | undefined, v?: { status: number; text: string }): void => {
        if (settled) return;
        settled = true;
        clearTimeout(overall);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(v!);
      };
      const mod = url.protocol === 'https:' ? https : http;
      let answered = false;
      const req = mod.request(url, { method, headers, agent: false }, (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          size += d.length;
          if (size > MAX_ADMIN_ANSWER_BYTES) finish(new AdminCallError(`${base}${path}: answer larger than ${MAX_ADMIN_ANSWER_BYTES} bytes`));
          else chunks.push(d);
        });
        res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (e) => finish(new AdminCallError(`${base}${path}: answer cut: ${e.message}`)));
      });
      const overall = setTimeout(() => finish(new Unreachable(`no answer within ${ADMIN_CALL_TIMEOUT_MS / 1000} s`)), ADMIN_CALL_TIMEOUT_MS);
      req.on('socket', (s) => {
        if (!s.connecting) return;
        const t = setTimeout(() => finish(new Unreachable(`no connection within ${ADMIN_CONNECT_TIMEOUT_MS / 1000} s`)), ADMIN_CONNECT_TIMEOUT_MS);
        s.once('connect', () => clearTimeout(t));
        s.once('close', () => clearTimeout(t));
      });
      req.on('error', (e: NodeJS.ErrnoException) =>
        finish(answered ? new AdminCallError(`${base}${path}: answer cut: ${e.code ?? e.message}`) : new Unreachable(e.code ?? e.message)),
      );
      req.end(payload);
    });
  }
}
