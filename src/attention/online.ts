/**
 * The online-softmax core that dense and sparse attention share: for one
 * query row and one kv head, the `group = hq / hkv` query heads walk the same
 * list of keys in blocks of BLOCK. Each key row is loaded once per block and
 * used by every head of the group while it is in cache (heads x keys tile),
 * then each head rescales its accumulator only when its running max grows
 * (FlashAttention's online softmax), so nothing of size [s] per head is kept.
 *
 * The softmax bookkeeping is float64 on both paths. The TypeScript path
 * also accumulates p.v in float64 (JS arithmetic is float64 anyway); the
 * WebAssembly SIMD path accumulates it in float32 lanes (f32x4).
 */

import type { KernelArgs } from '../plan.js';
import { simdModule, type SimdModule } from '../simd/index.js';

/** Keys per block: 32 kv rows of 576 floats (72 KiB) stay in L2 while all heads use them. */
export const BLOCK = 32;

/**
 * Per-thread scratch, grown on demand and reused across calls (each pool
 * worker has its own module instance, so its own scratch). Kernels allocate
 * only when a call needs more than any call before it on that thread.
 */
export interface Workspace {
  /** keys of the current block (dense) or of the whole gathered list (sparse) */
  keys: Int32Array;
  /** [2, BLOCK]: additive bias of each key of a block (dense masks), then the SIMD path's scaled logits */
  bias: Float64Array;
  /** [group, BLOCK] logits, then probabilities */
  logits: Float64Array;
  /** [group, dV] running sum of p * v */
  acc: Float64Array;
  /** [group] running max of the scaled logits */
  max: Float64Array;
  /** [group] running sum of exp(logit - max) */
  sum: Float64Array;
  /**
   * [ceil(s/32)] dedupe bits: key j is in the current list iff its bit is
   * set. s bits (16 KiB at s = 131072) stay in L1; after each list the words
   * of its keys are zeroed again (O(k), never O(s)).
   */
  seen: Uint32Array;
}

const workspace: Workspace = {
  keys: new Int32Array(BLOCK),
  bias: new Float64Array(2 * BLOCK),
  logits: new Float64Array(BLOCK),
  acc: new Float64Array(0),
  max: new Float64Array(1),
  sum: new Float64Array(1),
  seen: new Uint32Array(0),
};

export function getWorkspace(group: number, dV: number, keys: number, s: number): Workspace {
  const ws = workspace;
  if (ws.keys.length < keys) ws.keys = new Int32Array(keys);
  if (ws.logits.length < group * BLOCK) ws.logits = new Float64Array(group * BLOCK);
  if (ws.acc.length < group * dV) ws.acc = new Float64Array(group * dV);
  if (ws.max.length < group) {
    ws.max = new Float64Array(group);
    ws.sum = new Float64Array(group);
  }
  if (ws.seen.length < (s + 31) >>> 5) ws.seen = new Uint32Array((s + 31) >>> 5);
  return ws;
}

export function dot(a: Float32Array, aOff: number, b: Float32Array, bOff: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += a[aOff + i] * b[bOff + i];
    s1 += a[aOff + i + 1] * b[bOff + i + 1];
    s2 += a[aOff + i + 2] * b[bOff + i + 2];
    s3 += a[aOff + i + 3] * b[bOff + i + 3];
  }
  for (; i < n; i++) s0 += a[aOff + i] * b[bOff + i];
  return s0 + s1 + (s2 + s3);
}

export function resetGroup(ws: Workspace, group: number, dV: number): void {
  ws.max.fill(-Infinity, 0, group);
  ws.sum.fill(0, 0, group);
  ws.acc.fill(0, 0, group * dV);
}

/**
 * Folds keys `ws.keys[first .. first + count)` (count <= BLOCK) into the
 * running state of the group's heads. Query head i of the group starts at
 * `q[qBase + i * dqk]`; key j's row starts at `kv[j * kvStride + kvHead]`.
 * With `biased`, `ws.bias[0 .. count)` is added to the scaled logits.
 */
