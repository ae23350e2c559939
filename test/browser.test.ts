// The main entry must run where there is no Node: bundle it for the browser
// (any node: import fails the build) and run the bundle in a bare V8 context
// that has only what a browser page has for this library (no process, no require).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createContext, runInContext } from 'node:vm';
import { build } from 'esbuild';

test('src/index.ts bundles for the browser and runs without Node globals', async () => {
  const result = await build({
    entryPoints: [new URL('../src/index.ts', import.meta.url).pathname],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    globalName: 'dsa',
    write: false,
    logLevel: 'silent',
  });
  const code = result.outputFiles[0].text;
  assert.doesNotMatch(code, /require\(["']node:/);

  const context = createContext({ WebAssembly, TextEncoder, TextDecoder, atob, console });
  runInContext(code, context);
  const probe = `(() => {
    const indices = { data: new Int32Array([2, -1, 0, 3, 3, 1]), shape: [1, 2, 3] };
    const bits = dsa.generateMask(indices, 5, { form: 'bits' });
    const top = dsa.topk({ data: new Float32Array([0.5, 2, -1, 2, 7]), shape: [1, 1, 5] }, 2);
    const q = { data: new Float32Array(4).fill(1), shape: [1, 1, 1, 4] };
    const k = { data: new Float32Array(8).fill(0.5), shape: [1, 2, 4] };
    const w = { data: new Float32Array([2]), shape: [1, 1, 1] };
    const scores = dsa.indexerScores(q, k, w);
    return JSON.stringify({ bits: [...bits.data], idx: [...top.indices.data], scores: [...scores.data], simd: dsa.simdSupported() });
  })()`;
  const got = JSON.parse(runInContext(probe, context) as string);
  assert.deepEqual(got.bits, [0b00101, 0b01010]);
  assert.deepEqual(got.idx, [4, 1]);
  assert.deepEqual(got.scores, [4, 4]);
  assert.equal(got.simd, true, 'WebAssembly SIMD loads in the bare context');
});
