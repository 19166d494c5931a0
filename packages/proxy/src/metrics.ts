/**
 * Prometheus metrics of the data plane. One registry per process (`metrics`), off until
 * `enable()` so embedded/test proxies pay nothing.
 *
 * The request path calls `http()` / `tcp()` once per finished exchange and only bumps plain
 * numbers: a per-server `Series` (reached through one WeakMap lookup) and a per-backend
 * `BackendCounts`. prom-client turns them into exposition text at scrape time through
 * `PlainMetric` objects registered in its registry, so a request costs no label hashing, no
 * allocation and no prom-client call (labelled prom-client children re-hash their labels on every
 * `inc`, which was about 6% of the proxy's CPU under load).
 *
 * Gauges that describe state (tables, peers, servers) are computed at scrape time by collectors
 * the node registers (`gauge(...)` with a collect function), never on the hot path.
 *
 * prom-client is loaded on the first scrape (`text()`), not at start: a node nobody scrapes never
 * loads it (with its dependencies about 1.3 MiB of heap and 4-5 MiB of resident memory,
 * docs/BENCHMARKS.md#memory). Until then the metrics and gauges wait in plain lists.
 *
 * Bounds: at most `MAX_SERIES_PAIRS` backend/server pairs get their own series; later pairs share
 * one `<other>` series. Flag, decision and stick-result keys come from small fixed alphabets.
 */
import type client from 'prom-client';
import type { RuntimeServer } from './runtime/server.js';

/** Latency bucket bounds, in seconds (exposition) and in milliseconds (hot path compare). */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const LATENCY_BOUNDS_MS = LATENCY_BUCKETS.map((s) => s * 1000);
const NOSRV = '<NOSRV>';
const CODE_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx', 'tcp'] as const;
/** Distinct backend/server pairs that get their own series; beyond, they share `<other>` (cardinality bound). */
export const MAX_SERIES_PAIRS = 10000;

/** Plain per-server totals, also read by the admin summary (cheaper than scraping the registry). */
export interface ServerTotals {
  requests: number;
  errors: number;
  /**
   * Why the server's last connect failed, over every thread of the node: the latest failure
   * unless a later connect succeeded ('' then, or when none failed).
   */
  lastConnectError?: string;
}

/**
 * A data-plane thread's connect outcomes for servers that ever failed: backend, server, the
 * thread's last failure, its loop-clock time, the time of the thread's last success.
 */
export type ThreadConnectErrors = Array<[string, string, string, number, number]>;

/** A server's connect outcomes as loop-clock times: the last failure (with its reason) and the last success, 0 for never. */
interface ConnectOutcome {
  error: string;
  errAt: number;
  okAt: number;
}

/** Merges one thread's outcome into `into`: the later failure and the later success win. */
function keepLatest(into: ConnectOutcome, error: string, errAt: number, okAt: number): void {
  if (errAt > into.errAt) {
    into.error = error;
    into.errAt = errAt;
  }
  if (okAt > into.okAt) into.okAt = okAt;
}

/** Counters of one backend/server pair. */
class Series {
  readonly totals: ServerTotals = { requests: 0, errors: 0 };
  /** Finished exchanges by status class (index = status / 100; 0 for out of range, 6 for tcp). */
  readonly byClass = new Float64Array(CODE_CLASSES.length);
  /** Non-cumulative bucket counts; the last slot is +Inf. */
  readonly buckets = new Float64Array(LATENCY_BOUNDS_MS.length + 1);
  latencySumMs = 0;
  constructor(
    readonly backend: string,
    readonly server: string,
    readonly be: BackendCounts,
  ) {}

  observe(ms: number): void {
    let i = 0;
    while (i < LATENCY_BOUNDS_MS.length && ms > LATENCY_BOUNDS_MS[i]!) i++;
    this.buckets[i]!++;
    this.latencySumMs += ms;
  }
}

/** Per-backend counters keyed by small closed sets of values. */
class BackendCounts {
  /** Cookie flags: key = request flag code * 256 + response flag code. */
  readonly flags = new Map<number, number>();
  readonly decisions = new Map<string, number>();
  readonly stick = new Map<string, number>();
  constructor(readonly name: string) {}
}

function bump<K>(m: Map<K, number>, k: K): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

/** Requests, responses and connections a frontend's rules refused (deny, tarpit, reject). */
export interface DenyCounts {
  requests: number;
  responses: number;
  connections: number;
}

/** Frontends with their own refusal counts; beyond, they share `<other>` (cardinality bound). */
export const MAX_DENY_FRONTENDS = 1000;

