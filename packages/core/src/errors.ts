/**
 * Errors with stable `code`s (undici style) so callers and tests match on code, not on message text.
 */
import type { SourceLoc } from './config/model.js';

export class StickmeshError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** One problem in a config file, always tied to `file:line` and the directive. */
export interface ConfigIssue {
  loc: SourceLoc;
  directive: string;
  message: string;
}

/**
 * Most problems a report lists (check output, a failed start or reload): a report names the first
 * ones by line and ends with `N more problems`. A file of garbage has a problem on every line, and
 * millions of them help nobody while costing memory, time and a log line too large to write.
 */
export const MAX_REPORTED_ISSUES = 100;

/** Control characters, escaped in reports. */
const CONTROL = /[\u0000-\u001f\u007f]/g;

/**
 * `file:line: 'directive': message`; `file: ...` when the problem has no line (an environment
 * variable). Always one line: control characters a config can smuggle into a message (a `\n`
 * escape in a word) are shown escaped, so a report line cannot be forged.
 */
export function formatIssue(i: ConfigIssue): string {
  const s = i.loc.line > 0 ? `${i.loc.file}:${i.loc.line}: '${i.directive}': ${i.message}` : `${i.loc.file}: '${i.directive}': ${i.message}`;
  return s.replace(CONTROL, escapeControl);
}

function escapeControl(c: string): string {
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  if (c === '\t') return '\\t';
  return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/**
 * The report of `issues` out of `total` found: at most MAX_REPORTED_ISSUES formatted lines, then
 * `N more problems` (or `noun`s) when some were left out.
 */
export function formatIssues(issues: readonly ConfigIssue[], total = issues.length, noun = 'problem'): string[] {
  const shown = issues.slice(0, MAX_REPORTED_ISSUES);
  const out = shown.map(formatIssue);
  const more = Math.max(total, issues.length) - shown.length;
  if (more > 0) out.push(`${more} more ${noun}${more === 1 ? '' : 's'}`);
  return out;
}

/**
 * A config that failed to load. `issues` holds the first problems by line (at most
 * MAX_REPORTED_ISSUES, however many were passed); `total` counts every problem found.
 */
export class ConfigError extends StickmeshError {
  readonly issues: ConfigIssue[];
  readonly total: number;
  /**
   * Warnings found in the same file (the first ones by line, at most MAX_REPORTED_ISSUES), so a
   * report can show them beside the errors as `haproxy -c` does; `warningCount` counts them all.
   */
  readonly warnings: ConfigIssue[];
  readonly warningCount: number;
  constructor(issues: ConfigIssue[], total = issues.length, warnings: ConfigIssue[] = [], warningCount = warnings.length) {
    const kept = issues.length > MAX_REPORTED_ISSUES ? issues.slice(0, MAX_REPORTED_ISSUES) : issues;
    const all = Math.max(total, issues.length);
    super('SM_CONFIG_INVALID', formatIssues(kept, all).join('\n'));
    this.issues = kept;
    this.total = all;
    this.warnings = warnings.length > MAX_REPORTED_ISSUES ? warnings.slice(0, MAX_REPORTED_ISSUES) : warnings;
    this.warningCount = Math.max(warningCount, warnings.length);
  }

  /** The report, one line per kept problem and `N more problems` when some were left out. */
  lines(): string[] {
    return formatIssues(this.issues, this.total);
  }
}
