/**
 * ACL match methods (`-m str|beg|end|sub|reg|dir|dom|len|int|ip|bool|found`), compiled from a
 * term's patterns into tests over one sample value. Several patterns are OR'ed. `-i` folds ASCII
 * case as HAProxy does (patterns folded once at load, the sample compared without lowering it).
 * String tests take a span (`s`, `a`, `b`) so a path or header value is matched in place.
 *
 * Semantics checked against HAProxy 2.6 runs: a string sample cast to int keeps its leading
 * digits (`12abc` is 12, empty is no sample); `dir`/`dom` match a delimited run anywhere, leading
 * and trailing delimiters of the pattern ignored; an IPv4 sample matches IPv6 patterns as
 * `::ffff:a.b.c.d`, an IPv6 sample matches IPv4 patterns when it embeds one (`::ffff:`, `::`, 6to4);
 * `method` patterns naming a well-known method match it exactly, others compare as strings (`-i`
 * applies) and only against methods that are not well-known.
 */
import type { AclMatch, SampleType, SourceLoc } from '@stickmesh/core';
import { IP, inV6, parseIp, parseIpPattern, v4ToMapped, v6EmbeddedV4 } from './ip.js';
import { strToInt, valueToString, type SpanTest, type Value, type ValueTest } from './sample.js';
import { RuleCompileError } from './types.js';

const NEVER_SPAN: SpanTest = () => false;

