/**
 * Per-request context (pingora style): everything the phases request → pick upstream → forward →
 * response → log share about one exchange. One instance per client connection, reset per request.
 */
import { CookieState } from '@stickmesh/core';
import type { RuntimeServer } from '../runtime/server.js';
import type { DecidedBy } from '../runtime/decide.js';

export class RequestContext {
  /** Wall-clock ms at: request's first byte, head parsed, connect started, connected, response head, end. */
  tStart = 0;
  tHead = 0;
  tConnStart = 0;
  tConnected = 0;
  tResHead = 0;
  status = 0;
  /** Bytes sent to the client (head + body) and received from it (head + body). */
  bytesOut = 0;
  bytesIn = 0;
  server: RuntimeServer | undefined;
  retries = 0;
  redispatched = false;
  /** HAProxy `%tsc` first two characters: termination cause and session state at termination. */
  term0 = '-';
  term1 = '-';
  /** Which rule chose the server (runtime/decide.ts, runtime/retry.ts). */
  decidedBy: DecidedBy = '';
  /** `file:line` of the rule that answered, held or refused the request ('' when none did). */
  rule = '';
  /** Why the last connect to a server failed for this request ('' when none did): logged as `server_error`. */
  connectError = '';
  readonly cookie = new CookieState();
  method = '';
  target = '';
  versionMinor = 1;

  reset(now: number, cookieEnabled: boolean): void {
    this.tStart = now;
    this.tHead = 0;
    this.tConnStart = 0;
    this.tConnected = 0;
    this.tResHead = 0;
    this.status = 0;
    this.bytesOut = 0;
    this.bytesIn = 0;
    this.server = undefined;
    this.retries = 0;
    this.redispatched = false;
    this.term0 = '-';
    this.term1 = '-';
    this.decidedBy = '';
    this.rule = '';
    this.connectError = '';
    this.cookie.reset(cookieEnabled);
    this.method = '';
    this.target = '';
    this.versionMinor = 1;
  }

  /** The 4-character termination state, e.g. `--NI`. */
  terminationState(): string {
    return this.term0 + this.term1 + this.cookie.reqFlag + this.cookie.resFlag;
  }
}
