/**
 * Where a config change would break persistence (`stickmesh check --against OLD`): clients bound
 * to a server by a stick-table entry, a cookie or a source hash lose that server when the table
 * they are stored in, the rules that read it, the server's name or cookie value, the cookie's
 * name, mode or keys, or a source-hashing backend's servers or hash type change.
 *
 * Each finding names the new config's line and what can be counted: the live stick entries it
 * orphans (filled from a running node's `/api/tables` by `countAffected`), or, for a source hash,
 * the estimated fraction of clients sent elsewhere. Cookies live in browsers and cannot be counted;
 * the findings about them count the stick entries naming the servers concerned instead.
 */
import { SourceBalancer, mix32, tableConfigs, type BackendConfig, type ServerConfig, type SourceLoc, type StickRuleConfig, type StickTableConfig, type StickmeshConfig } from '@stickmesh/core';

export type PersistenceKind =
  | 'server-renamed' | 'server-removed' | 'server-cookie-changed' | 'cookie-name-changed' | 'cookie-mode-changed'
  | 'cookie-key-changed' | 'cookie-signing-keys-changed' | 'hash-type-changed' | 'source-servers-changed' | 'balance-changed'
  | 'backend-removed' | 'table-srvkey-changed' | 'table-renamed' | 'table-removed' | 'table-retyped' | 'table-shrunk'
  | 'stick-rule-removed' | 'stick-rule-changed';

/** Live entries of one table: all of them (`server` absent) or those naming `server`. */
export interface EntryRef {
  table: string;
  server?: string;
}

export interface PersistenceWarning {
  loc: SourceLoc;
  backend: string;
  kind: PersistenceKind;
  message: string;
  /**
   * What the count means: `orphaned`, live stick entries that stop matching (or are dropped);
   * `cookie`, the change is to cookies, which cannot be counted, and `entries` are the stick
   * entries naming the servers concerned (an indication of how many clients are bound to them).
   */
  measure?: 'orphaned' | 'cookie';
  /** Entries counted for `affected`. */
  entries?: EntryRef[];
  /** `table-shrunk`: the new size; only the live entries above it are affected. */
  newSize?: number;
  /** `source-servers-changed`, `hash-type-changed`: estimated fraction of source-hashed clients mapped elsewhere. */
  remapped?: number;
  /** Filled by `countAffected`: the live count, when a running node answered. */
  affected?: number;
}

/** Live counts of a running node: per table its live entries and its entries per stored server. */
export type TableCounts = Map<string, { live: number; servers: Map<string, number> }>;

/** Hashes drawn to estimate how many source-hashed clients move (standard error at most 0.25%). */
const REMAP_SAMPLES = 40_000;
/**
 * Server visits allowed for the estimate: a consistent-hash pick visits every server, so a backend
 * of thousands of servers gets fewer samples (at least REMAP_MIN_SAMPLES) and the check stays fast.
 */
const REMAP_BUDGET = 4_000_000;
const REMAP_MIN_SAMPLES = 500;

function stickTables(b: BackendConfig): string[] {
  return [...new Set(b.stickRules.map((r) => r.table ?? b.name))];
}

function strip(v: unknown): string {
  return JSON.stringify(v, (k, x) => (k === 'loc' ? undefined : x));
}

/** How a table names `s` in its entries. */
function storedName(t: StickTableConfig | undefined, s: ServerConfig): string {
  return t?.srvkey === 'addr' ? `${s.host}:${s.port}` : s.name;
}

function ruleText(r: StickRuleConfig): string {
  return `stick ${r.kind} ${r.pattern}${r.table !== undefined ? ` table ${r.table}` : ''}`;
}

/** `stick on` is a match and a store-request; each part as `kind pattern @table`. */
function ruleParts(r: StickRuleConfig, table: string): string[] {
  return r.kind === 'on' ? [`match ${r.pattern} @${table}`, `store-request ${r.pattern} @${table}`] : [`${r.kind} ${r.pattern} @${table}`];
}

/** The cookie value a server answers to: its own, else (with `dynamic`) one derived from its address and the key. */
function cookieValue(b: BackendConfig, s: ServerConfig): string | undefined {
  if (!b.cookie) return undefined;
  if (s.cookie !== undefined) return s.cookie;
  return b.cookie.dynamic ? `(dynamic, from ${s.host}:${s.port})` : undefined;
}

