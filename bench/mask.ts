// Benchmark of the mask strategies against the machine's floor and the peers
// a user would pick instead. Run: npm run bench:mask [-- --smoke] [--s 8192,32768,131072]
//
// Per case (b, t, s, k): seeded top-k indices (k distinct keys a row), then
//   floor       Float32Array.fill of the mask buffer (1 thread; 2 threads on a pool)
//   scatter     generateMask additive (1 thread; 2 threads on createPool), same buffer;
//               on the pool also with the indices in a plain (non-shared) Int32Array
//   bool, bits  generateMask in those forms, 1 and 2 threads
//   broadcast   generateMask strategy 'broadcast' on a few rows, extrapolated to b*t rows
//   ort         onnxruntime-node, ConstantOfShape + ScatterElements, 2 intra-op threads
//   tfjs        @tensorflow/tfjs-core on tfjs-backend-cpu, fill + tensorScatterUpdate
// Every contender's mask is checked bit for bit against scatter's. Peak RSS of
// the float mask is measured in child processes (one contender each).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { generateMask, DEFAULT_MASK_VALUE, type MaskData, type MaskForm } from '../src/index.js';
import { createPool } from '../src/pool/index.js';
import { createWorkerPool } from '../src/pool/pool.js';
import { scatterMaskModel } from './mask-onnx.js';
import { wideFillRows } from './mask-floor.js';
import { flag, machine, median, option, quietly, rng, writeResults } from './common.js';

const smoke = flag('smoke');
const b = 1;
const t = smoke ? 8 : Number(option('t') ?? 1024);
const seedK = smoke ? 16 : 2048;
const sizes = (option('s') ?? (smoke ? '256' : '8192,32768,131072')).split(',').map(Number);
const reps = Number(option('reps') ?? (smoke ? 2 : 7));
const rows = b * t;

/** k distinct keys per row in [0, s), in random order (what a top-k returns, unsorted by key). */
function topkIndices(s: number, k: number, seed: number): Int32Array {
  const next = rng(seed);
  const data = new Int32Array(new SharedArrayBuffer(rows * k * 4));
  const taken = new Uint8Array(s);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < k; i++) {
      let j: number;
      do j = Math.floor(next() * s);
      while (taken[j]);
      taken[j] = 1;
      data[r * k + i] = j;
    }
    for (let i = 0; i < k; i++) taken[data[r * k + i]] = 0;
  }
  return data;
}

function sharedArray<T extends MaskData>(ctor: { new (buffer: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number }, length: number): T {
  return new ctor(new SharedArrayBuffer(length * ctor.BYTES_PER_ELEMENT));
}

/** FNV-1a over the bytes' 32-bit words: compares masks without keeping a copy. */
function hash(data: MaskData): number {
  const words = new Uint32Array(data.buffer, data.byteOffset, data.byteLength >>> 2);
  let h = 0x811c9dc5;
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i], 16777619);
  return h >>> 0;
}

function sameBits(a: MaskData, b: MaskData, what: string): void {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.byteLength >>> 2);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.byteLength >>> 2);
  if (x.length !== y.length) throw new Error(`${what}: ${x.length} words, expected ${y.length}`);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) throw new Error(`${what}: differs from scatter at word ${i}`);
}

let sink = 0;

type Stats = { median: number; min: number; times: number[] };

/** Like `time`, for several contenders timed in turn within each round. */
async function timeRounds(contenders: Record<string, () => number | Promise<number>>, warm = 2, n = reps): Promise<Record<string, Stats>> {
  const times: Record<string, number[]> = {};
  for (let round = 0; round < warm + n; round++) {
    for (const [name, run] of Object.entries(contenders)) {
      const start = performance.now();
      sink += await run();
      if (round >= warm) (times[name] ??= []).push(performance.now() - start);
    }
  }
  const stats: Record<string, Stats> = {};
  for (const [name, ts] of Object.entries(times)) stats[name] = { median: median(ts), min: Math.min(...ts), times: ts };
  return stats;
}

