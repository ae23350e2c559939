/**
 * Sparse (gathered) attention, FlashMLA's `flash_mla_sparse_fwd` interface on
 * the CPU: each query row attends only to the keys its indices name, so the
 * cost is O(t * hq * k * (dqk + dV)) whatever s is, and no mask exists.
 */
import type { Plan } from '../plan.js';
import { runPlan } from '../plan.js';
import type { Alloc, Tensor } from '../tensor.js';
import { allocLocal, describe } from '../tensor.js';
import { checkTensor } from '../validate.js';
import { type AttentionOptions, type AttentionResult, checkAttentionInputs, checkAttnSink, useSimd } from './inputs.js';
import { resolveRowKeys, type KeyWindow, type RaggedBatch } from '../window.js';
import type { KernelArgs } from '../plan.js';
import { attentionKernels } from './kernels.js';
import { checkKnownOptions } from '../options.js';

export interface SparseAttentionOptions extends AttentionOptions {
  /** The caller promises no valid index repeats within a (row, kv head): skips the dedupe pass. */
  assumeUnique?: boolean;
  /** Int32Array [t]: row r reads only its first topkLength[r] slots (FlashMLA's `topk_length`); each in [0, k]. */
  topkLength?: Int32Array;
  /** Per query row, the keys it may attend to, [start[r], end[r]) (Int32Arrays [t]); indices outside are skipped. */
  window?: KeyWindow;
  /**
   * Sequences packed along t (queries) and s (kv rows): indices are positions
   * within each row's sequence, causally limited (query p of a sequence with
   * qLen queries and kLen keys sees positions <= kLen - qLen + p).
   */
  ragged?: RaggedBatch;
}

export interface SparseAttentionResult extends AttentionResult {
  /** [rows, hq], the max scaled logit (natural units); -Infinity when no key is valid. */
  maxLogits: Tensor<Float32Array>;
}

/**
 * A kv head's query heads are split in two tiles once there are 32 or more
 * (MLA decode: 128), so one decode row spreads over two threads; a thread
 * given both tiles runs them as one pass. Measured at hq = 128, k = 2048,
 * dqk = 576 on 2 cores: one pass of 128 heads 15 ms; two threads on 64 each
 * 8.4-10.5 ms; tiles of 32 or 16 heads, each copying the key rows again,
 * 11-14 ms on two threads.
 */
const MIN_HEADS_TO_SPLIT = 32;

/** A paged kv cache [numPages, pageSize, hkv, dqk] as the flat [slots, hkv, dqk] its physical slots index. */
function flatKv(kv: Tensor<Float32Array>): Tensor<Float32Array> {
  const shape = (kv as { shape?: unknown } | null)?.shape;
  if (!Array.isArray(shape) || shape.length !== 4) return kv;
  const [pages, pageSize, hkv, dqk] = checkTensor('kv', kv, Float32Array, ['numPages', 'pageSize', 'hkv', 'dqk']);
  return { data: kv.data, shape: [pages * pageSize, hkv, dqk] };
}

/**
 * Builds the plan of `sparseAttention`: validates, allocates the outputs with
 * `alloc`, one step over (row, kv head, head chunk) tiles.
 */
