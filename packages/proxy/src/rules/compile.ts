/**
 * Compiles every section's rules of a config at load or reload (never per request): frontends'
 * and backends' rule lists (actions.ts) and frontends' `use_backend` lists, over one table
 * resolver of the proxy's stick tables. The result is built off to the side and swapped whole
 * with the frontends that use it (proxy.ts); a RuleCompileError names the rule's file:line and
 * leaves the running config untouched.
 */
import type { AclConfig, BackendConfig, FrontendConfig, RuleSet, StickTable, StickmeshConfig } from '@stickmesh/core';
import { RuleList, compileRules, compileUseCond, type Rule } from './actions.js';
import { RuleCompileError, type CompileEnv, type CompiledCond, type TableResolver } from './types.js';
import { errorPagesOf, type ErrorPages } from '../http/responses.js';

/** A section's compiled rule lists; undefined when the section has none. */
export interface SectionRules {
  tcpConnection: Rule[];
  tcpContent: Rule[];
  httpRequest: Rule[];
  httpResponse: Rule[];
}

export interface UseBackendRule {
  cond: CompiledCond | undefined;
  backend: string;
  where: string;
}

export interface FrontendPlan {
  own: SectionRules | undefined;
  useBackends: UseBackendRule[];
}

/**
 * Every section's compiled rules, by section name. A backend whose RuleSet is its frontend's own
 * (a `listen` section) runs it once, as the frontend's: `sameAs` tells the routes to skip it.
 */
export interface RulesPlan {
  frontends: Map<string, FrontendPlan>;
  backends: Map<string, SectionRules | undefined>;
  /** Backend name -> frontend name whose RuleSet object the backend shares. */
  sameAs: Map<string, string>;
}

/** Resolves table ids (`peers/table`, a backend name) and bare peers-table names to the proxy's tables. */
export function tableResolver(tables: ReadonlyMap<string, StickTable>): TableResolver {
  const byName = new Map<string, StickTable>();
  for (const t of tables.values()) if (!byName.has(t.cfg.name)) byName.set(t.cfg.name, t);
  const find = (id: string): StickTable | undefined => tables.get(id) ?? byName.get(id);
  return {
    counters: (id) => find(id)?.counters,
    entryCount: (id) => {
      const t = find(id);
      if (!t) return 0;
      return Math.max(t.count, t.counters?.count ?? 0);
    },
    has: (id) => find(id) !== undefined,
  };
}

function envFor(set: RuleSet, tables: TableResolver, ownTable: string | undefined): CompileEnv {
  const acls = new Map<string, AclConfig>();
  for (const a of set.acls) acls.set(a.name, a);
  return { acls, tables, ownTable };
}

function isEmpty(set: RuleSet | undefined): boolean {
  return set === undefined || (set.tcpRequestConnection.length + set.tcpRequestContent.length + set.httpRequest.length + set.httpResponse.length === 0);
}

/** Compiles one section's rules; undefined when it has none. */
export function compileSection(set: RuleSet | undefined, env: CompileEnv, tarpitMs: number, http: boolean, errorPages?: ErrorPages): SectionRules | undefined {
  if (set === undefined || isEmpty(set)) return undefined;
  return {
    tcpConnection: compileRules(set.tcpRequestConnection, env, { list: RuleList.TcpConnection, tarpitMs, http }),
    tcpContent: compileRules(set.tcpRequestContent, env, { list: RuleList.TcpContent, tarpitMs, http }),
    httpRequest: http ? compileRules(set.httpRequest, env, { list: RuleList.HttpRequest, tarpitMs, http, errorPages }) : noHttp(set.httpRequest, 'http-request'),
    httpResponse: http ? compileRules(set.httpResponse, env, { list: RuleList.HttpResponse, tarpitMs, http, errorPages }) : noHttp(set.httpResponse, 'http-response'),
  };
}

function noHttp(rules: RuleSet['httpRequest'], what: string): Rule[] {
  const first = rules[0];
  if (first) throw new RuleCompileError(`'${what}' rules need 'mode http'`, first.loc);
  return [];
}

function backendRules(b: BackendConfig, tables: TableResolver): SectionRules | undefined {
  if (isEmpty(b.rules)) return undefined;
  // `tcp-request connection` runs at accept, in frontends only (a listen section's are its frontend's).
  const set = { ...b.rules!, tcpRequestConnection: [] };
  return compileSection(set, envFor(set, tables, b.stickTable?.id), b.tarpitTimeout ?? b.timeouts.connect, b.mode === 'http', errorPagesOf(b.errorFiles));
}

function frontendPlan(f: FrontendConfig, backends: ReadonlyMap<string, BackendConfig>, tables: TableResolver): FrontendPlan {
  const set = f.rules ?? { acls: [], tcpRequestConnection: [], tcpRequestContent: [], httpRequest: [], httpResponse: [] };
  // The section's own table: the frontend's stick-table, or a listen section's (on its backend side).
  const listenBackend = backends.get(f.name);
  const own = f.stickTable?.id ?? (listenBackend && f.rules !== undefined && listenBackend.rules === f.rules ? listenBackend.stickTable?.id : undefined);
  const env = envFor(set, tables, own);
  const compiled = compileSection(set, env, f.tarpitTimeout ?? f.timeouts.connect, f.mode === 'http', errorPagesOf(f.errorFiles));
  const useBackends: UseBackendRule[] = [];
  for (const u of f.useBackends ?? []) {
    const b = backends.get(u.backend);
    if (!b) throw new RuleCompileError(`use_backend: no backend '${u.backend}'`, u.loc);
    if (b.mode !== f.mode) throw new RuleCompileError(`use_backend: backend '${u.backend}' is in mode ${b.mode}, frontend '${f.name}' in mode ${f.mode}`, u.loc);
    useBackends.push({ cond: compileUseCond(u.cond, env), backend: u.backend, where: `${u.loc.file}:${u.loc.line}` });
  }
  return { own: compiled, useBackends };
}

/** Compiles the rules of every section of `config`; throws RuleCompileError at the first problem. */
export function compileConfigRules(config: StickmeshConfig, tables: ReadonlyMap<string, StickTable>): RulesPlan {
  const resolver = tableResolver(tables);
  const byName = new Map(config.backends.map((b) => [b.name, b] as const));
  const backends = new Map<string, SectionRules | undefined>();
  for (const b of config.backends) backends.set(b.name, backendRules(b, resolver));
  const frontends = new Map<string, FrontendPlan>();
  const sameAs = new Map<string, string>();
  for (const f of config.frontends) {
    frontends.set(f.name, frontendPlan(f, byName, resolver));
    const b = byName.get(f.name);
    if (b && f.rules !== undefined && b.rules === f.rules) sameAs.set(b.name, f.name);
  }
  return { frontends, backends, sameAs };
}
