// Benchmark of exact top-k against the machine's floor and the peers a user
// would pick instead. Run: npm run bench:topk [-- --smoke] [--t 1024 --s 131072 --k 2048]
//
// Seeded normal scores [1, t, s] (in a SharedArrayBuffer, so the pool reads
// them in place), k slots, then
//   floor            one streaming read-and-reduce pass over the scores (1 thread; 2 threads on a pool)
//   topk             topk(scores, k), sorted (1 thread; 2 threads on createPool)
//   topk unsorted    the same set, slot order unspecified
//   onnxruntime-node a one-node TopK graph (largest, sorted), 2 intra-op threads
//   tfjs-wasm        @tensorflow/tfjs-core topk on @tensorflow/tfjs-backend-wasm
// Every result is checked against topk's: same values slot by slot, each
// index holding its value (and the pool's result is bit-identical).
import { loadavg } from 'node:os';
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { topk, type TopkResult } from '../src/index.js';
import { createPool } from '../src/pool/index.js';
import { createWorkerPool } from '../src/pool/pool.js';
import { readReduce } from './topk-floor.js';
import { OnnxType, onnxAttr, onnxModel, onnxNode, onnxTensor, onnxValueInfo } from './onnx-model.js';
import { flag, machine, median, option, quietly, rng, writeResults } from './common.js';

const smoke = flag('smoke');
const b = 1;
const t = Number(option('t') ?? (smoke ? 8 : 1024));
const s = Number(option('s') ?? (smoke ? 4096 : 131072));
const k = Number(option('k') ?? (smoke ? 64 : 2048));
const reps = Number(option('reps') ?? (smoke ? 2 : 7));
const rows = b * t;

function normalScores(seed: number): Float32Array {
  const next = rng(seed);
  const data = new Float32Array(new SharedArrayBuffer(rows * s * 4));
  for (let i = 0; i < data.length; i++) data[i] = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  return data;
}

let sink = 0;

/**
 * A peer's top-k against ours: the same value in every slot, and each peer
 * index holding that value in the scores. Returns the rows whose index sets
 * differ (only possible through equal values at the k-th place).
 */
function checkPeer(what: string, scores: Float32Array, ours: TopkResult, values: ArrayLike<number>, indices: ArrayLike<number | bigint>): number {
  let tieRows = 0;
  for (let r = 0; r < rows; r++) {
    let differs = false;
    for (let i = r * k; i < (r + 1) * k; i++) {
      const j = Number(indices[i]);
      if (!Object.is(values[i], ours.values.data[i])) throw new Error(`${what}: row ${r} slot ${i - r * k}: value ${values[i]}, topk ${ours.values.data[i]}`);
      if (!(j >= 0 && j < s) || !Object.is(scores[r * s + j], values[i])) throw new Error(`${what}: row ${r} slot ${i - r * k}: index ${j} does not hold value ${values[i]}`);
      if (j !== ours.indices.data[i]) differs = true;
    }
    if (differs) tieRows++;
  }
  return tieRows;
}

function topkModel(): Uint8Array {
  return onnxModel({
    name: 'topk',
    nodes: [onnxNode('TopK', ['scores', 'k'], ['values', 'indices'], [onnxAttr.int('axis', 1), onnxAttr.int('largest', 1), onnxAttr.int('sorted', 1)])],
    initializers: [onnxTensor(OnnxType.INT64, [1], new BigInt64Array([BigInt(k)]), 'k')],
    inputs: [onnxValueInfo('scores', OnnxType.FLOAT, [rows, s])],
    outputs: [onnxValueInfo('values', OnnxType.FLOAT, [rows, k]), onnxValueInfo('indices', OnnxType.INT64, [rows, k])],
  });
}

interface Row {
  name: string;
  threads: number;
  ms: number;
  minMs: number;
  note?: string;
}

const f = (x: number, digits = 2) => x.toFixed(digits);

