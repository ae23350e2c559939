// A fuzz of linear (src/weights/linear.ts): float32, bf16 and FP8 weights
// (NaN and infinite patterns among them, block scales across the 128
// boundary), both readings of an FP8 weight (gemmImpl 'bf16' and 'fp8', with
// scaleFormat 'float32' and 'ue8m0'), x of rank 1 to 3 with NaN and
// Infinity, out (right, wrong, overlapping x), simd, and wrong formats,
// shapes, kinds and option names. The result must equal, bit for bit, the
// arithmetic the file's header defines, restated here with loops (the
// four-lane dot, weight_dequant and its bf16 cast, act_quant and the
// block-scaled FP8 GEMM); every refused call names its argument.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { linear } from '../../src/interop/index.js';
import { check, mostly, percent, report, sameBits, type Expected } from './harness.js';
import { e4m3Nearest, e4m3Value } from './definitions.js';

const f32 = Math.fround;
const F = new Float32Array(1), B = new Uint32Array(F.buffer);

/** The float32 value of bf16 bits. */
function bf16Value(bits: number): number {
  B[0] = (bits & 0xffff) << 16;
  return F[0];
}
/** float32 x rounded to the nearest bf16 (ties to even), as a float32 value; NaN stays NaN. */
function roundBf16(x: number): number {
  F[0] = x;
  if (Number.isNaN(F[0])) return NaN;
  return bf16Value((B[0] + 0x7fff + ((B[0] >>> 16) & 1)) >>> 16);
}


/** act_quant of one row, per block of 128: scale f32(max(amax, 1e-4) * f32(1/448)) (ue8m0: the next power of two), codes of f32(x / scale) clamped to 448. */
function actQuant(x: ArrayLike<number>, ue8m0: boolean): { codes: number[]; scales: number[] } {
  const codes: number[] = [], scales: number[] = [];
  for (let e0 = 0; e0 < x.length; e0 += 128) {
    const block = Array.from({ length: Math.min(128, x.length - e0) }, (_, i) => x[e0 + i]);
    const amax = block.every(Number.isFinite) ? Math.max(0, ...block.map(Math.abs)) : NaN;
    let scale = Number.isNaN(amax) ? NaN : f32(Math.max(amax, f32(1e-4)) * f32(1 / 448));
    if (ue8m0 && !Number.isNaN(scale)) scale = 2 ** Math.ceil(Math.log2(scale));
    scales.push(scale);
    for (const v of block) codes.push(e4m3Nearest(Math.min(448, Math.max(-448, f32(v / scale)))));
  }
  return { codes, scales };
}

/** The one summation order: four lane partials of f32 products up to the last multiple of 4, (l0 + l1) + (l2 + l3), then the rest in order. */
function dot(a: ArrayLike<number>, b: ArrayLike<number>, j0: number, j1: number): number {
  const lanes = [0, 0, 0, 0];
  const n4 = j0 + 4 * Math.floor((j1 - j0) / 4);
  for (let j = j0; j < n4; j++) lanes[(j - j0) % 4] = f32(lanes[(j - j0) % 4] + f32(a[j] * b[j]));
  let sum = f32(f32(lanes[0] + lanes[1]) + f32(lanes[2] + lanes[3]));
  for (let j = n4; j < j1; j++) sum = f32(sum + f32(a[j] * b[j]));
  return sum;
}

const REALS = [-2, -1, -0.5, -0, 0, 0.25, 0.5, 1, 1.5, 3, 0.1, -0.3, 1e-3, 7.25];

