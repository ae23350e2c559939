// Benchmark of the WebGPU backend against the adapter's own floor and the CPU
// path on 2 threads, in the same run. Run: npm run bench:webgpu [-- --smoke | --full]
// [--software] [--reps 5] [--cpu-reps 3] [--skip-cpu] [--adapter NAME] [--no-features]
// [--results webgpu.json] (the file under bench/results/ a non-smoke run writes)
//
// Shapes: --full is the issue's (mask [1, 1024, 131072] k = 2048; top-k of
// [1024, 131072] k = 2048; indexer t = 1024, s = 131072, h = 64, d = 128, in
// float32 and, with keys quantized once, int8, int7 and fp8, an FP8 cache in
// pages of 64 (scores and the fused top-k) and a ragged batch of 4 sequences;
// sparse attention t = 128, hq = 128, dqk = 576, dV = 512, k = 2048); the
// default is 1/32 of its rows, keys and k and 1/4 of its heads, which a
// software adapter runs in about a minute; --smoke is smaller still. Inputs are uploaded once; each GPU call
// keeps its results on the GPU (resident) and is timed to the end of the GPU
// work (onSubmittedWorkDone), so a figure is the op itself plus its
// per-call set-up (fresh output buffers), never the copy back to the host.
// The floor of an op is the adapter's clear of its output bytes or copy of
// its input bytes, timed the same way. --software points VK_ICD_FILENAMES at
// SwiftShader when it is unset (Linux without a GPU); --adapter picks an
// adapter by name (Dawn's adapter= flag). The ops whose programs use an
// optional feature the adapter has (subgroups: top-k and the fused top-k;
// shader-f16: the int8, int7 and fp8 tiles) also run on a backend told to
// use none (the same device, features: []), interleaved rep by rep: the
// "plain" column; --no-features runs everything plain.
import { existsSync } from 'node:fs';
import { createPool } from '../src/pool/index.js';
import { createGpu, GpuTensor, type OptionalFeature } from '../src/webgpu/index.js';
import { allocShared, type Tensor } from '../src/tensor.js';
import { quantizeKeys, quantizeKeysFp8 } from '../src/indexer/quantized-keys.js';
import { flag, machine, median, option, rng, writeResults } from './common.js';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (flag('software') && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER)) process.env.VK_ICD_FILENAMES = SWIFTSHADER;

const smoke = flag('smoke');
const full = flag('full');
const scale = (n: number, by: number) => Math.max(1, full ? n : smoke ? Math.ceil(n / by / 4) : Math.ceil(n / by));
const shape = {
  t: scale(1024, 32), s: scale(131072, 32), k: scale(2048, 32), h: scale(64, 4), d: 128,
  at: scale(128, 32), hq: scale(128, 8), dqk: 576, dV: 512,
};
const reps = Number(option('reps') ?? (smoke ? 1 : 5));
const cpuReps = Number(option('cpu-reps') ?? (smoke ? 1 : 3));
const skipCpu = flag('skip-cpu');

function floats(n: number, seed: number, normal = false): Float32Array {
  const next = rng(seed);
  const a = allocShared(Float32Array, n);
  for (let i = 0; i < n; i++) a[i] = normal ? Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()) : next() * 2 - 1;
  return a;
}

function distinctIndices(rows: number, k: number, s: number, seed: number): Int32Array {
  const next = rng(seed);
  const a = allocShared(Int32Array, rows * k);
  const step = Math.max(1, Math.floor(s / k));
  for (let r = 0; r < rows; r++) {
    const offset = Math.floor(next() * step);
    for (let i = 0; i < k; i++) a[r * k + i] = (i * step + offset) % s;
  }
  return a;
}

const adapterName = option('adapter');
const gpu = await createGpu({ ...(adapterName ? { dawnFlags: [`adapter=${adapterName}`] } : {}), ...(flag('no-features') ? { features: [] } : {}) });
const device = gpu.device;
const plain = gpu.features.length > 0 ? await createGpu({ device, features: [] }) : null;
type Backend = typeof gpu;
const done = () => device.queue.onSubmittedWorkDone();
const pool = skipCpu ? null : createPool({ threads: 2 });
let sink = 0;

/** Median ms of `reps` runs of each of `runs` after one warm-up each, interleaved rep by rep; `release` frees what a run returned. */
async function timeEach<R>(n: number, runs: (() => Promise<R>)[], release: (r: R) => void = () => {}): Promise<number[]> {
  for (const run of runs) {
    release(await run());
    await done();
  }
  const ms: number[][] = runs.map(() => []);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < runs.length; j++) {
      const t0 = performance.now();
      const r = await runs[j]();
      await done();
      ms[j].push(performance.now() - t0);
      release(r);
    }
  }
  return ms.map(median);
}

