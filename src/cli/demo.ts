/**
 * `dsa demo`: the whole DSA pipeline on seeded synthetic inputs: lightning
 * indexer scores, exact top-k, the mask in every strategy (broadcast, the
 * reference; scatter; MaxText's threshold form), dense masked attention
 * (the reference) and mask-free sparse attention. It prints a table of
 * time, memory and agreement with the reference, sweeps s for the
 * complexity plot, and writes a self-contained HTML report. The command and
 * its flags are in demo-command.ts, which loads this file when it runs.
 */
import { indexerScores } from '../indexer/scores.js';
import { topk } from '../topk/topk.js';
import { generateMask, maskFromThreshold, combineMasks, causalMask } from '../mask/masks.js';
import { denseAttention } from '../attention/dense.js';
import { sparseAttention } from '../attention/sparse.js';
import { lightningIndexer } from '../indexer/module.js';
import { initSimd } from '../simd/index.js';
import { formatBytes } from '../validate.js';
import type { MaskData, Tensor } from '../tensor.js';
import { attentionInputs, indexerInputs, normals, rng, type DemoShape } from './demo-data.js';

/** What one run computes: the flags of `dsa demo` (demo-command.ts) or the web page's form. */
export interface DemoConfig extends DemoShape {
  k: number;
  hq: number;
  dqk: number;
  dV: number;
  seed: number;
  /** 1: everything on this thread; more: the worker pool. */
  threads: number;
  causal: boolean;
  /** Also run the full lightningIndexer module (projections, LayerNorm, RoPE) on seeded random weights of model width `dim`, low-rank `qRank`. */
  module: boolean;
  dim: number;
  qRank: number;
  /** Key counts for the time-against-s sweep (each run on `sweepRows` queries). */
  sweep: number[];
  sweepRows: number;
}

export interface StrategyRow {
  stage: 'indexer' | 'top-k' | 'mask' | 'attention';
  strategy: string;
  ms: number;
  bytes: number;
  /** 'reference', 'bit-exact', 'within tolerance', 'MISMATCH' or '' (not compared). */
  match: string;
  detail: string;
}

export interface SweepPoint {
  s: number;
  strategy: string;
  /** Milliseconds per query row. */
  msPerRow: number;
}

export interface DemoResult {
  config: DemoConfig;
  rows: StrategyRow[];
  sweep: SweepPoint[];
  /** Kept keys of the first batch, [t, s] as 0/1 bytes, with the causal limit, for the picture. */
  selected: { t: number; s: number; kept: Uint8Array; offset: number | null };
  totalMs: number;
  ok: boolean;
}

/** The library calls the demo makes, on this thread or on the pool (bit-identical either way). */
export interface Api {
  indexerScores: (...a: Parameters<typeof indexerScores>) => Promise<Tensor<Float32Array>>;
  topk: (...a: Parameters<typeof topk>) => Promise<ReturnType<typeof topk>>;
  generateMask: (...a: Parameters<typeof generateMask>) => Promise<Tensor<MaskData>>;
  maskFromThreshold: (...a: Parameters<typeof maskFromThreshold>) => Promise<Tensor<MaskData>>;
  combineMasks: (...a: Parameters<typeof combineMasks>) => Promise<Tensor<MaskData>>;
  causalMask: (...a: Parameters<typeof causalMask>) => Promise<Tensor<MaskData>>;
  denseAttention: (...a: Parameters<typeof denseAttention>) => Promise<ReturnType<typeof denseAttention>>;
  sparseAttention: (...a: Parameters<typeof sparseAttention>) => Promise<ReturnType<typeof sparseAttention>>;
  lightningIndexer: (...a: Parameters<typeof lightningIndexer>) => Promise<ReturnType<typeof lightningIndexer>>;
  close(): Promise<void>;
}

/** The library's synchronous functions behind the Api (this thread). */
export function localApi(): Api {
  return {
    indexerScores: async (...a) => indexerScores(...a),
    topk: async (...a) => topk(...a),
    generateMask: async (...a) => generateMask(...a),
    maskFromThreshold: async (...a) => maskFromThreshold(...a),
    combineMasks: async (...a) => combineMasks(...a),
    causalMask: async (...a) => causalMask(...a),
    denseAttention: async (...a) => denseAttention(...a),
    sparseAttention: async (...a) => sparseAttention(...a),
    lightningIndexer: async (...a) => lightningIndexer(...a),
    close: async () => {},
  };
}

