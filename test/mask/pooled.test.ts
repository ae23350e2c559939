import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createPool } from '../../src/pool/index.js';
import { generateMask, maskFromThreshold, combineMasks, causalMask, type MaskForm } from '../../src/index.js';
import { assertSameBits, indexCase, sortTopkIndices } from './definition.js';

const forms: MaskForm[] = ['additive', 'bool', 'bits'];

test('pool versions are bit-identical to the single-threaded calls; errors reject and leave out untouched', async () => {
  const pool = createPool({ threads: 2 });
  try {
    await fc.assert(
      fc.asyncProperty(indexCase, async ({ b, t, k, s, indices, causalOffset, rows, form, strategy }) => {
        const data = Int32Array.from(indices);
        const opts = { form, strategy, causalOffset, rows, outOfRange: 'skip' as const };
        const want = generateMask({ data, shape: [b, t, k] }, s, opts);
        const got = await pool.generateMask({ data, shape: [b, t, k] }, s, opts);
        assert.deepEqual(got.shape, want.shape);
        assertSameBits(got.data, want.data, `pool ${strategy} ${form} idx[${b},${t},${k}] s=${s}`);
      }),
      { numRuns: 25 },
    );

    // A larger case so every worker gets rows; a caller's non-shared out is filled in place.
    const [b, t, k, s] = [2, 64, 40, 1000];
    const data = Int32Array.from({ length: b * t * k }, (_, i) => ((i * 2654435761) >>> 7) % (s + 20) - 10);
    for (const form of forms) {
      const want = generateMask({ data, shape: [b, t, k] }, s, { form, outOfRange: 'skip', causalOffset: s - t });
      const out = new (want.data.constructor as new (n: number) => typeof want.data)(want.data.length);
      const got = await pool.generateMask({ data, shape: [b, t, k] }, s, { form, outOfRange: 'skip', causalOffset: s - t, out });
      assert.equal(got.data, out);
      assertSameBits(out, want.data, `pool idx[${b},${t},${k}] s=${s} ${form}`);

      const scores = Float32Array.from({ length: b * t * s }, (_, i) => ((i * 40503) % 97) / 7);
      const idx = sortTopkIndices(scores, b * t, s, k);
      const values = { data: Float32Array.from(idx, (j, i) => scores[Math.floor(i / k) * s + j]), shape: [b, t, k] };
      for (const mode of ['exact', 'raw'] as const) {
        assertSameBits(
          (await pool.maskFromThreshold({ data: scores, shape: [b, t, s] }, values, { form, mode })).data,
          maskFromThreshold({ data: scores, shape: [b, t, s] }, values, { form, mode }).data,
          `pool threshold ${mode} ${form}`,
        );
      }
      const causal = causalMask(b, t, s, 3, form);
      assertSameBits((await pool.causalMask(b, t, s, 3, form)).data, causal.data, `pool causal ${form}`);
      assertSameBits((await pool.combineMasks(want, causal)).data, combineMasks(want, causal).data, `pool combine ${form}`);
    }

    const bad = Int32Array.from(data, (j) => (j >= s ? -1 : j));
    bad[77] = s;
    const out = new Float32Array(b * t * s).fill(2);
    await assert.rejects(pool.generateMask({ data: bad, shape: [b, t, k] }, s, { out }), { name: 'RangeError', message: /value 1000 at batch 0, query 1, slot 37 must be < s = 1000/ });
    assert.ok(out.every((x) => x === 2));
    await assert.rejects(pool.causalMask(1, 1, 0, 0), /s: expected a positive integer/);
  } finally {
    await pool.close();
  }
});
