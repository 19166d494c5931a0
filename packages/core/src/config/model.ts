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

export interface BindConfig {
  /** Address to listen on; '' or '*' means all IPv4/IPv6 addresses. */
  host: string;
  port: number;
  loc: SourceLoc;
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
  loc: SourceLoc;
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
  loc: SourceLoc;
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
