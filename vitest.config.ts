import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const src = (p: string) => fileURLToPath(new URL(`./packages/${p}/src/index.ts`, import.meta.url));

// Tests import the packages from source so they never run against a stale build;
// multi-node tests in test/ start real processes from the build made by `npm test`.
export default defineConfig({
  resolve: {
    alias: {
      '@stickmesh/core': src('core'),
      '@stickmesh/peers': src('peers'),
      '@stickmesh/proxy': src('proxy'),
    },
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30000,
    hookTimeout: 30000,
    pool: 'forks',
  },
});
