// The memory block of the proxy benchmark: each target's resident memory at idle and under load,
// beside the HAProxy target of the same mode. Pure functions, no process side effects, so a test
// can import them.

const MB = 2 ** 20;
const div = (x, y) => (x == null || y == null || y === 0 ? null : x / y);
const fmt = (x, digits) => (x == null ? '-' : x.toFixed(digits));
const times = (x) => (x == null ? '-' : `${x.toFixed(2)}x`);

/**
 * Resident memory per started target, in MB. `running`: [{t: {name, mode, anchor?}, rssIdle,
 * rssIdleMain}] with bytes read once after the target answered its readiness probe (the process
 * and its children; the main process alone). `rows`: the table's medians ({target, rssMB}, read
 * right after each run). Returns, per target, `idleMB`, `idleMainMB`, `loadMB` (the largest of its
 * rows' RSS, null without rows) and both divided by its anchor's (`idleVsAnchor`, `loadVsAnchor`):
 * the target named by `t.anchor`, else `haproxy-<mode>`; null for the anchor itself, for `direct`
 * and when the anchor did not run.
 */
export function memorySummary(running, rows) {
  const out = running.map(({ t, rssIdle, rssIdleMain }) => {
    const rs = rows.filter((r) => r.target === t.name && r.rssMB != null);
    return {
      target: t.name,
      mode: t.mode,
      anchor: t.mode === 'direct' ? null : (t.anchor ?? `haproxy-${t.mode}`),
      idleMB: rssIdle / MB,
      idleMainMB: rssIdleMain / MB,
      loadMB: rs.length ? Math.max(...rs.map((r) => r.rssMB)) : null,
    };
  });
  for (const m of out) {
    const a = out.find((x) => x.target === m.anchor);
    m.idleVsAnchor = a && a !== m ? div(m.idleMB, a.idleMB) : null;
    m.loadVsAnchor = a && a !== m ? div(m.loadMB, a.loadMB) : null;
  }
  return out;
}

/** The memory block as printable lines (empty when no target ran). */
export function formatMemory(memory) {
  if (!memory?.length) return [];
  const table = [
    ['RSS MB', 'idle', 'idle main', 'under load', 'idle vs anchor', 'load vs anchor'],
    ...memory.map((m) => [m.target, fmt(m.idleMB, 1), fmt(m.idleMainMB, 1), fmt(m.loadMB, 1), times(m.idleVsAnchor), times(m.loadVsAnchor)]),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  return [
    ...table.map((cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')),
    '  (idle: process and children after start, before any load; idle main: the main process alone; under load: largest median RSS',
    '   read right after a run; vs anchor: divided by the HAProxy target of the same mode)',
  ];
}
