// The performance bars of `npm run bench`: each headline figure beside the level it is held to,
// computed from one run's results (bench/results/latest.json shape). Pure functions, so a test can
// import them. A bar whose figure did not run is listed as "not run", never as met.

/**
 * One row per bar: {figure, value (text), target (text), met: true | false | null (not run)}.
 * `results`: {http?: {ratios, memory}, replication?: {lag?: {p99, runs?: [{p99}]}}, nodeMemory?}.
 * Ratios are the paired medians (median over rounds of the ratio of two runs seconds apart).
 */
export function perfBars(results) {
  const rows = [];
  const ratios = results.http?.ratios ?? {};
  const paired = (label) => ratios[label]?.paired ?? null;
  const x = (v) => (v == null ? null : `${v.toFixed(2)}x`);
  const add = (figure, values, target, ok) => {
    const have = values.every((v) => v != null);
    rows.push({ figure, value: have ? values.map(x).join(' / ') : 'not run', target, met: have ? values.every(ok) : null });
  };
  const atLeast = (b) => (v) => v >= b;
  const atMost = (b) => (v) => v <= b;
  add('HTTP keep-alive req/s vs HAProxy, 50 / 200 conns', [paired('stickmesh-http / haproxy-http req/s @50'), paired('stickmesh-http / haproxy-http req/s @200')], '>= 1.0x', atLeast(1));
  add('HTTP p99 vs HAProxy, 50 / 200 conns', [paired('stickmesh-http / haproxy-http p99 @50'), paired('stickmesh-http / haproxy-http p99 @200')], '<= 1.0x', atMost(1));
  add('TCP keep-alive req/s vs HAProxy, 50 / 200 conns', [paired('stickmesh-tcp / haproxy-tcp req/s @50'), paired('stickmesh-tcp / haproxy-tcp req/s @200')], '>= 1.0x', atLeast(1));
  add('TCP p99 vs HAProxy, 200 conns', [paired('stickmesh-tcp / haproxy-tcp p99 @200')], '<= 1.5x', atMost(1.5));
  add('TCP new connections/s vs HAProxy', [paired('stickmesh-tcp / haproxy-tcp new connections/s @50')], '>= 0.9x', atLeast(0.9));
  add('HTTP with request logging vs without, 50 / 200 conns', [paired('stickmesh-http-log / stickmesh-http req/s @50'), paired('stickmesh-http-log / stickmesh-http req/s @200')], '>= 0.9x', atLeast(0.9));
  const mem = results.http?.memory ?? [];
  const load = ['stickmesh-http', 'stickmesh-tcp', 'stickmesh-http-log'].map((t) => mem.find((m) => m.target === t)?.loadMB ?? null);
  rows.push({
    figure: 'RSS under load, HTTP / TCP / HTTP with logs',
    value: load.every((v) => v != null) ? load.map((v) => `${v.toFixed(0)} MB`).join(' / ') : 'not run',
    target: '<= 50 MB',
    met: load.every((v) => v != null) ? load.every((v) => v <= 50) : null,
  });
  const lag = results.replication?.lag;
  const runs = lag?.runs?.map((r) => r.p99).filter((v) => v != null) ?? (lag?.p99 != null ? [lag.p99] : []);
  rows.push({
    figure: 'replication lag p99 at 10k writes/s, 3 nodes, every run',
    value: runs.length ? `${runs.map((v) => `${v}`).join(', ')} ms` : 'not run',
    target: '<= 10 ms in every run',
    met: runs.length ? runs.every((v) => v <= 10) : null,
  });
  return rows;
}

/** The bars as printable lines. */
export function formatBars(rows) {
  const table = [['figure', 'stickmesh', 'target', 'met'], ...rows.map((r) => [r.figure, r.value, r.target, r.met == null ? 'not run' : r.met ? 'yes' : 'NO'])];
  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  return table.map((cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
}
