// Lightning indexer scores benchmark: indexerScores at the prefill shape
// [1,256,16384] and the decode shape (t = 1, s = 131072), h = 64, d = 128,
// in GFLOP/s (counted as 2*t*h*s*d), for the float32 WebAssembly SIMD path,
// the int8 path and the TypeScript fallback, on 1 thread (this thread) and 2
// (the pool), against onnxruntime-node computing the same scores
// (Transpose, MatMul, Relu, MatMul with the weights) with the same threads.
// The int8 path reports its top-k overlap (recall) with the float32 top-k.
// Where the engine runs the relaxed module (Node 22+), the default build,
// int7 queries over keys quantized once (relaxed SIMD's i8 x i7 dot) run
// beside int8 on the baseline module (fixed-width SIMD only), each on this
// thread and on a pool whose workers load that build, with int7's recall.
//
//   npx tsx bench/indexer.ts [--smoke] [--reps 5] [--fallback-rows 8]
//
// Seeded data, a warm-up, repetitions (interleaved across methods, round by
// round, against load from elsewhere on a shared machine), medians, a sink. The fallback is
// slow, so at the prefill shape it runs the first `--fallback-rows` query
// rows and its GFLOP/s counts those rows (every row costs the same). Every
// result is checked: the pool bit-identical to one thread, the fallback and
// onnxruntime-node against the SIMD scores.
import * as ort from 'onnxruntime-node';
import { indexerScores, type IndexerScoresOptions } from '../src/indexer/scores.js';
import { lightningIndexer } from '../src/indexer/module.js';
import { quantizeKeys } from '../src/indexer/quantized-keys.js';
import { createPool } from '../src/pool/index.js';
import { initSimd, relaxedSimdSupported, simdBuild, type SimdBuild } from '../src/simd/index.js';
import { OnnxType, onnxModel, onnxNode, onnxValueInfo, onnxAttr } from './onnx-model.js';
import { bitIdentical, checkClose, flag, median, option, peakRssMiB as peakRss, recall, sharedFloats, writeResults } from './common.js';

const smoke = flag('smoke');
const h = smoke ? 8 : 64, d = smoke ? 32 : 128, topK = smoke ? 64 : 2048;
const cases = smoke
  ? [{ name: 'prefill', t: 8, s: 700 }, { name: 'decode', t: 1, s: 3000 }]
  : [{ name: 'prefill', t: 256, s: 16384 }, { name: 'decode', t: 1, s: 131072 }];
const reps = Number(option('reps') ?? (smoke ? '2' : '5'));
const fallbackRows = Number(option('fallback-rows') ?? (smoke ? '2' : '8'));
const ortBlock = smoke ? 4 : 32;

let sink = 0;

/** Max abs difference over `n` values relative to the largest |reference|; throws over `tol`. */
const check = (label: string, got: ArrayLike<number>, want: ArrayLike<number>, n: number, tol: number) =>
  checkClose(label, got, want, n, tol, 'differs from the SIMD scores', 'score');

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
  const peakRssMiB = peakRss();
  console.error(`module [1,${t},${s}] dim=${dim} qRank=${qRank}: ${ms.toFixed(0)} ms, peak RSS ${peakRssMiB} MiB`);
  return { ...moduleShape, ms, peakRssMiB };
})();

