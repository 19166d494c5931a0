/**
 * The haproxy.cfg front door: parses the subset of HAProxy's language that sticky-session setups
 * use into the one config model. Every line is either understood or reported: an unknown or
 * unsupported directive is an error naming `file:line` and the directive, because a silently
 * ignored persistence directive is how stickiness breaks unnoticed. Directives that only concern
 * HAProxy's process management or its text logs are accepted with a warning saying they have no
 * effect. Every problem in a file is counted, not just the first; the first 100 are kept (ProblemList).
 */
import type {
  AclConfig,
  BackendConfig,
  BalanceAlgorithm,
  BindConfig,
  BindSslConfig,
  ConfigWarning,
  CookieConfig,
  CookieKeyConfig,
  ErrorFileConfig,
  ForwardForConfig,
  FrontendConfig,
  GlobalConfig,
  HashType,
  HttpCheckConfig,
  PeersConfig,
  ProxyMode,
  ResolversConfig,
  ServerConfig,
  ServerSettings,
  ServerTemplateConfig,
  SourceLoc,
  StickKeyType,
  StickRuleConfig,
  StickTableConfig,
  StickmeshConfig,
  Timeouts,
  RuleSet,
  UseBackendConfig,
} from './model.js';
import { MAX_NBTHREAD } from './model.js';
import type { RuleContext } from './fetches.js';
import { RuleSyntaxError, checkCondWhere, parseAclLine, parseCond, parseRule, parseStore } from './rules.js';
import type { ConfigIssue } from '../errors.js';
import { defaultGlobal, defaultServerSettings, defaultTimeouts, finishServerSettings, finishTimeouts } from './defaults.js';
import { parseHostPort, parseInteger, parseSize, parseTime } from './units.js';
import { tokenizeLine } from './tokenize.js';
import { MAX_ALLOWED_ORIGINS, parseOrigin } from '../util/origin.js';
import { ProblemList } from './problems.js';
import { SERVER_TLS_WORDS, finishServerTls, globalServerTlsLine, serverTlsWord } from './server-tls.js';
import { BIND_OPTION_WORDS, emptySslDraft, finishSsl, readSslOption, type SslDraft } from './bind-ssl.js';
import { meanHint } from '../util/suggest.js';
import { ERRORFILE_CODES, readErrorFile } from './errorfile.js';

/** What a front door parsed; the problem lists keep the first problems and count all of them. */
export interface ParseOutput {
  config: StickmeshConfig;
  issues: ProblemList<ConfigIssue>;
  warnings: ProblemList<ConfigWarning>;
}

/** Settings a `defaults` section passes on to the proxies after it. */
interface ProxyDefaults {
  mode: ProxyMode;
  balance: BalanceAlgorithm;
  hashType: HashType;
  timeouts: Timeouts;
  retries: number;
  redispatch: boolean;
  forwardFor?: ForwardForConfig;
  httpCheck?: HttpCheckConfig;
  cookie?: CookieConfig;
  dynamicCookieKey?: string;
  cookieKeys: CookieKeyConfig[];
  server: ServerSettings;
  maxconn: number;
  modeSet?: boolean;
  /** `timeout tarpit`. */
  tarpitTimeout?: number;
  /** `errorfile` lines by status. */
  errorFiles: Map<number, ErrorFileConfig>;
}

type Cap = 'defaults' | 'frontend' | 'backend' | 'listen';

interface ProxyDraft extends ProxyDefaults {
  cap: Cap;
  /** Whether `mode` was written (here or in defaults); an unwritten mode may be inferred. */
  modeSet?: boolean;
  name: string;
  loc: SourceLoc;
  binds: BindConfig[];
  /** `bind` lines written, valid or not (a frontend whose bind line failed is not also "without bind"). */
  bindLines: number;
  defaultBackend?: string;
  defaultBackendLoc?: SourceLoc;
  servers: ServerConfig[];
  serverTemplates: ServerTemplateConfig[];
  stickRules: StickRuleConfig[];
  stickTable?: StickTableConfig;
  /** Names in `servers`, for the duplicate check in constant time. */
  serverNames: Set<string>;
  /** ACLs and rules in config order; `acls` indexes `rules.acls` by name. */
  rules: RuleSet;
  acls: Map<string, AclConfig>;
  useBackends: UseBackendConfig[];
  /** `tcp-request inspect-delay`. */
  inspectDelay?: number;
}

function emptyRuleSet(): RuleSet {
  return { acls: [], tcpRequestConnection: [], tcpRequestContent: [], httpRequest: [], httpResponse: [] };
}

function hasRules(r: RuleSet): boolean {
  return r.acls.length + r.tcpRequestConnection.length + r.tcpRequestContent.length + r.httpRequest.length + r.httpResponse.length > 0;
}

/** A proxy section's draft, starting from the current defaults. */
function newDraft(d: ProxyDefaults, cap: Cap, name: string, loc: SourceLoc): ProxyDraft {
  return {
    ...cloneDefaults(d), cap, name, loc, binds: [], bindLines: 0, servers: [], serverTemplates: [], stickRules: [], serverNames: new Set(),
    rules: emptyRuleSet(), acls: new Map(), useBackends: [],
  };
}

type Section =
  | { kind: 'global' }
  | { kind: 'proxy'; draft: ProxyDraft }
  | { kind: 'peers'; cfg: PeersConfig; peerNames: Set<string>; tableNames: Set<string> }
  | { kind: 'resolvers'; cfg: ResolversConfig };

const SECTION_KEYWORDS = new Set(['global', 'defaults', 'frontend', 'backend', 'listen', 'peers', 'resolvers']);
const SECTION_LIST = [...SECTION_KEYWORDS].join(', ');

/** Section keywords of HAProxy that stickmesh does not implement (reported once, body skipped). */
const UNSUPPORTED_SECTIONS = new Set(['userlist', 'cache', 'program', 'http-errors', 'ring', 'mailers', 'fcgi-app', 'crt-store', 'traces']);

function cloneDefaults(d: ProxyDefaults): ProxyDefaults {
  return {
    ...d,
    timeouts: { ...d.timeouts },
    server: { ...d.server },
    forwardFor: d.forwardFor ? { ...d.forwardFor } : undefined,
    httpCheck: d.httpCheck ? { ...d.httpCheck } : undefined,
    cookie: d.cookie ? { ...d.cookie, domains: [...d.cookie.domains], attrs: [...d.cookie.attrs] } : undefined,
    cookieKeys: [...d.cookieKeys],
    errorFiles: new Map(d.errorFiles),
  };
}

function initialDefaults(): ProxyDefaults {
  return {
    mode: 'tcp',
    balance: 'roundrobin',
    hashType: 'map-based',
    timeouts: defaultTimeouts(),
    retries: 3,
    redispatch: false,
    cookieKeys: [],
    server: defaultServerSettings(),
    maxconn: 2000,
    errorFiles: new Map(),
  };
}

const NO_EFFECT_GLOBAL = new Set([
  'daemon', 'master-worker', 'nbproc', 'user', 'group', 'uid', 'gid', 'chroot', 'pidfile', 'stats',
  'ulimit-n', 'tune.ssl.default-dh-param',
  'hard-stop-after', 'cpu-map', 'quiet', 'node', 'description', 'setenv', 'presetenv', 'unsetenv',
]);

/** Global keywords, for "did you mean" (those handled by server-tls.ts included). */
const GLOBAL_WORDS: readonly string[] = [
  'maxconn', 'localpeer', 'log', 'log-level', 'admin-bind', 'admin-token', 'admin-allow-origin', 'data-dir', 'crt-base', 'ca-base',
  'ssl-default-bind-options', 'ssl-default-bind-ciphers', 'ssl-default-bind-ciphersuites', 'ssl-server-verify',
  'ssl-default-server-options', 'ssl-default-server-ciphers', 'ssl-default-server-ciphersuites', 'tune.maxaccept', 'tune.bufsize', 'nbthread',
];

/** `option` names: supported, accepted without effect, or refused by name. */
const OPTION_WORDS: readonly string[] = [
  'redispatch', 'forwardfor', 'httpchk', 'http-keep-alive', 'http-server-close', 'httpclose', 'http-pretend-keepalive',
  'abortonclose', 'allbackups', 'persist', 'splice-auto', 'tcp-check', 'ssl-hello-chk', 'mysql-check', 'redis-check', 'pgsql-check',
  'smtpchk', 'ldap-check', 'http-use-proxy-header', 'originalto', 'socket-stats', 'tcpka', 'clitcpka', 'srvtcpka',
  'httplog', 'tcplog', 'dontlognull', 'log-health-checks', 'log-separate-errors', 'logasap', 'dontlog-normal',
];

