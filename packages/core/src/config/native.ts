/**
 * The native front door: YAML or JSON, validated with a convict schema, with `STICKMESH_*`
 * environment overrides for container deployments. Sections are translated into the same
 * directives the haproxy.cfg parser understands and run through it, so both front doors share
 * every rule and default; each directive carries the line of the YAML/JSON node it came from.
 * `docs/CONFIG.md` documents every key.
 */
import convict from 'convict';
import { createRequire } from 'node:module';
import type { Document, LineCounter, Node } from 'yaml';
import type { ConfigIssue } from '../errors.js';
import { MAX_NBTHREAD, type ConfigWarning, type GlobalConfig, type SourceLoc } from './model.js';
import { parseHaproxyConfig, type ParseOutput } from './haproxy.js';
import { MAX_ALLOWED_ORIGINS, parseOrigin } from '../util/origin.js';
import { ProblemList } from './problems.js';
import { defaultNbthread } from './defaults.js';

/** Schema of `global`: these keys take environment overrides, in both front doors. */
export const globalSchema = {
  maxconn: { doc: 'Max concurrent connections for the process.', format: 'nat', default: 100000, env: 'STICKMESH_MAXCONN' },
  logLevel: {
    doc: 'pino level for request and event logs.',
    format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
    env: 'STICKMESH_LOG_LEVEL',
  },
  localPeer: { doc: "This node's peer name (HAProxy 'localpeer').", format: String, default: '', env: 'STICKMESH_NODE' },
  admin: {
    host: { doc: 'Admin listener address.', format: String, default: '127.0.0.1', env: 'STICKMESH_ADMIN_HOST' },
    port: { doc: 'Admin listener port; 0 disables it.', format: 'port', default: 9100, env: 'STICKMESH_ADMIN_PORT' },
    token: { doc: 'Bearer token required by admin write calls.', format: String, default: '', env: 'STICKMESH_ADMIN_TOKEN', sensitive: true },
    allowOrigins: {
      doc: "Web origins allowed to call the admin API from a browser (haproxy.cfg 'admin-allow-origin'); the environment takes a comma-separated list.",
      // A function format gets no coercion from convict: environment values arrive as strings.
      format: function allowOriginsList(v: unknown): void {
        const list = originList(v);
        if (typeof list === 'string') throw new Error(list);
      },
      // A string default keeps convict from JSON-parsing the environment value.
      default: '' as unknown,
      env: 'STICKMESH_ADMIN_ALLOW_ORIGIN',
    },
  },
  dataDir: { doc: 'Directory for table snapshots; empty disables snapshots.', format: String, default: '', env: 'STICKMESH_DATA_DIR' },
  maxAccept: {
    doc: "Connections each listener may accept per event-loop turn (HAProxy 'tune.maxaccept'), 1..64.",
    // A function format gets no coercion from convict: environment values arrive as strings.
    format: function maxAcceptRange(v: unknown): void {
      const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
      if (!Number.isInteger(n) || (n as number) < 1 || (n as number) > 64) throw new Error('must be an integer from 1 to 64');
    },
    default: 16,
    env: 'STICKMESH_MAXACCEPT',
  },
  nbthread: {
    doc: `Data-plane threads of the node (HAProxy 'nbthread'), 1..${MAX_NBTHREAD}.`,
    // A function format gets no coercion from convict: environment values arrive as strings.
    format: function nbthreadRange(v: unknown): void {
      const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
      if (!Number.isInteger(n) || (n as number) < 1 || (n as number) > MAX_NBTHREAD) throw new Error(`must be an integer from 1 to ${MAX_NBTHREAD}`);
    },
    default: defaultNbthread(),
    env: 'STICKMESH_NBTHREAD',
  },
} as const;

/** `admin.allowOrigins` as normalized origins (a list, or a comma-separated string from the environment), or an error message. */
function originList(v: unknown): string[] | string {
  const items = typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter((x) => x !== '') : v;
  if (!Array.isArray(items)) return 'must be a list of origins (scheme://host[:port])';
  if (items.length > MAX_ALLOWED_ORIGINS) return `at most ${MAX_ALLOWED_ORIGINS} origins`;
  const out: string[] = [];
  for (const x of items) {
    const o = parseOrigin(String(x));
    if (typeof o !== 'string') return o.error;
    if (!out.includes(o)) out.push(o);
  }
  return out;
}

