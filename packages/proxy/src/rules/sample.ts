/**
 * Sample fetches and converters, compiled once per config load into closures over a SampleSource.
 *
 * Every fetch of the catalog (`FETCHES` in core/config/fetches.ts) has one implementation here,
 * keyed by its canonical name; aliases (`hdr` for `req.hdr`) resolve through the catalog. A fetch
 * has two forms, as in HAProxy: the sample form (`compileSample`: one value, e.g. the last
 * occurrence of a header) and the ACL form (`compileExpr(...).any`: every value, e.g. each
 * comma-separated value of every occurrence, until one matches). String fetches also offer their
 * values as spans of an existing string (`anySpan`), so matching a path or a header value does not
 * slice a new string.
 *
 * Absent samples are `undefined`: a missing header, an untracked sticky counter, a counter the
 * table does not store. Behaviour checked against HAProxy 2.6 (see rules/README or the tests).
 */
import {
  CONVERTERS,
  findFetch,
  type CounterFetch,
  type CounterKind,
  type Counters,
  type FetchSpec,
  type SampleExpr,
  type SampleType,
  type SourceLoc,
} from '@stickmesh/core';
import { IP, formatV4, formatV6, maskV6, parseIp, parseV4Mask, v6Mapped } from './ip.js';
import { RuleCompileError, type CompileEnv, type CompiledCond, type CompiledSample, type SampleSource, type SampleValue } from './types.js';

/** A present sample value. */
export type Value = string | number | boolean;
/** Test of one string value given as `s.slice(a, b)` without slicing. */
export type SpanTest = (s: string, a: number, b: number) => boolean;
export type ValueTest = (v: Value) => boolean;

/** A fetch (or a fetch with converters) compiled in both forms. */
export interface CompiledExpr {
  /** Output type: the fetch's, or the last converter's. */
  readonly type: SampleType;
  /** Sample form. */
  readonly one: CompiledSample;
  /** ACL form: true when `test` holds for some value (each occurrence of a multi-valued fetch). Call at compile time. */
  any(test: ValueTest): CompiledCond;
  /** ACL form over string spans; present for string fetches without converters. Call at compile time. */
  readonly anySpan: ((test: SpanTest) => CompiledCond) | undefined;
  /** The canonical fetch name (for match methods that depend on the fetch, like `method`). */
  readonly fetch: string;
  readonly converted: boolean;
}

interface FetchImpl {
  type: SampleType;
  one: CompiledSample;
  anySpan?: (test: SpanTest) => CompiledCond;
  any?: (test: ValueTest) => CompiledCond;
}

const NOLOC: SourceLoc = { file: '<rules>', line: 0 };

/** Slice of a span, without copying when it is the whole string. */
function cut(s: string, a: number, b: number): string {
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** HAProxy's string to integer cast: optional sign, then leading digits; NaN when empty (no sample). */
export function strToInt(s: string, a = 0, b = s.length): number {
  if (a >= b) return NaN;
  let i = a;
  let neg = false;
  const c0 = s.charCodeAt(i);
  if (c0 === 45 || c0 === 43) {
    neg = c0 === 45;
    i++;
  }
  let v = 0;
  for (; i < b; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) break;
    v = v * 10 + (c - 48);
  }
  return neg ? -v : v;
}

/** Text form of a sample value (HAProxy's casts: booleans are 1 and 0). */
export function valueToString(v: Value): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return v ? '1' : '0';
}

// ------------------------------------------------------------------ header values

interface Heads {
  readonly headerCount: number;
  headerNameIs(i: number, lower: string): boolean;
  headerValue(i: number): string;
}

function isSp(c: number): boolean {
  return c === 32 || c === 9;
}

/** End of the comma-separated value starting at `a` (commas inside double quotes do not split). */
function valueEnd(s: string, a: number): number {
  let q = false;
  for (let i = a; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (q) {
      if (c === 92) i++;
      else if (c === 34) q = false;
    } else if (c === 34) q = true;
    else if (c === 44) return i;
  }
  return s.length;
}

