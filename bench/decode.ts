// Decode-step benchmark: one DeepSeek-V3.2 DSA layer step through a cache
// (decodeStep: projections, append, scores, top-k, page-table transform,
// sparse attention) at s in {8192, 32768, 131072}, b = 1, and a batch of 8
// sequences of 4096 .. 131072 tokens; float32, int8 and fp8 key caches;
// 1 thread and 2. In the same run, onnxruntime-node runs the same step over
// the float32 cache (bench/decode-onnx.ts), its result checked against the
// library on the same inputs. Reports medians, the 2-thread speedup, fp8 and
// int8 top-k recall against the float32 cache, bytes allocated per step and
// peak RSS.
//
//   npx tsx bench/decode.ts [--smoke] [--reps 9] [--cases 8192,32768,131072,batch] [--forms float32,int8,fp8]
//
// Layer shape: dim 7168, qRank 1536, indexer h 64, d 128, topK 2048;
// attention hq 128, hkv 1, dqk 576, dV 512. Seeded data; each form's cache
// holds the same tokens and takes the same new tokens in the same order, so
// their top-k indices are comparable step by step.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as ort from 'onnxruntime-node';
import { createDsaCache, decodeStep, indexerScores, shareWeights, sparseAttention, topk, type DsaCache, type IndexerWeights, type KeyForm } from '../src/index.js';
import { createPool } from '../src/pool/index.js';
import { allocShared, type Tensor } from '../src/tensor.js';
import { decodeStepModel, type DecodeShape } from './decode-onnx.js';
import { checkClose, flag, machine, median, option, peakRssMiB, quietly, rng, writeResults } from './common.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const smoke = flag('smoke');
const shape: DecodeShape = smoke
  ? { dim: 64, qRank: 32, h: 4, d: 32, hq: 4, dqk: 64, dV: 48, topK: 16 }
  : { dim: 7168, qRank: 1536, h: 64, d: 128, hq: 128, dqk: 576, dV: 512, topK: 2048 };
const { dim, qRank, h, d, hq, dqk, dV, topK } = shape;
const ropeDim = Math.min(64, d);
const reps = Number(option('reps') ?? (smoke ? '2' : '9'));
const warmup = smoke ? 1 : 2;
const BATCH = smoke ? [16, 40, 64, 128] : [4096, 8192, 16384, 32768, 49152, 65536, 98304, 131072];
const caseNames = (option('cases') ?? (smoke ? '64,128,batch' : '8192,32768,131072,batch')).split(',');
const forms = (option('forms') ?? 'float32,int8,fp8').split(',') as KeyForm[];
const PAGE = 64;

/** Seeded normal values in shared memory (the pool reads them in place). */
function normals(n: number, seed: number, scale = 1): Float32Array {
  const next = rng(seed);
  const a = allocShared(Float32Array, n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - next())), t = 2 * Math.PI * next();
    a[i] = r * Math.cos(t) * scale;
    if (i + 1 < n) a[i + 1] = r * Math.sin(t) * scale;
  }
  return a;
}

const weights: IndexerWeights = shareWeights({
  wqB: { data: normals(h * d * qRank, 1, qRank ** -0.5), shape: [h * d, qRank] },
  wk: { data: normals(d * dim, 2, dim ** -0.5), shape: [d, dim] },
  kNormWeight: { data: normals(d, 3, 0.2).map((x) => 1 + x), shape: [d] },
  kNormBias: { data: normals(d, 4, 0.1), shape: [d] },
  weightsProj: { data: normals(h * dim, 5, dim ** -0.5), shape: [h, dim] },
});

/** The inputs of step `i` of a case (the same for every form), m sequences, one new token each. */
function stepInputs(m: number, i: number) {
  const seed = 1000 + i * 7;
  return {
    x: { data: normals(m * dim, seed), shape: [m, 1, dim] },
    qr: { data: normals(m * qRank, seed + 1), shape: [m, 1, qRank] },
    q: { data: normals(m * hq * dqk, seed + 2), shape: [m, hq, dqk] },
    kv: { data: normals(m * dqk, seed + 3), shape: [m, 1, dqk] },
  };
}

