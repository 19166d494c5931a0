/**
 * Rule actions: each `RuleConfig` of a section is compiled once, at config load or reload, into
 * a `Rule` (condition closure, action kind, prebuilt reply or header name, compiled samples), and
 * `runRules` runs a list of them against a connection's `RuleStream`.
 *
 * A list runs in order; a rule whose condition fails is skipped. `allow` stops the list (the
 * next list, e.g. the backend's after the frontend's, still runs). A final action (`deny`,
 * `tarpit`, `return`, `redirect`, `reject`) stops every list: `runRules` returns the rule and
 * the connection answers (http/client-conn.ts, tcp/tcp-conn.ts, proxy.ts for connection rules).
 * Header edits, tracking and `sc-*` actions apply and the list goes on.
 *
 * Which actions each rule set accepts (anything else is a RuleCompileError with the rule's
 * file:line): `tcp-request connection` and `tcp-request content`: allow (accept), reject,
 * track-sc, sc-inc-gpc, sc-set-gpt; `http-request`: those plus deny, tarpit, return, redirect,
 * set-header, add-header, del-header; `http-response`: allow, deny, set-header, add-header,
 * del-header, track-sc (for the exchange, the request not counted again), sc-inc-gpc, sc-set-gpt.
 */
import type { RuleConfig, SampleExpr, SourceLoc } from '@stickmesh/core';
import { compileCond } from './acl.js';
import { compileLogFormat } from './log-format.js';
import { compileSample } from './sample.js';
import { ErrorFileReply, FixedReply, denyReply, type Reply } from './replies.js';
import type { ErrorPages } from '../http/responses.js';
import type { RuleStream } from './stream.js';
import { trackTable, type TrackTable, type Tracker } from './track.js';
import { RuleCompileError, type CompileEnv, type CompiledCond, type CompiledSample, type SampleSource, type SampleValue } from './types.js';

export const enum Act {
  Allow,
  Deny,
  Tarpit,
  Return,
  Redirect,
  Reject,
  ReqSetHeader,
  ReqAddHeader,
  ReqDelHeader,
  ResSetHeader,
  ResAddHeader,
  ResDelHeader,
  /** track-scN in a stream-level list (tcp-request content in HTTP mode, http-request): counts the request. */
  TrackRequest,
  /** track-scN for the exchange without counting the request (http-response). */
  TrackResponse,
  /** track-scN without a request to count (tcp-request connection, tcp-request content in TCP mode). */
  TrackConnection,
  IncGpc,
  SetGpt,
}

/** Which list a rule belongs to (decides the accepted actions and what tracking means). */
export const enum RuleList {
  TcpConnection,
  TcpContent,
  HttpRequest,
  HttpResponse,
}

export const enum RedirectKind {
  Location,
  Prefix,
  Scheme,
}

/** One compiled rule. One shape for every action, so the run loop stays monomorphic. */
export class Rule {
  /** `file:line` of the rule, for logs. */
  readonly where: string;
  /** Fixed reply of deny, tarpit, return. */
  reply: Reply | undefined = undefined;
  /**
   * deny/tarpit with the built-in page because the rule's section has no `errorfile` for its
   * status: the frontend's errorfile, if it has one, is sent instead (HAProxy looks there next).
   */
  frontendErrorFile = false;
  /** Status of deny/tarpit/return, code of redirect. */
  status = 0;
  /** How long `tarpit` holds the request (ms). */
  tarpitMs = 0;
  /** Header name as written and in lower case (header actions). */
  header = '';
  headerLower = '';
  /** Header value, redirect location/prefix/scheme. */
  text: ((src: SampleSource) => string) | undefined = undefined;
  redirect = RedirectKind.Location;
  dropQuery = false;
  /** Sticky counter index of track-sc and sc-* actions. */
  sc = 0;
  /** Table of track-sc; null when the table stores no counters (tracking is then a no-op). */
  track: TrackTable | null = null;
  key: CompiledSample | undefined = undefined;
  /** gpc / gpc_rate of sc-inc-gpc, gpt of sc-set-gpt: resolved per tracked table at run time. */
  idx = 0;
  gptValue: CompiledSample | number = 0;