/**
 * Calls `test` on each value of header `lname` (any header when undefined), split at commas
 * unless `full`, trimmed of spaces and tabs; stops and returns true when `test` does.
 */
function eachHeaderValue(h: Heads, lname: string | undefined, full: boolean, test: SpanTest): boolean {
  const n = h.headerCount;
  for (let i = 0; i < n; i++) {
    if (lname !== undefined && !h.headerNameIs(i, lname)) continue;
    const s = h.headerValue(i);
    let a = 0;
    for (;;) {
      const e = full ? s.length : valueEnd(s, a);
      let x = a;
      let y = e;
      while (x < y && isSp(s.charCodeAt(x))) x++;
      while (y > x && isSp(s.charCodeAt(y - 1))) y--;
      if (test(s, x, y)) return true;
      if (e >= s.length) break;
      a = e + 1;
    }
  }
  return false;
}

/**
 * The `occ`-th value (1 = first, -1 = last, as HAProxy's `<occ>`) of a header, as a closure
 * returning the string or undefined. Its counting visitors are built once.
 */
function headerNth(get: (src: SampleSource) => Heads | undefined, lname: string | undefined, full: boolean, occ: number): CompiledSample {
  let k = 0;
  let target = 0;
  let rs = '';
  let ra = 0;
  let rb = 0;
  const count: SpanTest = () => {
    k++;
    return false;
  };
  const pick: SpanTest = (s, a, b) => {
    if (++k !== target) return false;
    rs = s;
    ra = a;
    rb = b;
    return true;
  };
  return (src) => {
    const h = get(src);
    if (h === undefined) return undefined;
    if (occ > 0) target = occ;
    else {
      k = 0;
      eachHeaderValue(h, lname, full, count);
      target = k + occ + 1;
      if (target < 1) return undefined;
    }
    k = 0;
    if (!eachHeaderValue(h, lname, full, pick)) return undefined;
    const out = cut(rs, ra, rb);
    rs = '';
    return out;
  };
}

function headerCount(get: (src: SampleSource) => Heads | undefined, lname: string | undefined): CompiledSample {
  let k = 0;
  const count: SpanTest = () => {
    k++;
    return false;
  };
  return (src) => {
    const h = get(src);
    if (h === undefined) return undefined;
    k = 0;
    eachHeaderValue(h, lname, false, count);
    return k;
  };
}

const reqHeads = (src: SampleSource): Heads | undefined => src.http;
const resHeads = (src: SampleSource): Heads | undefined => src.res;

/** `hdr`-like fetch: sample form picks one occurrence (last by default), ACL form iterates unless `occ` is given. */
function headerFetch(get: (src: SampleSource) => Heads | undefined, args: string[], full: boolean, loc: SourceLoc): FetchImpl {
  const lname = args[0] ? args[0].toLowerCase() : undefined;
  const occArg = args[1];
  const occ = occArg === undefined || occArg === '' ? undefined : parseIntArg(occArg, 'occurrence', loc);
  if (occ === 0) throw new RuleCompileError('header occurrence 0 names no occurrence (1 is the first, -1 the last)', loc);
  const one = headerNth(get, lname, full, occ ?? -1);
  if (occ !== undefined) return { type: 'str', one };
  return {
    type: 'str',
    one,
    anySpan: (test) => (src) => {
      const h = get(src);
      return h !== undefined && eachHeaderValue(h, lname, full, test);
    },
  };
}

// ------------------------------------------------------------------ request line, cookies, parameters

/** Start of the path in a request target (origin or absolute form), -1 when it has none (`*`, authority form). */
function pathStart(t: string): number {
  if (t.charCodeAt(0) === 47) return 0;
  const scheme = t.indexOf('://');
  if (scheme < 0) return -1;
  return t.indexOf('/', scheme + 3);
}

function pathEnd(t: string, a: number): number {
  const q = t.indexOf('?', a);
  return q < 0 ? t.length : q;
}

