// The float64 reference of indexer scores and the tolerance the CPU and GPU
// tests hold float32 scores to.
import assert from 'node:assert/strict';
import type { Tensor } from '../../src/tensor.js';

type F = Tensor<Float32Array>;

/** The formula in float64, and beside each score the sum of |terms| (float32 rounding is relative to it). */
export function reference(q: F, k: F, w: F, weightScale = 1, causalOffset?: number): { scores: Float64Array; magnitude: Float64Array } {
  const [b, t, h, d] = q.shape;
  const s = k.shape[1];
  const scores = new Float64Array(b * t * s), magnitude = new Float64Array(b * t * s);
  for (let bi = 0; bi < b; bi++)
    for (let ti = 0; ti < t; ti++)
      for (let j = 0; j < s; j++) {
        const at = (bi * t + ti) * s + j;
        if (causalOffset !== undefined && j > ti + causalOffset) {
          scores[at] = -Infinity;
          continue;
        }
        for (let hh = 0; hh < h; hh++) {
          let dot = 0, abs = 0;
          for (let e = 0; e < d; e++) {
            const p = q.data[((bi * t + ti) * h + hh) * d + e] * k.data[(bi * s + j) * d + e];
            dot += p;
            abs += Math.abs(p);
          }
          const wh = w.data[(bi * t + ti) * h + hh] * weightScale;
          scores[at] += wh * Math.max(dot, 0);
          magnitude[at] += Math.abs(wh) * abs;
        }
      }
  return { scores, magnitude };
}

/** The tolerance: 1e-5 of the magnitude of the terms; non-finite scores exactly. */
export function assertScores(actual: Float32Array, ref: { scores: Float64Array; magnitude: Float64Array }, label: string): void {
  assert.equal(actual.length, ref.scores.length, `${label}: length`);
  let worst = 0, at = -1;
  for (let i = 0; i < actual.length; i++) {
    const e = ref.scores[i];
    if (!Number.isFinite(e)) {
      assert.equal(actual[i], e, `${label}: position ${i}`);
      continue;
    }
    const err = Math.abs(actual[i] - e) / (ref.magnitude[i] || 1);
    if (!(err <= worst)) { worst = err; at = i; }
  }
  assert.ok(worst <= 1e-5, `${label}: relative error ${worst} at ${at}: ${actual[at]} vs ${ref.scores[at]}`);
}