  constructor(
    readonly act: Act,
    readonly cond: CompiledCond | undefined,
    readonly loc: SourceLoc,
  ) {
    this.where = `${loc.file}:${loc.line}`;
  }
}

/** Header names rules may not set, add or delete: the proxy owns message framing. */
const FRAMING = new Set(['content-length', 'transfer-encoding']);
/** Hop-by-hop names rules may delete (a no-op: never forwarded) but not set or add. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'trailer']);

const LIST_NAMES = ['tcp-request connection', 'tcp-request content', 'http-request', 'http-response'];

function unsupported(list: RuleList, cfg: RuleConfig): RuleCompileError {
  return new RuleCompileError(`'${LIST_NAMES[list]} ${cfg.action.type}' is not supported`, cfg.loc);
}

/** Options of the section a rule list belongs to. */
export interface ListOptions {
  list: RuleList;
  /** The section's `timeout tarpit` (default its `timeout connect`). */
  tarpitMs: number;
  /** The section's mode: in TCP mode `tcp-request content` tracking counts no request. */
  http: boolean;
  /** The section's `errorfile` pages: deny and tarpit without a body of their own send them. */
  errorPages?: ErrorPages;
}

/** The reply of deny/tarpit without a body: the section's errorfile for `status`, else the built-in page. */
function defaultReply(r: Rule, status: number, opts: ListOptions): Reply {
  const page = opts.errorPages?.get(status);
  if (page !== undefined) return new ErrorFileReply(status, page);
  r.frontendErrorFile = true;
  return denyReply(status);
}

/** A rule's own `errorfile FILE` (read at load): sent as written, then the connection closes. */
function fileReply(status: number, response: string): Reply {
  return new ErrorFileReply(status, Buffer.from(response, 'latin1'));
}

/** Compiles one rule list; throws RuleCompileError (file:line) for what cannot run. */
export function compileRules(rules: readonly RuleConfig[], env: CompileEnv, opts: ListOptions): Rule[] {
  return rules.map((r) => compileRule(r, env, opts));
}

