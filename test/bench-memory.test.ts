import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module of the bench, without type declarations
import { formatMemory, memorySummary } from '../bench/lib/memory.mjs';

const MB = 2 ** 20;
const target = (name: string, mode: string, anchor?: string) => ({ t: { name, mode, anchor }, rssIdle: 0, rssIdleMain: 0 });

describe('bench memory summary', () => {
  const running = [
    { ...target('direct', 'direct'), rssIdle: 12 * MB, rssIdleMain: 3 * MB },
    { ...target('haproxy-http', 'http'), rssIdle: 15 * MB, rssIdleMain: 15 * MB },
    { ...target('stickmesh-http', 'http'), rssIdle: 120 * MB, rssIdleMain: 75 * MB },
    { ...target('stickmesh-http-rules', 'http', 'haproxy-http-rules'), rssIdle: 125 * MB, rssIdleMain: 80 * MB },
  ];
  const rows = [
    { target: 'haproxy-http', rssMB: 19 },
    { target: 'haproxy-http', rssMB: 20 },
    { target: 'stickmesh-http', rssMB: 130 },
    { target: 'stickmesh-http', rssMB: 150 },
    { target: 'stickmesh-http', rssMB: null },
    { target: 'direct', rssMB: 12.5 },
  ];
  const mem = memorySummary(running, rows);
  const by = (name: string) => mem.find((m: { target: string }) => m.target === name);

  it('divides idle and under-load RSS by the HAProxy target of the same mode', () => {
    const s = by('stickmesh-http');
    expect(s.idleMB).toBe(120);
    expect(s.idleMainMB).toBe(75);
    expect(s.loadMB).toBe(150); // the largest row median, a missing reading ignored
    expect(s.idleVsAnchor).toBe(8);
    expect(s.loadVsAnchor).toBe(7.5);
  });

  it('has no ratio for the anchor itself, for direct, or when the anchor did not run', () => {
    expect(by('haproxy-http').idleVsAnchor).toBeNull();
    expect(by('direct').anchor).toBeNull();
    expect(by('direct').idleVsAnchor).toBeNull();
    const rules = by('stickmesh-http-rules');
    expect(rules.anchor).toBe('haproxy-http-rules');
    expect(rules.idleVsAnchor).toBeNull();
    expect(rules.loadMB).toBeNull();
  });

  it('prints one aligned line per target with its figures', () => {
    const lines: string[] = formatMemory(mem);
    expect(lines[0]).toMatch(/^RSS MB\s+idle\s+idle main\s+under load\s+idle vs anchor\s+load vs anchor$/);
    const line = lines.find((l) => l.startsWith('stickmesh-http '));
    expect(line?.trim().split(/\s+/)).toEqual(['stickmesh-http', '120.0', '75.0', '150.0', '8.00x', '7.50x']);
    expect(new Set(lines.slice(0, 5).map((l) => l.length)).size).toBe(1);
    expect(formatMemory([])).toEqual([]);
  });
});
