/**
 * The plan of the fused `indexerTopk`: the CPU edge's own plans of
 * `indexerScores` and `topk` (so the same validation and the same errors),
 * with the scores left virtual (a stand-in of [b, t, s] that no buffer ever
 * backs) and their two steps joined into one GPU step. The result equals
 * `topk(indexerScores(q, k, w, { weightScale, causalOffset, window, seqLens }),
 * topK, { causalOffset, window, seqLens, mask, rows, sorted, nan })` computed on the GPU.
 */
import type { Alloc, MaskData, Tensor } from '../tensor.js';
import type { KeyWindow } from '../window.js';
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
  /** Per-row key windows [start, end), as indexerScores and topk. */
  window?: KeyWindow;
  /** Int32Array [b]: tokens of each sequence, the t queries its last t, as indexerScores and topk. */
  seqLens?: Int32Array;
  /** Eligibility [b, t, s] (additive, bool) or [b, t, ceil(s/32)] (bits), as topk. */
  mask?: Tensor<MaskData>;
  /** Only rows [start, end); the result is then [end - start, topK]. */
  rows?: [number, number];
  sorted?: boolean;
  nan?: 'error' | 'lowest';
  /** Memory guard for the result (the scores never exist). */
  maxBytes?: number;
}

const same = (a: unknown, b: unknown) => a === b || (a instanceof Int32Array && b instanceof Int32Array && a.length === b.length && a.every((x, i) => x === b[i]));

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
  const keyOpts = { causalOffset: opts.causalOffset, window: opts.window, seqLens: opts.seqLens };
  // The scores are virtual: validated and shaped, never allocated.
  const virtual: Alloc = (ctor, length) =>
    ((ctor as unknown) === Float32Array ? standIn(new GpuTensor(device, null, 'float32', [length]), true) : alloc(ctor, length)) as never;
  const scorePlan = planIndexerScores(q, k, w, { ...keyOpts, weightScale: opts.weightScale, maxBytes: Infinity, simd: false }, virtual);
  const scores = scorePlan.finish();
  const topPlan = planTopk({ data: scores.data, shape: scores.shape }, topK, {
    ...keyOpts, sorted: opts.sorted, nan: opts.nan, mask: opts.mask, rows: opts.rows, maxBytes: opts.maxBytes,
  }, alloc);
  const scoreSteps = scorePlan.steps.filter((step) => step.kernel !== 'indexer.fillOutside');
  if (scoreSteps.length !== 1 || topPlan.steps.length !== 1) throw unsupported('indexerTopk: a plan of more than one step per part');
  const [scoreStep] = scoreSteps;
  const [topStep] = topPlan.steps;
  for (const step of [scoreStep, topStep]) {
    const program = programs[step.kernel];
    if (!program) throw unsupported(`indexerTopk: kernel '${step.kernel}'`);
    checkArgs('indexerTopk', program, step);
  }
  const sa = scoreStep.args, ta = topStep.args;
  // The fused step selects over the scores' row ranges: they must be top-k's eligibility.
  const [lo, hi] = [sa.lo as Int32Array, sa.hi as Int32Array];
  if (ta.lo !== null && (!same(ta.lo, lo) || !same(ta.hi, hi))) throw new Error('indexerTopk: the score and top-k row ranges differ');
  if (ta.lo === null && ta.causalOffset !== null) {
    for (let r = 0; r < lo.length; r++) {
      if (lo[r] !== 0 || hi[r] !== Math.max(0, Math.min(ta.s as number, (r % (ta.t as number)) + (ta.causalOffset as number) + 1))) {
        throw new Error('indexerTopk: the score and top-k causal limits differ');
      }
    }
  }
  return {
    steps: [{
      kernel: 'webgpu.indexerTopk',
      args: {
        q: sa.q, keys: sa.k, w: sa.w, h: sa.h, d: sa.d, width: sa.width, pageSize: sa.pageSize, weightScale: sa.weightScale, lo, hi,
        t: ta.t, s: ta.s, topK: ta.k, row0: ta.row0, values: ta.values, indices: ta.indices, nanAt: ta.nanAt, nanLowest: ta.nanLowest,
        sorted: ta.sorted, mask: ta.mask, maskForm: ta.maskForm,
      },
      rows: topStep.rows,
      writes: ['values', 'indices', 'nanAt'],
    }],
    finish: topPlan.finish,
  };
}