/** Median and min of `reps` timed calls after `warm` untimed ones; each call's result feeds the sink. */
async function time(run: () => number | Promise<number>, warm = 2, n = reps): Promise<Stats> {
  for (let i = 0; i < warm; i++) sink += await run();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    sink += await run();
    times.push(performance.now() - start);
  }
  return { median: median(times), min: Math.min(...times), times };
}

/**
 * Per-round ratios of a 2-thread contender to a 2-thread floor, timed side by
 * side (`${s}/${k} ${contender} / ${floor}`): robust to the machine's load.
 */
const pairedRatios: Record<string, number> = {};

interface Row {
  s: number;
  k: number;
  name: string;
  threads: number;
  ms: number;
  minMs: number;
  bytes: number;
  note?: string;
}

async function runCase(s: number, k: number, peers: boolean, pool: ReturnType<typeof createPool>, floorPool: ReturnType<typeof createWorkerPool>, quiet = false): Promise<Row[]> {
  const results: Row[] = [];
  const add = (name: string, threads: number, r: { median: number; min: number }, bytes: number, note?: string) => {
    results.push({ s, k, name, threads, ms: r.median, minMs: r.min, bytes, note });
    if (!quiet) console.log(`  s=${s} k=${k} ${name.padEnd(24)} ${String(threads).padStart(2)}t ${r.median.toFixed(2).padStart(10)} ms${note ? `  (${note})` : ''}`);
  };
  const data = topkIndices(s, k, 1234 + s + k);
  const indices = { data, shape: [b, t, k] };
  // The same indices in a plain array: the pool stages them into shared memory it keeps.
  const plainIndices = { data: Int32Array.from(data), shape: [b, t, k] };
  const float = sharedArray(Float32Array, rows * s);
  const bool = sharedArray(Uint8Array, rows * s);
  const plain = new Float32Array(rows * s); // not shared: V8's fill is a memset here
  const bits = sharedArray(Uint32Array, rows * ((s + 31) >>> 5));

  // Checks first: the pool equals one thread, bool and bits decode to the float mask.
  const expected = hash(generateMask(indices, s, { out: float }).data);
  if (hash((await pool.generateMask(indices, s, { out: float })).data) !== expected) throw new Error(`s=${s}: pool scatter differs from one thread`);
  if (hash((await pool.generateMask(plainIndices, s, { out: float })).data) !== expected) throw new Error(`s=${s}: pool scatter of plain indices differs`);
  for (const [form, out] of [['bool', bool], ['bits', bits]] as const) {
    const single = hash(generateMask(indices, s, { form, out }).data);
    if (hash((await pool.generateMask(indices, s, { form, out })).data) !== single) throw new Error(`s=${s}: pool ${form} differs`);
  }
  const words = (s + 31) >>> 5;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < s; j++) {
      const keptFloat = float[r * s + j] === 0;
      if (keptFloat !== (bool[r * s + j] === 1) || keptFloat !== (((bits[r * words + (j >>> 5)] >>> (j & 31)) & 1) === 1)) {
        throw new Error(`s=${s}: bool or bits differ from the float mask at row ${r}, key ${j}`);
      }
    }
  }

  // Round-robin over the contenders, so the machine's noise falls on all alike;
  // floor and scatter fill the same buffer with the same threads.
  const stats = await timeRounds({
    'floor fill/1': () => (float.fill(DEFAULT_MASK_VALUE), float[rows * s - 1]),
    'floor wide fill/1': () => (wideFillRows({ out: float, s }, 0, rows), float[1]),
    'scatter additive/1': () => generateMask(indices, s, { out: float }).data[data[0]],
    'floor fill/2': async () => (await floorPool.runRows('bench.fill', { out: float, s }, 0, rows), float[0]),
    'floor wide fill/2': async () => (await floorPool.runRows('bench.fill.wide', { out: float, s }, 0, rows), float[2]),
    'scatter additive/2': async () => (await pool.generateMask(indices, s, { out: float })).data[data[1]],
    'scatter additive, plain indices/2': async () => (await pool.generateMask(plainIndices, s, { out: float })).data[data[5]],
    'scatter additive, no index check/2': async () => (await pool.generateMask(indices, s, { out: float, outOfRange: 'skip' })).data[data[4]],
    'floor fill, plain buffer/1': () => (plain.fill(DEFAULT_MASK_VALUE), plain[3]),
    'scatter additive, plain buffer/1': () => generateMask(indices, s, { out: plain }).data[data[3]],
    'scatter bool/1': () => generateMask(indices, s, { form: 'bool', out: bool }).data[0],
    'scatter bool/2': async () => (await pool.generateMask(indices, s, { form: 'bool', out: bool })).data[1],
    'scatter bits/1': () => generateMask(indices, s, { form: 'bits', out: bits }).data[0],
    'scatter bits/2': async () => (await pool.generateMask(indices, s, { form: 'bits', out: bits })).data[1],
  });
  for (const contender of ['scatter additive', 'scatter additive, plain indices']) {
    for (const floor of ['floor fill', 'floor wide fill']) {
      pairedRatios[`${s}/${k} ${contender} / ${floor}`] = median(stats[`${contender}/2`].times.map((x, i) => x / stats[`${floor}/2`].times[i]));
    }
  }
  const notes: Record<string, string> = {
    'floor fill': 'Float32Array.fill, shared buffer',
    'floor wide fill': "the kernels' 8-byte fill alone",
    'scatter additive, no index check': "outOfRange 'skip': no check step",
    'scatter additive, plain indices': 'indices not shared (staged by the pool), out reused',
    'floor fill, plain buffer': 'Float32Array.fill, plain buffer (memset)',
  };
  for (const [key, r] of Object.entries(stats)) {
    const [name, threads] = key.split('/');
    add(name, Number(threads), r, name.includes('bits') ? bits.byteLength : name.includes('bool') ? bool.byteLength : float.byteLength, notes[name]);
  }
  if (hash(float) !== expected || hash(plain) !== expected) throw new Error(`s=${s}: a float mask differs after timing`);
  const floatBytes = float.byteLength;
  add('scatter additive, new mask', 1, await time(() => generateMask(indices, s).data[data[2]], 0, smoke ? 1 : 2), floatBytes, 'allocates and first-touches 4*t*s bytes each call');

  // Broadcast is O(rows*k*s): time a few rows and extrapolate to all rows.
  const sampled = Math.max(1, Math.min(rows, Math.round(4e8 / (s * k))));
  const block = sharedArray(Float32Array, sampled * s);
  const bc = await time(() => generateMask(indices, s, { strategy: 'broadcast', rows: [0, sampled], out: block }).data[0], 1, smoke ? 1 : 2);
  sameBits(block, float.subarray(0, sampled * s), `s=${s} broadcast`);
  const scale = rows / sampled;
  add('broadcast additive', 1, { median: bc.median * scale, min: bc.min * scale }, floatBytes, `${sampled} of ${rows} rows timed, x${scale.toFixed(0)}`);

  if (peers) {
    const session = await ort.InferenceSession.create(scatterMaskModel(rows, s, k, DEFAULT_MASK_VALUE), { intraOpNumThreads: 2, interOpNumThreads: 1 });
    // onnxruntime-node takes no SharedArrayBuffer views: a plain copy, made once.
    const feeds = { indices: new ort.Tensor('int32', Int32Array.from(data), [rows, k]) };
    let last: Float32Array | undefined;
    add('onnxruntime-node', 2, await time(async () => {
      const r = await session.run(feeds);
      last = r.mask.data as Float32Array;
      return last[0];
    }, 1), floatBytes, 'ConstantOfShape + ScatterElements');
    sameBits(last!, float, `s=${s} onnxruntime-node`);
    last = undefined;
    await session.release();

    // tfjs prints an advert for its native backend; this measures the cpu backend on purpose.
    await quietly(() => tf.setBackend('cpu'));
    const coords = new Int32Array(rows * k * 2);
    for (let i = 0; i < rows * k; i++) {
      coords[2 * i] = Math.floor(i / k);
      coords[2 * i + 1] = data[i];
    }
    const coordsT = tf.tensor2d(coords, [rows * k, 2], 'int32');
    const zeros = tf.zeros([rows * k], 'float32');
    let tfOut: Float32Array | undefined;
    add('tfjs-cpu', 1, await time(() => {
      const m = tf.tidy(() => tf.tensorScatterUpdate(tf.fill([rows, s], DEFAULT_MASK_VALUE, 'float32'), coordsT, zeros));
      tfOut = m.dataSync() as Float32Array;
      m.dispose();
      return tfOut[0];
    }, 1), floatBytes, 'fill + tensorScatterUpdate');
    sameBits(tfOut!, float, `s=${s} tfjs-cpu`);
    tfOut = undefined;
    coordsT.dispose();
    zeros.dispose();
  }
  return results;
}

