/**
 * The routing decision, one copy for HTTP, TCP and explain:
 *
 *   cookie -> stick -> stick-first -> balance
 *
 * 1. cookie: the request's persistence cookie, already examined into a `CookieState` by
 *    core/persistence/cookie.ts (prefix, signature, `|date` suffix: flags N, E, O, I), is looked
 *    up: a usable server (up, not in maint; `drain` still serves its clients) decides (flag V);
 *    a server that is not usable earns D and the next rule decides; no server earns I.
 * 2. stick: the `match` rules run in config order (also after a cookie decided: they collect the
 *    store-request keys); the first entry naming a usable server decides (runtime/stick.ts).
 * 3. stick-first: a match key without a usable entry is placed by rendezvous hashing over the
 *    candidates, the same server on every node.
 * 4. balance: the backend's balancer.
 *
 * Connection failures afterwards are runtime/retry.ts's. Nothing here allocates unless a trace is
 * asked for; the per-connection `CookieState` and `StickState` carry the outcome.
 */
import type { CookieState } from '@stickmesh/core';
import type { RuntimeBackend } from './backend.js';
import type { RuntimeServer } from './server.js';
import { stickMatch, type StickKeySource, type StickState } from './stick.js';
import type { DecideStep } from './decide-trace.js';

export type { DecideStep } from './decide-trace.js';

/** Which rule chose the server (logged as `decided_by`). */
export type DecidedBy = '' | 'cookie' | 'stick' | 'stick-first' | 'balance' | 'redispatch';

/** What a decision reads about the client: its stick keys and the hash `balance source` uses. */
export interface RouteSource extends StickKeySource {
  /** Hash of the client address for `balance source` (connections cache it). */
  sourceHash(): number;
}

/** Where a decision writes which rule decided: the request context (HTTP) or the connection (TCP). */
export interface DecisionOut {
  decidedBy: DecidedBy;
}

/**
 * Chooses the server for a request (HTTP) or connection (TCP) of `backend`.
 *
 * `cookie`: the request's examined cookie state, or undefined without cookie persistence (TCP).
 * `st` is filled by the stick match (store-request keys included) and `out.decidedBy` set.
 * Returns undefined only when no server can take the client (the caller answers 503 / `SC`).
 *
 * With `trace`, every step is appended to it and the decision becomes a prediction that changes
 * nothing: the balance step picks only with `balance source` (a pure function of the client);
 * otherwise it returns undefined and records the candidates. Without `trace`, nothing is
 * allocated.
 */
export function decide(
  backend: RuntimeBackend,
  src: RouteSource,
  cookie: CookieState | undefined,
  st: StickState,
  out: DecisionOut,
  trace?: DecideStep[],
): RuntimeServer | undefined {
  let server: RuntimeServer | undefined;
  const persistence = backend.cookie;
  if (persistence !== undefined && cookie !== undefined) {
    let named: RuntimeServer | undefined;
    if (cookie.value.length > 0) {
      named = backend.serverByCookie(cookie.value);
      if (persistence.resolve(cookie, named !== undefined, named !== undefined && named.usable)) {
        server = named;
        out.decidedBy = 'cookie';
      }
    }
    if (trace !== undefined) trace.push({ kind: 'cookie', value: cookie.value, flag: cookie.reqFlag, server: named });
  }
  const stick = backend.stick;
  // Match rules run even after a cookie decided: store-request keys are collected here.
  if (stick !== undefined) stickMatch(stick, src, st, trace);
  else if (st.result !== '') st.reset();
  if (server !== undefined) return server;
  if (stick !== undefined && st.decides) {
    server = backend.stickChoice(st);
    out.decidedBy = st.decidedBy;
    if (trace !== undefined && st.server === undefined) trace.push({ kind: 'stick-first', key: st.firstKey!, server });
    return server;
  }
  out.decidedBy = 'balance';
  if (trace !== undefined) {
    const predicted = backend.hashesSource;
    server = predicted ? backend.pick(src.sourceHash()) : undefined;
    trace.push({ kind: 'balance', candidates: backend.candidates, server, predicted });
    return server;
  }
  return backend.pick(backend.hashesSource ? src.sourceHash() : 0);
}
