/**
 * A config for a node started inside the test process (`StickmeshNode.start`) with one thread:
 * vitest runs the sources, and the data-plane threads' entry (cli thread-main.js) exists only in
 * the build. Threads are tested with node processes started from the build (test/threads*.test.ts).
 */
export function oneThread<T extends { config: { global: { nbthread: number } } }>(loaded: T): T {
  loaded.config.global.nbthread = 1;
  return loaded;
}
