/**
 * Log-format strings for header values and redirects (placeholder signature; implemented by the rules work).
 */
import type { LogFormatPart } from '@stickmesh/core';
import type { CompileEnv, SampleSource } from './types.js';

/** Compiles literal parts, `%[expr]` samples and `%ci`-style variables into a string builder. */
export function compileLogFormat(parts: LogFormatPart[], env: CompileEnv): (src: SampleSource) => string {
  void parts;
  void env;
  throw new Error('compileLogFormat: not implemented yet');
}
