/**
 * HAProxy-compatible cookie persistence (`cookie NAME insert|rewrite|prefix ...`).
 *
 * The logic is pure string work so the data plane can call it with whatever it parsed; it never
 * touches sockets. Per-request results live in a `CookieState` owned by the connection and reset
 * per request, so the hot path allocates only the strings it must produce.
 *
 * Semantics followed (HAProxy 2.x): request cookies are examined first; `indirect` (insert mode)
 * strips our cookie before the server sees it; `prefix` strips `SRV~`; dates (`maxidle`,
 * `maxlife`) are checked before the server lookup and an expired cookie counts as absent; a
 * response gets our Set-Cookie only when the server was not reached through a valid cookie, or
 * when dates must be refreshed; `postonly` limits insertion to POST; `preserve` leaves a server's
 * own cookie alone; `nocache` marks responses carrying our cookie `Cache-control: private`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { CookieConfig, CookieKeyConfig } from '../config/model.js';

/** HAProxy's `%tsc` 3rd character: request cookie status. */
export type RequestCookieFlag = '-' | 'N' | 'I' | 'D' | 'V' | 'E' | 'O' | 'U';
/** HAProxy's `%tsc` 4th character: response cookie status. */
export type ResponseCookieFlag = '-' | 'N' | 'I' | 'U' | 'P' | 'R' | 'D';

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64REV = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64REV[B64.charCodeAt(i)] = i;

/** Encodes a unix time as HAProxy does in cookies: `(sec + 3) >> 2` as 5 base64 digits, MSB first. */
export function encodeCookieDate(unixSec: number): string {
  let v = ((unixSec + 3) >>> 2) & 0x3fffffff;
  let out = '';
  for (let i = 0; i < 5; i++) {
    out += B64[(v >>> 24) & 0x3f];
    v = (v << 6) & 0x3fffffff;
  }
  return out;
}

/** Decodes 5 base64 digits at `off` into unix seconds (a multiple of 4), or -1 when invalid. */
export function decodeCookieDate(s: string, off: number): number {
  if (off + 5 > s.length) return -1;
  let v = 0;
  for (let i = 0; i < 5; i++) {
    const c = s.charCodeAt(off + i);
    const d = c < 128 ? B64REV[c]! : -1;
    if (d < 0) return -1;
    v = v * 64 + d;
  }
  return v * 4;
}

export const EXPIRED_COOKIE_DATE = 'Thu, 01-Jan-1970 00:00:01 GMT';

/** What the engine knows about the server a cookie may name. */
export interface CookieTarget {
  /** The server's persistence value (explicit `cookie`, or the dynamic one); undefined if none. */
  readonly cookieValue: string | undefined;
}

/** Per-request persistence state; one per connection, `reset()` per request. */
export class CookieState {
  reqFlag: RequestCookieFlag = '-';
  resFlag: ResponseCookieFlag = '-';
  /** Server part of our cookie as presented by the client ('' if none usable). */
  value = '';
  /** Dates carried by the client's cookie, unix seconds; 0 when absent. */
  firstDate = 0;
  lastDate = 0;
  /** The server was chosen because of a valid cookie. */
  direct = false;
  /** Set when the server's response set our cookie itself. */
  serverSetOurs = false;
  /** The client's signed cookie is valid but made with a key that is no longer current. */
  resign = false;

  reset(enabled: boolean): void {
    this.reqFlag = enabled ? 'N' : '-';
    this.resFlag = enabled ? 'N' : '-';
    this.value = '';
    this.firstDate = 0;
    this.lastDate = 0;
    this.direct = false;
    this.serverSetOurs = false;
    this.resign = false;
  }
}

/** Bytes of HMAC-SHA256 kept in a signed cookie (128 bits, 22 base64url characters). */
const MAC_BYTES = 16;

/**
 * Key ring of `cookie ... sign`. A signed value is `PAYLOAD!KID!MAC` where PAYLOAD is HAProxy's
 * `SRV[|LAST[|FIRST]]` and MAC = base64url(HMAC-SHA256(secret of KID, "NAME=" + PAYLOAD + "!" + KID))
 * truncated to 128 bits, so neither the server value, the dates nor the key id can be changed
 * without the secret. Every key of the ring verifies; only the current one signs.
 */
export class CookieSigner {
  /** Secrets by key id; bounded by the config's `cookie-key` lines. */
  private readonly keys: ReadonlyMap<string, string>;
  readonly currentId: string;
  private readonly cookieName: string;

