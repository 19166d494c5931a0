/**
 * Per-test resources: `defer` registers a cleanup run after each test (last registered first), and
 * `backends(n)` starts n test backends named web1..webN, `backend(name)` one, `proxy(cfg, vars)`
 * a proxy, all closed that way.
 */
import { afterEach } from 'vitest';
import { startBackend, type TestBackend } from './backends.js';
import { startProxy, type RunningProxy } from './proxy.js';

export interface Scope {
  defer(fn: () => Promise<void> | void): void;
  backends(n: number): Promise<TestBackend[]>;
  /** One test backend named `name`, closed after the test. */
  backend(name: string): Promise<TestBackend>;
  /** A proxy from config text with `${var}` placeholders (startProxy), closed after the test. */
  proxy(cfg: string, vars: Record<string, number | string>): Promise<RunningProxy>;
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
    async backend(name) {
      const b = await startBackend(name);
      scope.defer(() => b.close());
      return b;
    },
    async proxy(cfg, vars) {
      const p = await startProxy(cfg, vars);
      scope.defer(() => p.close());
      return p;
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
