/**
 * The whole wiring of "one view of the servers per node" and whole-node metrics, for the thread
 * pool (cli threads.ts) and the worker entry (cli thread-main.ts) to call in a few lines:
 *
 * main thread                                   worker thread
 *   v = new MainThreadView(proxy.backends)        w = new WorkerThreadView(port, init.view, () => proxy.connectionCount())
 *   workerData.view = v.initial()                 (after StickmeshProxy.create) w.setBackends(proxy.backends)
 *   per thread: v.join(port) / v.leave(port)      (after each reload here)      w.setBackends(proxy.backends)
 *   after main's reload: v.reloaded(backends)
 *   after a worker's sm:reloaded: v.resend(port)
 *
 * Main's metrics count every thread from `new MainThreadView` on (`/metrics`, the admin API).
 */
import { metrics as processMetrics, type ProxyMetrics, type ThreadConnectErrors } from '../metrics.js';
import type { RuntimeBackend } from '../runtime/backend.js';
import type { ThreadPort } from './port.js';
import { ServerViewPublisher, ServerViewSubscriber, type ViewMessage } from './view.js';
import { ThreadMetrics, ThreadMetricsResponder } from './metrics.js';

export class MainThreadView {
  readonly publisher = new ServerViewPublisher({ shared: true });
  readonly threadMetrics: ThreadMetrics;
  private readonly m: ProxyMetrics;

  constructor(backends: ReadonlyMap<string, RuntimeBackend>, m: ProxyMetrics = processMetrics) {
    this.m = m;
    this.publisher.setBackends(backends);
    this.threadMetrics = new ThreadMetrics({ metrics: m });
    m.useOtherThreads(this.threadMetrics);
  }

  /** The full view (with the shared connection counts) a new thread starts from: put it in its workerData. */
  initial(): ViewMessage {
    return this.publisher.fullView();
  }

  /** A thread started: it gets views and metrics requests from now on. */
  join(port: ThreadPort): void {
    this.publisher.addPort(port);
    this.threadMetrics.addPort(port);
  }

  /** A thread ended: no more views, and scrapes stop waiting for it. */
  leave(port: ThreadPort): void {
    this.publisher.removePort(port);
    this.threadMetrics.removePort(port);
  }

  /** Main reloaded: follow its new backends (new shared counts, full view to every thread). */
  reloaded(backends: ReadonlyMap<string, RuntimeBackend>): void {
    this.publisher.setBackends(backends);
  }

  /** A thread reloaded its config: send it the full view again. */
  resend(port: ThreadPort): void {
    this.publisher.resend(port);
  }

  /** The pool stopped: main's metrics are its own again. */
  stop(): void {
    this.m.useOtherThreads(undefined);
  }
}

export class WorkerThreadView {
  readonly subscriber: ServerViewSubscriber;

  /**
   * Registers for `sm:view` and `sm:metrics?` on `port`; `initial` is the view the thread was
   * started with (applied by the first `setBackends`), `connections` its open client connections.
   */
  constructor(port: ThreadPort, initial: ViewMessage | undefined, connections: () => number, m: ProxyMetrics = processMetrics) {
    this.subscriber = new ServerViewSubscriber(port);
    if (initial !== undefined) this.subscriber.apply(initial);
    new ThreadMetricsResponder(port, m, connections, this.connectErrors);
  }

  private backends: ReadonlyMap<string, RuntimeBackend> = new Map();

  /** This thread's backends, after it built them (start) and after each reload: they take the current view. */
  setBackends(backends: ReadonlyMap<string, RuntimeBackend>): void {
    this.backends = backends;
    this.subscriber.setBackends(backends);
  }

  /** This thread's connect outcomes for every server that ever failed here (metrics reply). */
  private readonly connectErrors = (): ThreadConnectErrors => {
    const out: ThreadConnectErrors = [];
    for (const b of this.backends.values()) for (const s of b.servers) if (s.lastConnectErrorAt > 0) out.push([b.name, s.name, s.lastConnectError, s.lastConnectErrorAt, s.lastConnectOkAt]);
    return out;
  };
}