/**
 * Why a TLS handshake on an `ssl` bind did not complete (`stickmesh_tls_handshake_failures_total`):
 * a closed set, so the label stays small.
 */
export const TLS_FAILURE_REASONS = [
  'http-on-tls', 'not-tls', 'bad-hello', 'hello-too-large', 'strict-sni', 'timeout', 'closed', 'overload', 'protocol', 'cipher', 'handshake',
] as const;
export type TlsFailureReason = (typeof TLS_FAILURE_REASONS)[number];

/** Per frontend: handshakes that failed, by reason (index in TLS_FAILURE_REASONS), and those that completed. */
export interface TlsCounts {
  readonly failures: Float64Array;
  handshakes: number;
  resumed: number;
}

type MetricValue = { labels: Record<string, string | number>; value: number; metricName?: string };

/**
 * A metric prom-client's registry can expose (it calls `get()` at scrape time) whose values come
 * from plain counters kept elsewhere.
 */
class PlainMetric {
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    private readonly values: () => MetricValue[],
  ) {}

  get(): { name: string; help: string; type: string; values: MetricValue[]; aggregator: string } {
    return { name: this.name, help: this.help, type: this.type, values: this.values(), aggregator: this.aggregator };
  }

  reset(): void {
    /* counters are owned by ProxyMetrics; nothing to reset here */
  }
}

/** A registry's metrics as prom-client's `getMetricsAsJSON()` gives them (structured-cloneable). */
export type MetricsJson = client.MetricObjectWithValues<client.MetricValue<string>>[];

/** Per-server totals of a thread by name: [backend, server, requests, errors]. */
export type ThreadTotals = Array<[string, string, number, number]>;

/** What the other threads report: each one's registry and per-server totals, and their client connections summed. */
export interface OtherFigures {
  metrics: MetricsJson[];
  totals: ThreadTotals[];
  connections: number;
  /** Each thread's connect outcomes (absent from a thread of an older build). */
  connectErrors?: ThreadConnectErrors[];
}

/**
 * The other threads of the node (`nbthread` > 1, threads/metrics.ts): what `text()` and
 * `totals()` add to this thread's figures so they describe the whole node.
 */
export interface OtherThreads {
  /** Every other thread's metrics and totals; what did not arrive in time is left out (and counted there). */
  collect(): Promise<OtherFigures>;
}

/** Content type of the exposition (prom-client's Registry.PROMETHEUS_CONTENT_TYPE, the 0.0.4 text format). */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** A scrape-time gauge waiting for the registry (see `ProxyMetrics.gauge`). */
interface GaugeDef {
  name: string;
  help: string;
  labelNames: readonly string[];
  collect: (set: (labels: Record<string, string>, v: number) => void) => void;
}

export class ProxyMetrics {
  enabled = false;
  /** The plain metrics, registered with the registry when it is made. */
  private readonly plain: PlainMetric[] = [];
  /** Gauges by name (a name registered again replaces the earlier one); bounded by the names the code registers. */
  private readonly gauges = new Map<string, GaugeDef>();
  private lib: typeof client | undefined;
  private registry: client.Registry | undefined;
  private readonly byServer = new WeakMap<RuntimeServer, Series>();
  /** Every series by `backend \0 server` name: reloads map new server objects to the same series. */
  private readonly byName = new Map<string, Series>();
  private readonly backends = new Map<string, BackendCounts>();
  private other: Series | undefined;
  /** Refusal counts by frontend name (kept across reloads); at most MAX_DENY_FRONTENDS, then `<other>`. */
  private readonly denials = new Map<string, DenyCounts>();
  /** TLS handshake counts by frontend name (kept across reloads); at most MAX_DENY_FRONTENDS, then `<other>`. */
  private readonly tlsByFrontend = new Map<string, TlsCounts>();
  /** The node's other threads, when there are (main thread with `nbthread` > 1). */
  private others: OtherThreads | undefined;
  /**
   * The other threads' per-server totals by `backend \0 server`, as of the last `refresh()` or
   * scrape; replaced whole each time (bound: their series, each bounded by MAX_SERIES_PAIRS).
   */
  private otherTotals = new Map<string, ServerTotals>();
  /** The other threads' latest connect failure and success per server (key as otherTotals), as of the last `refresh()`. */
  private otherConnects = new Map<string, ConnectOutcome>();
  /** The other threads' open client connections, as of the last `refresh()` or scrape. */
  otherConnections = 0;

