/**
 * Log-format strings for header values and redirects (`set-header X %[src]`, `redirect location
 * https://%[hdr(host)]%[path]`), compiled at config load into a string builder.
 *
 * An absent sample writes nothing, as HAProxy does in header values and `lf-string` bodies
 * (checked with HAProxy 2.6: `set-header Y a%[hdr(missing)]b` sets `ab`; only the access log
 * writes `-`). Booleans write 1 or 0. Variables: `%ci` client address, `%cp` client port, `%fi`
 * and `%fp` the address and port that accepted the connection, `%f` frontend, `%b` backend.
 */
import type { LogFormatPart, SourceLoc } from '@stickmesh/core';
import { compileSample, valueToString } from './sample.js';
import { RuleCompileError, type CompileEnv, type SampleSource } from './types.js';

type Piece = (src: SampleSource) => string;

const VARS: ReadonlyMap<string, Piece> = new Map<string, Piece>([
  ['ci', (src) => src.clientIp],
  ['cp', (src) => String(src.clientPort)],
  ['fi', (src) => src.localIp],
  ['fp', (src) => String(src.localPort)],
  ['f', (src) => src.frontendName],
  ['b', (src) => src.backendName],
]);

const NOLOC: SourceLoc = { file: '<log-format>', line: 0 };

/** Compiles literal parts, `%[expr]` samples and `%ci`-style variables into a string builder. */
export function compileLogFormat(parts: LogFormatPart[], env: CompileEnv, loc: SourceLoc = NOLOC): (src: SampleSource) => string {
  const pieces: (Piece | string)[] = [];
  for (const part of parts) {
    if ('lit' in part) {
      const last = pieces[pieces.length - 1];
      if (typeof last === 'string') pieces[pieces.length - 1] = last + part.lit;
      else pieces.push(part.lit);
    } else if ('sample' in part) {
      const one = compileSample(part.sample, env, loc);
      pieces.push((src) => {
        const v = one(src);
        return v === undefined ? '' : valueToString(v);
      });
    } else {
      const v = VARS.get(part.var);
      if (v === undefined) throw new RuleCompileError(`log-format variable %${part.var} is not supported here (supported: %ci %cp %fi %fp %f %b and %[sample])`, loc);
      pieces.push(v);
    }
  }
  if (pieces.length === 0) return () => '';
  if (pieces.length === 1) {
    const p = pieces[0]!;
    if (typeof p === 'string') return () => p;
    return p;
  }
  return (src) => {
    let out = '';
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      out += typeof p === 'string' ? p : p(src);
    }
    return out;
  };
}
