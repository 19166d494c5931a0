/**
 * Per-test resources: `defer` registers a cleanup run after each test (last registered first), and
 * `backends(n)` starts n test backends named web1..webN that are closed that way.
 */
import { afterEach } from 'vitest';
import { startBackend, type TestBackend } from './backends.js';

export interface Scope {
  defer(fn: () => Promise<void> | void): void;
  backends(n: number): Promise<TestBackend[]>;
}

export function useScope(): Scope {
  let cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    const list = cleanups.reverse();
    cleanups = [];
    for (const c of list) await c();
  });
  const scope: Scope = {
    defer(fn) {
      cleanups.push(fn);
    },
    async backends(n) {
      const out: TestBackend[] = [];
      for (let i = 1; i <= n; i++) {
        const b = await startBackend(`web${i}`);
        scope.defer(() => b.close());
        out.push(b);
      }
      return out;
    },
  };
  return scope;
}
