// Attention benchmark: sparse (gathered) attention against dense masked
// attention, ours and onnxruntime-node's, at MLA decode-like shapes
// (t = 64 queries, hq = 16, hkv = 1, dqk = 576, dV = 512, k = 2048) over
// s in {8192, 32768, 131072}.
//
//   npx tsx bench/attention.ts [--smoke] [--s 8192,32768] [--reps 15] [--dense-rows 8]
//
// Seeded data, a warm-up, repetitions, medians and a sink. Our dense path runs
// on the first `--dense-rows` query rows only and is extrapolated to t rows
// (its cost per row is the same for every row; the table says so). Every
// peer result is checked against sparse attention on the same rows.
import { loadavg } from 'node:os';
import * as ort from 'onnxruntime-node';
import { sparseAttention } from '../src/attention/sparse.js';
import { denseAttention } from '../src/attention/dense.js';
import { createPool } from '../src/pool/index.js';
import { DEFAULT_MASK_VALUE, allocShared, type Tensor } from '../src/tensor.js';
import { denseAttentionModel } from './attention-onnx.js';
import { bitIdentical, checkClose, flag, median, mib, option, peakRssMiB as peakRss, rng, sharedFloats, writeResults } from './common.js';

const smoke = flag('smoke');
const shape = smoke ? { t: 8, hq: 4, hkv: 1, dqk: 64, dV: 48, k: 32 } : { t: 64, hq: 16, hkv: 1, dqk: 576, dV: 512, k: 2048 };
const sizes = (option('s') ?? (smoke ? '128,512' : '8192,32768,131072')).split(',').map(Number);
// Sparse runs are short: more repetitions; dense and the peer are long: fewer.
const reps = Number(option('reps') ?? (smoke ? '2' : '15'));
const denseRows = Number(option('dense-rows') ?? '8');
const ortBlock = smoke ? 4 : 16;
const { t, hq, hkv, dqk, dV, k } = shape;
const smScale = 1 / Math.sqrt(dqk);

/** k distinct keys per (row, kv head), as top-k would select. */
function distinctIndices(s: number, seed: number): Tensor<Int32Array> {
  const next = rng(seed);
  const data = allocShared(Int32Array, t * hkv * k);
  const seen = new Int32Array(s);
  for (let row = 0; row < t * hkv; row++) {
    for (let i = 0; i < k; ) {
      const j = Math.floor(next() * s);
      if (seen[j] === row + 1) continue;
      seen[j] = row + 1;
      data[row * k + i++] = j;
    }
  }
  return { data, shape: [t, hkv, k] };
}

function additiveMask(indices: Tensor<Int32Array>, s: number): Tensor<Float32Array> {
  const data = allocShared(Float32Array, t * hkv * s).fill(DEFAULT_MASK_VALUE);
  for (let row = 0; row < t * hkv; row++) for (let i = 0; i < k; i++) data[row * s + indices.data[row * k + i]] = 0;
  return { data, shape: [t, hkv, s] };
}

let sink = 0;

/**
 * Times `peer` and then sparse attention, rep by rep, so the ratio of their
 * medians sees the same machine load (the machine is shared and noisy).
 */
async function paired(peer: () => Promise<ArrayLike<number>> | ArrayLike<number>, sparse: () => Promise<ArrayLike<number>> | ArrayLike<number>, repetitions: number) {
  const peerMs: number[] = [];
  const sparseMs: number[] = [];
  for (let i = 0; i < repetitions; i++) {
    let t0 = performance.now();
    sink += (await peer())[0];
    peerMs.push(performance.now() - t0);
    t0 = performance.now();
    sink += (await sparse())[0];
    sparseMs.push(performance.now() - t0);
  }
  return { peerMs, sparseMs };
}

/** Max abs difference over the first `n` values, relative to the largest reference value. */
const check = (label: string, got: ArrayLike<number>, want: ArrayLike<number>, n: number, tol: number) =>
  checkClose(label, got, want, n, tol, 'result differs from sparse attention', 'out');

interface Row {
  s: number; method: string; threads: number; rowsRun: number; medianMs: number; timesMs: number[]; rssMiB: number; relErr?: number;
  /** The fastest repetition, scaled like medianMs (dense: extrapolated). */
  minMs?: number;
  /** Sparse attention (same threads) timed right after each repetition of this method: the ratio's denominator. */
  pairedSparseMs?: number[];
}

