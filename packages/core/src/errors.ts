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

export function formatIssue(i: ConfigIssue): string {
  return `${i.loc.file}:${i.loc.line}: '${i.directive}': ${i.message}`;
}

/** A config that failed to load; `issues` lists every problem found, not just the first. */
export class ConfigError extends StickmeshError {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super('SM_CONFIG_INVALID', issues.map(formatIssue).join('\n'));
    this.issues = issues;
  }
}