/** Calls `test` on the value of each cookie named `name` (every cookie when undefined) of the request's Cookie headers. */
function eachCookie(h: Heads, name: string | undefined, test: SpanTest): boolean {
  const n = h.headerCount;
  for (let i = 0; i < n; i++) {
    if (!h.headerNameIs(i, 'cookie')) continue;
    const s = h.headerValue(i);
    let a = 0;
    while (a < s.length) {
      let e = s.indexOf(';', a);
      if (e < 0) e = s.length;
      const eq = s.indexOf('=', a);
      if (eq >= 0 && eq < e) {
        let na = a;
        let nb = eq;
        while (na < nb && isSp(s.charCodeAt(na))) na++;
        while (nb > na && isSp(s.charCodeAt(nb - 1))) nb--;
        if (name === undefined || (nb - na === name.length && s.startsWith(name, na))) {
          let va = eq + 1;
          let vb = e;
          while (va < vb && isSp(s.charCodeAt(va))) va++;
          while (vb > va && isSp(s.charCodeAt(vb - 1))) vb--;
          if (test(s, va, vb)) return true;
        }
      }
      a = e + 1;
    }
  }
  return false;
}

function cookieFetch(args: string[]): FetchImpl {
  const name = args[0] ? args[0] : undefined;
  let rs = '';
  let ra = 0;
  let rb = 0;
  let found = false;
  const keep: SpanTest = (s, a, b) => {
    rs = s;
    ra = a;
    rb = b;
    found = true;
    return name === undefined; // no name: the first cookie; a name: its last occurrence
  };
  return {
    type: 'str',
    one: (src) => {
      const h = src.http;
      if (h === undefined) return undefined;
      found = false;
      eachCookie(h, name, keep);
      if (!found) return undefined;
      const out = cut(rs, ra, rb);
      rs = '';
      return out;
    },
    anySpan: (test) => (src) => src.http !== undefined && eachCookie(src.http, name, test),
  };
}

function cookieCount(args: string[]): FetchImpl {
  const name = args[0] ? args[0] : undefined;
  let k = 0;
  const count: SpanTest = () => {
    k++;
    return false;
  };
  return {
    type: 'int',
    one: (src) => {
      if (src.http === undefined) return undefined;
      k = 0;
      eachCookie(src.http, name, count);
      return k;
    },
  };
}

function isParamDelim(c: number, d: number): boolean {
  return c === 38 || c === 59 || c === d;
}

/**
 * Calls `test` on the value of each URL parameter `name` (any parameter when undefined). The list
 * starts after the first `?`, or after the first `delim` when one is given; parameters end at `&`,
 * `;` or `delim`. Values are not URL-decoded. Parameters without `=` are skipped.
 */
function eachParam(t: string, name: string | undefined, delim: number, test: SpanTest): boolean {
  let a = t.indexOf(delim < 0 ? '?' : String.fromCharCode(delim));
  if (a < 0) return false;
  a++;
  const len = t.length;
  while (a <= len) {
    let e = a;
    while (e < len && !isParamDelim(t.charCodeAt(e), delim)) e++;
    if (name !== undefined) {
      if (e - a > name.length && t.charCodeAt(a + name.length) === 61 && t.startsWith(name, a)) {
        if (test(t, a + name.length + 1, e)) return true;
      }
    } else {
      const eq = t.indexOf('=', a);
      if (eq >= 0 && eq < e && test(t, eq + 1, e)) return true;
    }
    a = e + 1;
  }
  return false;
}