const time = async <R>(n: number, run: () => Promise<R>, release?: (r: R) => void): Promise<number> => (await timeEach(n, [run], release))[0];

const freeAll = (r: unknown) => {
  for (const v of Object.values(r instanceof GpuTensor ? { r } : (r as object))) if (v instanceof GpuTensor) v.destroy();
};

/** The adapter's floor: a clear of `bytes` (writes) or a copy of them (one read, one write). */
async function floor(kind: 'clear' | 'copy', bytes: number): Promise<number> {
  const size = Math.ceil(bytes / 4) * 4;
  const a = device.createBuffer({ size, usage: 0x80 | 0x4 | 0x8 });
  const b = kind === 'copy' ? device.createBuffer({ size, usage: 0x80 | 0x4 | 0x8 }) : null;
  const ms = await time(reps, async () => {
    const enc = device.createCommandEncoder();
    if (b) enc.copyBufferToBuffer(a, 0, b, 0, size);
    else enc.clearBuffer(a);
    device.queue.submit([enc.finish()]);
  });
  a.destroy();
  b?.destroy();
  return ms;
}

interface Row {
  op: string; shape: string; gpuMs: number; plainMs: number | null; floor: string; floorMs: number; cpuMs: number | null; gbs: number | null; gflops: number | null;
}
const rows: Row[] = [];

/** `gpuRun(b)` runs the op on backend b; `uses`: the optional features its programs can use (when the backend does, it also runs plain). */
async function measure(op: string, shapeText: string, bytes: number, flops: number | null, floorKind: 'clear' | 'copy', floorBytes: number,
  gpuRun: (b: Backend) => Promise<unknown>, cpuRun: (() => Promise<unknown>) | null, uses: OptionalFeature[] = []): Promise<void> {
  const both = plain !== null && uses.some((f) => gpu.features.includes(f));
  const [gpuMs, plainMs = null] = await timeEach(reps, both ? [() => gpuRun(gpu), () => gpuRun(plain)] : [() => gpuRun(gpu)], freeAll);
  const floorMs = await floor(floorKind, floorBytes);
  let cpuMs: number | null = null;
  if (cpuRun) {
    await cpuRun();
    const ms: number[] = [];
    for (let i = 0; i < cpuReps; i++) {
      const t0 = performance.now();
      sink += ((await cpuRun()) as object) ? 1 : 0;
      ms.push(performance.now() - t0);
    }
    cpuMs = median(ms);
  }
  const row = { op, shape: shapeText, gpuMs, plainMs, floor: `${floorKind} ${(floorBytes / 2 ** 20).toFixed(1)} MiB`, floorMs, cpuMs, gbs: bytes / gpuMs / 1e6, gflops: flops === null ? null : flops / gpuMs / 1e6 };
  rows.push(row);
  const f = (x: number | null, d = 2) => (x === null ? '-' : x.toFixed(d));
  console.log(`${op.padEnd(24)} ${shapeText.padEnd(40)} ${f(gpuMs).padStart(9)} ms  ${f(row.gbs).padStart(8)} GB/s  ${f(row.gflops).padStart(9)} GFLOP/s  ` +
    (plain ? `plain ${f(plainMs).padStart(9)} ms${plainMs === null ? '' : ` (x${f(plainMs / gpuMs)})`}  ` : '') +
    `floor ${f(floorMs).padStart(8)} ms (x${f(gpuMs / floorMs)})  cpu2 ${f(cpuMs).padStart(9)} ms (${cpuMs === null ? '-' : `x${f(cpuMs / gpuMs)} faster`})`);
}

const info = gpu.adapter;
console.log(`adapter: ${[info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' / ') || '(no info)'}`);
console.log(`limits: maxStorageBufferBindingSize ${device.limits.maxStorageBufferBindingSize}, maxBufferSize ${device.limits.maxBufferSize}, ` +
  `maxComputeWorkgroupStorageSize ${device.limits.maxComputeWorkgroupStorageSize}; features: ${[...device.features].sort().join(', ')}`);
console.log(`programs use: ${gpu.features.join(', ') || 'no optional feature'}${plain ? ' (the plain column: the same ops with none)' : ''}`);
console.log(`machine: ${machine()}; reps ${reps} (GPU), ${cpuReps} (CPU, 2 threads)${skipCpu ? ', CPU skipped' : ''}\n`);

const { t, s, k, h, d } = shape;
const up = <T extends Float32Array | Int32Array>(data: T, dims: number[]) => gpu.upload({ data, shape: dims } as Tensor<T>);
const up8 = (x: Tensor<Int8Array>) => gpu.upload(x);

