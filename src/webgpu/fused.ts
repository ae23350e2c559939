/**
 * The plan of the fused `indexerTopk`: the CPU edge's own plans of
 * `indexerScores` and `topk` (so the same validation and the same errors),
 * with the scores left virtual (a stand-in of [b, t, s] that no buffer ever
 * backs) and their two steps joined into one GPU step. The result equals
 * `topk(indexerScores(q, k, w, { weightScale, causalOffset }), topK,
 * { causalOffset, mask, rows, sorted, nan })` computed on the GPU.
 */
import type { Alloc, MaskData, Tensor } from '../tensor.js';
import type { Plan } from '../plan.js';
import { planIndexerScores } from '../indexer/scores.js';
import { planTopk, type TopkResult } from '../topk/topk.js';
import type { ProgramTable } from './program.js';
import { unsupported } from './program.js';
import { checkArgs } from './runner.js';
import { GpuTensor, standIn } from './resident.js';

export interface IndexerTopkOptions {
  /** Multiplies every head weight (default 1), as indexerScores. */
  weightScale?: number;
  /** Row ti scores and selects only keys j <= ti + causalOffset. */
  causalOffset?: number;
  /** Eligibility [b, t, s] (additive, bool) or [b, t, ceil(s/32)] (bits), as topk. */
  mask?: Tensor<MaskData>;
  /** Only rows [start, end); the result is then [end - start, topK]. */
  rows?: [number, number];
  sorted?: boolean;
  nan?: 'error' | 'lowest';
  /** Memory guard for the result (the scores never exist). */
  maxBytes?: number;
}

export function planIndexerTopk(
  device: GPUDevice,
  programs: ProgramTable,
  q: Tensor<Float32Array>,
  k: Tensor<Float32Array>,
  w: Tensor<Float32Array>,
  topK: number,
  opts: IndexerTopkOptions,
  alloc: Alloc,
): Plan<TopkResult> {
  // The scores are virtual: validated and shaped, never allocated.
  const virtual: Alloc = (ctor, length) => standIn(new GpuTensor(device, null, 'float32', [length]), true) as never;
  const scorePlan = planIndexerScores(q, k, w, { weightScale: opts.weightScale, causalOffset: opts.causalOffset, maxBytes: Infinity, simd: false }, virtual);
  const scores = scorePlan.finish();
  const [b, t, s] = [q.shape[0], q.shape[1], k.shape[1]];
  const topPlan = planTopk({ data: scores.data, shape: [b, t, s] }, topK, {
    sorted: opts.sorted, nan: opts.nan, causalOffset: opts.causalOffset, mask: opts.mask, rows: opts.rows, maxBytes: opts.maxBytes,
  }, alloc);
  if (scorePlan.steps.length !== 1 || topPlan.steps.length !== 1) throw unsupported('indexerTopk: a plan of more than one step per part');
  const [scoreStep] = scorePlan.steps;
  const [topStep] = topPlan.steps;
  for (const step of [scoreStep, topStep]) {
    const program = programs[step.kernel];
    if (!program) throw unsupported(`indexerTopk: kernel '${step.kernel}'`);
    checkArgs('indexerTopk', program, step);
  }
  const sa = scoreStep.args, ta = topStep.args;
  return {
    steps: [{
      kernel: 'webgpu.indexerTopk',
      args: {
        q: sa.q, keys: sa.k, w: sa.w, h: sa.h, d: sa.d, weightScale: sa.weightScale, scoreCausal: sa.causal, scoreOffset: sa.offset,
        t: ta.t, s: ta.s, topK: ta.k, row0: ta.row0, values: ta.values, indices: ta.indices, nanAt: ta.nanAt, nanLowest: ta.nanLowest,
        sorted: ta.sorted, causalOffset: ta.causalOffset, mask: ta.mask, maskForm: ta.maskForm,
      },
      rows: topStep.rows,
      writes: ['values', 'indices', 'nanAt'],
    }],
    finish: topPlan.finish,
  };
}