function rssOf(contender: string, s: number): number {
  const script = fileURLToPath(new URL('./mask-rss.ts', import.meta.url));
  const child = spawnSync(process.execPath, ['--import', 'tsx', script, contender, String(t), String(s), String(seedK)], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`rss child ${contender}: ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').pop()!).maxRssBytes;
}

const MiB = 1024 * 1024;
const f = (x: number, digits = 2) => x.toFixed(digits);

async function main(): Promise<void> {
  const pool = createPool({ threads: 2 });
  const floorPool = createWorkerPool({ threads: 2, registry: new URL('./mask-floor.ts', import.meta.url) });
  const rowsOut: Row[] = [];
  try {
    console.log(`mask benchmark: b=${b} t=${t} k=${seedK} s=${sizes.join(',')} reps=${reps}${smoke ? ' (smoke)' : ''}`);
    // Warm-up: one untimed case, so every kernel is compiled on every thread
    // before the first timed size (workers compile on their own).
    if (!smoke) await runCase(sizes[0], seedK, false, pool, floorPool, true);
    for (const s of sizes) rowsOut.push(...(await runCase(s, seedK, !flag('no-peers'), pool, floorPool)));
    // Broadcast grows with k, scatter does not: one more k at the middle size.
    const mid = sizes[Math.floor(sizes.length / 2)];
    if (!smoke) rowsOut.push(...(await runCase(mid, seedK / 4, false, pool, floorPool)).filter((r) => /scatter additive$|broadcast|floor/.test(r.name)));
  } finally {
    await pool.close();
    await floorPool.close();
  }

  const seedS = sizes[sizes.length - 1];
  const rss: Record<string, number> = {};
  if (!flag('no-rss') && !smoke) {
    for (const c of ['baseline', 'scatter-1t', 'scatter-1t-reused-out', 'scatter-2t', 'onnxruntime-node', 'tfjs-cpu']) rss[c] = rssOf(c, seedS);
  }

  const find = (s: number, k: number, name: string, threads: number) => rowsOut.find((r) => r.s === s && r.k === k && r.name === name && r.threads === threads);
  const lines = [
    `| s | k | contender | threads | median ms | / fill floor | / wide fill floor | peer / scatter 2t | note |`,
    `|---:|---:|---|---:|---:|---:|---:|---:|---|`,
  ];
  for (const r of rowsOut) {
    const plainRow = r.name.includes('plain buffer');
    const floor = find(r.s, r.k, plainRow ? 'floor fill, plain buffer' : 'floor fill', Math.min(r.threads, 2));
    const wideFloor = plainRow ? undefined : find(r.s, r.k, 'floor wide fill', Math.min(r.threads, 2));
    const scatter2 = find(r.s, r.k, 'scatter additive', 2);
    const peer = /onnx|tfjs/.test(r.name) && scatter2 ? `${f(r.ms / scatter2.ms, 1)}x` : '';
    lines.push(`| ${r.s} | ${r.k} | ${r.name} | ${r.threads} | ${f(r.ms)} | ${floor ? f(r.ms / floor.ms) : ''} | ${wideFloor ? f(r.ms / wideFloor.ms) : ''} | ${peer} | ${r.note ?? ''} |`);
  }
  const summary: string[] = [];
  const k = seedK;
  const sc2 = find(seedS, k, 'scatter additive', 2), fl2 = find(seedS, k, 'floor fill', 2);
  const sc1 = find(seedS, k, 'scatter additive', 1), bits1 = find(seedS, k, 'scatter bits', 1), bits2 = find(seedS, k, 'scatter bits', 2);
  const onnx = find(seedS, k, 'onnxruntime-node', 2), tfjs = find(seedS, k, 'tfjs-cpu', 1);
  const wf2 = find(seedS, k, 'floor wide fill', 2);
  const plain2 = find(seedS, k, 'scatter additive, plain indices', 2);
  const paired = (contender: string, floor: string) => pairedRatios[`${seedS}/${k} ${contender} / ${floor}`];
  if (sc2 && fl2) summary.push(`scatter 2t / Float32Array.fill floor 2t: ${f(sc2.ms / fl2.ms)}x (target <= 1.15x)`);
  if (sc2 && wf2) summary.push(`scatter 2t / wide (8-byte) fill floor 2t: ${f(sc2.ms / wf2.ms)}x`);
  if (sc2 && wf2) summary.push(`scatter 2t / wide fill 2t, median of per-round ratios: ${f(paired('scatter additive', 'floor wide fill'))}x`);
  if (plain2 && fl2) {
    summary.push(
      `scatter 2t, plain indices / Float32Array.fill floor 2t: ${f(plain2.ms / fl2.ms)}x, median of per-round ratios ${f(paired('scatter additive, plain indices', 'floor fill'))}x (target <= 1.15x)`,
    );
  }
  if (plain2 && sc2) summary.push(`scatter 2t, plain indices / shared indices: ${f(plain2.ms / sc2.ms)}x`);
  if (sc2 && onnx) summary.push(`onnxruntime-node / scatter 2t: ${f(onnx.ms / sc2.ms, 1)}x (target >= 5x)`);
  if (sc2 && tfjs) summary.push(`tfjs-cpu / scatter 2t: ${f(tfjs.ms / sc2.ms, 1)}x (target >= 5x)`);
  if (sc1 && bits1) summary.push(`float32 / bits, 1 thread: ${f(sc1.ms / bits1.ms, 1)}x (target >= 4x)`);
  if (sc2 && bits2) summary.push(`float32 / bits, 2 threads: ${f(sc2.ms / bits2.ms, 1)}x (target >= 4x)`);
  summary.push('broadcast == scatter bit for bit on the timed rows, every size; pool == single thread; bits, ORT and tfjs == scatter');
  const maskBytes = rows * seedS * 4;
  if (rss['scatter-1t'] !== undefined) {
    const rssLines = [`| contender (s=${seedS}) | peak RSS MiB | over the ${maskBytes / MiB} MiB mask |`, `|---|---:|---:|`];
    for (const [c, bytes] of Object.entries(rss)) rssLines.push(`| ${c} | ${f(bytes / MiB, 0)} | ${c === 'baseline' ? '' : f((bytes - maskBytes) / MiB, 0)} |`);
    lines.push('', ...rssLines);
    summary.push(`peak RSS, float mask, 1 thread, one call: mask + ${f((rss['scatter-1t'] - maskBytes) / MiB, 0)} MiB (target <= 100 MiB; the same process without the mask: ${f(rss.baseline / MiB, 0)} MiB)`);
  }
  console.log('\n' + lines.join('\n') + '\n\n' + summary.map((x) => `- ${x}`).join('\n'));

  if (!smoke) {
    const json = {
      date: new Date().toISOString(),
      machine: machine(),
      shape: { b, t, k: seedK, s: sizes },
      reps,
      results: rowsOut,
      peakRssBytes: rss,
      pairedRatios,
      summary,
      table: lines.join('\n'),
      sink,
    };
    writeResults('mask.json', JSON.stringify(json, null, 2) + '\n');
  }
}

await main();
