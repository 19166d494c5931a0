/**
 * Active health checks (HAProxy `check`): periodic TCP connects, optionally followed by an HTTP
 * request whose status line decides the outcome. All timing runs on a shared TimerWheel, so a
 * checked server costs two reusable wheel tasks and at most one socket, never a `setTimeout`.
 *
 * Over TLS (`check-ssl`, or `ssl` without a check port) the TCP connect is followed by the TLS
 * handshake with the server's verification settings: a check without HTTP then passes as
 * HAProxy's Layer6 check does (L6OK), a failed handshake or certificate check fails it (L6RSP,
 * with the reason), and an HTTP check runs inside the TLS connection.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { HttpCheckConfig, TimerWheel, WheelTask } from '@stickmesh/core';
import type { ServerTls } from '../tls/server-tls.js';

/** HAProxy check status codes (the `check_status` column of `show stat`). */
export type CheckStatus = 'L4OK' | 'L4CON' | 'L4TOUT' | 'SOCKERR' | 'L6OK' | 'L6RSP' | 'L6TOUT' | 'L7OK' | 'L7STS' | 'L7RSP' | 'L7TOUT';

export interface CheckOptions {
  /** `backend/server`, for the caller's logs only. */
  name: string;
  /** Address to connect to (already resolved by the caller). */
  host: string;
  port: number;
  /** Delay between checks while fully UP. */
  inter: number;
  /** Delay while in transition (UP with recent failures, or DOWN with recent successes); 0 = `inter`. */
  fastinter: number;
  /** Delay while fully DOWN; 0 = `inter`. */
  downinter: number;
  /** Consecutive successes that bring a DOWN server UP. */
  rise: number;
  /** Consecutive failures that bring a fully UP server DOWN. */
  fall: number;
  /** Deadline for the whole check (connect + HTTP status line); <= 0 means `inter`. */
  timeoutMs: number;
  /** Deadline for the connect, capped by `timeoutMs`; <= 0 means no separate limit. */
  connectTimeoutMs: number;
  /**
   * Upper bound of the random delay before the first check, capped by `inter`; default 1 s. A
   * caller adding thousands of checks together passes more, so that they do not all open their
   * sockets in the same second.
   */
  firstSpreadMs?: number;
  /** HTTP check (`option httpchk`); undefined = plain TCP connect check. */
  http: HttpCheckConfig | undefined;
  /** Check over TLS with these settings (check SNI, ALPN and verification); undefined = plain TCP. */
  tls?: ServerTls;
  /** Called on every UP/DOWN transition with the status of the check that caused it (e.g. `L4CON ECONNREFUSED`). */
  onChange: (up: boolean, reason: string) => void;
}

/** A registered check. Fields reflect the latest completed check; they are updated by the checker only. */
export interface CheckHandle {
  readonly name: string;
  /** Current state as decided by rise/fall; true until `fall` failures have been seen. */
  readonly up: boolean;
  /** Status code of the last completed check, '' before the first one. */
  readonly lastStatus: CheckStatus | '';
  /** Status code plus detail of the last completed check (what `onChange` receives as reason). */
  readonly lastReason: string;
  /** Wall time the last completed check took, in ms. */
  readonly lastDurationMs: number;
  /** Completed checks (passed or failed), like HAProxy counts them for `show stat`. */
  readonly checks: number;
  /** Failed checks (HAProxy's `chkfail`). */
  readonly failedChecks: number;
  /** Stops checking: cancels the pending timers and abandons an in-flight check without reporting it. */
  remove(): void;
}

/** Longest status line accepted; anything longer is a protocol error (L7RSP). */
const MAX_STATUS_LINE = 16 * 1024;
/** Upper bound for the random delay before a server's first check (HAProxy spreads checks over `inter`). */
const MAX_FIRST_SPREAD_MS = 1000;

const STATUS_LINE = /^HTTP\/\d+(?:\.\d+)? (\d{3})(?:[ \t].*)?$/;

/** A compiled `http-check expect`: tells whether a status code passes. */
type StatusTest = (code: number) => boolean;

/**
 * Compiles an `http-check expect` rule. Undefined passes 2xx and 3xx (HAProxy's default).
 * `status` takes "200", or a list of codes and ranges like "200-299,404"; `rstatus` is a regex
 * tested against the three-digit code. Throws on an invalid regex (the config parser rejects those first).
 */
export function compileExpect(expect: HttpCheckConfig['expect']): StatusTest {
  if (!expect) return (code) => code >= 200 && code < 400;
  let test: StatusTest;
  if (expect.kind === 'rstatus') {
    const re = new RegExp(expect.value);
    // The code as the status line wrote it: three digits, `000` included.
    test = (code) => re.test(String(code).padStart(3, '0'));
  } else {
    const ranges: Array<[number, number]> = [];
    for (const item of expect.value.split(',')) {
      const [lo, hi] = item.trim().split('-');
      const a = Number(lo);
      const b = hi === undefined ? a : Number(hi);
      if (Number.isInteger(a) && Number.isInteger(b)) ranges.push([a, b]);
    }
    test = (code) => ranges.some(([a, b]) => code >= a && code <= b);
  }
  return expect.negate ? (code) => !test(code) : test;
}