function compileRule(cfg: RuleConfig, env: CompileEnv, opts: ListOptions): Rule {
  const a = cfg.action;
  const list = opts.list;
  const cond = cfg.cond ? compileCond(cfg.cond, env) : undefined;
  const isHttpReq = list === RuleList.HttpRequest;
  const isRes = list === RuleList.HttpResponse;
  switch (a.type) {
    case 'allow':
      return new Rule(Act.Allow, cond, cfg.loc);
    case 'reject': {
      if (isRes) throw unsupported(list, cfg);
      return new Rule(Act.Reject, cond, cfg.loc);
    }
    case 'deny': {
      if (!isHttpReq && !isRes) throw unsupported(list, cfg);
      const r = new Rule(Act.Deny, cond, cfg.loc);
      r.status = a.status;
      r.reply =
        a.errorfile !== undefined
          ? fileReply(a.status, a.errorfile.response)
          : a.body !== undefined
            ? new FixedReply(a.status, a.contentType ?? 'text/plain', a.body, false)
            : defaultReply(r, a.status, opts);
      return r;
    }
    case 'tarpit': {
      if (!isHttpReq) throw unsupported(list, cfg);
      const r = new Rule(Act.Tarpit, cond, cfg.loc);
      r.status = a.status;
      r.reply = a.errorfile !== undefined ? fileReply(a.status, a.errorfile.response) : defaultReply(r, a.status, opts);
      r.tarpitMs = opts.tarpitMs;
      return r;
    }
    case 'return': {
      if (!isHttpReq) throw unsupported(list, cfg);
      if (a.body !== undefined && a.body.length > 0 && a.contentType === undefined) {
        throw new RuleCompileError("'http-request return': a body needs a content-type", cfg.loc);
      }
      const r = new Rule(Act.Return, cond, cfg.loc);
      r.status = a.status;
      r.reply = a.errorfile !== undefined ? fileReply(a.status, a.errorfile.response) : new FixedReply(a.status, a.contentType, a.body, false);
      return r;
    }
    case 'redirect': {
      if (!isHttpReq) throw unsupported(list, cfg);
      if (![301, 302, 303, 307, 308].includes(a.code)) throw new RuleCompileError(`redirect code ${a.code}: expected 301, 302, 303, 307 or 308`, cfg.loc);
      const r = new Rule(Act.Redirect, cond, cfg.loc);
      r.status = a.code;
      r.redirect = a.kind === 'location' ? RedirectKind.Location : a.kind === 'prefix' ? RedirectKind.Prefix : RedirectKind.Scheme;
      r.text = compileLogFormat(a.value, env);
      r.dropQuery = a.dropQuery;
      return r;
    }
    case 'set-header':
    case 'add-header':
    case 'del-header': {
      if (!isHttpReq && !isRes) throw unsupported(list, cfg);
      const lower = a.name.toLowerCase();
      if (FRAMING.has(lower)) throw new RuleCompileError(`'${a.type} ${a.name}': the proxy sets the message framing; this header cannot be edited`, cfg.loc);
      if (a.type !== 'del-header' && HOP.has(lower)) throw new RuleCompileError(`'${a.type} ${a.name}': hop-by-hop header, never forwarded`, cfg.loc);
      if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(a.name)) throw new RuleCompileError(`'${a.type}': invalid header name '${a.name}'`, cfg.loc);
      const act =
        a.type === 'set-header'
          ? isRes ? Act.ResSetHeader : Act.ReqSetHeader
          : a.type === 'add-header'
            ? isRes ? Act.ResAddHeader : Act.ReqAddHeader
            : isRes ? Act.ResDelHeader : Act.ReqDelHeader;
      const r = new Rule(act, cond, cfg.loc);
      r.header = a.name;
      r.headerLower = lower;
      if (a.type !== 'del-header') r.text = compileLogFormat(a.value, env);
      return r;
    }
    case 'track-sc': {
      const tableId = a.table ?? env.ownTable;
      if (tableId === undefined) throw new RuleCompileError(`'track-sc${a.sc} ${a.sample.text}': no table (this section has no stick-table; name one with 'table')`, cfg.loc);
      const counters = env.tables.counters(tableId);
      const stream = list === RuleList.HttpRequest || (list === RuleList.TcpContent && opts.http);
      const r = new Rule(isRes ? Act.TrackResponse : stream ? Act.TrackRequest : Act.TrackConnection, cond, cfg.loc);
      r.sc = a.sc;
      r.track = counters ? trackTable(counters) : null;
      r.key = compileSample(a.sample, env);
      if (counters === undefined && !tableExists(env, tableId)) throw new RuleCompileError(`'track-sc${a.sc}': table '${tableId}' does not exist`, cfg.loc);
      return r;
    }
    case 'sc-inc-gpc': {
      const r = new Rule(Act.IncGpc, cond, cfg.loc);
      r.sc = a.sc;
      r.idx = a.idx;
      return r;
    }
    case 'sc-set-gpt': {
      const r = new Rule(Act.SetGpt, cond, cfg.loc);
      r.sc = a.sc;
      r.idx = a.idx;
      r.gptValue = typeof a.value === 'number' ? a.value : compileSample(a.value as SampleExpr, env);
      return r;
    }
  }
}

function tableExists(env: CompileEnv, id: string): boolean {
  return env.tables.has?.(id) ?? true;
}

/** The text of a sample as a table key; undefined when absent (nothing is tracked). */
export function keyText(v: SampleValue): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : undefined;
  return v ? '1' : '0';
}

/**
 * Runs `list` against `s`: returns the final rule that ends the request or connection (deny,
 * tarpit, return, redirect, reject), or null when the list ran out or `allow` stopped it.
 */
