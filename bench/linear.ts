// linear (src/weights/linear.ts) at decode sizes: DeepSeek-V3.2 projection
// shapes, rows n in {1, 8}, float32 / bf16 / FP8 weights (both readings),
// 1 thread and the pool of 2, against
//   the read floor: the weight's bytes copied in 64 KiB chunks into a
//     buffer that stays in cache (bench/linear-floor.ts on the pool), which
//     is how the kernels take a block in before decoding it (one thread
//     reads plain arrays, the pool shared ones, each floor from the same);
//   onnxruntime-node MatMul on float32 weights, and its 8-bit weights
//     (MatMulNBits bits = 8, block 128 along in; DynamicQuantizeMatMul
//     where the first is refused), 1 and 2 intra-op threads.
// Seeded data, warm-up, medians of --reps samples (each sample enough calls
// for ~20 ms), results checked (the pool bit-identical to one thread,
// onnxruntime's float32 within 1e-5 of ours, its 8-bit within 2e-2);
// GB/s of weight bytes and ratios to the floor of the same bytes and
// threads. Writes bench/results/linear.json. --smoke: tiny shapes, 3 reps.
import * as ort from 'onnxruntime-node';
import { createPool } from '../src/pool/index.js';
import { createWorkerPool } from '../src/pool/pool.js';
import { linear, type LinearOptions } from '../src/weights/linear.js';
import { dequantizeWeight, quantizeWeightFp8, shareWeight, toBf16, weightBytes, type Weight } from '../src/weights/weight.js';
import { allocShared, type Tensor } from '../src/tensor.js';
import { normals } from '../src/cli/demo-data.js';
import { bitIdentical, checkClose, flag, machine, median, option, quietly, rng, writeResults } from './common.js';
import { OnnxType, ProtoWriter, onnxAttr, onnxNode, onnxTensor, onnxValueInfo } from './onnx-model.js';

const smoke = flag('smoke');
const reps = Number(option('reps') ?? (smoke ? 3 : 15));
const SHAPES = smoke
  ? [{ name: 'small', out: 256, in: 384 }]
  : [
      { name: 'indexer wq_b', out: 8192, in: 1536 },
      { name: 'wq_a', out: 1536, in: 7168 },
    ];
const ROWS = [1, 8];

/** Milliseconds per call of `run`: the median of `reps` samples, each of enough calls for about 20 ms, after a warm-up. */
async function timed(run: () => unknown | Promise<unknown>): Promise<number> {
  const start = performance.now();
  let calls = 0;
  while (calls < 3 || performance.now() - start < 30) {
    await run();
    calls++;
  }
  const per = Math.max(1, Math.round(20 / ((performance.now() - start) / calls)));
  const samples: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    for (let i = 0; i < per; i++) await run();
    samples.push((performance.now() - t) / per);
  }
  return median(samples);
}

/** ModelProto (ir 8) with ai.onnx 17 and com.microsoft 1 around one node's graph. */
function model(node: ProtoWriter, initializers: ProtoWriter[], inputs: ProtoWriter[], outputs: ProtoWriter[]): Uint8Array {
  const g = new ProtoWriter().message(1, node).string(2, 'linear');
  for (const t of initializers) g.message(5, t);
  for (const i of inputs) g.message(11, i);
  for (const o of outputs) g.message(12, o);
  return new ProtoWriter()
    .int(1, 8)
    .string(2, 'dsa-ts bench')
    .message(7, g)
    .message(8, new ProtoWriter().string(1, '').int(2, 17))
    .message(8, new ProtoWriter().string(1, 'com.microsoft').int(2, 1))
    .done();
}

/** MatMul(x [n, in], W^T [in, out]) with float32 weights. */
function matMulModel(values: Float32Array, out: number, inDim: number): Uint8Array {
  const t = new Float32Array(out * inDim);
  for (let o = 0; o < out; o++) for (let j = 0; j < inDim; j++) t[j * out + o] = values[o * inDim + j];
  return model(
    onnxNode('MatMul', ['x', 'W'], ['y']),
    [onnxTensor(OnnxType.FLOAT, [inDim, out], t, 'W')],
    [onnxValueInfo('x', OnnxType.FLOAT, ['n', inDim])],
    [onnxValueInfo('y', OnnxType.FLOAT, ['n', out])],
  );
}

