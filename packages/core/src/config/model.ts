/**
 * The one configuration model both front doors (haproxy.cfg and native YAML/JSON) produce.
 * Everything downstream (proxy, peers, cli) reads only this model, never the source syntax.
 * All durations are milliseconds, all sizes are counts or bytes.
 */

/** Where a piece of configuration came from, so errors can name `file:line`. */
export interface SourceLoc {
  file: string;
  line: number;
}

export type ProxyMode = 'http' | 'tcp';
export type BalanceAlgorithm = 'roundrobin' | 'leastconn' | 'source' | 'random';
export type HashType = 'map-based' | 'consistent';

export interface Timeouts {
  /** `timeout connect`: TCP connect to a server. Default 5000. */
  connect: number;
  /** `timeout client`: client inactivity. Default 50000. */
  client: number;
  /** `timeout server`: server inactivity. Default 50000. */
  server: number;
  /** `timeout http-request`: whole request head must arrive within this. Default 10000. */
  httpRequest: number;
  /** `timeout http-keep-alive`: idle time between two requests on a client connection. Default 10000. */
  httpKeepAlive: number;
  /** `timeout tunnel`: inactivity in a tunnel (WebSocket, TCP mode). Default: `client`/`server` max. */
  tunnel: number;
  /** `timeout check`: extra read timeout for a health check; default `inter`. 0 = unset. */
  check: number;
  /** `timeout queue`: accepted for compatibility; default 5000. */
  queue: number;
}

/**
 * `errorfile CODE FILE`: the response sent instead of the built-in one for CODE when the proxy
 * answers by itself (no server, server errors, bad requests, timeouts, `deny`). Read at load.
 */
export interface ErrorFileConfig {
  status: number;
  file: string;
  /** The file's response, latin1, CRLF line ends in the head; '' (an empty file): close without answering. */
  response: string;
  loc: SourceLoc;
}

export interface BindConfig {
  /** Address to listen on; '' or '*' means all IPv4/IPv6 addresses. */
  host: string;
  port: number;
  /** `ssl crt ...`: the bind terminates TLS (one object shared by the addresses of one line). */
  ssl?: BindSslConfig;
  loc: SourceLoc;
}

/** A TLS protocol version as HAProxy's `ssl-min-ver`/`ssl-max-ver` write it (SSLv3 is refused). */
export type TlsVersion = 'TLSv1.0' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

/**
 * TLS termination on a `bind` line: its own options over global `ssl-default-bind-*`, over
 * stickmesh's defaults (TLS 1.2 minimum, OpenSSL's default cipher lists, tickets on).
 */
export interface BindSslConfig {
  /** `crt` arguments in order, files or directories, `crt-base` applied to relative ones. */
  crts: string[];
  /**
   * Every certificate of `crts`, in order (a directory's files sorted by name); the first is the
   * default one. Filled by the loader (core/tls/certs.ts) when the config is loaded from a file:
   * empty straight out of the parser.
   */
  certs: LoadedCert[];
  /** `alpn`: protocols offered, in order of preference; undefined = no ALPN. */
  alpn?: string[];
  minVersion: TlsVersion;
  maxVersion: TlsVersion;
  /** `ciphers` (TLS <= 1.2, OpenSSL list), `ciphersuites` (TLS 1.3); undefined = OpenSSL's defaults. */
  ciphers?: string;
  ciphersuites?: string;
  /** `curves`/`ecdhe`: key-exchange groups (OpenSSL list, ':'-separated); undefined = OpenSSL's. */
  curves?: string;
  /** `strict-sni`: refuse a handshake whose server name matches no certificate (or that has none). */
  strictSni: boolean;
  /** `no-tls-tickets`: no session tickets (no resumption). */
  noTickets: boolean;
  /** `prefer-client-ciphers`: the client's cipher order wins (default: the server's). */
  preferClientCiphers: boolean;
}

/** One certificate as a bind serves it: the PEM chain and key, and the names it answers for. */
export interface LoadedCert {
  /** The file it came from (messages, reload diagnostics). */
  file: string;
  /** PEM text: the leaf certificate first, then its chain. */
  cert: string;
  /** PEM text of the private key. */
  key: string;
  /**
   * Lower-case server names from the certificate's subjectAltName DNS entries and subject CNs
   * (HAProxy registers both); wildcards kept as `*.example.com`.
   */
  names: string[];
}