export function foldBlock(
  ws: Workspace,
  q: Float32Array,
  qBase: number,
  group: number,
  dqk: number,
  kv: Float32Array,
  kvStride: number,
  kvHead: number,
  first: number,
  count: number,
  dV: number,
  smScale: number,
  biased: boolean,
): void {
  const { keys, bias, logits, acc, max, sum } = ws;
  for (let kb = 0; kb < count; kb++) {
    const kvOff = keys[first + kb] * kvStride + kvHead;
    const b = biased ? bias[kb] : 0;
    for (let i = 0; i < group; i++) logits[i * BLOCK + kb] = dot(q, qBase + i * dqk, kv, kvOff, dqk) * smScale + b;
  }
  for (let i = 0; i < group; i++) {
    const row = i * BLOCK;
    let blockMax = -Infinity;
    for (let kb = 0; kb < count; kb++) if (logits[row + kb] > blockMax) blockMax = logits[row + kb];
    const oldMax = max[i];
    if (blockMax > oldMax) {
      // exp(-Infinity) = 0 wipes an empty state; a state built only on
      // masked keys (max near DEFAULT_MASK_VALUE) is wiped the same way.
      const scale = Math.exp(oldMax - blockMax);
      if (scale !== 1) {
        sum[i] *= scale;
        const a = i * dV;
        for (let d = 0; d < dV; d++) acc[a + d] *= scale;
      }
      max[i] = blockMax;
    }
    const m = max[i];
    let total = 0;
    for (let kb = 0; kb < count; kb++) {
      // m = -Infinity only when every logit so far is -Infinity (an additive
      // mask holding -Infinity): those keys weigh nothing.
      const p = m === -Infinity ? 0 : Math.exp(logits[row + kb] - m);
      logits[row + kb] = p;
      total += p;
    }
    sum[i] += total;
  }
  for (let kb = 0; kb < count; kb++) {
    const vOff = keys[first + kb] * kvStride + kvHead;
    for (let i = 0; i < group; i++) {
      const p = logits[i * BLOCK + kb];
      if (p === 0) continue;
      const a = i * dV;
      let d = 0;
      for (; d + 3 < dV; d += 4) {
        acc[a + d] += p * kv[vOff + d];
        acc[a + d + 1] += p * kv[vOff + d + 1];
        acc[a + d + 2] += p * kv[vOff + d + 2];
        acc[a + d + 3] += p * kv[vOff + d + 3];
      }
      for (; d < dV; d++) acc[a + d] += p * kv[vOff + d];
    }
  }
}

/**
 * The WebAssembly SIMD path's buffers in the module's memory: the group's
 * query heads, one block of key rows copied in, the block's logits then
 * probabilities, and the float32 accumulators. Laid out again at each kernel
 * call (another area's kernel may have used the memory in between).
 */
export interface SimdBuffers {
  m: SimdModule;
  pq: number;
  pBlock: number;
  pLogits: number;
  pAcc: number;
  q: Float32Array;
  block: Float32Array;
  logits: Float32Array;
  acc: Float32Array;
}

/** What the dense and the sparse row kernels both read from their arguments. */
export interface RowArgs {
  q: Float32Array;
  kv: Float32Array;
  out: Float32Array;
  lse: Float32Array;
  s: number;
  hq: number;
  hkv: number;
  dqk: number;
  dV: number;
  smScale: number;
  rowOffset: number;
  /** Query heads per kv head, hq / hkv. */
  group: number;
  /** Floats between consecutive key rows of kv, hkv * dqk. */
  kvStride: number;
  /** This thread's SIMD buffers (for `heads` query heads at a time) when `args.simd` asks for them and the shapes allow. */
  buf: SimdBuffers | null;
}

export function rowArgs(args: KernelArgs, heads?: number): RowArgs {
  const hq = args.hq as number, hkv = args.hkv as number, dqk = args.dqk as number, dV = args.dV as number;
  const group = hq / hkv;
  return {
    q: args.q as Float32Array,
    kv: args.kv as Float32Array,
    out: args.out as Float32Array,
    lse: args.lse as Float32Array,
    s: args.s as number,
    hq, hkv, dqk, dV,
    smScale: args.smScale as number,
    rowOffset: args.rowOffset as number,
    group,
    kvStride: hkv * dqk,
    buf: simdBuffers(args.simd ? simdModule() : null, heads ?? group, dqk, dV),
  };
}

/** The module's attention kernels (src/simd/assembly/attention.ts); pointers are byte offsets. */
interface AttentionExports {
  /** out[i * outStride + j] = q[i] . keys[j], i < h, j < n (n a multiple of 4), rows d apart */
  attnLogits(q: number, h: number, keys: number, n: number, d: number, out: number, outStride: number): void;
  /** acc[i * accStride + c] += sum_j p[i * pStride + j] * keys[j * rowStride + c], c < d */
  attnAccumulate(p: number, pStride: number, h: number, keys: number, n: number, rowStride: number, d: number, acc: number, accStride: number): void;
}

/**
 * The SIMD buffers, or null where the TypeScript path must serve: no
 * WebAssembly SIMD, or dqk / dV not multiples of 4 (the kernels have no tails).
 */