async function main(): Promise<void> {
  console.log(`topk benchmark: scores [${b}, ${t}, ${s}] k=${k} reps=${reps}${smoke ? ' (smoke)' : ''}`);
  const scores = normalScores(20260 + s + k);
  const tensor = { data: scores, shape: [b, t, s] };

  const pool = createPool({ threads: 2 });
  const floorPool = createWorkerPool({ threads: 2, registry: new URL('./topk-floor.ts', import.meta.url) });
  const sums = new Float64Array(new SharedArrayBuffer(rows * 8));
  const ours = topk(tensor, k);
  const peers = !flag('no-peers');

  // onnxruntime-node takes no SharedArrayBuffer views: a plain copy, made once.
  const session = peers ? await ort.InferenceSession.create(topkModel(), { intraOpNumThreads: 2, interOpNumThreads: 1 }) : null;
  const feeds = peers ? { scores: new ort.Tensor('float32', Float32Array.from(scores), [rows, s]) } : null;
  if (peers) await quietly(() => tf.setBackend('wasm')); // tfjs prints adverts and warnings on start-up
  const x = peers ? tf.tensor2d(scores, [rows, s]) : null;

  interface Contender {
    name: string;
    threads: number;
    /** Runs once; returns a number for the sink. */
    run: () => number | Promise<number>;
    /** Checks the last result; returns a note. */
    check?: () => string;
    times: number[];
  }
  let ortOut: ort.InferenceSession.OnnxValueMapType | undefined;
  let tfOut: { values: Float32Array; indices: Int32Array } | undefined;
  let pooled: TopkResult | undefined;
  const contenders: Contender[] = [
    { name: 'floor read', threads: 1, run: () => (readReduce({ scores, sums, s }, 0, rows), sums[0]), times: [] },
    { name: 'floor read', threads: 2, run: async () => (await floorPool.runRows('bench.readReduce', { scores, sums, s }, 0, rows), sums[1]), times: [] },
    { name: 'topk', threads: 1, run: () => topk(tensor, k).values.data[0], times: [] },
    {
      name: 'topk',
      threads: 2,
      run: async () => (pooled = await pool.topk(tensor, k)).values.data[1],
      check: () => {
        if (!pooled!.indices.data.every((j, i) => j === ours.indices.data[i])) throw new Error('pool topk differs from topk');
        return 'bit-identical to 1 thread';
      },
      times: [],
    },
    { name: 'topk unsorted', threads: 1, run: () => topk(tensor, k, { sorted: false }).values.data[0], times: [] },
    { name: 'topk unsorted', threads: 2, run: async () => (await pool.topk(tensor, k, { sorted: false })).values.data[1], times: [] },
  ];
  if (peers) {
    contenders.push(
      {
        name: 'onnxruntime-node',
        threads: 2,
        run: async () => ((ortOut = await session!.run(feeds!)).values.data as Float32Array)[0],
        check: () => {
          const ties = checkPeer('onnxruntime-node', scores, ours, ortOut!.values.data as Float32Array, ortOut!.indices.data as BigInt64Array);
          ortOut = undefined;
          return `TopK node, checked${ties ? `, ${ties} rows differ by ties` : ''}`;
        },
        times: [],
      },
      {
        name: 'tfjs-wasm',
        threads: 1,
        run: () => {
          const r = tf.topk(x!, k, true);
          tfOut = { values: r.values.dataSync() as Float32Array, indices: r.indices.dataSync() as Int32Array };
          r.values.dispose();
          r.indices.dispose();
          return tfOut.values[0];
        },
        check: () => {
          const ties = checkPeer('tfjs-wasm', scores, ours, tfOut!.values, tfOut!.indices);
          tfOut = undefined;
          return `tf.topk, checked${ties ? `, ${ties} rows differ by ties` : ''}`;
        },
        times: [],
      },
    );
  }

  // Warm-up (starts the workers, compiles everything) and the checks, then
  // rounds in which every contender runs once, so load from other work on
  // the machine falls on all of them alike.
  const notes = new Map<Contender, string>();
  for (const c of contenders) {
    sink += await c.run();
    if (c.check) notes.set(c, c.check());
  }
  for (let round = 0; round < reps; round++) {
    for (const c of contenders) {
      const start = performance.now();
      sink += await c.run();
      c.times.push(performance.now() - start);
    }
  }
  await pool.close();
  await floorPool.close();
  await session?.release();
  x?.dispose();

  const results: Row[] = contenders.map((c) => ({ name: c.name, threads: c.threads, ms: median(c.times), minMs: Math.min(...c.times), note: notes.get(c) }));
  for (const r of results) console.log(`  ${r.name.padEnd(18)} ${r.threads}t ${f(r.ms).padStart(10)} ms${r.note ? `  (${r.note})` : ''}`);

  const find = (name: string, threads: number) => results.find((r) => r.name === name && r.threads === threads);
  const topk2 = find('topk', 2)!;
  const lines = [
    `| contender | threads | median ms | min ms | / floor (same threads) | / topk 2t | note |`,
    `|---|---:|---:|---:|---:|---:|---|`,
  ];
  for (const r of results) {
    const floor = find('floor read', Math.min(r.threads, 2));
    lines.push(`| ${r.name} | ${r.threads} | ${f(r.ms)} | ${f(r.minMs)} | ${floor ? f(r.ms / floor.ms) : ''} | ${f(r.ms / topk2.ms)} | ${r.note ?? ''} |`);
  }
  const summary: string[] = [];
  const floor2 = find('floor read', 2), onnx = find('onnxruntime-node', 2), tfjs = find('tfjs-wasm', 1);
  if (floor2) summary.push(`topk 2t / read floor 2t: ${f(topk2.ms / floor2.ms)}x (target <= 3x)`);
  if (onnx) summary.push(`onnxruntime-node TopK 2t / topk 2t: ${f(onnx.ms / topk2.ms, 1)}x (target >= 2x)`);
  if (tfjs) summary.push(`tfjs-wasm topk / topk 2t: ${f(tfjs.ms / topk2.ms, 1)}x (target >= 3x)`);
  // The machine is shared: the load says how much the numbers can be trusted.
  summary.push(`load average at the end (1, 5, 15 min): ${loadavg().map((x) => f(x)).join(', ')}`);
  console.log('\n' + lines.join('\n') + '\n\n' + summary.map((x) => `- ${x}`).join('\n'));

  if (!smoke) {
    const json = {
      date: new Date().toISOString(),
      machine: machine(),
      shape: { b, t, s, k },
      reps,
      results,
      summary,
      table: lines.join('\n'),
      sink,
    };
    writeResults('topk.json', JSON.stringify(json, null, 2) + '\n');
  }
}

await main();