const loadBefore = loadavg()[0];
const pool = createPool({ threads: 2 });
// Peak RSS after the sparse runs (every s's inputs already allocated) and at the end (after onnxruntime).
let peakRssSparseMiB = 0;
const results: Row[] = [];
const record = (row: Omit<Row, 'rssMiB'>) => {
  const r = { ...row, minMs: (Math.min(...row.timesMs) * row.medianMs) / median(row.timesMs), rssMiB: mib(process.memoryUsage().rss) };
  results.push(r);
  console.error(`  s=${r.s} ${r.method} x${r.threads}: ${r.medianMs.toFixed(1)} ms (rows run ${r.rowsRun}), rss ${r.rssMiB} MiB`);
};

try {
  const q = sharedFloats([t, hq, dqk], 1);
  const opts = { dV, smScale };
  const inputs = sizes.map((s) => {
    const kv = sharedFloats([s, hkv, dqk], 2);
    const indices = distinctIndices(s, 3);
    return { s, kv, indices, sparse: sparseAttention(q, kv, indices, opts) };
  });

  // Sparse at every s and thread count, interleaved rep by rep, so the noise of
  // a shared machine falls on all of them alike (the targets are their ratios).
  const sparseTimes = new Map<string, number[]>();
  const timed = async (key: string, fn: () => Promise<unknown> | unknown) => {
    const t0 = performance.now();
    await fn();
    (sparseTimes.get(key) ?? sparseTimes.set(key, []).get(key)!).push(performance.now() - t0);
  };
  for (const { kv, indices, sparse } of inputs) {
    sink += sparseAttention(q, kv, indices, opts).out.data[0];
    bitIdentical('sparse pool', (await pool.sparseAttention(q, kv, indices, opts)).out.data, sparse.out.data);
  }
  for (let rep = 0; rep < reps; rep++) {
    for (const { s, kv, indices } of inputs) {
      await timed(`${s}/1`, () => (sink += sparseAttention(q, kv, indices, opts).out.data[1]));
      await timed(`${s}/2`, async () => (sink += (await pool.sparseAttention(q, kv, indices, opts)).out.data[1]));
    }
  }
  for (const { s } of inputs) {
    for (const threads of [1, 2]) {
      const times = sparseTimes.get(`${s}/${threads}`)!;
      record({ s, method: 'sparse', threads, rowsRun: t, medianMs: median(times), timesMs: times });
    }
  }
  peakRssSparseMiB = peakRss();

  for (const { s, kv, indices, sparse } of inputs) {
    console.error(`s = ${s}`);
    const mask = additiveMask(indices, s);

    // Ours, dense: the first denseRows rows, extrapolated to t (one warm-up row).
    const rows: [number, number] = [0, denseRows];
    const denseRep = Math.max(1, Math.min(reps, 3));
    const dense = denseAttention(q, kv, mask, { ...opts, rows: [0, 1] });
    check('dense warm-up', dense.out.data, sparse.out.data, hq * dV, 1e-4);
    const sparse1 = () => sparseAttention(q, kv, indices, opts).out.data;
    const sparse2 = async () => (await pool.sparseAttention(q, kv, indices, opts)).out.data;
    let denseOut: ArrayLike<number> = new Float32Array(0);
    const dense1 = await paired(() => (denseOut = denseAttention(q, kv, mask, { ...opts, rows }).out.data), sparse1, denseRep);
    const denseErr = check('dense', denseOut, sparse.out.data, denseRows * hq * dV, 1e-4);
    record({ s, method: 'dense', threads: 1, rowsRun: denseRows, medianMs: (median(dense1.peerMs) * t) / denseRows, timesMs: dense1.peerMs, relErr: denseErr, pairedSparseMs: dense1.sparseMs });
    const dense2 = await paired(async () => (denseOut = (await pool.denseAttention(q, kv, mask, { ...opts, rows })).out.data), sparse2, denseRep);
    check('dense pool', denseOut, sparse.out.data, denseRows * hq * dV, 1e-4);
    record({ s, method: 'dense', threads: 2, rowsRun: denseRows, medianMs: (median(dense2.peerMs) * t) / denseRows, timesMs: dense2.peerMs, pairedSparseMs: dense2.sparseMs });

    // onnxruntime-node dense: Gemm/Add/Softmax/MatMul over query blocks of ortBlock rows
    // (bounds the [block, hq, s] scores); v is kv's first dV columns, copied once outside the timing.
    const session = await ort.InferenceSession.create(denseAttentionModel(ortBlock, hq, s, dqk, dV, smScale), {
      intraOpNumThreads: 2,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    const v = new Float32Array(s * dV);
    for (let j = 0; j < s; j++) v.set(kv.data.subarray(j * hkv * dqk, j * hkv * dqk + dV), j * dV);
    // onnxruntime-node takes only ArrayBuffer-backed arrays: plain copies, made before the timing.
    const kTensor = new ort.Tensor('float32', Float32Array.from(kv.data), [s, dqk]);
    const vTensor = new ort.Tensor('float32', v, [s, dV]);
    const blocks: Record<string, ort.Tensor>[] = [];
    for (let b = 0; b < t; b += ortBlock) {
      blocks.push({
        q: new ort.Tensor('float32', q.data.slice(b * hq * dqk, (b + ortBlock) * hq * dqk), [ortBlock * hq, dqk]),
        k: kTensor,
        v: vTensor,
        mask: new ort.Tensor('float32', mask.data.slice(b * s, (b + ortBlock) * s), [ortBlock, 1, s]),
      });
    }
    const ortOut = new Float32Array(t * hq * dV);
    const runOrt = async () => {
      for (let b = 0; b < t; b += ortBlock) {
        const r = await session.run(blocks[b / ortBlock]);
        ortOut.set(r.out.data as Float32Array, b * hq * dV);
      }
      return ortOut;
    };
    sink += (await runOrt())[0];
    const ort2 = await paired(runOrt, sparse2, Math.max(1, Math.min(reps, 5)));
    const ortErr = check('onnxruntime-node', ortOut, sparse.out.data, ortOut.length, 1e-4);
    record({ s, method: 'onnxruntime-node dense', threads: 2, rowsRun: t, medianMs: median(ort2.peerMs), timesMs: ort2.peerMs, relErr: ortErr, pairedSparseMs: ort2.sparseMs });
    await session.release();
  }
} finally {
  await pool.close();
}

const find = (s: number, method: string, threads: number) => results.find((r) => r.s === s && r.method === method && r.threads === threads)!;
const get = (s: number, method: string, threads: number) => find(s, method, threads).medianMs;
/** A peer's median over the median of the sparse runs paired with it (dense: extrapolated to t rows). */
const ratio = (s: number, method: string, threads: number) => {
  const row = find(s, method, threads);
  return row.medianMs / median(row.pairedSparseMs!);
};
const s0 = sizes[0];
const table = [
  `| s | sparse 1T ms | sparse 2T ms | dense 1T ms* | dense 2T ms* | onnxruntime dense 2T ms | dense/sparse (1T) | dense/sparse (2T) | ort/sparse (2T) | sparse 2T speedup | sparse vs s=${s0} (1T / 2T) |`,
  '|---|---|---|---|---|---|---|---|---|---|---|',
  ...sizes.map((s) => {
    const [a, b, c, d, e] = [get(s, 'sparse', 1), get(s, 'sparse', 2), get(s, 'dense', 1), get(s, 'dense', 2), get(s, 'onnxruntime-node dense', 2)];
    const f = (x: number) => x.toFixed(x < 100 ? 1 : 0);
    return `| ${s} | ${f(a)} | ${f(b)} | ${f(c)} | ${f(d)} | ${f(e)} | ${ratio(s, 'dense', 1).toFixed(1)}x | ${ratio(s, 'dense', 2).toFixed(1)}x | ${ratio(s, 'onnxruntime-node dense', 2).toFixed(2)}x | ${(a / b).toFixed(2)}x | ${(a / get(s0, 'sparse', 1)).toFixed(2)}x / ${(b / get(s0, 'sparse', 2)).toFixed(2)}x |`;
  }),
].join('\n');
const peakRssMiB = peakRss();
// The machine is shared: the 1-minute load average before and after says how quiet the run was.
const load = [loadBefore, loadavg()[0]].map((x) => x.toFixed(2));
const inputMiB = mib(sizes.reduce((a, s) => a + s * hkv * dqk * 4, 0) + t * hq * dqk * 4 + sizes.length * t * hkv * k * 4);
console.log(
  `attention: t=${t} hq=${hq} hkv=${hkv} dqk=${dqk} dV=${dV} k=${k}; sparse: medians of ${reps}, all s and threads interleaved; dense (*: ${denseRows} rows, extrapolated to ${t}) and onnxruntime: medians of ${Math.min(reps, 3)} and ${Math.min(reps, 5)}, each rep followed by a sparse run whose median is the ratio's denominator\npeak RSS: ${peakRssSparseMiB} MiB after the sparse runs (inputs of every s: ${inputMiB} MiB), ${peakRssMiB} MiB at the end (dense masks and onnxruntime-node added); load average ${load[0]} before, ${load[1]} after\n\n${table}`,
);
console.log(`(sink ${sink.toFixed(3)})`);
writeResults(
  smoke ? 'attention.smoke.tmp' : 'attention.json',
  JSON.stringify({ date: new Date().toISOString(), node: process.version, shape, sizes, reps, denseRows, ortBlock, inputMiB, peakRssSparseMiB, peakRssMiB, loadAverage: load, results }, null, 1),
);
