// The performance bars of `npm run bench`: each headline figure beside the level it is held to,
// computed from one run's results (bench/results/latest.json shape). Pure functions, so a test can
// import them. A bar whose figure did not run is listed as "not run", never as met.

/**
 * One row per bar: {figure, value (text), target (text), met: true | false | null (not run) |
 * 'info' (a figure shown beside its anchor, held to no level), why? (why it did not run)}.
 * `results`: {http?: {ratios, memory}, replication?: {lag?: {p99, runs?: [{p99}]}}, nodeMemory?,
 * threads? (bench/threads.mjs's JSON, see threadBars)}.
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
  // A reference row, held to no level: shown whole, or 'not run' when any of its figures is missing.
  const info = (figure, values) => {
    const have = values.every((v) => v != null);
    rows.push({ figure, value: have ? values.map(x).join(' / ') : 'not run', target: 'reference', met: have ? 'info' : null });
  };
  // The Node floor (bench/lib/node-relay-server.mjs): what a bare net.Socket relay makes of the
  // tcp bars. It shows which part of a gap is the runtime's, not stickmesh's.
  info('Node floor: bare net.Socket relay vs HAProxy tcp, keep-alive 50 / 200, new conns', [
    paired('node-relay / haproxy-tcp req/s @50'), paired('node-relay / haproxy-tcp req/s @200'), paired('node-relay / haproxy-tcp new connections/s @50'),
  ]);
  // The Node floor with stickmesh's own socket tricks (bench/lib/node-floor-server.mjs): the least
  // a Node data plane costs for the bars' traffic. A bar it misses is out of Node's reach; the
  // distance from stickmesh to it is stickmesh's own JavaScript.
  info('Node floor with our socket tricks vs HAProxy: HTTP 50 / 200, TCP 50 / 200, new conns', [
    paired('node-floor-http / haproxy-http req/s @50'), paired('node-floor-http / haproxy-http req/s @200'),
    paired('node-floor-tcp / haproxy-tcp req/s @50'), paired('node-floor-tcp / haproxy-tcp req/s @200'),
    paired('node-floor-tcp / haproxy-tcp new connections/s @50'),
  ]);
  info('stickmesh vs that floor: HTTP 50 / 200, TCP 50 / 200', [
    paired('stickmesh-http / node-floor-http req/s @50'), paired('stickmesh-http / node-floor-http req/s @200'),
    paired('stickmesh-tcp / node-floor-tcp req/s @50'), paired('stickmesh-tcp / node-floor-tcp req/s @200'),
  ]);
  const relayMB = mem.find((m) => m.target === 'node-relay')?.loadMB ?? null;
  rows.push({ figure: 'Node floor: RSS under load of the bare relay', value: relayMB == null ? 'not run' : `${relayMB.toFixed(0)} MB`, target: 'reference', met: relayMB == null ? null : 'info' });
  const lag = results.replication?.lag;
  const runs = lag?.runs?.map((r) => r.p99).filter((v) => v != null) ?? (lag?.p99 != null ? [lag.p99] : []);
  rows.push({
    figure: 'replication lag p99 at 10k writes/s, 3 nodes, every run',
    value: runs.length ? `${runs.map((v) => `${v}`).join(', ')} ms` : 'not run',
    target: '<= 10 ms in every run',
    met: runs.length ? runs.every((v) => v <= 10) : null,
  });
  rows.push(...threadBars(results.threads));
  return rows;
}

/**
 * The bars of issue #23 (nbthread), from bench/threads.mjs's JSON (`results.threads`). Each
 * section carries a `gate` {active, why}: whether the node really served with its threads. A
 * figure measured on a node that ran 1 thread is "not run" (with the gate's reason as `why`),
 * never met.
 */
export function threadBars(t) {
  const rows = [];
  const n = t?.nbthread ?? 2;
  const x = (v) => `${v.toFixed(2)}x`;
  const gated = (section, figure, values, fmt, target, ok) => {
    // `skipped`: the reason a whole section did not run (a string).
    const skipped = typeof section?.skipped === 'string' ? section.skipped : null;
    const have = section && !skipped && values.every((v) => v != null && Number.isFinite(v));
    if (!have || !section.gate?.active) {
      const why = !section ? (typeof t?.skipped === 'string' ? `threads section: ${t.skipped}` : 'section did not run') : skipped ?? (!section.gate?.active ? (section.gate?.why ?? 'thread count unknown') : (section.missingWhy ?? 'no figure'));
      rows.push({ figure, value: 'not run', target, met: null, why });
      return;
    }
    // ok null: a figure shown beside its anchor and held to no level ('info').
    rows.push({ figure, value: values.map(fmt).join(' / '), target, met: ok ? values.every(ok) : 'info' });
  };
  const pc = (c) => t?.http?.perConn?.[c];
  gated(t?.http, `HTTP req/s, stickmesh ${n} threads vs HAProxy ${n} threads, unpinned, 50 / 200 conns`, [pc(50)?.nVsHaproxyN, pc(200)?.nVsHaproxyN], x, '>= 0.8x', (v) => v >= 0.8);
  gated(t?.http, `gain 1 -> ${n} threads, stickmesh's over HAProxy's, 50 / 200 conns`, [pc(50)?.gainVsHaproxyGain, pc(200)?.gainVsHaproxyGain], x, '>= 0.8x', (v) => v >= 0.8);
  const hapCpu = t?.cpu?.haproxyNvs1;
  gated(t?.cpu, `CPU per request at ${t?.cpu?.rate ?? 'a fixed'} req/s, ${n} threads / 1 thread (HAProxy: ${hapCpu != null ? x(hapCpu) : '-'})`, [t?.cpu?.stickmeshNvs1], x, '<= 1.15x', (v) => v <= 1.15);
  const m = t?.http?.memory ?? {};
  const sm = m[`stickmesh-http-${n}t`];
  const hap = m[`haproxy-http-${n}t`];
  const mb = (v) => `${v.toFixed(0)} MB`;
  gated(t?.http, `RSS of a ${n}-thread node, idle / under load (HAProxy ${n}t: ${hap?.idleMB != null && hap?.loadMB != null ? `${mb(hap.idleMB)} / ${mb(hap.loadMB)}` : '-'})`, [sm?.idleMB, sm?.loadMB], mb, 'beside HAProxy', null);
  const pct = (v) => `${v.toFixed(1)}%`;
  gated(t?.stick, `stickiness, 300 clients x 20 new connections, one ${n}-thread node`, [t?.stick?.pct], pct, '100%', (v) => v >= 100);
  gated(t?.failover, `stickiness across kill -9 failover, 3 nodes of ${n} threads`, [t?.failover?.pct], pct, '100%', (v) => v >= 100);
  return rows;
}

/** The bars as printable lines; a figure that did not run for a reason gets that reason below the table. */
export function formatBars(rows) {
  const met = (r) => (r.met == null ? 'not run' : r.met === 'info' ? '-' : r.met ? 'yes' : 'NO');
  const table = [['figure', 'stickmesh', 'target', 'met'], ...rows.map((r) => [r.figure, r.value, r.target, met(r)])];
  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  const lines = table.map((cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  const whys = [...new Set(rows.filter((r) => r.why && r.why !== 'section did not run').map((r) => r.why))];
  return whys.length ? [...lines, ...whys.map((w) => `  not run: ${w}`)] : lines;
}
