/**
 * Sample fetches and converters (placeholder signature; implemented by the rules work).
 */
import type { SampleExpr } from '@stickmesh/core';
import type { CompileEnv, CompiledSample } from './types.js';

/** Compiles `expr` (fetch + converters) into a closure; throws RuleCompileError for an unknown fetch or converter. */
export function compileSample(expr: SampleExpr, env: CompileEnv): CompiledSample {
  void expr;
  void env;
  throw new Error('compileSample: not implemented yet');
}