// Mask [1, t, s] from k distinct indices per row.
const idx = { data: distinctIndices(t, k, s, 1), shape: [1, t, k] };
const idxGpu = up(idx.data, idx.shape);
for (const form of ['additive', 'bits'] as const) {
  const bytes = form === 'bits' ? t * Math.ceil(s / 32) * 4 : t * s * 4;
  await measure(`mask ${form}`, `[1, ${t}, ${s}] k=${k}`, bytes, null, 'clear', bytes,
    (b) => b.generateMask(idxGpu, s, { form, resident: true }), pool && (() => pool.generateMask(idx, s, { form })));
}

// Top-k of normal scores [1, t, s].
const scores = { data: floats(t * s, 2, true), shape: [1, t, s] };
const scoresGpu = up(scores.data, scores.shape);
await measure('topk', `[${t}, ${s}] k=${k}`, t * s * 4, null, 'copy', t * s * 4,
  (b) => b.topk(scoresGpu, k, { resident: true }), pool && (() => pool.topk(scores, k)), ['subgroups']);
// The threshold mask (MaxText's merged form) from those scores and their top-k values, and the causal mask.
const topValues = { data: (await pool?.topk(scores, k))?.values.data ?? (await gpu.topk(scores, k)).values.data, shape: [1, t, k] };
const topValuesGpu = up(topValues.data, topValues.shape);
await measure('maskFromThreshold', `[1, ${t}, ${s}] k=${k} additive`, t * s * 8, null, 'clear', t * s * 4,
  (b) => b.maskFromThreshold(scoresGpu, topValuesGpu, { resident: true }), pool && (() => pool.maskFromThreshold(scores, topValues)));
await measure('causalMask', `[1, ${t}, ${s}] additive`, t * s * 4, null, 'clear', t * s * 4,
  (b) => b.causalMask(1, t, s, s - t, 'additive', { resident: true }), pool && (() => pool.causalMask(1, t, s, s - t, 'additive')));
scoresGpu.destroy();
topValuesGpu.destroy();

// Indexer scores and the fused top-k.
const q = { data: floats(t * h * d, 3), shape: [1, t, h, d] }, keys = { data: floats(s * d, 4), shape: [1, s, d] }, w = { data: floats(t * h, 5), shape: [1, t, h] };
const [qG, kG, wG] = [up(q.data, q.shape), up(keys.data, keys.shape), up(w.data, w.shape)];
const flops = 2 * t * s * h * d;
await measure('indexerScores', `t=${t} s=${s} h=${h} d=${d}`, (t * h * d + s * d + t * s) * 4, flops, 'clear', t * s * 4,
  (b) => b.indexerScores(qG, kG, wG, { resident: true }), pool && (() => pool.indexerScores(q, keys, w)));
await measure('indexerTopk (fused)', `t=${t} s=${s} h=${h} d=${d} k=${k}`, (t * h * d + s * d) * 4, flops, 'clear', t * k * 8,
  (b) => b.indexerTopk(qG, kG, wG, k, { resident: true }),
  pool && (async () => pool.topk(await pool.indexerScores(q, keys, w), k)), ['subgroups']);

// The quantized precisions with keys quantized once (a cache), as a decode loop keeps them.
const keys8 = quantizeKeys(keys, { shared: true });
const keys8G = { values: up8(keys8.values), scales: up(keys8.scales.data, keys8.scales.shape) };
for (const precision of ['int8', 'int7'] as const) {
  await measure(`indexerScores ${precision}`, `t=${t} s=${s} h=${h} d=${d} quantizeKeys`, t * h * d * 4 + s * (d + 4 * Math.ceil(d / 128)) + t * s * 4, flops, 'clear', t * s * 4,
    (b) => b.indexerScores(qG, keys8G, wG, { precision, resident: true }), pool && (() => pool.indexerScores(q, keys8, w, { precision })), ['shader-f16']);
}
const keysFp8 = quantizeKeysFp8(keys, { shared: true });
const keysFp8G = { ...keysFp8, data: gpu.upload({ data: keysFp8.data, shape: [keysFp8.data.length] }) };
await measure('indexerScores fp8', `t=${t} s=${s} h=${h} d=${d} FP8 keys`, t * h * d * 4 + s * (d + 4) + t * s * 4, flops, 'clear', t * s * 4,
  (b) => b.indexerScores(qG, keysFp8G, wG, { precision: 'fp8', resident: true }), pool && (() => pool.indexerScores(q, keysFp8, w, { precision: 'fp8' })), ['shader-f16']);