export function persistenceDiff(oldCfg: StickmeshConfig, newCfg: StickmeshConfig): PersistenceWarning[] {
  const out: PersistenceWarning[] = [];
  const newBackends = new Map(newCfg.backends.map((b) => [b.name, b]));
  const oldTables = new Map(tableConfigs(oldCfg).map((t) => [t.id, t]));
  const newTables = new Map(tableConfigs(newCfg).map((t) => [t.id, t]));
  const renamed = tableRenames(oldCfg, newCfg, oldTables, newTables);
  const firstLoc = newCfg.backends[0]?.loc ?? newCfg.frontends[0]?.loc ?? { file: '', line: 0 };

  // Tables that bind clients to servers (named by a stick rule); the others only hold counters.
  const sticky = new Set(oldCfg.backends.flatMap((b) => b.stickRules.map((r) => r.table ?? b.name)));
  for (const [id, t] of oldTables) {
    const to = renamed.get(id);
    const n = newTables.get(to ?? id);
    const all = [{ table: id }];
    const lost = sticky.has(id) ? 'the clients they hold are redispatched' : 'their counters start again from zero';
    if (!n) {
      out.push({ loc: firstLoc, backend: '', kind: 'table-removed', message: `stick table '${id}' (${t.loc.file}:${t.loc.line}) was removed: its entries are dropped and ${lost}`, measure: 'orphaned', entries: all });
      continue;
    }
    if (to !== undefined) {
      out.push({ loc: n.loc, backend: '', kind: 'table-renamed', message: `stick table '${id}' renamed to '${to}': a new empty table is created, the entries of '${id}' are dropped and ${lost}`, measure: 'orphaned', entries: all });
      continue;
    }
    if (n.type !== t.type || n.keyLen !== t.keyLen) {
      const was = t.type === 'string' ? `string len ${t.keyLen}` : t.type;
      const now = n.type === 'string' ? `string len ${n.keyLen}` : n.type;
      out.push({ loc: n.loc, backend: '', kind: 'table-retyped', message: `stick table '${id}': key type changed from ${was} to ${now}: its entries are dropped and ${lost}`, measure: 'orphaned', entries: all });
      continue;
    }
    if (n.size < t.size) {
      out.push({ loc: n.loc, backend: '', kind: 'table-shrunk', message: `stick table '${id}': size reduced from ${t.size} to ${n.size}: the least recently used entries above ${n.size} are evicted`, measure: 'orphaned', entries: all, newSize: n.size });
    }
    if (n.srvkey !== t.srvkey) {
      out.push({ loc: n.loc, backend: '', kind: 'table-srvkey-changed', message: `stick table '${id}': srvkey changed from ${t.srvkey} to ${n.srvkey}: every stored entry names servers the other way and stops matching`, measure: 'orphaned', entries: all });
    }
  }

  for (const ob of oldCfg.backends) {
    const nb = newBackends.get(ob.name);
    if (!nb) {
      out.push({ loc: firstLoc, backend: ob.name, kind: 'backend-removed', message: `backend '${ob.name}' was removed: its persistent clients lose their servers`, measure: 'orphaned', entries: stickTables(ob).filter((t) => !tableGone(t, newTables, renamed)).flatMap((table) => ob.servers.map((s) => ({ table, server: storedName(oldTables.get(table), s) }))) });
      continue;
    }
    diffStickRules(ob, nb, oldTables, newTables, renamed, out);
    // Entries of this backend's tables naming a server, for the server and cookie findings.
    const tables = stickTables(ob).filter((t) => !tableGone(t, newTables, renamed));
    const nameTables = tables.filter((t) => (newTables.get(t) ?? oldTables.get(t))?.srvkey !== 'addr');
    const naming = (s: ServerConfig): EntryRef[] => tables.map((table) => ({ table, server: storedName(oldTables.get(table), s) }));
    const newByName = new Map(nb.servers.map((s) => [s.name, s]));
    const newByAddr = new Map(nb.servers.map((s) => [`${s.host}:${s.port}`, s]));
    const oldNames = new Set(ob.servers.map((s) => s.name));
    for (const os of ob.servers) {
      const ns = newByName.get(os.name);
      if (!ns) {
        const to = newByAddr.get(`${os.host}:${os.port}`);
        const entries = nameTables.map((table) => ({ table, server: os.name }));
        if (to && !oldNames.has(to.name)) {
          out.push({ loc: to.loc, backend: ob.name, kind: 'server-renamed', message: `server '${os.name}' renamed to '${to.name}' (same address ${os.host}:${os.port}): stick entries naming '${os.name}' no longer match${cookieNote(ob, os, to)}`, measure: 'orphaned', entries });
        } else {
          out.push({ loc: nb.loc, backend: ob.name, kind: 'server-removed', message: `server '${os.name}' (${os.host}:${os.port}) was removed: its stick entries${ob.cookie ? ' and cookies' : ''} no longer match; those clients are redispatched`, measure: 'orphaned', entries: naming(os) });
        }
        continue;
      }
      const ov = cookieValue(ob, os);
      const nv = cookieValue(nb, ns);
      if (ob.cookie && nb.cookie && ov !== undefined && nv !== ov) {
        out.push({ loc: ns.loc, backend: ob.name, kind: 'server-cookie-changed', message: `server '${os.name}': cookie value changed from '${ov}' to '${nv ?? '(none)'}': clients holding the old cookie are redispatched`, measure: 'cookie', entries: naming(os) });
      }
    }
    const allServers = (): EntryRef[] => ob.servers.flatMap(naming);
    const oc = ob.cookie;
    const nc = nb.cookie;
    if (oc && nc && oc.name !== nc.name) {
      out.push({ loc: nc.loc, backend: ob.name, kind: 'cookie-name-changed', message: `cookie name changed from '${oc.name}' to '${nc.name}': every client's persistence cookie is ignored once`, measure: 'cookie', entries: allServers() });
    } else if (oc && !nc) {
      out.push({ loc: nb.loc, backend: ob.name, kind: 'cookie-name-changed', message: `cookie persistence ('${oc.name}') was removed: clients lose their servers`, measure: 'cookie', entries: allServers() });
    }
    if (oc && nc && oc.mode !== nc.mode) {
      out.push({ loc: nc.loc, backend: ob.name, kind: 'cookie-mode-changed', message: `cookie '${nc.name}' mode changed from ${oc.mode} to ${nc.mode}: cookies set the old way are not recognised (${modeNote(oc.mode)} vs ${modeNote(nc.mode)}), so their clients are redispatched`, measure: 'cookie', entries: allServers() });
    }
    if (oc && nc && oc.sign !== nc.sign) {
      out.push({ loc: nc.loc, backend: ob.name, kind: 'cookie-mode-changed', message: nc.sign ? `cookie '${nc.name}' is now 'sign': the unsigned cookies browsers hold count as absent, so their clients are redispatched` : `cookie '${nc.name}' is no longer 'sign': the signed values browsers hold name no server, so their clients are redispatched`, measure: 'cookie', entries: allServers() });
    }
    if (oc?.dynamic && nc?.dynamic && ob.dynamicCookieKey !== nb.dynamicCookieKey) {
      const dyn = ob.servers.filter((s) => s.cookie === undefined);
      out.push({ loc: nb.loc, backend: ob.name, kind: 'cookie-key-changed', message: `dynamic-cookie-key changed: every dynamic cookie value changes, so all ${dyn.length} server${dyn.length === 1 ? '' : 's'} with a dynamic cookie lose their cookie clients`, measure: 'cookie', entries: dyn.flatMap(naming) });
    }
    const oldKeys = (ob.cookieKeys ?? []).map(strip);
    const newKeys = new Set((nb.cookieKeys ?? []).map(strip));
    if (oldKeys.length > 0 && !oldKeys.some((k) => newKeys.has(k))) {
      out.push({ loc: nb.loc, backend: ob.name, kind: 'cookie-signing-keys-changed', message: 'none of the old cookie signing keys remain: every signed cookie fails verification (keep the old key as a second key during rotation)', measure: 'cookie', entries: allServers() });
    }
    diffSourceBalance(ob, nb, out);
  }
  return out;
}