function paramFetch(args: string[], loc: SourceLoc): FetchImpl {
  const name = args[0] ? args[0] : undefined;
  const d = args[1];
  if (d !== undefined && d.length !== 1) throw new RuleCompileError(`url_param delimiter must be one character, got "${d}"`, loc);
  const delim = d === undefined ? -1 : d.charCodeAt(0);
  let rs = '';
  let ra = 0;
  let rb = 0;
  let found = false;
  const first: SpanTest = (s, a, b) => {
    rs = s;
    ra = a;
    rb = b;
    found = true;
    return true;
  };
  return {
    type: 'str',
    one: (src) => {
      if (src.http === undefined) return undefined;
      found = false;
      eachParam(src.http.target, name, delim, first);
      if (!found) return undefined;
      const out = cut(rs, ra, rb);
      rs = '';
      return out;
    },
    anySpan: (test) => (src) => src.http !== undefined && eachParam(src.http.target, name, delim, test),
  };
}

/** A string fetch with one value given as a span of a request string. */
function spanFetch(span: (src: SampleSource, test: SpanTest) => boolean): FetchImpl {
  let rs = '';
  let ra = 0;
  let rb = 0;
  const keep: SpanTest = (s, a, b) => {
    rs = s;
    ra = a;
    rb = b;
    return true;
  };
  return {
    type: 'str',
    one: (src) => {
      if (!span(src, keep)) return undefined;
      const out = cut(rs, ra, rb);
      rs = '';
      return out;
    },
    anySpan: (test) => (src) => span(src, test),
  };
}

/** `base`: the first Host value followed by the path; the path alone without a Host header. */
function baseFetch(): FetchImpl {
  let host = '';
  const firstHost: SpanTest = (s, a, b) => {
    host = cut(s, a, b);
    return true;
  };
  return {
    type: 'str',
    one: (src) => {
      const h = src.http;
      if (h === undefined) return undefined;
      const t = h.target;
      const a = pathStart(t);
      if (a < 0) return undefined;
      const path = cut(t, a, pathEnd(t, a));
      host = '';
      eachHeaderValue(h, 'host', false, firstHost);
      const out = host + path;
      host = '';
      return out;
    },
  };
}

/** IP address text of a header value: IPv4 (optionally `:port`), IPv6, `[IPv6]` (optionally `:port`), quotes allowed. */
function headerIp(s: string, a: number, b: number): string | undefined {
  if (b - a >= 2 && s.charCodeAt(a) === 34 && s.charCodeAt(b - 1) === 34) {
    a++;
    b--;
  }
  if (s.charCodeAt(a) === 91) {
    const close = s.indexOf(']', a);
    if (close < 0 || close >= b) return undefined;
    const rest = b - close - 1;
    if (rest !== 0 && !(s.charCodeAt(close + 1) === 58 && isPort(s, close + 2, b))) return undefined;
    return parseIp(s.slice(a + 1, close)) === 6 ? formatV6(IP.g) : undefined;
  }
  const text = cut(s, a, b);
  const fam = parseIp(text);
  if (fam === 4) return text;
  if (fam === 6) return formatV6(IP.g);
  const colon = text.lastIndexOf(':');
  if (colon > 0 && text.indexOf(':') === colon && isPort(text, colon + 1, text.length)) {
    const addr = text.slice(0, colon);
    return parseIp(addr) === 4 ? addr : undefined;
  }
  return undefined;
}

function isPort(s: string, a: number, b: number): boolean {
  if (a >= b || b - a > 5) return false;
  let v = 0;
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
    v = v * 10 + (c - 48);
  }
  return v <= 65535;
}

// ------------------------------------------------------------------ stick counters

function parseIntArg(text: string, what: string, loc: SourceLoc): number {
  if (!/^[+-]?\d{1,15}$/.test(text)) throw new RuleCompileError(`${what} must be an integer, got "${text}"`, loc);
  return Number(text);
}

function resolveTable(name: string, env: CompileEnv, loc: SourceLoc): Counters {
  const c = env.tables.counters(name);
  if (c === undefined) throw new RuleCompileError(`no stick table "${name}" with counters`, loc);
  return c;
}

function tableArg(name: string | undefined, fetch: string, env: CompileEnv, loc: SourceLoc): string {
  const t = name || env.ownTable;
  if (!t) throw new RuleCompileError(`${fetch} needs a table: name one, or give this section a stick-table`, loc);
  return t;
}

const floor = Math.floor;