export function simdBuffers(m: SimdModule | null, group: number, dqk: number, dV: number): SimdBuffers | null {
  if (!m || dqk % 4 !== 0 || dV % 4 !== 0 || typeof m.exports.attnLogits !== 'function') return null;
  const [pq, pBlock, pLogits, pAcc] = m.layout(group * dqk * 4, BLOCK * dqk * 4, group * BLOCK * 4, group * dV * 4);
  return {
    m, pq, pBlock, pLogits, pAcc,
    q: m.f32(pq, group * dqk),
    block: m.f32(pBlock, BLOCK * dqk),
    logits: m.f32(pLogits, group * BLOCK),
    acc: m.f32(pAcc, group * dV),
  };
}

/**
 * `foldBlock` on WebAssembly SIMD: the block's key rows are copied into the
 * module's memory, dots and p.v run as f32x4 (`dotRows`, `axpyRows`), the
 * softmax bookkeeping stays here in float64. The accumulators are float32
 * (`buf.acc`); the caller has copied the group's query heads into `buf.q`.
 * `consecutive`: the block's keys are known to be k, k+1, ... (dense).
 */
export function foldBlockSimd(
  ws: Workspace,
  buf: SimdBuffers,
  group: number,
  dqk: number,
  kv: Float32Array,
  kvStride: number,
  kvHead: number,
  first: number,
  count: number,
  dV: number,
  smScale: number,
  biased: boolean,
  consecutive: boolean,
): void {
  const { keys, bias, max, sum } = ws;
  const { m, block, logits, acc } = buf;
  const e = m.exports as unknown as AttentionExports;
  if (consecutive && kvStride === dqk) {
    // Keys first .. first + count - 1 of the only kv head (dense): one copy.
    const at = keys[first] * dqk;
    block.set(kv.subarray(at, at + count * dqk));
  } else {
    for (let kb = 0; kb < count; kb++) {
      const at = keys[first + kb] * kvStride + kvHead;
      block.set(kv.subarray(at, at + dqk), kb * dqk);
    }
  }
  e.attnLogits(buf.pq, group, buf.pBlock, (count + 3) & ~3, dqk, buf.pLogits, BLOCK);
  for (let i = 0; i < group; i++) {
    const row = i * BLOCK;
    let blockMax = -Infinity;
    for (let kb = 0; kb < count; kb++) {
      const l = logits[row + kb] * smScale + (biased ? bias[kb] : 0);
      bias[BLOCK + kb] = l;
      if (l > blockMax) blockMax = l;
    }
    const oldMax = max[i];
    if (blockMax > oldMax) {
      const scale = Math.exp(oldMax - blockMax);
      if (scale !== 1) {
        sum[i] *= scale;
        const a = i * dV;
        for (let d = 0; d < dV; d++) acc[a + d] *= scale;
      }
      max[i] = blockMax;
    }
    const mx = max[i];
    let total = 0;
    for (let kb = 0; kb < count; kb++) {
      const p = mx === -Infinity ? 0 : Math.exp(bias[BLOCK + kb] - mx);
      logits[row + kb] = p;
      total += p;
    }
    sum[i] += total;
  }
  e.attnAccumulate(buf.pLogits, BLOCK, group, buf.pBlock, count, dqk, dV, buf.pAcc, dV);
}

/**
 * Writes the group's heads: out = acc / (sum + exp(sink - max)),
 * lse = max + log(sum), maxLogits = max (the sink weighs in the denominator
 * only, as FlashMLA's `attn_sink`; lse and maxLogits stay those of the keys).
 * `kept` false (no key kept or valid) writes FlashMLA's empty row: out 0,
 * lse = +Infinity (so exp(logit - lse) is 0), maxLogits = -Infinity. Head i
 * goes to row `headRow + i` of out (`[.., dV]`), lse and maxLogits
 * (`maxLogits` may be null); its sink is `sink[sinkHead + i]` (`sink` null: none).
 */
export function finishGroup(
  ws: Workspace,
  group: number,
  dV: number,
  kept: boolean,
  out: Float32Array | Float64Array,
  lse: Float32Array | Float64Array,
  maxLogits: Float32Array | Float64Array | null,
  headRow: number,
  acc: Float32Array | Float64Array = ws.acc,
  sink: Float32Array | null = null,
  sinkHead = 0,
): void {
  const { max, sum } = ws;
  for (let i = 0; i < group; i++) {
    const o = (headRow + i) * dV;
    if (!kept || !(sum[i] > 0)) {
      out.fill(0, o, o + dV);
      lse[headRow + i] = Infinity;
      if (maxLogits) maxLogits[headRow + i] = -Infinity;
      continue;
    }
    const inv = 1 / (sink === null ? sum[i] : sum[i] + Math.exp(sink[sinkHead + i] - max[i]));
    const a = i * dV;
    for (let d = 0; d < dV; d++) out[o + d] = acc[a + d] * inv;
    lse[headRow + i] = max[i] + Math.log(sum[i]);
    if (maxLogits) maxLogits[headRow + i] = max[i];
  }
}
