/**
 * A backend's stick rules (`stick on|match|store-request|store-response`), bound to their tables.
 *
 * Order, as HAProxy: cookie persistence first (runtime/decide.ts); then `match` rules in config order —
 * the first key found in its table that names a usable server wins; an entry naming an unknown or
 * down server is ignored and the request balanced, and the store rules then overwrite it.
 * `store-request` keys are taken from the request and written once the server is known (connection
 * established), so the table records the server actually used; `store-response` keys are taken from
 * the response. `stick on X` is `match X` + `store-request X`. One store per table per request.
 *
 * First assignment: with match rules and no entry, the server is chosen by rendezvous hashing of the
 * first match key over the healthy candidates (weights respected), not by the backend's balancer,
 * so two nodes that see the same new client at the same moment choose the same server.
 */
import type { BackendConfig, StickRuleConfig, StickTable } from '@stickmesh/core';
import { hashString } from '@stickmesh/core';
import { nameIs } from '../http/head.js';
import type { RuntimeServer } from './server.js';
import type { DecideStep } from './decide-trace.js';

export const enum Fetch {
  Src,
  Dst,
  ReqCookie,
  ResCookie,
  ReqHeader,
  ResHeader,
}

export interface StickRule {
  readonly kind: StickRuleConfig['kind'];
  readonly fetch: Fetch;
  /** Cookie name, or lower-case header name. */
  readonly arg: string;
  readonly table: StickTable;
}

/** What a connection can tell about the request, for key extraction. */
export interface StickKeySource {
  readonly clientIp: string;
  readonly localIp: string;
  /** Last value of a request header (lower-case name), if any. */
  requestHeader?(lower: string): string | undefined;
  /** Value of a request cookie, if any. */
  requestCookie?(name: string): string | undefined;
}

function parseFetch(pattern: string): { fetch: Fetch; arg: string } {
  if (pattern === 'src' || pattern === 'src6') return { fetch: Fetch.Src, arg: '' };
  if (pattern === 'dst') return { fetch: Fetch.Dst, arg: '' };
  const m = /^(req|res)\.(cook|hdr)\(([^)]+)\)$/.exec(pattern);
  if (!m) throw new Error(`unsupported stick pattern '${pattern}'`);
  const req = m[1] === 'req';
  if (m[2] === 'cook') return { fetch: req ? Fetch.ReqCookie : Fetch.ResCookie, arg: m[3]! };
  return { fetch: req ? Fetch.ReqHeader : Fetch.ResHeader, arg: m[3]!.toLowerCase() };
}

/** Finds `name=value` in a Cookie header value; undefined when absent or empty. */
export function cookieValue(header: string, name: string): string | undefined {
  let pos = 0;
  while (pos < header.length) {
    while (header.charCodeAt(pos) === 32 || header.charCodeAt(pos) === 9) pos++;
    let semi = header.indexOf(';', pos);
    if (semi === -1) semi = header.length;
    const eq = header.indexOf('=', pos);
    if (eq !== -1 && eq < semi && eq - pos === name.length && header.startsWith(name, pos)) {
      const v = header.slice(eq + 1, semi).trim();
      return v.length > 0 ? v : undefined;
    }
    pos = semi + 1;
  }
  return undefined;
}

/** Value of cookie `name` set by a Set-Cookie header value, if this header sets it. */
export function setCookieValue(header: string, name: string): string | undefined {
  const eq = header.indexOf('=');
  if (eq === -1 || header.slice(0, eq).trim() !== name) return undefined;
  let end = header.indexOf(';', eq);
  if (end === -1) end = header.length;
  const v = header.slice(eq + 1, end).trim();
  return v.length > 0 ? v : undefined;
}

export class StickRules {
  readonly match: StickRule[] = [];
  readonly storeRequest: StickRule[] = [];
  readonly storeResponse: StickRule[] = [];
  /** Servers by their table name (`srvkey name`) or `address:port` (`srvkey addr`). */
  private readonly byName = new Map<string, RuntimeServer>();
  private readonly byAddr = new Map<string, RuntimeServer>();

  constructor(cfg: BackendConfig, tables: ReadonlyMap<string, StickTable>, servers: readonly RuntimeServer[]) {
    for (const r of cfg.stickRules) {
      const id = r.table ?? cfg.name;
      const table = tables.get(id);
      if (!table) throw new Error(`${r.loc.file}:${r.loc.line}: stick table '${id}' is not available`);
      const { fetch, arg } = parseFetch(r.pattern);
      const rule: StickRule = { kind: r.kind, fetch, arg, table };
      if (r.kind === 'match' || r.kind === 'on') this.match.push(rule);
      if (r.kind === 'store-request' || r.kind === 'on') this.storeRequest.push(rule);
      if (r.kind === 'store-response') this.storeResponse.push(rule);
    }
    this.reindex(servers);
  }

  get empty(): boolean {
    return this.match.length === 0 && this.storeRequest.length === 0 && this.storeResponse.length === 0;
  }

  /**
   * Rebuilds the name/address indexes; call after discovery changed an address. Slots without an
   * address are left out of the address index. Bound: one entry per server in each map.
   */
  reindex(servers: readonly RuntimeServer[]): void {
    this.byName.clear();
    this.byAddr.clear();
    for (const s of servers) {
      if (!s.discovered) this.byName.set(s.name, s);
      if (s.address !== '' && !this.byAddr.has(s.addrKey)) this.byAddr.set(s.addrKey, s);
    }
  }

