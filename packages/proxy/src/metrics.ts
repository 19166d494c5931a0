/**
 * Prometheus metrics of the data plane (prom-client). One registry per process (`metrics`), off
 * until `enable()` so embedded/test proxies pay nothing. The request path calls `http()` / `tcp()`
 * once per finished exchange: labeled children are created on the first request of a
 * backend/server pair and cached (per server object, per flag character), so a steady request
 * costs a few map lookups and counter increments, no allocation.
 *
 * Gauges that describe state (tables, peers, servers) are computed at scrape time by collectors
 * the node registers (`gauge(...)` with a collect function), never on the hot path.
 */
import client from 'prom-client';
import type { RuntimeServer } from './runtime/server.js';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const NOSRV = '<NOSRV>';
/** Distinct backend/server pairs that get their own series; beyond, they share `<other>` (cardinality bound). */
export const MAX_SERIES_PAIRS = 10000;

/** Plain per-server totals, also read by the admin summary (cheaper than scraping the registry). */
export interface ServerTotals {
  requests: number;
  errors: number;
}

interface Inc {
  inc(v?: number): void;
}
interface Obs {
  observe(v: number): void;
}

interface Series {
  totals: ServerTotals;
  byClass: Inc[];
  errors: Inc;
  latency: Obs;
}

export class ProxyMetrics {
  readonly registry = new client.Registry();
  enabled = false;
  private readonly requests: client.Counter<'backend' | 'server' | 'code'>;
  private readonly errors: client.Counter<'backend' | 'server'>;
  private readonly latency: client.Histogram<'backend' | 'server'>;
  private readonly persistence: client.Counter<'backend' | 'request' | 'response'>;
  private readonly decisions: client.Counter<'backend' | 'by'>;
  private readonly stick: client.Counter<'backend' | 'result'>;
  private readonly byServer = new WeakMap<RuntimeServer, Series>();
  private readonly noServer = new Map<string, Series>();
  private readonly flagChildren = new Map<string, Map<string, Map<string, Inc>>>();
  private readonly decisionChildren = new Map<string, Map<string, Inc>>();
  private readonly stickChildren = new Map<string, Map<string, Inc>>();
  private pairs = 0;

  constructor() {
    const registers = [this.registry];
    this.requests = new client.Counter({ name: 'stickmesh_requests_total', help: 'Finished HTTP exchanges and TCP connections by backend, server and status class (tcp for TCP).', labelNames: ['backend', 'server', 'code'], registers });
    this.errors = new client.Counter({ name: 'stickmesh_errors_total', help: 'Exchanges that ended with a 5xx, a proxy-generated error or an abort (termination state not --).', labelNames: ['backend', 'server'], registers });
    this.latency = new client.Histogram({ name: 'stickmesh_request_duration_seconds', help: 'Total time of an HTTP exchange (Ta) or a TCP connection (Tt).', labelNames: ['backend', 'server'], buckets: LATENCY_BUCKETS, registers });
    this.persistence = new client.Counter({ name: 'stickmesh_persistence_total', help: "Cookie persistence outcomes: HAProxy's request and response cookie flags (e.g. request=V response=N).", labelNames: ['backend', 'request', 'response'], registers });
    this.decisions = new client.Counter({ name: 'stickmesh_decisions_total', help: 'Which rule chose the server: cookie, stick, stick-first, balance, redispatch.', labelNames: ['backend', 'by'], registers });
    this.stick = new client.Counter({ name: 'stickmesh_stick_lookups_total', help: 'Stick match outcomes: hit, miss, down (entry named an unusable server).', labelNames: ['backend', 'result'], registers });
  }

  enable(): void {
    this.enabled = true;
  }

  /** Per-server totals for the summary; zero when the server served nothing yet. */
  totals(server: RuntimeServer): ServerTotals {
    return this.byServer.get(server)?.totals ?? { requests: 0, errors: 0 };
  }

  /** Records a finished HTTP exchange. `reqFlag`/`resFlag` are HAProxy's cookie flag characters. */
  http(backend: string, server: RuntimeServer | undefined, status: number, ms: number, failed: boolean, reqFlag: string, resFlag: string, decidedBy: string, stick: string): void {
    if (!this.enabled) return;
    const s = this.series(backend, server);
    const cls = status >= 100 && status < 600 ? (status / 100) | 0 : 0;
    s.byClass[cls]!.inc();
    s.latency.observe(ms / 1000);
    s.totals.requests++;
    if (failed || status >= 500) {
      s.errors.inc();
      s.totals.errors++;
    }
    if (reqFlag !== '-' || resFlag !== '-') this.flag(backend, reqFlag, resFlag).inc();
    if (decidedBy !== '') this.child(this.decisionChildren, this.decisions, backend, 'by', decidedBy).inc();
    if (stick !== '') this.child(this.stickChildren, this.stick, backend, 'result', stick).inc();
  }

  /** Records a finished TCP connection. */
  tcp(backend: string, server: RuntimeServer | undefined, ms: number, failed: boolean, decidedBy: string): void {
    if (!this.enabled) return;
    const s = this.series(backend, server);
    s.byClass[6]!.inc();
    s.latency.observe(ms / 1000);
    s.totals.requests++;
    if (failed) {
      s.errors.inc();
      s.totals.errors++;
    }
    if (decidedBy !== '') this.child(this.decisionChildren, this.decisions, backend, 'by', decidedBy).inc();
  }

  /** Prometheus text exposition of every metric (data plane and registered collectors). */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Registers a gauge computed at scrape time. Registering the same name again replaces it. */
  gauge<L extends string>(name: string, help: string, labelNames: readonly L[], collect: (set: (labels: Record<L, string>, v: number) => void) => void): void {
    this.registry.removeSingleMetric(name);
    const g: client.Gauge<L> = new client.Gauge<L>({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        g.reset();
        collect((labels, v) => g.set(labels as client.LabelValues<L>, v));
      },
    });
  }

  private series(backend: string, server: RuntimeServer | undefined): Series {
    let s = server ? this.byServer.get(server) : this.noServer.get(backend);
    if (s) return s;
    const over = this.pairs >= MAX_SERIES_PAIRS;
    const b = over ? '<other>' : backend;
    const n = over ? '<other>' : (server?.name ?? NOSRV);
    this.pairs++;
    const codes = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx', 'tcp'];
    s = {
      totals: { requests: 0, errors: 0 },
      byClass: codes.map((code) => this.requests.labels({ backend: b, server: n, code })),
      errors: this.errors.labels({ backend: b, server: n }),
      latency: this.latency.labels({ backend: b, server: n }),
    };
    if (server) this.byServer.set(server, s);
    else this.noServer.set(backend, s);
    return s;
  }

  private flag(backend: string, req: string, res: string): Inc {
    let a = this.flagChildren.get(backend);
    if (!a) this.flagChildren.set(backend, (a = new Map()));
    let b = a.get(req);
    if (!b) a.set(req, (b = new Map()));
    let c = b.get(res);
    if (!c) b.set(res, (c = this.persistence.labels({ backend, request: req, response: res })));
    return c;
  }

  private child<L extends string>(cache: Map<string, Map<string, Inc>>, metric: client.Counter<'backend' | L>, backend: string, label: L, value: string): Inc {
    let a = cache.get(backend);
    if (!a) cache.set(backend, (a = new Map()));
    let c = a.get(value);
    if (!c) a.set(value, (c = metric.labels({ backend, [label]: value } as Record<'backend' | L, string>)));
    return c;
  }
}

/** The process's metrics. */
export const metrics = new ProxyMetrics();
