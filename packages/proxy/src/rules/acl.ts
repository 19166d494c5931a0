/**
 * ACL terms and `if|unless` conditions, compiled at config load into predicates over a SampleSource.
 *
 * A term matches when its sample is present and some pattern matches it; for multi-valued fetches
 * (headers, cookies, URL parameters without an occurrence) when any value does. An absent sample
 * matches nothing, so `!acl` on it matches (HAProxy: a failed fetch is a failed test, and `!`
 * inverts it). A named ACL is the OR of its lines. A condition is an OR of ANDs evaluated left to
 * right with short-circuit (fetches with side effects such as `sc0_inc_gpc0` run only when
 * reached), and `unless` inverts the whole.
 */
import { PREDEFINED_ACLS, type AclTerm, type CondConfig, type CondOperand, type SourceLoc } from '@stickmesh/core';
import { IP, parseIp } from './ip.js';
import { boolTest, intMatcher, ipMatcher, matchCompatible, methodMatcher, stringMatcher } from './match.js';
import { compileExpr, strToInt, valueToString, type SpanTest, type ValueTest } from './sample.js';
import { RuleCompileError, type CompileEnv, type CompiledCond } from './types.js';

export const ALWAYS: CompiledCond = () => true;
export const NEVER: CompiledCond = () => false;
const ANY: ValueTest = () => true;
const ANY_SPAN: SpanTest = () => true;
/** `-m bool` on a string: its leading digits, non-zero (empty: no sample). */
const spanBool: SpanTest = (s, a, b) => {
  const n = strToInt(s, a, b);
  return n === n && n !== 0;
};

/** Compiles one ACL test (fetch, match method, patterns) into a predicate. */
export function compileAclTerm(term: AclTerm, env: CompileEnv): CompiledCond {
  const loc = term.loc;
  const expr = compileExpr(term.sample, env, loc);
  const { match, patterns, ignoreCase } = term;
  if (!matchCompatible(match, expr.type)) {
    throw new RuleCompileError(`match method "${match}" cannot apply to ${term.sample.text} (a ${expr.type} sample)`, loc);
  }
  // String fetches offer spans: the tests below read them in place rather than slicing each value.
  const span = expr.anySpan;
  switch (match) {
    case 'found':
      return span !== undefined ? span(ANY_SPAN) : expr.any(ANY);
    case 'bool':
      return span !== undefined ? span(spanBool) : expr.any(boolTest);
    case 'int': {
      const test = intMatcher(patterns, loc);
      if (span !== undefined) return span((s, a, b) => test(strToInt(s, a, b)));
      if (expr.type !== 'ip') return expr.any(test);
      // An address as an integer: IPv4 as its 32-bit value (HAProxy's ip-to-int cast); IPv6 has none.
      return expr.any((v) => typeof v === 'string' && parseIp(v) === 4 && test(IP.v4));
    }
    case 'ip': {
      const ip = ipMatcher(patterns, loc);
      return span !== undefined ? span(ip.span) : expr.any(ip.value);
    }
    default:
      break;
  }
  if (expr.fetch === 'method' && !expr.converted && match === 'str') return expr.any(methodMatcher(patterns, ignoreCase));
  const strTest = stringMatcher(match, patterns, ignoreCase, loc);
  if (span !== undefined) return span(strTest);
  return expr.any((v) => {
    const s = typeof v === 'string' ? v : valueToString(v);
    return strTest(s, 0, s.length);
  });
}

const namedCache = new WeakMap<CompileEnv, Map<string, CompiledCond>>();

function predefinedTerm(name: string, loc: SourceLoc): AclTerm | undefined {
  const p = PREDEFINED_ACLS.get(name);
  if (p === undefined) return undefined;
  return {
    sample: { fetch: p.fetch, args: [...p.args], converters: [], text: name },
    match: p.match,
    ignoreCase: false,
    patterns: [...p.patterns],
    loc,
  };
}

/** A named ACL: the section's own (OR of its lines) or a predefined one; compiled once per environment. */
function namedAcl(name: string, env: CompileEnv, loc: SourceLoc): CompiledCond {
  let cache = namedCache.get(env);
  if (cache === undefined) {
    cache = new Map();
    namedCache.set(env, cache);
  }
  const hit = cache.get(name);
  if (hit !== undefined) return hit;
  let out: CompiledCond;
  const own = env.acls.get(name);
  if (own !== undefined) {
    out = orOf(own.terms.map((t) => compileAclTerm(t, env)));
  } else {
    const term = predefinedTerm(name, loc);
    if (term === undefined) throw new RuleCompileError(`unknown ACL "${name}"`, loc);
    out = compileAclTerm(term, env);
  }
  cache.set(name, out);
  return out;
}

function operand(op: CondOperand, env: CompileEnv, loc: SourceLoc): CompiledCond {
  let f: CompiledCond;
  if (op.anon !== undefined) f = compileAclTerm(op.anon, env);
  else if (op.acl !== undefined) f = namedAcl(op.acl, env, loc);
  else throw new RuleCompileError('condition operand names no ACL', loc);
  if (!op.negate) return f;
  const g = f;
  return (src) => !g(src);
}

function andOf(fs: CompiledCond[]): CompiledCond {
  if (fs.length === 1) return fs[0]!;
  if (fs.length === 2) {
    const [a, b] = fs as [CompiledCond, CompiledCond];
    return (src) => a(src) && b(src);
  }
  return (src) => {
    for (let i = 0; i < fs.length; i++) if (!fs[i]!(src)) return false;
    return true;
  };
}

function orOf(fs: CompiledCond[]): CompiledCond {
  if (fs.length === 0) return NEVER;
  if (fs.length === 1) return fs[0]!;
  if (fs.length === 2) {
    const [a, b] = fs as [CompiledCond, CompiledCond];
    return (src) => a(src) || b(src);
  }
  return (src) => {
    for (let i = 0; i < fs.length; i++) if (fs[i]!(src)) return true;
    return false;
  };
}

/** Compiles `if|unless` with its OR of ANDs; named ACLs from `env.acls` or the predefined ones (TRUE, METH_GET, ...). */
export function compileCond(cond: CondConfig | undefined, env: CompileEnv): CompiledCond {
  if (cond === undefined) return ALWAYS;
  const loc = cond.loc;
  if (cond.or.length === 0 || cond.or.some((and) => and.length === 0)) throw new RuleCompileError(`empty condition after "${cond.kind}"`, loc);
  const f = orOf(cond.or.map((and) => andOf(and.map((op) => operand(op, env, loc)))));
  if (cond.kind === 'if') return f;
  return (src) => !f(src);
}
