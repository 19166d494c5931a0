import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module of the bench, without type declarations
import { formatBars, perfBars, threadBars } from '../bench/lib/bars.mjs';

type Bar = { figure: string; value: string; target: string; met: boolean | null | 'info'; why?: string };

const ratio = (paired: number) => ({ paired, ofMedians: paired });
const full = {
  http: {
    ratios: {
      'stickmesh-http / haproxy-http req/s @50': ratio(1.02),
      'stickmesh-http / haproxy-http req/s @200': ratio(0.98),
      'stickmesh-http / haproxy-http p99 @50': ratio(0.9),
      'stickmesh-http / haproxy-http p99 @200': ratio(1.0),
      'stickmesh-tcp / haproxy-tcp req/s @50': ratio(1.1),
      'stickmesh-tcp / haproxy-tcp req/s @200': ratio(1.05),
      'stickmesh-tcp / haproxy-tcp p99 @200': ratio(1.6),
      'stickmesh-tcp / haproxy-tcp new connections/s @50': ratio(0.91),
      'stickmesh-http-log / stickmesh-http req/s @50': ratio(0.93),
      'stickmesh-http-log / stickmesh-http req/s @200': ratio(0.95),
      'node-relay / haproxy-tcp req/s @50': ratio(0.97),
      'node-relay / haproxy-tcp req/s @200': ratio(0.88),
      'node-relay / haproxy-tcp new connections/s @50': ratio(0.61),
      'node-floor-http / haproxy-http req/s @50': ratio(0.96),
      'node-floor-http / haproxy-http req/s @200': ratio(0.81),
      'node-floor-tcp / haproxy-tcp req/s @50': ratio(1),
      'node-floor-tcp / haproxy-tcp req/s @200': ratio(0.98),
      'node-floor-tcp / haproxy-tcp new connections/s @50': ratio(0.45),
      'stickmesh-http / node-floor-http req/s @50': ratio(0.86),
      'stickmesh-http / node-floor-http req/s @200': ratio(0.97),
      'stickmesh-tcp / node-floor-tcp req/s @50': ratio(0.99),
    },
    memory: [
      { target: 'stickmesh-http', loadMB: 48 },
      { target: 'stickmesh-tcp', loadMB: 45.2 },
      { target: 'stickmesh-http-log', loadMB: 50.4 },
      { target: 'node-relay', loadMB: 47.6 },
    ],
  },
  replication: { lag: { p99: 6, runs: [{ p99: 5 }, { p99: 6 }, { p99: 12 }] } },
};

describe('bench bars (issue table of npm run bench)', () => {
  const rows: Bar[] = perfBars(full);
  const row = (start: string) => rows.find((r) => r.figure.startsWith(start))!;

  it('meets a ratio bar only when every connection count meets it', () => {
    expect(row('HTTP keep-alive').met).toBe(false); // 0.98x at 200 misses >= 1.0x
    expect(row('HTTP keep-alive').value).toBe('1.02x / 0.98x');
    expect(row('HTTP p99').met).toBe(true); // <= 1.0x includes 1.0x
    expect(row('TCP keep-alive').met).toBe(true);
    expect(row('TCP p99').met).toBe(false);
    expect(row('TCP new').met).toBe(true);
    expect(row('HTTP with request logging').met).toBe(true);
  });

  it('holds RSS under load of every target to 50 MB', () => {
    expect(row('RSS').met).toBe(false); // 50.4 MB with logs
    expect(row('RSS').value).toBe('48 MB / 45 MB / 50 MB');
  });

  it('shows the Node floor (bare relay) beside the bars, held to no level', () => {
    expect(row('Node floor: bare').value).toBe('0.97x / 0.88x / 0.61x');
    expect(row('Node floor: bare').met).toBe('info');
    expect(row('Node floor: RSS').value).toBe('48 MB');
    expect(row('Node floor: RSS').met).toBe('info');
  });

  it('shows the floor with stickmesh\'s socket tricks, and stickmesh against it, held to no level', () => {
    expect(row('Node floor with').value).toBe('0.96x / 0.81x / 1.00x / 0.98x / 0.45x');
    expect(row('Node floor with').met).toBe('info');
    // One figure missing (stickmesh-tcp vs the floor @200): the row did not run, it is not shown half.
    expect(row('stickmesh vs that floor').value).toBe('not run');
    expect(row('stickmesh vs that floor').met).toBeNull();
  });

  it('holds replication lag to the bar in every run, not the median', () => {
    expect(row('replication').met).toBe(false);
    expect(row('replication').value).toBe('5, 6, 12 ms');
  });

  it('says "not run" for a figure whose section or target did not run, never met', () => {
    const none: Bar[] = perfBars({});
    expect(none.every((r) => r.met === null && r.value === 'not run')).toBe(true);
    const lines: string[] = formatBars(none);
    expect(lines.slice(1).every((l) => l.endsWith('not run'))).toBe(true);
  });

  it('prints one line per bar under a header', () => {
    const lines: string[] = formatBars(rows);
    expect(lines).toHaveLength(rows.length + 1);
    expect(lines[0]).toMatch(/^figure\s+stickmesh\s+target\s+met$/);
    expect(lines.find((l) => l.startsWith('TCP p99'))).toMatch(/NO$/);
  });
});

