// Lightning indexer scores benchmark: indexerScores at the prefill shape
// [1,256,16384] and the decode shape (t = 1, s = 131072), h = 64, d = 128,
// in GFLOP/s (counted as 2*t*h*s*d), for the float32 WebAssembly SIMD path,
// the int8 path and the TypeScript fallback, on 1 thread (this thread) and 2
// (the pool), against onnxruntime-node computing the same scores
// (Transpose, MatMul, Relu, MatMul with the weights) with the same threads.
// The int8 path reports its top-k overlap (recall) with the float32 top-k.
//
//   npx tsx bench/indexer.ts [--smoke] [--reps 5] [--fallback-rows 8]
//
// Seeded data, a warm-up, repetitions, medians and a sink. The fallback is
// slow, so at the prefill shape it runs the first `--fallback-rows` query
// rows and its GFLOP/s counts those rows (every row costs the same). Every
// result is checked: the pool bit-identical to one thread, the fallback and
// onnxruntime-node against the SIMD scores.
import { writeFileSync, mkdirSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { indexerScores, type IndexerScoresOptions } from '../src/indexer/scores.js';
import { lightningIndexer } from '../src/indexer/module.js';
import { quantizeKeys } from '../src/indexer/quantized-keys.js';
import { topk } from '../src/topk/topk.js';
import { createPool } from '../src/pool/index.js';
import { allocShared, type Tensor } from '../src/tensor.js';
import { OnnxType, onnxModel, onnxNode, onnxValueInfo, onnxAttr } from './onnx-model.js';

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const option = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};

const smoke = flag('smoke');
const h = smoke ? 8 : 64, d = smoke ? 32 : 128, topK = smoke ? 64 : 2048;
const cases = smoke
  ? [{ name: 'prefill', t: 8, s: 700 }, { name: 'decode', t: 1, s: 3000 }]
  : [{ name: 'prefill', t: 256, s: 16384 }, { name: 'decode', t: 1, s: 131072 }];
const reps = Number(option('reps', smoke ? '2' : '5'));
const fallbackRows = Number(option('fallback-rows', smoke ? '2' : '8'));
const ortBlock = smoke ? 4 : 32;

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

/** Max abs difference over `n` values relative to the largest |reference|; throws over `tol`. */
function check(label: string, got: ArrayLike<number>, want: ArrayLike<number>, n: number, tol: number): number {
  let err = 0, scale = 0;
  for (let i = 0; i < n; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  const rel = err / scale;
  if (!(rel <= tol)) throw new Error(`${label}: differs from the SIMD scores: max abs err ${err} (${rel} of max |score|)`);
  return rel;
}

function bitIdentical(label: string, a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) throw new Error(`${label}: not bit-identical at ${i}: ${a[i]} vs ${b[i]}`);
}

/** Mean over rows of |top-k(a) ∩ top-k(b)| / k. */
function recall(a: Float32Array, b: Float32Array, t: number, s: number): number {
  const k = Math.min(topK, s);
  const ia = topk({ data: a, shape: [1, t, s] }, k).indices.data;
  const ib = topk({ data: b, shape: [1, t, s] }, k).indices.data;
  const mark = new Int32Array(s).fill(-1);
  let common = 0;
  for (let r = 0; r < t; r++) {
    for (let i = 0; i < k; i++) mark[ia[r * k + i]] = r;
    for (let i = 0; i < k; i++) if (mark[ib[r * k + i]] === r) common++;
  }
  return common / (t * k);
}

/** scores[n,1,s] = MatMul(w[n,1,h], Relu(MatMul(q[n,h,d], Transpose(k[s,d])))) */
function scoresModel(n: number, s: number): Uint8Array {
  return onnxModel({
    name: 'indexer_scores',
    nodes: [
      onnxNode('Transpose', ['k'], ['kt'], [onnxAttr.ints('perm', [1, 0])]),
      onnxNode('MatMul', ['q', 'kt'], ['dots']),
      onnxNode('Relu', ['dots'], ['relu']),
      onnxNode('MatMul', ['w', 'relu'], ['scores']),
    ],
    inputs: [onnxValueInfo('q', OnnxType.FLOAT, [n, h, d]), onnxValueInfo('k', OnnxType.FLOAT, [s, d]), onnxValueInfo('w', OnnxType.FLOAT, [n, 1, h])],
    outputs: [onnxValueInfo('scores', OnnxType.FLOAT, [n, 1, s])],
  });
}

