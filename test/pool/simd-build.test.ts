import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWorkerPool } from '../../src/pool/pool.js';
import { createPool } from '../../src/pool/node.js';
import { initSimd, relaxedSimdSupported, simdBuild, type SimdBuild } from '../../src/simd/index.js';
import { indexerScores } from '../../src/indexer/scores.js';
import { quantizeKeys } from '../../src/indexer/quantized-keys.js';

const registry = new URL('./build-kernels.ts', import.meta.url);
const names = ['typescript', 'baseline', 'relaxed'];

async function workerBuilds(setup: SimdBuild | null): Promise<string[]> {
  const pool = createWorkerPool({ threads: 2, registry, setup, chunksPerThread: 8 });
  try {
    const out = new Int32Array(new SharedArrayBuffer(64 * 4));
    await pool.runRows('simdBuild', { out }, 0, 64);
    return [...new Set(Array.from(out, (c) => names[c]))];
  } finally {
    await pool.close();
  }
}

test('workers load the build they are set up with; with none, the one each thread picks (the same as this thread\'s default)', async () => {
  assert.deepEqual(await workerBuilds('baseline'), ['baseline']);
  if (relaxedSimdSupported()) assert.deepEqual(await workerBuilds('relaxed'), ['relaxed']);
  assert.deepEqual(await workerBuilds(null), [relaxedSimdSupported() ? 'relaxed' : 'baseline']);
});

test('createPool: the workers run the build of the thread that made the pool, and int7 scores on them equal this thread\'s bit for bit', async () => {
  const rand = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * 0.9);
  const [b, t, h, d, s] = [1, 3, 8, 128, 700];
  const q = { data: rand(b * t * h * d, 1), shape: [b, t, h, d] }, k = quantizeKeys({ data: rand(b * s * d, 2), shape: [b, s, d] }), w = { data: rand(b * t * h, 3), shape: [b, t, h] };
  const builds: SimdBuild[] = relaxedSimdSupported() ? ['relaxed', 'baseline'] : ['baseline'];
  try {
    for (const build of builds) {
      await initSimd({ relaxed: build === 'relaxed' });
      assert.equal(simdBuild(), build);
      const pool = createPool({ threads: 2 });
      try {
        const expected = indexerScores(q, k, w, { precision: 'int7' }).data;
        const got = (await pool.indexerScores(q, k, w, { precision: 'int7' })).data;
        assert.deepEqual(Array.from(got), Array.from(expected), `int7 on ${build}`);
      } finally {
        await pool.close();
      }
    }
  } finally {
    await initSimd({ relaxed: relaxedSimdSupported() });
  }
});
