/**
 * "Did you mean ...?" for a mistyped word (a config keyword, an option, a CLI command), as
 * `haproxy -c` offers: the nearest candidate by Damerau-Levenshtein distance (insertions,
 * deletions, substitutions and swaps of two neighbouring characters each cost 1), compared
 * without regard to case, when it is near enough for the word's length.
 */

/** Longest word compared; a longer one gets no suggestion (bounds the cost of a hostile word). */
export const MAX_SUGGEST_WORD = 64;

/**
 * The most edits a suggestion may be away: 1 for words of up to 4 characters, 2 up to 8, then 3.
 * Short words need a tight bound, or every short keyword would be "near" every other.
 */
export function suggestThreshold(length: number): number {
  return length <= 4 ? 1 : length <= 8 ? 2 : 3;
}

/**
 * The candidate nearest to `word` within `suggestThreshold(word.length)` edits, the first one in
 * `candidates` order on a tie; undefined when none is near enough, when `word` is itself a
 * candidate, or when `word` is empty or longer than MAX_SUGGEST_WORD. O(candidates x length^2).
 */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  if (word.length === 0 || word.length > MAX_SUGGEST_WORD) return undefined;
  const w = word.toLowerCase();
  const max = suggestThreshold(w.length);
  let best: string | undefined;
  let bestD = max + 1;
  for (const c of candidates) {
    if (c.length > MAX_SUGGEST_WORD || Math.abs(c.length - w.length) >= bestD) continue;
    const lc = c.toLowerCase();
    if (lc === w) return undefined;
    const d = distance(w, lc, bestD - 1);
    // A suggestion must keep something of the word: 'x' is not a typo of 'no'.
    if (d < bestD && d < w.length) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

/**
 * Optimal-string-alignment Damerau-Levenshtein distance of `a` and `b`, or `limit + 1` as soon as
 * every path exceeds `limit`. Three rows, allocated per call (callers are error paths).
 */
export function distance(a: string, b: string, limit = Infinity): number {
  const n = a.length;
  const m = b.length;
  let prev2 = new Array<number>(m + 1).fill(0);
  let prev = new Array<number>(m + 1);
  let cur = new Array<number>(m + 1);
  for (let j = 0; j <= m; j++) prev[j] = j;
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    let rowMin = i;
    for (let j = 1; j <= m; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      let v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a.charCodeAt(i - 1) === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === b.charCodeAt(j - 1)) v = Math.min(v, prev2[j - 2]! + 1);
      cur[j] = v;
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > limit) return limit + 1;
    const t = prev2;
    prev2 = prev;
    prev = cur;
    cur = t;
  }
  return prev[m]!;
}

/** `; did you mean 'X'?` for an error message, or '' when nothing is near enough. */
export function meanHint(word: string, candidates: Iterable<string>): string {
  const s = didYouMean(word, candidates);
  return s === undefined ? '' : `; did you mean '${s}'?`;
}
