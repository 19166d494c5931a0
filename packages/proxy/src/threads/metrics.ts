/**
 * Whole-node metrics (`nbthread` > 1): the worker threads serve the requests, so `/metrics`, the
 * dashboard summary and the admin API's per-server counters add up every thread's figures.
 *
 * Main (`ThreadMetrics`, given to `ProxyMetrics.useOtherThreads`): a scrape sends `sm:metrics?`
 * with an id to every worker and waits for each `sm:metrics` reply (its registry as
 * `getMetricsAsJSON()` and its per-server totals) until a deadline; `ProxyMetrics.text()` then
 * sums them with main's own registry (prom-client's `AggregatorRegistry.aggregate`). A worker that
 * has not answered by the deadline is left out of that scrape, which still answers, and counted
 * in `stickmesh_thread_metrics_misses_total`.
 *
 * Worker (`ThreadMetricsResponder`): answers `sm:metrics?` from its process registry. Any
 * request turns the worker's metrics on; main sends one with id 0 (no answer) to every worker
 * as soon as its own metrics are on (an admin listener), so workers count requests exactly when
 * main has metrics, from the same moment.
 *
 * Bounds: one collection at a time (concurrent scrapes share the one in flight), so the replies
 * waited for are at most one per port; a reply with an unknown or stale id is dropped.
 */
import { metrics as processMetrics, type MetricsJson, type OtherFigures, type OtherThreads, type ProxyMetrics, type ThreadConnectErrors, type ThreadTotals } from '../metrics.js';
import type { ThreadMessage, ThreadPort } from './port.js';

export const METRICS_ASK = 'sm:metrics?';
export const METRICS_REPLY = 'sm:metrics';
/** How long a scrape waits for the workers (ms). */
export const METRICS_DEADLINE_MS = 1000;

interface Reply extends ThreadMessage {
  readonly id: number;
  readonly metrics: MetricsJson;
  readonly totals: ThreadTotals;
  readonly connections: number;
  readonly connectErrors?: ThreadConnectErrors;
}

interface Pending {
  readonly id: number;
  readonly waiting: Set<ThreadPort>;
  readonly metrics: MetricsJson[];
  readonly totals: ThreadTotals[];
  readonly connectErrors: ThreadConnectErrors[];
  connections: number;
  readonly done: (r: OtherFigures) => void;
  timer: NodeJS.Timeout | undefined;
}

export class ThreadMetrics implements OtherThreads {
  private readonly ports = new Set<ThreadPort>();
  private readonly deadlineMs: number;
  private nextId = 1;
  private pending: Pending | undefined;
  private inFlight: Promise<OtherFigures> | undefined;
  private readonly m: ProxyMetrics;
  /** Workers that did not answer a scrape in time, since start (monotonic). */
  misses = 0;

  constructor(opts: { deadlineMs?: number; metrics?: ProxyMetrics } = {}) {
    this.deadlineMs = opts.deadlineMs ?? METRICS_DEADLINE_MS;
    const m = opts.metrics ?? processMetrics;
    this.m = m;
    m.onEnable = () => {
      for (const p of this.ports) p.post({ t: METRICS_ASK, id: 0 });
    };
    m.gauge('stickmesh_thread_metrics_misses_total', 'Worker threads that did not answer a metrics scrape within 1 s (that scrape left them out), since start (monotonic).', [], (set) => set({}, this.misses));
  }

  /** A worker joined: its replies count from now on, and its metrics are switched on. */
  addPort(port: ThreadPort): void {
    this.ports.add(port);
    port.on(METRICS_REPLY, (msg) => this.onReply(port, msg as Reply));
    if (this.m.enabled) port.post({ t: METRICS_ASK, id: 0 });
  }

  /** A worker left (exit or replaced): a collection in flight stops waiting for it. */
  removePort(port: ThreadPort): void {
    this.ports.delete(port);
    const p = this.pending;
    if (p && p.waiting.delete(port) && p.waiting.size === 0) this.finish(p);
  }

  /** Every worker's metrics and totals; resolves by the deadline with those that answered. */
  collect(): Promise<OtherFigures> {
    if (this.inFlight) return this.inFlight;
    const id = this.nextId++;
    if (this.nextId > 0x3fffffff) this.nextId = 1;
    this.inFlight = new Promise((resolve) => {
      const p: Pending = { id, waiting: new Set(this.ports), metrics: [], totals: [], connectErrors: [], connections: 0, done: resolve, timer: undefined };
      this.pending = p;
      if (p.waiting.size === 0) return this.finish(p);
      p.timer = setTimeout(() => this.finish(p), this.deadlineMs);
      p.timer.unref?.();
      for (const port of p.waiting) port.post({ t: METRICS_ASK, id });
    });
    return this.inFlight;
  }

  private onReply(port: ThreadPort, msg: Reply): void {
    const p = this.pending;
    if (!p || msg.id !== p.id || !p.waiting.delete(port)) return;
    p.metrics.push(msg.metrics);
    p.totals.push(msg.totals);
    if (Array.isArray(msg.connectErrors)) p.connectErrors.push(msg.connectErrors);
    p.connections += typeof msg.connections === 'number' ? msg.connections : 0;
    if (p.waiting.size === 0) this.finish(p);
  }

  private finish(p: Pending): void {
    if (this.pending !== p) return;
    if (p.timer) clearTimeout(p.timer);
    this.misses += p.waiting.size;
    this.pending = undefined;
    this.inFlight = undefined;
    p.done({ metrics: p.metrics, totals: p.totals, connections: p.connections, connectErrors: p.connectErrors });
  }
}

/**
 * Worker side: answers the main thread's `sm:metrics?` from this thread's metrics, with its open
 * client connections (`connections`, e.g. its proxy's `connectionCount`) and its connect outcomes
 * for the servers that ever failed (`connectErrors`; bound: one row per such server).
 */
export class ThreadMetricsResponder {
  constructor(port: ThreadPort, m: ProxyMetrics = processMetrics, connections: () => number = () => 0, connectErrors: () => ThreadConnectErrors = () => []) {
    port.on(METRICS_ASK, (msg) => {
      m.enable();
      const id = msg.id;
      if (typeof id !== 'number') return;
      if (id === 0) {
        // Load prom-client now rather than on the first scrape, which would otherwise spend much
        // of its deadline on it and miss this thread.
        void m.json().catch(() => undefined);
        return;
      }
      void m.json().then(
        (json) => port.post({ t: METRICS_REPLY, id, metrics: json, totals: m.threadTotals(), connections: connections(), connectErrors: connectErrors() }),
        () => port.post({ t: METRICS_REPLY, id, metrics: [], totals: m.threadTotals(), connections: connections(), connectErrors: connectErrors() }),
      );
    });
  }
}