/**
 * Times `fn`: once when `budgetMs` is 0; otherwise, for the sweep, a run
 * that is quick (under the budget) counts as warm-up and `fn` repeats until
 * the budget is spent (at most 25 runs), so cheap strategies on small blocks
 * are not lost in timer and JIT noise. The last value and the median time.
 */
async function timedReps<R>(budgetMs: number, fn: () => Promise<R>): Promise<{ value: R; ms: number }> {
  const times: number[] = [];
  let value!: R;
  let spent = 0;
  let runs = 0;
  do {
    const start = performance.now();
    value = await fn();
    const ms = performance.now() - start;
    spent += ms;
    if (runs++ > 0 || ms >= budgetMs / 2) times.push(ms); // a quick first run is warm-up
  } while (spent < budgetMs && runs < 25);
  times.sort((a, b) => a - b);
  return { value, ms: times[Math.floor(times.length / 2)] };
}

function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** The bits form of an additive mask, for comparing the bits strategy with the reference. */
function packAdditive(additive: Float32Array, rows: number, s: number): Uint32Array {
  const words = (s + 31) >>> 5;
  const out = new Uint32Array(rows * words);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < s; j++) if (additive[r * s + j] === 0) out[r * words + (j >>> 5)] |= 1 << (j & 31);
  }
  return out;
}

/** Max |a - e| and whether every element is within atol + rtol * |e| (non-finite values must agree exactly). */
function closeness(actual: Float32Array, expected: Float32Array, atol = 1e-5, rtol = 1e-4): { maxAbs: number; ok: boolean } {
  let maxAbs = 0;
  let ok = actual.length === expected.length;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (!Object.is(a, e)) ok = false;
      continue;
    }
    const diff = Math.abs(a - e);
    if (diff > maxAbs) maxAbs = diff;
    if (diff > atol + rtol * Math.abs(e)) ok = false;
  }
  return { maxAbs, ok };
}

interface PipelineTimes {
  rows: StrategyRow[];
  keptFirstBatch: Uint8Array;
}

