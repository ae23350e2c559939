// vLLM's conventions on the GPU: seqLens shorter than t (shortSequences
// 'empty') are the plans' per-row ranges, so scores, top-k, the fused top-k
// and masks equal the CPU's; the vLLM scale rule lives in the FP8 keys'
// bytes, which the GPU scores as it scores any FP8 keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { indexerScores } from '../../src/indexer/scores.js';
import { quantizeKeysFp8 } from '../../src/indexer/quantized-keys.js';
import { topk } from '../../src/topk/topk.js';
import { windowMask } from '../../src/mask/masks.js';
import { assertClose } from '../helpers/close.js';
import { randomFloats } from '../attention/fixtures.js';
import { bits, gpu } from './device.js';

test("shortSequences 'empty' on the GPU: scores, top-k, the fused top-k and windowMask equal the CPU (rows before the sequence see nothing)", async () => {
  const [b, t, h, d, s] = [3, 4, 2, 16, 20];
  const q = randomFloats([b, t, h, d], 1), k = randomFloats([b, s, d], 2), w = randomFloats([b, t, h], 3);
  const keys = { seqLens: Int32Array.from([0, 2, 11]), shortSequences: 'empty' as const };
  const got = await gpu.indexerScores(q, k, w, keys);
  const want = indexerScores(q, k, w, keys);
  assertClose(got.data, want.data, { rtol: 1e-4, atol: 1e-5 }, 'scores');
  assert.ok(got.data.subarray(0, (t + 2) * s).every((x) => x === -Infinity), 'sequence 0 and the first two queries of sequence 1 see nothing');
  const cpu = topk(want, 5, keys);
  const of = await gpu.topk(want, 5, keys);
  assert.deepEqual(of.indices.data, cpu.indices.data, 'top-k');
  const fused = await gpu.indexerTopk(q, k, w, 5, keys);
  const ofGpu = await gpu.topk(got, 5, keys);
  assert.deepEqual(fused.indices, ofGpu.indices, 'fused top-k');
  assert.deepEqual(bits(fused.values.data), bits(ofGpu.values.data));
  assert.ok(fused.indices.data.subarray(0, (t + 2) * 5).every((x) => x === -1), 'nothing selected before the sequences');
  assert.deepEqual((await gpu.windowMask(b, t, s, keys, 'bits')).data, windowMask(b, t, s, keys, 'bits').data, 'windowMask');
});

test('FP8 keys written by the vLLM rule score on the GPU as on the CPU', async () => {
  const [b, t, h, d, s] = [1, 3, 2, 16, 12];
  const q = randomFloats([b, t, h, d], 4), w = randomFloats([b, t, h], 5);
  const keys = quantizeKeysFp8(randomFloats([b, s, d], 6), { scaleRule: 'vllm' });
  const opts = { precision: 'fp8' as const, causalOffset: s - t };
  assert.deepEqual(bits((await gpu.indexerScores(q, keys, w, opts)).data), bits(indexerScores(q, keys, w, opts).data));
});
