/**
 * ACL terms and conditions (placeholder signature; implemented by the rules work).
 */
import type { AclTerm, CondConfig } from '@stickmesh/core';
import type { CompileEnv, CompiledCond } from './types.js';

/** Compiles one ACL test (fetch, match method, patterns) into a predicate. */
export function compileAclTerm(term: AclTerm, env: CompileEnv): CompiledCond {
  void term;
  void env;
  throw new Error('compileAclTerm: not implemented yet');
}

/** Compiles `if|unless` with its OR of ANDs; named ACLs from `env.acls` or the predefined ones (TRUE, METH_GET, ...). */
export function compileCond(cond: CondConfig | undefined, env: CompileEnv): CompiledCond {
  void cond;
  void env;
  throw new Error('compileCond: not implemented yet');
}