/** Fills sequence `seq` with `len` seeded tokens (indexer keys as after LayerNorm: unit normals; kv rows). */
function fill(cache: DsaCache, seq: number, len: number): void {
  const chunk = 4096;
  for (let p = 0; p < len; p += chunk) {
    const n = Math.min(chunk, len - p);
    const seed = 50_000 + seq * 1000 + p / chunk;
    cache.append(seq, { keys: { data: normals(n * d, seed), shape: [n, d] }, kv: { data: normals(n * dqk, seed + 500), shape: [n, 1, dqk] } });
  }
}

/** Positions of sequence `seq` as the float32 cache stores them: [len, d] keys and [len, dqk] kv, contiguous (for onnxruntime). */
function contiguous(cache: DsaCache, seq: number): { keys: Float32Array; kv: Float32Array } {
  const len = cache.length(seq), P = cache.pageSize;
  const keys = new Float32Array(len * d), kv = new Float32Array(len * dqk);
  const K = (cache.keys as Tensor<Float32Array>).data, V = cache.kv.data;
  for (let p = 0; p < len; p += P) {
    const slot = cache.blockTable.data[seq * cache.maxBlocks + p / P] * P, n = Math.min(P, len - p);
    keys.set(K.subarray(slot * d, (slot + n) * d), p * d);
    kv.set(V.subarray(slot * dqk, (slot + n) * dqk), p * dqk);
  }
  return { keys, kv };
}

/** The library on one sequence's float32 arrays, from the same inputs onnxruntime takes: scores, then attention on onnxruntime's choice. */
function checkOrt(label: string, x: Float32Array, qr: Float32Array, q: Float32Array, keys: Float32Array, kv: Float32Array, got: { out: Float32Array; scores: Float32Array; top: BigInt64Array }): number {
  const s = keys.length / d;
  const qIdx = new Float32Array(h * d), w = new Float32Array(h);
  for (let o = 0; o < h * d; o++) for (let e = 0; e < qRank; e++) qIdx[o] += qr[e] * weights.wqB.data[o * qRank + e];
  for (let o = 0; o < h; o++) for (let e = 0; e < dim; e++) w[o] += x[e] * weights.weightsProj.data[o * dim + e];
  const scores = indexerScores({ data: qIdx, shape: [1, 1, h, d] }, { data: keys, shape: [1, s, d] }, { data: w, shape: [1, 1, h] }, { weightScale: h ** -0.5 * d ** -0.5 });
  checkClose(`${label} onnxruntime scores`, got.scores, scores.data, s, 1e-4, 'scores differ from indexerScores', 'score');
  // Its top-k is the top-k of its own scores (same set, ties aside).
  const ours = topk({ data: got.scores, shape: [1, 1, s] }, Math.min(topK, s));
  const theirs = new Set(Array.from(got.top, Number));
  const same = Array.from(ours.indices.data).filter((j) => theirs.has(j)).length / ours.indices.data.length;
  if (same < 0.999) throw new Error(`${label}: onnxruntime's top-k and topk of its scores share only ${same}`);
  const idx = Int32Array.from(got.top, Number);
  const attn = sparseAttention({ data: q, shape: [1, hq, dqk] }, { data: kv, shape: [s, 1, dqk] }, { data: idx, shape: [1, 1, idx.length] }, { dV });
  return checkClose(`${label} onnxruntime out`, got.out, attn.out.data, hq * dV, 1e-4, 'attention differs from sparseAttention', 'out');
}

interface Row {
  case: string; lengths: number[]; method: string; threads: number; medianMs: number; minMs: number; timesMs: number[];
  allocatedBytes?: number; recall?: number; rssMiB: number; relErr?: number;
}
const rows: Row[] = [];
let sink = 0;

