import { afterEach, describe, expect, it } from 'vitest';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { parseConfigText } from '@stickmesh/core';
import { ProxyMetrics } from '../metrics.js';
import { RuntimeServer } from '../runtime/server.js';
import { MessageThreadPort } from './port.js';
import { ThreadMetrics, ThreadMetricsResponder } from './metrics.js';

const cfg = parseConfigText('backend app\n  mode http\n  server web1 10.0.0.1:80\n', 't.cfg', 'haproxy', {}).config.backends[0]!;
const server = (): RuntimeServer => new RuntimeServer(0, cfg.servers[0]!, '10.0.0.1');

const open: MessagePort[] = [];
afterEach(() => {
  for (const p of open.splice(0)) p.close();
});

function channel(): [MessageThreadPort, MessageThreadPort] {
  const { port1, port2 } = new MessageChannel();
  open.push(port1, port2);
  return [new MessageThreadPort(port1), new MessageThreadPort(port2)];
}

/** The value of one exposition line, e.g. `stickmesh_requests_total{backend="app",server="web1",code="2xx"}`. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const REQ_2XX = 'stickmesh_requests_total{backend="app",server="web1",code="2xx"}';

describe('whole-node metrics', () => {
  it("/metrics adds every worker's requests to main's, and the per-server totals follow", async () => {
    const main = new ProxyMetrics();
    main.enable();
    const threads = new ThreadMetrics({ metrics: main });
    main.useOtherThreads(threads);
    const workers = [new ProxyMetrics(), new ProxyMetrics()];
    const servers = workers.map(() => server());
    for (const w of workers) {
      const [mainEnd, workerEnd] = channel();
      new ThreadMetricsResponder(workerEnd, w, () => 5);
      threads.addPort(mainEnd);
    }
    // addPort's first request turns the workers' metrics on.
    const end = Date.now() + 2000;
    while (!workers.every((w) => w.enabled)) {
      if (Date.now() > end) throw new Error('workers not enabled');
      await new Promise((r) => setTimeout(r, 2));
    }
    for (let i = 0; i < 3; i++) workers[0]!.http('app', servers[0], 200, 1, false, '-', '-', 'balance', '');
    for (let i = 0; i < 4; i++) workers[1]!.http('app', servers[1], 200, 1, false, '-', '-', 'balance', '');
    workers[1]!.http('app', servers[1], 503, 1, true, '-', '-', 'balance', '');
    const mainServer = server();
    main.http('app', mainServer, 200, 1, false, '-', '-', 'balance', '');
    const text = await main.text();
    expect(value(text, REQ_2XX)).toBe(8);
    expect(value(text, 'stickmesh_requests_total{backend="app",server="web1",code="5xx"}')).toBe(1);
    expect(value(text, 'stickmesh_errors_total{backend="app",server="web1"}')).toBe(1);
    expect(value(text, 'stickmesh_request_duration_seconds_count{backend="app",server="web1"}')).toBe(9);
    expect(value(text, 'stickmesh_decisions_total{backend="app",by="balance"}')).toBe(9);
    expect(threads.misses).toBe(0);
    expect(main.otherConnections).toBe(10);
    // The admin API's per-server counters: main's own server object, node-wide figures.
    expect(main.totals(mainServer, 'app')).toEqual({ requests: 9, errors: 1, lastConnectError: '' });
    workers[0]!.http('app', servers[0], 200, 1, false, '-', '-', 'balance', '');
    await main.refresh();
    expect(main.totals(server(), 'app')).toEqual({ requests: 9, errors: 1, lastConnectError: '' });
  });

  it("the admin API's last connect error is the latest outcome of any thread: a later failure shows, a later success clears it", async () => {
    const main = new ProxyMetrics();
    main.enable();
    const threads = new ThreadMetrics({ metrics: main });
    main.useOtherThreads(threads);
    const rows: Array<[string, string, string, number, number]>[] = [[], []];
    for (const i of [0, 1]) {
      const [mainEnd, workerEnd] = channel();
      new ThreadMetricsResponder(workerEnd, new ProxyMetrics(), () => 0, () => rows[i]!);
      threads.addPort(mainEnd);
    }
    const mainServer = server();
    await main.refresh();
    expect(main.totals(mainServer, 'app').lastConnectError).toBe('');
    // Thread 1 failed at t=100 (after a success at 50); thread 2 failed earlier, at t=80.
    rows[0] = [['app', 'web1', 'connect ECONNREFUSED 10.0.0.1:80', 100, 50]];
    rows[1] = [['app', 'web1', 'timeout connect', 80, 0]];
    await main.refresh();
    expect(main.totals(mainServer, 'app').lastConnectError).toBe('connect ECONNREFUSED 10.0.0.1:80');
    // Thread 2 then connects at t=120: the latest outcome is a success.
    rows[1] = [['app', 'web1', '', 80, 120]];
    await main.refresh();
    expect(main.totals(mainServer, 'app').lastConnectError).toBe('');
    // Another server's rows do not leak into web1's.
    rows[0] = [['app', 'web2', 'refused', 200, 0]];
    rows[1] = [];
    await main.refresh();
    expect(main.totals(mainServer, 'app').lastConnectError).toBe('');
  });

  it('without other threads the figures are this thread alone (the test above can fail)', async () => {
    const main = new ProxyMetrics();
    main.enable();
    const w = new ProxyMetrics();
    w.enable();
    w.http('app', server(), 200, 1, false, '-', '-', 'balance', '');
    main.http('app', server(), 200, 1, false, '-', '-', 'balance', '');
    expect(value(await main.text(), REQ_2XX)).toBe(1);
  });

  it('a worker that does not answer: the scrape still answers by the deadline, with the rest, and counts the miss', async () => {
    const main = new ProxyMetrics();
    main.enable();
    const threads = new ThreadMetrics({ metrics: main, deadlineMs: 150 });
    main.useOtherThreads(threads);
    const w = new ProxyMetrics();
    const [a, b] = channel();
    new ThreadMetricsResponder(b, w);
    threads.addPort(a);
    const [silent] = channel(); // nobody answers at the other end
    threads.addPort(silent);
    const end = Date.now() + 2000;
    while (!w.enabled) {
      if (Date.now() > end) throw new Error('worker not enabled');
      await new Promise((r) => setTimeout(r, 2));
    }
    w.http('app', server(), 200, 1, false, '-', '-', 'balance', '');
    const t0 = Date.now();
    const text = await main.text();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(value(text, REQ_2XX)).toBe(1);
    expect(threads.misses).toBe(1);
    expect(value(text, 'stickmesh_thread_metrics_misses_total')).toBe(1);
    // Concurrent scrapes share one collection.
    const [x, y] = await Promise.all([main.text(), main.text()]);
    expect(value(x, REQ_2XX)).toBe(1);
    expect(value(y, REQ_2XX)).toBe(1);
    expect(threads.misses).toBe(2);
    // A worker that left is not waited for.
    threads.removePort(silent);
    const t1 = Date.now();
    await main.text();
    expect(Date.now() - t1).toBeLessThan(150);
    expect(threads.misses).toBe(2);
  });

  it("workers count from the moment main's metrics go on, not before", async () => {
    const main = new ProxyMetrics();
    const threads = new ThreadMetrics({ metrics: main });
    main.useOtherThreads(threads);
    const w = new ProxyMetrics();
    const [a, b] = channel();
    new ThreadMetricsResponder(b, w);
    threads.addPort(a);
    await new Promise((r) => setTimeout(r, 20));
    expect(w.enabled).toBe(false);
    main.enable();
    const end = Date.now() + 2000;
    while (!w.enabled) {
      if (Date.now() > end) throw new Error('worker not enabled');
      await new Promise((r) => setTimeout(r, 2));
    }
  });
});
