/**
 * Small builders of config-model values for the rule engine's tests and benchmark, so a test can
 * write `expr('req.hdr(host),lower')` or `term('path_beg', ...)` instead of model objects.
 */
import type { AclMatch, AclTerm, CondConfig, CondOperand, SampleExpr } from '@stickmesh/core';

export const LOC = { file: 'test.cfg', line: 7 };

function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

function call(text: string): { name: string; args: string[] } {
  const p = text.indexOf('(');
  if (p < 0) return { name: text, args: [] };
  const inner = text.slice(p + 1, text.lastIndexOf(')'));
  return { name: text.slice(0, p), args: inner === '' ? [] : inner.split(',') };
}

/** `fetch(args),conv(args),...` as the parser would give it. */
export function expr(text: string): SampleExpr {
  const [first, ...convs] = splitTop(text);
  const f = call(first!);
  return { fetch: f.name, args: f.args, converters: convs.map(call), text };
}

export function term(sample: string, match: AclMatch, patterns: string[] = [], ignoreCase = false): AclTerm {
  return { sample: expr(sample), match, ignoreCase, patterns, loc: LOC };
}

/** A condition from operands: strings name ACLs (`!NAME` negates), AclTerms are anonymous; `'||'` separates ORs. */
export function cond(kind: 'if' | 'unless', ...items: (string | AclTerm | { not: AclTerm })[]): CondConfig {
  const or: CondOperand[][] = [[]];
  for (const it of items) {
    if (it === '||') {
      or.push([]);
      continue;
    }
    const and = or[or.length - 1]!;
    if (typeof it === 'string') and.push(it.startsWith('!') ? { negate: true, acl: it.slice(1) } : { negate: false, acl: it });
    else if ('not' in it) and.push({ negate: true, anon: it.not });
    else and.push({ negate: false, anon: it });
  }
  return { kind, or, loc: LOC };
}