// bench/threads.mjs's JSON line as bars.mjs reads it (figures only; the raw runs are left out).
const active = { active: true, why: 'node reports 2 threads (metrics: stickmesh_threads)' };
const threads = (gate: { active: boolean; why: string }) => ({
  bench: 'threads',
  nbthread: 2,
  http: {
    gate,
    perConn: {
      50: { nVsHaproxyN: 0.85, gainVsHaproxyGain: 0.95 },
      200: { nVsHaproxyN: 0.79, gainVsHaproxyGain: 0.81 },
    },
    memory: {
      'stickmesh-http-2t': { idleMB: 72.4, loadMB: 80.2 },
      'haproxy-http-2t': { idleMB: 15.4, loadMB: 18.1 },
    },
  },
  cpu: { gate, rate: 2000, stickmeshNvs1: 1.12, haproxyNvs1: 1.04 },
  stick: { gate, pct: 100 },
  failover: { gate, pct: 99.7 },
});

describe('bench bars of issue #23 (nbthread)', () => {
  const row = (rows: Bar[], start: string) => rows.find((r) => r.figure.startsWith(start))!;

  it('holds each threads figure to its bar when the node served with its threads', () => {
    const rows: Bar[] = threadBars(threads(active));
    expect(row(rows, 'HTTP req/s, stickmesh 2 threads').value).toBe('0.85x / 0.79x');
    expect(row(rows, 'HTTP req/s, stickmesh 2 threads').met).toBe(false); // 0.79x at 200 misses >= 0.8x
    expect(row(rows, 'gain 1 -> 2 threads').met).toBe(true);
    expect(row(rows, 'CPU per request').met).toBe(true); // 1.12x is within 15%
    expect(row(rows, 'CPU per request').figure).toBe('CPU per request at 2000 req/s, 2 threads / 1 thread (HAProxy: 1.04x)');
    expect(row(rows, 'stickiness, 300 clients').met).toBe(true);
    expect(row(rows, 'stickiness across kill -9').met).toBe(false); // 99.7% is not 100%
    expect(row(rows, 'stickiness across kill -9').value).toBe('99.7%');
  });

  it('shows RSS beside HAProxy as a figure held to no level', () => {
    const r = row(threadBars(threads(active)), 'RSS of a 2-thread node');
    expect(r.figure).toContain('HAProxy 2t: 15 MB / 18 MB');
    expect(r.value).toBe('72 MB / 80 MB');
    expect(r.met).toBe('info');
    expect(formatBars([r])[1]).toMatch(/ -$/);
  });

  it('says "not run", with the reason, for every threads figure of a node that ran 1 thread', () => {
    const why = "node runs 1 thread (log: 'nbthread' has no effect)";
    const rows: Bar[] = threadBars(threads({ active: false, why }));
    expect(rows).toHaveLength(6);
    expect(rows.every((r) => r.value === 'not run' && r.met === null && r.why === why)).toBe(true);
    const lines: string[] = formatBars(rows);
    expect(lines.at(-1)).toBe(`  not run: ${why}`);
    expect(lines.filter((l) => l.startsWith('  not run:'))).toHaveLength(1);
  });

  it('says "not run" for a section that was skipped or a figure that is missing', () => {
    const t = threads(active);
    const rows: Bar[] = threadBars({ ...t, cpu: { skipped: 'wrk not installed' }, stick: { gate: active, pct: null } });
    expect(row(rows, 'CPU per request')).toMatchObject({ value: 'not run', met: null, why: 'wrk not installed' });
    expect(row(rows, 'stickiness, 300 clients')).toMatchObject({ value: 'not run', met: null });
    expect(perfBars({ threads: t }).filter((r: Bar) => r.met !== null)).toHaveLength(6);
    const failed: string[] = formatBars(threadBars({ skipped: 'threads.mjs exited 1' }));
    expect(failed.at(-1)).toBe('  not run: threads section: threads.mjs exited 1');
  });
});
