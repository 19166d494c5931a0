// What the bench's stand-alone scripts share: the median, the pair of targets named on the command
// line, and the way a script's main() ends the process.
import { targets } from './targets.mjs';

/** The median of `xs` (numbers); NaN when empty. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The targets (bench/lib/targets.mjs) named by `names`; throws naming an unknown or skipped one. */
export function pickTargets(names) {
  const all = targets();
  return names.map((n) => {
    const t = all.find((x) => x.name === n);
    if (!t) throw new Error(`unknown target ${n} (known: ${all.map((x) => x.name).join(', ')})`);
    if (t.skip) throw new Error(`${t.name}: ${t.skip}`);
    return t;
  });
}

/**
 * Runs `main` and exits with its code, or 1 after printing its error. process.exit, not
 * exitCode: servers a failed run left behind would keep the loop alive; exiting runs the hook in
 * lib/proc.mjs that kills them.
 */
export function runMain(main) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(e?.stack ?? String(e));
      process.exit(1);
    },
  );
}