/** MatMulNBits (com.microsoft), 8 bits, blocks of 128 along in, symmetric around zero point 128. */
function matMulNBitsModel(values: Float32Array, out: number, inDim: number): Uint8Array {
  const blocks = Math.ceil(inDim / 128);
  const q = new Uint8Array(out * blocks * 128), scales = new Float32Array(out * blocks), zeros = new Uint8Array(out * blocks).fill(128);
  for (let o = 0; o < out; o++) {
    for (let b = 0; b < blocks; b++) {
      let amax = 0;
      for (let j = b * 128; j < Math.min(inDim, b * 128 + 128); j++) amax = Math.max(amax, Math.abs(values[o * inDim + j]));
      const s = amax === 0 ? 1 : amax / 127;
      scales[o * blocks + b] = s;
      for (let j = 0; j < 128; j++) {
        const v = b * 128 + j < inDim ? values[o * inDim + b * 128 + j] : 0;
        q[(o * blocks + b) * 128 + j] = Math.max(1, Math.min(255, Math.round(v / s) + 128));
      }
    }
  }
  return model(
    onnxNode('MatMulNBits', ['x', 'B', 'scales', 'zeros'], ['y'], [onnxAttr.int('K', inDim), onnxAttr.int('N', out), onnxAttr.int('bits', 8), onnxAttr.int('block_size', 128), onnxAttr.int('accuracy_level', 4)]).string(7, 'com.microsoft'),
    [onnxTensor(OnnxType.UINT8, [out, blocks, 128], q, 'B'), onnxTensor(OnnxType.FLOAT, [out * blocks], scales, 'scales'), onnxTensor(OnnxType.UINT8, [out * blocks], zeros, 'zeros')],
    [onnxValueInfo('x', OnnxType.FLOAT, ['n', inDim])],
    [onnxValueInfo('y', OnnxType.FLOAT, ['n', out])],
  );
}

/** DynamicQuantizeMatMul (com.microsoft): x quantized per call, int8 W^T with one scale per output column. */
function dynamicQuantizeModel(values: Float32Array, out: number, inDim: number): Uint8Array {
  const q = new Int8Array(inDim * out), scales = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    let amax = 0;
    for (let j = 0; j < inDim; j++) amax = Math.max(amax, Math.abs(values[o * inDim + j]));
    scales[o] = amax === 0 ? 1 : amax / 127;
    for (let j = 0; j < inDim; j++) q[j * out + o] = Math.round(values[o * inDim + j] / scales[o]);
  }
  const INT8 = 3;
  return model(
    onnxNode('DynamicQuantizeMatMul', ['x', 'B', 'scales'], ['y']).string(7, 'com.microsoft'),
    [onnxTensor(INT8, [inDim, out], q, 'B'), onnxTensor(OnnxType.FLOAT, [out], scales, 'scales')],
    [onnxValueInfo('x', OnnxType.FLOAT, ['n', inDim])],
    [onnxValueInfo('y', OnnxType.FLOAT, ['n', out])],
  );
}

