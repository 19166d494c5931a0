/**
 * Checks that span sections (names that must exist, modes that must agree), run on the model so
 * both front doors get them. Like `haproxy -c`, every problem is counted, not just the first (the
 * lists keep the first MAX_REPORTED_ISSUES). Linear in the model: every name is looked up in a
 * map built once, never by scanning a list.
 */
import type { ConfigIssue } from '../errors.js';
import type { ConfigWarning, CounterKind, RuleSet, SampleExpr, SourceLoc, StickTableConfig, StickmeshConfig, UseBackendConfig } from './model.js';
import { ProblemList } from './problems.js';
import { FETCH_BY_NAME } from './fetches.js';
import { meanHint } from '../util/suggest.js';

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
    if (f.defaultBackend === undefined) {
      warnings.push({ loc: f.loc, directive: 'default_backend', message: `frontend '${f.name}' has no default_backend: every request gets 503` });
      continue;
    }
    const be = backends.get(f.defaultBackend);
    if (!be) {
      issues.push({ loc: f.defaultBackendLoc ?? f.loc, directive: 'default_backend', message: `frontend '${f.name}': backend '${f.defaultBackend}' does not exist${meanHint(f.defaultBackend, backends.keys())}` });
      continue;
    }
    if (be.mode !== f.mode) {
      issues.push({ loc: f.defaultBackendLoc ?? f.loc, directive: 'default_backend', message: `frontend '${f.name}' is in ${f.mode} mode but backend '${be.name}' is in ${be.mode} mode` });
    }
  }
  const peerTables = new Map<string, true>();
  for (const p of cfg.peers) for (const t of p.tables) peerTables.set(t.id, true);
  // Every table a rule may name: peers tables by `peers/table`, proxy tables by proxy name.
  const tables = new Map<string, StickTableConfig>();
  for (const p of cfg.peers) for (const t of p.tables) tables.set(t.id, t);
  for (const b of cfg.backends) if (b.stickTable && !tables.has(b.stickTable.id)) tables.set(b.stickTable.id, b.stickTable);
  for (const f of cfg.frontends) {
    if (!f.stickTable) continue;
    if (tables.has(f.stickTable.id)) issues.push({ loc: f.stickTable.loc, directive: 'stick-table', message: `a table named '${f.stickTable.id}' already exists (a backend of the same name has one); rename the frontend` });
    else tables.set(f.stickTable.id, f.stickTable);
  }
  for (const f of cfg.frontends) {
    // A listen section's table is on its backend side (same name, same declaration).
    const listenBe = backends.get(f.name);
    const own = f.stickTable ?? (listenBe && listenBe.loc.line === f.loc.line && listenBe.loc.file === f.loc.file ? listenBe.stickTable : undefined);
    checkRules(`frontend '${f.name}'`, f.mode, f.rules, own, tables, issues, warnings);
    for (const ub of f.useBackends ?? []) checkUseBackend(f.name, f.mode, ub, backends, issues);
  }
  for (const b of cfg.backends) checkRules(`backend '${b.name}'`, b.mode, b.rules, b.stickTable, tables, issues, warnings);
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

const TRACK_HINT = `name one with 'table' (a frontend or backend with a stick-table, or PEERS/TABLE)`;

function checkUseBackend(frontend: string, mode: string, ub: UseBackendConfig, backends: ReadonlyMap<string, StickmeshConfig['backends'][number]>, issues: ProblemList<ConfigIssue>): void {
  const be = backends.get(ub.backend);
  if (!be) issues.push({ loc: ub.loc, directive: 'use_backend', message: `frontend '${frontend}': backend '${ub.backend}' does not exist${meanHint(ub.backend, backends.keys())}` });
  else if (be.mode !== mode) issues.push({ loc: ub.loc, directive: 'use_backend', message: `frontend '${frontend}' is in ${mode} mode but backend '${be.name}' is in ${be.mode} mode` });
}

function stores(t: StickTableConfig, kind: CounterKind, idx: number): boolean {
  return (t.data ?? []).some((d) => d.kind === kind && d.idx === idx);
}

/**
 * Tables named by a section's rules exist (track-sc `table`, the table argument of fetches, the
 * section's own table for `track-sc` without `table` and table fetches without argument), and a
 * warning where a rule reads or bumps a counter that every table tracked on that sticky counter
 * lacks (HAProxy accepts it; the counter then reads as absent and increments do nothing).
 */
