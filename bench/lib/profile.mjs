// Reading V8 .cpuprofile files (written by `node --cpu-prof`).
import fs from 'node:fs';
import path from 'node:path';

/**
 * Self time per function of a .cpuprofile, largest first: [{fn, where, ms, pct}]. A sample's
 * duration is the gap to the next sample (as Chrome DevTools counts it); samples are summed per
 * callFrame functionName + url:line (1-based), so one function inlined or optimised into several
 * profile nodes is one row. `where` is relative to `root` when the url points inside it. `pct` is
 * of all sampled time, idle included; `pctBusy` excludes the `(idle)` row.
 */
export function selfTimes(profile, root) {
  const frameKey = new Map();
  for (const n of profile.nodes) {
    const cf = n.callFrame;
    let url = cf.url || '';
    if (url.startsWith('file://')) url = url.slice(7);
    if (root && url.startsWith(root + path.sep)) url = path.relative(root, url);
    const where = url ? `${url}:${cf.lineNumber + 1}` : '';
    frameKey.set(n.id, { fn: cf.functionName || '(anonymous)', where });
  }
  const totals = new Map();
  const { samples, timeDeltas } = profile;
  let all = 0;
  let idle = 0;
  for (let i = 0; i < samples.length; i++) {
    const us = i + 1 < timeDeltas.length ? Math.max(0, timeDeltas[i + 1]) : 0;
    const f = frameKey.get(samples[i]);
    const key = `${f.fn}\u0000${f.where}`;
    totals.set(key, (totals.get(key) ?? 0) + us);
    all += us;
    if (f.fn === '(idle)') idle += us;
  }
  const busy = all - idle;
  return [...totals]
    .map(([key, us]) => {
      const [fn, where] = key.split('\u0000');
      return { fn, where, ms: us / 1000, pct: (100 * us) / all, pctBusy: fn === '(idle)' ? null : (100 * us) / busy };
    })
    .sort((a, b) => b.ms - a.ms);
}

/** The newest *.cpuprofile in `dir` modified at or after `sinceMs`, or null. */
export function newestProfile(dir, sinceMs) {
  let best = null;
  for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (!f.endsWith('.cpuprofile')) continue;
    const p = path.join(dir, f);
    const m = fs.statSync(p).mtimeMs;
    if (m >= sinceMs && (!best || m > best.m)) best = { p, m };
  }
  return best?.p ?? null;
}