const pool = createPool({ threads: 2 });
const sessions = new Map<number, ort.InferenceSession>();
const model = decodeStepModel(shape);
for (const threads of [1, 2]) {
  sessions.set(threads, await quietly(() => ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' })));
}

for (const name of caseNames) {
  const lengths = name === 'batch' ? BATCH : [Number(name)];
  const m = lengths.length, total = lengths.reduce((a, b) => a + b, 0);
  const steps = warmup + 2 * reps;
  const inputs = Array.from({ length: steps }, (_, i) => stepInputs(m, i));
  const indicesOf = new Map<KeyForm, Int32Array[]>();
  let ortArrays: { keys: Float32Array; kv: Float32Array }[] | null = null;
  for (const form of forms) {
    const cache = m === 1
      ? createDsaCache({ batch: 1, capacity: lengths[0] + steps, keyForm: form, indexerDim: d, kvDim: dqk })
      : createDsaCache({ batch: m, pages: Math.ceil(total / PAGE) + m * (1 + Math.ceil(steps / PAGE)), pageSize: PAGE, keyForm: form, indexerDim: d, kvDim: dqk });
    lengths.forEach((len, seq) => fill(cache, seq, len));
    if (form === 'float32' && ortArrays === null) ortArrays = lengths.map((_, seq) => contiguous(cache, seq));
    const picked: Int32Array[] = [];
    const run = async (i: number, threads: number) => {
      const r = threads === 1 ? decodeStep(weights, cache, inputs[i], { dV, topK, ropeDim }) : await pool.decodeStep(weights, cache, inputs[i], { dV, topK, ropeDim });
      picked[i] = r.indices.data;
      sink += r.out.data[0];
    };
    for (let i = 0; i < warmup; i++) await run(i, i % 2 + 1);
    for (const threads of [1, 2]) {
      const times: number[] = [];
      let allocated = 0;
      for (let r = 0; r < reps; r++) {
        const i = warmup + (threads - 1) * reps + r;
        gc();
        const before = process.memoryUsage();
        const t0 = performance.now();
        await run(i, threads);
        times.push(performance.now() - t0);
        const after = process.memoryUsage();
        allocated = Math.max(allocated, after.arrayBuffers - before.arrayBuffers + after.heapUsed - before.heapUsed);
      }
      rows.push({ case: name, lengths, method: `decodeStep ${form}`, threads, medianMs: median(times), minMs: Math.min(...times), timesMs: times, allocatedBytes: allocated, rssMiB: peakRssMiB() });
      console.log(`${name} ${form} ${threads}t: ${median(times).toFixed(1)} ms (min ${Math.min(...times).toFixed(1)}), ~${(allocated / 1024).toFixed(0)} KiB allocated a step`);
    }
    indicesOf.set(form, picked);
  }
  // Recall of each form's top-k against the float32 cache's, step by step (the same tokens).
  const exact = indicesOf.get('float32');
  if (exact) {
    for (const form of forms) {
      if (form === 'float32') continue;
      let hit = 0, count = 0;
      indicesOf.get(form)!.forEach((got, i) => {
        for (let row = 0; row < m; row++) {
          const want = new Set(exact[i].subarray(row * topK, (row + 1) * topK).filter((j) => j >= 0));
          for (const j of got.subarray(row * topK, (row + 1) * topK)) if (j >= 0 && want.has(j)) hit++;
          count += want.size;
        }
      });
      for (const row of rows) if (row.case === name && row.method === `decodeStep ${form}`) row.recall = hit / count;
      console.log(`${name} ${form} recall@${topK} vs float32: ${(hit / count).toFixed(4)}`);
    }
  }
  // onnxruntime-node over the float32 arrays, one session run per sequence; checked once.
  if (ortArrays) {
    // onnxruntime-node takes plain (not SharedArrayBuffer) arrays: the weights are copied once, a step's inputs per run.
    const wqB = new ort.Tensor('float32', Float32Array.from(weights.wqB.data), [h * d, qRank]);
    const weightsProj = new ort.Tensor('float32', Float32Array.from(weights.weightsProj.data), [h, dim]);
    const feeds = (i: number, seq: number) => {
      const s = ortArrays![seq].keys.length / d;
      const inp = inputs[i];
      return {
        x: new ort.Tensor('float32', inp.x.data.slice(seq * dim, (seq + 1) * dim), [1, dim]),
        qr: new ort.Tensor('float32', inp.qr.data.slice(seq * qRank, (seq + 1) * qRank), [1, qRank]),
        wqB,
        weightsProj,
        keys: new ort.Tensor('float32', ortArrays![seq].keys, [s, d]),
        kv: new ort.Tensor('float32', ortArrays![seq].kv, [s, dqk]),
        q: new ort.Tensor('float32', inp.q.data.slice(seq * hq * dqk, (seq + 1) * hq * dqk), [hq, dqk]),
      };
    };
    let relErr = 0;
    for (let seq = 0; seq < m; seq++) {
      const r = await sessions.get(2)!.run(feeds(0, seq));
      const inp = inputs[0];
      relErr = Math.max(relErr, checkOrt(`${name} seq ${seq}`, inp.x.data.subarray(seq * dim, (seq + 1) * dim), inp.qr.data.subarray(seq * qRank, (seq + 1) * qRank), inp.q.data.subarray(seq * hq * dqk, (seq + 1) * hq * dqk), ortArrays[seq].keys, ortArrays[seq].kv, {
        out: r.out.data as Float32Array, scores: r.scores.data as Float32Array, top: r.top.data as BigInt64Array,
      }));
    }
    for (const threads of [1, 2]) {
      const times: number[] = [];
      for (let i = 0; i < warmup + reps; i++) {
        const t0 = performance.now();
        for (let seq = 0; seq < m; seq++) sink += ((await sessions.get(threads)!.run(feeds(i % steps, seq))).out.data as Float32Array)[0];
        if (i >= warmup) times.push(performance.now() - t0);
      }
      rows.push({ case: name, lengths, method: 'onnxruntime-node float32', threads, medianMs: median(times), minMs: Math.min(...times), timesMs: times, rssMiB: peakRssMiB(), relErr });
      console.log(`${name} onnxruntime ${threads}t: ${median(times).toFixed(1)} ms (min ${Math.min(...times).toFixed(1)}), rel err ${relErr.toExponential(1)}`);
    }
  }
}
await pool.close();

// The table: each row with its 2-thread speedup and its ratio to onnxruntime (same case, same threads).
const find = (c: string, method: string, threads: number) => rows.find((r) => r.case === c && r.method === method && r.threads === threads);
console.log('\n| case | method | threads | median ms | min ms | 1t / 2t | / onnxruntime | recall vs float32 | KiB allocated / step | peak RSS MiB |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const one = find(r.case, r.method, 1), peer = find(r.case, 'onnxruntime-node float32', r.threads);
  const speedup = r.threads === 2 && one ? (one.medianMs / r.medianMs).toFixed(2) : '';
  const vsOrt = peer && r !== peer ? (r.medianMs / peer.medianMs).toFixed(2) : '';
  console.log(
    `| ${r.case === 'batch' ? `batch of ${r.lengths.length} (${r.lengths[0]}..${r.lengths[r.lengths.length - 1]})` : `s=${r.case}`} | ${r.method} | ${r.threads} | ${r.medianMs.toFixed(1)} | ${r.minMs.toFixed(1)} | ${speedup} | ${vsOrt} | ${r.recall?.toFixed(4) ?? ''} | ${r.allocatedBytes === undefined ? '' : (r.allocatedBytes / 1024).toFixed(0)} | ${r.rssMiB} |`,
  );
}
writeResults(smoke ? 'decode-smoke.json' : 'decode.json', JSON.stringify({ date: new Date().toISOString(), machine: machine(), shape, reps, rows, sink }, null, 2));