interface Row { shape: string; method: string; threads: number; rowsRun: number; medianMs: number; gflops: number; timesMs: number[]; relErr?: number; recall?: number }

// The whole module first, so the process's peak RSS at that point is the module's:
// DeepSeek-V3.2 sizes (dim 7168, q rank 1536), t new tokens after a cache of s - t keys.
const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
const moduleShape = smoke ? { t: 8, s: 700, dim: 96, qRank: 48 } : { t: 256, s: 16384, dim: 7168, qRank: 1536 };
const moduleRun = (() => {
  const { t, s, dim, qRank } = moduleShape;
  const weights = {
    wqB: sharedFloats([h * d, qRank], 11), wk: sharedFloats([d, dim], 12), kNormWeight: sharedFloats([d], 13),
    kNormBias: sharedFloats([d], 14), weightsProj: sharedFloats([h, dim], 15),
  };
  const inputs = { x: sharedFloats([1, t, dim], 16), qr: sharedFloats([1, t, qRank], 17), kCache: sharedFloats([1, s - t, d], 18) };
  const t0 = performance.now();
  const r = lightningIndexer(weights, inputs, { topK, ropeDim: d / 2, maskForm: 'bits' });
  const ms = performance.now() - t0;
  sink += r.values.data[0];
  const kept = r.indices.data.reduce((n, j) => n + (j >= 0 ? 1 : 0), 0);
  if (kept !== t * Math.min(topK, s)) throw new Error(`module: ${kept} keys kept, expected ${t * Math.min(topK, s)}`);
  const peakRssMiB = mib(process.resourceUsage().maxRSS * 1024);
  console.error(`module [1,${t},${s}] dim=${dim} qRank=${qRank}: ${ms.toFixed(0)} ms, peak RSS ${peakRssMiB} MiB`);
  return { ...moduleShape, ms, peakRssMiB };
})();

const pool = createPool({ threads: 2 });
const results: Row[] = [];
const gflop = (rows: number, s: number) => (2 * rows * h * s * d) / 1e9;