/**
 * `sc*`/`src_*`/`table_*` fetches. As HAProxy 2.6 does (checked with a real run): an sc fetch on an
 * untracked counter, or on a table that does not store the data type, has no sample; a `src_*`
 * fetch on an address not in the table returns 0 without creating it (`src_inc_*` creates it); an
 * `sc_*(N,T)` fetch looks the tracked key up in table T (0 when absent there).
 */
function counterFetch(spec: FetchSpec, cf: CounterFetch, args: string[], env: CompileEnv, loc: SourceLoc): FetchImpl {
  let ai = 0;
  let idx = cf.idx ?? 0;
  const indexed = cf.idx === undefined && (cf.op === 'get' || cf.op === 'inc') && cf.data !== undefined && (cf.data === 'gpc' || cf.data === 'gpc_rate' || cf.data === 'gpt');
  if (indexed) {
    idx = parseIntArg(args[ai++] ?? '', `${spec.name} array index`, loc);
    if (idx < 0 || idx > 99) throw new RuleCompileError(`${spec.name}: array index ${idx} out of 0..99`, loc);
  }
  if (cf.family === 'table') {
    const t = tableArg(args[ai], spec.name, env, loc);
    const tables = env.tables;
    if (cf.op === 'cnt') return { type: 'int', one: () => tables.entryCount(t) };
    return {
      type: 'int',
      one: () => {
        const cap = tables.capacity !== undefined ? tables.capacity(t) : tables.counters(t)?.stats.capacity;
        return cap === undefined ? undefined : Math.max(0, cap - tables.entryCount(t));
      },
    };
  }
  const kind = cf.data as CounterKind;
  if (cf.family === 'src') {
    const t = resolveTable(tableArg(args[ai], spec.name, env, loc), env, loc);
    if (cf.op === 'inc') return incFetch(t, idx, (src) => src.clientIp, true);
    const col = t.column(kind, idx);
    return {
      type: 'int',
      one: (src) => {
        const slot = t.find(src.clientIp);
        if (slot < 0) return 0;
        return col < 0 ? undefined : floor(t.read(slot, col));
      },
    };
  }
  // family 'sc'
  let n: number;
  if (spec.sc !== undefined) n = spec.sc;
  else {
    n = parseIntArg(args[ai++] ?? '', `${spec.name} counter number`, loc);
    if (n < 0 || n > 2) throw new RuleCompileError(`${spec.name}: sticky counter ${n} out of 0..2`, loc);
  }
  const tname = args[ai];
  const alt = tname ? resolveTable(tname, env, loc) : undefined;
  if (cf.op === 'tracked') return { type: 'bool', one: (src) => src.sc[n] !== undefined };
  if (cf.op === 'inc') {
    if (alt !== undefined) return incFetch(alt, idx, (src) => src.sc[n]?.key, false);
    return scInc(n, idx);
  }
  if (alt !== undefined) {
    const col = alt.column(kind, idx);
    return {
      type: 'int',
      one: (src) => {
        const t = src.sc[n];
        if (t === undefined || col < 0) return undefined;
        if (t.counters === alt) return floor(alt.read(t.slot, col));
        const slot = alt.find(t.key);
        return slot < 0 ? 0 : floor(alt.read(slot, col));
      },
    };
  }
  // The hot path: the tracked entry's own table, its column cached per Counters object.
  let lastC: Counters | undefined;
  let lastCol = -1;
  return {
    type: 'int',
    one: (src) => {
      const t = src.sc[n];
      if (t === undefined) return undefined;
      const c = t.counters;
      if (c !== lastC) {
        lastCol = c.column(kind, idx);
        lastC = c;
      }
      return lastCol < 0 ? undefined : floor(c.read(t.slot, lastCol));
    },
  };
}

