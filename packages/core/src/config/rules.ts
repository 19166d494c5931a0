/**
 * Parsing of the rule language inside proxy sections: sample expressions, `acl` lines,
 * `if|unless` conditions, log-format strings, stored data types and the actions of
 * `http-request`, `http-response` and `tcp-request`. Pure functions over one line's words: each
 * returns the model value or throws a RuleSyntaxError whose message the haproxy.cfg parser
 * reports at the line's `file:line`. Names, arguments and where a fetch may be used come from the
 * catalog in fetches.ts.
 */
import { isIP } from 'node:net';
import { StickmeshError } from '../errors.js';
import type {
  AclConfig,
  AclMatch,
  AclTerm,
  CondConfig,
  CondOperand,
  LogFormatPart,
  RuleAction,
  RuleConfig,
  SampleExpr,
  ScIndex,
  SourceLoc,
  StoredType,
} from './model.js';
import {
  ACL_KEYWORDS,
  CONVERTERS,
  FETCH_BY_NAME,
  PREDEFINED_ACLS,
  isHaproxyFetchName,
  type FetchSpec,
  type RuleContext,
  type SampleType,
} from './fetches.js';
import { parseTime } from './units.js';
import { readErrorFile } from './errorfile.js';

/** A problem in one rule, ACL or stored type; reported at the line being parsed. */
export class RuleSyntaxError extends StickmeshError {
  constructor(message: string) {
    super('SM_CONFIG_RULE', message);
  }
}

function fail(message: string): never {
  throw new RuleSyntaxError(message);
}

/** Splits `s` on commas outside parentheses; throws on unbalanced parentheses. */
export function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(') depth++;
    else if (c === ')') {
      if (--depth < 0) fail(`unbalanced ')' in '${s}'`);
    } else if (c === ',' && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  if (depth !== 0) fail(`missing ')' in '${s}'`);
  out.push(s.slice(start));
  return out;
}

/** `name` or `name(a,b)`: the name and its raw arguments (`name()` has none). */
function call(text: string, what: string): { name: string; args: string[] } {
  const m = /^([A-Za-z0-9_.+-]+)(?:\((.*)\))?$/s.exec(text);
  if (!m) fail(`'${text}' is not a ${what} (name or name(args))`);
  const inner = m[2];
  return { name: m[1]!, args: inner === undefined || inner === '' ? [] : splitTopLevel(inner) };
}

/** Parses `fetch[(args)][,converter[(args)]]...` without checking names. */
export function parseSampleText(text: string): SampleExpr {
  if (text === '') fail(`empty sample expression`);
  const parts = splitTopLevel(text);
  const head = call(parts[0]!, 'sample fetch');
  return { fetch: head.name, args: head.args, converters: parts.slice(1).map((p) => call(p, 'converter')), text };
}

const INT = /^-?\d+$/;

function checkArgs(name: string, spec: FetchSpec, args: string[]): void {
  const max = spec.args.length;
  if (args.length < spec.minArgs || args.length > max) {
    const want = spec.minArgs === max ? `${max}` : `${spec.minArgs} to ${max}`;
    fail(`fetch '${name}' takes ${want} argument${max === 1 ? '' : 's'}, got ${args.length}`);
  }
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const kind = spec.args[i]!;
    if (kind === 'int' && !INT.test(a)) fail(`fetch '${name}': argument ${i + 1} '${a}' is not an integer`);
    if (kind === 'sc' && !/^[0-2]$/.test(a)) fail(`fetch '${name}': sticky counter '${a}' must be 0, 1 or 2`);
    if (kind === 'idx' && !(/^\d{1,2}$/.test(a))) fail(`fetch '${name}': array index '${a}' must be 0 to 99`);
    if (kind === 'table' && a === '') fail(`fetch '${name}': empty table name`);
  }
}

/** The catalog entry of a fetch name (alias or ACL keyword resolved), or a RuleSyntaxError. */
function resolveFetch(name: string, acl: boolean): { spec: FetchSpec; match: AclMatch; keyword: boolean } {
  const kw = acl ? ACL_KEYWORDS.get(name) : undefined;
  if (kw) return { spec: FETCH_BY_NAME.get(kw.fetch)!, match: kw.match, keyword: true };
  const spec = FETCH_BY_NAME.get(name);
  if (spec) return { spec, match: spec.match, keyword: false };
  if (isHaproxyFetchName(name)) fail(`fetch '${name}' is not supported by stickmesh`);
  fail(`unknown fetch '${name}'`);
}

