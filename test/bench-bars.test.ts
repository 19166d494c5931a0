import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module of the bench, without type declarations
import { formatBars, perfBars } from '../bench/lib/bars.mjs';

type Bar = { figure: string; value: string; target: string; met: boolean | null };

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
    },
    memory: [
      { target: 'stickmesh-http', loadMB: 48 },
      { target: 'stickmesh-tcp', loadMB: 45.2 },
      { target: 'stickmesh-http-log', loadMB: 50.4 },
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