/** `sc_inc_gpc*` on the tracked entry: adds 1 to gpc[idx] and gpc_rate[idx] (whichever are stored), returns the new gpc. */
function scInc(n: number, idx: number): FetchImpl {
  let lastC: Counters | undefined;
  let colG = -1;
  let colR = -1;
  return {
    type: 'int',
    one: (src) => {
      const t = src.sc[n];
      if (t === undefined) return undefined;
      const c = t.counters;
      if (c !== lastC) {
        colG = c.column('gpc', idx);
        colR = c.column('gpc_rate', idx);
        lastC = c;
      }
      if (colG < 0 && colR < 0) return undefined;
      if (colR >= 0) c.add(t.slot, colR, 1);
      if (colG < 0) return 0;
      c.add(t.slot, colG, 1);
      return floor(c.read(t.slot, colG));
    },
  };
}

/** `src_inc_gpc*` (creates the entry) and `sc_inc_gpc*(N,T)` (looks the key up only) on a named table. */
function incFetch(t: Counters, idx: number, key: (src: SampleSource) => string | undefined, create: boolean): FetchImpl {
  const colG = t.column('gpc', idx);
  const colR = t.column('gpc_rate', idx);
  return {
    type: 'int',
    one: (src) => {
      const k = key(src);
      if (k === undefined) return undefined;
      if (colG < 0 && colR < 0) return undefined;
      const slot = create ? t.acquire(k) : t.find(k);
      if (slot < 0) return create ? undefined : 0;
      try {
        if (colR >= 0) t.add(slot, colR, 1);
        if (colG < 0) return 0;
        t.add(slot, colG, 1);
        return floor(t.read(slot, colG));
      } finally {
        if (create) t.release(slot);
      }
    },
  };
}

// ------------------------------------------------------------------ the fetch table

type Builder = (spec: FetchSpec, args: string[], env: CompileEnv, loc: SourceLoc) => FetchImpl;

const TRUE_ONE: CompiledSample = () => true;