const MASK4 = /^(\d{1,2}|\d{1,3}(\.\d{1,3}){3})$/;

/** Checks converters in order from `type`; returns the type of the result. */
function checkConverters(expr: SampleExpr, type: SampleType): SampleType {
  let t = type;
  for (const c of expr.converters) {
    const spec = CONVERTERS.get(c.name);
    if (!spec) fail(`converter '${c.name}' is not supported by stickmesh (${[...CONVERTERS.keys()].join(', ')})`);
    if (c.args.length < spec.minArgs || c.args.length > spec.args.length) fail(`converter '${c.name}' takes ${spec.minArgs === spec.args.length ? spec.minArgs : `${spec.minArgs} to ${spec.args.length}`} argument(s), got ${c.args.length}`);
    if (c.name === 'ipmask') {
      const m4 = c.args[0]!;
      if (!MASK4.test(m4) || (INT.test(m4) ? Number(m4) > 32 : isIP(m4) !== 4)) fail(`ipmask: '${m4}' is not an IPv4 mask (0..32 or a dotted mask)`);
      const m6 = c.args[1];
      if (m6 !== undefined && (!/^\d{1,3}$/.test(m6) || Number(m6) > 128)) fail(`ipmask: '${m6}' is not an IPv6 mask (0..128)`);
    }
    // HAProxy casts int, bool and ip to strings for string converters; ipmask needs an address (or a string holding one).
    if (!spec.input.includes(t) && !(spec.input.includes('str') || (t === 'str' && spec.input.includes('ip')))) {
      fail(`converter '${c.name}' cannot take a${t === 'int' ? 'n' : ''} ${t} sample`);
    }
    t = spec.output;
  }
  return t;
}

/** Whether a fetch can run in rules of kind `ctx`; throws naming where it can. */
function checkWhere(name: string, spec: FetchSpec, ctx: RuleContext): void {
  if (spec.where.includes(ctx)) return;
  fail(`fetch '${name}' cannot be used in '${ctx}' rules: its input exists only in ${spec.where.map((w) => `'${w}'`).join(', ')} (HAProxy: the condition would never match)`);
}

/**
 * A sample expression for an action argument or a log-format `%[...]`: fetch and converters known,
 * arguments well formed, valid in `ctx`. Returns the expression with its output type.
 */
export function parseSample(text: string, ctx: RuleContext | undefined): { expr: SampleExpr; type: SampleType } {
  const expr = parseSampleText(text);
  const { spec } = resolveFetch(expr.fetch, false);
  checkArgs(expr.fetch, spec, expr.args);
  if (ctx) checkWhere(expr.fetch, spec, ctx);
  return { expr, type: checkConverters(expr, spec.type) };
}

const MATCHES: ReadonlySet<string> = new Set<AclMatch>(['str', 'beg', 'end', 'sub', 'reg', 'found', 'int', 'ip', 'bool', 'len', 'dir', 'dom']);
const INT_OPS = new Set(['eq', 'ge', 'gt', 'le', 'lt']);
const IP_PATTERN = /^([0-9a-fA-F.:]+)(?:\/(\d{1,3}|\d{1,3}(?:\.\d{1,3}){3}))?$/;

function checkIpPattern(p: string): void {
  const m = IP_PATTERN.exec(p);
  const addr = m?.[1];
  const family = addr === undefined ? 0 : isIP(addr);
  const mask = m?.[2];
  const ok = family !== 0 && (mask === undefined || (INT.test(mask) ? Number(mask) <= (family === 4 ? 32 : 128) : family === 4 && isIP(mask) === 4));
  if (!ok) fail(`'${p}' is not an IPv4 or IPv6 address or network (host names are not resolved)`);
}