/** Whether `t` (an old table id) is gone from the new config (removed, or renamed: reported once, as such). */
function tableGone(t: string, newTables: ReadonlyMap<string, StickTableConfig>, renamed: ReadonlyMap<string, string>): boolean {
  return renamed.has(t) || !newTables.has(t);
}

/**
 * Old table ids that reappear under a new id: a table of the new config that the old one lacked,
 * either referred to by a backend's stick rule in place of the old one (same kind and pattern), or
 * the only new table left over, of the same key type, for a single missing one.
 */
function tableRenames(oldCfg: StickmeshConfig, newCfg: StickmeshConfig, oldTables: ReadonlyMap<string, StickTableConfig>, newTables: ReadonlyMap<string, StickTableConfig>): Map<string, string> {
  const out = new Map<string, string>();
  const missing = [...oldTables.keys()].filter((id) => !newTables.has(id));
  const added = new Set([...newTables.keys()].filter((id) => !oldTables.has(id)));
  if (missing.length === 0 || added.size === 0) return out;
  const newBackends = new Map(newCfg.backends.map((b) => [b.name, b]));
  for (const ob of oldCfg.backends) {
    const nb = newBackends.get(ob.name);
    if (!nb) continue;
    for (const r of ob.stickRules) {
      const from = r.table ?? ob.name;
      if (out.has(from) || newTables.has(from)) continue;
      const same = nb.stickRules.find((x) => x.kind === r.kind && x.pattern === r.pattern && added.has(x.table ?? nb.name));
      if (same) {
        const to = same.table ?? nb.name;
        out.set(from, to);
        added.delete(to);
      }
    }
  }
  const left = missing.filter((id) => !out.has(id));
  const only = [...added][0];
  if (left.length === 1 && added.size === 1 && oldTables.get(left[0]!)!.type === newTables.get(only!)!.type) out.set(left[0]!, only!);
  return out;
}