function fold(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

/** ASCII lower case (what HAProxy's -i folds), unlike toLowerCase which also folds non-ASCII letters. */
export function asciiLower(p: string): string {
  let out = '';
  for (let i = 0; i < p.length; i++) out += String.fromCharCode(fold(p.charCodeAt(i)));
  return out;
}

/** `s` at `at` starts with the already-folded `p`, ASCII case-insensitively. */
function startsFold(s: string, at: number, p: string): boolean {
  if (at < 0 || at + p.length > s.length) return false;
  for (let i = 0; i < p.length; i++) if (fold(s.charCodeAt(at + i)) !== p.charCodeAt(i)) return false;
  return true;
}

/** First index >= `from` where `p` occurs ending at or before `to`, -1 if none. */
function find(s: string, p: string, from: number, to: number, icase: boolean): number {
  if (!icase) {
    const i = s.indexOf(p, from);
    return i >= 0 && i + p.length <= to ? i : -1;
  }
  for (let i = from; i + p.length <= to; i++) if (startsFold(s, i, p)) return i;
  return -1;
}

function anyOf(tests: SpanTest[]): SpanTest {
  if (tests.length === 0) return NEVER_SPAN;
  if (tests.length === 1) return tests[0]!;
  if (tests.length === 2) {
    const [x, y] = tests as [SpanTest, SpanTest];
    return (s, a, b) => x(s, a, b) || y(s, a, b);
  }
  return (s, a, b) => {
    for (let i = 0; i < tests.length; i++) if (tests[i]!(s, a, b)) return true;
    return false;
  };
}

function strExact(patterns: string[], icase: boolean): SpanTest {
  if (!icase && patterns.length > 8) {
    const set = new Set(patterns);
    return (s, a, b) => set.has(a === 0 && b === s.length ? s : s.slice(a, b));
  }
  if (icase && patterns.length > 8) {
    // Bucket by length so a sample is compared only with the patterns of its length.
    const byLen = new Map<number, string[]>();
    for (const p of patterns) {
      const l = byLen.get(p.length);
      if (l) l.push(p);
      else byLen.set(p.length, [p]);
    }
    return (s, a, b) => {
      const l = byLen.get(b - a);
      if (l === undefined) return false;
      for (let i = 0; i < l.length; i++) if (startsFold(s, a, l[i]!)) return true;
      return false;
    };
  }
  return anyOf(
    patterns.map((p): SpanTest => (icase ? (s, a, b) => b - a === p.length && startsFold(s, a, p) : (s, a, b) => b - a === p.length && s.startsWith(p, a))),
  );
}

function isDirDelim(c: number): boolean {
  return c === 47;
}

function isDomDelim(c: number): boolean {
  return c === 46 || c === 58 || c === 47 || c === 63;
}

function wordTest(p0: string, icase: boolean, delim: (c: number) => boolean): SpanTest {
  let x = 0;
  let y = p0.length;
  while (x < y && delim(p0.charCodeAt(x))) x++;
  while (y > x && delim(p0.charCodeAt(y - 1))) y--;
  const p = p0.slice(x, y);
  if (p.length === 0) return NEVER_SPAN;
  return (s, a, b) => {
    for (let i = find(s, p, a, b, icase); i >= 0; i = find(s, p, i + 1, b, icase)) {
      const e = i + p.length;
      if ((i === a || delim(s.charCodeAt(i - 1))) && (e === b || delim(s.charCodeAt(e)))) return true;
    }
    return false;
  };
}

/** Compiles the string match methods into a span test. */
export function stringMatcher(match: AclMatch, patterns0: string[], icase: boolean, loc: SourceLoc): SpanTest {
  const patterns = icase ? patterns0.map(asciiLower) : patterns0;
  switch (match) {
    case 'str':
      return strExact(patterns, icase);
    case 'beg':
      return anyOf(patterns.map((p): SpanTest => (icase ? (s, a, b) => b - a >= p.length && startsFold(s, a, p) : (s, a, b) => b - a >= p.length && s.startsWith(p, a))));
    case 'end':
      return anyOf(
        patterns.map((p): SpanTest => (icase ? (s, a, b) => b - a >= p.length && startsFold(s, b - p.length, p) : (s, a, b) => b - a >= p.length && s.startsWith(p, b - p.length))),
      );
    case 'sub':
      return anyOf(patterns.map((p): SpanTest => (s, a, b) => find(s, p, a, b, icase) >= 0));
    case 'dir':
      return anyOf(patterns.map((p) => wordTest(p, icase, isDirDelim)));
    case 'dom':
      return anyOf(patterns.map((p) => wordTest(p, icase, isDomDelim)));
    case 'reg':
      return anyOf(
        patterns0.map((p): SpanTest => {
          let re: RegExp;
          try {
            re = new RegExp(p, icase ? 'i' : '');
          } catch (e) {
            throw new RuleCompileError(`invalid regular expression "${p}": ${(e as Error).message}`, loc);
          }
          return (s, a, b) => re.test(a === 0 && b === s.length ? s : s.slice(a, b));
        }),
      );
    case 'len': {
      const r = intRanges(patterns0, loc);
      return (_s, a, b) => inRanges(r, b - a);
    }
    default:
      throw new RuleCompileError(`match method "${match}" is not a string match`, loc);
  }
}

// ------------------------------------------------------------------ integers

export interface Ranges {
  lo: Float64Array;
  hi: Float64Array;
}

const OPS = new Set(['eq', 'ge', 'gt', 'le', 'lt']);

function strictInt(t: string, loc: SourceLoc): number {
  if (!/^[+-]?\d{1,16}$/.test(t)) throw new RuleCompileError(`integer pattern expected, got "${t}"`, loc);
  return Number(t);
}

/**
 * Integer patterns: values, ranges `lo:hi` (either bound may be omitted), and the operators
 * `eq ge gt le lt`, each applying to the values after it (`gt 5` is `6:`, `lt 5` is `:4`).
 */
export function intRanges(patterns: string[], loc: SourceLoc): Ranges {
  const lo: number[] = [];
  const hi: number[] = [];
  let op = 'eq';
  let pendingOp = false;
  for (const p of patterns) {
    if (OPS.has(p)) {
      op = p;
      pendingOp = true;
      continue;
    }
    pendingOp = false;
    const colon = p.indexOf(':');
    if (colon >= 0) {
      if (op !== 'eq') throw new RuleCompileError(`operator "${op}" cannot apply to the range "${p}"`, loc);
      const l = p.slice(0, colon);
      const h = p.slice(colon + 1);
      if (l === '' && h === '') throw new RuleCompileError(`empty integer range ":"`, loc);
      const lv = l === '' ? -Infinity : strictInt(l, loc);
      const hv = h === '' ? Infinity : strictInt(h, loc);
      lo.push(lv);
      hi.push(hv);
      continue;
    }
    const v = strictInt(p, loc);
    switch (op) {
      case 'eq':
        lo.push(v);
        hi.push(v);
        break;
      case 'ge':
        lo.push(v);
        hi.push(Infinity);
        break;
      case 'gt':
        lo.push(v + 1);
        hi.push(Infinity);
        break;
      case 'le':
        lo.push(-Infinity);
        hi.push(v);
        break;
      default:
        lo.push(-Infinity);
        hi.push(v - 1);
    }
  }
  if (pendingOp) throw new RuleCompileError(`operator "${op}" needs a value after it`, loc);
  return { lo: Float64Array.from(lo), hi: Float64Array.from(hi) };
}

function inRanges(r: Ranges, n: number): boolean {
  const { lo, hi } = r;
  for (let i = 0; i < lo.length; i++) if (n >= lo[i]! && n <= hi[i]!) return true;
  return false;
}

/** A sample as an integer for `-m int`/`-m bool`: booleans are 0/1, strings keep their leading digits; NaN when it has none. */
export function valueToInt(v: Value): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return strToInt(v);
}