function allowOrigins(v: unknown): { allowOrigins?: string[] } {
  const list = originList(v);
  return typeof list === 'string' || list.length === 0 ? {} : { allowOrigins: list };
}

const anyList = { doc: 'See docs/CONFIG.md.', format: Array, default: [] as unknown[] };
const anyMap = { doc: 'See docs/CONFIG.md.', format: Object, default: {} as Record<string, unknown> };

const nativeSchema = {
  global: globalSchema,
  defaults: anyMap,
  frontends: anyList,
  backends: anyList,
  listen: anyList,
  peers: anyList,
  resolvers: anyList,
};

interface GlobalValues {
  maxconn: number;
  logLevel: GlobalConfig['logLevel'];
  localPeer: string;
  admin: { host: string; port: number; token: string; allowOrigins: unknown };
  dataDir: string;
  maxAccept: number;
  nbthread: number;
}

/** The `STICKMESH_*` variable of a global key (`admin.port` or `global.admin.port`), if it has one. */
function envVarOf(key: string): string | undefined {
  let node: unknown = globalSchema;
  for (const k of key.replace(/^global\./, '').split('.')) node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[k] : undefined;
  const v = typeof node === 'object' && node !== null ? (node as { env?: unknown }).env : undefined;
  return typeof v === 'string' ? v : undefined;
}

/**
 * convict's validation message as problems. One caused by a set `STICKMESH_*` variable names the
 * variable and its value (cut to 64 characters) and has no line; the others go to `lineOf(key)`.
 */
function convictProblems(message: string, file: string, env: NodeJS.ProcessEnv, lineOf: (key: string) => number): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const line of message.split('\n')) {
    if (line.trim() === '') continue;
    const m = /^([\w.]+): (.*)$/.exec(line) ?? /param '([\w.]+)' not declared/.exec(line);
    const key = m?.[1] ?? '';
    const variable = key === '' ? undefined : envVarOf(key);
    const value = variable === undefined ? undefined : env[variable];
    if (variable !== undefined && value !== undefined) {
      const detail = (m?.[2] ?? line).replace(/: value was .*$/, '');
      out.push({ loc: { file, line: 0 }, directive: 'environment', message: `${variable}=${JSON.stringify(value.slice(0, 64))} (global ${key.replace(/^global\./, '')}): ${detail}` });
    } else {
      out.push({ loc: { file, line: lineOf(key) }, directive: key === '' ? 'global' : key, message: line.replace(/^configuration param '([\w.]+)' not declared in the schema$/, `unknown key '$1'`) });
    }
  }
  return out;
}

/**
 * Applies `STICKMESH_*` overrides onto a parsed global section (convict's precedence: env beats
 * file). Returns the problems of bad overrides, each naming its variable, instead of throwing.
 */