// The default build's pool, and one per build for the int7-against-int8 rows (workers load the build of the thread that makes the pool).
const defaultBuild = simdBuild();
const pool = createPool({ threads: 2 });
const relaxed = relaxedSimdSupported();
const pools = new Map<SimdBuild, typeof pool>();
for (const build of relaxed ? (['baseline', 'relaxed'] as const) : []) {
  await initSimd({ relaxed: build === 'relaxed' });
  pools.set(build, createPool({ threads: 2 }));
}
if (defaultBuild !== null) await initSimd({ relaxed: defaultBuild === 'relaxed' });
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
    const kq = quantizeKeys(k, { shared: true });
    const fbRows = Math.min(t, fallbackRows);

    // onnxruntime-node sessions (1 and 2 intra-op threads) over blocks of n query rows.
    // It takes only ArrayBuffer-backed arrays: plain copies, made before the timing.
    const n = Math.min(ortBlock, t);
    const kTensor = new ort.Tensor('float32', Float32Array.from(k.data), [s, d]);
    const feeds: Record<string, ort.Tensor>[] = [];
    for (let r = 0; r < t; r += n) {
      feeds.push({
        q: new ort.Tensor('float32', q.data.slice(r * h * d, (r + n) * h * d), [n, h, d]),
        k: kTensor,
        w: new ort.Tensor('float32', w.data.slice(r * h, (r + n) * h), [n, 1, h]),
      });
    }
    const sessions = new Map<number, ort.InferenceSession>();
    for (const threads of [1, 2]) {
      sessions.set(threads, await ort.InferenceSession.create(scoresModel(n, s), {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      }));
    }
    const runOrt = (threads: number) => async () => {
      const out = new Float32Array(t * s);
      for (let r = 0; r < t; r += n) out.set((await sessions.get(threads)!.run(feeds[r / n])).scores.data as Float32Array, r * s);
      return out;
    };
    const ours = (opts: IndexerScoresOptions, threads: number, keys: Parameters<typeof indexerScores>[1] = k, build?: SimdBuild) => {
      const on = build === undefined ? pool : pools.get(build)!;
      return threads === 1 ? async () => indexerScores(q, keys, w, opts).data : async () => (await on.indexerScores(q, keys, w, opts)).data;
    };

    /** `build`: the module this thread switches to before the call (default: the engine's default build). */
    interface Contestant { method: string; threads: number; rows: number; reps: number; run: () => Promise<Float32Array>; out?: Float32Array; times: number[]; build?: SimdBuild }
    const fbOpts: IndexerScoresOptions = { simd: false, rows: [0, fbRows] };
    const fbReps = Math.max(1, Math.min(reps, 3));
    const contestants: Contestant[] = [];
    for (const threads of [1, 2]) {
      contestants.push(
        { method: 'float32 SIMD', threads, rows: t, reps, run: ours({}, threads), times: [] },
        { method: 'int8 SIMD', threads, rows: t, reps, run: ours({ precision: 'int8' }, threads), times: [] },
        { method: 'int8 SIMD, keys quantized once', threads, rows: t, reps, run: ours({ precision: 'int8' }, threads, kq), times: [] },
        { method: 'TS fallback', threads, rows: fbRows, reps: fbReps, run: ours(fbOpts, threads), times: [] },
        { method: 'onnxruntime-node', threads, rows: t, reps, run: runOrt(threads), times: [] },
      );
      if (relaxed) {
        contestants.push(
          { method: 'int8 SIMD, keys quantized once, baseline module', threads, rows: t, reps, run: ours({ precision: 'int8' }, threads, kq, 'baseline'), times: [], build: 'baseline' },
          { method: 'int7 SIMD, keys quantized once, relaxed module', threads, rows: t, reps, run: ours({ precision: 'int7' }, threads, kq, 'relaxed'), times: [], build: 'relaxed' },
        );
      }
    }
    // Switching builds reuses each build's instance (initSimd keeps them), so a switch costs no fresh memory.
    const use = async (c: Contestant) => {
      const build = c.build ?? defaultBuild;
      if (build !== null && simdBuild() !== build) await initSimd({ relaxed: build === 'relaxed' });
    };
    // One warm-up each (its output is what gets checked), then the repetitions
    // interleaved round by round, so a burst of load from elsewhere on this
    // shared machine hits every method alike.
    for (const c of contestants) {
      await use(c);
      c.out = await c.run();
    }
    for (let round = 0; round < reps; round++) {
      for (const c of contestants) {
        if (round >= c.reps) continue;
        await use(c);
        const t0 = performance.now();
        const out = await c.run();
        c.times.push(performance.now() - t0);
        sink += out[0];
      }
    }
    const find = (method: string, threads: number) => contestants.find((c) => c.method === method && c.threads === threads)!;
    const f32 = find('float32 SIMD', 1).out!;
    const int8 = find('int8 SIMD', 1).out!;
    const int8Recall = recall(f32, int8, t, s, topK);
    const int7 = relaxed ? find('int7 SIMD, keys quantized once, relaxed module', 1).out! : null;
    const int7Recall = int7 ? recall(f32, int7, t, s, topK) : undefined;
    for (const c of contestants) {
      const extra: Partial<Row> = {};
      if (c.method.startsWith('float32') || c.method.startsWith('int8')) bitIdentical(`${c.method} x${c.threads}`, c.out!, c.method.startsWith('int8') ? int8 : f32);
      if (c.method.startsWith('int7')) bitIdentical(`${c.method} x${c.threads}`, c.out!, int7!);
      if (c.method.startsWith('int8')) extra.recall = int8Recall;
      if (c.method.startsWith('int7')) extra.recall = int7Recall;
      if (c.method === 'TS fallback' || c.method === 'onnxruntime-node') extra.relErr = check(`${c.method} x${c.threads}`, c.out!, f32, c.rows * s, 1e-5);
      record(c.method, c.threads, c.rows, c.times, extra);
    }
    for (const session of sessions.values()) await session.release();
  }
} finally {
  await pool.close();
  for (const p of pools.values()) await p.close();
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
const int7Lines = relaxed
  ? [
      '',
      'int7 queries on the relaxed module against int8 on the baseline module (keys quantized once, both):',
      '',
      '| shape | threads | int8 baseline ms | int7 relaxed ms | int7 / int8 speed | int8 recall@k | int7 recall@k |',
      '|---|---|---|---|---|---|---|',
      ...[...new Set(results.map((r) => r.shape))].flatMap((shape) => [1, 2].map((threads) => {
        const i8 = get(shape, 'int8 SIMD, keys quantized once, baseline module', threads), i7 = get(shape, 'int7 SIMD, keys quantized once, relaxed module', threads);
        return `| ${shape} | ${threads} | ${i8.medianMs.toFixed(1)} | ${i7.medianMs.toFixed(1)} | ${(i8.medianMs / i7.medianMs).toFixed(2)}x | ${i8.recall!.toFixed(4)} | ${i7.recall!.toFixed(4)} |`;
      })),
    ]
  : ['', `(no int7 rows: this engine does not run the relaxed module)`];
const peakRssMiB = peakRss();
console.log(`indexer scores: h=${h} d=${d} k=${topK}; medians of ${reps}; fallback on ${fallbackRows} rows at prefill; Node ${process.versions.node}, default build ${defaultBuild}; peak RSS ${peakRssMiB} MiB\n\n${lines.join('\n')}\n${int7Lines.join('\n')}`);
console.log(`\nlightningIndexer [1,${moduleRun.t},${moduleRun.s}] (dim ${moduleRun.dim}, q rank ${moduleRun.qRank}, h ${h}, d ${d}, k ${topK}, bit mask): ${moduleRun.ms.toFixed(0)} ms, peak RSS ${moduleRun.peakRssMiB} MiB`);
console.log(`(sink ${sink.toFixed(3)})`);
writeResults(smoke ? 'indexer.smoke.tmp' : 'indexer.json', JSON.stringify({ date: new Date().toISOString(), node: process.version, h, d, topK, cases, reps, fallbackRows, ortBlock, peakRssMiB, module: moduleRun, results }, null, 1));