export function intMatcher(patterns: string[], loc: SourceLoc): ValueTest {
  const r = intRanges(patterns, loc);
  const n = r.lo.length;
  if (n === 0) return () => false;
  if (n === 1) {
    const lo = r.lo[0]!;
    const hi = r.hi[0]!;
    return (v) => {
      const x = typeof v === 'number' ? v : valueToInt(v);
      return x >= lo && x <= hi;
    };
  }
  return (v) => inRanges(r, typeof v === 'number' ? v : valueToInt(v));
}

// ------------------------------------------------------------------ addresses

/** `-m ip`: the test over a value, and the same over a string span (a header value matched in place). */
export function ipMatcher(patterns: string[], loc: SourceLoc): { value: ValueTest; span: SpanTest } {
  const nets: number[] = [];
  const masks: number[] = [];
  const v6: { g: Uint16Array; bits: number }[] = [];
  for (const p of patterns) {
    const pat = parseIpPattern(p);
    if (pat === undefined) throw new RuleCompileError(`invalid address pattern "${p}" (an IPv4 or IPv6 address or network; host names are not resolved)`, loc);
    if (pat.v === 4) {
      nets.push(pat.net);
      masks.push(pat.mask);
    } else v6.push({ g: pat.g, bits: pat.bits });
  }
  const n4 = nets.length;
  let v4test: (x: number) => boolean;
  if (n4 === 0) v4test = () => false;
  else if (n4 === 1) {
    const net = nets[0]!;
    const mask = masks[0]!;
    v4test = (x) => ((x & mask) >>> 0) === net;
  } else if (n4 <= 8) {
    const N = Uint32Array.from(nets);
    const M = Uint32Array.from(masks);
    v4test = (x) => {
      for (let i = 0; i < N.length; i++) if (((x & M[i]!) >>> 0) === N[i]) return true;
      return false;
    };
  } else {
    // Many networks: one set of masked networks per distinct mask.
    const byMask = new Map<number, Set<number>>();
    for (let i = 0; i < n4; i++) {
      const s = byMask.get(masks[i]!);
      if (s) s.add(nets[i]!);
      else byMask.set(masks[i]!, new Set([nets[i]!]));
    }
    const M = Uint32Array.from(byMask.keys());
    const S = [...byMask.values()];
    v4test = (x) => {
      for (let i = 0; i < M.length; i++) if (S[i]!.has((x & M[i]!) >>> 0)) return true;
      return false;
    };
  }
  const v6test = (): boolean => {
    for (let i = 0; i < v6.length; i++) if (inV6(v6[i]!.g, v6[i]!.bits)) return true;
    return false;
  };
  const has6 = v6.length > 0;
  const span: SpanTest = (s, a, b) => {
    const fam = parseIp(s, a, b);
    if (fam === 4) {
      const x = IP.v4;
      if (v4test(x)) return true;
      if (!has6) return false;
      v4ToMapped(x);
      return v6test();
    }
    if (fam === 6) {
      if (has6 && v6test()) return true;
      return n4 > 0 && v6EmbeddedV4() && v4test(IP.v4);
    }
    return false;
  };
  return { value: (v) => typeof v === 'string' && span(v, 0, v.length), span };
}

// ------------------------------------------------------------------ methods

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

/** `method` patterns, as HAProxy: well-known methods compare exactly, others as strings against other methods only. */
export function methodMatcher(patterns: string[], icase: boolean): ValueTest {
  const known = new Set(patterns.filter((p) => KNOWN_METHODS.has(p)));
  const other = patterns.filter((p) => !KNOWN_METHODS.has(p));
  const otherTest = other.length > 0 ? strExact(icase ? other.map(asciiLower) : other, icase) : NEVER_SPAN;
  return (v) => {
    if (typeof v !== 'string') return false;
    if (KNOWN_METHODS.has(v)) return known.has(v);
    return otherTest(v, 0, v.length);
  };
}

/** Booleans for `-m bool`: true, or a non-zero integer (strings by their leading digits). */
export function boolTest(v: Value): boolean {
  if (typeof v === 'boolean') return v;
  const n = valueToInt(v);
  return n === n && n !== 0;
}

/** Whether `match` can apply to a sample of type `t` (HAProxy's compatibility matrix, binary aside). */
export function matchCompatible(match: AclMatch, t: SampleType): boolean {
  if (match === 'bool') return t !== 'ip';
  if (match === 'ip') return t === 'ip' || t === 'str';
  return true;
}

export { valueToString };