async function session(bytes: Uint8Array, threads: number): Promise<ort.InferenceSession> {
  return quietly(() => ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' }));
}

interface Row {
  shape: string;
  out: number;
  in: number;
  n: number;
  contender: string;
  threads: number;
  weightBytes: number;
  ms: number;
  gbPerS: number;
  floorMs: number;
  perFloor: number;
  perOnnxFloat32: number | null;
}

async function main(): Promise<void> {
  const pool = createPool({ threads: 2 });
  const floorPool = createWorkerPool({ threads: 2, registry: new URL('./linear-floor.ts', import.meta.url) });
  const rows: Row[] = [];
  let eightBit = '';
  try {
    for (const shape of SHAPES) {
      const { out, in: inDim } = shape;
      const values = normals(rng(out + inDim), out * inDim, 0.05);
      const fp8 = quantizeWeightFp8({ data: values, shape: [out, inDim] });
      // Every form holds the FP8 weight's values, so all contenders compute (nearly) the same product.
      const exact = dequantizeWeight(fp8);
      // One thread reads plain arrays; the pool reads shared ones in place (copying out of a
      // SharedArrayBuffer is the engine's relaxed copy, slower than memcpy: both floors show it).
      const weights: Record<string, Weight> = {
        float32: { format: 'float32', shape: [out, inDim], data: exact },
        bf16: { format: 'bf16', shape: [out, inDim], data: toBf16(exact) },
        fp8,
      };
      const shared: Record<string, Weight> = Object.fromEntries(Object.entries(weights).map(([k, w]) => [k, shareWeight(w)]));
      const contenders: { name: string; form: string; opts: LinearOptions }[] = [
        { name: 'float32', form: 'float32', opts: {} },
        { name: 'bf16', form: 'bf16', opts: {} },
        { name: 'fp8 read bf16', form: 'fp8', opts: { gemmImpl: 'bf16' } },
        { name: 'fp8 read fp8', form: 'fp8', opts: { gemmImpl: 'fp8' } },
      ];
      const ortFloat = [await session(matMulModel(exact, out, inDim), 1), await session(matMulModel(exact, out, inDim), 2)];
      let ort8: ort.InferenceSession[] = [];
      try {
        ort8 = [await session(matMulNBitsModel(exact, out, inDim), 1), await session(matMulNBitsModel(exact, out, inDim), 2)];
        eightBit = 'MatMulNBits bits=8 block 128';
      } catch {
        ort8 = [await session(dynamicQuantizeModel(exact, out, inDim), 1), await session(dynamicQuantizeModel(exact, out, inDim), 2)];
        eightBit = 'DynamicQuantizeMatMul int8';
      }
      const floors = new Map<string, number>();
      const floor = async (bytes: Uint8Array, threads: number): Promise<number> => {
        const key = `${bytes.length}/${threads}/${bytes.buffer instanceof SharedArrayBuffer}`;
        if (!floors.has(key)) {
          const chunks = Math.ceil(bytes.length / 65536);
          const sink = new Uint8Array(65536);
          floors.set(
            key,
            threads === 1
              ? await timed(() => {
                  for (let c = 0; c < chunks; c++) sink.set(bytes.subarray(c * 65536, Math.min(bytes.length, (c + 1) * 65536)));
                })
              : await timed(() => floorPool.runRows('bench.read', { bytes }, 0, chunks)),
          );
        }
        return floors.get(key)!;
      };
      const bytesOf = (w: Weight) => new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength);
      for (const n of ROWS) {
        const xData = allocShared(Float32Array, n * inDim);
        xData.set(normals(rng(n), n * inDim));
        const x: Tensor<Float32Array> = { data: xData, shape: [n, inDim] };
        const yShared = allocShared(Float32Array, n * out);
        const feeds = { x: new ort.Tensor('float32', xData.slice(), [n, inDim]) };
        const onnxMs: number[] = [];
        const reference = linear(x, weights.float32).data;
        for (const [i, threads] of [1, 2].entries()) {
          const ortOut = (await ortFloat[i].run(feeds)).y.data as Float32Array;
          checkClose(`onnxruntime MatMul n=${n}`, ortOut, reference, reference.length, 1e-5, 'differs from linear float32', 'y');
          const ms = await timed(() => ortFloat[i].run(feeds));
          onnxMs.push(ms);
          const f = await floor(bytesOf((threads === 1 ? weights : shared).float32), threads);
          rows.push({ shape: shape.name, out, in: inDim, n, contender: 'onnxruntime MatMul float32', threads, weightBytes: out * inDim * 4, ms, gbPerS: (out * inDim * 4) / ms / 1e6, floorMs: f, perFloor: ms / f, perOnnxFloat32: 1 });
          const q8 = (await ort8[i].run(feeds)).y.data as Float32Array;
          checkClose(`onnxruntime ${eightBit} n=${n}`, q8, reference, reference.length, 2e-2, 'differs from linear float32', 'y');
          const ms8 = await timed(() => ort8[i].run(feeds));
          const bytes8 = out * Math.ceil(inDim / 128) * (128 + 5);
          const f8 = await floor(bytesOf((threads === 1 ? weights : shared).fp8), threads);
          rows.push({ shape: shape.name, out, in: inDim, n, contender: `onnxruntime ${eightBit}`, threads, weightBytes: bytes8, ms: ms8, gbPerS: bytes8 / ms8 / 1e6, floorMs: f8, perFloor: ms8 / f8, perOnnxFloat32: ms8 / ms });
        }
        for (const c of contenders) {
          const w = weights[c.form], ws = shared[c.form];
          const one = linear(x, w, c.opts).data;
          checkClose(`${c.name} n=${n}`, one, reference, reference.length, c.opts.gemmImpl === 'fp8' ? 0.1 : 1e-2, 'differs from float32', 'y');
          const many = (await pool.linear(x, ws, { ...c.opts, out: yShared })).data;
          bitIdentical(`${c.name} pool n=${n}`, many, one);
          const bytes = weightBytes(w);
          for (const threads of [1, 2]) {
            const ms = threads === 1 ? await timed(() => linear(x, w, c.opts)) : await timed(() => pool.linear(x, ws, { ...c.opts, out: yShared }));
            const f = await floor(bytesOf(threads === 1 ? w : ws), threads);
            rows.push({ shape: shape.name, out, in: inDim, n, contender: `dsa ${c.name}`, threads, weightBytes: bytes, ms, gbPerS: bytes / ms / 1e6, floorMs: f, perFloor: ms / f, perOnnxFloat32: ms / onnxMs[threads - 1] });
          }
        }
      }
    }
  } finally {
    await pool.close();
    await floorPool.close();
  }
  const lines = [
    `| W [out, in] | n | contender | threads | weight MiB | median ms | GB/s | read floor ms | / floor | / onnxruntime float32 |`,
    `|---|---:|---|---:|---:|---:|---:|---:|---:|---:|`,
    ...rows.map((r) =>
      `| ${r.shape} [${r.out}, ${r.in}] | ${r.n} | ${r.contender} | ${r.threads} | ${(r.weightBytes / 2 ** 20).toFixed(1)} | ${r.ms.toFixed(3)} | ${r.gbPerS.toFixed(2)} | ${r.floorMs.toFixed(3)} | ${r.perFloor.toFixed(2)} | ${r.perOnnxFloat32 === null ? '' : r.perOnnxFloat32.toFixed(2)} |`,
    ),
  ];
  console.log(`linear benchmark, ${machine()}, reps ${reps}${smoke ? ' (smoke)' : ''}; onnxruntime 8-bit: ${eightBit}`);
  console.log(lines.join('\n'));
  if (!smoke) writeResults('linear.json', JSON.stringify({ date: new Date().toISOString(), machine: machine(), reps, onnxEightBit: eightBit, rows }, null, 2) + '\n');
}

await main();