/** Server option words (TLS ones from server-tls.ts). */
const SERVER_OPTION_WORDS: readonly string[] = [
  'check', 'no-check', 'backup', 'no-backup', 'disabled', 'enabled', 'cookie', 'weight', 'inter', 'fastinter', 'downinter', 'rise', 'fall',
  'port', 'maxconn', 'resolvers', 'init-addr', 'resolve-prefer', 'resolve-opts', 'id', 'no-ssl', 'no-check-ssl', 'no-verifyhost', 'check-alpn',
  ...SERVER_TLS_WORDS.split(', '),
];

const BALANCE_WORDS: readonly string[] = ['roundrobin', 'static-rr', 'leastconn', 'source', 'random'];

const LOG_OPTIONS = new Set(['httplog', 'tcplog', 'dontlognull', 'log-health-checks', 'log-separate-errors', 'logasap', 'dontlog-normal']);

/** Keywords allowed per section capability. `F` frontend, `B` backend, `D` defaults. */
// (PROXY_WORDS below lists them with the section keywords and the ones refused by name.)
const PROXY_KEYWORDS: Record<string, string> = {
  mode: 'DFB', bind: 'F', default_backend: 'DF', maxconn: 'DF', balance: 'DB', 'hash-type': 'DB', cookie: 'DB',
  'dynamic-cookie-key': 'DB', 'cookie-key': 'DB', server: 'B', 'server-template': 'B', 'default-server': 'DB', option: 'DFB',
  'no': 'DFB', retries: 'DB', 'http-check': 'DB', timeout: 'DFB', stick: 'B', 'stick-table': 'FB', log: 'DFB',
  'log-format': 'DFB', description: 'DFB', enabled: 'DFB', disabled: 'DFB', 'http-reuse': 'DB', errorfile: 'DFB',
  acl: 'FB', 'http-request': 'FB', 'http-response': 'FB', 'tcp-request': 'FB', use_backend: 'F',
};

/** Words a proxy section line may start with, for "did you mean". */
const PROXY_WORDS: readonly string[] = [...Object.keys(PROXY_KEYWORDS), 'compression', 'stats', 'global', 'defaults', 'frontend', 'backend', 'listen', 'peers', 'resolvers'];

/** Rule keywords HAProxy refuses in an unnamed defaults section (stickmesh has no named defaults). */
const NOT_IN_DEFAULTS = new Set(['acl', 'http-request', 'http-response', 'tcp-request', 'use_backend']);

/** Keys in one backend's cookie key ring (rotation needs two or three). */
const MAX_COOKIE_KEYS = 64;

const TIMEOUT_KEYS: Record<string, keyof Timeouts> = {
  connect: 'connect', client: 'client', server: 'server', 'http-request': 'httpRequest',
  'http-keep-alive': 'httpKeepAlive', tunnel: 'tunnel', check: 'check', queue: 'queue',
};

class Parser {
  readonly issues = new ProblemList<ConfigIssue>();
  readonly warnings = new ProblemList<ConfigWarning>();
  readonly global: GlobalConfig = defaultGlobal();
  private defaults: ProxyDefaults = initialDefaults();
  readonly frontends: FrontendConfig[] = [];
  readonly backends: BackendConfig[] = [];
  readonly peers: PeersConfig[] = [];
  readonly resolvers: ResolversConfig[] = [];
  private section: Section | undefined;
  /** Frontends whose mode was not written: they take the mode of their default backend. */
  readonly implicitMode = new Set<FrontendConfig>();
  private skipping = false;
  private loc: SourceLoc = { file: '', line: 0 };
  /** Environment variables the current line referred to that were not set. */
  private unset: string[] | undefined;
  private directive = '';
  /** Global `ssl-default-bind-*` so far, the starting point of each `ssl` bind. */
  private sslDefaults: SslDraft | undefined;

  constructor(readonly file: string, private readonly env: NodeJS.ProcessEnv) {}

  private err(message: string, directive = this.directive): void {
    const hint = this.unset ? ` (environment variable${this.unset.length > 1 ? 's' : ''} ${this.unset.join(', ')} not set)` : '';
    this.issues.push({ loc: this.loc, directive, message: message + hint });
  }

  /**
   * `; did you mean 'X'?` for a mistyped `word`, or '' (also once the problem list is full: the
   * message will not be kept, so the search is skipped).
   */
  private hint(word: string | undefined, candidates: Iterable<string>): string {
    return word === undefined || this.issues.full ? '' : meanHint(word, candidates);
  }

  private warn(message: string, directive = this.directive): void {
    this.warnings.push({ loc: this.loc, directive, message });
  }

  /** Reads a typed value or records an error; returns undefined on error. */
  private num(v: number | string, what: string): number | undefined {
    if (typeof v === 'string') {
      this.err(`${what}: ${v}`);
      return undefined;
    }
    return v;
  }

  private need(args: string[], i: number, what: string): string | undefined {
    const v = args[i];
    if (v === undefined) this.err(`missing ${what}`);
    return v;
  }

  /** Offset in the text of the next line `step` reads, and that line's number minus one. */
  private at = 0;
  private lineNo = 0;

  parse(text: string): void {
    while (!this.step(text, Infinity));
  }

  /**
   * Parses up to `maxLines` more lines of `text` (the same text on every call); true once the
   * whole text is parsed and the last section closed. One pass over the lines, without an array
   * of them: linear in the text, whatever it holds.
   */
  step(text: string, maxLines: number): boolean {
    for (let k = 0; k < maxLines; k++) {
      if (this.at > text.length) {
        this.closeSection();
        return true;
      }
      let end = text.indexOf('\n', this.at);
      if (end === -1) end = text.length;
      const line = text.slice(this.at, end);
      this.at = end + 1;
      this.loc = { file: this.file, line: ++this.lineNo };
      const t = tokenizeLine(line, this.env);
      if ('error' in t) {
        this.unset = undefined;
        if (this.issues.countedOnly()) continue;
        this.directive = /^\s*(\S{0,64})/.exec(line)?.[1] ?? '';
        this.err(t.error);
        continue;
      }
      const tokens = t.tokens;
      this.unset = t.unset;
      if (tokens.length === 0) continue;
      const kw = tokens[0]!;
      this.directive = tokens.length > 1 && (kw === 'option' || kw === 'no' || kw === 'timeout' || kw === 'stick' || kw === 'http-check' || kw === 'tcp-request') ? `${kw} ${tokens[1]}` : kw;
      if (SECTION_KEYWORDS.has(kw)) {
        this.closeSection();
        this.openSection(kw, tokens.slice(1));
        continue;
      }
      if (UNSUPPORTED_SECTIONS.has(kw)) {
        this.closeSection();
        this.err(`section '${kw}' is not supported by stickmesh`);
        this.skipping = true;
        continue;
      }
      if (this.skipping) continue;
      const s = this.section;
      if (!s) {
        if (!this.issues.countedOnly()) this.err(`'${kw}' appears outside of any section (expected one of ${SECTION_LIST} first)${this.hint(kw, SECTION_KEYWORDS)}`);
        continue;
      }
      if (s.kind === 'global') this.globalLine(tokens);
      else if (s.kind === 'proxy') this.proxyLine(s.draft, tokens);
      else if (s.kind === 'peers') this.peersLine(s, tokens);
      else this.resolversLine(s.cfg, tokens);
    }
    return false;
  }

  private openSection(kw: string, args: string[]): void {
    this.skipping = false;
    const loc = this.loc;
    if (kw === 'global') {
      if (args.length > 0) this.err(`'global' takes no name`);
      this.section = { kind: 'global' };
      return;
    }
    const name = args[0];
    if (kw === 'defaults') {
      if (args.length > 1) this.err(`'defaults' named defaults and 'from' are not supported; use one unnamed defaults section`);
      this.section = { kind: 'proxy', draft: newDraft(this.defaults, 'defaults', name ?? '', loc) };
      return;
    }
    if (name === undefined) {
      this.err(`'${kw}' needs a name`);
      this.skipping = true;
      this.section = undefined;
      return;
    }
    if (!/^[A-Za-z0-9_.:-]+$/.test(name)) this.err(`invalid name '${name}' (letters, digits, '_', '.', ':', '-')`);
    if (kw === 'peers') {
      if (args.length > 1) this.err(`unexpected '${args[1]}' after the section name`);
      this.section = { kind: 'peers', cfg: { name, peers: [], tables: [], loc }, peerNames: new Set(), tableNames: new Set() };
      return;
    }
    if (kw === 'resolvers') {
      if (args.length > 1) this.err(`unexpected '${args[1]}' after the section name`);
      this.section = {
        kind: 'resolvers',
        cfg: {
          name,
          nameservers: [],
          resolveRetries: 3,
          timeoutResolve: 1000,
          timeoutRetry: 1000,
          hold: { valid: 10000, obsolete: 0, nx: 30000, timeout: 30000, refused: 30000, other: 30000 },
          acceptedPayloadSize: 512,
          loc,
        },
      };
      return;
    }
    if (args.length > 1) {
      if (args[1] === 'from') this.err(`'from' (named defaults) is not supported`);
      else this.err(`unexpected '${args[1]}' after the section name (listening addresses go on a 'bind' line)`);
    }
    this.section = { kind: 'proxy', draft: newDraft(this.defaults, kw as Cap, name, loc) };
  }