test('linear: float32, bf16 and FP8 weights, both readings, ue8m0, NaN and Infinity, rows of any rank, out, and bad weights, inputs and options', () => {
  const started = performance.now();
  const arb = fc
    .record({
      format: mostly(fc.constantFrom<string>('float32', 'bf16', 'fp8', 'fp8'), fc.constantFrom<string>('int8', 'FP8'), 25),
      out: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 6 }) }, { weight: 1, arbitrary: fc.constant(129) }),
      inDim: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 11 }) }, { weight: 1, arbitrary: fc.constantFrom(128, 130) }),
      lead: fc.constantFrom<number[]>([], [2], [1, 3], [2, 1]),
      gemmImpl: mostly(fc.constantFrom<unknown>(undefined, 'bf16', 'fp8', 'fp8'), fc.constantFrom<unknown>('fp16', 1), 25),
      scaleFormat: mostly(fc.constantFrom<unknown>(undefined, 'float32', 'ue8m0'), fc.constant<unknown>('e8m0'), 25),
      simd: mostly(fc.constantFrom<unknown>(undefined, true, false), fc.constant<unknown>('no'), 30),
      outBuf: fc.constantFrom('none', 'none', 'right', 'long', 'f64', 'overlap'),
      unknown: mostly(fc.constant<string | null>(null), fc.constantFrom('gemm', 'scale_fmt', 'output2'), 25),
      nonFinite: fc.constantFrom(0, 0, 0, 3),
      wFault: mostly(fc.constant('none'), fc.constantFrom('shape3', 'shapeZero', 'dataKind', 'dataLength', 'scaleMissing', 'scaleLength', 'scaleInf', 'notObject')),
      xFault: mostly(fc.constant('none'), fc.constantFrom('lastDim', 'f64', 'length', 'rank0', 'notTensor')),
      scales: fc.array(fc.constantFrom(1, 0.5, 2 ** -10, 3.1, 1e-3), { minLength: 4, maxLength: 4 }),
      seed: fc.nat(),
    })
    .chain((c) => {
      const rows = c.lead.reduce((a, b) => a * b, 1);
      const n = c.out * c.inDim;
      const code = fc.oneof({ weight: 40, arbitrary: fc.integer({ min: 0, max: 255 }).filter((x) => (x & 0x7f) !== 0x7f) }, { weight: 1, arbitrary: fc.constantFrom(0x7f, 0xff) });
      const bits = fc.oneof({ weight: 40, arbitrary: fc.integer({ min: 0, max: 0xffff }).filter((x) => (x & 0x7f80) !== 0x7f80) }, { weight: 1, arbitrary: fc.constantFrom(0x7f80, 0xff80, 0x7fc0) });
      return fc.record({
        c: fc.constant(c),
        x: fc.array(fc.tuple(fc.constantFrom(...REALS), percent, fc.constantFrom(NaN, Infinity, -Infinity)), { minLength: rows * c.inDim, maxLength: rows * c.inDim }).map((xs) => Float32Array.from(xs, ([v, u, bad]) => (u < c.nonFinite ? bad : v))),
        values: c.format === 'float32' ? fc.array(fc.constantFrom(...REALS), { minLength: n, maxLength: n }) : c.format === 'bf16' ? fc.array(bits, { minLength: n, maxLength: n }) : fc.array(code, { minLength: n, maxLength: n }),
      });
    });
  fc.assert(
    fc.property(arb, ({ c, x, values }) => {
      const { format, out, inDim, lead, gemmImpl, scaleFormat, simd, outBuf, unknown, wFault, xFault, scales } = c;
      const rows = lead.reduce((a, b) => a * b, 1);
      const bad: string[] = [];
      // The weight as the call gets it.
      const sr = Math.ceil(out / 128), sc = Math.ceil(inDim / 128);
      const scale = Float32Array.from({ length: sr * sc }, (_, i) => scales[i % 4]);
      const data = format === 'float32' ? Float32Array.from(values) : format === 'bf16' ? Uint16Array.from(values) : Uint8Array.from(values);
      let w: unknown = { format, shape: [out, inDim], data, ...(format === 'fp8' ? { scale } : {}) };
      if (!['float32', 'bf16', 'fp8'].includes(format)) bad.push('w');
      if (wFault === 'shape3') { w = { ...(w as object), shape: [out, inDim, 1] }; bad.push('w'); }
      if (wFault === 'shapeZero') { w = { ...(w as object), shape: [0, inDim] }; bad.push('w'); }
      if (wFault === 'dataKind') { w = { ...(w as object), data: new Float64Array(out * inDim) }; bad.push('w'); }
      if (wFault === 'dataLength') { w = { ...(w as object), data: data.subarray(1) }; bad.push('w'); }
      if (wFault === 'scaleMissing' && format === 'fp8') { w = { format, shape: [out, inDim], data }; bad.push('w'); }
      if (wFault === 'scaleLength' && format === 'fp8') { w = { ...(w as object), scale: new Float32Array(sr * sc + 1) }; bad.push('w'); }
      if (wFault === 'scaleInf' && format === 'fp8') { w = { ...(w as object), scale: scale.map((v, i) => (i === 0 ? Infinity : v)) }; bad.push('w'); }
      if (wFault === 'notObject') { w = data; bad.push('w'); }
      // x [..., in].
      const shape = [...lead, inDim];
      let xT: unknown = { data: x, shape };
      if (xFault === 'lastDim' && inDim !== 1) { xT = { data: x, shape: [...lead, inDim, 1] }; bad.push('x'); }
      if (xFault === 'f64') { xT = { data: Float64Array.from(x), shape }; bad.push('x'); }
      if (xFault === 'length') { xT = { data: Float32Array.from([...x, 0]), shape }; bad.push('x'); }
      if (xFault === 'rank0') { xT = { data: x, shape: [] }; bad.push('x'); }
      if (xFault === 'notTensor') { xT = x; bad.push('x'); }
      // Options.
      const opts: Record<string, unknown> = {};
      if (gemmImpl !== undefined) opts.gemmImpl = gemmImpl;
      if (scaleFormat !== undefined) opts.scaleFormat = scaleFormat;
      if (simd !== undefined) opts.simd = simd;
      if (gemmImpl !== undefined && gemmImpl !== 'bf16' && gemmImpl !== 'fp8') bad.push('gemmImpl');
      if (scaleFormat !== undefined && scaleFormat !== 'float32' && scaleFormat !== 'ue8m0') bad.push('scaleFormat');
      if (simd !== undefined && typeof simd !== 'boolean') bad.push('simd');
      if (unknown !== null) { opts[unknown] = 1; bad.push('linear'); }
      let buffer: Float32Array | Float64Array | undefined;
      if (outBuf === 'right') buffer = new Float32Array(rows * out).fill(7);
      if (outBuf === 'long') { buffer = new Float32Array(rows * out + 1).fill(7); bad.push('out'); }
      if (outBuf === 'f64') { buffer = new Float64Array(rows * out).fill(7); bad.push('out'); }
      if (outBuf === 'overlap') {
        // out over x's own memory: every output reads its whole row of x.
        const shared = new Float32Array(rows * inDim + rows * out);
        shared.set(x);
        xT = xFault === 'none' ? { data: shared.subarray(0, rows * inDim), shape } : xT;
        buffer = shared.subarray(Math.max(0, rows * inDim - 1), Math.max(0, rows * inDim - 1) + rows * out);
        if (xFault === 'none') bad.push('out');
      }
      if (buffer !== undefined) opts.out = buffer;
      const what = `linear x[${shape}] w ${format} [${out}, ${inDim}] ${wFault} ${xFault} ${JSON.stringify({ ...opts, out: outBuf, scale: format === 'fp8' ? [...scale] : undefined, x: c.nonFinite ? [...x] : undefined })}`;
      let expected: Expected<Float32Array> = { bad };
      if (bad.length === 0) {
        // The definition: the float GEMM over the weight's values, or act_quant and the FP8 GEMM.
        const want = new Float32Array(rows * out);
        const fp8Gemm = format === 'fp8' && gemmImpl === 'fp8';
        const v = (o: number) => Array.from({ length: inDim }, (_, j) => {
          const at = o * inDim + j;
          if (format === 'float32') return data[at];
          if (format === 'bf16') return bf16Value(data[at]);
          return roundBf16(f32(e4m3Value(data[at]) * scale[(o >> 7) * sc + (j >> 7)]));
        });
        for (let o = 0; o < out; o++) {
          const row = fp8Gemm ? Array.from({ length: inDim }, (_, j) => e4m3Value(data[o * inDim + j])) : v(o);
          for (let r = 0; r < rows; r++) {
            const xr = x.subarray(r * inDim, (r + 1) * inDim);
            if (!fp8Gemm) { want[r * out + o] = dot(xr, row, 0, inDim); continue; }
            const { codes, scales: xs } = actQuant(xr, scaleFormat === 'ue8m0');
            const xv = codes.map(e4m3Value);
            let y = 0;
            for (let kb = 0; kb * 128 < inDim; kb++) {
              const p = dot(xv, row, 128 * kb, Math.min(inDim, 128 * kb + 128));
              y = f32(y + f32(p * f32(xs[kb] * scale[(o >> 7) * sc + kb])));
            }
            want[r * out + o] = y;
          }
        }
        expected = { value: want };
      }
      check(what, () => linear(xT as never, w as never, opts as never), expected, (got, want) => {
        assert.deepEqual(got.shape, [...lead, out], `${what}: shape`);
        sameBits(what, got.data, want);
        if (buffer !== undefined) assert.equal(got.data, buffer, `${what}: the result is out`);
      });
      if ('bad' in expected && buffer !== undefined && outBuf !== 'overlap') assert.ok(buffer.every((y) => y === 7), `${what}: out untouched`);
    }),
    { numRuns: 3000 },
  );
  report('linear', started);
});