/** One run of every stage and strategy at one shape; `onStage` ticks the progress bar. */
async function runPipeline(api: Api, c: DemoConfig, shape: DemoShape & { k: number }, onStage: (name: string) => void, budgetMs = 0): Promise<PipelineTimes> {
  const timed = <R>(fn: () => Promise<R>) => timedReps(budgetMs, fn);
  const { b, t, s, h, d, k } = shape;
  const offset = c.causal ? s - t : undefined;
  const rows: StrategyRow[] = [];
  const { q, k: keys, w } = indexerInputs(shape, c.seed);
  onStage('indexer scores');
  const scores = await timed(() =>
    api.indexerScores({ data: q, shape: [b, t, h, d] }, { data: keys, shape: [b, s, d] }, { data: w, shape: [b, t, h] }, { weightScale: 1 / Math.sqrt(h * d), causalOffset: offset }),
  );
  rows.push({ stage: 'indexer', strategy: 'lightning indexer scores', ms: scores.ms, bytes: scores.value.data.byteLength, match: '', detail: `[${b}, ${t}, ${s}] from h = ${h}, d = ${d}` });

  onStage('top-k');
  const top = await timed(() => api.topk(scores.value, k, { causalOffset: offset }));
  const checkRows = Math.min(16, b * t);
  const reference = topk(scores.value, k, { causalOffset: offset, rows: [0, checkRows], kernel: 'sort' });
  const topOk = sameBytes(reference.indices.data, top.value.indices.data.subarray(0, checkRows * k)) &&
    sameBytes(reference.values.data, top.value.values.data.subarray(0, checkRows * k));
  rows.push({
    stage: 'top-k', strategy: 'radix select', ms: top.ms, bytes: top.value.indices.data.byteLength + top.value.values.data.byteLength,
    match: topOk ? 'bit-exact' : 'MISMATCH', detail: `k = ${k}; against the sort reference on rows 0..${checkRows - 1}`,
  });
  const indices = top.value.indices;

  onStage('mask: broadcast');
  const broadcast = await timed(() => api.generateMask(indices, s, { strategy: 'broadcast' }));
  const ref = broadcast.value.data as Float32Array;
  rows.push({ stage: 'mask', strategy: 'broadcast', ms: broadcast.ms, bytes: ref.byteLength, match: 'reference', detail: `O(b*t*k*s); never builds the [b, t, k, s] compare (${formatBytes(b * t * k * s)} as bool)` });

  onStage('mask: scatter');
  const scatter = await timed(() => api.generateMask(indices, s));
  rows.push({ stage: 'mask', strategy: 'scatter', ms: scatter.ms, bytes: scatter.value.data.byteLength, match: sameBytes(scatter.value.data, ref) ? 'bit-exact' : 'MISMATCH', detail: 'O(b*t*s + b*t*k)' });

  onStage('mask: scatter, bits');
  const bits = await timed(() => api.generateMask(indices, s, { form: 'bits' }));
  rows.push({ stage: 'mask', strategy: 'scatter, bits form', ms: bits.ms, bytes: bits.value.data.byteLength, match: sameBytes(bits.value.data, packAdditive(ref, b * t, s)) ? 'bit-exact' : 'MISMATCH', detail: '32 keys per uint32 word' });

  onStage('mask: threshold');
  const threshold = await timed(async () => {
    const m = await api.maskFromThreshold(scores.value, top.value.values);
    // MaxText re-applies the causal mask after selecting: a row with fewer
    // than k eligible keys would otherwise fill up with -inf ties.
    return offset === undefined ? m : api.combineMasks(m, await api.causalMask(b, t, s, offset));
  });
  rows.push({ stage: 'mask', strategy: 'threshold (exact)', ms: threshold.ms, bytes: threshold.value.data.byteLength, match: sameBytes(threshold.value.data, ref) ? 'bit-exact' : 'MISMATCH', detail: "MaxText's merged form, ties by increasing key" + (offset === undefined ? '' : ', then the causal mask') });

  const att = attentionInputs(t, s, c.hq, c.dqk, c.seed);
  const qT = { data: att.q, shape: [t, c.hq, c.dqk] };
  const kvT = { data: att.kv, shape: [s, 1, c.dqk] };
  let denseMs = 0;
  let sparseMs = 0;
  let maxAbs = 0;
  let attOk = true;
  let outBytes = 0;
  onStage('attention: dense');
  const denseOuts: Float32Array[] = [];
  for (let bi = 0; bi < b; bi++) {
    const mask = { data: ref.subarray(bi * t * s, (bi + 1) * t * s), shape: [t, 1, s] };
    const dense = await timed(() => api.denseAttention(qT, kvT, mask, { dV: c.dV }));
    denseMs += dense.ms;
    denseOuts.push(dense.value.out.data);
    outBytes += dense.value.out.data.byteLength + dense.value.lse.data.byteLength;
  }
  onStage('attention: sparse');
  for (let bi = 0; bi < b; bi++) {
    const idx = { data: indices.data.subarray(bi * t * k, (bi + 1) * t * k), shape: [t, 1, k] };
    const sparse = await timed(() => api.sparseAttention(qT, kvT, idx, { dV: c.dV }));
    sparseMs += sparse.ms;
    const close = closeness(sparse.value.out.data, denseOuts[bi]);
    maxAbs = Math.max(maxAbs, close.maxAbs);
    attOk &&= close.ok;
  }
  rows.push({ stage: 'attention', strategy: 'dense masked', ms: denseMs, bytes: outBytes + ref.byteLength, match: 'reference', detail: `q [${t}, ${c.hq}, ${c.dqk}], kv [${s}, 1, ${c.dqk}], dV = ${c.dV}; O(t*s*d); reads the additive mask` });
  rows.push({ stage: 'attention', strategy: 'sparse (mask-free)', ms: sparseMs, bytes: outBytes, match: attOk ? 'within tolerance' : 'MISMATCH', detail: `O(t*k*d), FlashMLA's interface; max |out - dense| = ${maxAbs.toExponential(1)}` });

  const kept = new Uint8Array(t * s);
  for (let i = 0; i < t * s; i++) kept[i] = ref[i] === 0 ? 1 : 0;
  return { rows, keptFirstBatch: kept };
}

/**
 * The full indexer module on seeded random weights (DeepSeek-V3.2 shapes by
 * default): the t new tokens' hidden states and low-rank queries, the s - t
 * earlier keys as the cache. Checked against top-k of its own scores.
 */
