// The module graph of src/ has no cycles (value imports; `import type` is
// erased): kernels never import the edge that plans them, and a runner is
// handed its kernel table instead of importing a registry of every area.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const src = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') && !path.includes('/simd/assembly/') ? [path] : [];
  });
}

/** The src files a file imports by value (static `import`/`export ... from`, not `import type`). */
function valueImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?['"](\.[^'"]+)['"]/gm)) {
    const target = resolve(dirname(file), m[1]).replace(/\.js$/, '.ts');
    if (target.startsWith(src)) found.push(target);
  }
  return found;
}

test('src/ has no import cycles', () => {
  const graph = new Map(sources(src).map((f) => [f, valueImports(f)]));
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      const cycle = stack.slice(stack.indexOf(f)).concat(f).map((p) => relative(src, p));
      assert.fail(`import cycle: ${cycle.join(' -> ')}`);
    }
    state.set(f, 'open');
    stack.push(f);
    for (const g of graph.get(f) ?? []) visit(g);
    stack.pop();
    state.set(f, 'done');
  };
  assert.ok(graph.size > 40, `found only ${graph.size} source files`);
  for (const f of graph.keys()) visit(f);
});