try {
  for (const { name, t, s } of cases) {
    const shape = `${name} [1,${t},${s}]`;
    console.error(shape);
    const q = sharedFloats([1, t, h, d], 1), k = sharedFloats([1, s, d], 2), w = sharedFloats([1, t, h], 3);
    const record = (method: string, threads: number, rowsRun: number, times: number[], extra: Partial<Row> = {}) => {
      const medianMs = median(times);
      const r: Row = { shape, method, threads, rowsRun, medianMs, gflops: gflop(rowsRun, s) / (medianMs / 1e3), timesMs: times, ...extra };
      results.push(r);
      console.error(`  ${method} x${threads}: ${medianMs.toFixed(1)} ms, ${r.gflops.toFixed(1)} GFLOP/s (rows ${rowsRun})`);
    };
    const ours = async (opts: IndexerScoresOptions, threads: number, keys: Parameters<typeof indexerScores>[1] = k) => {
      let out: Float32Array = new Float32Array(0);
      const times = await measure(async () => (out = threads === 1 ? indexerScores(q, keys, w, opts).data : (await pool.indexerScores(q, keys, w, opts)).data), reps);
      return { out, times };
    };

    const f32 = await ours({}, 1);
    record('float32 SIMD', 1, t, f32.times);
    const f32p = await ours({}, 2);
    bitIdentical('float32 SIMD pool', f32p.out, f32.out);
    record('float32 SIMD', 2, t, f32p.times);

    const i8 = await ours({ precision: 'int8' }, 1);
    const int8Recall = recall(f32.out, i8.out, t, s);
    record('int8 SIMD', 1, t, i8.times, { recall: int8Recall });
    const i8p = await ours({ precision: 'int8' }, 2);
    bitIdentical('int8 SIMD pool', i8p.out, i8.out);
    record('int8 SIMD', 2, t, i8p.times, { recall: int8Recall });

    // Keys quantized once (a cached int8 key store, as DeepSeek caches FP8 keys): same scores.
    const kq = quantizeKeys(k);
    for (const threads of [1, 2]) {
      const r = await ours({ precision: 'int8' }, threads, kq);
      bitIdentical(`int8 cached keys x${threads}`, r.out, i8.out);
      record('int8 SIMD, keys quantized once', threads, t, r.times, { recall: int8Recall });
    }

    const fbRows = Math.min(t, fallbackRows);
    const fbOpts: IndexerScoresOptions = { simd: false, rows: [0, fbRows] };
    const fbReps = Math.max(1, Math.min(reps, 3));
    let fbOut: Float32Array = new Float32Array(0);
    const fb1 = await measure(() => (fbOut = indexerScores(q, k, w, fbOpts).data), fbReps, 0);
    const fbErr = check('fallback', fbOut, f32.out, fbRows * s, 1e-5);
    record('TS fallback', 1, fbRows, fb1, { relErr: fbErr });
    const fb2 = await measure(async () => (fbOut = (await pool.indexerScores(q, k, w, fbOpts)).data), fbReps, 0);
    check('fallback pool', fbOut, f32.out, fbRows * s, 1e-5);
    record('TS fallback', 2, fbRows, fb2);

    for (const threads of [1, 2]) {
      const n = Math.min(ortBlock, t);
      const session = await ort.InferenceSession.create(scoresModel(n, s), {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
      // onnxruntime-node takes only ArrayBuffer-backed arrays: plain copies, made before the timing.
      const kTensor = new ort.Tensor('float32', Float32Array.from(k.data), [s, d]);
      const feeds: Record<string, ort.Tensor>[] = [];
      for (let r = 0; r < t; r += n) {
        feeds.push({
          q: new ort.Tensor('float32', q.data.slice(r * h * d, (r + n) * h * d), [n, h, d]),
          k: kTensor,
          w: new ort.Tensor('float32', w.data.slice(r * h, (r + n) * h), [n, 1, h]),
        });
      }
      const ortOut = new Float32Array(t * s);
      const runOrt = async () => {
        for (let r = 0; r < t; r += n) ortOut.set((await session.run(feeds[r / n])).scores.data as Float32Array, r * s);
        return ortOut;
      };
      const times = await measure(runOrt, reps);
      const relErr = check('onnxruntime-node', ortOut, f32.out, t * s, 1e-5);
      record('onnxruntime-node', threads, t, times, { relErr });
      await session.release();
    }
  }
} finally {
  await pool.close();
}

const get = (shape: string, method: string, threads: number) => results.find((r) => r.shape === shape && r.method === method && r.threads === threads)!;
const lines = [
  '| shape | threads | float32 SIMD GFLOP/s | int8 GFLOP/s | int8, keys quantized once | TS fallback GFLOP/s | onnxruntime-node GFLOP/s | SIMD / ort | int8 / ort | int8 cached / ort | SIMD / fallback | int8 recall@k |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const shape of [...new Set(results.map((r) => r.shape))]) {
  for (const threads of [1, 2]) {
    const [a, b, bq, c, o] = ['float32 SIMD', 'int8 SIMD', 'int8 SIMD, keys quantized once', 'TS fallback', 'onnxruntime-node'].map((m) => get(shape, m, threads).gflops);
    lines.push(
      `| ${shape} | ${threads} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${bq.toFixed(1)} | ${c.toFixed(2)} | ${o.toFixed(1)} | ${(a / o).toFixed(2)}x | ${(b / o).toFixed(2)}x | ${(bq / o).toFixed(2)}x | ${(a / c).toFixed(1)}x | ${get(shape, 'int8 SIMD', threads).recall!.toFixed(4)} |`,
    );
  }
}
const peakRssMiB = Math.round((process.resourceUsage().maxRSS * 1024) / 2 ** 20);
console.log(`indexer scores: h=${h} d=${d} k=${topK}; medians of ${reps}; fallback on ${fallbackRows} rows at prefill; peak RSS ${peakRssMiB} MiB\n\n${lines.join('\n')}`);
console.log(`\nlightningIndexer [1,${moduleRun.t},${moduleRun.s}] (dim ${moduleRun.dim}, q rank ${moduleRun.qRank}, h ${h}, d ${d}, k ${topK}, bit mask): ${moduleRun.ms.toFixed(0)} ms, peak RSS ${moduleRun.peakRssMiB} MiB`);
console.log(`(sink ${sink.toFixed(3)})`);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const file = new URL(smoke ? './results/indexer.smoke.tmp' : './results/indexer.json', import.meta.url);
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, h, d, topK, cases, reps, fallbackRows, ortBlock, peakRssMiB, module: moduleRun, results }, null, 1));
