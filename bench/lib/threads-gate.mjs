// Whether a node configured with `nbthread N` really served with N threads (issue #23): what the
// node says (its log, its /metrics) and what its threads did under load (/proc/PID/task). Pure
// functions and file reads only, so a test can import them.
import fs from 'node:fs';

/** The last `n` characters of a file, or '' when it cannot be read. */
function tail(file, n) {
  try {
    const s = fs.readFileSync(file, 'utf8');
    return s.slice(-n);
  } catch {
    return '';
  }
}

/**
 * How many threads a stickmesh node says it serves with: a number from its /metrics (a gauge
 * whose name mentions threads) or from its log (a line with a `threads`/`nbthread` field, e.g. the
 * start line), or 1 when its log says `nbthread` has no effect. {reported, source, ignored}.
 * `logFiles`: the node's stdout and stderr files; `fetchText(url)`: the body of a GET (a test's stand-in).
 */
export async function threadsOf({ adminPort, logFiles, fetchText = defaultFetchText }) {
  const log = logFiles.map((f) => tail(f, 200_000)).join('\n');
  if (/'nbthread' has no effect/.test(log)) return { reported: 1, source: "log: 'nbthread' has no effect", ignored: true };
  if (adminPort) {
    try {
      const text = await fetchText(`http://127.0.0.1:${adminPort}/metrics`);
      // A gauge whose name ends in `threads` or `nbthread` (stickmesh_threads,
      // stickmesh_worker_threads, ...); counters about threads (`..._total`) are not a count.
      const m = /^(stickmesh_(?:\w+_)?(?:nbthread|threads))(?:\{[^}]*\})?\s+(\d+)\s*$/m.exec(text);
      if (m) return { reported: Number(m[2]), source: `metrics: ${m[1]}`, ignored: false };
    } catch {
      /* no admin listener answering: try the log */
    }
  }
  for (const line of log.split('\n')) {
    const m = /"(?:nbthread|threads)":\s*(\d+)/.exec(line);
    if (m) return { reported: Number(m[1]), source: 'log', ignored: false };
  }
  return { reported: null, source: null, ignored: false };
}

/**
 * Whether a node configured with `n` threads served with them: it reported n (or more) threads,
 * or reported nothing and at least 2 of its threads each carried >= 20 % of its CPU under load
 * (`busy`, the median over its runs; null when unknown). Returns {active, why}.
 */
export function threadsActive(n, probe, busy) {
  if (n < 2) return { active: false, why: 'configured with 1 thread' };
  if (probe?.ignored) return { active: false, why: `node runs 1 thread (${probe.source})` };
  if (probe?.reported != null) {
    return probe.reported >= n
      ? { active: true, why: `node reports ${probe.reported} threads (${probe.source})${busy != null ? `; ${busy} threads busy under load` : ''}` }
      : { active: false, why: `node reports ${probe.reported} thread(s) (${probe.source})` };
  }
  if (busy != null && busy >= 2) return { active: true, why: `node reports no thread count; ${busy} of its threads each carried >= 20% of its CPU under load` };
  return { active: false, why: `node reports no thread count and ${busy ?? 'an unknown number of'} thread(s) carried its load` };
}

async function defaultFetchText(url) {
  const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return r.text();
}

/**
 * How many threads of a process did a real share of its work between two threadTicks() snapshots:
 * those whose ticks grew by at least `share` of the whole process's growth. With `nbthread 1` a
 * node's main thread does nearly all of it (V8's helper threads do a few percent); with N
 * data-plane threads, N threads each carry a share. Also returns the shares, largest first.
 */
export function busyThreads(before, after, share = 0.2) {
  const deltas = [];
  for (const [tid, t] of after) deltas.push(t - (before.get(tid) ?? 0));
  const total = deltas.reduce((a, b) => a + b, 0);
  if (total <= 0) return { busy: 0, shares: [], ticks: 0 };
  const shares = deltas.map((d) => d / total).sort((a, b) => b - a);
  return { busy: shares.filter((s) => s >= share).length, shares: shares.slice(0, 4).map((s) => Math.round(s * 100) / 100), ticks: total };
}