export interface CookieConfig {
  name: string;
  /** `insert` (proxy adds Set-Cookie), `rewrite` (server sets it, proxy rewrites value), `prefix` (SRV~value). */
  mode: 'insert' | 'rewrite' | 'prefix';
  indirect: boolean;
  nocache: boolean;
  postonly: boolean;
  preserve: boolean;
  httponly: boolean;
  secure: boolean;
  /** `domain` may be given several times; each yields its own Set-Cookie domain attribute. */
  domains: string[];
  /** Seconds; 0 = off. */
  maxidle: number;
  /** Seconds; 0 = off. */
  maxlife: number;
  /** Extra attributes appended verbatim (`attr`), in order. */
  attrs: string[];
  /** `dynamic`: servers without `cookie` get XXH64(key, addr, port) as value. */
  dynamic: boolean;
  /**
   * stickmesh `sign`: the cookie value carries an HMAC over the server value and dates, with the id
   * of the `cookie-key` that made it; unsigned, forged or tampered cookies count as absent.
   */
  sign: boolean;
  loc: SourceLoc;
}

/** stickmesh `cookie-key ID SECRET [current]`: one key of a signed cookie's key ring. */
export interface CookieKeyConfig {
  /** 1..16 characters of [A-Za-z0-9_-], carried in the cookie. */
  id: string;
  secret: string;
  /** Signs new cookies; at most one key per backend (none marked: the first key). */
  current: boolean;
  loc: SourceLoc;
}

export interface ServerConfig {
  name: string;
  /** IP literal or host name (resolved once at start with the system resolver). */
  host: string;
  port: number;
  check: boolean;
  /** Explicit persistence cookie value (`cookie VALUE`). */
  cookie?: string;
  /** 0..256, default 1. */
  weight: number;
  backup: boolean;
  disabled: boolean;
  /** Health check interval, default 2000. */
  inter: number;
  /** Interval while the server is in transition; default = inter. */
  fastinter: number;
  /** Interval while the server is down; default = inter. */
  downinter: number;
  /** Consecutive successes to go up, default 2. */
  rise: number;
  /** Consecutive failures to go down, default 3. */
  fall: number;
  /** Port used by health checks (`port`), default the server's port. */
  checkPort?: number;
  /** Per-server connection limit (`maxconn`), 0 = unlimited. */
  maxconn: number;
  /** `resolvers NAME`: keep re-resolving `host` through that resolvers section. */
  resolvers?: string;
  /** `init-addr`: how to get the first address (`last`, `libc`, `none`, or an IP), in order. */
  initAddr?: string[];
  /** `ssl`: traffic to the server goes over TLS, with the settings in `tls`. */
  ssl?: boolean;
  /**
   * `check-ssl` (true) / `no-check-ssl` (false) as written. Unset: health checks use TLS when
   * `ssl` is on and no check `port` sends them elsewhere (HAProxy's rule).
   */
  checkSsl?: boolean;
  /** TLS settings, present when `ssl` or `check-ssl` is on; completed from `global` at the end of parsing. */
  tls?: ServerTlsConfig;
  loc: SourceLoc;
}

/**
 * TLS towards one server (`server ... ssl ...`). After parsing, `verify` is always set (the
 * server's own, else `ssl-server-verify`, else `required`) and `required` comes with `caFile`
 * (HAProxy refuses it without one). Paths are as the loader will open them (`ca-base` applied).
 */
export interface ServerTlsConfig {
  /** `required`: the chain must lead to a CA of `caFile`, and the certificate must name `sni` (else `verifyHost`) when one is set. */
  verify?: 'none' | 'required';
  caFile?: string;
  /** `sni str(NAME)`: the server name sent in the ClientHello; kept when discovery moves the address. */
  sni?: string;
  /** `verifyhost NAME`: the name checked when no `sni` is sent. */
  verifyHost?: string;
  /** `check-sni NAME`: the server name sent by TLS health checks. */
  checkSni?: string;
  /** `crt FILE`: client certificate and key (one PEM file), presented when the server asks for one. */
  crt?: string;
  /** `alpn`: protocols offered in the ClientHello, in order (`check-alpn` for checks). */
  alpn?: string[];
  checkAlpn?: string[];
  /** OpenSSL cipher list for TLS <= 1.2 (`ciphers`, else `ssl-default-server-ciphers`). */
  ciphers?: string;
  /** TLS 1.3 suites (`ciphersuites`, else `ssl-default-server-ciphersuites`). */
  ciphersuites?: string;
  minVersion?: TlsVersion;
  maxVersion?: TlsVersion;
  /** `no-ssl-reuse`: every connection makes a full handshake (no session resumption). */
  noReuse?: boolean;
  /** `no-tls-tickets`: resume by session id only, never offer to take a ticket. */
  noTickets?: boolean;
}