class Check implements CheckHandle {
  readonly name: string;
  up = true;
  lastStatus: CheckStatus | '' = '';
  lastReason = '';
  lastDurationMs = 0;
  checks = 0;
  failedChecks = 0;

  readonly opts: CheckOptions;
  readonly passes: StatusTest | undefined;
  readonly request: Buffer | undefined;
  /** HAProxy's health counter in [0, rise+fall-1]: UP while >= rise, DOWN otherwise. */
  health: number;
  removed = false;
  /** The in-flight check's socket; callbacks from any other socket are stale and ignored. */
  sock: net.Socket | undefined;
  /** 'connect' until the TCP connection is up, 'tls' during a TLS handshake, then 'l7' while waiting for the HTTP status line. */
  phase: 'connect' | 'tls' | 'l7' = 'connect';
  started = 0;
  response: Buffer[] = [];
  responseLen = 0;
  readonly nextTask: WheelTask;
  readonly timeoutTask: WheelTask;
  private readonly owner: HealthChecker;

  constructor(owner: HealthChecker, opts: CheckOptions, nextTask: WheelTask, timeoutTask: WheelTask) {
    this.owner = owner;
    this.opts = opts;
    this.name = opts.name;
    this.health = this.full;
    this.passes = opts.http ? compileExpect(opts.http.expect) : undefined;
    if (opts.http) {
      const h = opts.http;
      this.request = Buffer.from(
        `${h.method} ${h.uri} ${h.version}\r\n` + (h.host ? `Host: ${h.host}\r\n` : '') + 'Connection: close\r\n\r\n',
        'latin1',
      );
    }
    this.nextTask = nextTask;
    this.timeoutTask = timeoutTask;
  }

  get full(): number {
    return Math.max(1, this.opts.rise) + Math.max(1, this.opts.fall) - 1;
  }

  remove(): void {
    this.owner.remove(this);
  }
}

/** Runs the checks of any number of servers on one TimerWheel (which the caller starts and stops). */
export class HealthChecker {
  private readonly wheel: TimerWheel;
  private readonly all = new Set<Check>();

  constructor(wheel: TimerWheel) {
    this.wheel = wheel;
  }

  /**
   * Starts checking a server, which is considered UP until `fall` checks fail. The first check runs
   * after a random delay of up to min(inter, firstSpreadMs or 1 s) so that servers added together
   * are not probed in lockstep.
   */
  add(opts: CheckOptions): CheckHandle {
    const nextTask: WheelTask = { run: () => this.start(check) };
    const timeoutTask: WheelTask = { run: () => this.onTimeout(check) };
    const check = new Check(this, opts, nextTask, timeoutTask);
    this.all.add(check);
    const spread = Math.min(Math.max(0, opts.inter), opts.firstSpreadMs ?? MAX_FIRST_SPREAD_MS);
    this.wheel.schedule(nextTask, Math.floor(Math.random() * (spread + 1)));
    return check;
  }

  /** Stops every check; none of them reports afterwards. */
  close(): void {
    for (const c of [...this.all]) this.remove(c);
  }

  /** @internal use `handle.remove()`. Idempotent. */
  remove(c: Check): void {
    if (c.removed) return;
    c.removed = true;
    this.all.delete(c);
    this.wheel.cancel(c.nextTask);
    this.wheel.cancel(c.timeoutTask);
    const sock = c.sock;
    c.sock = undefined;
    sock?.destroy();
  }

