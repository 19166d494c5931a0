/**
 * The import graph of packages/*\/src has no loops: every module can be read after the modules it
 * imports. Edges are relative imports and re-exports (`import`, `import type`, `export ... from`,
 * `import('./x.js')` types) and `@stickmesh/NAME`, which stands for packages/NAME/src/index.ts.
 * Test files are left out (they may import anything).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PACKAGES = path.join(ROOT, 'packages');

/** `import`/`export` statements with a `from`, side-effect imports, and `import('...')` expressions. */
const STATEMENT = /^[ \t]*(?:import|export)\b[^;]*?\bfrom\s*['"]([^'"]+)['"]|^[ \t]*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;

function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Module -> modules it imports, both as paths relative to the repository root. */
export function importGraph(): Map<string, string[]> {
  const files: string[] = [];
  for (const pkg of readdirSync(PACKAGES, { withFileTypes: true })) if (pkg.isDirectory()) sources(path.join(PACKAGES, pkg.name, 'src'), files);
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const deps = new Set<string>();
    for (const m of readFileSync(file, 'utf8').matchAll(STATEMENT)) {
      const spec = (m[1] ?? m[2] ?? m[3])!;
      let target: string | undefined;
      if (spec.startsWith('.')) target = path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'));
      else if (spec.startsWith('@stickmesh/')) target = path.join(PACKAGES, spec.slice('@stickmesh/'.length), 'src', 'index.ts');
      if (target === undefined) continue;
      if (!known.has(target)) throw new Error(`${path.relative(ROOT, file)}: import '${spec}' names no source file`);
      deps.add(path.relative(ROOT, target));
    }
    graph.set(path.relative(ROOT, file), [...deps]);
  }
  return graph;
}

/** Every loop found by a depth-first search, each as the list of modules from the first back to itself. */
export function findCycles(graph: Map<string, string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const d of graph.get(n) ?? []) {
      const s = state.get(d);
      if (s === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d]);
      else if (s === undefined) visit(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return cycles;
}

describe('import graph', () => {
  it('finds a loop where there is one (the check can fail)', () => {
    const g = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts']],
    ]);
    expect(findCycles(g)).toEqual([['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
    expect(findCycles(new Map([['a.ts', ['b.ts']], ['b.ts', []]]))).toEqual([]);
  });

  it('reads the real edges, type-only imports included', () => {
    const g = importGraph();
    expect(g.size).toBeGreaterThan(50);
    expect(g.get('packages/cli/src/node.ts')).toContain('packages/cli/src/admin/api.ts');
    expect(g.get('packages/proxy/src/runtime/server.ts')).toContain('packages/proxy/src/http/upstream.ts');
    expect(g.get('packages/cli/src/admin/api.ts')).toContain('packages/proxy/src/index.ts');
  });

  it('has no loops in packages/*/src', () => {
    const cycles = findCycles(importGraph());
    expect(cycles.map((c) => c.join(' -> '))).toEqual([]);
  });
});