/** `ssl-default-server-*` and `ssl-server-verify` from `global`: what servers with `ssl` start from. */
export interface ServerTlsDefaults {
  verify?: 'none' | 'required';
  ciphers?: string;
  ciphersuites?: string;
  minVersion?: TlsVersion;
  maxVersion?: TlsVersion;
  noTickets?: boolean;
  noReuse?: boolean;
}

/** The per-server settings `default-server` and `server-template` carry. */
export type ServerSettings = Omit<ServerConfig, 'name' | 'host' | 'port' | 'loc'>;

export interface HttpCheckConfig {
  /** From `option httpchk [METHOD] [URI] [VERSION]`; defaults OPTIONS / HTTP/1.0. */
  method: string;
  uri: string;
  version: string;
  /** Optional Host header (`option httpchk GET / HTTP/1.1\r\nHost:\ x` or `http-check send hdr host x`). */
  host?: string;
  /**
   * `http-check expect [!] status <codes>` / `rstatus <regex>`; default: any 2xx or 3xx passes.
   * `status` takes a code or a range list like "200-399,401".
   */
  expect?: { kind: 'status' | 'rstatus'; value: string; negate: boolean };
}

export interface ForwardForConfig {
  header: string;
  /** CIDR whose clients do not get the header (`except`). */
  except?: string;
  /** `if-none`: add only if the request has no such header. */
  ifNone: boolean;
}

/** `stick on|match|store-request|store-response <pattern> [table <name>]`. */
export interface StickRuleConfig {
  kind: 'on' | 'match' | 'store-request' | 'store-response';
  /** Sample fetch, e.g. `src`, `req.cook(JSESSIONID)`, `res.cook(JSESSIONID)`. */
  pattern: string;
  /** `peersSection/table` or a backend name; undefined = the backend's own stick-table. */
  table?: string;
  loc: SourceLoc;
}

export type StickKeyType = 'ip' | 'ipv6' | 'integer' | 'string';

export interface StickTableConfig {
  /** Fully qualified: `peersName/tableName` for peers tables, the backend name for backend tables. */
  id: string;
  name: string;
  type: StickKeyType;
  /** For `string`, `len` (default 32). */
  keyLen: number;
  size: number;
  /** Milliseconds; 0 = never. */
  expire: number;
  /** `store conn_cnt,http_req_cnt,...` */
  store: string[];
  /** `srvkey name|addr`: how entries name the server. */
  srvkey: 'name' | 'addr';
  /** Peers section replicating this table, if any. */
  peers?: string;
  /**
   * The `store` list parsed: one element per stored counter (`gpc(3)` gives three elements with
   * `idx` 0..2; `gpc0` is `gpc` idx 0, `gpt0` is `gpt` idx 0), in config order, duplicates removed.
   * `server_id` is not listed here: every stickmesh table can hold server affinity. Absent: none.
   */
  data?: StoredType[];
  /**
   * stickmesh `counters cluster|local`: in a replicated table (peers section, or `peers` on a backend
   * table) counters are by default the sum of every node's share (`cluster`); `local` keeps
   * HAProxy's behaviour of each node counting alone. Tables without peers are always local.
   */
  counters?: 'cluster' | 'local';
  loc: SourceLoc;
}

/** The counters a table can store (HAProxy data types, `server_id` aside). */
export type CounterKind =
  | 'gpc' | 'gpc_rate' | 'gpt'
  | 'conn_cnt' | 'conn_cur' | 'conn_rate'
  | 'sess_cnt' | 'sess_rate'
  | 'http_req_cnt' | 'http_req_rate'
  | 'http_err_cnt' | 'http_err_rate'
  | 'http_fail_cnt' | 'http_fail_rate'
  | 'bytes_in_cnt' | 'bytes_in_rate'
  | 'bytes_out_cnt' | 'bytes_out_rate';

