/**
 * Checks that span sections (names that must exist, modes that must agree), run on the model so
 * both front doors get them. Like `haproxy -c`, every problem is counted, not just the first (the
 * lists keep the first MAX_REPORTED_ISSUES). Linear in the model: every name is looked up in a
 * map built once, never by scanning a list.
 */
import type { ConfigIssue } from '../errors.js';
import type { ConfigWarning, StickmeshConfig } from './model.js';
import { ProblemList } from './problems.js';

export function validateConfig(cfg: StickmeshConfig): { issues: ProblemList<ConfigIssue>; warnings: ProblemList<ConfigWarning> } {
  const issues = new ProblemList<ConfigIssue>();
  const warnings = new ProblemList<ConfigWarning>();
  const backends = new Map<string, StickmeshConfig['backends'][number]>();
  for (const b of cfg.backends) if (!backends.has(b.name)) backends.set(b.name, b);
  const peersNames = new Set(cfg.peers.map((p) => p.name));
  const resolversNames = new Set(cfg.resolvers.map((r) => r.name));
  for (const [kind, list] of [['frontend', cfg.frontends], ['backend', cfg.backends], ['peers', cfg.peers], ['resolvers', cfg.resolvers]] as const) {
    const names = new Set<string>();
    for (const x of list) {
      if (names.has(x.name)) issues.push({ loc: x.loc, directive: kind, message: `a ${kind} named '${x.name}' is already defined` });
      names.add(x.name);
    }
  }
  for (const f of cfg.frontends) {
    if (f.binds.length === 0) issues.push({ loc: f.loc, directive: 'bind', message: `frontend '${f.name}' has no 'bind' line` });
    if (f.defaultBackend === undefined) {
      warnings.push({ loc: f.loc, directive: 'default_backend', message: `frontend '${f.name}' has no default_backend: every request gets 503` });
      continue;
    }
    const be = backends.get(f.defaultBackend);
    if (!be) {
      issues.push({ loc: f.loc, directive: 'default_backend', message: `frontend '${f.name}': backend '${f.defaultBackend}' does not exist` });
      continue;
    }
    if (be.mode !== f.mode) {
      issues.push({ loc: f.loc, directive: 'default_backend', message: `frontend '${f.name}' is in ${f.mode} mode but backend '${be.name}' is in ${be.mode} mode` });
    }
  }
  const peerTables = new Map<string, true>();
  for (const p of cfg.peers) for (const t of p.tables) peerTables.set(t.id, true);
  for (const b of cfg.backends) {
    if (b.cookie && b.mode !== 'http') {
      issues.push({ loc: b.cookie.loc, directive: 'cookie', message: `backend '${b.name}' is in tcp mode: cookie persistence needs 'mode http'` });
    }
    if (b.cookie?.dynamic && !b.dynamicCookieKey) {
      issues.push({ loc: b.cookie.loc, directive: 'cookie', message: `'dynamic' needs a 'dynamic-cookie-key' in backend '${b.name}'` });
    }
    if (b.dynamicCookieKey && !b.cookie?.dynamic) {
      warnings.push({ loc: b.loc, directive: 'dynamic-cookie-key', message: `backend '${b.name}' sets a dynamic-cookie-key but its cookie is not 'dynamic'` });
    }
    if (b.cookie?.sign && b.cookieKeys.length === 0) {
      issues.push({ loc: b.cookie.loc, directive: 'cookie', message: `'sign' needs at least one 'cookie-key ID SECRET' in backend '${b.name}'` });
    }
    if (b.cookieKeys.length > 0 && !b.cookie?.sign) {
      warnings.push({ loc: b.cookieKeys[0]!.loc, directive: 'cookie-key', message: `backend '${b.name}' has cookie keys but its cookie is not 'sign'` });
    }
    if (b.cookie && !b.cookie.dynamic) {
      for (const t of b.serverTemplates) {
        warnings.push({ loc: t.loc, directive: 'server-template', message: `servers of template '${t.prefix}' have no cookie value without 'cookie ... dynamic': their clients get no persistence cookie` });
      }
      for (const s of b.servers) {
        if (s.cookie === undefined) {
          warnings.push({ loc: s.loc, directive: 'server', message: `server '${b.name}/${s.name}' has no 'cookie' value: its clients get no persistence cookie` });
        }
      }
    }
    if (b.cookie) {
      const values = new Map<string, string>();
      for (const s of b.servers) {
        if (s.cookie === undefined) continue;
        const other = values.get(s.cookie);
        if (other !== undefined) warnings.push({ loc: s.loc, directive: 'server', message: `servers '${other}' and '${s.name}' share cookie value '${s.cookie}': requests go to the first one` });
        else values.set(s.cookie, s.name);
      }
    }
    if (b.httpCheck && b.mode !== 'http') {
      warnings.push({ loc: b.loc, directive: 'option httpchk', message: `HTTP checks run against the servers of tcp backend '${b.name}'` });
    }
    for (const r of b.stickRules) {
      if (r.table === undefined) {
        if (!b.stickTable) issues.push({ loc: r.loc, directive: `stick ${r.kind}`, message: `backend '${b.name}' has no stick-table; name one with 'table'` });
      } else if (!peerTables.has(r.table) && !backends.get(r.table)?.stickTable) {
        issues.push({ loc: r.loc, directive: `stick ${r.kind}`, message: `stick table '${r.table}' does not exist (use PEERS/TABLE for a peers table or a backend name)` });
      }
    }
    if (b.stickTable?.peers && !peersNames.has(b.stickTable.peers)) {
      issues.push({ loc: b.stickTable.loc, directive: 'stick-table', message: `peers section '${b.stickTable.peers}' does not exist` });
    }
    for (const t of b.serverTemplates) {
      if (t.resolvers !== undefined && !resolversNames.has(t.resolvers)) {
        issues.push({ loc: t.loc, directive: 'server-template', message: `resolvers section '${t.resolvers}' does not exist` });
      }
      if (t.port === 0 && !t.fqdn.startsWith('_')) {
        issues.push({ loc: t.loc, directive: 'server-template', message: `'${t.fqdn}' needs a port (or use an SRV name _service._proto.domain)` });
      }
    }
    for (const s of b.servers) {
      if (s.resolvers !== undefined && !resolversNames.has(s.resolvers)) {
        issues.push({ loc: s.loc, directive: 'server', message: `resolvers section '${s.resolvers}' does not exist` });
      }
    }
  }
  for (const r of cfg.resolvers) {
    if (r.nameservers.length === 0) issues.push({ loc: r.loc, directive: 'resolvers', message: `resolvers '${r.name}' has no nameserver` });
  }
  for (const p of cfg.peers) {
    if (p.tls && (!p.tls.cert || !p.tls.key)) issues.push({ loc: p.loc, directive: 'tls-cert', message: `peers '${p.name}': TLS needs both 'tls-cert' and 'tls-key'` });
    const binds = p.peers.filter((x) => x.host === undefined);
    if (binds.length > 1) issues.push({ loc: binds[1]!.loc, directive: 'server', message: `peers '${p.name}': only the local peer may be declared without an address` });
  }
  return { issues, warnings };
}

/**
 * Parts of a valid config that this build cannot run yet. `check` accepts them (the config is
 * valid HAProxy); `start` refuses them with these messages instead of running without them.
 * Nothing is refused at present; the hook stays so a future partial feature has one place to go.
 */
export function unsupportedYet(_cfg: StickmeshConfig): ConfigIssue[] {
  return [];
}