async function runModule(api: Api, c: DemoConfig): Promise<StrategyRow> {
  const { t, s, h, d, k, dim, qRank } = c;
  const random = rng(c.seed ^ 0x2545f491);
  const weights = {
    wqB: { data: normals(random, h * d * qRank, 1 / Math.sqrt(qRank)), shape: [h * d, qRank] },
    wk: { data: normals(random, d * dim, 1 / Math.sqrt(dim)), shape: [d, dim] },
    kNormWeight: { data: new Float32Array(d).fill(1), shape: [d] },
    kNormBias: { data: new Float32Array(d), shape: [d] },
    weightsProj: { data: normals(random, h * dim, 1 / Math.sqrt(dim)), shape: [h, dim] },
  };
  const x = { data: normals(random, t * dim), shape: [1, t, dim] };
  const qr = { data: normals(random, t * qRank), shape: [1, t, qRank] };
  const sPast = s - t;
  const kCache = sPast > 0 ? { data: normals(random, sPast * d), shape: [1, sPast, d] } : undefined;
  const start = performance.now();
  const result = await api.lightningIndexer(weights, { x, qr, kCache }, { topK: k, causal: c.causal, ropeDim: Math.min(64, d & ~1) });
  const ms = performance.now() - start;
  const own = topk(result.scores, result.indices.shape[2], c.causal ? { causalOffset: sPast } : {});
  const ok = sameBytes(own.indices.data, result.indices.data) && sameBytes(own.values.data, result.values.data);
  return {
    stage: 'indexer', strategy: 'lightningIndexer module', ms,
    bytes: result.scores.data.byteLength + result.indices.data.byteLength + result.values.data.byteLength,
    match: ok ? 'bit-exact' : 'MISMATCH',
    detail: `projections (dim = ${dim}, q rank = ${qRank}), LayerNorm, RoPE, scores, top-k on seeded random weights; against top-k of its own scores`,
  };
}

function sweepShapes(c: DemoConfig): number[] {
  return [...new Set(c.sweep.filter((s) => s >= 1).sort((x, y) => x - y))];
}

/** Opens what the demo's main run calls: a worker pool (Node's or a browser's createPool), or more (the page's WebGPU path). */
export type OpenPool = (threads: number) => Promise<Api>;

/**
 * Runs the demo; `onStage(name, done, total)` reports progress. The main
 * run goes to what `openPool` opens (the Node pool for `dsa demo --threads
 * 2`; the page's pool and GPU), closed at the end; without it, this thread.
 * The sweep always runs on this thread.
 */
export async function runDemo(
  c: DemoConfig,
  onStage: (name: string, done: number, total: number) => void = () => {},
  openPool?: OpenPool,
): Promise<DemoResult> {
  const start = performance.now();
  await initSimd();
  const sweep = sweepShapes(c);
  const stagesPerRun = 8;
  const total = stagesPerRun * (1 + sweep.length);
  let done = 0;
  const tick = (prefix: string) => (name: string) => onStage(`${prefix}${name}`, done++, total);
  const api = openPool ? await openPool(c.threads) : localApi();
  try {
    const main = await runPipeline(api, c, c, tick(''));
    if (c.module) {
      onStage('indexer module', done, total);
      main.rows.splice(1, 0, await runModule(api, c));
    }
    const points: SweepPoint[] = [];
    // The sweep measures how each strategy scales, so it runs on this thread
    // (no dispatch overhead on small blocks), each timing repeated for ~100 ms after a warm-up run.
    for (const s of sweep) {
      const shape = { b: 1, t: Math.min(c.sweepRows, s), s, h: c.h, d: c.d, k: Math.min(c.k, s) };
      const run = await runPipeline(localApi(), c, shape, tick(`sweep s=${s}: `), 100);
      for (const row of run.rows) {
        const name = row.stage === 'mask' || row.stage === 'attention' ? `${row.stage}: ${row.strategy}` : row.stage === 'indexer' ? 'indexer scores' : 'top-k';
        points.push({ s, strategy: name, msPerRow: row.ms / shape.t });
      }
    }
    onStage('done', total, total);
    const rows = main.rows;
    return {
      config: c,
      rows,
      sweep: points,
      selected: { t: c.t, s: c.s, kept: main.keptFirstBatch, offset: c.causal ? c.s - c.t : null },
      totalMs: performance.now() - start,
      ok: rows.every((r) => r.match !== 'MISMATCH'),
    };
  } finally {
    await api.close();
  }
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : ms >= 10 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`;
}

/** The table `dsa demo` prints. */
export function formatTable(result: DemoResult): string {
  const header = ['stage', 'strategy', 'time', 'memory', 'matches the reference'];
  const body = result.rows.map((r) => [r.stage, r.strategy, formatMs(r.ms), formatBytes(r.bytes), r.match || '-']);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 2 || i === 3 ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