/**
 * Stick rules of a backend kept in both configs: a lookup (`stick match`, the match half of
 * `stick on`) that is gone or reads another key or table orphans the entries it used to find; a
 * store that is gone or writes another key leaves them unrefreshed (they expire) and stores new
 * clients where no lookup finds them. Rules on a removed or renamed table are reported with it.
 */
function diffStickRules(ob: BackendConfig, nb: BackendConfig, oldTables: ReadonlyMap<string, StickTableConfig>, newTables: ReadonlyMap<string, StickTableConfig>, renamed: ReadonlyMap<string, string>, out: PersistenceWarning[]): void {
  const newParts = new Set(nb.stickRules.flatMap((r) => ruleParts(r, r.table ?? nb.name)));
  const newText = nb.stickRules.map(ruleText);
  for (const r of ob.stickRules) {
    const table = r.table ?? ob.name;
    if (!oldTables.has(table) || renamed.has(table) || !newTables.has(table)) continue;
    const missing = ruleParts(r, table).filter((p) => !newParts.has(p));
    if (missing.length === 0) continue;
    const entries = ob.servers.map((s) => ({ table, server: storedName(oldTables.get(table), s) }));
    const lookupGone = missing.some((p) => p.startsWith('match '));
    const replaced = nb.stickRules.some((x) => x.kind === r.kind || (r.kind === 'on' && x.kind === 'match') || (r.kind === 'match' && x.kind === 'on'));
    const was = `'${ruleText(r)}' (${r.loc.file}:${r.loc.line})`;
    const now = newText.length > 0 ? `; the new rules are ${newText.map((t) => `'${t}'`).join(', ')}` : '';
    const why = lookupGone
      ? `the entries it stored in '${table}' are no longer looked up, so their clients are redispatched`
      : `the entries of '${table}' are no longer stored or refreshed by this rule: new clients are not kept where the lookup finds them, and existing entries expire`;
    out.push({ loc: nb.loc, backend: ob.name, kind: replaced ? 'stick-rule-changed' : 'stick-rule-removed', message: `${was} was ${replaced ? 'changed' : 'removed'}: ${why}${now}`, measure: 'orphaned', entries });
  }
}

/** `balance source`: servers, weights or the hash type changing move clients; the fraction is estimated by hashing a sample. */
function diffSourceBalance(ob: BackendConfig, nb: BackendConfig, out: PersistenceWarning[]): void {
  if (ob.balance !== 'source') return;
  if (nb.balance !== 'source') {
    out.push({ loc: nb.loc, backend: ob.name, kind: 'balance-changed', message: `balance changed from source to ${nb.balance}: clients no longer map to a server by their address${nb.stickRules.length > 0 ? ' (stick entries still hold the clients they store)' : ''}` });
    return;
  }
  const key = (b: BackendConfig): string => usable(b).map((s) => `${s.name}@${s.host}:${s.port}*${s.weight}`).join(',');
  const hashChanged = ob.hashType !== nb.hashType;
  if (!hashChanged && key(ob) === key(nb)) return;
  const f = remapFraction(ob, nb);
  const pct = `about ${(f * 100).toFixed(f < 0.1 ? 1 : 0)}% of source-hashed clients map to another server`;
  const held = nb.stickRules.length > 0 ? ' (clients with a stick entry keep their server)' : '';
  if (hashChanged) {
    out.push({ loc: nb.loc, backend: ob.name, kind: 'hash-type-changed', message: `hash-type changed from ${ob.hashType} to ${nb.hashType} with balance source: ${pct}${held}`, remapped: f });
  } else if (f > 0) {
    out.push({ loc: nb.loc, backend: ob.name, kind: 'source-servers-changed', message: `the servers of balance source changed (${describeSet(ob, nb)}) with hash-type ${nb.hashType}: ${pct}${held}`, remapped: f });
  }
}