/** One stored counter of a table. */
export interface StoredType {
  kind: CounterKind;
  /** Element of the gpc/gpc_rate/gpt arrays; 0 for the other kinds. */
  idx: number;
  /** Rate period in ms for `*_rate` kinds; 0 otherwise. */
  period: number;
}

// ------------------------------------------------------------------ ACLs, conditions and rules

/**
 * A sample expression: a fetch with its arguments, then converters, as written:
 * `req.hdr(host),lower` -> fetch `req.hdr`, args ['host'], converters [{name:'lower', args:[]}].
 * Fetch names are kept as written (`hdr` and `req.hdr` both allowed; fetches.ts FETCH_BY_NAME
 * resolves both), except an ACL-only keyword, stored as its fetch (`path_beg` -> `path`, the match
 * in AclTerm.match). Args are the raw texts between the parentheses split on top-level commas.
 */
export interface SampleExpr {
  fetch: string;
  args: string[];
  converters: { name: string; args: string[] }[];
  /** The expression's source text, for messages and logs. */
  text: string;
}

export type AclMatch = 'str' | 'beg' | 'end' | 'sub' | 'reg' | 'found' | 'int' | 'ip' | 'bool' | 'len' | 'dir' | 'dom';

/**
 * One ACL test: `<fetch> [flags] [operator] <patterns...>`. `match` is resolved at parse time
 * (the `-m` flag, else the fetch's default: `path_beg` -> beg, `src` -> ip, `*_rate` -> int ...).
 * For `int`, an operator (`eq|ge|gt|le|lt`) and ranges (`10:20`) are kept in `patterns` as written.
 */
export interface AclTerm {
  sample: SampleExpr;
  match: AclMatch;
  ignoreCase: boolean;
  patterns: string[];
  loc: SourceLoc;
}

/** A named ACL: every `acl NAME ...` line of one section with that name; any term matching matches (OR). */
export interface AclConfig {
  name: string;
  terms: AclTerm[];
  loc: SourceLoc;
}

/** One operand of a condition: a named ACL (the section's, or a predefined one like `TRUE`, `METH_POST`) or an anonymous `{ ... }` one. */
export interface CondOperand {
  negate: boolean;
  /** Named ACL reference. */
  acl?: string;
  /** Anonymous ACL `{ fetch ... }`. */
  anon?: AclTerm;
}

/** `if|unless <cond>`: an OR (`||` or `or`) of ANDs (juxtaposition) of operands. */
export interface CondConfig {
  kind: 'if' | 'unless';
  or: CondOperand[][];
  loc: SourceLoc;
}

/**
 * A log-format string (`set-header X %[src]`): literal parts and `%[expr]` samples; `%%` is a
 * literal `%`. Other `%x` log variables are kept as `{ var: 'ci' }` for the runtime to fill
 * (client ip `ci`, client port `cp`, frontend ip `fi`, port `fp`, frontend name `f`, backend `b`).
 */
export type LogFormatPart = { lit: string } | { sample: SampleExpr } | { var: string };

/** Sticky counter reference: track-sc0..2 and `sc-*` actions name one of three. */
export type ScIndex = 0 | 1 | 2;

export type RuleAction =
  | { type: 'allow' }
  /**
   * `errorfile FILE`: the file's response (read and checked at load, as the `errorfile` directive's)
   * is the answer, sent as written; `status` is then the file's own status ('' = close without answering).
   */
  | { type: 'deny'; status: number; contentType?: string; body?: string; errorfile?: { file: string; response: string } }
  | { type: 'tarpit'; status: number; errorfile?: { file: string; response: string } }
  | { type: 'return'; status: number; contentType?: string; body?: string; errorfile?: { file: string; response: string } }
  | { type: 'reject' }
  | { type: 'set-header' | 'add-header'; name: string; value: LogFormatPart[] }
  | { type: 'del-header'; name: string }
  | { type: 'redirect'; kind: 'location' | 'prefix' | 'scheme'; value: LogFormatPart[]; code: number; dropQuery: boolean }
  /** `track-scN <sample> [table T]`: `table` is the resolved table id; absent = the proxy's own table. */
  | { type: 'track-sc'; sc: ScIndex; sample: SampleExpr; table?: string }
  /** `sc-inc-gpc0(N)`, `sc-inc-gpc1(N)`, `sc-inc-gpc(idx,N)`. */
  | { type: 'sc-inc-gpc'; sc: ScIndex; idx: number }
  /** `sc-set-gpt0(N) <int|expr>`, `sc-set-gpt(idx,N) <int|expr>`. */
  | { type: 'sc-set-gpt'; sc: ScIndex; idx: number; value: SampleExpr | number };