function checkPatterns(match: AclMatch, patterns: string[], ignoreCase: boolean): void {
  if (match === 'int' || match === 'len') {
    for (let i = 0; i < patterns.length; i++) {
      const p = patterns[i]!;
      if (INT_OPS.has(p)) {
        const v = patterns[i + 1];
        if (v === undefined || !INT.test(v)) fail(`operator '${p}' needs an integer after it`);
        continue;
      }
      if (INT.test(p)) continue;
      const r = /^(-?\d+)?:(-?\d+)?$/.exec(p);
      if (!r || (r[1] === undefined && r[2] === undefined)) fail(`'${p}' is not an integer, a range (a:b) or an operator (eq, ge, gt, le, lt)`);
    }
  } else if (match === 'ip') {
    for (const p of patterns) checkIpPattern(p);
  } else if (match === 'reg') {
    for (const p of patterns) {
      try {
        new RegExp(p, ignoreCase ? 'i' : '');
      } catch (e) {
        fail(`regex '${p}' is invalid: ${(e as Error).message}`);
      }
    }
  }
}

/**
 * One ACL test `<criterion>[,conv...] [-i] [-n] [-m METHOD] [--] <patterns...>` (the words after
 * the ACL name, or inside `{ }`). A derived keyword (`path_beg`, `hdr_dom(host)`) is stored as
 * its fetch (`path`, `req.hdr`) with the implied match; a converter drops the keyword's match for
 * the default of the converter's output type, as HAProxy does.
 */
export function parseAclTerm(words: string[], loc: SourceLoc, warn?: (m: string) => void): AclTerm {
  const first = words[0];
  if (first === undefined) fail(`missing criterion (a sample fetch such as 'src' or 'path_beg')`);
  const sample = parseSampleText(first);
  const written = sample.fetch;
  const r = resolveFetch(written, true);
  checkArgs(written, r.spec, sample.args);
  if (r.keyword) sample.fetch = r.spec.name;
  const outType = checkConverters(sample, r.spec.type);
  let match: AclMatch = sample.converters.length > 0 ? outType : r.match;
  let ignoreCase = false;
  let i = 1;
  for (; i < words.length; i++) {
    const w = words[i]!;
    if (!w.startsWith('-')) break;
    if (w === '--') {
      i++;
      break;
    }
    if (w === '-i') ignoreCase = true;
    else if (w === '-n') continue;
    else if (w === '-m') {
      const m = words[++i];
      if (m === undefined) fail(`'-m' needs a match method (${[...MATCHES].join(', ')})`);
      if (m === 'bin') fail(`match method 'bin' is not supported by stickmesh`);
      if (!MATCHES.has(m)) fail(`unknown match method '${m}' (${[...MATCHES].join(', ')})`);
      match = m as AclMatch;
    } else if (w === '-f' || w === '-M' || w === '-u') fail(`ACL flag '${w}' is not supported by stickmesh (patterns go on the line)`);
    else fail(`'${w}' is not a valid ACL flag; put '--' before a pattern beginning with '-'`);
  }
  const patterns = words.slice(i);
  checkPatterns(match, patterns, ignoreCase);
  if (patterns.length === 0 && match !== 'found' && match !== 'bool' && warn) warn(`ACL criterion '${written}' has no pattern: it never matches`);
  return { sample, match, ignoreCase, patterns, loc };
}

const ACL_NAME = /^[A-Za-z0-9_.:-]+$/;

/** `acl NAME <term...>`: adds a term to the section's ACL of that name (several lines = OR). */
export function parseAclLine(args: string[], loc: SourceLoc, acls: Map<string, AclConfig>, list: AclConfig[], warn?: (m: string) => void): void {
  const name = args[0];
  if (name === undefined) fail(`missing ACL name`);
  if (!ACL_NAME.test(name)) fail(`invalid ACL name '${name}' (letters, digits, '-', '_', '.', ':')`);
  if (args.length < 2) fail(`ACL '${name}' needs a criterion`);
  const term = parseAclTerm(args.slice(1), loc, warn);
  const acl = acls.get(name);
  if (acl) acl.terms.push(term);
  else {
    const a: AclConfig = { name, terms: [term], loc };
    acls.set(name, a);
    list.push(a);
  }
}

/** The fetches a condition operand runs, for the context check. */
function operandFetches(op: CondOperand, acls: ReadonlyMap<string, AclConfig>): string[] {
  if (op.anon) return [op.anon.sample.fetch];
  const own = acls.get(op.acl!);
  if (own) return own.terms.map((t) => t.sample.fetch);
  return [PREDEFINED_ACLS.get(op.acl!)!.fetch];
}