  constructor(cookieName: string, keys: readonly CookieKeyConfig[]) {
    const first = keys.find((k) => k.current) ?? keys[0];
    if (!first) throw new Error(`cookie '${cookieName}' is signed but has no cookie-key`);
    this.keys = new Map(keys.map((k) => [k.id, k.secret]));
    this.currentId = first.id;
    this.cookieName = cookieName;
  }

  private mac(secret: string, payload: string, kid: string): Buffer {
    return createHmac('sha256', secret).update(`${this.cookieName}=${payload}!${kid}`).digest().subarray(0, MAC_BYTES);
  }

  /** Appends `!KID!MAC` made with the current key. */
  sign(payload: string): string {
    const kid = this.currentId;
    return `${payload}!${kid}!${this.mac(this.keys.get(kid)!, payload, kid).toString('base64url')}`;
  }

  /**
   * Returns the payload and key id of a correctly signed value, or undefined when the value is
   * unsigned, names an unknown key, or its MAC does not match (constant-time comparison).
   */
  verify(value: string): { payload: string; kid: string } | undefined {
    const m2 = value.lastIndexOf('!');
    if (m2 <= 0) return undefined;
    const m1 = value.lastIndexOf('!', m2 - 1);
    if (m1 <= 0) return undefined;
    const kid = value.slice(m1 + 1, m2);
    const secret = this.keys.get(kid);
    if (secret === undefined) return undefined;
    const given = Buffer.from(value.slice(m2 + 1), 'base64url');
    if (given.length !== MAC_BYTES) return undefined;
    const payload = value.slice(0, m1);
    if (!timingSafeEqual(given, this.mac(secret, payload, kid))) return undefined;
    return { payload, kid };
  }
}

/** Counters of one backend's cookie persistence, read by stats/metrics. */
export interface CookieStats {
  /** Cookies ignored because their signature was missing, forged, tampered or made with an unknown key. */
  rejectedSignatures: number;
  /** Valid cookies signed with an old key and re-issued with the current one. */
  resigned: number;
}

export class CookiePersistence {
  readonly cfg: CookieConfig;
  readonly name: string;
  /** Set with `cookie ... sign`. */
  readonly signer: CookieSigner | undefined;
  readonly stats: CookieStats = { rejectedSignatures: 0, resigned: 0 };
  private readonly suffix: string;
  private readonly stripOnRequest: boolean;

  constructor(cfg: CookieConfig, keys: readonly CookieKeyConfig[] = []) {
    this.cfg = cfg;
    this.name = cfg.name;
    this.signer = cfg.sign ? new CookieSigner(cfg.name, keys) : undefined;
    let suffix = '; path=/';
    for (const d of cfg.domains) suffix += `; domain=${d}`;
    if (cfg.httponly) suffix += '; HttpOnly';
    if (cfg.secure) suffix += '; Secure';
    for (const a of cfg.attrs) suffix += `; ${a}`;
    this.suffix = suffix;
    this.stripOnRequest = cfg.mode === 'insert' && cfg.indirect;
  }

  /**
   * Examines one `Cookie` request header value. Records our cookie (first occurrence) in `state`,
   * applying maxidle/maxlife. Returns the header value to forward instead, `''` to drop the header,
   * or `undefined` to forward it unchanged.
   */
  onRequestCookieHeader(header: string, state: CookieState, nowSec: number): string | undefined {
    const name = this.name;
    let pos = 0;
    let out: string | undefined;
    let copiedUpTo = 0;
    while (pos < header.length) {
      let end = header.indexOf(';', pos);
      if (end === -1) end = header.length;
      let a = pos;
      while (a < end && (header.charCodeAt(a) === 0x20 || header.charCodeAt(a) === 0x09)) a++;
      const eq = header.indexOf('=', a);
      if (eq !== -1 && eq < end && eq - a === name.length && header.startsWith(name, a)) {
        let ve = end;
        while (ve > eq + 1 && (header.charCodeAt(ve - 1) === 0x20 || header.charCodeAt(ve - 1) === 0x09)) ve--;
        const raw = header.slice(eq + 1, ve);
        const first = state.reqFlag === 'N' || state.reqFlag === '-';
        let replacement: string | null = null; // null = keep this cookie as is
        if (this.cfg.mode === 'prefix') {
          const tilde = raw.indexOf('~');
          if (first) this.examineValue(tilde === -1 ? raw : raw.slice(0, tilde), state, nowSec);
          if (tilde !== -1) replacement = `${name}=${raw.slice(tilde + 1)}`;
        } else {
          if (first) this.examineValue(raw, state, nowSec);
          if (this.stripOnRequest) replacement = '';
        }
        if (replacement !== null) {
          out = (out ?? '') + header.slice(copiedUpTo, pos);
          if (replacement.length > 0) {
            out += (pos > 0 ? ' ' : '') + replacement;
            copiedUpTo = end;
          } else {
            // Remove the cookie and its separator.
            copiedUpTo = end < header.length ? end + 1 : end;
          }
        }
      }
      pos = end + 1;
    }
    if (out === undefined) return undefined;
    out += header.slice(copiedUpTo);
    return cleanCookieList(out);
  }