  private start(c: Check): void {
    if (c.removed || c.sock) return;
    const o = c.opts;
    const total = o.timeoutMs > 0 ? o.timeoutMs : Math.max(1, o.inter);
    const connectLimit = o.connectTimeoutMs > 0 ? Math.min(o.connectTimeoutMs, total) : total;
    c.phase = 'connect';
    c.started = Date.now();
    c.response = [];
    c.responseLen = 0;
    this.wheel.schedule(c.timeoutTask, connectLimit);

    let sock: net.Socket;
    const t = o.tls;
    try {
      sock = t === undefined
        ? net.connect({ host: o.host, port: o.port, noDelay: true })
        : tls.connect({
          host: o.host,
          port: o.port,
          secureContext: t.context,
          servername: t.checkServername,
          rejectUnauthorized: t.rejectUnauthorized,
          checkServerIdentity: t.checkIdentity,
          ALPNProtocols: t.checkAlpn,
        });
    } catch (err) {
      // Synchronous throws come from invalid arguments (e.g. a bad port): report them as a failed connect.
      this.finish(c, false, 'L4CON', (err as Error).message);
      return;
    }
    c.sock = sock;

    if (t !== undefined) {
      sock.once('connect', () => {
        if (c.sock === sock) c.phase = 'tls';
      });
    }
    sock.once(t === undefined ? 'connect' : 'secureConnect', () => {
      if (c.sock !== sock) return;
      if (!c.request) {
        this.finish(c, true, t === undefined ? 'L4OK' : 'L6OK', '');
        return;
      }
      c.phase = 'l7';
      // One deadline for the whole check: the HTTP phase gets what the connect left of `total`.
      this.wheel.schedule(c.timeoutTask, Math.max(0, total - (Date.now() - c.started)));
      sock.write(c.request);
    });
    sock.on('data', (chunk: Buffer) => {
      if (c.sock !== sock) return;
      this.onData(c, chunk);
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (c.sock !== sock) return;
      const detail = err.code ?? err.message;
      if (c.phase === 'connect') this.finish(c, false, 'L4CON', detail);
      else if (c.phase === 'tls') this.finish(c, false, 'L6RSP', err.code !== undefined && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message);
      else this.finish(c, false, 'SOCKERR', detail);
    });
    sock.on('close', () => {
      if (c.sock !== sock) return;
      if (c.phase === 'connect') this.finish(c, false, 'L4CON', 'connection closed');
      else if (c.phase === 'tls') this.finish(c, false, 'L6RSP', 'connection closed during the TLS handshake');
      else this.finish(c, false, 'L7RSP', 'connection closed before the status line');
    });
  }

  /**
   * Collects the response until the status line is complete, then judges it. Only the new chunk
   * is searched for the LF (earlier ones had none) and chunks are joined once, when it arrives, so
   * a server dribbling bytes costs linear time; at most MAX_STATUS_LINE bytes plus one read are
   * held before the check fails with L7RSP.
   */
  private onData(c: Check, chunk: Buffer): void {
    const lf = chunk.indexOf(0x0a);
    const before = c.responseLen;
    c.responseLen += chunk.length;
    if (lf < 0) {
      if (c.responseLen > MAX_STATUS_LINE) this.finish(c, false, 'L7RSP', 'status line too long');
      else c.response.push(chunk);
      return;
    }
    const eol = before + lf;
    if (eol > MAX_STATUS_LINE) {
      this.finish(c, false, 'L7RSP', 'status line too long');
      return;
    }
    c.response.push(chunk);
    const buf = c.response.length === 1 ? chunk : Buffer.concat(c.response, c.responseLen);
    const line = buf.toString('latin1', 0, eol).replace(/\r$/, '');
    const m = STATUS_LINE.exec(line);
    if (!m) {
      this.finish(c, false, 'L7RSP', 'invalid status line');
      return;
    }
    const code = Number(m[1]);
    if (c.passes!(code)) this.finish(c, true, 'L7OK', String(code));
    else this.finish(c, false, 'L7STS', String(code));
  }

  private onTimeout(c: Check): void {
    if (c.removed || !c.sock) return;
    this.finish(c, false, c.phase === 'connect' ? 'L4TOUT' : c.phase === 'tls' ? 'L6TOUT' : 'L7TOUT', '');
  }

  /**
   * Ends the in-flight check: releases its socket and deadline, applies the rise/fall rules,
   * schedules the next check, and reports a transition last so a throwing callback cannot stop checking.
   */
  private finish(c: Check, ok: boolean, status: CheckStatus, detail: string): void {
    const sock = c.sock;
    c.sock = undefined;
    sock?.destroy();
    this.wheel.cancel(c.timeoutTask);
    c.response = [];
    c.responseLen = 0;
    if (c.removed) return;

    const reason = detail ? `${status} ${detail}` : status;
    c.lastStatus = status;
    c.lastReason = reason;
    c.lastDurationMs = Date.now() - c.started;
    c.checks++;
    if (!ok) c.failedChecks++;

    const rise = Math.max(1, c.opts.rise);
    const full = c.full;
    let changed = false;
    if (ok) {
      if (c.up) c.health = Math.min(full, c.health + 1);
      else if (++c.health >= rise) {
        c.health = full;
        c.up = true;
        changed = true;
      }
    } else if (c.up) {
      if (--c.health < rise) {
        c.health = 0;
        c.up = false;
        changed = true;
      }
    } else {
      c.health = 0;
    }

    this.wheel.schedule(c.nextTask, this.interval(c));
    if (changed) c.opts.onChange(c.up, reason);
  }

  /** HAProxy's srv_getinter: `inter` when fully UP, `downinter` when fully DOWN, `fastinter` in between. */
  private interval(c: Check): number {
    const o = c.opts;
    const inter = Math.max(1, o.inter);
    if (c.up && c.health === c.full) return inter;
    if (!c.up && c.health === 0) return o.downinter > 0 ? o.downinter : inter;
    return o.fastinter > 0 ? o.fastinter : inter;
  }
}
