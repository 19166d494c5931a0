/**
 * Where a config change would break persistence (`stickmesh check --against OLD`): clients bound to
 * a server by a cookie or a stick-table entry lose that server when its name, its cookie value, the
 * cookie name, the dynamic-cookie key or signing keys, or the hash type of a hashing balancer
 * change. Each finding names the new config's line, and the stick entries it affects when the
 * caller supplies live table counts (cookies live in browsers and cannot be counted).
 */
import { tableConfigs, type BackendConfig, type ServerConfig, type SourceLoc, type StickmeshConfig } from '@stickmesh/core';

export interface PersistenceWarning {
  loc: SourceLoc;
  backend: string;
  kind: 'server-renamed' | 'server-removed' | 'server-cookie-changed' | 'cookie-name-changed' | 'cookie-key-changed' | 'cookie-signing-keys-changed' | 'hash-type-changed' | 'backend-removed' | 'table-srvkey-changed';
  message: string;
  /** Stick tables and the server names whose entries are affected (for counting). */
  entries?: Array<{ table: string; server: string }>;
  /** Filled by `countAffected`. */
  affected?: number;
}

/** Live entries per table per stored server name (from a running node). */
export type TableCounts = Map<string, Map<string, number>>;

function stickTables(b: BackendConfig): string[] {
  return [...new Set(b.stickRules.map((r) => r.table ?? b.name))];
}

function strip(v: unknown): string {
  return JSON.stringify(v, (k, x) => (k === 'loc' ? undefined : x));
}

export function persistenceDiff(oldCfg: StickmeshConfig, newCfg: StickmeshConfig): PersistenceWarning[] {
  const out: PersistenceWarning[] = [];
  const newBackends = new Map(newCfg.backends.map((b) => [b.name, b]));
  const oldTables = new Map(tableConfigs(oldCfg).map((t) => [t.id, t]));
  const newTables = new Map(tableConfigs(newCfg).map((t) => [t.id, t]));
  for (const [id, t] of oldTables) {
    const n = newTables.get(id);
    if (n && n.srvkey !== t.srvkey) {
      out.push({ loc: n.loc, backend: '', kind: 'table-srvkey-changed', message: `stick table '${id}': srvkey changed from ${t.srvkey} to ${n.srvkey}: every stored entry names servers the other way and stops matching` });
    }
  }
  for (const ob of oldCfg.backends) {
    const nb = newBackends.get(ob.name);
    if (!nb) {
      out.push({ loc: newCfg.backends[0]?.loc ?? ob.loc, backend: ob.name, kind: 'backend-removed', message: `backend '${ob.name}' was removed: its persistent clients lose their servers` });
      continue;
    }
    const tables = stickTables(ob).filter((t) => (newTables.get(t) ?? oldTables.get(t))?.srvkey !== 'addr');
    const newByName = new Map(nb.servers.map((s) => [s.name, s]));
    const newByAddr = new Map(nb.servers.map((s) => [`${s.host}:${s.port}`, s]));
    const oldNames = new Set(ob.servers.map((s) => s.name));
    for (const os of ob.servers) {
      const ns = newByName.get(os.name);
      if (!ns) {
        const renamed = newByAddr.get(`${os.host}:${os.port}`);
        const entries = tables.map((table) => ({ table, server: os.name }));
        if (renamed && !oldNames.has(renamed.name)) {
          out.push({ loc: renamed.loc, backend: ob.name, kind: 'server-renamed', message: `server '${os.name}' renamed to '${renamed.name}' (same address ${os.host}:${os.port}): stick entries naming '${os.name}' no longer match${cookieNote(ob, os, renamed)}`, entries });
        } else {
          out.push({ loc: nb.loc, backend: ob.name, kind: 'server-removed', message: `server '${os.name}' (${os.host}:${os.port}) was removed: its stick entries${ob.cookie ? ' and cookies' : ''} no longer match; those clients are redispatched`, entries });
        }
        continue;
      }
      if (ob.cookie && nb.cookie && os.cookie !== undefined && ns.cookie !== os.cookie) {
        out.push({ loc: ns.loc, backend: ob.name, kind: 'server-cookie-changed', message: `server '${os.name}': cookie value changed from '${os.cookie}' to '${ns.cookie ?? '(none)'}': clients holding the old cookie are redispatched` });
      }
    }
    if (ob.cookie && nb.cookie && ob.cookie.name !== nb.cookie.name) {
      out.push({ loc: nb.loc, backend: ob.name, kind: 'cookie-name-changed', message: `cookie name changed from '${ob.cookie.name}' to '${nb.cookie.name}': every client's persistence cookie is ignored once` });
    } else if (ob.cookie && !nb.cookie) {
      out.push({ loc: nb.loc, backend: ob.name, kind: 'cookie-name-changed', message: `cookie persistence ('${ob.cookie.name}') was removed: clients lose their servers` });
    }
    if (ob.cookie?.dynamic && nb.cookie?.dynamic && ob.dynamicCookieKey !== nb.dynamicCookieKey) {
      out.push({ loc: nb.loc, backend: ob.name, kind: 'cookie-key-changed', message: 'dynamic-cookie-key changed: every dynamic cookie value changes, so all cookie clients are redispatched' });
    }
    const oldKeys = (ob.cookieKeys ?? []).map(strip);
    const newKeys = new Set((nb.cookieKeys ?? []).map(strip));
    if (oldKeys.length > 0 && !oldKeys.some((k) => newKeys.has(k))) {
      out.push({ loc: nb.loc, backend: ob.name, kind: 'cookie-signing-keys-changed', message: 'none of the old cookie signing keys remain: every signed cookie fails verification (keep the old key as a second key during rotation)' });
    }
    if (ob.hashType !== nb.hashType && (ob.balance === 'source' || nb.balance === 'source')) {
      out.push({ loc: nb.loc, backend: ob.name, kind: 'hash-type-changed', message: `hash-type changed from ${ob.hashType} to ${nb.hashType} with balance source: most clients map to a different server` });
    }
  }
  return out;
}

function cookieNote(b: BackendConfig, os: ServerConfig, ns: ServerConfig): string {
  if (!b.cookie) return '';
  return os.cookie !== undefined && os.cookie === ns.cookie ? ' (its cookie value is unchanged, so cookie clients keep it)' : '';
}

/** Fills `affected` from live table counts. */
export function countAffected(ws: PersistenceWarning[], counts: TableCounts): void {
  for (const w of ws) {
    if (!w.entries) continue;
    w.affected = w.entries.reduce((n, e) => n + (counts.get(e.table)?.get(e.server) ?? 0), 0);
  }
}
