/**
 * The steps of one routing decision, as `decide()` records them when asked for a trace (explain
 * asks; the data plane never does, so recording costs the hot path one untaken branch per step).
 * Kept apart from decide.ts so stick.ts can record its steps without importing the decision.
 */
import type { RequestCookieFlag, StickTable } from '@stickmesh/core';
import type { RuntimeServer } from './server.js';

/** Cookie persistence: the server part of the client's cookie, the flag it earned, the server it names. */
export interface CookieStep {
  readonly kind: 'cookie';
  /** Server part after prefix, signature and dates were taken off; '' when none was usable. */
  readonly value: string;
  readonly flag: RequestCookieFlag;
  readonly server: RuntimeServer | undefined;
}

/** One stick `match` rule: its key, what its table holds, and the server that names. */
export interface StickStep {
  readonly kind: 'stick';
  readonly table: StickTable;
  /** Undefined when the request does not carry the rule's key. */
  readonly key: string | undefined;
  /** The server name or address the table holds for the key; undefined: no live entry. */
  readonly stored: string | undefined;
  /** The backend's server `stored` names, if it has one. */
  readonly server: RuntimeServer | undefined;
}

/** No stick entry decided: the agreed first pick (rendezvous hash of the first match key). */
export interface StickFirstStep {
  readonly kind: 'stick-first';
  readonly key: string;
  readonly server: RuntimeServer | undefined;
}

/**
 * The balancer. A traced decision is a prediction and changes nothing, so `server` is set only when
 * the balancer is a pure function of the client (`balance source`); otherwise the candidates are
 * what the balancer will choose among.
 */
export interface BalanceStep {
  readonly kind: 'balance';
  readonly candidates: readonly RuntimeServer[];
  readonly server: RuntimeServer | undefined;
  readonly predicted: boolean;
}

export type DecideStep = CookieStep | StickStep | StickFirstStep | BalanceStep;