// Serving forms: an FP8 cache in shuffled pages of 64 (a block table, seqLens; the t queries the sequence's last
// tokens), and a ragged batch of 4 sequences of s / 4 keys and t / 4 queries each.
const P = 64, blocks = Math.ceil(s / P);
const order = Array.from({ length: blocks }, (_, i) => i).sort((x, y) => ((x * 7919) % blocks) - ((y * 7919) % blocks) || x - y);
const pagedFloats = allocShared(Float32Array, blocks * P * d);
for (let blk = 0; blk < blocks; blk++) pagedFloats.set(keys.data.subarray(blk * P * d, Math.min(s, (blk + 1) * P) * d), order[blk] * P * d);
const pagesFp8 = quantizeKeysFp8({ data: pagedFloats, shape: [blocks, P, d] }, { shared: true });
const pagesFp8G = { ...pagesFp8, data: gpu.upload({ data: pagesFp8.data, shape: [pagesFp8.data.length] }) };
const paged = { precision: 'fp8' as const, blockTable: { data: Int32Array.from(order), shape: [1, blocks] }, seqLens: Int32Array.from([s]) };
const causalFlops = 2 * h * d * (t * s - (t * (t - 1)) / 2);
await measure('indexerScores fp8 paged', `t=${t} s=${s} h=${h} d=${d} pages of ${P}`, t * h * d * 4 + s * (d + 4) + t * s * 4, causalFlops, 'clear', t * s * 4,
  (b) => b.indexerScores(qG, pagesFp8G, wG, { ...paged, resident: true }), pool && (() => pool.indexerScores(q, pagesFp8, w, paged)), ['shader-f16']);
await measure('indexerTopk fp8 paged', `t=${t} s=${s} h=${h} d=${d} k=${k} pages of ${P}`, t * h * d * 4 + s * (d + 4), causalFlops, 'clear', t * k * 8,
  (b) => b.indexerTopk(qG, pagesFp8G, wG, k, { ...paged, resident: true }),
  pool && (async () => pool.topk(await pool.indexerScores(q, pagesFp8, w, paged), k, { seqLens: paged.seqLens })), ['subgroups', 'shader-f16']);
const nSeq = Math.min(4, t), tq = Math.floor(t / nSeq), sk = Math.floor(s / nSeq);
const ragged = { cuSeqlensQ: Int32Array.from({ length: nSeq + 1 }, (_, i) => i * tq), cuSeqlensK: Int32Array.from({ length: nSeq + 1 }, (_, i) => i * sk) };
const rq = { data: q.data.subarray(0, nSeq * tq * h * d), shape: [1, nSeq * tq, h, d] }, rk = { data: keys.data.subarray(0, nSeq * sk * d), shape: [1, nSeq * sk, d] };
const rw = { data: w.data.subarray(0, nSeq * tq * h), shape: [1, nSeq * tq, h] };
const [rqG, rkG, rwG] = [up(rq.data, rq.shape), up(rk.data, rk.shape), up(rw.data, rw.shape)];
const raggedFlops = 2 * h * d * nSeq * (tq * sk - (tq * (tq - 1)) / 2);
await measure('indexerScores ragged', `${nSeq} x (t=${tq} s=${sk}) h=${h} d=${d}`, (nSeq * tq * h * d + nSeq * sk * d + nSeq * tq * sk) * 4, raggedFlops, 'clear', nSeq * tq * sk * 4,
  (b) => b.indexerScores(rqG, rkG, rwG, { ragged, resident: true }), pool && (() => pool.indexerScores(rq, rk, rw, { ragged })));
[qG, kG, wG, rqG, rkG, rwG, keys8G.values, keys8G.scales, keysFp8G.data, pagesFp8G.data].forEach((x) => x.destroy());

// Sparse attention, MLA's shape (one kv head).
const { at, hq, dqk, dV } = shape;
const aq = { data: floats(at * hq * dqk, 6), shape: [at, hq, dqk] }, kv = { data: floats(s * dqk, 7), shape: [s, 1, dqk] };
const aidx = { data: distinctIndices(at, k, s, 8), shape: [at, 1, k] };
const [aqG, kvG, aiG] = [up(aq.data, aq.shape), up(kv.data, kv.shape), up(aidx.data, aidx.shape)];
await measure('sparseAttention', `t=${at} hq=${hq} k=${k} dqk=${dqk} dV=${dV}`, at * k * dqk * 4, 2 * at * hq * k * (dqk + dV), 'copy', at * k * dqk * 4,
  (b) => b.sparseAttention(aqG, kvG, aiG, { dV, resident: true }), pool && (() => pool.sparseAttention(aq, kv, aidx, { dV })));

if (!smoke) writeResults(option('results') ?? 'webgpu.json', JSON.stringify({ date: new Date().toISOString(), machine: machine(), adapter: info, features: gpu.features, limits: {
  maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize, maxBufferSize: device.limits.maxBufferSize,
}, shape, reps, cpuReps, results: rows, sink }, null, 2) + '\n');
await pool?.close();
plain?.destroy();
gpu.destroy();
