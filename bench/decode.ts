// Decode-step benchmark: one DeepSeek-V3.2 DSA layer step through a cache
// (decodeStep: projections, append, scores, top-k, page-table transform,
// sparse attention) at s in {8192, 32768, 131072}, b = 1, and a batch of 8
// sequences of 4096 .. 131072 tokens; float32, int8 (int8 or int7 queries)
// and fp8 key caches;
// 1 thread and 2. In the same run, onnxruntime-node runs the same step over
// the float32 cache (bench/decode-onnx.ts), its result checked against the
// library on the same inputs. Reports medians, the 2-thread speedup, fp8 and
// int8 top-k recall against the float32 cache, bytes allocated per step and
// peak RSS.
//
//   npx tsx bench/decode.ts [--smoke] [--reps 9] [--cases 8192,32768,131072,batch] [--forms float32,int8,int7,fp8]
//
// Layer shape: dim 7168, qRank 1536, indexer h 64, d 128, topK 2048;
// attention hq 128, hkv 1, dqk 576, dV 512. Seeded data; each form's cache
// holds the same tokens and takes the same new tokens in the same order, so
// their top-k indices are comparable step by step.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as ort from 'onnxruntime-node';
import { createDsaCache, decodeStep, indexerScores, shareWeights, sparseAttention, topk, type CachePrecision, type DsaCache, type IndexerWeights } from '../src/index.js';
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
const forms = (option('forms') ?? 'float32,int8,int7,fp8').split(',') as CachePrecision[];
/** The cache of a precision: its key form ('int7': 7-bit queries over int8 keys). */
const cacheForm = (form: CachePrecision) => ({ keyForm: form === 'int7' ? 'int8' as const : form, precision: form });
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
  /** Median bytes of ArrayBuffers allocated in a step (outputs, plan buffers), and of JS heap garbage; this thread only. */
  allocatedBytes?: number; heapBytes?: number; recall?: number; rssMiB: number; relErr?: number;
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
  // One cache per form, all holding the same tokens.
  const caches = new Map<CachePrecision, DsaCache>();
  for (const form of forms) {
    const cache = m === 1
      ? createDsaCache({ batch: 1, capacity: lengths[0] + steps, ...cacheForm(form), indexerDim: d, kvDim: dqk })
      : createDsaCache({ batch: m, pages: Math.ceil(total / PAGE) + m * (1 + Math.ceil(steps / PAGE)), pageSize: PAGE, ...cacheForm(form), indexerDim: d, kvDim: dqk });
    lengths.forEach((len, seq) => fill(cache, seq, len));
    caches.set(form, cache);
  }
  // onnxruntime-node reads the float32 tokens as contiguous arrays, one session run per sequence.
  const filled = caches.get('float32') ?? null;
  const ortArrays = filled ? lengths.map((_, seq) => contiguous(filled, seq)) : null;
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
  let relErr: number | undefined;
  if (ortArrays) {
    relErr = 0;
    for (let seq = 0; seq < m; seq++) {
      const r = await sessions.get(2)!.run(feeds(0, seq));
      const inp = inputs[0];
      relErr = Math.max(relErr, checkOrt(`${name} seq ${seq}`, inp.x.data.subarray(seq * dim, (seq + 1) * dim), inp.qr.data.subarray(seq * qRank, (seq + 1) * qRank), inp.q.data.subarray(seq * hq * dqk, (seq + 1) * hq * dqk), ortArrays[seq].keys, ortArrays[seq].kv, {
        out: r.out.data as Float32Array, scores: r.scores.data as Float32Array, top: r.top.data as BigInt64Array,
      }));
    }
  }
  const ortStep = async (threads: number, i: number) => {
    for (let seq = 0; seq < m; seq++) sink += ((await sessions.get(threads)!.run(feeds(i, seq))).out.data as Float32Array)[0];
  };

  // Every contender in every round, one after another, so that ratios see the same machine (it is shared and drifts).
  const picked = new Map<CachePrecision, Int32Array[]>(forms.map((f) => [f, []]));
  const times = new Map<string, number[]>();
  const allocated = new Map<string, number[]>();
  const heap = new Map<string, number[]>();
  const timed = async (key: string, run: () => Promise<unknown> | unknown, measureAllocation: boolean) => {
    if (measureAllocation) gc();
    const before = process.memoryUsage();
    const t0 = performance.now();
    await run();
    const ms = performance.now() - t0;
    const after = process.memoryUsage();
    if (!times.has(key)) times.set(key, []);
    times.get(key)!.push(ms);
    if (measureAllocation) {
      if (!allocated.has(key)) (allocated.set(key, []), heap.set(key, []));
      allocated.get(key)!.push(after.arrayBuffers - before.arrayBuffers);
      heap.get(key)!.push(after.heapUsed - before.heapUsed);
    }
  };
  const stepOf = (form: CachePrecision, i: number, threads: number) => async () => {
    const cache = caches.get(form)!;
    const r = threads === 1
      ? decodeStep(weights, cache, inputs[i], { dV, topK, ropeDim })
      : await pool.decodeStep(weights, cache, inputs[i], { dV, topK, ropeDim });
    picked.get(form)![i] = r.indices.data;
    sink += r.out.data[0];
  };
  // Warm-up: one step on this thread, then one on the pool (its workers compile the kernels on first use).
  for (let i = 0; i < warmup; i++) {
    const threads = (i % 2) + 1;
    for (const form of forms) await stepOf(form, i, threads)();
    if (ortArrays) await ortStep(threads, i);
  }
  for (let round = 0; round < reps; round++) {
    for (const threads of [1, 2]) {
      const i = warmup + 2 * round + threads - 1;
      for (const form of forms) await timed(`${form} ${threads}`, stepOf(form, i, threads), true);
      if (ortArrays) await timed(`ort ${threads}`, () => ortStep(threads, i), false);
    }
  }
  // Recall of each form's top-k against the float32 cache's, step by step (the same tokens).
  const exact = picked.get('float32');
  const recallOf = new Map<CachePrecision, number>();
  if (exact) {
    for (const form of forms) {
      if (form === 'float32') continue;
      let hit = 0, count = 0;
      picked.get(form)!.forEach((got, i) => {
        if (!exact[i]) return;
        for (let row = 0; row < m; row++) {
          const want = new Set(exact[i].subarray(row * topK, (row + 1) * topK).filter((j) => j >= 0));
          for (const j of got.subarray(row * topK, (row + 1) * topK)) if (j >= 0 && want.has(j)) hit++;
          count += want.size;
        }
      });
      recallOf.set(form, hit / count);
    }
  }
  for (const form of forms) {
    for (const threads of [1, 2]) {
      const t = times.get(`${form} ${threads}`)!;
      const bytes = median(allocated.get(`${form} ${threads}`)!), heapBytes = median(heap.get(`${form} ${threads}`)!);
      rows.push({ case: name, lengths, method: `decodeStep ${form}`, threads, medianMs: median(t), minMs: Math.min(...t), timesMs: t, allocatedBytes: bytes, heapBytes, recall: recallOf.get(form), rssMiB: peakRssMiB() });
      console.log(`${name} ${form} ${threads}t: ${median(t).toFixed(1)} ms (min ${Math.min(...t).toFixed(1)}), ${(bytes / 1024).toFixed(0)} KiB of buffers and ~${(heapBytes / 1024).toFixed(0)} KiB of JS heap a step${recallOf.has(form) ? `, recall@${topK} ${recallOf.get(form)!.toFixed(4)}` : ''}`);
    }
  }
  if (ortArrays) {
    for (const threads of [1, 2]) {
      const t = times.get(`ort ${threads}`)!;
      rows.push({ case: name, lengths, method: 'onnxruntime-node float32', threads, medianMs: median(t), minMs: Math.min(...t), timesMs: t, rssMiB: peakRssMiB(), relErr });
      console.log(`${name} onnxruntime ${threads}t: ${median(t).toFixed(1)} ms (min ${Math.min(...t).toFixed(1)}), rel err ${relErr!.toExponential(1)}`);
    }
  }
  caches.clear();
}
await pool.close();