function checkRules(section: string, mode: string, rules: RuleSet | undefined, own: StickTableConfig | undefined, tables: ReadonlyMap<string, StickTableConfig>, issues: ProblemList<ConfigIssue>, warnings: ProblemList<ConfigWarning>): void {
  if (!rules) return;
  const lists = [['tcp-request connection', rules.tcpRequestConnection], ['tcp-request content', rules.tcpRequestContent], ['http-request', rules.httpRequest], ['http-response', rules.httpResponse]] as const;
  if (mode === 'tcp') {
    for (const [ctx, list] of lists) {
      if (ctx.startsWith('http') && list.length > 0) warnings.push({ loc: list[0]!.loc, directive: ctx, message: `${section} is in tcp mode: its '${ctx}' rules never run` });
    }
  }
  // Tables tracked on sc0..2 by this section's rules, for the data-type warnings.
  const tracked: Array<Set<StickTableConfig>> = [new Set(), new Set(), new Set()];
  for (const [ctx, list] of lists) {
    for (const r of list) {
      if (r.action.type !== 'track-sc') continue;
      const a = r.action;
      if (a.table !== undefined) {
        const t = tables.get(a.table);
        if (!t) issues.push({ loc: r.loc, directive: `${ctx} track-sc${a.sc}`, message: `table '${a.table}' does not exist; ${TRACK_HINT}` });
        else tracked[a.sc]!.add(t);
      } else if (!own) issues.push({ loc: r.loc, directive: `${ctx} track-sc${a.sc}`, message: `${section} has no stick-table; ${TRACK_HINT}` });
      else tracked[a.sc]!.add(own);
    }
  }
  const warnMissing = (loc: SourceLoc, directive: string, candidates: Iterable<StickTableConfig>, kind: CounterKind, idx: number, what: string): void => {
    const list = [...candidates];
    if (list.length === 0 || list.some((t) => stores(t, kind, idx))) return;
    warnings.push({ loc, directive, message: `${what}: table${list.length > 1 ? 's' : ''} ${list.map((t) => `'${t.id}'`).join(', ')} ${list.length > 1 ? 'do' : 'does'} not store ${kind}${kind === 'gpc' || kind === 'gpt' || kind === 'gpc_rate' ? ` element ${idx}` : ''}` });
  };
  const checkSample = (e: SampleExpr, loc: SourceLoc, directive: string): void => {
    const spec = FETCH_BY_NAME.get(e.fetch);
    if (!spec) return;
    let tableArg: string | undefined;
    spec.args.forEach((k, i) => {
      if (k === 'table' && e.args[i] !== undefined) tableArg = e.args[i];
    });
    let table: StickTableConfig | undefined;
    if (tableArg !== undefined) {
      table = tables.get(tableArg);
      if (!table) {
        issues.push({ loc, directive, message: `fetch '${e.fetch}': table '${tableArg}' does not exist (a frontend or backend with a stick-table, or PEERS/TABLE)` });
        return;
      }
    }
    const c = spec.counter;
    if (!c) return;
    if ((c.family === 'src' || c.family === 'table') && !table) {
      if (!own) {
        issues.push({ loc, directive, message: `fetch '${e.fetch}' reads ${section}'s stick-table, which does not exist; name a table: ${e.fetch}(TABLE)` });
        return;
      }
      table = own;
    }
    if (c.data === undefined) return;
    const idxArg = spec.args.indexOf('idx');
    const idx = c.idx ?? (idxArg >= 0 ? Number(e.args[idxArg]) : 0);
    if (table) warnMissing(loc, directive, [table], c.data, idx, `fetch '${e.text}'`);
    else if (c.family === 'sc') {
      const scArg = spec.args.indexOf('sc');
      const sc = spec.sc ?? Number(e.args[scArg]);
      warnMissing(loc, directive, tracked[sc] ?? [], c.data, idx, `fetch '${e.text}'`);
    }
  };
  for (const acl of rules.acls) for (const t of acl.terms) checkSample(t.sample, t.loc, 'acl');
  for (const [ctx, list] of lists) {
    for (const r of list) {
      const a = r.action;
      const directive = `${ctx} ${a.type}`;
      if (a.type === 'track-sc') checkSample(a.sample, r.loc, directive);
      else if (a.type === 'sc-set-gpt' && typeof a.value !== 'number') checkSample(a.value, r.loc, directive);
      else if (a.type === 'set-header' || a.type === 'add-header' || a.type === 'redirect') {
        for (const p of a.value) if ('sample' in p) checkSample(p.sample, r.loc, directive);
      }
      if (a.type === 'sc-inc-gpc') warnMissing(r.loc, directive, tracked[a.sc]!, 'gpc', a.idx, `'sc-inc-gpc' on sc${a.sc}`);
      if (a.type === 'sc-set-gpt') warnMissing(r.loc, directive, tracked[a.sc]!, 'gpt', a.idx, `'sc-set-gpt' on sc${a.sc}`);
      for (const and of r.cond?.or ?? []) for (const op of and) if (op.anon) checkSample(op.anon.sample, op.anon.loc, directive);
    }
  }
}
