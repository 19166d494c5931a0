/**
 * Sticky counter tracking (`track-sc0..2`) over a table's `Counters`, with HAProxy's accounting:
 *
 * - tracking starts (any rule set): conn_cur +1, conn_cnt +1, conn_rate +1; conn_cur -1 when the
 *   tracking ends (the HTTP exchange for stream-level tracking: `http-request`, and `tcp-request
 *   content` in HTTP mode; the connection for `tcp-request connection`, and `tcp-request content`
 *   in TCP mode);
 * - a connection accepted with `tcp-request connection` trackers (every connection rule passed):
 *   sess_cnt +1, sess_rate +1 on them;
 * - each HTTP request: http_req_cnt/http_req_rate +1 on the connection's trackers when the request
 *   starts, and on a stream tracker when it starts tracking (so rules after `track-sc0` already
 *   see the request, denied or not);
 * - each exchange's end, on the effective tracker of each index (stream-level, else
 *   connection-level): http_err for a 4xx status or a tarpit, http_fail for a 5xx other than 501
 *   and 505, bytes_in/bytes_out by the exchange's bytes.
 *
 * Columns are looked up once per table (`TrackTable`, at compile time); writes to a column the
 * table does not store are skipped. Every acquired slot is released exactly once (`stop`).
 */
import type { Counters } from '@stickmesh/core';
import type { StickCounterSlot } from './types.js';

/** A table's counters with the columns tracking writes, looked up once. */
export class TrackTable {
  readonly connCur: number;
  readonly connCnt: number;
  readonly connRate: number;
  readonly sessCnt: number;
  readonly sessRate: number;
  readonly reqCnt: number;
  readonly reqRate: number;
  readonly errCnt: number;
  readonly errRate: number;
  readonly failCnt: number;
  readonly failRate: number;
  readonly inCnt: number;
  readonly inRate: number;
  readonly outCnt: number;
  readonly outRate: number;

  constructor(readonly counters: Counters) {
    const c = counters;
    this.connCur = c.column('conn_cur');
    this.connCnt = c.column('conn_cnt');
    this.connRate = c.column('conn_rate');
    this.sessCnt = c.column('sess_cnt');
    this.sessRate = c.column('sess_rate');
    this.reqCnt = c.column('http_req_cnt');
    this.reqRate = c.column('http_req_rate');
    this.errCnt = c.column('http_err_cnt');
    this.errRate = c.column('http_err_rate');
    this.failCnt = c.column('http_fail_cnt');
    this.failRate = c.column('http_fail_rate');
    this.inCnt = c.column('bytes_in_cnt');
    this.inRate = c.column('bytes_in_rate');
    this.outCnt = c.column('bytes_out_cnt');
    this.outRate = c.column('bytes_out_rate');
  }

  private readonly gpcCols: number[] = [];
  private readonly gpcRateCols: number[] = [];
  private readonly gptCols: number[] = [];

  /** Column of gpc(idx), -1 when not stored (cached: `column` is not for the request path). */
  gpc(idx: number): number {
    return this.gpcCols[idx] ??= this.counters.column('gpc', idx);
  }

  gpcRate(idx: number): number {
    return this.gpcRateCols[idx] ??= this.counters.column('gpc_rate', idx);
  }

  gpt(idx: number): number {
    return this.gptCols[idx] ??= this.counters.column('gpt', idx);
  }
}

const byCounters = new WeakMap<Counters, TrackTable>();

/** The TrackTable of `counters`, shared by every rule tracking into it. */
export function trackTable(counters: Counters): TrackTable {
  let t = byCounters.get(counters);
  if (!t) byCounters.set(counters, (t = new TrackTable(counters)));
  return t;
}

function bump(c: Counters, slot: number, col: number, n: number): void {
  if (col >= 0) c.add(slot, col, n);
}

/** One sticky counter of a stream or connection: tracked while `tt` is set. */
export class Tracker implements StickCounterSlot {
  counters: Counters = undefined as unknown as Counters;
  slot = -1;
  key = '';
  tt: TrackTable | null = null;

  get tracked(): boolean {
    return this.tt !== null;
  }

  /** Takes a reference on `key` in `tt` and counts a new connection on it; false when the table refused the key. */
  start(tt: TrackTable, key: string): boolean {
    const c = tt.counters;
    const slot = c.acquire(key);
    if (slot < 0) return false;
    this.tt = tt;
    this.counters = c;
    this.slot = slot;
    this.key = key;
    bump(c, slot, tt.connCur, 1);
    bump(c, slot, tt.connCnt, 1);
    bump(c, slot, tt.connRate, 1);
    return true;
  }

  countRequest(): void {
    const tt = this.tt!;
    bump(tt.counters, this.slot, tt.reqCnt, 1);
    bump(tt.counters, this.slot, tt.reqRate, 1);
  }

  countSession(): void {
    const tt = this.tt!;
    bump(tt.counters, this.slot, tt.sessCnt, 1);
    bump(tt.counters, this.slot, tt.sessRate, 1);
  }

  /** Counts an exchange's outcome: `status` (0: none), tarpitted, bytes from and to the client. */
  countExchange(status: number, tarpit: boolean, bytesIn: number, bytesOut: number): void {
    const tt = this.tt!;
    const c = tt.counters;
    const s = this.slot;
    if ((status >= 400 && status < 500) || tarpit) {
      bump(c, s, tt.errCnt, 1);
      bump(c, s, tt.errRate, 1);
    } else if (status >= 500 && status < 600 && status !== 501 && status !== 505) {
      bump(c, s, tt.failCnt, 1);
      bump(c, s, tt.failRate, 1);
    }
    countBytes(this, bytesIn, bytesOut);
  }

  /** Ends the tracking: conn_cur -1 and the reference released. A no-op when not tracked. */
  stop(): void {
    const tt = this.tt;
    if (tt === null) return;
    this.tt = null;
    bump(tt.counters, this.slot, tt.connCur, -1);
    tt.counters.release(this.slot);
    this.slot = -1;
  }
}

/** Adds transferred bytes to a tracked counter. */
export function countBytes(t: Tracker, bytesIn: number, bytesOut: number): void {
  const tt = t.tt!;
  const c = tt.counters;
  if (bytesIn > 0) {
    bump(c, t.slot, tt.inCnt, bytesIn);
    bump(c, t.slot, tt.inRate, bytesIn);
  }
  if (bytesOut > 0) {
    bump(c, t.slot, tt.outCnt, bytesOut);
    bump(c, t.slot, tt.outRate, bytesOut);
  }
}