// The table: each row with its 2-thread speedup and its ratio to onnxruntime (same case, same threads).
const find = (c: string, method: string, threads: number) => rows.find((r) => r.case === c && r.method === method && r.threads === threads);
console.log('\n| case | method | threads | median ms | min ms | 1t / 2t | / onnxruntime | recall vs float32 | buffers KiB / step | JS heap KiB / step | peak RSS MiB |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const one = find(r.case, r.method, 1), peer = find(r.case, 'onnxruntime-node float32', r.threads);
  const speedup = r.threads === 2 && one ? (one.medianMs / r.medianMs).toFixed(2) : '';
  const vsOrt = peer && r !== peer ? (r.medianMs / peer.medianMs).toFixed(2) : '';
  console.log(
    `| ${r.case === 'batch' ? `batch of ${r.lengths.length} (${r.lengths[0]}..${r.lengths[r.lengths.length - 1]})` : `s=${r.case}`} | ${r.method} | ${r.threads} | ${r.medianMs.toFixed(1)} | ${r.minMs.toFixed(1)} | ${speedup} | ${vsOrt} | ${r.recall?.toFixed(4) ?? ''} | ${r.allocatedBytes === undefined ? '' : (r.allocatedBytes / 1024).toFixed(0)} | ${r.heapBytes === undefined ? '' : (r.heapBytes / 1024).toFixed(0)} | ${r.rssMiB} |`,
  );
}
if (!smoke) writeResults('decode.json', JSON.stringify({ date: new Date().toISOString(), machine: machine(), shape, reps, rows, sink }, null, 2));