export function applyGlobalEnv(g: GlobalConfig, env: NodeJS.ProcessEnv, file = 'environment'): ConfigIssue[] {
  const c = convict(globalSchema as unknown as convict.Schema<GlobalValues>, { env, args: [] });
  c.load({ maxconn: g.maxconn, logLevel: g.logLevel, localPeer: g.localPeer ?? '', admin: { host: g.admin.host, port: g.admin.port, token: g.admin.token ?? '', allowOrigins: g.admin.allowOrigins ?? '' }, dataDir: g.dataDir, maxAccept: g.maxAccept, nbthread: g.nbthread });
  try {
    c.validate({ allowed: 'strict' });
  } catch (err) {
    return convictProblems((err as Error).message, file, env, () => 0);
  }
  const v = c.getProperties();
  g.maxconn = v.maxconn;
  g.logLevel = v.logLevel;
  g.localPeer = v.localPeer === '' ? undefined : v.localPeer;
  const adminEnv = env.STICKMESH_ADMIN_PORT !== undefined ? 'STICKMESH_ADMIN_PORT' : env.STICKMESH_ADMIN_HOST !== undefined ? 'STICKMESH_ADMIN_HOST' : undefined;
  const adminLoc = adminEnv !== undefined ? { file: adminEnv, line: 0 } : g.admin.loc;
  g.admin = { host: v.admin.host, port: v.admin.port, token: v.admin.token === '' ? undefined : v.admin.token, ...(adminLoc ? { loc: adminLoc } : {}), ...allowOrigins(v.admin.allowOrigins) };
  g.dataDir = v.dataDir;
  g.maxAccept = Number(v.maxAccept);
  g.nbthread = Number(v.nbthread);
  return [];
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Translates YAML nodes into haproxy.cfg lines, remembering the source line of each. */
class Translator {
  readonly lines: string[] = [];
  readonly lineMap: number[] = [];
  readonly issues = new ProblemList<ConfigIssue>();

  constructor(readonly file: string, private readonly doc: Document, private readonly lc: LineCounter) {}

  has(path: Array<string | number>): boolean {
    return this.doc.hasIn(path);
  }

  lineOf(path: Array<string | number>): number {
    const node = this.doc.getIn(path, true) as Node | undefined;
    const off = node?.range?.[0];
    if (off === undefined) return path.length > 1 ? this.lineOf(path.slice(0, -1)) : 1;
    return this.lc.linePos(off).line;
  }

  /** Emits a line the user wrote in haproxy.cfg syntax, as written. */
  emitRaw(path: Array<string | number>, line: string): void {
    this.lines.push(line);
    this.lineMap.push(this.lineOf(path));
  }

  emit(path: Array<string | number>, ...words: Array<string | number>): void {
    this.lines.push(words.map((w) => quote(String(w))).join(' '));
    this.lineMap.push(this.lineOf(path));
  }

  bad(path: Array<string | number>, message: string): void {
    if (this.issues.countedOnly()) return;
    this.issues.push({ loc: { file: this.file, line: this.lineOf(path) }, directive: path.join('.'), message });
  }
}

function quote(w: string): string {
  if (w !== '' && /^[^\s#"'\\$]+$/.test(w)) return w;
  return `'${w.replace(/'/g, "'\\''")}'`;
}

function isObj(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function time(v: Json): string {
  return typeof v === 'number' ? `${v}ms` : String(v);
}

const TIMEOUT_NAMES: Record<string, string> = {
  connect: 'connect', client: 'client', server: 'server', httpRequest: 'http-request', httpKeepAlive: 'http-keep-alive',
  tunnel: 'tunnel', check: 'check', queue: 'queue', tarpit: 'tarpit',
};

/** First words a native `rules:` line may start with: the rule language, nothing that opens a section or sets other settings. */
const RULE_KEYWORDS = new Set(['acl', 'http-request', 'http-response', 'tcp-request', 'use_backend']);

/** Keys accepted per object kind; anything else is an error naming the key. */
const KEYS: Record<string, string[]> = {
  proxy: ['name', 'mode', 'bind', 'defaultBackend', 'maxconn', 'balance', 'hashType', 'cookie', 'dynamicCookieKey', 'cookieKeys', 'servers', 'serverTemplates', 'defaultServer', 'redispatch', 'retries', 'forwardFor', 'httpCheck', 'timeouts', 'stick', 'stickTable', 'rules', 'errorFiles'],
  cookie: ['name', 'mode', 'indirect', 'nocache', 'postonly', 'preserve', 'httponly', 'secure', 'domain', 'maxidle', 'maxlife', 'attr', 'dynamic', 'sign'],
  cookieKey: ['id', 'secret', 'current'],
  server: ['name', 'address', 'check', 'cookie', 'weight', 'backup', 'disabled', 'inter', 'fastinter', 'downinter', 'rise', 'fall', 'port', 'maxconn', 'resolvers', 'initAddr', 'ssl', 'verify', 'caFile', 'sni', 'checkSsl'],
  template: ['prefix', 'count', 'fqdn', 'check', 'weight', 'backup', 'disabled', 'inter', 'fastinter', 'downinter', 'rise', 'fall', 'port', 'maxconn', 'resolvers', 'initAddr', 'ssl', 'verify', 'caFile', 'sni', 'checkSsl'],
  httpCheck: ['method', 'uri', 'version', 'host', 'expectStatus', 'expectRstatus'],
  forwardFor: ['header', 'except', 'ifNone'],
  peers: ['name', 'bind', 'peers', 'tables', 'secret', 'cluster', 'resyncTimeout', 'tlsCert', 'tlsKey', 'tlsCa'],
  peer: ['name', 'address'],
  table: ['name', 'type', 'len', 'size', 'expire', 'store', 'srvkey', 'peers', 'counters'],
  stick: ['on', 'match', 'storeRequest', 'storeResponse', 'table'],
  resolvers: ['name', 'nameservers', 'acceptedPayloadSize', 'resolveRetries', 'timeoutResolve', 'timeoutRetry', 'hold'],
  nameserver: ['name', 'address'],
};

function checkKeys(t: Translator, path: Array<string | number>, v: Json | undefined, kind: string): v is Record<string, Json> {
  if (!isObj(v)) {
    t.bad(path, `expected an object`);
    return false;
  }
  let ok = true;
  for (const k of Object.keys(v)) {
    if (!KEYS[kind]!.includes(k)) {
      t.bad([...path, k], `unknown key '${k}' (allowed: ${KEYS[kind]!.join(', ')})`);
      ok = false;
    }
  }
  return ok;
}

function serverWords(s: Record<string, Json>): Array<string | number> {
  const w: Array<string | number> = [];
  for (const f of ['check', 'backup', 'disabled'] as const) if (s[f] === true) w.push(f);
  if (s.cookie !== undefined) w.push('cookie', String(s.cookie));
  for (const f of ['weight', 'rise', 'fall', 'port', 'maxconn'] as const) if (s[f] !== undefined) w.push(f, String(s[f]));
  for (const f of ['inter', 'fastinter', 'downinter'] as const) if (s[f] !== undefined) w.push(f, time(s[f]!));
  if (s.resolvers !== undefined) w.push('resolvers', String(s.resolvers));
  if (s.initAddr !== undefined) w.push('init-addr', Array.isArray(s.initAddr) ? s.initAddr.join(',') : String(s.initAddr));
  // Server-side TLS: `ssl: true`, `verify: required|none`, `caFile`, `sni` (a fixed name), `checkSsl`.
  if (s.ssl !== undefined) w.push(s.ssl === true ? 'ssl' : 'no-ssl');
  if (s.checkSsl !== undefined) w.push(s.checkSsl === true ? 'check-ssl' : 'no-check-ssl');
  if (s.verify !== undefined) w.push('verify', String(s.verify));
  if (s.caFile !== undefined) w.push('ca-file', String(s.caFile));
  if (s.sni !== undefined) w.push('sni', `str(${String(s.sni)})`);
  return w;
}

function translateProxy(t: Translator, kind: 'defaults' | 'frontend' | 'backend' | 'listen', path: Array<string | number>, p: Json | undefined): void {
  if (!checkKeys(t, path, p, 'proxy')) return;
  if (kind !== 'defaults' && (typeof p.name !== 'string' || p.name === '')) {
    t.bad(path, `needs a 'name'`);
    return;
  }
  t.emit(path, kind, ...(kind === 'defaults' ? [] : [p.name as string]));
  const at = (k: string): Array<string | number> => [...path, k];
  if (p.mode !== undefined) t.emit(at('mode'), 'mode', String(p.mode));
  if (p.bind !== undefined) {
    const binds = Array.isArray(p.bind) ? p.bind : [p.bind];
    // A bind is written as on a haproxy.cfg line: the address, then its options (`ssl crt FILE`).
    binds.forEach((b, i) => t.emit(Array.isArray(p.bind) ? [...path, 'bind', i] : at('bind'), 'bind', ...String(b).trim().split(/\s+/)));
  }
  if (p.defaultBackend !== undefined) t.emit(at('defaultBackend'), 'default_backend', String(p.defaultBackend));
  if (p.maxconn !== undefined) t.emit(at('maxconn'), 'maxconn', String(p.maxconn));
  if (p.balance !== undefined) t.emit(at('balance'), 'balance', String(p.balance));
  if (p.hashType !== undefined) t.emit(at('hashType'), 'hash-type', String(p.hashType));
  if (p.retries !== undefined) t.emit(at('retries'), 'retries', String(p.retries));
  if (p.redispatch !== undefined) {
    if (p.redispatch === true) t.emit(at('redispatch'), 'option', 'redispatch');
    else if (p.redispatch === false) t.emit(at('redispatch'), 'no', 'option', 'redispatch');
    else t.bad(at('redispatch'), `expected true or false`);
  }
  if (p.timeouts !== undefined) {
    if (!isObj(p.timeouts)) t.bad(at('timeouts'), 'expected an object');
    else
      for (const [k, v] of Object.entries(p.timeouts)) {
        const name = Object.hasOwn(TIMEOUT_NAMES, k) ? TIMEOUT_NAMES[k] : undefined;
        if (name === undefined) t.bad([...path, 'timeouts', k], `unknown timeout '${k}' (${Object.keys(TIMEOUT_NAMES).join(', ')})`);
        else t.emit([...path, 'timeouts', k], 'timeout', name, time(v));
      }
  }
  if (p.forwardFor !== undefined) {
    const f = p.forwardFor;
    if (f === true) t.emit(at('forwardFor'), 'option', 'forwardfor');
    else if (f === false) t.emit(at('forwardFor'), 'no', 'option', 'forwardfor');
    else if (checkKeys(t, at('forwardFor'), f, 'forwardFor')) {
      const w: string[] = ['option', 'forwardfor'];
      if (f.except !== undefined) w.push('except', String(f.except));
      if (f.header !== undefined) w.push('header', String(f.header));
      if (f.ifNone === true) w.push('if-none');
      t.emit(at('forwardFor'), ...w);
    }
  }
  if (p.httpCheck !== undefined) {
    const h = p.httpCheck;
    if (checkKeys(t, at('httpCheck'), h, 'httpCheck')) {
      t.emit(at('httpCheck'), 'option', 'httpchk', String(h.method ?? 'GET'), String(h.uri ?? '/'), String(h.version ?? 'HTTP/1.1'));
      if (h.host !== undefined) t.emit([...path, 'httpCheck', 'host'], 'http-check', 'send', 'hdr', 'host', String(h.host));
      if (h.expectStatus !== undefined) t.emit([...path, 'httpCheck', 'expectStatus'], 'http-check', 'expect', 'status', String(h.expectStatus));
      if (h.expectRstatus !== undefined) t.emit([...path, 'httpCheck', 'expectRstatus'], 'http-check', 'expect', 'rstatus', String(h.expectRstatus));
    }
  }
  if (p.cookie !== undefined) {
    const c = p.cookie;
    if (checkKeys(t, at('cookie'), c, 'cookie')) {
      const w: Array<string | number> = ['cookie', String(c.name ?? ''), String(c.mode ?? 'insert')];
      for (const f of ['indirect', 'nocache', 'postonly', 'preserve', 'httponly', 'secure', 'dynamic', 'sign'] as const) if (c[f] === true) w.push(f);
      for (const d of Array.isArray(c.domain) ? c.domain : c.domain !== undefined ? [c.domain] : []) w.push('domain', String(d));
      if (c.maxidle !== undefined) w.push('maxidle', typeof c.maxidle === 'number' ? `${c.maxidle}s` : String(c.maxidle));
      if (c.maxlife !== undefined) w.push('maxlife', typeof c.maxlife === 'number' ? `${c.maxlife}s` : String(c.maxlife));
      for (const a of Array.isArray(c.attr) ? c.attr : c.attr !== undefined ? [c.attr] : []) w.push('attr', String(a));
      t.emit(at('cookie'), ...w);
    }
  }
  if (p.dynamicCookieKey !== undefined) t.emit(at('dynamicCookieKey'), 'dynamic-cookie-key', String(p.dynamicCookieKey));
  if (p.errorFiles !== undefined) {
    // `errorFiles: { 503: /etc/haproxy/errors/503.http }`: one `errorfile CODE FILE` per entry.
    if (!isObj(p.errorFiles)) t.bad(at('errorFiles'), 'expected an object of status code: file');
    else for (const [code, f] of Object.entries(p.errorFiles)) t.emit([...path, 'errorFiles', code], 'errorfile', code, String(f));
  }
  if (Array.isArray(p.cookieKeys)) {
    p.cookieKeys.forEach((k, i) => {
      const kp = [...path, 'cookieKeys', i];
      if (!checkKeys(t, kp, k, 'cookieKey')) return;
      t.emit(kp, 'cookie-key', String(k.id ?? ''), String(k.secret ?? ''), ...(k.current === true ? ['current'] : []));
    });
  }
  if (p.defaultServer !== undefined && checkKeys(t, at('defaultServer'), p.defaultServer, 'server')) {
    t.emit(at('defaultServer'), 'default-server', ...serverWords(p.defaultServer));
  }
  if (p.servers !== undefined) {
    if (!Array.isArray(p.servers)) t.bad(at('servers'), 'expected a list');
    else
      p.servers.forEach((s, i) => {
        const sp = [...path, 'servers', i];
        if (!checkKeys(t, sp, s, 'server')) return;
        if (typeof s.name !== 'string' || typeof s.address !== 'string') t.bad(sp, `a server needs 'name' and 'address' (HOST:PORT)`);
        else t.emit(sp, 'server', s.name, s.address, ...serverWords(s));
      });
  }
  if (p.serverTemplates !== undefined) {
    if (!Array.isArray(p.serverTemplates)) t.bad(at('serverTemplates'), 'expected a list');
    else
      p.serverTemplates.forEach((s, i) => {
        const sp = [...path, 'serverTemplates', i];
        if (!checkKeys(t, sp, s, 'template')) return;
        t.emit(sp, 'server-template', String(s.prefix ?? ''), String(s.count ?? ''), String(s.fqdn ?? ''), ...serverWords(s));
      });
  }
  if (p.stickTable !== undefined && checkKeys(t, at('stickTable'), p.stickTable, 'table')) {
    t.emit(at('stickTable'), 'stick-table', ...tableWords(p.stickTable));
  }
  if (p.stick !== undefined) {
    if (!Array.isArray(p.stick)) t.bad(at('stick'), 'expected a list');
    else
      p.stick.forEach((r, i) => {
        const sp = [...path, 'stick', i];
        if (!checkKeys(t, sp, r, 'stick')) return;
        const kinds = (['on', 'match', 'storeRequest', 'storeResponse'] as const).filter((k) => r[k] !== undefined);
        if (kinds.length !== 1) {
          t.bad(sp, `a stick rule needs exactly one of on, match, storeRequest, storeResponse`);
          return;
        }
        const k = kinds[0]!;
        const kw = k === 'storeRequest' ? 'store-request' : k === 'storeResponse' ? 'store-response' : k;
        t.emit(sp, 'stick', kw, String(r[k]), ...(r.table !== undefined ? ['table', String(r.table)] : []));
      });
  }
  if (p.rules !== undefined) {
    if (!Array.isArray(p.rules)) t.bad(at('rules'), 'expected a list of haproxy.cfg rule lines');
    else
      p.rules.forEach((r, i) => {
        const rp = [...path, 'rules', i];
        if (typeof r !== 'string') t.bad(rp, `expected a haproxy.cfg line such as 'http-request deny if { src 10.0.0.0/8 }'`);
        else if (/[\r\n]/.test(r)) t.bad(rp, `one rule per list item (no line breaks)`);
        else {
          const kw = /^\s*(\S*)/.exec(r)![1]!;
          if (!RULE_KEYWORDS.has(kw)) t.bad(rp, `a rule line starts with ${[...RULE_KEYWORDS].join(', ')}; got '${kw.slice(0, 64)}'`);
          else t.emitRaw(rp, r);
        }
      });
  }
}

function tableWords(tb: Record<string, Json>): string[] {
  const w: string[] = [];
  if (tb.type !== undefined) w.push('type', String(tb.type));
  if (tb.len !== undefined) w.push('len', String(tb.len));
  if (tb.size !== undefined) w.push('size', String(tb.size));
  if (tb.expire !== undefined) w.push('expire', time(tb.expire));
  if (tb.store !== undefined) w.push('store', Array.isArray(tb.store) ? tb.store.join(',') : String(tb.store));
  if (tb.srvkey !== undefined) w.push('srvkey', String(tb.srvkey));
  if (tb.peers !== undefined) w.push('peers', String(tb.peers));
  if (tb.counters !== undefined) w.push('counters', String(tb.counters));
  return w;
}

/**
 * The line to blame when resolving aliases failed (yaml's error has no position): the alias an
 * unresolved-alias message names, else the first alias of an anchor that itself holds aliases
 * (the nesting an alias bomb is made of), else the first alias.
 */
function aliasLine(doc: Document, lc: LineCounter, message: string): number {
  const { isAlias, isCollection, visit } = yaml();
  const unresolved = /Unresolved alias[^:]*: (.+)$/.exec(message)?.[1];
  const anchors = new Map<string, Node>();
  let first: number | undefined;
  let nested: number | undefined;
  visit(doc, {
    Node(_k, node) {
      if (isAlias(node)) {
        const at = node.range?.[0];
        const line = at === undefined ? undefined : lc.linePos(at).line;
        if (unresolved !== undefined && node.source === unresolved && !anchors.has(node.source)) {
          nested ??= line;
          return visit.BREAK;
        }
        first ??= line;
        const target = anchors.get(node.source);
        if (nested === undefined && target !== undefined && isCollection(target)) {
          let holdsAlias = false;
          visit(target, { Alias: () => ((holdsAlias = true), visit.BREAK) });
          if (holdsAlias) nested = line;
        }
      } else if (node.anchor) anchors.set(node.anchor, node);
      return undefined;
    },
  });
  return nested ?? first ?? 1;
}

/**
 * The yaml library, loaded on the first native file: a haproxy.cfg node never loads it (about
 * 1 MiB of heap and 4 MiB of resident memory at start, docs/BENCHMARKS.md#memory).
 */
let yamlLib: typeof import('yaml') | undefined;
function yaml(): typeof import('yaml') {
  return (yamlLib ??= createRequire(import.meta.url)('yaml') as typeof import('yaml'));
}

/** An empty parse carrying `issues`: what a native file that could not be translated yields. */
function failed(file: string, env: NodeJS.ProcessEnv, issues: ProblemList<ConfigIssue>): ParseOutput {
  return { ...parseHaproxyConfig('', file, env), issues };
}

/** Parses native YAML/JSON text into the model. Never throws for bad input. */
export function parseNativeConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): ParseOutput {
  const { LineCounter, isMap, parseDocument } = yaml();
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    // prettyErrors would compute a position for every error; only the reported ones get one.
    const issues = new ProblemList<ConfigIssue>();
    for (const e of doc.errors) {
      if (!issues.countedOnly()) issues.push({ loc: { file, line: lc.linePos(e.pos[0]).line }, directive: 'syntax', message: e.message.split('\n')[0]!.slice(0, 200) });
    }
    return failed(file, env, issues);
  }
  let root: Json;
  try {
    root = doc.toJS() as Json;
  } catch (err) {
    // yaml refuses an alias bomb (or an alias without anchor) while building values.
    const message = (err as Error).message;
    const issues = new ProblemList<ConfigIssue>();
    const bomb = /Excessive alias count/.test(message);
    issues.push({
      loc: { file, line: aliasLine(doc, lc, message) },
      directive: 'syntax',
      message: bomb ? 'YAML aliases expand to too many nodes (an alias bomb); write the values out or use fewer nested aliases' : message,
    });
    return failed(file, env, issues);
  }
  const t = new Translator(file, doc, lc);
  if (!isMap(doc.contents)) {
    t.bad([], 'the configuration must be a mapping with global, defaults, frontends, backends, peers, resolvers');
    return failed(file, env, t.issues);
  }
  const c = convict(nativeSchema as unknown as convict.Schema<Record<string, unknown>>, { env, args: [] });
  try {
    c.load(root as object);
    c.validate({ allowed: 'strict' });
  } catch (err) {
    for (const i of convictProblems((err as Error).message, file, env, (key) => t.lineOf(key === '' ? [] : key.split('.')))) t.issues.push(i);
    return failed(file, env, t.issues);
  }
  const r = root as Record<string, Json>;
  if (r.defaults !== undefined && Object.keys(r.defaults as object).length > 0) translateProxy(t, 'defaults', ['defaults'], r.defaults);
  for (const [key, kind] of [['frontends', 'frontend'], ['backends', 'backend'], ['listen', 'listen']] as const) {
    const list = r[key];
    if (Array.isArray(list)) list.forEach((p, i) => translateProxy(t, kind, [key, i], p));
  }
  if (Array.isArray(r.peers)) {
    r.peers.forEach((p, i) => {
      const path = ['peers', i];
      if (!checkKeys(t, path, p, 'peers')) return;
      t.emit(path, 'peers', String(p.name ?? ''));
      if (p.bind !== undefined) t.emit([...path, 'bind'], 'bind', String(p.bind));
      if (p.secret !== undefined) t.emit([...path, 'secret'], 'shared-secret', String(p.secret));
      if (p.cluster !== undefined) t.emit([...path, 'cluster'], 'cluster-name', String(p.cluster));
      for (const [k, kw] of [['tlsCert', 'tls-cert'], ['tlsKey', 'tls-key'], ['tlsCa', 'tls-ca']] as const) {
        if (p[k] !== undefined) t.emit([...path, k], kw, String(p[k]));
      }
      if (p.resyncTimeout !== undefined) t.emit([...path, 'resyncTimeout'], 'resync-timeout', time(p.resyncTimeout));
      (Array.isArray(p.peers) ? p.peers : []).forEach((x, j) => {
        if (checkKeys(t, [...path, 'peers', j], x, 'peer')) t.emit([...path, 'peers', j], 'server', String(x.name ?? ''), ...(x.address !== undefined ? [String(x.address)] : []));
      });
      (Array.isArray(p.tables) ? p.tables : []).forEach((x, j) => {
        if (checkKeys(t, [...path, 'tables', j], x, 'table')) t.emit([...path, 'tables', j], 'table', String(x.name ?? ''), ...tableWords(x));
      });
    });
  }
  if (Array.isArray(r.resolvers)) {
    r.resolvers.forEach((p, i) => {
      const path = ['resolvers', i];
      if (!checkKeys(t, path, p, 'resolvers')) return;
      t.emit(path, 'resolvers', String(p.name ?? ''));
      (Array.isArray(p.nameservers) ? p.nameservers : []).forEach((x, j) => {
        if (checkKeys(t, [...path, 'nameservers', j], x, 'nameserver')) t.emit([...path, 'nameservers', j], 'nameserver', String(x.name ?? ''), String(x.address ?? ''));
      });
      if (p.acceptedPayloadSize !== undefined) t.emit([...path, 'acceptedPayloadSize'], 'accepted_payload_size', String(p.acceptedPayloadSize));
      if (p.resolveRetries !== undefined) t.emit([...path, 'resolveRetries'], 'resolve_retries', String(p.resolveRetries));
      if (p.timeoutResolve !== undefined) t.emit([...path, 'timeoutResolve'], 'timeout', 'resolve', time(p.timeoutResolve));
      if (p.timeoutRetry !== undefined) t.emit([...path, 'timeoutRetry'], 'timeout', 'retry', time(p.timeoutRetry));
      if (isObj(p.hold)) for (const [k, v] of Object.entries(p.hold)) t.emit([...path, 'hold', k], 'hold', k, time(v));
    });
  }
  const out = parseHaproxyConfig(t.lines.join('\n'), file, {});
  const remap = (loc: SourceLoc): SourceLoc => ({ file, line: t.lineMap[loc.line - 1] ?? loc.line });
  remapLocs(out.config, remap);
  const g = c.getProperties() as { global: GlobalValues };
  out.config.global = {
    maxconn: g.global.maxconn,
    logLevel: g.global.logLevel,
    localPeer: g.global.localPeer === '' ? undefined : g.global.localPeer,
    admin: { host: g.global.admin.host, port: g.global.admin.port, token: g.global.admin.token === '' ? undefined : g.global.admin.token, ...nativeAdminLoc(t, env), ...allowOrigins(g.global.admin.allowOrigins) },
    dataDir: g.global.dataDir,
    maxAccept: Number(g.global.maxAccept),
    nbthread: Number(g.global.nbthread),
  };
  const issues = t.issues;
  issues.addAll(out.issues, (i) => ({ ...i, loc: remap(i.loc) }));
  const warnings = new ProblemList<ConfigWarning>();
  warnings.addAll(out.warnings, (w) => ({ ...w, loc: remap(w.loc) }));
  return { config: out.config, issues, warnings };
}

/** Where the native config or its environment gave the admin address, if it did (GlobalConfig.admin.loc). */
function nativeAdminLoc(t: Translator, env: NodeJS.ProcessEnv): { loc?: SourceLoc } {
  for (const k of ['STICKMESH_ADMIN_PORT', 'STICKMESH_ADMIN_HOST']) if (env[k] !== undefined) return { loc: { file: k, line: 0 } };
  for (const k of ['port', 'host']) if (t.has(['global', 'admin', k])) return { loc: { file: t.file, line: t.lineOf(['global', 'admin', k]) } };
  return {};
}

/** Rewrites every `loc` in the model in place (translated line numbers → source lines). */
function remapLocs(v: unknown, remap: (l: SourceLoc) => SourceLoc): void {
  if (Array.isArray(v)) for (const x of v) remapLocs(x, remap);
  else if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    for (const [k, x] of Object.entries(o)) {
      if (k === 'loc' && typeof x === 'object' && x !== null && 'line' in x) o[k] = remap(x as SourceLoc);
      else remapLocs(x, remap);
    }
  }
}

