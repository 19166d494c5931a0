/**
 * A bounded list of config problems (errors or warnings). Parsers and checks push every problem
 * they find; the list keeps the first `cap` and counts the rest, so a file with a problem on each
 * of its million lines costs a counter, not a million messages. Rule at the bound: later problems
 * are counted in `total` and dropped.
 */
import { MAX_REPORTED_ISSUES } from '../errors.js';

export class ProblemList<T> {
  readonly items: T[] = [];
  /** Every problem pushed, kept or not. */
  total = 0;

  constructor(readonly cap: number = MAX_REPORTED_ISSUES) {}

  push(p: T): void {
    this.total++;
    if (this.items.length < this.cap) this.items.push(p);
  }

  /** Whether another problem would be counted only (callers may skip building its message). */
  get full(): boolean {
    return this.items.length >= this.cap;
  }

  /** Adds `other`'s kept problems, each through `map`, and counts the ones it dropped. */
  addAll(other: ProblemList<T>, map: (p: T) => T): void {
    for (const p of other.items) this.push(map(p));
    this.total += other.total - other.items.length;
  }

  /**
   * When the list is full, counts one more problem and returns true: the caller then skips
   * building its message. Paths a garbage file takes on every line ask first, so they do not build
   * millions of messages to drop.
   */
  countedOnly(): boolean {
    if (!this.full) return false;
    this.total++;
    return true;
  }
}

/**
 * Merges problem lists into the report's order: by line, at most `cap` kept, `total` all of them.
 * Each input keeps its own first problems, so the merged first ones by line are among them.
 */
export function mergeProblems<T extends { loc: { line: number } }>(lists: Array<ProblemList<T>>, cap: number = MAX_REPORTED_ISSUES): { items: T[]; total: number } {
  const all: T[] = [];
  let total = 0;
  for (const l of lists) {
    all.push(...l.items);
    total += l.total;
  }
  all.sort((a, b) => a.loc.line - b.loc.line);
  return { items: all.slice(0, cap), total };
}