/** Run-time implementation of each non-counter fetch of the catalog, by canonical name. */
export const FETCH_IMPLS: ReadonlyMap<string, Builder> = new Map<string, Builder>([
  ['src', () => ({ type: 'ip', one: (src) => src.clientIp })],
  ['src_port', () => ({ type: 'int', one: (src) => src.clientPort })],
  ['dst', () => ({ type: 'ip', one: (src) => src.localIp })],
  ['dst_port', () => ({ type: 'int', one: (src) => src.localPort })],
  ['always_true', () => ({ type: 'bool', one: TRUE_ONE })],
  ['always_false', () => ({ type: 'bool', one: () => false })],
  [
    'int',
    (_s, args, _e, loc) => {
      const v = parseIntArg(args[0] ?? '', 'int()', loc);
      return { type: 'int', one: () => v };
    },
  ],
  [
    'str',
    (_s, args) => {
      const v = args[0] ?? '';
      return { type: 'str', one: () => v };
    },
  ],
  ['ssl_fc', () => ({ type: 'bool', one: (src) => src.ssl })],
  ['ssl_fc_sni', () => ({ type: 'str', one: (src) => (src.ssl && src.sni ? src.sni : undefined) })],
  ['req.len', () => ({ type: 'int', one: (src) => src.reqBytes ?? 0 })],
  ['wait_end', () => ({ type: 'bool', one: TRUE_ONE })],
  [
    'path',
    () =>
      spanFetch((src, test) => {
        if (src.http === undefined) return false;
        const t = src.http.target;
        const a = pathStart(t);
        return a >= 0 && test(t, a, pathEnd(t, a));
      }),
  ],
  ['url', () => spanFetch((src, test) => src.http !== undefined && test(src.http.target, 0, src.http.target.length))],
  [
    'query',
    () =>
      spanFetch((src, test) => {
        if (src.http === undefined) return false;
        const t = src.http.target;
        const q = t.indexOf('?');
        return q >= 0 && test(t, q + 1, t.length);
      }),
  ],
  ['base', () => baseFetch()],
  ['url_param', (_s, args, _e, loc) => paramFetch(args, loc)],
  ['req.hdr', (_s, args, _e, loc) => headerFetch(reqHeads, args, false, loc)],
  ['req.fhdr', (_s, args, _e, loc) => headerFetch(reqHeads, args, true, loc)],
  ['req.hdr_cnt', (_s, args) => ({ type: 'int', one: headerCount(reqHeads, args[0] ? args[0].toLowerCase() : undefined) })],
  [
    'req.hdr_ip',
    (_s, args, _e, loc) => {
      const h = headerFetch(reqHeads, args, false, loc);
      const one = h.one;
      const anySpan = h.anySpan;
      return {
        type: 'ip',
        one: (src) => {
          const v = one(src);
          return typeof v === 'string' ? headerIp(v, 0, v.length) : undefined;
        },
        any:
          anySpan &&
          ((test) =>
            anySpan((s, a, b) => {
              const ip = headerIp(s, a, b);
              return ip !== undefined && test(ip);
            })),
      };
    },
  ],
  [
    'req.hdr_val',
    (_s, args, _e, loc) => {
      const h = headerFetch(reqHeads, args, false, loc);
      const one = h.one;
      const anySpan = h.anySpan;
      return {
        type: 'int',
        one: (src) => {
          const v = one(src);
          return typeof v === 'string' ? strToInt(v) || 0 : undefined;
        },
        any: anySpan && ((test) => anySpan((s, a, b) => test(strToInt(s, a, b) || 0))),
      };
    },
  ],
  ['req.cook', (_s, args) => cookieFetch(args)],
  ['req.cook_cnt', (_s, args) => cookieCount(args)],
  ['method', () => ({ type: 'str', one: (src) => src.http?.method })],
  ['req.ver', () => ({ type: 'str', one: (src) => (src.http === undefined ? undefined : src.http.versionMinor === 0 ? '1.0' : '1.1') })],
  ['req.proto_http', () => ({ type: 'bool', one: (src) => src.http !== undefined })],
  ['status', () => ({ type: 'int', one: (src) => src.res?.status })],
  ['res.hdr', (_s, args, _e, loc) => headerFetch(resHeads, args, false, loc)],
  ['res.hdr_cnt', (_s, args) => ({ type: 'int', one: headerCount(resHeads, args[0] ? args[0].toLowerCase() : undefined) })],
]);

/** Whether the run time implements the catalog fetch `spec` (every counter fetch is implemented by its family and op). */
export function hasRuntimeFetch(spec: FetchSpec): boolean {
  return spec.counter !== undefined || FETCH_IMPLS.has(spec.name);
}

function compileFetch(expr: SampleExpr, env: CompileEnv, loc: SourceLoc): { spec: FetchSpec; impl: FetchImpl } {
  const spec = findFetch(expr.fetch);
  if (spec === undefined) throw new RuleCompileError(`unknown sample fetch "${expr.fetch}" in "${expr.text}"`, loc);
  if (expr.args.length > spec.args.length) {
    throw new RuleCompileError(`${expr.fetch} takes at most ${spec.args.length} argument(s), got ${expr.args.length} in "${expr.text}"`, loc);
  }
  if (expr.args.length < spec.minArgs) {
    throw new RuleCompileError(`${expr.fetch} needs ${spec.minArgs} argument(s) in "${expr.text}"`, loc);
  }
  if (spec.counter !== undefined) return { spec, impl: counterFetch(spec, spec.counter, expr.args, env, loc) };
  const build = FETCH_IMPLS.get(spec.name);
  if (build === undefined) throw new RuleCompileError(`sample fetch "${expr.fetch}" is not implemented at run time`, loc);
  return { spec, impl: build(spec, expr.args, env, loc) };
}

// ------------------------------------------------------------------ converters

type Converter = { type: SampleType; fn: (v: Value) => SampleValue };

function asIp(v: Value): 0 | 4 | 6 {
  return typeof v === 'string' ? parseIp(v) : 0;
}