  private closeSection(): void {
    const s = this.section;
    this.section = undefined;
    if (!s) return;
    if (s.kind === 'peers') this.peers.push(s.cfg);
    else if (s.kind === 'resolvers') this.resolvers.push(s.cfg);
    else if (s.kind === 'proxy') {
      const d = s.draft;
      if (d.cap === 'defaults') {
        const { cap: _c, name: _n, loc: _l, binds: _b, bindLines: _bl, servers: _s, serverTemplates: _t, stickRules: _r, stickTable: _st, defaultBackend: _db, defaultBackendLoc: _dbl, serverNames: _sn, rules: _ru, acls: _a, useBackends: _u, inspectDelay: _i, ...rest } = d;
        this.defaults = rest;
        return;
      }
      const errorFiles = d.errorFiles.size > 0 ? { errorFiles: [...d.errorFiles.values()] } : {};
      if (d.cap === 'frontend' || d.cap === 'listen') {
        this.alpnForMode(d);
        // Reported here rather than by validate: a bind line that failed was reported already.
        if (d.binds.length === 0 && d.bindLines === 0) this.issues.push({ loc: d.loc, directive: 'bind', message: `${d.cap} '${d.name}' has no 'bind' line` });
        this.frontends.push({
          name: d.name,
          mode: d.mode,
          binds: d.binds,
          defaultBackend: d.cap === 'listen' ? d.name : d.defaultBackend,
          ...(d.cap === 'frontend' && d.defaultBackendLoc ? { defaultBackendLoc: d.defaultBackendLoc } : {}),
          ...errorFiles,
          forwardFor: d.forwardFor,
          timeouts: finishTimeouts({ ...d.timeouts }),
          maxconn: d.maxconn,
          ...(hasRules(d.rules) ? { rules: d.rules } : {}),
          ...(d.useBackends.length > 0 ? { useBackends: d.useBackends } : {}),
          ...(d.tarpitTimeout !== undefined ? { tarpitTimeout: d.tarpitTimeout } : {}),
          ...(d.inspectDelay !== undefined ? { inspectDelay: d.inspectDelay } : {}),
          // A listen section's table belongs to its backend side (one table, one id).
          ...(d.cap === 'frontend' && d.stickTable ? { stickTable: d.stickTable } : {}),
          loc: d.loc,
        });
        if (!d.modeSet) this.implicitMode.add(this.frontends[this.frontends.length - 1]!);
      }
      if (d.cap === 'backend' || d.cap === 'listen') {
        // A cookie only means something in HTTP: a backend that never wrote `mode` but persists by
        // cookie is run in HTTP mode (HAProxy would ignore the cookie with a warning).
        if (!d.modeSet && d.cookie) d.mode = 'http';
        this.backends.push({
          name: d.name,
          mode: d.mode,
          balance: d.balance,
          hashType: d.hashType,
          cookie: d.cookie,
          dynamicCookieKey: d.dynamicCookieKey,
          cookieKeys: d.cookieKeys,
          servers: d.servers,
          serverTemplates: d.serverTemplates,
          redispatch: d.redispatch,
          retries: d.retries,
          forwardFor: d.forwardFor,
          httpCheck: d.httpCheck,
          timeouts: finishTimeouts({ ...d.timeouts }),
          stickRules: d.stickRules,
          stickTable: d.stickTable,
          ...(hasRules(d.rules) ? { rules: d.rules } : {}),
          ...(d.tarpitTimeout !== undefined ? { tarpitTimeout: d.tarpitTimeout } : {}),
          ...(d.inspectDelay !== undefined ? { inspectDelay: d.inspectDelay } : {}),
          ...errorFiles,
          loc: d.loc,
        });
      }
    }
  }

  // ---------------------------------------------------------------- global