/** Checks every fetch a condition runs against the rule kind it guards. */
export function checkCondWhere(cond: CondConfig, acls: ReadonlyMap<string, AclConfig>, ctx: RuleContext): void {
  for (const and of cond.or) {
    for (const op of and) {
      for (const name of operandFetches(op, acls)) {
        const spec = FETCH_BY_NAME.get(name)!;
        if (!spec.where.includes(ctx)) {
          const what = op.anon ? 'an anonymous ACL' : `ACL '${op.acl}'`;
          fail(`${what} uses fetch '${name}', which cannot be used in '${ctx}' rules (its input exists only in ${spec.where.map((w) => `'${w}'`).join(', ')})`);
        }
      }
    }
  }
}

/**
 * `if|unless <cond>` from `words[0]`: operands are the section's ACLs declared above (HAProxy
 * requires the declaration first), predefined ACLs, or `{ ... }`; `!` (also glued: `!name`)
 * negates, `or`/`||` separates alternatives, juxtaposition is AND. `ctx`, when given, is the
 * rule kind whose inputs the fetches must exist in.
 */
export function parseCond(words: string[], loc: SourceLoc, acls: ReadonlyMap<string, AclConfig>, ctx: RuleContext | undefined, warn?: (m: string) => void): CondConfig {
  const kind = words[0];
  if (kind !== 'if' && kind !== 'unless') fail(`expected 'if' or 'unless', got '${kind ?? ''}'`);
  const or: CondOperand[][] = [];
  let and: CondOperand[] = [];
  let neg = false;
  for (let i = 1; i < words.length; i++) {
    let w = words[i]!;
    while (w.startsWith('!')) {
      neg = !neg;
      w = w.slice(1);
    }
    if (w === '') continue;
    if (w.toLowerCase() === 'or' || w === '||') {
      if (and.length === 0) fail(`'${w}' needs a condition on both sides`);
      or.push(and);
      and = [];
      neg = false;
      continue;
    }
    if (w === '{') {
      let end = i + 1;
      while (end < words.length && words[end] !== '}') end++;
      if (end >= words.length) fail(`missing closing '}' in condition`);
      const term = parseAclTerm(words.slice(i + 1, end), loc, warn);
      and.push({ negate: neg, anon: term });
      i = end;
    } else if (w === '}') {
      fail(`'}' without '{' in condition`);
    } else {
      if (!acls.has(w) && !PREDEFINED_ACLS.has(w)) fail(`no such ACL: '${w}' (declare it with 'acl ${w} ...' above this line)`);
      and.push({ negate: neg, acl: w });
    }
    neg = false;
  }
  if (and.length === 0) fail(or.length === 0 ? `missing condition after '${kind}'` : `'or' at the end of the condition`);
  or.push(and);
  const cond: CondConfig = { kind, or, loc };
  if (ctx) checkCondWhere(cond, acls, ctx);
  return cond;
}

/** Log-format variables stickmesh fills: client ip/port, frontend ip/port, frontend and backend names. */
export const LOG_FORMAT_VARS: readonly string[] = ['ci', 'cp', 'fi', 'fp', 'f', 'b'];

/** A log-format string: literal text, `%[sample]`, `%%`, and the variables of LOG_FORMAT_VARS. */
export function parseLogFormat(s: string, ctx: RuleContext): LogFormatPart[] {
  const parts: LogFormatPart[] = [];
  let lit = '';
  const flush = (): void => {
    if (lit !== '') parts.push({ lit });
    lit = '';
  };
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '%') {
      lit += c;
      continue;
    }
    const n = s[i + 1];
    if (n === '%') {
      lit += '%';
      i++;
    } else if (n === '[') {
      const end = s.indexOf(']', i + 2);
      if (end === -1) fail(`missing ']' after '%[' in '${s}'`);
      flush();
      parts.push({ sample: parseSample(s.slice(i + 2, end), ctx).expr });
      i = end;
    } else if (n === '{') {
      fail(`log-format flags ('%{...}') are not supported by stickmesh`);
    } else {
      const m = /^[A-Za-z]+/.exec(s.slice(i + 1));
      if (!m) fail(`'%' must be followed by '[', '%' or a variable name in '${s}' (write '%%' for a literal '%')`);
      const v = m[0];
      if (!LOG_FORMAT_VARS.includes(v)) fail(`log-format variable '%${v}' is not supported by stickmesh (${LOG_FORMAT_VARS.map((x) => `%${x}`).join(' ')})`);
      flush();
      parts.push({ var: v });
      i += v.length;
    }
  }
  flush();
  return parts;
}

