// The relaxed module in Node: Node 20 rejects it without a flag, so these
// tests start Node with --experimental-wasm-relaxed-simd. With --no-liftoff
// (TurboFan only) it computes the relaxed dot right and must give the
// baseline module's bits and the TypeScript reference's; with Liftoff,
// Node 20 drops the dot's accumulator, and the load-time probe must refuse
// the module. Chromium runs it for real in test/web/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { initSimd, relaxedSimdSupported, simdBuild } from '../../src/simd/index.js';

const child = fileURLToPath(new URL('./relaxed-child.ts', import.meta.url));

function runChild(flags: string[]): { loaded: string | null; error?: string; cases: { name: string; differences: number }[] } {
  const out = execFileSync(process.execPath, [...flags, '--import', 'tsx', child], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!);
}

test('Node keeps the baseline module; relaxed: true is refused where the engine lacks relaxed SIMD', async () => {
  assert.equal(relaxedSimdSupported(), false, 'Node 20 validates relaxed SIMD only with a flag');
  assert.equal(simdBuild(), 'baseline');
  await assert.rejects(initSimd({ relaxed: true }), { name: 'RangeError', message: /relaxed: true needs WebAssembly relaxed SIMD/ });
  await assert.rejects(initSimd({ relaxed: 'yes' as unknown as boolean }), { name: 'TypeError', message: /relaxed: expected a boolean, got string/ });
  assert.equal(simdBuild(), 'baseline');
});

test('relaxed module (TurboFan): float32, int8 and int7 scores (all keys, causal, key windows, seqLens, a paged int8 cache) bit-identical to the baseline module and the TypeScript reference', () => {
  const report = runChild(['--experimental-wasm-relaxed-simd', '--no-liftoff']);
  assert.equal(report.error, undefined);
  assert.equal(report.loaded, 'relaxed');
  assert.equal(report.cases.length, 50);
  for (const c of report.cases) assert.equal(c.differences, 0, c.name);
});

test('a relaxed dot that drops its accumulator (Node 20 Liftoff) fails the probe: the baseline module is used', () => {
  const report = runChild(['--experimental-wasm-relaxed-simd']);
  assert.match(report.error ?? '', /computes the relaxed dot probe wrong; the baseline module is used/);
  assert.equal(report.loaded, 'baseline');
});
