// Attention benchmark: sparse (gathered) attention against dense masked
// attention, ours and onnxruntime-node's, at MLA decode-like shapes
// (t = 64 queries, hq = 16, hkv = 1, dqk = 576, dV = 512, k = 2048) over
// s in {8192, 32768, 131072}.
//
//   npx tsx bench/attention.ts [--smoke] [--s 8192,32768] [--reps 9] [--dense-rows 4]
//
// Seeded data, a warm-up, repetitions, medians and a sink. Our dense path runs
// on the first `--dense-rows` query rows only and is extrapolated to t rows
// (its cost per row is the same for every row; the table says so). Every
// peer result is checked against sparse attention on the same rows.
import { writeFileSync, mkdirSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { sparseAttention } from '../src/attention/sparse.js';
import { denseAttention } from '../src/attention/dense.js';
import { createPool } from '../src/pool/index.js';
import { DEFAULT_MASK_VALUE, allocShared, type Tensor } from '../src/tensor.js';
import { denseAttentionModel } from './attention-onnx.js';

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const option = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};

const smoke = flag('smoke');
const shape = smoke ? { t: 8, hq: 4, hkv: 1, dqk: 64, dV: 48, k: 32 } : { t: 64, hq: 16, hkv: 1, dqk: 576, dV: 512, k: 2048 };
const sizes = option('s', smoke ? '128,512' : '8192,32768,131072').split(',').map(Number);
// Sparse runs are short: more repetitions; dense and the peer are long: fewer.
const reps = Number(option('reps', smoke ? '2' : '9'));
const denseRows = Number(option('dense-rows', smoke ? '8' : '4'));
const ortBlock = smoke ? 4 : 16;
const { t, hq, hkv, dqk, dV, k } = shape;
const smScale = 1 / Math.sqrt(dqk);

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function sharedFloats(shape: number[], seed: number): Tensor<Float32Array> {
  const next = rng(seed);
  const data = allocShared(Float32Array, shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = next() * 2 - 1;
  return { data, shape };
}

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

async function measure(fn: () => Promise<ArrayLike<number>> | ArrayLike<number>, repetitions: number, warmup = 1): Promise<number[]> {
  for (let i = 0; i < warmup; i++) sink += (await fn())[0];
  const times: number[] = [];
  for (let i = 0; i < repetitions; i++) {
    const t0 = performance.now();
    const out = await fn();
    times.push(performance.now() - t0);
    sink += out[0];
  }
  return times;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Max abs difference over the first `n` values, relative to the largest reference value. */
function check(label: string, got: ArrayLike<number>, want: ArrayLike<number>, n: number, tol: number): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < n; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  const rel = err / scale;
  if (!(rel <= tol)) throw new Error(`${label}: result differs from sparse attention: max abs err ${err} (${rel} of max |out|)`);
  return rel;
}

function bitIdentical(label: string, a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) throw new Error(`${label}: not bit-identical at ${i}: ${a[i]} vs ${b[i]}`);
}

interface Row { s: number; method: string; threads: number; rowsRun: number; medianMs: number; timesMs: number[]; rssMiB: number; relErr?: number }

const pool = createPool({ threads: 2 });
const results: Row[] = [];
const mib = (b: number) => Math.round(b / 2 ** 20);
const record = (row: Omit<Row, 'rssMiB'>) => {
  const r = { ...row, rssMiB: mib(process.memoryUsage().rss) };
  results.push(r);
  console.error(`  s=${r.s} ${r.method} x${r.threads}: ${r.medianMs.toFixed(1)} ms (rows run ${r.rowsRun}), rss ${r.rssMiB} MiB`);
};

