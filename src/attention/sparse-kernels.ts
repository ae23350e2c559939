/**
 * The sparse attention kernel and its reference (the plan and the public
 * edge are in sparse.ts): each query row attends to the distinct valid keys
 * its indices name, by an online softmax over blocks of them.
 *
 * Work is split into tiles of (query row, kv head, chunk of that head's
 * query heads), numbered row-major: tile = (r * hkv + g) * chunks + c. One
 * decode row (t = 1) with 128 query heads is then several tiles the pool
 * can run at once, while a thread given consecutive tiles of one row runs
 * them as one pass. Each head's result depends only on its own keys and
 * blocks, so any split gives bit-identical output.
 *
 * Kernel args: q [t,hq,dqk], kv [s,hkv,dqk], indices [t,hkv,k] (read);
 * out [rows,hq,dV], lse [rows,hq], maxLogits [rows,hq] (written, row r at
 * r - rowOffset); sizes s, hq, hkv, dqk, dV, k, smScale, assumeUnique,
 * rowOffset, headChunk (query heads per tile; `chunks` = ceil(group / headChunk));
 * per-row key ranges lo, hi (Int32Array [t] or null: every key in [0, s))
 * and base (ragged: kv row of position 0, or null); topkLength (Int32Array
 * [t] or null: the first topkLength[r] slots are read); attnSink
 * (Float32Array [hq] or null); simd: use the WebAssembly SIMD module where
 * this thread has it.
 */
import type { KernelArgs } from '../plan.js';
import { BLOCK, dot, finishGroup, foldBlock, foldBlockSimd, getWorkspace, resetGroup, rowArgs } from './online.js';

interface SparseArgs {
  indices: Int32Array;
  maxLogits: Float32Array;
  k: number;
  assumeUnique: boolean;
  headChunk: number;
  lo: Int32Array | null;
  hi: Int32Array | null;
  base: Int32Array | null;
  topkLength: Int32Array | null;
  attnSink: Float32Array | null;
}

/**
 * Gathers the valid, distinct keys of slots [0, slots) of row r, kv head g
 * into `keys` (kv row numbers), in slot order; returns how many.
 */
function gatherKeys(a: SparseArgs, s: number, hkv: number, r: number, g: number, keys: Int32Array, seen: Uint32Array): number {
  const { indices, assumeUnique, lo, hi, base, topkLength } = a;
  const from = (r * hkv + g) * a.k;
  const slots = topkLength === null ? a.k : topkLength[r];
  // Positions a row may name: [lo, hi) with per-row ranges, else [0, s).
  const first = lo === null ? 0 : lo[r];
  const last = hi === null ? s : hi[r];
  const shift = base === null ? 0 : base[r];
  let n = 0;
  if (assumeUnique) {
    for (let i = 0; i < slots; i++) {
      const j = indices[from + i];
      if (j >= first && j < last) keys[n++] = j + shift;
    }
    return n;
  }
  for (let i = 0; i < slots; i++) {
    const j = indices[from + i];
    if (j < first || j >= last) continue;
    const bit = 1 << (j & 31);
    if ((seen[j >>> 5] & bit) === 0) {
      seen[j >>> 5] |= bit;
      keys[n++] = j + shift;
    }
  }
  // Every bit set in these words belongs to a listed key: zero them whole.
  for (let i = 0; i < n; i++) seen[(keys[i] - shift) >>> 5] = 0;
  return n;
}

