/**
 * The plan of the fused `indexerTopk`: the CPU edge's own plans of
 * `indexerScores` and `topk` (so the same validation and the same errors),
 * with the scores left virtual (a stand-in of [b, t, s] that no buffer ever
 * backs) and their score and top-k steps joined into one GPU step (the FP8
 * quantization steps run before it). The result equals
 * `topk(indexerScores(q, k, w, { weightScale, precision, hadamard,
 * scaleFormat, causalOffset, window, seqLens, ragged, blockTable, maxLen }),
 * topK, { causalOffset, window, seqLens, ragged, mask, rows, sorted, nan })`
 * computed on the GPU.
 */
import type { Alloc, MaskData, Tensor } from '../tensor.js';
import type { KeyWindow, RaggedBatch } from '../window.js';
import type { Plan } from '../plan.js';
import { planIndexerScores, type IndexerKeys, type IndexerScoresOptions } from '../indexer/scores.js';
import { planTopk, type TopkResult } from '../topk/topk.js';
import type { ProgramTable } from './program.js';
import { unsupported } from './program.js';
import { checkArgs } from './runner.js';
import { GpuTensor, standIn } from './resident.js';

export interface IndexerTopkOptions {
  /** Multiplies every head weight (default 1), as indexerScores. */
  weightScale?: number;
  /** 'float32' (default), 'int8', 'int7' or 'fp8', with `hadamard` and `scaleFormat`, as indexerScores. */
  precision?: IndexerScoresOptions['precision'];
  hadamard?: boolean;
  scaleFormat?: IndexerScoresOptions['scaleFormat'];
  /** Row ti scores and selects only keys j <= ti + causalOffset. */
  causalOffset?: number;
  /** Per-row key windows [start, end), as indexerScores and topk. */
  window?: KeyWindow;
  /** Int32Array [b]: tokens of each sequence, the t queries its last t, as indexerScores and topk. */
  seqLens?: Int32Array;
  /** With seqLens: 'empty' lets a sequence hold fewer than t tokens, its first queries seeing no keys (vLLM), as indexerScores and topk. */
  shortSequences?: 'error' | 'empty';
  /** A packed batch (q [1, totalQ, h, d], k [1, totalK, d]): indices are positions within each sequence. */
  ragged?: RaggedBatch;
  /** A paged key cache (with seqLens), as indexerScores: indices are positions within each sequence. */
  blockTable?: Tensor<Int32Array>;
  /** Paged: positions per row (default the longest sequence). */
  maxLen?: number;
  /** Eligibility [b, t, width] (additive, bool) or [b, t, ceil(width/32)] (bits), as topk. */
  mask?: Tensor<MaskData>;
  /** Only rows [start, end); the result is then [end - start, topK]. */
  rows?: [number, number];
  sorted?: boolean;
  nan?: 'error' | 'lowest';
  /** Memory guard for the result (the scores never exist). */
  maxBytes?: number;
  /** Buffers for the result, [rows * topK] each, as topk. */
  out?: { values: Float32Array; indices: Int32Array };
}

/** Every option `indexerTopk` takes (the backend's `resident` besides); any other is refused by name, never ignored. */
const OPTIONS = [
  'weightScale', 'precision', 'hadamard', 'scaleFormat', 'causalOffset', 'window', 'seqLens', 'shortSequences', 'ragged', 'blockTable',
  'maxLen', 'mask', 'rows', 'sorted', 'nan', 'maxBytes', 'out', 'resident',
];

const same = (a: unknown, b: unknown) => a === b || (a instanceof Int32Array && b instanceof Int32Array && a.length === b.length && a.every((x, i) => x === b[i]));

/** The score step's args the fused step carries (the rest describe the scores' output, which never exists). */
const SCORE_OUTPUT = ['out', 'rowStart', 'nRows', 'keyBlock'];

export function planIndexerTopk(
  device: GPUDevice,
  programs: ProgramTable,
  q: Tensor<Float32Array>,
  k: IndexerKeys,
  w: Tensor<Float32Array>,
  topK: number,
  opts: IndexerTopkOptions,
  alloc: Alloc,
): Plan<TopkResult> {
  for (const [name, value] of Object.entries(opts)) {
    if (!OPTIONS.includes(name) && value !== undefined) throw unsupported(`indexerTopk: option '${name}'`);
  }
  const keyOpts = { causalOffset: opts.causalOffset, window: opts.window, seqLens: opts.seqLens, shortSequences: opts.shortSequences, ragged: opts.ragged };
  // The scores are virtual (validated and shaped, never allocated); the FP8
  // codes and scales the quantization steps write stay on the GPU.
  const virtual: Alloc = (ctor, length) => {
    const dtype = (ctor as unknown) === Float32Array ? 'float32' : (ctor as unknown) === Uint8Array ? 'uint8' : null;
    return (dtype === null ? alloc(ctor, length) : standIn(new GpuTensor(device, null, dtype, [length]), true)) as never;
  };
  const scorePlan = planIndexerScores(q, k, w, {
    ...keyOpts, weightScale: opts.weightScale, precision: opts.precision, hadamard: opts.hadamard, scaleFormat: opts.scaleFormat,
    blockTable: opts.blockTable, maxLen: opts.maxLen, maxBytes: Infinity, simd: false,
  }, virtual);
  const scores = scorePlan.finish();
  const topPlan = planTopk({ data: scores.data, shape: scores.shape }, topK, {
    ...keyOpts, sorted: opts.sorted, nan: opts.nan, mask: opts.mask, rows: opts.rows, maxBytes: opts.maxBytes, out: opts.out,
  }, alloc);
  // The quantization steps run as they are; the score step (its fillOutside aside) joins top-k's.
  const scoreSteps = scorePlan.steps.filter((step) => step.kernel.startsWith('indexer.scores'));
  const quantSteps = scorePlan.steps.filter((step) => step.kernel.startsWith('indexer.fp8.'));
  if (scoreSteps.length !== 1 || topPlan.steps.length !== 1 || quantSteps.length + 2 !== scorePlan.steps.length) {
    throw unsupported('indexerTopk: a plan of other steps than quantization, fillOutside, scores and top-k');
  }
  const [scoreStep] = scoreSteps;
  const [topStep] = topPlan.steps;
  for (const step of [...quantSteps, scoreStep, topStep]) {
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
  const carried = Object.fromEntries(Object.entries(sa).filter(([name]) => !SCORE_OUTPUT.includes(name)));
  return {
    steps: [...quantSteps, {
      kernel: 'webgpu.indexerTopk',
      args: {
        ...carried, scoreKernel: scoreStep.kernel,
        s: ta.s, topK: ta.k, row0: ta.row0, values: ta.values, indices: ta.indices, nanAt: ta.nanAt, nanLowest: ta.nanLowest,
        sorted: ta.sorted, mask: ta.mask, maskForm: ta.maskForm,
      },
      rows: topStep.rows,
      writes: ['values', 'indices', 'nanAt'],
    }],
    finish: topPlan.finish,
  };
}