  /**
   * Examines our cookie's value as a client would present it (`prefix` mode: `SRV~APPVALUE`)
   * exactly as `onRequestCookieHeader` does, into a `state` reset with cookies enabled, without
   * touching the counters: explain's view of a cookie, so it can never disagree with the proxy's.
   */
  examine(raw: string, state: CookieState, nowSec: number): void {
    if (this.cfg.mode === 'prefix') {
      const tilde = raw.indexOf('~');
      if (tilde !== -1) raw = raw.slice(0, tilde);
    }
    this.examineValue(raw, state, nowSec, false);
  }

  /**
   * Parses `SRV[|LAST[|FIRST]]` (signed: followed by `!KID!MAC`), applying the date rules; fills
   * state.value or an E/O flag. A signed cookie that does not verify is treated as absent (flag
   * stays `N`) and, when `count`, counted in `stats.rejectedSignatures`.
   */
  private examineValue(raw: string, state: CookieState, nowSec: number, count = true): void {
    if (this.signer) {
      const v = this.signer.verify(raw);
      if (!v) {
        if (count) this.stats.rejectedSignatures++;
        return;
      }
      if (v.kid !== this.signer.currentId) state.resign = true;
      raw = v.payload;
    }
    let value = raw;
    const bar = raw.indexOf('|');
    if (bar !== -1) {
      value = raw.slice(0, bar);
      if (this.cfg.maxidle > 0 || this.cfg.maxlife > 0) {
        const last = decodeCookieDate(raw, bar + 1);
        if (last > 0) state.lastDate = last;
        const bar2 = raw.indexOf('|', bar + 1);
        if (bar2 !== -1) {
          const firstD = decodeCookieDate(raw, bar2 + 1);
          if (firstD > 0) state.firstDate = firstD;
        }
      }
    }
    const maxlife = this.cfg.maxlife;
    const maxidle = this.cfg.maxidle;
    if (state.firstDate && maxlife && (nowSec - state.firstDate > maxlife || state.firstDate - nowSec > 86400)) {
      state.reqFlag = 'O';
      state.firstDate = 0;
      state.lastDate = 0;
      return;
    }
    if (state.lastDate && maxidle && (nowSec - state.lastDate > maxidle || state.lastDate - nowSec > 86400)) {
      state.reqFlag = 'E';
      state.firstDate = 0;
      state.lastDate = 0;
      return;
    }
    if (value.length === 0) {
      state.reqFlag = 'I';
      return;
    }
    state.value = value;
    state.reqFlag = 'I'; // until the engine confirms a usable server (V) or a down one (D)
  }

  /**
   * Records the outcome of the server lookup for `state.value`: `found` is whether a server has that
   * value, `usable` whether it may take the request (up, not in maintenance).
   */
  resolve(state: CookieState, found: boolean, usable: boolean): boolean {
    if (state.value.length === 0) return false;
    if (!found) {
      state.reqFlag = 'I';
      return false;
    }
    if (!usable) {
      state.reqFlag = 'D';
      return false;
    }
    state.reqFlag = 'V';
    state.direct = true;
    return true;
  }

  /**
   * Processes one `Set-Cookie` header from the server. Returns the value to forward instead, `''`
   * to drop it, or `undefined` to forward it unchanged.
   */
  onResponseSetCookie(header: string, state: CookieState, server: CookieTarget): string | undefined {
    const name = this.name;
    let a = 0;
    while (a < header.length && (header.charCodeAt(a) === 0x20 || header.charCodeAt(a) === 0x09)) a++;
    if (!(header.startsWith(name, a) && header.charCodeAt(a + name.length) === 0x3d)) return undefined;
    state.serverSetOurs = true;
    const cfg = this.cfg;
    if (cfg.mode === 'insert') {
      if (cfg.preserve) {
        state.resFlag = 'P';
        return undefined;
      }
      state.resFlag = 'D';
      return '';
    }
    if (cfg.indirect && state.direct) {
      // The client already holds a valid cookie: the server's copy is not needed.
      state.resFlag = 'D';
      return '';
    }
    const sv = server.cookieValue;
    if (sv === undefined) {
      state.resFlag = 'P';
      return undefined;
    }
    const valStart = a + name.length + 1;
    let valEnd = header.indexOf(';', valStart);
    if (valEnd === -1) valEnd = header.length;
    state.resFlag = 'R';
    if (cfg.mode === 'rewrite') return header.slice(0, valStart) + sv + header.slice(valEnd);
    return header.slice(0, valStart) + sv + '~' + header.slice(valStart);
  }