function compileConverter(c: { name: string; args: string[] }, inType: SampleType, loc: SourceLoc): Converter {
  const spec = CONVERTERS.get(c.name);
  if (spec === undefined) throw new RuleCompileError(`unknown converter "${c.name}"`, loc);
  if (c.args.length > spec.args.length || c.args.length < spec.minArgs) {
    throw new RuleCompileError(`converter ${c.name} takes ${spec.minArgs}..${spec.args.length} argument(s), got ${c.args.length}`, loc);
  }
  void inType;
  switch (c.name) {
    case 'lower':
      return { type: 'str', fn: (v) => valueToString(v).toLowerCase() };
    case 'upper':
      return { type: 'str', fn: (v) => valueToString(v).toUpperCase() };
    case 'ipmask': {
      const m4 = parseV4Mask(c.args[0] ?? '');
      if (m4 === undefined) throw new RuleCompileError(`ipmask: invalid IPv4 mask "${c.args[0] ?? ''}"`, loc);
      let bits6: number | undefined;
      const a6 = c.args[1];
      if (a6 !== undefined && a6 !== '') {
        if (!/^\d{1,3}$/.test(a6) || Number(a6) > 128) throw new RuleCompileError(`ipmask: invalid IPv6 mask "${a6}" (bits 0..128)`, loc);
        bits6 = Number(a6);
      }
      const g6 = new Uint16Array(8);
      return {
        type: 'ip',
        // IPv4-mapped IPv6 addresses (a dual-stack listener's view of IPv4 clients) are masked as IPv4.
        fn: (v) => {
          const fam = asIp(v);
          if (fam === 4 || (fam === 6 && v6Mapped())) return formatV4((IP.v4 & m4) >>> 0);
          if (fam === 6 && bits6 !== undefined) {
            g6.set(IP.g);
            maskV6(g6, bits6);
            return formatV6(g6);
          }
          return undefined;
        },
      };
    }
    default:
      throw new RuleCompileError(`converter "${c.name}" is not implemented at run time`, loc);
  }
}

function chain(convs: Converter[]): (v: Value) => SampleValue {
  if (convs.length === 1) return convs[0]!.fn;
  return (v) => {
    let x: SampleValue = v;
    for (const c of convs) {
      if (x === undefined) return undefined;
      x = c.fn(x);
    }
    return x;
  };
}

/** Compiles `expr` into both its sample and its ACL forms; throws RuleCompileError for an unknown fetch, converter or bad argument. */
export function compileExpr(expr: SampleExpr, env: CompileEnv, loc: SourceLoc = NOLOC): CompiledExpr {
  const { spec, impl } = compileFetch(expr, env, loc);
  const base: FetchImpl = impl;
  const baseAny = (test: ValueTest): CompiledCond => {
    if (base.any !== undefined) return base.any(test);
    const anySpan = base.anySpan;
    if (anySpan !== undefined) return anySpan((s, a, b) => test(cut(s, a, b)));
    const one = base.one;
    return (src) => {
      const v = one(src);
      return v !== undefined && test(v);
    };
  };
  if (expr.converters.length === 0) {
    return { type: base.type, one: base.one, any: baseAny, anySpan: base.anySpan, fetch: spec.name, converted: false };
  }
  const convs: Converter[] = [];
  let t = base.type;
  for (const c of expr.converters) {
    const conv = compileConverter(c, t, loc);
    convs.push(conv);
    t = conv.type;
  }
  const fn = chain(convs);
  const bone = base.one;
  return {
    type: t,
    one: (src) => {
      const v = bone(src);
      return v === undefined ? undefined : fn(v);
    },
    any: (test) =>
      baseAny((v) => {
        const x = fn(v);
        return x !== undefined && test(x);
      }),
    anySpan: undefined,
    fetch: spec.name,
    converted: true,
  };
}

/** Compiles `expr` (fetch + converters) into a closure; throws RuleCompileError for an unknown fetch or converter. */
export function compileSample(expr: SampleExpr, env: CompileEnv, loc?: SourceLoc): CompiledSample {
  return compileExpr(expr, env, loc).one;
}
