import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module of the bench, without type declarations
import { busyThreads, threadsActive, threadsOf } from '../bench/lib/threads-gate.mjs';

type Probe = { reported: number | null; source: string | null; ignored: boolean };

describe('threads gate (bench/lib/threads-gate.mjs): did a node serve with its threads', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-threads-gate-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const logFile = (name: string, text: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };
  const noMetrics = async () => '# no thread gauge\nstickmesh_requests_total 5\n';

  it('reads "nbthread has no effect" in the log as 1 thread, whatever else is there', async () => {
    const f = logFile('ignored.out', `{"level":"warn","directive":"nbthread","msg":"'nbthread' has no effect in stickmesh"}\n`);
    const p: Probe = await threadsOf({ adminPort: 1, logFiles: [f], fetchText: async () => 'stickmesh_threads 2\n' });
    expect(p).toMatchObject({ reported: 1, ignored: true });
    expect(threadsActive(2, p, 2)).toMatchObject({ active: false });
  });

  it('takes the thread count from a /metrics gauge, then from a log field', async () => {
    const empty = logFile('empty.out', '');
    const m: Probe = await threadsOf({ adminPort: 1, logFiles: [empty], fetchText: async () => '# TYPE stickmesh_threads gauge\nstickmesh_threads 2\n' });
    expect(m).toMatchObject({ reported: 2, source: 'metrics: stickmesh_threads' });
    const started = logFile('started.out', '{"level":"info","msg":"stickmesh started","threads":2}\n');
    const l: Probe = await threadsOf({ adminPort: 1, logFiles: [started], fetchText: noMetrics });
    expect(l).toMatchObject({ reported: 2, source: 'log' });
    expect(threadsActive(2, l, null).active).toBe(true);
    const none: Probe = await threadsOf({ adminPort: 1, logFiles: [empty], fetchText: noMetrics });
    expect(none.reported).toBeNull();
    // A counter about threads is not a thread count.
    const misses: Probe = await threadsOf({ adminPort: 1, logFiles: [empty], fetchText: async () => 'stickmesh_thread_metrics_misses_total 0\n' });
    expect(misses.reported).toBeNull();
    const worker: Probe = await threadsOf({ adminPort: 1, logFiles: [empty], fetchText: async () => 'stickmesh_worker_threads 4\n' });
    expect(worker.reported).toBe(4);
  });

  it('without a reported count, needs 2 busy threads under load; a count below N is not active', () => {
    const none = { reported: null, source: null, ignored: false };
    expect(threadsActive(2, none, 2).active).toBe(true);
    expect(threadsActive(2, none, 1).active).toBe(false);
    expect(threadsActive(2, none, null).active).toBe(false);
    expect(threadsActive(2, { reported: 1, source: 'metrics: x', ignored: false }, 2).active).toBe(false);
    expect(threadsActive(1, { reported: 1, source: 'log', ignored: false }, 1).active).toBe(false);
  });

  it('counts the threads that each carried >= 20% of the process CPU', () => {
    const before = new Map([[1, 100], [2, 10], [3, 10], [4, 0]]);
    const oneThread = new Map([[1, 180], [2, 15], [3, 14], [4, 1]]);
    expect(busyThreads(before, oneThread).busy).toBe(1);
    const twoThreads = new Map([[1, 105], [2, 50], [3, 55], [5, 5]]); // tid 5 started between snapshots
    const b = busyThreads(before, twoThreads);
    expect(b.busy).toBe(2);
    expect(b.shares[0]).toBeCloseTo(45 / 95, 2); // 5 + 40 + 45 + 5 ticks
    expect(busyThreads(before, before).busy).toBe(0);
  });
});

describe('fixed offered rate (bench/lib/fixed-rate.mjs)', () => {
  let server: http.Server;
  let port = 0;
  beforeAll(async () => {
    server = http.createServer((_req, res) => res.writeHead(200, { 'content-length': '2' }).end('ok'));
    server.keepAliveTimeout = 10_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));

  const run = (rate: number, seconds: number, conns: number) =>
    new Promise<{ lines: Record<string, unknown>[]; code: number | null }>((resolve) => {
      const child = spawn(process.execPath, [path.resolve('bench/lib/fixed-rate.mjs'), String(port), String(rate), String(seconds), String(conns)]);
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.on('exit', (code) => resolve({ code, lines: out.trim().split('\n').map((l) => JSON.parse(l)) }));
    });

  it('sends the offered rate, no more, whatever the server could take', async () => {
    const { code, lines } = await run(300, 1, 10);
    expect(code).toBe(0);
    expect(lines[0]).toEqual({ phase: 'start' });
    const r = lines[1] as { offered: number; sent: number; completed: number; sustained: boolean; errors: number; non200: number };
    expect(r.offered).toBe(300);
    expect(r.sent).toBeLessThanOrEqual(300); // open loop: a fast server does not pull more
    expect(r.completed).toBeGreaterThanOrEqual(297);
    expect(r.errors + r.non200).toBe(0);
    expect(r.sustained).toBe(true);
  });
});