export function runRules(list: readonly Rule[], s: RuleStream): Rule | null {
  for (let i = 0; i < list.length; i++) {
    const r = list[i]!;
    if (r.cond !== undefined && !r.cond(s)) continue;
    switch (r.act) {
      case Act.Allow:
        return null;
      case Act.Deny:
      case Act.Tarpit:
      case Act.Return:
      case Act.Redirect:
      case Act.Reject:
        return r;
      case Act.ReqSetHeader:
        s.reqDelete(r.headerLower);
        s.reqAdd(r.header, headerValue(r.text!(s)));
        break;
      case Act.ReqAddHeader:
        s.reqAdd(r.header, headerValue(r.text!(s)));
        break;
      case Act.ReqDelHeader:
        s.reqDelete(r.headerLower);
        break;
      case Act.ResSetHeader:
        s.resDelete(r.headerLower);
        s.resAdd(r.header, headerValue(r.text!(s)));
        break;
      case Act.ResAddHeader:
        s.resAdd(r.header, headerValue(r.text!(s)));
        break;
      case Act.ResDelHeader:
        s.resDelete(r.headerLower);
        break;
      case Act.TrackRequest:
      case Act.TrackResponse:
      case Act.TrackConnection:
        track(r, s);
        break;
      case Act.IncGpc: {
        const t = s.sc[r.sc] as Tracker | undefined;
        if (t === undefined) break;
        const tt = t.tt!;
        const col = tt.gpc(r.idx);
        if (col >= 0) tt.counters.add(t.slot, col, 1);
        const rate = tt.gpcRate(r.idx);
        if (rate >= 0) tt.counters.add(t.slot, rate, 1);
        break;
      }
      case Act.SetGpt: {
        const t = s.sc[r.sc] as Tracker | undefined;
        if (t === undefined) break;
        const tt = t.tt!;
        const col = tt.gpt(r.idx);
        if (col < 0) break;
        const v = typeof r.gptValue === 'number' ? r.gptValue : r.gptValue(s);
        if (typeof v === 'number' && Number.isFinite(v)) tt.counters.set(t.slot, col, Math.trunc(v));
        else if (typeof v === 'string' && /^-?\d+$/.test(v)) tt.counters.set(t.slot, col, Number(v));
        break;
      }
    }
  }
  return null;
}

/**
 * track-scN: the first tracking of an index wins (for the stream, or for the connection in
 * connection rules); a key the table refuses (wrong type, table full of tracked keys) tracks
 * nothing, as in HAProxy.
 */
function track(r: Rule, s: RuleStream): void {
  const tt = r.track;
  if (tt === null) return;
  const t = r.act === Act.TrackConnection ? s.sess[r.sc]! : s.strm[r.sc]!;
  if (t.tt !== null) return;
  const key = keyText(r.key!(s));
  if (key === undefined || !t.start(tt, key)) return;
  if (r.act === Act.TrackRequest) t.countRequest();
  s.refreshSc(r.sc);
}

/** A header value from a sample: CR, LF and NUL (never in a parsed header) become spaces. */
function headerValue(v: string): string {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 13 || c === 10 || c === 0) return v.replace(/[\r\n\0]/g, ' ');
  }
  return v;
}

/** `cond` as a predicate for `use_backend`: undefined means always. */
export function compileUseCond(cond: RuleConfig['cond'], env: CompileEnv): CompiledCond | undefined {
  return cond ? compileCond(cond, env) : undefined;
}

/**
 * The Location of a redirect rule for the request `s` holds, built as HAProxy 2.6 does:
 * `location L`: L as evaluated; `prefix P`: P followed by the request's path and query (the
 * path alone with `drop-query`; P = "/" gives the path alone); `scheme S`: `S://`, the Host
 * header's value (empty when absent), then path and query.
 */
export function redirectLocation(r: Rule, s: RuleStream): string {
  const v = r.text!(s);
  if (r.redirect === RedirectKind.Location) return v;
  const http = s.http!;
  let uri = http.target;
  if (uri.charCodeAt(0) !== 47 /* / */) {
    // absolute form (scheme://authority/path): the path part, "/" when there is none
    const at = uri.indexOf('://');
    const slash = at === -1 ? -1 : uri.indexOf('/', at + 3);
    uri = slash === -1 ? '/' : uri.slice(slash);
  }
  if (r.dropQuery) {
    const q = uri.indexOf('?');
    if (q !== -1) uri = uri.slice(0, q);
  }
  if (r.redirect === RedirectKind.Prefix) return v === '/' ? uri : v + uri;
  let host = '';
  for (let i = 0; i < http.headerCount; i++) {
    if (http.headerNameIs(i, 'host')) {
      host = http.headerValue(i);
      break;
    }
  }
  return `${v}://${host}${uri}`;
}