// ------------------------------------------------------------------ stored data types

/** `gpc(N)`, `gpt(N)`, `gpc_rate(N,p)`: at most this many elements (HAProxy's limit). */
export const MAX_ARRAY_ELEMENTS = 100;

/** What one `store` element declares, before expansion. */
interface StoreItem {
  kind: StoredType['kind'];
  count: number;
  first: number;
  period: number;
  /** Which family it belongs to, for HAProxy's mixing rules: `gpc`/`gpt` arrays exclude gpc0/gpc1/gpt0. */
  family?: 'gpc' | 'gpc0' | 'gpc_rate' | 'gpc0_rate' | 'gpt' | 'gpt0';
}

const PLAIN = new Set(['conn_cnt', 'conn_cur', 'sess_cnt', 'http_req_cnt', 'http_err_cnt', 'http_fail_cnt', 'bytes_in_cnt', 'bytes_out_cnt']);
const RATES = new Set(['conn_rate', 'sess_rate', 'http_req_rate', 'http_err_rate', 'http_fail_rate', 'bytes_in_rate', 'bytes_out_rate']);

function period(text: string | undefined, what: string): number {
  const v = parseTime(text ?? '');
  if (typeof v === 'string' || v <= 0) fail(`'${what}' needs a period greater than 0 (e.g. 10s), got '${text ?? ''}'`);
  return v;
}

function count(text: string | undefined, what: string): number {
  if (text === undefined || !/^\d+$/.test(text) || Number(text) < 1 || Number(text) > MAX_ARRAY_ELEMENTS) fail(`'${what}' needs a number of elements from 1 to ${MAX_ARRAY_ELEMENTS}, got '${text ?? ''}'`);
  return Number(text);
}

/** One `store` element, or undefined for `server_id` (always available in stickmesh). */
function storeItem(text: string): StoreItem | undefined {
  const { name, args } = call(text, 'stored data type');
  const noArgs = (): void => {
    if (args.length > 0 || text.includes('(')) fail(`'${name}' takes no argument`);
  };
  const nArgs = (n: number): void => {
    if (args.length !== n) fail(`'${name}' takes ${n} argument${n === 1 ? '' : 's'} (${name === 'gpc_rate' ? 'gpc_rate(N,period)' : `${name}(${n === 1 && name.endsWith('rate') ? 'period' : 'N'})`})`);
  };
  if (name === 'server_id') {
    noArgs();
    return undefined;
  }
  if (PLAIN.has(name)) {
    noArgs();
    return { kind: name as StoredType['kind'], count: 1, first: 0, period: 0 };
  }
  if (RATES.has(name)) {
    nArgs(1);
    return { kind: name as StoredType['kind'], count: 1, first: 0, period: period(args[0], name) };
  }
  switch (name) {
    case 'gpc0':
    case 'gpc1':
      noArgs();
      return { kind: 'gpc', count: 1, first: name === 'gpc0' ? 0 : 1, period: 0, family: 'gpc0' };
    case 'gpc0_rate':
    case 'gpc1_rate':
      nArgs(1);
      return { kind: 'gpc_rate', count: 1, first: name === 'gpc0_rate' ? 0 : 1, period: period(args[0], name), family: 'gpc0_rate' };
    case 'gpt0':
      noArgs();
      return { kind: 'gpt', count: 1, first: 0, period: 0, family: 'gpt0' };
    case 'gpc':
    case 'gpt':
      nArgs(1);
      return { kind: name, count: count(args[0], name), first: 0, period: 0, family: name };
    case 'gpc_rate':
      nArgs(2);
      return { kind: 'gpc_rate', count: count(args[0], name), first: 0, period: period(args[1], name), family: 'gpc_rate' };
  }
  fail(`stored data type '${name}' is not supported by stickmesh`);
}

const EXCLUSIVE: ReadonlyArray<[StoreItem['family'], StoreItem['family'], string, string]> = [
  ['gpc', 'gpc0', 'gpc', 'gpc0/gpc1'],
  ['gpc_rate', 'gpc0_rate', 'gpc_rate', 'gpc0_rate/gpc1_rate'],
  ['gpt', 'gpt0', 'gpt', 'gpt0'],
];