export function sparseAttentionRows(args: KernelArgs, tileStart: number, tileEnd: number): void {
  const a = args as unknown as SparseArgs;
  const { q, kv, out, lse, s, hq, hkv, dqk, dV, smScale, rowOffset, group, kvStride, buf } = rowArgs(args);
  const chunks = Math.ceil(group / a.headChunk);
  // Positions are < s, or (ragged) < the longest sequence, which is <= s too.
  const ws = getWorkspace(group, dV, a.k, a.assumeUnique ? 0 : s);
  const { keys, seen } = ws;
  // Consecutive tiles of one (row, kv head) run as one pass over its keys with all their heads:
  // the key rows are copied into the module's memory once, not once per tile.
  for (let tile = tileStart; tile < tileEnd; ) {
    const rg = Math.floor(tile / chunks);
    const c0 = tile - rg * chunks;
    const c1 = Math.min(chunks, c0 + (tileEnd - tile));
    tile += c1 - c0;
    const r = Math.floor(rg / hkv);
    const g = rg - r * hkv;
    const n = gatherKeys(a, s, hkv, r, g, keys, seen);
    const h0 = g * group + c0 * a.headChunk; // first query head of the pass
    const nh = Math.min(c1 * a.headChunk, group) - c0 * a.headChunk;
    resetGroup(ws, nh, dV);
    const qBase = (r * hq + h0) * dqk;
    const headRow = (r - rowOffset) * hq + h0;
    if (buf) {
      buf.q.set(q.subarray(qBase, qBase + nh * dqk));
      buf.acc.fill(0);
      for (let first = 0; first < n; first += BLOCK) {
        foldBlockSimd(ws, buf, nh, dqk, kv, kvStride, g * dqk, first, Math.min(BLOCK, n - first), dV, smScale, false, false);
      }
      finishGroup(ws, nh, dV, n > 0, out, lse, a.maxLogits, headRow, buf.acc, a.attnSink, h0);
      continue;
    }
    for (let first = 0; first < n; first += BLOCK) {
      foldBlock(ws, q, qBase, nh, dqk, kv, kvStride, g * dqk, first, Math.min(BLOCK, n - first), dV, smScale, false);
    }
    finishGroup(ws, nh, dV, n > 0, out, lse, a.maxLogits, headRow, ws.acc, a.attnSink, h0);
  }
}

/**
 * The plain reference, by rows (one tile per row, every head): a two-pass
 * softmax per (row, head) over the distinct valid keys among the first
 * topkLength[r] slots, float64 throughout (out/lse/maxLogits may be
 * Float64Array). The sink adds exp(sink) to the denominator of out only;
 * a row with no valid key gets out 0, lse +Infinity, maxLogits -Infinity.
 */
export function sparseAttentionReference(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const q = args.q as Float32Array;
  const kv = args.kv as Float32Array;
  const indices = args.indices as Int32Array;
  const [out, lse, maxLogits] = [args.out, args.lse, args.maxLogits] as (Float32Array | Float64Array)[];
  const [s, hq, hkv, dqk, dV, topK, smScale, rowOffset] = ['s', 'hq', 'hkv', 'dqk', 'dV', 'k', 'smScale', 'rowOffset'].map((n) => args[n] as number);
  const [lo, hi, base, topkLength] = [args.lo, args.hi, args.base, args.topkLength].map((x) => (x ?? null) as Int32Array | null);
  const sink = (args.attnSink ?? null) as Float32Array | null;
  for (let r = rowStart; r < rowEnd; r++) {
    const valid = (j: number) => j >= (lo ? lo[r] : 0) && j < (hi ? hi[r] : s);
    const slotCount = topkLength ? topkLength[r] : topK;
    for (let h = 0; h < hq; h++) {
      const g = Math.floor(h / (hq / hkv));
      const slots = Array.from(indices.subarray((r * hkv + g) * topK, (r * hkv + g) * topK + slotCount));
      const keys = [...new Set(slots.filter(valid))].map((j) => j + (base ? base[r] : 0)); // [n] kv rows
      const logits = keys.map((j) => dot(q, (r * hq + h) * dqk, kv, (j * hkv + g) * dqk, dqk) * smScale); // [n]
      const m = Math.max(...logits);
      const p = logits.map((l) => Math.exp(l - m)); // [n]
      const sum = p.reduce((x, y) => x + y, 0);
      const denominator = sink ? sum + Math.exp(sink[h] - m) : sum;
      const o = ((r - rowOffset) * hq + h) * dV;
      for (let d = 0; d < dV; d++) {
        out[o + d] = keys.length ? keys.reduce((x, j, i) => x + p[i] * kv[(j * hkv + g) * dqk + d], 0) / denominator : 0;
      }
      lse[(r - rowOffset) * hq + h] = keys.length ? m + Math.log(sum) : Infinity;
      maxLogits[(r - rowOffset) * hq + h] = keys.length ? m : -Infinity;
    }
  }
}