/** The servers a source hash picks among when all are up: primaries, enabled, weight above 0. */
function usable(b: BackendConfig): ServerConfig[] {
  return b.servers.filter((s) => !s.backup && !s.disabled && s.weight > 0);
}

function describeSet(ob: BackendConfig, nb: BackendConfig): string {
  const o = new Set(usable(ob).map((s) => s.name));
  const n = new Set(usable(nb).map((s) => s.name));
  const added = [...n].filter((x) => !o.has(x));
  const removed = [...o].filter((x) => !n.has(x));
  const parts = [...(added.length ? [`added ${added.join(', ')}`] : []), ...(removed.length ? [`removed ${removed.join(', ')}`] : [])];
  return parts.length > 0 ? parts.join('; ') : 'weights or addresses';
}

/** Share of a uniform sample of hashes that the old and new source balancers send to different addresses. */
export function remapFraction(ob: BackendConfig, nb: BackendConfig): number {
  const build = (b: BackendConfig): SourceBalancer<{ id: number; name: string; weight: number; activeConns: number; addr: string }> => {
    const bal = new SourceBalancer<{ id: number; name: string; weight: number; activeConns: number; addr: string }>(b.hashType);
    bal.rebuild(usable(b).map((s, id) => ({ id, name: s.name, weight: s.weight, activeConns: 0, addr: `${s.host}:${s.port}` })));
    return bal;
  };
  const a = build(ob);
  const b = build(nb);
  const cost = (ob.hashType === 'consistent' ? usable(ob).length : 1) + (nb.hashType === 'consistent' ? usable(nb).length : 1);
  const samples = Math.max(REMAP_MIN_SAMPLES, Math.min(REMAP_SAMPLES, Math.floor(REMAP_BUDGET / cost)));
  let moved = 0;
  for (let i = 0; i < samples; i++) {
    const h = mix32(i, 0x5bd1e995);
    if (a.pick(h)?.addr !== b.pick(h)?.addr) moved++;
  }
  return moved / samples;
}

function modeNote(mode: 'insert' | 'rewrite' | 'prefix'): string {
  return mode === 'prefix' ? `prefix: 'SERVER~value'` : `${mode}: the server's value alone`;
}

function cookieNote(b: BackendConfig, os: ServerConfig, ns: ServerConfig): string {
  if (!b.cookie) return '';
  return os.cookie !== undefined && os.cookie === ns.cookie ? ' (its cookie value is unchanged, so cookie clients keep it)' : '';
}

/**
 * Fills `affected` from a running node's live counts and returns the findings that still hold: a
 * smaller table whose live entries fit in its new size breaks nothing and is dropped.
 */
export function countAffected(ws: PersistenceWarning[], counts: TableCounts): PersistenceWarning[] {
  const out: PersistenceWarning[] = [];
  for (const w of ws) {
    if (w.entries) {
      w.affected = w.entries.reduce((n, e) => {
        const t = counts.get(e.table);
        return n + (t === undefined ? 0 : e.server === undefined ? t.live : (t.servers.get(e.server) ?? 0));
      }, 0);
      if (w.newSize !== undefined) {
        w.affected = Math.max(0, w.affected - w.newSize);
        if (w.affected === 0) continue;
      }
    }
    out.push(w);
  }
  return out;
}

/** The count shown after a finding: live entries, "live count unknown", and for cookies that browsers' cookies cannot be counted. */
export function countText(w: PersistenceWarning): string {
  if (!w.entries) return '';
  const known = w.affected !== undefined;
  const n = w.affected ?? 0;
  const entries = `${n} stick entr${n === 1 ? 'y' : 'ies'}`;
  if (w.measure === 'cookie') {
    return known ? ` [${entries} name the servers concerned on the running node; cookies held by browsers cannot be counted]` : ' [live count unknown; cookies held by browsers cannot be counted]';
  }
  if (!known) return ' [live count unknown]';
  return w.newSize !== undefined ? ` [${n} live entr${n === 1 ? 'y' : 'ies'} above the new size on the running node]` : ` [${entries} affected on the running node]`;
}