  private globalLine(t: string[]): void {
    const kw = t[0]!;
    const a = t.slice(1);
    const g = this.global;
    if (globalServerTlsLine(g, kw, a, (m) => this.err(m))) return;
    switch (kw) {
      case 'maxconn': {
        const v = this.num(parseInteger(a[0] ?? '', 1, 10_000_000), 'maxconn');
        if (v !== undefined) g.maxconn = v;
        return;
      }
      case 'localpeer':
        if (this.need(a, 0, 'peer name') !== undefined) g.localPeer = a[0];
        return;
      case 'log':
        this.warn(`stickmesh writes JSON log lines to stdout (pino); syslog targets have no effect`);
        return;
      case 'log-level': {
        const v = a[0] ?? '';
        if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(v)) this.err(`'${v}' is not a level (fatal, error, warn, info, debug, trace, silent)`);
        else g.logLevel = v as GlobalConfig['logLevel'];
        return;
      }
      case 'admin-bind': {
        const hp = parseHostPort(a[0] ?? '');
        if (typeof hp === 'string' || hp.port === undefined) this.err(`expects ADDRESS:PORT, got '${a[0] ?? ''}'`);
        else g.admin = { ...g.admin, host: hp.host === '' ? '0.0.0.0' : hp.host, port: hp.port, loc: this.loc };
        return;
      }
      case 'admin-token':
        if (this.need(a, 0, 'token') !== undefined) g.admin = { ...g.admin, token: a[0] };
        return;
      case 'admin-allow-origin': {
        if (this.need(a, 0, 'origin') === undefined) return;
        const list = [...(g.admin.allowOrigins ?? [])];
        for (const o of a) {
          const v = parseOrigin(o);
          if (typeof v !== 'string') this.err(v.error);
          else if (!list.includes(v)) list.push(v);
        }
        if (list.length > MAX_ALLOWED_ORIGINS) this.err(`at most ${MAX_ALLOWED_ORIGINS} origins`);
        else g.admin = { ...g.admin, allowOrigins: list };
        return;
      }
      case 'data-dir':
        if (this.need(a, 0, 'directory') !== undefined) g.dataDir = a[0]!;
        return;
      case 'crt-base':
        if (this.need(a, 0, 'directory') !== undefined) g.crtBase = a[0]!;
        return;
      case 'ssl-default-bind-options':
      case 'ssl-default-bind-ciphers':
      case 'ssl-default-bind-ciphersuites':
        return this.sslDefaultBindLine(kw, a);
      case 'tune.maxaccept': {
        // HAProxy's -1 (no limit) maps to the largest value stickmesh opens.
        const v = a[0] === '-1' ? 64 : this.num(parseInteger(a[0] ?? '', 1, 64), "'tune.maxaccept' (1..64 or -1)");
        if (v !== undefined) g.maxAccept = v;
        return;
      }
      case 'nbthread': {
        const v = this.num(parseInteger(a[0] ?? '', 1, MAX_NBTHREAD), `'nbthread' (1..${MAX_NBTHREAD})`);
        if (v !== undefined) g.nbthread = v;
        return;
      }
    }
    if (NO_EFFECT_GLOBAL.has(kw) || kw.startsWith('tune.')) {
      this.warn(`'${kw}' has no effect in stickmesh (process settings belong to the service manager)`, kw);
      return;
    }
    if (!this.issues.countedOnly()) this.err(`unknown keyword '${kw}' in 'global' section${this.hint(kw, [...GLOBAL_WORDS, ...NO_EFFECT_GLOBAL, ...SECTION_KEYWORDS])}`, kw);
  }

  /**
   * stickmesh speaks HTTP/1.1 only: in mode http, `h2` (and `h3`) are dropped from an `alpn` list
   * with a warning, so the common `alpn h2,http/1.1` serves HTTP/1.1 rather than refusing to load
   * (a client offered no h2 falls back to HTTP/1.1). Mode tcp offers the list as written: the
   * server behind speaks whatever was negotiated. Runs once the section's mode is final.
   */
  private alpnForMode(d: ProxyDraft): void {
    if (d.mode !== 'http' && d.modeSet) return;
    const done = new Set<BindSslConfig>();
    for (const b of d.binds) {
      const ssl = b.ssl;
      if (!ssl?.alpn || done.has(ssl)) continue;
      done.add(ssl);
      const kept = ssl.alpn.filter((p) => p !== 'h2' && p !== 'h3');
      if (kept.length === ssl.alpn.length) continue;
      if (d.mode !== 'http') continue; // an unwritten mode may still become tcp (implicit mode): keep
      this.warnings.push({ loc: b.loc, directive: 'bind', message: `HTTP/2 is not supported: 'h2' is not offered by ALPN (${kept.length > 0 ? `offered: ${kept.join(',')}` : 'no protocol offered: clients use HTTP/1.1'})` });
      if (kept.length > 0) ssl.alpn = kept;
      else delete ssl.alpn;
    }
  }

  /** `ssl-default-bind-options|ciphers|ciphersuites`: checked here, applied to every later `ssl` bind. */
  private sslDefaultBindLine(kw: string, a: string[]): void {
    const d = (this.sslDefaults ??= emptySslDraft());
    const g = this.global;
    const cur = (g.sslDefaultBind ??= { options: [] });
    if (kw === 'ssl-default-bind-options') {
      for (let i = 0; i < a.length; ) {
        const r = readSslOption(d, a, i, 'default-options', undefined);
        if (typeof r !== 'number') {
          this.err(r.error);
          return;
        }
        i = r;
      }
      cur.options.push(...a);
      return;
    }
    const v = this.need(a, 0, kw === 'ssl-default-bind-ciphers' ? 'cipher list' : 'TLS 1.3 cipher suites');
    if (v === undefined) return;
    if (a.length > 1) this.err(`unexpected '${a[1]}' (one ':'-separated list)`);
    else if (kw === 'ssl-default-bind-ciphers') d.ciphers = cur.ciphers = v;
    else d.ciphersuites = cur.ciphersuites = v;
  }

  // ---------------------------------------------------------------- proxies

  private proxyLine(d: ProxyDraft, t: string[]): void {
    const kw = t[0]!;
    const a = t.slice(1);
    // Own keys only: `constructor` or `__proto__` as a keyword must be unknown, not Object's.
    const caps = Object.hasOwn(PROXY_KEYWORDS, kw) ? PROXY_KEYWORDS[kw] : undefined;
    const secName = d.cap === 'defaults' ? 'defaults' : `${d.cap} '${d.name}'`;
    if (caps === undefined) {
      if (kw === 'compression' || kw === 'stats')
        this.err(`'${kw}' is not supported by stickmesh`, kw);
      else if (!this.issues.countedOnly()) this.err(`unknown keyword '${kw}' in ${secName} section${this.hint(kw, PROXY_WORDS)}`, kw);
      return;
    }
    if (d.cap === 'defaults' && NOT_IN_DEFAULTS.has(kw)) {
      this.err(`'${kw}' is not allowed in an unnamed defaults section (HAProxy refuses it too); write it in each frontend or backend`, kw);
      return;
    }
    const has = d.cap === 'defaults' ? caps.includes('D') : d.cap === 'listen' ? caps.includes('F') || caps.includes('B') : caps.includes(d.cap === 'frontend' ? 'F' : 'B');
    if (!has) {
      this.err(`'${kw}' is not allowed in a ${d.cap} section (${caps.includes('B') ? 'backend' : 'frontend'} only)`, kw);
      return;
    }
    switch (kw) {
      case 'mode': {
        const m = a[0];
        if (m === 'http' || m === 'tcp') {
          d.mode = m;
          d.modeSet = true;
        }
        else this.err(`expects 'http' or 'tcp', got '${m ?? ''}'`);
        return;
      }
      case 'bind':
        return this.bindLine(d, a);
      case 'default_backend':
        if (this.need(a, 0, 'backend name') !== undefined) {
          d.defaultBackend = a[0];
          d.defaultBackendLoc = this.loc;
        }
        return;
      case 'errorfile':
        return this.errorFileLine(d, a);
      case 'maxconn': {
        const v = this.num(parseInteger(a[0] ?? '', 1, 10_000_000), 'maxconn');
        if (v !== undefined) d.maxconn = v;
        return;
      }
      case 'balance':
        return this.balanceLine(d, a);
      case 'hash-type': {
        const h = a[0];
        if (h !== 'map-based' && h !== 'consistent') {
          this.err(`expects 'map-based' or 'consistent', got '${h ?? ''}'`);
          return;
        }
        d.hashType = h;
        if (a.length > 1) this.warn(`hash function '${a.slice(1).join(' ')}' ignored: stickmesh uses its own address hash`);
        return;
      }
      case 'cookie':
        return this.cookieLine(d, a);
      case 'dynamic-cookie-key':
        if (this.need(a, 0, 'key') !== undefined) d.dynamicCookieKey = a[0];
        return;
      case 'cookie-key':
        return this.cookieKeyLine(d, a);
      case 'server':
        return this.serverLine(d, a);
      case 'server-template':
        return this.serverTemplateLine(d, a);
      case 'default-server':
        this.serverParams(d.server, a, 0, true);
        return;
      case 'option':
        return this.optionLine(d, a, false);
      case 'no':
        if (a[0] !== 'option') {
          this.err(`'no' must be followed by 'option'`, 'no');
          return;
        }
        return this.optionLine(d, a.slice(1), true);
      case 'retries': {
        const v = this.num(parseInteger(a[0] ?? '', 0, 100), 'retries');
        if (v !== undefined) d.retries = v;
        return;
      }
      case 'http-check':
        return this.httpCheckLine(d, a);
      case 'timeout':
        return this.timeoutLine(d, a);
      case 'stick':
        return this.stickLine(d, a);
      case 'stick-table':
        return this.stickTableLine(d, a);
      case 'log':
      case 'log-format':
        this.warn(`stickmesh writes one JSON log line per request (pino); '${kw}' has no effect`, kw);
        return;
      case 'description':
        return;
      case 'enabled':
        return;
      case 'disabled':
        this.err(`disabled proxies are not supported; remove the section instead`, kw);
        return;
      case 'acl':
        return this.ruleLine(() => parseAclLine(a, this.loc, d.acls, d.rules.acls, (m) => this.warn(m)));
      case 'http-request':
        return this.ruleLine(() => d.rules.httpRequest.push(parseRule(a, 'http-request', this.loc, d.acls, (m) => this.warn(m))));
      case 'http-response':
        return this.ruleLine(() => d.rules.httpResponse.push(parseRule(a, 'http-response', this.loc, d.acls, (m) => this.warn(m))));
      case 'tcp-request':
        return this.tcpRequestLine(d, a);
      case 'use_backend':
        return this.ruleLine(() => this.useBackendLine(d, a));
      case 'http-reuse':
        if (!['never', 'safe', 'aggressive', 'always'].includes(a[0] ?? '')) this.err(`expects never, safe, aggressive or always`);
        else if (a[0] === 'never') this.warn(`stickmesh always reuses idle server connections per backend server ('safe')`);
        return;
    }
  }

  /** Runs one rule-language parse; its RuleSyntaxError becomes this line's problem. */
  private ruleLine(parse: () => unknown): void {
    try {
      parse();
    } catch (e) {
      if (!(e instanceof RuleSyntaxError)) throw e;
      this.err(e.message);
    }
  }

  private tcpRequestLine(d: ProxyDraft, a: string[]): void {
    const sub = a[0];
    if (sub === 'inspect-delay') {
      const v = this.num(parseTime(a[1] ?? ''), `'tcp-request inspect-delay'`);
      if (v === undefined) return;
      if (a.length > 2) this.err(`unexpected '${a[2]}'`);
      else d.inspectDelay = v;
      return;
    }
    if (sub !== 'connection' && sub !== 'content') {
      this.err(sub === 'session' ? `'tcp-request session' is not supported by stickmesh (connection, content, inspect-delay)` : `expects 'tcp-request connection|content|inspect-delay ...', got '${sub ?? ''}'`);
      return;
    }
    if (sub === 'connection' && d.cap === 'backend') {
      this.err(`'tcp-request connection' is not allowed in a backend section (frontend and listen only)`);
      return;
    }
    const ctx: RuleContext = `tcp-request ${sub}`;
    const list = sub === 'connection' ? d.rules.tcpRequestConnection : d.rules.tcpRequestContent;
    this.ruleLine(() => list.push(parseRule(a.slice(1), ctx, this.loc, d.acls, (m) => this.warn(m))));
  }

  /** `use_backend NAME [if|unless cond]`; the condition's fetches are checked against the mode once it is known (finish). */
  private useBackendLine(d: ProxyDraft, a: string[]): void {
    const name = a[0];
    if (name === undefined || name === 'if' || name === 'unless') throw new RuleSyntaxError(`missing backend name`);
    if (name.includes('%')) throw new RuleSyntaxError(`backend name '${name}' is a log-format expression; stickmesh supports plain backend names only`);
    const ub: UseBackendConfig = { backend: name, loc: this.loc };
    if (a.length > 1) {
      if (a[1] !== 'if' && a[1] !== 'unless') throw new RuleSyntaxError(`unexpected '${a[1]}' (a condition starts with 'if' or 'unless')`);
      ub.cond = parseCond(a.slice(1), this.loc, d.acls, undefined, (m) => this.warn(m));
    }
    d.useBackends.push(ub);
  }

  /** `errorfile CODE FILE`: the file is read and checked now, as HAProxy reads it at load. */
  private errorFileLine(d: ProxyDraft, a: string[]): void {
    const [code, file, extra] = a;
    if (code === undefined || file === undefined || extra !== undefined) {
      this.err(`expects 'errorfile CODE FILE'`);
      return;
    }
    const status = /^\d{3}$/.test(code) ? Number(code) : NaN;
    if (!ERRORFILE_CODES.includes(status)) {
      this.err(`status code '${code}' is not one the proxy generates (${ERRORFILE_CODES.join(', ')})`);
      return;
    }
    if (this.issues.countedOnly()) return;
    const r = readErrorFile(file);
    if ('error' in r) this.err(r.error);
    else d.errorFiles.set(status, { status, file, response: r.response, loc: this.loc });
  }

  private bindLine(d: ProxyDraft, a: string[]): void {
    d.bindLines++;
    const addrs = this.need(a, 0, 'address');
    if (addrs === undefined) return;
    const sd = emptySslDraft();
    for (let i = 1; i < a.length; ) {
      const r = readSslOption(sd, a, i, 'bind', this.global.crtBase);
      if (typeof r !== 'number') {
        this.err(r.error.startsWith('unknown bind option') ? r.error + this.hint(a[i], BIND_OPTION_WORDS) : r.error);
        return;
      }
      i = r;
    }
    let ssl: BindSslConfig | undefined;
    if (sd.ssl) {
      const r = finishSsl(sd, this.sslDefaults, (m) => this.warn(m));
      if ('error' in r) {
        this.err(r.error);
        return;
      }
      ssl = r;
    } else if (a.length > 1) {
      this.warn(`TLS options without 'ssl': the bind serves plain TCP (as HAProxy); add 'ssl' to terminate TLS`);
    }
    for (const item of addrs.split(',')) {
      const hp = parseHostPort(item);
      if (typeof hp === 'string') this.err(hp);
      else if (hp.port === undefined) this.err(`'${item}': missing port`);
      else if (/-/.test(String(hp.port))) this.err(`port ranges are not supported`);
      else d.binds.push({ host: hp.host, port: hp.port, ...(ssl ? { ssl } : {}), loc: this.loc });
    }
  }

  private balanceLine(d: ProxyDraft, a: string[]): void {
    const alg = a[0] ?? '';
    if (alg === 'roundrobin' || alg === 'leastconn' || alg === 'source') d.balance = alg;
    else if (alg === 'random' || /^random\(\d+\)$/.test(alg)) {
      d.balance = 'random';
      if (alg !== 'random' && alg !== 'random(2)') this.warn(`stickmesh's random balancing always draws 2 (power of two choices)`);
    } else if (alg === 'static-rr') {
      d.balance = 'roundrobin';
      this.warn(`'static-rr' is run as 'roundrobin' (weights are applied the same way)`);
    } else if (alg === '') this.err(`missing algorithm (roundrobin, leastconn, source, random)`);
    else this.err(`algorithm '${alg}' is not supported (roundrobin, leastconn, source, random)${this.hint(alg, BALANCE_WORDS)}`);
    if (a.length > 1 && !alg.startsWith('random')) this.err(`unexpected '${a[1]}' after '${alg}'`);
  }

  /** stickmesh `cookie-key ID SECRET [current]`: adds a key to the backend's signing ring. */
  private cookieKeyLine(d: ProxyDraft, a: string[]): void {
    const [id, secret, flag, extra] = a;
    if (id === undefined || secret === undefined || extra !== undefined || (flag !== undefined && flag !== 'current')) {
      this.err(`expects 'cookie-key ID SECRET [current]'`);
      return;
    }
    if (!/^[A-Za-z0-9_-]{1,16}$/.test(id)) {
      this.err(`key id '${id}' must be 1 to 16 characters of A-Z a-z 0-9 _ -`);
      return;
    }
    if (secret.length < 16) {
      this.err(`the secret of key '${id}' must be at least 16 characters`);
      return;
    }
    // A backend has a handful of keys; the scans stay, bounded by a cap on the ring's size.
    if (d.cookieKeys.length >= MAX_COOKIE_KEYS) {
      this.err(`at most ${MAX_COOKIE_KEYS} cookie keys per backend`);
      return;
    }
    if (d.cookieKeys.some((k) => k.id === id)) {
      this.err(`key id '${id}' is already defined`);
      return;
    }
    if (flag === 'current' && d.cookieKeys.some((k) => k.current)) {
      this.err(`only one 'cookie-key' may be 'current'`);
      return;
    }
    d.cookieKeys.push({ id, secret, current: flag === 'current', loc: this.loc });
  }

  private cookieLine(d: ProxyDraft, a: string[]): void {
    const name = a[0];
    if (name === undefined || name === '') {
      this.err(`missing cookie name`);
      return;
    }
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) {
      this.err(`'${name}' is not a valid cookie name`);
      return;
    }
    const c: CookieConfig = {
      name, mode: 'insert', indirect: false, nocache: false, postonly: false, preserve: false, httponly: false,
      secure: false, domains: [], maxidle: 0, maxlife: 0, attrs: [], dynamic: false, sign: false, loc: this.loc,
    };
    let mode: CookieConfig['mode'] | undefined;
    for (let i = 1; i < a.length; i++) {
      const o = a[i]!;
      switch (o) {
        case 'insert':
        case 'rewrite':
        case 'prefix':
          if (mode !== undefined && mode !== o) {
            this.err(`'${mode}' and '${o}' cannot be combined`);
            return;
          }
          mode = o;
          break;
        case 'indirect': c.indirect = true; break;
        case 'nocache': c.nocache = true; break;
        case 'postonly': c.postonly = true; break;
        case 'preserve': c.preserve = true; break;
        case 'httponly': c.httponly = true; break;
        case 'secure': c.secure = true; break;
        case 'dynamic': c.dynamic = true; break;
        case 'sign': c.sign = true; break;
        case 'domain': {
          const v = a[++i];
          if (v === undefined || v === '') { this.err(`'domain' needs a value`); return; }
          c.domains.push(v);
          break;
        }
        case 'attr': {
          const v = a[++i];
          if (v === undefined || v === '') { this.err(`'attr' needs a value`); return; }
          if (/[;\x00-\x1f\x7f]/.test(v)) { this.err(`'attr' value must not contain ';' or control characters`); return; }
          c.attrs.push(v);
          break;
        }
        case 'maxidle':
        case 'maxlife': {
          const v = this.num(parseTime(a[++i] ?? ''), `'${o}'`);
          if (v === undefined) return;
          c[o] = Math.ceil(v / 1000);
          break;
        }
        default:
          this.err(`unknown cookie option '${o}' (insert, rewrite, prefix, indirect, nocache, postonly, preserve, httponly, secure, domain, maxidle, maxlife, attr, dynamic, sign)`);
          return;
      }
    }
    if (mode === undefined) {
      this.err(`stickmesh needs one of 'insert', 'rewrite' or 'prefix' (passive cookie matching is not supported)`);
      return;
    }
    c.mode = mode;
    if (mode !== 'insert') {
      for (const f of ['postonly', 'preserve'] as const) {
        if (c[f]) {
          this.err(`'${f}' requires 'insert' mode`);
          return;
        }
      }
      if (c.maxidle > 0 || c.maxlife > 0) {
        this.err(`'maxidle'/'maxlife' require 'insert' mode`);
        return;
      }
      if (c.sign) {
        this.err(`'sign' requires 'insert' mode`);
        return;
      }
    }
    d.cookie = c;
  }

  /** Parses server parameters from `a[from]` on into `s`. Returns false on error. */
  private serverParams(s: ServerSettings, a: string[], from: number, isDefault: boolean): boolean {
    for (let i = from; i < a.length; i++) {
      const o = a[i]!;
      const val = (): string | undefined => {
        const v = a[++i];
        if (v === undefined) this.err(`'${o}' needs a value`);
        return v;
      };
      switch (o) {
        case 'check': s.check = true; break;
        case 'no-check': s.check = false; break;
        case 'backup': s.backup = true; break;
        case 'no-backup': s.backup = false; break;
        case 'disabled': s.disabled = true; break;
        case 'enabled': s.disabled = false; break;
        case 'cookie': {
          const v = val();
          if (v === undefined) return false;
          if (isDefault) { this.err(`'cookie' is per server, not allowed in default-server`); return false; }
          if (v === '' || /[\s;,"\\]/.test(v)) { this.err(`cookie value '${v}' may not be empty or contain blanks, ';', ',', '"' or '\\'`); return false; }
          s.cookie = v;
          break;
        }
        case 'weight': {
          const v = this.num(parseInteger(val() ?? '', 0, 256), `'weight'`);
          if (v === undefined) return false;
          s.weight = v;
          break;
        }
        case 'inter':
        case 'fastinter':
        case 'downinter': {
          const v = this.num(parseTime(val() ?? ''), `'${o}'`);
          if (v === undefined) return false;
          if (v === 0) { this.err(`'${o}' must be greater than 0`); return false; }
          s[o] = v;
          break;
        }
        case 'rise':
        case 'fall': {
          const v = this.num(parseInteger(val() ?? '', 1, 1000), `'${o}'`);
          if (v === undefined) return false;
          s[o] = v;
          break;
        }
        case 'port': {
          const v = this.num(parseInteger(val() ?? '', 1, 65535), `'port'`);
          if (v === undefined) return false;
          s.checkPort = v;
          break;
        }
        case 'maxconn': {
          const v = this.num(parseInteger(val() ?? '', 0, 10_000_000), `'maxconn'`);
          if (v === undefined) return false;
          s.maxconn = v;
          break;
        }
        case 'resolvers': {
          const v = val();
          if (v === undefined) return false;
          s.resolvers = v;
          break;
        }
        case 'init-addr': {
          const v = val();
          if (v === undefined) return false;
          const parts = v.split(',');
          for (const p of parts) {
            if (p !== 'last' && p !== 'libc' && p !== 'none' && !/^[0-9a-fA-F.:]+$/.test(p)) {
              this.err(`init-addr method '${p}' is unknown (last, libc, none, or an IP address)`);
              return false;
            }
          }
          s.initAddr = parts;
          break;
        }
        case 'resolve-prefer': {
          const v = val();
          if (v !== 'ipv4' && v !== 'ipv6') { this.err(`'resolve-prefer' expects ipv4 or ipv6`); return false; }
          break;
        }
        case 'resolve-opts':
          if (val() === undefined) return false;
          break;
        case 'id': {
          if (this.num(parseInteger(val() ?? '', 1, 2_147_483_647), `'id'`) === undefined) return false;
          break;
        }
        default: {
          const j = serverTlsWord(s, a, i, (m) => this.err(m));
          if (j === -1) return false;
          if (j !== undefined) {
            i = j;
            break;
          }
          const near = this.hint(o, SERVER_OPTION_WORDS);
          this.err(near ? `unknown server option '${o}'${near}` : `server option '${o}' is not supported (check, cookie, weight, backup, disabled, inter, fastinter, downinter, rise, fall, port, maxconn, resolvers, init-addr, ${SERVER_TLS_WORDS})`);
          return false;
        }
      }
    }
    return true;
  }

  private serverLine(d: ProxyDraft, a: string[]): void {
    const name = a[0];
    const addr = a[1];
    if (name === undefined) {
      this.err(`missing server name`);
      return;
    }
    if (addr === undefined || /^[a-z-]+$/.test(addr) && ['check', 'cookie', 'weight', 'backup', 'disabled', 'inter', 'rise', 'fall'].includes(addr)) {
      this.err(`server '${name}' has no address (expected 'server ${name} ADDRESS:PORT ...')`);
      return;
    }
    const hp = parseHostPort(addr);
    if (typeof hp === 'string') {
      this.err(hp);
      return;
    }
    if (hp.port === undefined || hp.port === 0) {
      this.err(`server '${name}': address '${addr}' needs a port`);
      return;
    }
    if (hp.host === '') {
      this.err(`server '${name}': address '${addr}' needs a host`);
      return;
    }
    const s: ServerSettings = { ...d.server, cookie: undefined };
    if (!this.serverParams(s, a, 2, false)) return;
    if (d.serverNames.has(name)) {
      this.err(`duplicate server name '${name}' in ${d.cap} '${d.name}'`);
      return;
    }
    d.serverNames.add(name);
    d.servers.push(finishServerSettings({ ...s, name, host: hp.host, port: hp.port, loc: this.loc }));
  }

  private serverTemplateLine(d: ProxyDraft, a: string[]): void {
    const [prefix, num, fqdnPort] = a;
    if (prefix === undefined || num === undefined || fqdnPort === undefined) {
      this.err(`expects 'server-template PREFIX COUNT FQDN[:PORT] [options]'`);
      return;
    }
    const m = /^(\d+)(?:-(\d+))?$/.exec(num);
    if (!m) {
      this.err(`'${num}' is not a count or range`);
      return;
    }
    const count = m[2] ? Number(m[2]) - Number(m[1]) + 1 : Number(m[1]);
    if (count < 1 || count > 4096) {
      this.err(`count ${count} out of range [1..4096]`);
      return;
    }
    const hp = parseHostPort(fqdnPort);
    if (typeof hp === 'string') {
      this.err(hp);
      return;
    }
    const s: ServerSettings = { ...d.server, cookie: undefined };
    if (!this.serverParams(s, a, 3, false)) return;
    if (s.cookie !== undefined) {
      this.err(`'cookie' cannot be set on a server-template (use 'cookie ... dynamic')`);
      return;
    }
    d.serverTemplates.push({
      prefix,
      count,
      fqdn: hp.host,
      port: hp.port ?? 0,
      template: finishServerSettings(s),
      resolvers: s.resolvers,
      initAddr: s.initAddr ?? ['last', 'libc'],
      loc: this.loc,
    });
  }

  private optionLine(d: ProxyDraft, a: string[], negate: boolean): void {
    const o = a[0];
    if (o === undefined) {
      this.err(`missing option name`, negate ? 'no option' : 'option');
      return;
    }
    const backendOnly = (): boolean => {
      if (d.cap === 'frontend') {
        this.err(`'option ${o}' is not allowed in a frontend section (backend only)`);
        return false;
      }
      return true;
    };
    switch (o) {
      case 'redispatch':
        if (!backendOnly()) return;
        d.redispatch = !negate;
        if (a[1] !== undefined && !/^-?\d+$/.test(a[1])) this.err(`redispatch interval '${a[1]}' is not an integer`);
        return;
      case 'forwardfor': {
        if (negate) {
          d.forwardFor = undefined;
          return;
        }
        const f: ForwardForConfig = { header: 'X-Forwarded-For', ifNone: false };
        for (let i = 1; i < a.length; i++) {
          const k = a[i]!;
          if (k === 'if-none') f.ifNone = true;
          else if (k === 'except' || k === 'header') {
            const v = a[++i];
            if (v === undefined) {
              this.err(`'${k}' needs a value`);
              return;
            }
            if (k === 'except') {
              if (!/^[0-9a-fA-F.:]+(\/\d+)?$/.test(v)) {
                this.err(`'except ${v}' is not an address or network`);
                return;
              }
              f.except = v;
            } else f.header = v;
          } else {
            this.err(`unknown forwardfor argument '${k}' (except, header, if-none)`);
            return;
          }
        }
        d.forwardFor = f;
        return;
      }
      case 'httpchk': {
        if (!backendOnly()) return;
        if (negate) {
          d.httpCheck = undefined;
          return;
        }
        const hc: HttpCheckConfig = { method: 'OPTIONS', uri: '/', version: 'HTTP/1.0', expect: d.httpCheck?.expect };
        if (a.length === 2) hc.uri = a[1]!;
        else if (a.length >= 3) {
          hc.method = a[1]!;
          hc.uri = a[2]!;
          if (a[3] !== undefined) {
            const [ver, ...hdrs] = a.slice(3).join(' ').split('\r\n');
            hc.version = ver!;
            for (const h of hdrs) {
              const mh = /^host:\s*(.+)$/i.exec(h);
              if (mh) hc.host = mh[1];
              else if (h !== '') this.warn(`check header '${h}' ignored (only Host is sent)`);
            }
          }
        }
        if (!/^[A-Z]+$/.test(hc.method)) this.err(`'${hc.method}' is not an HTTP method`);
        else if (!hc.uri.startsWith('/')) this.err(`check URI '${hc.uri}' must start with '/'`);
        else if (!/^HTTP\/1\.[01]$/.test(hc.version)) this.err(`check version '${hc.version}' must be HTTP/1.0 or HTTP/1.1`);
        else d.httpCheck = hc;
        return;
      }
      case 'http-keep-alive':
      case 'http-server-close':
      case 'httpclose':
      case 'http-pretend-keepalive':
        if (o !== 'http-keep-alive' && !negate) this.warn(`stickmesh keeps connections alive on both sides; 'option ${o}' has no effect`);
        return;
      case 'abortonclose':
      case 'allbackups':
      case 'persist':
      case 'splice-auto':
      case 'tcp-check':
      case 'ssl-hello-chk':
      case 'mysql-check':
      case 'redis-check':
      case 'pgsql-check':
      case 'smtpchk':
      case 'ldap-check':
      case 'http-use-proxy-header':
      case 'originalto':
      case 'socket-stats':
      case 'tcpka':
      case 'clitcpka':
      case 'srvtcpka':
        this.err(`'option ${o}' is not supported by stickmesh`);
        return;
    }
    if (LOG_OPTIONS.has(o)) {
      this.warn(`stickmesh writes one JSON log line per request (pino); 'option ${o}' has no effect`);
      return;
    }
    this.err(`unknown option '${o}'${this.hint(o, OPTION_WORDS)}`);
  }

  private httpCheckLine(d: ProxyDraft, a: string[]): void {
    const sub = a[0];
    if (sub === 'expect') {
      let i = 1;
      let negate = false;
      if (a[i] === '!') {
        negate = true;
        i++;
      }
      const kind = a[i];
      const value = a[i + 1];
      if ((kind !== 'status' && kind !== 'rstatus') || value === undefined) {
        this.err(`stickmesh supports 'http-check expect [!] status CODES' and 'http-check expect [!] rstatus REGEX'`);
        return;
      }
      if (kind === 'status' && !/^\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*$/.test(value)) {
        this.err(`'${value}' is not a status code list (e.g. 200 or 200-399,401)`);
        return;
      }
      if (kind === 'rstatus') {
        try {
          new RegExp(value);
        } catch {
          this.err(`'${value}' is not a valid regular expression`);
          return;
        }
      }
      if (a.length > i + 2) {
        this.err(`unexpected '${a[i + 2]}'`);
        return;
      }
      const base = d.httpCheck ?? { method: 'OPTIONS', uri: '/', version: 'HTTP/1.0' };
      d.httpCheck = { ...base, expect: { kind, value, negate } };
      if (d.cap !== 'defaults' && !d.httpCheck.method) this.err(`needs 'option httpchk'`);
      return;
    }
    if (sub === 'send') {
      const hc: HttpCheckConfig = d.httpCheck ? { ...d.httpCheck } : { method: 'OPTIONS', uri: '/', version: 'HTTP/1.0' };
      for (let i = 1; i < a.length; i++) {
        const k = a[i]!;
        const v = a[++i];
        if (v === undefined) {
          this.err(`'${k}' needs a value`);
          return;
        }
        if (k === 'meth') hc.method = v;
        else if (k === 'uri') hc.uri = v;
        else if (k === 'ver') hc.version = v;
        else if (k === 'hdr') {
          const hv = a[++i];
          if (hv === undefined) {
            this.err(`'hdr ${v}' needs a value`);
            return;
          }
          if (v.toLowerCase() === 'host') hc.host = hv;
          else this.warn(`check header '${v}' ignored (only Host is sent)`);
        } else {
          this.err(`unknown 'http-check send' argument '${k}' (meth, uri, ver, hdr)`);
          return;
        }
      }
      d.httpCheck = hc;
      return;
    }
    this.err(`'http-check ${sub ?? ''}' is not supported (expect, send)`);
  }

  private timeoutLine(d: ProxyDraft, a: string[]): void {
    const which = a[0];
    if (which === 'tarpit') {
      const v = this.num(parseTime(a[1] ?? ''), `'timeout tarpit'`);
      if (v === undefined) return;
      if (a.length > 2) this.err(`unexpected '${a[2]}'`);
      else d.tarpitTimeout = v;
      return;
    }
    const key = which === undefined || !Object.hasOwn(TIMEOUT_KEYS, which) ? undefined : TIMEOUT_KEYS[which];
    if (key === undefined) {
      this.err(`unknown timeout '${which ?? ''}' (${Object.keys(TIMEOUT_KEYS).join(', ')}, tarpit)${this.hint(which, [...Object.keys(TIMEOUT_KEYS), 'tarpit'])}`);
      return;
    }
    const v = this.num(parseTime(a[1] ?? ''), `'timeout ${which}'`);
    if (v === undefined) return;
    if (a.length > 2) {
      this.err(`unexpected '${a[2]}'`);
      return;
    }
    d.timeouts[key] = v;
  }

  private stickLine(d: ProxyDraft, a: string[]): void {
    const kind = a[0];
    if (kind !== 'on' && kind !== 'match' && kind !== 'store-request' && kind !== 'store-response') {
      this.err(`expects 'stick on|match|store-request|store-response PATTERN [table TABLE]'`, 'stick');
      return;
    }
    const pattern = a[1];
    if (pattern === undefined) {
      this.err(`missing pattern (e.g. src)`);
      return;
    }
    if (!/^(src|src6|dst|req\.cook\([^)]+\)|res\.cook\([^)]+\)|req\.hdr\([^)]+\)|res\.hdr\([^)]+\))$/.test(pattern)) {
      this.err(`pattern '${pattern}' is not supported (src, dst, req.cook(NAME), res.cook(NAME), req.hdr(NAME), res.hdr(NAME))`);
      return;
    }
    const rule: StickRuleConfig = { kind, pattern, loc: this.loc };
    for (let i = 2; i < a.length; i++) {
      const k = a[i]!;
      if (k === 'table') {
        const v = a[++i];
        if (v === undefined) {
          this.err(`'table' needs a name`);
          return;
        }
        rule.table = v;
      } else if (k === 'if' || k === 'unless') {
        this.err(`conditions ('${k} ...') on stick rules are not supported`);
        return;
      } else {
        this.err(`unexpected '${k}'`);
        return;
      }
    }
    if (kind === 'store-response' && pattern.startsWith('req.')) this.err(`'store-response' needs a response pattern (res.*), got '${pattern}'`);
    else d.stickRules.push(rule);
  }

  private stickTableLine(d: ProxyDraft, a: string[]): void {
    if (d.cap === 'defaults') {
      this.err(`'stick-table' is not allowed in defaults`);
      return;
    }
    if (d.stickTable) {
      this.err(`only one stick-table per ${d.cap}`);
      return;
    }
    const t = this.tableParams(d.name, d.name, a, 0, true);
    if (t) d.stickTable = t;
  }

  /** Parses `type ... size ... [expire ...] [store ...] [srvkey ...] [peers ...]`. */
  private tableParams(id: string, name: string, a: string[], from: number, allowPeers: boolean): StickTableConfig | undefined {
    const t: StickTableConfig = { id, name, type: 'ip', keyLen: 32, size: 0, expire: 0, store: [], srvkey: 'name', loc: this.loc };
    let typed = false;
    const stores: string[] = [];
    for (let i = from; i < a.length; i++) {
      const k = a[i]!;
      const v = a[++i];
      if (k === 'nopurge') {
        i--;
        continue;
      }
      if (v === undefined) {
        this.err(`'${k}' needs a value`);
        return undefined;
      }
      switch (k) {
        case 'type': {
          if (!['ip', 'ipv6', 'integer', 'string'].includes(v)) {
            this.err(`table type '${v}' is not supported (ip, ipv6, integer, string)`);
            return undefined;
          }
          t.type = v as StickKeyType;
          typed = true;
          if (a[i + 1] === 'len') {
            const n = this.num(parseInteger(a[i + 2] ?? '', 1, 1024), `'len'`);
            if (n === undefined) return undefined;
            t.keyLen = n;
            i += 2;
          }
          break;
        }
        case 'size': {
          const n = this.num(parseSize(v), `'size'`);
          if (n === undefined) return undefined;
          if (n < 1 || n > 100_000_000) {
            this.err(`size ${n} out of range [1..100000000]`);
            return undefined;
          }
          t.size = n;
          break;
        }
        case 'expire': {
          const n = this.num(parseTime(v), `'expire'`);
          if (n === undefined) return undefined;
          t.expire = n;
          break;
        }
        case 'store':
          stores.push(v);
          break;
        case 'counters':
          if (v !== 'cluster' && v !== 'local') {
            this.err(`'counters' expects cluster or local, got '${v}'`);
            return undefined;
          }
          t.counters = v;
          break;
        case 'srvkey':
          if (v !== 'name' && v !== 'addr') {
            this.err(`'srvkey' expects name or addr`);
            return undefined;
          }
          t.srvkey = v;
          break;
        case 'peers':
          if (!allowPeers) {
            this.err(`'peers' is only allowed on a backend stick-table`);
            return undefined;
          }
          t.peers = v;
          break;
        default:
          this.err(`unknown table argument '${k}' (type, size, expire, store, srvkey, counters${allowPeers ? ', peers' : ''})`);
          return undefined;
      }
    }
    if (!typed) {
      this.err(`table '${name}' needs a 'type'`);
      return undefined;
    }
    if (t.size === 0) {
      this.err(`table '${name}' needs a 'size'`);
      return undefined;
    }
    if (stores.length > 0) {
      try {
        const { raw, data } = parseStore(stores, (m) => this.warn(m));
        t.store = raw;
        if (data.length > 0) t.data = data;
      } catch (e) {
        if (!(e instanceof RuleSyntaxError)) throw e;
        this.err(e.message);
        return undefined;
      }
    }
    return t;
  }

  // ---------------------------------------------------------------- peers, resolvers

  private peersLine(sec: Extract<Section, { kind: 'peers' }>, t: string[]): void {
    const p = sec.cfg;
    const kw = t[0]!;
    const a = t.slice(1);
    switch (kw) {
      case 'bind': {
        const hp = parseHostPort(a[0] ?? '');
        if (typeof hp === 'string') this.err(hp);
        else if (hp.port === undefined) this.err(`'${a[0]}': missing port`);
        else if (a.length > 1) this.err(`bind options are not supported in peers sections`);
        else p.bind = { host: hp.host, port: hp.port, loc: this.loc };
        return;
      }
      case 'server':
      case 'peer': {
        const name = a[0];
        if (name === undefined) {
          this.err(`missing peer name`);
          return;
        }
        if (sec.peerNames.has(name)) {
          this.err(`duplicate peer '${name}'`);
          return;
        }
        if (a[1] === undefined) {
          if (kw === 'peer') this.err(`'peer ${name}' needs an address`);
          else {
            p.peers.push({ name, loc: this.loc });
            sec.peerNames.add(name);
          }
          return;
        }
        const hp = parseHostPort(a[1]);
        if (typeof hp === 'string') this.err(hp);
        else if (hp.port === undefined) this.err(`peer '${name}': '${a[1]}' needs a port`);
        else if (a.length > 2) this.err(`peer options are not supported ('${a.slice(2).join(' ')}')`);
        else {
          p.peers.push({ name, host: hp.host === '' ? '127.0.0.1' : hp.host, port: hp.port, loc: this.loc });
          sec.peerNames.add(name);
        }
        return;
      }
      case 'table': {
        const name = a[0];
        if (name === undefined) {
          this.err(`missing table name`);
          return;
        }
        if (sec.tableNames.has(name)) {
          this.err(`duplicate table '${name}'`);
          return;
        }
        const tc = this.tableParams(`${p.name}/${name}`, name, a, 1, false);
        if (tc) {
          tc.peers = p.name;
          p.tables.push(tc);
          sec.tableNames.add(name);
        }
        return;
      }
      case 'localpeer':
        if (this.need(a, 0, 'peer name') !== undefined) p.localPeer = a[0];
        return;
      case 'shared-secret':
        if (this.need(a, 0, 'secret') !== undefined) p.secret = a[0];
        return;
      case 'cluster-name':
        if (this.need(a, 0, 'name') !== undefined) p.cluster = a[0];
        return;
      case 'tls-cert':
      case 'tls-key':
      case 'tls-ca':
        if (this.need(a, 0, 'PEM file path') !== undefined) p.tls = { ...p.tls, [kw.slice(4)]: a[0] };
        return;
      case 'resync-timeout': {
        const v = this.num(parseTime(a[0] ?? ''), `'resync-timeout'`);
        if (v !== undefined) p.resyncTimeout = v;
        return;
      }
      case 'enabled':
        return;
      case 'log':
        this.warn(`stickmesh writes JSON log lines; 'log' has no effect`);
        return;
    }
    if (!this.issues.countedOnly()) this.err(`unknown keyword '${kw}' in 'peers' section (bind, server, peer, table, shared-secret, cluster-name, resync-timeout, tls-cert, tls-key, tls-ca)`, kw);
  }

  private resolversLine(r: ResolversConfig, t: string[]): void {
    const kw = t[0]!;
    const a = t.slice(1);
    switch (kw) {
      case 'nameserver': {
        const name = a[0];
        const addr = a[1];
        if (name === undefined || addr === undefined) {
          this.err(`expects 'nameserver NAME ADDRESS[:PORT]'`);
          return;
        }
        const hp = parseHostPort(addr.replace(/^(udp|tcp)@/, ''));
        if (typeof hp === 'string') this.err(hp);
        else if (hp.host === '') this.err(`nameserver '${name}' needs an address`);
        else r.nameservers.push({ name, host: hp.host, port: hp.port ?? 53 });
        return;
      }
      case 'parse-resolv-conf':
        r.nameservers.push({ name: 'resolv.conf', host: 'resolv.conf', port: 53 });
        return;
      case 'accepted_payload_size': {
        const v = this.num(parseInteger(a[0] ?? '', 512, 65535), 'accepted_payload_size');
        if (v !== undefined) r.acceptedPayloadSize = v;
        return;
      }
      case 'resolve_retries': {
        const v = this.num(parseInteger(a[0] ?? '', 1, 100), 'resolve_retries');
        if (v !== undefined) r.resolveRetries = v;
        return;
      }
      case 'timeout': {
        const v = this.num(parseTime(a[1] ?? ''), `'timeout ${a[0] ?? ''}'`);
        if (v === undefined) return;
        if (a[0] === 'resolve') r.timeoutResolve = v;
        else if (a[0] === 'retry') r.timeoutRetry = v;
        else this.err(`unknown timeout '${a[0] ?? ''}' (resolve, retry)`);
        return;
      }
      case 'hold': {
        const k = a[0] as keyof ResolversConfig['hold'];
        const v = this.num(parseTime(a[1] ?? ''), `'hold ${a[0] ?? ''}'`);
        if (v === undefined) return;
        if (!Object.hasOwn(r.hold, k)) this.err(`unknown hold status '${a[0] ?? ''}' (${Object.keys(r.hold).join(', ')})`);
        else r.hold[k] = v;
        return;
      }
    }
    if (!this.issues.countedOnly()) this.err(`unknown keyword '${kw}' in 'resolvers' section`, kw);
  }
}