/** `http-request|http-response|tcp-request connection|tcp-request content <action> [if|unless cond]`. */
export interface RuleConfig {
  action: RuleAction;
  cond?: CondConfig;
  /** Where the rule was written: logs name it when it denies a request. */
  loc: SourceLoc;
}

/** `use_backend <name> [if|unless cond]` (frontend and listen). */
export interface UseBackendConfig {
  backend: string;
  cond?: CondConfig;
  loc: SourceLoc;
}

/** The rules of one proxy section (frontend or backend; a listen section gives both). */
export interface RuleSet {
  acls: AclConfig[];
  tcpRequestConnection: RuleConfig[];
  tcpRequestContent: RuleConfig[];
  httpRequest: RuleConfig[];
  httpResponse: RuleConfig[];
}

export interface ServerTemplateConfig {
  prefix: string;
  count: number;
  /** FQDN or `_service._proto.name` for SRV. */
  fqdn: string;
  port: number;
  /** Settings copied to each slot (check, weight, inter, ...). */
  template: ServerSettings;
  resolvers?: string;
  initAddr: string[];
  loc: SourceLoc;
}

export interface BackendConfig {
  name: string;
  mode: ProxyMode;
  balance: BalanceAlgorithm;
  hashType: HashType;
  cookie?: CookieConfig;
  dynamicCookieKey?: string;
  /** Keys for `cookie ... sign`, in config order. */
  cookieKeys: CookieKeyConfig[];
  servers: ServerConfig[];
  serverTemplates: ServerTemplateConfig[];
  redispatch: boolean;
  /** `retries`, default 3. */
  retries: number;
  forwardFor?: ForwardForConfig;
  httpCheck?: HttpCheckConfig;
  timeouts: Timeouts;
  stickRules: StickRuleConfig[];
  /** A `stick-table` declared inside this backend. */
  stickTable?: StickTableConfig;
  /**
   * ACLs and rules of this backend, run after the frontend's for requests routed here. Absent: none.
   * A `listen` section gives the same RuleSet to its frontend and its backend: run it once when
   * the request came in through that listen section (HAProxy does not run a proxy's rules twice).
   */
  rules?: RuleSet;
  /** `timeout tarpit`: how long `tarpit` holds a request; default `timeout connect`. */
  tarpitTimeout?: number;
  /** `tcp-request inspect-delay`: how long `tcp-request content` rules may wait for data. Absent: not set. */
  inspectDelay?: number;
  /** `errorfile` responses, one per status (the last line for a status wins). Absent: none. */
  errorFiles?: ErrorFileConfig[];
  loc: SourceLoc;
}

export interface FrontendConfig {
  name: string;
  mode: ProxyMode;
  binds: BindConfig[];
  defaultBackend?: string;
  forwardFor?: ForwardForConfig;
  timeouts: Timeouts;
  /** Max concurrent client connections on this frontend (`maxconn`), default 2000 per HAProxy. */
  maxconn: number;
  /** ACLs and rules of this frontend. Absent: none. */
  rules?: RuleSet;
  /** `use_backend` rules in order; the first whose condition holds wins, else `defaultBackend`. Absent: none. */
  useBackends?: UseBackendConfig[];
  /** `timeout tarpit`, default `timeout connect`. */
  tarpitTimeout?: number;
  /** `tcp-request inspect-delay`. Absent: not set. */
  inspectDelay?: number;
  /**
   * A `stick-table` declared in a frontend (HAProxy allows it; the usual home of rate-limit
   * counters). Its id is the frontend's name. A listen section's table is on its backend side.
   */
  stickTable?: StickTableConfig;
  /** `errorfile` responses, one per status. Absent: none. */
  errorFiles?: ErrorFileConfig[];
  /** Line of `default_backend`, where a problem with its target is reported. */
  defaultBackendLoc?: SourceLoc;
  loc: SourceLoc;
}