/**
 * Expands `store` values (each a comma list, `store` may be repeated) into one StoredType per
 * element, in order; a repeated element keeps its first declaration and warns, as HAProxy does.
 * Mixing an array (`gpc(N)`) with its legacy elements (`gpc0`) is an error, as in HAProxy.
 */
export function parseStore(values: string[], warn: (m: string) => void): { raw: string[]; data: StoredType[] } {
  const raw: string[] = [];
  const data: StoredType[] = [];
  const seen = new Set<string>();
  const families = new Set<StoreItem['family']>();
  for (const v of values) {
    for (const text of splitTopLevel(v)) {
      if (text === '') fail(`empty stored data type in '${v}'`);
      raw.push(text);
      const it = storeItem(text);
      if (!it) continue;
      if (it.family) families.add(it.family);
      for (let k = it.first; k < it.first + it.count; k++) {
        const id = `${it.kind}:${k}`;
        if (seen.has(id)) {
          warn(`stored data type '${text}' is already enabled; ignored`);
          continue;
        }
        seen.add(id);
        data.push({ kind: it.kind, idx: k, period: it.period });
      }
    }
  }
  for (const [a, b, an, bn] of EXCLUSIVE) {
    if (families.has(a) && families.has(b)) fail(`'${an}' and '${bn}' cannot be stored in the same table ('${an}' replaces them)`);
  }
  return { raw, data };
}

// ------------------------------------------------------------------ actions

/** Status codes HAProxy has a built-in error page for: `deny`/`tarpit` without a body accept only these. */
const DEFAULT_ERROR_PAGES = new Set([200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504]);

const REPLY_UNSUPPORTED = new Set(['errorfiles', 'file', 'lf-file', 'lf-string', 'default-errorfiles', 'hdr']);

function status(text: string | undefined, what: string): number {
  if (text === undefined || !/^\d{3}$/.test(text) || Number(text) < 200 || Number(text) > 599) fail(`'${what}' needs a status code from 200 to 599, got '${text ?? ''}'`);
  return Number(text);
}

/** Where a parsed action stopped: the action and the index of the first word after it. */
interface Parsed {
  action: RuleAction;
  next: number;
}

const isCond = (w: string | undefined): boolean => w === 'if' || w === 'unless';

/**
 * `deny|tarpit|return` reply options: `[deny_status|status N] [content-type T string S | errorfile FILE]`.
 * An errorfile is read and checked here, at load, as the `errorfile` directive's; its own status
 * line then gives the status (HAProxy sends the file whatever `status` says).
 */
function reply(w: string[], i: number, type: 'deny' | 'tarpit' | 'return', defaultStatus: number, label: string): Parsed {
  let st = defaultStatus;
  let contentType: string | undefined;
  let body: string | undefined;
  let errorfile: { file: string; response: string } | undefined;
  let fileStatus: number | undefined;
  for (; i < w.length && !isCond(w[i]); i++) {
    const k = w[i]!;
    if (k === 'deny_status' || k === 'status') st = status(w[++i], k);
    else if (k === 'errorfile') {
      const file = w[++i];
      if (file === undefined || isCond(file)) fail(`'errorfile' needs a file`);
      const r = readErrorFile(file);
      if ('error' in r) fail(r.error);
      errorfile = { file, response: r.response };
      fileStatus = r.status;
    }
    else if (k === 'content-type' && type !== 'tarpit') {
      contentType = w[++i];
      if (contentType === undefined || contentType === '') fail(`'content-type' needs a value`);
    } else if (k === 'string' && type !== 'tarpit') {
      body = w[++i];
      if (body === undefined) fail(`'string' needs a value`);
    } else if (REPLY_UNSUPPORTED.has(k)) fail(`'${label} ... ${k}' is not supported by stickmesh (use 'content-type TYPE string TEXT' or 'errorfile FILE')`);
    else fail(`unexpected '${k}' in '${label}'`);
  }
  if (errorfile !== undefined) {
    if (body !== undefined || contentType !== undefined) fail(`'${label}': 'errorfile' gives the whole response; it cannot be combined with 'content-type' or 'string'`);
    return { action: { type, status: fileStatus ?? st, errorfile }, next: i };
  }
  if (body !== undefined && body !== '' && contentType === undefined) fail(`'string' needs a 'content-type' (HAProxy requires one for a body)`);
  if (type !== 'return' && body === undefined && !DEFAULT_ERROR_PAGES.has(st)) fail(`status ${st} has no default error page; give a body with 'content-type TYPE string TEXT'`);
  if (body === undefined) contentType = undefined;
  const action: RuleAction = type === 'tarpit' ? { type, status: st } : { type, status: st, ...(contentType !== undefined ? { contentType } : {}), ...(body !== undefined ? { body } : {}) };
  return { action, next: i };
}