  constructor() {
    const reg = (m: PlainMetric): void => void this.plain.push(m);
    reg(new PlainMetric('stickmesh_requests_total', 'Finished HTTP exchanges and TCP connections by backend, server and status class (tcp for TCP).', 'counter', () => {
      const out: MetricValue[] = [];
      for (const s of this.byName.values()) {
        for (let i = 0; i < CODE_CLASSES.length; i++) if (s.byClass[i]! > 0) out.push({ labels: { backend: s.backend, server: s.server, code: CODE_CLASSES[i]! }, value: s.byClass[i]! });
      }
      return out;
    }));
    reg(new PlainMetric('stickmesh_errors_total', 'Exchanges that ended with a 5xx, a proxy-generated error or an abort (termination state not --).', 'counter', () => {
      const out: MetricValue[] = [];
      for (const s of this.byName.values()) if (s.totals.errors > 0) out.push({ labels: { backend: s.backend, server: s.server }, value: s.totals.errors });
      return out;
    }));
    reg(new PlainMetric('stickmesh_request_duration_seconds', 'Total time of an HTTP exchange (Ta) or a TCP connection (Tt).', 'histogram', () => {
      const out: MetricValue[] = [];
      const name = 'stickmesh_request_duration_seconds';
      for (const s of this.byName.values()) {
        let acc = 0;
        for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
          acc += s.buckets[i]!;
          out.push({ labels: { le: LATENCY_BUCKETS[i]!, backend: s.backend, server: s.server }, value: acc, metricName: `${name}_bucket` });
        }
        acc += s.buckets[LATENCY_BUCKETS.length]!;
        out.push({ labels: { le: '+Inf', backend: s.backend, server: s.server }, value: acc, metricName: `${name}_bucket` });
        out.push({ labels: { backend: s.backend, server: s.server }, value: s.latencySumMs / 1000, metricName: `${name}_sum` });
        out.push({ labels: { backend: s.backend, server: s.server }, value: acc, metricName: `${name}_count` });
      }
      return out;
    }));
    reg(new PlainMetric('stickmesh_persistence_total', "Cookie persistence outcomes: HAProxy's request and response cookie flags (e.g. request=V response=N).", 'counter', () => {
      const out: MetricValue[] = [];
      for (const b of this.backends.values()) {
        for (const [k, v] of b.flags) out.push({ labels: { backend: b.name, request: String.fromCharCode(k >> 8), response: String.fromCharCode(k & 0xff) }, value: v });
      }
      return out;
    }));
    reg(new PlainMetric('stickmesh_decisions_total', 'Which rule chose the server: cookie, stick, stick-first, balance, redispatch.', 'counter', () => {
      const out: MetricValue[] = [];
      for (const b of this.backends.values()) for (const [by, v] of b.decisions) out.push({ labels: { backend: b.name, by }, value: v });
      return out;
    }));
    reg(new PlainMetric('stickmesh_denied_total', 'Requests, responses and connections refused by rules (deny, tarpit, reject), by frontend.', 'counter', () => {
      const out: MetricValue[] = [];
      for (const [frontend, d] of this.denials) {
        out.push({ labels: { frontend, what: 'request' }, value: d.requests });
        out.push({ labels: { frontend, what: 'response' }, value: d.responses });
        out.push({ labels: { frontend, what: 'connection' }, value: d.connections });
      }
      return out;
    }));
    reg(new PlainMetric('stickmesh_tls_handshake_failures_total', 'TLS handshakes on ssl binds that did not complete, by frontend and reason (http-on-tls: plain HTTP sent to a TLS port).', 'counter', () => {
      const out: MetricValue[] = [];
      for (const [frontend, t] of this.tlsByFrontend) {
        for (let i = 0; i < TLS_FAILURE_REASONS.length; i++) if (t.failures[i]! > 0) out.push({ labels: { frontend, reason: TLS_FAILURE_REASONS[i]! }, value: t.failures[i]! });
      }
      return out;
    }));
    reg(new PlainMetric('stickmesh_tls_handshakes_total', 'TLS handshakes completed on ssl binds, by frontend; resumed=true for abbreviated ones (session ticket).', 'counter', () => {
      const out: MetricValue[] = [];
      for (const [frontend, t] of this.tlsByFrontend) {
        out.push({ labels: { frontend, resumed: 'false' }, value: t.handshakes - t.resumed });
        out.push({ labels: { frontend, resumed: 'true' }, value: t.resumed });
      }
      return out;
    }));
    reg(new PlainMetric('stickmesh_stick_lookups_total', 'Stick match outcomes: hit, miss, down (entry named an unusable server).', 'counter', () => {
      const out: MetricValue[] = [];
      for (const b of this.backends.values()) for (const [result, v] of b.stick) out.push({ labels: { backend: b.name, result }, value: v });
      return out;
    }));
  }

  enable(): void {
    if (this.enabled) return;
    this.enabled = true;
    this.onEnable?.();
  }

  /** Called once when `enable()` first turns the metrics on (threads/metrics.ts turns the workers' on with them). */
  onEnable: (() => void) | undefined = undefined;

  /**
   * Per-server totals for the summary: this thread's, plus the other threads' (found by
   * `backend` and server name) as of the last `refresh()`; zero when the server served nothing yet.
   */
  totals(server: RuntimeServer, backend?: string): ServerTotals {
    const own = this.byServer.get(server)?.totals;
    if (this.others === undefined) return { requests: own?.requests ?? 0, errors: own?.errors ?? 0, lastConnectError: server.lastConnectError };
    const be = backend ?? this.byServer.get(server)?.backend ?? '';
    const key = `${be}\0${server.name}`;
    const other = this.otherTotals.get(key);
    // The latest connect outcome of any thread (this one's own included) decides.
    const c: ConnectOutcome = { error: server.lastConnectError, errAt: server.lastConnectErrorAt, okAt: server.lastConnectOkAt };
    const o = this.otherConnects.get(key);
    if (o !== undefined) keepLatest(c, o.error, o.errAt, o.okAt);
    return { requests: (own?.requests ?? 0) + (other?.requests ?? 0), errors: (own?.errors ?? 0) + (other?.errors ?? 0), lastConnectError: c.errAt > c.okAt ? c.error : '' };
  }

  /**
   * Makes `text()` and `totals()` count the node's other threads (main thread, `nbthread` > 1);
   * undefined: this thread alone again.
   */
  useOtherThreads(others: OtherThreads | undefined): void {
    this.others = others;
    this.otherTotals = new Map();
    this.otherConnects = new Map();
    this.otherConnections = 0;
  }

  /** Fetches the other threads' totals now (before an admin summary); nothing to do without them. */
  async refresh(): Promise<void> {
    if (this.others === undefined) return;
    this.takeOthers(await this.others.collect());
  }

  /** This thread's per-server totals by name, for the main thread's whole-node figures. */
  threadTotals(): ThreadTotals {
    const out: ThreadTotals = [];
    for (const s of this.byName.values()) if (s.totals.requests > 0 || s.totals.errors > 0) out.push([s.backend, s.server, s.totals.requests, s.totals.errors]);
    return out;
  }

  /** This thread's registry as JSON (prom-client's getMetricsAsJSON), for the main thread's scrape. */
  async json(): Promise<MetricsJson> {
    return (await this.ensureRegistry()).getMetricsAsJSON();
  }

  /** Keeps what the other threads answered: their totals, connect outcomes and open connections. */
  private takeOthers(got: OtherFigures): void {
    this.setOtherTotals(got.totals);
    this.setOtherConnects(got.connectErrors ?? []);
    this.otherConnections = got.connections;
  }

  private setOtherConnects(all: readonly ThreadConnectErrors[]): void {
    const m = new Map<string, ConnectOutcome>();
    for (const list of all) {
      for (const [backend, server, error, errAt, okAt] of list) {
        const k = `${backend}\0${server}`;
        const t = m.get(k);
        if (!t) m.set(k, { error, errAt, okAt });
        else keepLatest(t, error, errAt, okAt);
      }
    }
    this.otherConnects = m;
  }

  private setOtherTotals(all: readonly ThreadTotals[]): void {
    const m = new Map<string, ServerTotals>();
    for (const list of all) {
      for (const [backend, server, requests, errors] of list) {
        const k = `${backend}\0${server}`;
        const t = m.get(k);
        if (t) {
          t.requests += requests;
          t.errors += errors;
        } else m.set(k, { requests, errors });
      }
    }
    this.otherTotals = m;
  }

  /** Records a finished HTTP exchange. `reqFlag`/`resFlag` are HAProxy's cookie flag characters. */
  http(backend: string, server: RuntimeServer | undefined, status: number, ms: number, failed: boolean, reqFlag: string, resFlag: string, decidedBy: string, stick: string): void {
    if (!this.enabled) return;
    const s = this.series(backend, server);
    const cls = status >= 100 && status < 600 ? (status / 100) | 0 : 0;
    s.byClass[cls]!++;
    s.observe(ms);
    s.totals.requests++;
    if (failed || status >= 500) s.totals.errors++;
    const be = s.be;
    if (reqFlag !== '-' || resFlag !== '-') bump(be.flags, (reqFlag.charCodeAt(0) << 8) | resFlag.charCodeAt(0));
    if (decidedBy !== '') bump(be.decisions, decidedBy);
    if (stick !== '') bump(be.stick, stick);
  }

  /**
   * The refusal counts of frontend `name`, bumped directly by the data plane (no call per
   * refusal); the same object across reloads. Counted whether or not metrics are enabled.
   */
  denyCounts(name: string): DenyCounts {
    let d = this.denials.get(name);
    if (d === undefined) {
      if (this.denials.size >= MAX_DENY_FRONTENDS) name = '<other>';
      d = this.denials.get(name);
      if (d === undefined) this.denials.set(name, (d = { requests: 0, responses: 0, connections: 0 }));
    }
    return d;
  }

  /** The TLS handshake counts of frontend `name`, bumped directly by the listener; the same object across reloads. */
  tlsCounts(name: string): TlsCounts {
    let t = this.tlsByFrontend.get(name);
    if (t === undefined) {
      if (this.tlsByFrontend.size >= MAX_DENY_FRONTENDS) name = '<other>';
      t = this.tlsByFrontend.get(name);
      if (t === undefined) this.tlsByFrontend.set(name, (t = { failures: new Float64Array(TLS_FAILURE_REASONS.length), handshakes: 0, resumed: 0 }));
    }
    return t;
  }

  /** Records a finished TCP connection. */
  tcp(backend: string, server: RuntimeServer | undefined, ms: number, failed: boolean, decidedBy: string): void {
    if (!this.enabled) return;
    const s = this.series(backend, server);
    s.byClass[6]!++;
    s.observe(ms);
    s.totals.requests++;
    if (failed) s.totals.errors++;
    if (decidedBy !== '') bump(s.be.decisions, decidedBy);
  }

  /**
   * Prometheus text exposition of every metric (data plane and registered collectors), summed
   * over the node's threads when it has others (series of the same name and labels add up).
   */
  async text(): Promise<string> {
    const registry = await this.ensureRegistry();
    if (this.others === undefined) return registry.metrics();
    // The others first: main's own figures (its gauges, the misses among them) are then current.
    const got = await this.others.collect();
    this.takeOthers(got);
    const own = await registry.getMetricsAsJSON();
    return this.lib!.AggregatorRegistry.aggregate([own, ...got.metrics]).metrics();
  }

  private async ensureRegistry(): Promise<client.Registry> {
    if (!this.registry) {
      const lib = (this.lib ??= (await import('prom-client')).default);
      if (!this.registry) {
        const registry = new lib.Registry();
        for (const m of this.plain) registry.registerMetric(m as unknown as client.Metric);
        this.registry = registry;
        for (const g of this.gauges.values()) this.register(g);
      }
    }
    return this.registry;
  }

  get contentType(): string {
    return METRICS_CONTENT_TYPE;
  }

  /** Registers a gauge computed at scrape time. Registering the same name again replaces it. */
  gauge<L extends string>(name: string, help: string, labelNames: readonly L[], collect: (set: (labels: Record<L, string>, v: number) => void) => void): void {
    const def = { name, help, labelNames, collect } as unknown as GaugeDef;
    this.gauges.set(name, def);
    if (this.registry) this.register(def);
  }

  /** Puts one gauge into the registry, replacing one of the same name. */
  private register(def: GaugeDef): void {
    const registry = this.registry!;
    const lib = this.lib!;
    registry.removeSingleMetric(def.name);
    const g: client.Gauge = new lib.Gauge({
      name: def.name,
      help: def.help,
      labelNames: def.labelNames,
      registers: [registry],
      collect() {
        g.reset();
        def.collect((labels, v) => g.set(labels, v));
      },
    });
  }

  /** The series of a pair; created on its first exchange (off the steady-state path). */
  private series(backend: string, server: RuntimeServer | undefined): Series {
    const cached = server ? this.byServer.get(server) : undefined;
    if (cached) return cached;
    const srv = server?.name ?? NOSRV;
    const key = `${backend}\0${srv}`;
    let s = this.byName.get(key);
    if (!s) {
      if (this.byName.size >= MAX_SERIES_PAIRS) {
        s = this.other ??= new Series('<other>', '<other>', this.backendCounts('<other>'));
        if (!this.byName.has('<other>\0<other>')) this.byName.set('<other>\0<other>', s);
      } else {
        s = new Series(backend, srv, this.backendCounts(backend));
        this.byName.set(key, s);
      }
    }
    if (server) this.byServer.set(server, s);
    return s;
  }

  private backendCounts(name: string): BackendCounts {
    let b = this.backends.get(name);
    if (!b) this.backends.set(name, (b = new BackendCounts(name)));
    return b;
  }
}

/** The process's metrics. */
export const metrics = new ProxyMetrics();