export interface PeerConfig {
  name: string;
  /** Absent for a `server NAME` line naming the local peer without address. */
  host?: string;
  port?: number;
  loc: SourceLoc;
}

export interface PeersConfig {
  name: string;
  /** `bind` inside the peers section (the local listener), default :10000. */
  bind?: { host: string; port: number; loc?: SourceLoc };
  peers: PeerConfig[];
  tables: StickTableConfig[];
  /** `localpeer NAME` in global or here. */
  localPeer?: string;
  /** stickmesh `shared-secret`: peers authenticate with it (challenge-response). Env STICKMESH_PEERS_SECRET. */
  secret?: string;
  /** stickmesh `cluster-name`: peers of another cluster are refused. Default: the section name. */
  cluster?: string;
  /** stickmesh `resync-timeout`: how long /ready waits for the first full resync. Default 5000. */
  resyncTimeout?: number;
  /** stickmesh `tls-cert`/`tls-key`/`tls-ca`: PEM file paths; peers then speak wss. */
  tls?: { cert?: string; key?: string; ca?: string };
  loc: SourceLoc;
}

export interface NameserverConfig {
  name: string;
  host: string;
  port: number;
}

export interface ResolversConfig {
  name: string;
  nameservers: NameserverConfig[];
  resolveRetries: number;
  timeoutResolve: number;
  timeoutRetry: number;
  hold: { valid: number; obsolete: number; nx: number; timeout: number; refused: number; other: number };
  acceptedPayloadSize: number;
  loc: SourceLoc;
}

/** Upper bound of `nbthread` (HAProxy's default MAX_THREADS on 64-bit builds). */
export const MAX_NBTHREAD = 64;

export interface GlobalConfig {
  /** Max concurrent connections for the whole process. */
  maxconn: number;
  /** `localpeer`. */
  localPeer?: string;
  /** pino level for request and event logs. */
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /**
   * Admin HTTP listener (healthz, ready, metrics, API). `loc` is where its address was written
   * (`admin-bind`, native `global.admin.host`/`port`, or `STICKMESH_ADMIN_HOST`/`_PORT` as line 0);
   * without it the address is the default and the node picks the host (its peers address when that
   * is loopback). `allowOrigins` (`admin-allow-origin`): web origins whose pages may call the API
   * from a browser, besides the listener's own origin and the admin listeners of this node's peers.
   */
  admin: { host: string; port: number; token?: string; loc?: SourceLoc; allowOrigins?: string[] };
  /** Where table snapshots go. */
  dataDir: string;
  /**
   * `tune.maxaccept`: connections each listener may accept per event-loop turn (the listening
   * socket is opened this many times; see proxy/listen/dup.ts). 1 = plain Node behaviour.
   */
  maxAccept: number;
  /**
   * `nbthread`: data-plane threads of the node (1..`MAX_NBTHREAD`). With more than one, the main
   * thread keeps the mesh, admin, checks and discovery and accepts nothing; each worker thread
   * accepts on its own duplicates of every listening socket (cli/src/threads.ts).
   */
  nbthread: number;
  /** Server-side TLS defaults (`ssl-server-verify`, `ssl-default-server-options|ciphers|ciphersuites`). */
  sslServer?: ServerTlsDefaults;
  /** `ca-base`: directory relative `ca-file` paths are read from. */
  caBase?: string;
  /** `crt-base`: directory of relative `crt` paths. */
  crtBase?: string;
  /**
   * `ssl-default-bind-options` / `-ciphers` / `-ciphersuites`: the starting point of every `ssl`
   * bind written after them.
   */
  sslDefaultBind?: { options: string[]; ciphers?: string; ciphersuites?: string };
}

export interface StickmeshConfig {
  /** The file the config was read from (for messages). */
  source: string;
  global: GlobalConfig;
  frontends: FrontendConfig[];
  backends: BackendConfig[];
  peers: PeersConfig[];
  resolvers: ResolversConfig[];
}

/** A non-fatal remark about a config (HAProxy's [WARNING]): shown by `check`, logged by `start`. */
export interface ConfigWarning {
  loc: SourceLoc;
  directive: string;
  message: string;
}