  /**
   * Decides whether our cookie must be inserted in this response (insert mode) and returns the
   * Set-Cookie value, or undefined. Call after all server Set-Cookie headers were processed.
   */
  insertCookie(state: CookieState, server: CookieTarget, isPost: boolean, nowSec: number): string | undefined {
    if (!this.decideInsert(state, server, isPost, nowSec)) return undefined;
    return this.insertedValue(state, server, nowSec);
  }

  /**
   * `insertCookie` as the header lines the response gets: `set-cookie: <value>\r\n`, followed by
   * `cache-control: private\r\n` with `nocache`, in latin1 bytes. Without maxidle/maxlife the
   * value depends on the server alone, so the lines are made once per server (and cookie value)
   * and shared by every response: a signed value costs an HMAC, a plain one a few string joins.
   * Bound: one cached entry per live server object (a WeakMap: servers dropped by a reload or by
   * discovery take theirs with them).
   */
  insertLines(state: CookieState, server: CookieTarget, isPost: boolean, nowSec: number): Buffer | undefined {
    if (!this.decideInsert(state, server, isPost, nowSec)) return undefined;
    if (this.cfg.maxidle > 0 || this.cfg.maxlife > 0) return this.lines(this.insertedValue(state, server, nowSec));
    const sv = server.cookieValue;
    const hit = this.lineCache.get(server);
    if (hit !== undefined && hit.sv === sv) return hit.lines;
    const lines = this.lines(this.insertedValue(state, server, nowSec));
    this.lineCache.set(server, { sv, lines });
    return lines;
  }

  private readonly lineCache = new WeakMap<CookieTarget, { sv: string | undefined; lines: Buffer }>();

  private lines(value: string): Buffer {
    return Buffer.from(`set-cookie: ${value}\r\n${this.cfg.nocache ? 'cache-control: private\r\n' : ''}`, 'latin1');
  }

  /** Whether the response gets our cookie; sets the response flag and counts re-signs when so. */
  private decideInsert(state: CookieState, server: CookieTarget, isPost: boolean, nowSec: number): boolean {
    const cfg = this.cfg;
    if (cfg.mode !== 'insert') return false;
    if (state.serverSetOurs && cfg.preserve) return false;
    if (cfg.postonly && !isPost) return false;
    const datesDue =
      (cfg.maxidle > 0 || state.lastDate > 0) && (state.lastDate === 0 || state.lastDate < nowSec);
    if (state.direct && !datesDue && !state.resign) return false;
    if (state.direct && state.resign) this.stats.resigned++;
    state.resFlag = server.cookieValue !== undefined && state.direct ? 'U' : 'I';
    return true;
  }

  /** The inserted `NAME=value; attributes` (an expiring one for a server without a cookie value). */
  private insertedValue(state: CookieState, server: CookieTarget, nowSec: number): string {
    const cfg = this.cfg;
    const sv = server.cookieValue;
    let payload = sv ?? '';
    if (sv !== undefined && (cfg.maxidle > 0 || cfg.maxlife > 0)) {
      payload += '|' + encodeCookieDate(nowSec);
      if (cfg.maxlife > 0) {
        payload += '|' + (state.firstDate > 0 ? encodeCookieDate(state.firstDate) : encodeCookieDate(nowSec));
      }
    }
    let out = `${this.name}=${sv !== undefined && this.signer ? this.signer.sign(payload) : payload}`;
    if (sv === undefined) out += `; Expires=${EXPIRED_COOKIE_DATE}`;
    out += this.suffix;
    return out;
  }

  /** Whether a response that carries our Set-Cookie must get `Cache-control: private`. */
  get nocache(): boolean {
    return this.cfg.nocache;
  }
}

/** Normalises separators after a cookie was removed: no leading/trailing `;`, single `; `. */
function cleanCookieList(s: string): string {
  const parts = s.split(';');
  let out = '';
  for (const p of parts) {
    const t = p.trim();
    if (t.length === 0) continue;
    out += out.length === 0 ? t : `; ${t}`;
  }
  return out;
}