/**
 * Parses haproxy.cfg text. Never throws for bad input: problems come back in `issues` (errors) and
 * `warnings`; `config` holds whatever parsed.
 */
export function parseHaproxyConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): ParseOutput {
  const p = new Parser(file, env);
  p.parse(text);
  return finish(p, file);
}

/** Lines parsed between two pauses by `parseHaproxyConfigChunked`. */
export const PARSE_CHUNK_LINES = 2000;

/**
 * `parseHaproxyConfig` that awaits `pause()` after every PARSE_CHUNK_LINES lines, so a running
 * node keeps serving (and answering its peers' heartbeats) while it parses a large file on reload.
 */
export async function parseHaproxyConfigChunked(text: string, file: string, env: NodeJS.ProcessEnv, pause: () => Promise<void>): Promise<ParseOutput> {
  const p = new Parser(file, env);
  while (!p.step(text, PARSE_CHUNK_LINES)) await pause();
  return finish(p, file);
}

function finish(p: Parser, file: string): ParseOutput {
  const backends = new Map<string, BackendConfig>();
  for (const b of p.backends) if (!backends.has(b.name)) backends.set(b.name, b);
  for (const f of p.implicitMode) {
    const be = f.defaultBackend === undefined ? undefined : backends.get(f.defaultBackend);
    if (be) f.mode = be.mode;
  }
  for (const f of p.frontends) {
    if (!f.useBackends) continue;
    const ctx: RuleContext = f.mode === 'http' ? 'http-request' : 'tcp-request content';
    const acls = new Map((f.rules?.acls ?? []).map((a) => [a.name, a]));
    for (const ub of f.useBackends) {
      if (!ub.cond) continue;
      try {
        checkCondWhere(ub.cond, acls, ctx);
      } catch (e) {
        if (!(e instanceof RuleSyntaxError)) throw e;
        p.issues.push({ loc: ub.loc, directive: 'use_backend', message: `${e.message}${f.mode === 'tcp' ? ` (frontend '${f.name}' is in tcp mode)` : ''}` });
      }
    }
  }
  if (!p.global.localPeer) {
    const lp = p.peers.find((x) => x.localPeer)?.localPeer;
    if (lp) p.global.localPeer = lp;
  }
  const config: StickmeshConfig = { source: file, global: p.global, frontends: p.frontends, backends: p.backends, peers: p.peers, resolvers: p.resolvers };
  finishServerTls(config, (i) => p.issues.push(i));
  return {
    config,
    issues: p.issues,
    warnings: p.warnings,
  };
}