function headerName(v: string | undefined, what: string): string {
  if (v === undefined || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(v)) fail(`'${what}' needs a header name, got '${v ?? ''}'`);
  return v;
}

/** `sc-inc-gpc0(N)`, `sc-set-gpt(idx,N)` ...: the sticky counter and array index of the action word. */
function scAction(word: string): { op: 'inc' | 'set'; sc: ScIndex; idx: number } | undefined {
  const m = /^sc-(inc-gpc|set-gpt)(0|1)?\(([^)]*)\)$/.exec(word);
  if (!m) return undefined;
  const op = m[1] === 'inc-gpc' ? 'inc' : 'set';
  if (op === 'set' && m[2] === '1') return undefined;
  const args = m[3]!.split(',');
  let idx: number;
  let scText: string;
  if (m[2] !== undefined) {
    if (args.length !== 1) fail(`'${word}' takes the sticky counter number only`);
    idx = Number(m[2]);
    scText = args[0]!;
  } else {
    if (args.length !== 2) fail(`'${word}' takes (index,counter)`);
    if (!/^\d{1,2}$/.test(args[0]!)) fail(`'${word}': index '${args[0]}' must be 0 to 99`);
    idx = Number(args[0]);
    scText = args[1]!;
  }
  if (!/^\d+$/.test(scText)) fail(`'${word}': '${scText}' is not a sticky counter number`);
  const sc = Number(scText);
  if (sc > 2) fail(`'${word}': sticky counter ${sc} exceeds 2 (sc0, sc1, sc2)`);
  return { op, sc: sc as ScIndex, idx };
}

/** Actions each rule kind accepts (beyond the sc-* forms, accepted everywhere). */
const ACTIONS: Record<RuleContext, ReadonlySet<string>> = {
  'http-request': new Set(['allow', 'deny', 'tarpit', 'return', 'reject', 'set-header', 'add-header', 'del-header', 'redirect', 'track-sc0', 'track-sc1', 'track-sc2']),
  'http-response': new Set(['allow', 'deny', 'set-header', 'add-header', 'del-header', 'track-sc0', 'track-sc1', 'track-sc2']),
  'tcp-request connection': new Set(['accept', 'reject', 'track-sc0', 'track-sc1', 'track-sc2']),
  'tcp-request content': new Set(['accept', 'reject', 'track-sc0', 'track-sc1', 'track-sc2']),
};

