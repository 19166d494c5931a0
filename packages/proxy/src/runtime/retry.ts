/**
 * What happens when a connection to the chosen server fails (refused, reset, `timeout connect`),
 * one policy for HTTP and TCP, HAProxy's `retries` and `option redispatch`:
 *
 * - every failure counts one retry; past `retries` the client gets an error (HTTP 503, TCP `SC`);
 * - otherwise the same server is tried again, except with `option redispatch` on the last retry,
 *   or at once when the server is no longer usable (its check or an operator took it out): then
 *   the balancer picks another server (not the stick rules or the cookie: they named the failed
 *   one); when it has no other, the same server is tried again;
 * - a redispatched client that came with a valid cookie is logged with flag D and gets a new
 *   cookie for its new server (it was not served by its cookie any more).
 */
import type { CookieState } from '@stickmesh/core';
import type { RuntimeBackend } from './backend.js';
import type { RuntimeServer } from './server.js';
import type { DecisionOut, RouteSource } from './decide.js';

/** The retry bookkeeping of a request (HTTP) or connection (TCP). */
export interface RetryState extends DecisionOut {
  retries: number;
  redispatched: boolean;
}

/**
 * Records the failed connect to `failed` and returns the server to connect to next, or undefined
 * when the retries are spent. On a switch to another server sets `out.redispatched` and
 * `out.decidedBy = 'redispatch'`, and takes the request off its cookie (`cookie`, when given).
 */
export function afterConnectFailure(
  backend: RuntimeBackend,
  failed: RuntimeServer,
  src: RouteSource,
  out: RetryState,
  cookie?: CookieState,
): RuntimeServer | undefined {
  failed.connectFailures++;
  const retries = backend.cfg.retries;
  if (++out.retries > retries) return undefined;
  if (backend.cfg.redispatch && (out.retries === retries || !failed.usable)) {
    const alt = backend.pick(backend.hashesSource ? src.sourceHash() : 0, failed);
    if (alt !== undefined && alt !== failed) {
      out.redispatched = true;
      out.decidedBy = 'redispatch';
      if (cookie !== undefined && cookie.direct) {
        cookie.direct = false;
        cookie.reqFlag = 'D';
      }
      return alt;
    }
  }
  return failed;
}
