/**
 * Client side of a node's admin JSON API (the server side is admin/api.ts), used by every CLI
 * command that talks to a running node. One request at a time, JSON in and out, a bearer token when
 * one is given, 10 s per request. Every failure (unreachable, timeout, non-JSON answer, HTTP error)
 * is an AdminCallError whose message names the URL and, for an API error, the node's own message.
 */
import { StickmeshError } from '@stickmesh/core';

/** Per request: a node that does not answer within this is reported unreachable. */
export const ADMIN_CALL_TIMEOUT_MS = 10_000;
/** Default admin URL when neither --admin nor $STICKMESH_ADMIN is given. */
export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9100';

/** A call that did not get a 2xx JSON answer; code SM_ADMIN_CALL. */
export class AdminCallError extends StickmeshError {
  constructor(message: string) {
    super('SM_ADMIN_CALL', message);
  }
}

export interface AdminTarget {
  /** --admin URL; defaults to $STICKMESH_ADMIN, then DEFAULT_ADMIN_URL. */
  admin?: string | undefined;
  /** --token; defaults to $STICKMESH_ADMIN_TOKEN. */
  token?: string | undefined;
}

export class AdminClient {
  /** The node's admin URL without a trailing slash. */
  readonly base: string;
  private readonly token: string | undefined;

  constructor(target: AdminTarget, env: NodeJS.ProcessEnv = process.env) {
    this.base = (target.admin ?? env.STICKMESH_ADMIN ?? DEFAULT_ADMIN_URL).replace(/\/+$/, '');
    this.token = target.token ?? env.STICKMESH_ADMIN_TOKEN;
  }

  /** Sends one request (body as JSON when given) and returns the parsed JSON answer of a 2xx. */
  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    let r: Response;
    try {
      r = await fetch(this.base + path, {
        method,
        headers: { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(ADMIN_CALL_TIMEOUT_MS),
      });
    } catch (err) {
      const cause = (err as Error).cause;
      throw new AdminCallError(`cannot reach ${this.base}: ${cause instanceof Error ? cause.message : (err as Error).message}`);
    }
    const text = await r.text();
    let j: unknown;
    try {
      j = JSON.parse(text);
    } catch {
      throw new AdminCallError(`${this.base}${path}: HTTP ${r.status}: ${text.slice(0, 200)}`);
    }
    if (!r.ok) throw new AdminCallError(`${this.base}${path}: ${(j as { error?: string } | null)?.error ?? `HTTP ${r.status}`}`);
    return j;
  }
}