try {
  for (const s of sizes) {
    console.error(`s = ${s}`);
    const q = sharedFloats([t, hq, dqk], 1);
    const kv = sharedFloats([s, hkv, dqk], 2);
    const indices = distinctIndices(s, 3);
    const mask = additiveMask(indices, s);
    const opts = { dV, smScale };

    const sparse = sparseAttention(q, kv, indices, opts);
    const sparse1 = await measure(() => sparseAttention(q, kv, indices, opts).out.data, reps);
    record({ s, method: 'sparse', threads: 1, rowsRun: t, medianMs: median(sparse1), timesMs: sparse1 });

    bitIdentical('sparse pool', (await pool.sparseAttention(q, kv, indices, opts)).out.data, sparse.out.data);
    const sparse2 = await measure(async () => (await pool.sparseAttention(q, kv, indices, opts)).out.data, reps);
    record({ s, method: 'sparse', threads: 2, rowsRun: t, medianMs: median(sparse2), timesMs: sparse2 });

    // Ours, dense: the first denseRows rows, extrapolated to t (one warm-up row).
    const rows: [number, number] = [0, denseRows];
    const denseRep = Math.max(1, Math.min(reps, smoke ? reps : 2));
    const dense = denseAttention(q, kv, mask, { ...opts, rows: [0, 1] });
    check('dense warm-up', dense.out.data, sparse.out.data, hq * dV, 1e-4);
    let denseOut: ArrayLike<number> = new Float32Array(0);
    const dense1 = await measure(() => (denseOut = denseAttention(q, kv, mask, { ...opts, rows }).out.data), denseRep, 0);
    const denseErr = check('dense', denseOut, sparse.out.data, denseRows * hq * dV, 1e-4);
    record({ s, method: 'dense', threads: 1, rowsRun: denseRows, medianMs: (median(dense1) * t) / denseRows, timesMs: dense1, relErr: denseErr });
    const dense2 = await measure(async () => (denseOut = (await pool.denseAttention(q, kv, mask, { ...opts, rows })).out.data), denseRep, 0);
    check('dense pool', denseOut, sparse.out.data, denseRows * hq * dV, 1e-4);
    record({ s, method: 'dense', threads: 2, rowsRun: denseRows, medianMs: (median(dense2) * t) / denseRows, timesMs: dense2 });

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
    const ort2 = await measure(runOrt, Math.max(1, Math.min(reps, 3)));
    const ortErr = check('onnxruntime-node', ortOut, sparse.out.data, ortOut.length, 1e-4);
    record({ s, method: 'onnxruntime-node dense', threads: 2, rowsRun: t, medianMs: median(ort2), timesMs: ort2, relErr: ortErr });
    await session.release();
  }
} finally {
  await pool.close();
}

const get = (s: number, method: string, threads: number) => results.find((r) => r.s === s && r.method === method && r.threads === threads)!.medianMs;
const s0 = sizes[0];
const table = [
  `| s | sparse 1T ms | sparse 2T ms | dense 1T ms* | dense 2T ms* | onnxruntime dense 2T ms | dense/sparse (1T) | dense/sparse (2T) | ort/sparse (2T) | sparse 2T speedup | sparse vs s=${s0} (1T) |`,
  '|---|---|---|---|---|---|---|---|---|---|---|',
  ...sizes.map((s) => {
    const [a, b, c, d, e] = [get(s, 'sparse', 1), get(s, 'sparse', 2), get(s, 'dense', 1), get(s, 'dense', 2), get(s, 'onnxruntime-node dense', 2)];
    const f = (x: number) => x.toFixed(x < 100 ? 1 : 0);
    return `| ${s} | ${f(a)} | ${f(b)} | ${f(c)} | ${f(d)} | ${f(e)} | ${(c / a).toFixed(1)}x | ${(d / b).toFixed(1)}x | ${(e / b).toFixed(2)}x | ${(a / b).toFixed(2)}x | ${(a / get(s0, 'sparse', 1)).toFixed(2)}x |`;
  }),
].join('\n');
const peakRssMiB = mib(process.resourceUsage().maxRSS * 1024);
console.log(
  `attention: t=${t} hq=${hq} hkv=${hkv} dqk=${dqk} dV=${dV} k=${k}; medians of ${reps} (dense and onnxruntime: of 2 and 3; ${denseRows} rows extrapolated to ${t}, *); peak RSS ${peakRssMiB} MiB\n\n${table}`,
);
console.log(`(sink ${sink.toFixed(3)})`);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const file = new URL(smoke ? './results/attention.smoke.tmp' : './results/attention.json', import.meta.url);
writeFileSync(
  file,
  JSON.stringify({ date: new Date().toISOString(), node: process.version, shape, sizes, reps, denseRows, ortBlock, peakRssMiB, results }, null, 1),
);
