/**
 * haproxy.cfg line tokenizer with HAProxy's quoting rules: words split on blanks; `#` starts a
 * comment outside quotes; backslash escapes the next character (`\ `, `\#`, `\\`, `\t`, `\n`, `\r`);
 * single quotes are literal; double quotes expand `$VAR` and `${VAR}` from the environment.
 */

/** `unset`: environment variables the line referred to that were not set (expanded to ''). */
export type TokenizeResult = { tokens: string[]; unset?: string[] } | { error: string };

/** Longest line accepted; HAProxy's own limit is 2048 bytes per line. */
export const MAX_LINE_LENGTH = 2048;

export function tokenizeLine(line: string, env: NodeJS.ProcessEnv = process.env): TokenizeResult {
  if (line.length > MAX_LINE_LENGTH) return { error: `line too long (${line.length} > ${MAX_LINE_LENGTH} characters)` };
  const tokens: string[] = [];
  let unset: string[] | undefined;
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | '' = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote === "'") {
      if (c === "'") quote = '';
      else cur += c;
      continue;
    }
    if (c === '\\') {
      const n = line[i + 1];
      if (n === undefined) return { error: 'line ends with a backslash' };
      cur += n === 't' ? '\t' : n === 'n' ? '\n' : n === 'r' ? '\r' : n;
      inWord = true;
      i++;
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = '';
      else if (c === '$') {
        const m = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/.exec(line.slice(i));
        if (!m) cur += c;
        else {
          const name = m[1] ?? m[2]!;
          // Own variables only: `$constructor` is unset, not Object's constructor.
          const v = Object.hasOwn(env, name) ? env[name] : undefined;
          if (v === undefined) (unset ??= []).push(name);
          cur += v ?? '';
          i += m[0].length - 1;
        }
      } else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
      continue;
    }
    if (c === '#') break;
    if (c === ' ' || c === '\t' || c === '\r') {
      if (inWord) tokens.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    cur += c;
    inWord = true;
  }
  if (quote !== '') return { error: `unterminated ${quote === '"' ? 'double' : 'single'} quote` };
  if (inWord) tokens.push(cur);
  return unset ? { tokens, unset } : { tokens };
}
