// createPool().linear: the output features split across workers, bit for
// bit the single-threaded linear, for every weight form and reading, with
// plain and shared weights, a plain `out`, and the same named errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPool } from '../../src/pool/index.js';
import { linear, type LinearOptions } from '../../src/weights/linear.js';
import { quantizeWeightFp8, shareWeight, toBf16, type Weight } from '../../src/weights/weight.js';
import { rng, normals } from '../../src/cli/demo-data.js';

function sameBits(a: Float32Array, b: Float32Array, label: string): void {
  assert.equal(a.length, b.length, label);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${label}: element ${i} is ${a[i]}, expected ${b[i]}`);
}

test('pool linear: every form and reading, x[n, in] n in {1, 3, 9}, bit-identical to one thread, plain and shared weights', async () => {
  const pool = createPool({ threads: 2 });
  try {
    const [out, inDim] = [261, 300];
    const values = normals(rng(4), out * inDim);
    const weights: Weight[] = [
      { format: 'float32', shape: [out, inDim], data: values },
      { format: 'bf16', shape: [out, inDim], data: toBf16(values) },
      quantizeWeightFp8({ data: values, shape: [out, inDim] }),
    ];
    const readings: LinearOptions[] = [{}, { gemmImpl: 'fp8' }, { gemmImpl: 'fp8', scaleFormat: 'ue8m0' }, { simd: false, gemmImpl: 'fp8' }];
    for (const w of weights) {
      for (const shared of [false, true]) {
        const weight = shared ? shareWeight(w) : w;
        if (shared) assert.ok(weight.data.buffer instanceof SharedArrayBuffer);
        for (const n of [1, 3, 9]) {
          const x = { data: normals(rng(n), n * inDim), shape: [n, inDim] };
          for (const opts of readings) {
            const one = linear(x, weight, opts);
            const many = await pool.linear(x, weight, opts);
            assert.deepEqual(many.shape, one.shape);
            sameBits(many.data, one.data, `${w.format} shared ${shared} n=${n} ${JSON.stringify(opts)}`);
            const into = new Float32Array(n * out);
            const again = await pool.linear(x, weight, { ...opts, out: into });
            assert.equal(again.data, into);
            sameBits(into, one.data, `${w.format} out n=${n}`);
          }
        }
      }
    }
    await assert.rejects(pool.linear({ data: new Float32Array(3), shape: [3] }, weights[2]), /RangeError: x.shape: the last dim must be the weight's in = 300, got \[3\]/);
    await assert.rejects(pool.linear({ data: new Float32Array(300), shape: [300] }, { ...weights[2], scale: new Float32Array(1) } as Weight), /RangeError: w.scale/);
  } finally {
    await pool.close();
  }
});