  /**
   * The name a table stores for `s`: `address:port` with `srvkey addr`, and always for servers
   * discovered by a server-template (their slot numbers differ between nodes); else the name.
   */
  serverKey(rule: StickRule, s: RuntimeServer): string {
    return rule.table.cfg.srvkey === 'addr' || s.discovered ? s.addrKey : s.name;
  }

  /** The server a stored key names: by address, or by name falling back to a discovered address. */
  serverFor(rule: StickRule, stored: string): RuntimeServer | undefined {
    if (rule.table.cfg.srvkey === 'addr') return this.byAddr.get(stored);
    const named = this.byName.get(stored);
    if (named) return named;
    const a = this.byAddr.get(stored);
    return a?.discovered ? a : undefined;
  }

  /** Request-side key of a rule, or undefined when the request does not carry it. */
  requestKey(rule: StickRule, src: StickKeySource): string | undefined {
    switch (rule.fetch) {
      case Fetch.Src:
        return src.clientIp;
      case Fetch.Dst:
        return src.localIp;
      case Fetch.ReqCookie:
        return src.requestCookie?.(rule.arg);
      case Fetch.ReqHeader:
        return src.requestHeader?.(rule.arg);
      default:
        return undefined;
    }
  }
}

/** Outcome of the match phase, kept in the per-connection context (reused across requests). */
export class StickState {
  /** Server found by a match rule, if usable. */
  server: RuntimeServer | undefined = undefined;
  /** Key of the first match rule that had one (for the agreed first pick). */
  firstKey: string | undefined = undefined;
  /** 'hit' (usable server found), 'down' (entry named an unusable server), 'miss', or '' (no rules). */
  result: '' | 'hit' | 'down' | 'miss' = '';
  /** Request keys for store-request rules, by rule index; undefined = nothing to store. */
  readonly storeKeys: Array<string | undefined> = [];

  /** Whether the stick rules choose the server (a usable match, or a key to place), not the balancer. */
  get decides(): boolean {
    return this.server !== undefined || this.firstKey !== undefined;
  }

  /** How the server was chosen when `decides`: a table entry, or the agreed first pick of a new key. */
  get decidedBy(): 'stick' | 'stick-first' {
    return this.server !== undefined ? 'stick' : 'stick-first';
  }

  reset(): void {
    this.server = undefined;
    this.firstKey = undefined;
    this.result = '';
    this.storeKeys.length = 0;
  }
}

/** Runs the match rules and collects store-request keys; appends each rule's step to `trace` if given. */
export function stickMatch(rules: StickRules, src: StickKeySource, st: StickState, trace?: DecideStep[]): void {
  st.reset();
  if (rules.empty) return;
  st.result = rules.match.length > 0 ? 'miss' : '';
  for (const rule of rules.match) {
    const key = rules.requestKey(rule, src);
    if (key === undefined) {
      if (trace !== undefined) trace.push({ kind: 'stick', table: rule.table, key, stored: undefined, server: undefined });
      continue;
    }
    if (st.firstKey === undefined) st.firstKey = key;
    const stored = rule.table.lookup(key);
    if (stored === undefined) {
      if (trace !== undefined) trace.push({ kind: 'stick', table: rule.table, key, stored, server: undefined });
      continue;
    }
    const s = rules.serverFor(rule, stored);
    if (trace !== undefined) trace.push({ kind: 'stick', table: rule.table, key, stored, server: s });
    if (s && s.usable) {
      st.server = s;
      st.result = 'hit';
      break;
    }
    st.result = 'down';
  }
  for (let i = 0; i < rules.storeRequest.length; i++) st.storeKeys[i] = rules.requestKey(rules.storeRequest[i]!, src);
}

/** Writes the store-request keys once the server is known. One store per table per request. */
export function stickStoreRequest(rules: StickRules, st: StickState, server: RuntimeServer): void {
  let done: StickTable | undefined;
  for (let i = 0; i < rules.storeRequest.length; i++) {
    const key = st.storeKeys[i];
    if (key === undefined) continue;
    const rule = rules.storeRequest[i]!;
    if (rule.table === done) continue;
    done = rule.table;
    rule.table.setLocal(key, rules.serverKey(rule, server));
  }
}

/** Writes store-response keys from response headers (`res.cook(NAME)`, `res.hdr(NAME)`). */
export function stickStoreResponse(
  rules: StickRules,
  server: RuntimeServer,
  names: readonly string[],
  values: readonly string[],
  count: number,
): void {
  for (const rule of rules.storeResponse) {
    let key: string | undefined;
    for (let i = 0; i < count; i++) {
      const n = names[i]!;
      if (rule.fetch === Fetch.ResCookie) {
        if (n.length === 10 && nameIs(n, 'set-cookie')) {
          const v = setCookieValue(values[i]!, rule.arg);
          if (v !== undefined) key = v;
        }
      } else if (n.length === rule.arg.length && nameIs(n, rule.arg)) key = values[i];
    }
    if (key !== undefined) rule.table.setLocal(key, rules.serverKey(rule, server));
  }
}

/** 32-bit hash of a stick key for the agreed first pick. */
export function stickKeyHash(key: string): number {
  return hashString(key);
}