function action(w: string[], ctx: RuleContext): Parsed {
  const name = w[0];
  if (name === undefined) fail(`missing action (${[...ACTIONS[ctx]].join(', ')}, sc-inc-gpc0(N), sc-set-gpt0(N) ...)`);
  const sc = scAction(name);
  if (sc) {
    if (sc.op === 'inc') return { action: { type: 'sc-inc-gpc', sc: sc.sc, idx: sc.idx }, next: 1 };
    const v = w[1];
    if (v === undefined || isCond(v)) fail(`'${name}' needs a value (an integer or a sample expression)`);
    const value = INT.test(v) ? Number(v) : parseSample(v, ctx).expr;
    if (typeof value === 'number' && value < 0) fail(`'${name}': ${value} is negative (tags are unsigned)`);
    return { action: { type: 'sc-set-gpt', sc: sc.sc, idx: sc.idx, value }, next: 2 };
  }
  if (/^track-sc\d+$/.test(name) && !ACTIONS[ctx].has(name)) fail(`'${name}': sticky counter number exceeds 2 (track-sc0, track-sc1, track-sc2)`);
  if (!ACTIONS[ctx].has(name)) fail(`'${ctx} ${name}' is not supported by stickmesh (${[...ACTIONS[ctx]].join(', ')}, sc-inc-gpc0(N), sc-inc-gpc1(N), sc-inc-gpc(I,N), sc-set-gpt0(N), sc-set-gpt(I,N))`);
  const label = `${ctx} ${name}`;
  switch (name) {
    case 'allow':
    case 'accept':
      return { action: { type: 'allow' }, next: 1 };
    case 'reject':
      return { action: { type: 'reject' }, next: 1 };
    case 'deny':
      return reply(w, 1, 'deny', ctx === 'http-response' ? 502 : 403, label);
    case 'tarpit':
      return reply(w, 1, 'tarpit', 500, label);
    case 'return':
      return reply(w, 1, 'return', 200, label);
    case 'set-header':
    case 'add-header': {
      const h = headerName(w[1], label);
      const fmt = w[2];
      if (fmt === undefined || isCond(fmt) && w.length === 3) fail(`'${label}' needs a header name and a value`);
      return { action: { type: name, name: h, value: parseLogFormat(fmt, ctx) }, next: 3 };
    }
    case 'del-header': {
      const h = headerName(w[1], label);
      if (w[2] === '-m') fail(`'${label} ... -m' is not supported by stickmesh (exact names only)`);
      return { action: { type: 'del-header', name: h }, next: 2 };
    }
    case 'redirect': {
      // HAProxy takes the words in any order: `redirect code 301 location /x drop-query`.
      let kind: 'location' | 'prefix' | 'scheme' | undefined;
      let value: LogFormatPart[] = [];
      let code = 302;
      let dropQuery = false;
      let i = 1;
      for (; i < w.length && !isCond(w[i]); i++) {
        const o = w[i]!;
        if (o === 'location' || o === 'prefix' || o === 'scheme') {
          if (kind !== undefined) fail(`'${label}' takes one of location, prefix or scheme`);
          const fmt = w[++i];
          if (fmt === undefined) fail(`'${label} ${o}' needs a value`);
          kind = o;
          value = parseLogFormat(fmt, ctx);
        } else if (o === 'code') {
          const c = w[++i];
          if (c === undefined || !['301', '302', '303', '307', '308'].includes(c)) fail(`'code' must be 301, 302, 303, 307 or 308, got '${c ?? ''}'`);
          code = Number(c);
        } else if (o === 'drop-query') dropQuery = true;
        else if (o === 'append-slash' || o === 'set-cookie' || o === 'clear-cookie' || o === 'ignore-empty' || o === 'keep-query') fail(`redirect option '${o}' is not supported by stickmesh (code, drop-query)`);
        else fail(`unexpected '${o}' in '${label}'`);
      }
      if (kind === undefined) fail(`'${label}' needs 'location', 'prefix' or 'scheme'`);
      return { action: { type: 'redirect', kind, value, code, dropQuery }, next: i };
    }
  }
  // track-sc0..2
  const n = Number(name.slice('track-sc'.length)) as ScIndex;
  const key = w[1];
  if (key === undefined || isCond(key)) fail(`'${label}' needs a sample to track (e.g. src)`);
  const sample = parseSample(key, ctx).expr;
  let i = 2;
  let table: string | undefined;
  if (w[i] === 'table') {
    table = w[i + 1];
    if (table === undefined || isCond(table)) fail(`'table' needs a table name (a proxy with a stick-table, or PEERS/TABLE)`);
    i += 2;
  }
  return { action: { type: 'track-sc', sc: n, sample, ...(table !== undefined ? { table } : {}) }, next: i };
}

/**
 * One rule: the words after `http-request`, `http-response`, `tcp-request connection` or
 * `tcp-request content`: an action with its arguments, then `[if|unless cond]`.
 */
export function parseRule(words: string[], ctx: RuleContext, loc: SourceLoc, acls: ReadonlyMap<string, AclConfig>, warn?: (m: string) => void): RuleConfig {
  const { action: a, next } = action(words, ctx);
  const rest = words.slice(next);
  if (rest.length === 0) return { action: a, loc };
  if (!isCond(rest[0])) fail(`unexpected '${rest[0]}' after '${ctx} ${words[0]}' (a condition starts with 'if' or 'unless')`);
  return { action: a, cond: parseCond(rest, loc, acls, ctx, warn), loc };
}