export function planSparseAttention(
  q: Tensor<Float32Array>,
  kvIn: Tensor<Float32Array>,
  indices: Tensor<Int32Array>,
  opts: SparseAttentionOptions = {},
  alloc: Alloc = allocLocal,
): Plan<SparseAttentionResult> {
  const kv = flatKv(kvIn);
  const dims = checkAttentionInputs('sparseAttention', q, kv, opts);
  const { t, hq, hkv, dqk, dV, s, smScale, rowStart, rowEnd } = dims;
  const [ti, hkvIdx, k] = checkTensor('indices', indices, Int32Array, ['t', 'hkv', 'k']);
  if (ti !== t || hkvIdx !== hkv) {
    throw new RangeError(`indices.shape: expected [${t}, ${hkv}, k] (t of q, hkv of kv), got [${indices.shape.join(', ')}]`);
  }
  if (opts.assumeUnique !== undefined && typeof opts.assumeUnique !== 'boolean') {
    throw new TypeError(`assumeUnique: expected a boolean, got ${describe(opts.assumeUnique)}`);
  }
  let topkLength: Int32Array | null = null;
  if (opts.topkLength !== undefined) {
    topkLength = opts.topkLength;
    if (!(topkLength instanceof Int32Array) || topkLength.length !== t) {
      throw new TypeError(`topkLength: expected an Int32Array of length t = ${t} (one per query row), got ${topkLength instanceof Int32Array ? `length ${topkLength.length}` : describe(topkLength)}`);
    }
    for (let r = 0; r < t; r++) {
      if (topkLength[r] < 0 || topkLength[r] > k) throw new RangeError(`topkLength: row ${r} is ${topkLength[r]}; expected 0 <= topkLength <= k = ${k}`);
    }
  }
  const attnSink = checkAttnSink(opts.attnSink, hq);
  const keys = resolveRowKeys({ window: opts.window, ragged: opts.ragged }, 1, t, s, alloc, true);
  const rows = rowEnd - rowStart;
  const out = alloc(Float32Array, rows * hq * dV);
  const lse = alloc(Float32Array, rows * hq);
  const maxLogits = alloc(Float32Array, rows * hq);
  const group = hq / hkv;
  const headChunk = group >= MIN_HEADS_TO_SPLIT ? Math.ceil(group / 2) : group;
  const chunks = Math.ceil(group / headChunk);
  const args: KernelArgs = {
    q: q.data, kv: kv.data, indices: indices.data, out, lse, maxLogits,
    s, hq, hkv, dqk, dV, k, smScale, assumeUnique: opts.assumeUnique === true, rowOffset: rowStart, simd: useSimd(opts.simd),
    headChunk, lo: keys?.lo ?? null, hi: keys?.hi ?? null, base: keys?.base ?? null, topkLength, attnSink,
  };
  const tilesPerRow = hkv * chunks;
  return {
    steps: [{ kernel: 'attention.sparse', args, rows: [rowStart * tilesPerRow, rowEnd * tilesPerRow], writes: ['out', 'lse', 'maxLogits'] }],
    finish: () => ({
      out: { data: out, shape: [rows, hq, dV] },
      lse: { data: lse, shape: [rows, hq] },
      maxLogits: { data: maxLogits, shape: [rows, hq] },
    }),
  };
}

/**
 * Sparse attention over gathered keys (FlashMLA's sparse interface).
 *
 * - `q` [t, hq, dqk] Float32Array; `kv` [s, hkv, dqk] Float32Array, keys and
 *   values in one (v is the first `dV` dims of each row, MLA: dqk = 576, dV = 512),
 *   or a paged cache [numPages, pageSize, hkv, dqk] whose physical slots
 *   `page * pageSize + offset` the indices name (FlashMLA's sparse decode);
 * - `indices` [t, hkv, k] Int32Array: the keys each query row attends to per
 *   kv head. -1 (any negative) or >= s is skipped, as is a key outside the
 *   row's `window`, past its `topkLength` or (ragged) causally ahead; a key
 *   named twice counts once unless `assumeUnique` (then duplicates would
 *   count twice). Query head h uses kv head `floor(h / (hq / hkv))`.
 * - `attnSink` [hq]: adds exp(sink) to each head's softmax denominator
 *   (out shrinks; lse and maxLogits are those of the keys), as FlashMLA's.
 *
 * Returns `out` [rows, hq, dV], `lse` [rows, hq] (natural log of the softmax
 * denominator of the scaled logits) and `maxLogits` [rows, hq]. A query with
 * no valid key outputs 0 with lse = +Infinity and maxLogits = -Infinity
 * (FlashMLA's convention: exp(logit - lse) is then 0). Equals
 * `denseAttention` with the mask of the same indices, to float32 rounding.
 */
export function sparseAttention(
  q: Tensor<Float32Array>,
  kv: Tensor<Float32Array>,
  indices: Tensor<Int32Array>,
  opts: SparseAttentionOptions = {},
): SparseAttentionResult {
  checkKnownOptions('sparseAttention', opts, ['dV', 'smScale', 'rows', 'maxBytes', 'simd', 'attnSink', 'assumeUnique', 'topkLength', 'window', 'ragged']);
  return runPlan(planSparseAttention(q, kv, indices, opts, allocLocal), attentionKernels);
}
