// A fuzz of the indexer's public edge: indexerScores in every precision
// (float32, int8, int7, fp8) and key form (float32, quantizeKeys' int8,
// quantizeKeysFp8's pages), contiguous and paged (blockTable + seqLens,
// maxLen), with causalOffset, windows, seqLens and shortSequences, rows, out,
// guards, weightScale, hadamard and scaleFormat; and quantizeKeys /
// quantizeKeysFp8 (every scaleFormat and scaleRule, non-finite keys). The
// definitions below restate the quantizers with plain loops (block amax,
// scale, round half to even; the Hadamard matrix; the nearest e4m3 code) and
// the scores in float64 over the dequantized values, so a result must be
// within float32 rounding of I = weightScale * sum_h w * ReLU(q . k) over
// those values, -Infinity where a row does not see a key, and NaN exactly
// where the definition has NaN. Every other call is a named error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { indexerScores, quantizeKeys, quantizeKeysFp8 } from '../../src/interop/index.js';
import { check, floatsArb, mostly, percent, report, sameBits, type Expected } from './harness.js';
import { e4m3Nearest, e4m3Value } from './definitions.js';

type Precision = 'float32' | 'int8' | 'int7' | 'fp8';

/** Round half to even. */
function rhe(x: number): number {
  const f = Math.floor(x), diff = x - f;
  return diff < 0.5 ? f : diff > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
}

/** int8 block quantization of one row: per 128 values, scale f32(amax / levels), values rhe(f32(x * f32(levels / amax))); a non-finite value: scale NaN, values 0. */
function quantInt(x: ArrayLike<number>, levels: number): { values: number[]; scales: number[] } {
  const d = x.length, values: number[] = [], scales: number[] = [];
  for (let e0 = 0; e0 < d; e0 += 128) {
    const block = Array.from({ length: Math.min(128, d - e0) }, (_, i) => x[e0 + i]);
    const amax = block.every(Number.isFinite) ? Math.max(0, ...block.map(Math.abs)) : NaN;
    const inv = amax > 0 ? Math.fround(levels / amax) : 0;
    scales.push(Math.fround(amax / levels));
    for (const v of block) {
      const q = rhe(Math.fround(v * inv));
      values.push(Number.isNaN(q) ? 0 : q === 0 ? 0 : q);
    }
  }
  return { values, scales };
}


/**
 * The Walsh-Hadamard transform of x in Sylvester order, scaled d^-0.5, as
 * float32 butterflies (the order of DeepSeek's rotate_activation kernel; a
 * float64 matrix product rounds differently when the inputs are not exact).
 */
function hadamard(x: ArrayLike<number>): number[] {
  const d = x.length, v = Float32Array.from(x);
  for (let len = 1; len < d; len *= 2) {
    for (let i = 0; i < d; i += 2 * len) {
      for (let j = i; j < i + len; j++) {
        const a = v[j], c = v[j + len];
        v[j] = a + c;
        v[j + len] = a - c;
      }
    }
  }
  return Array.from(v, (y) => Math.fround(y * (1 / Math.sqrt(d))));
}

/** DeepSeek's act_quant of one row (d <= 128): optional rotation, scale from amax by the rule and format, e4m3 codes. */
function actQuant(x: ArrayLike<number>, rotate: boolean, ue8m0: boolean, vllm: boolean): { codes: number[]; scale: number } {
  const v = rotate ? hadamard(x) : Array.from(x, Math.fround);
  const amax = v.every(Number.isFinite) ? Math.max(0, ...v.map(Math.abs)) : NaN;
  let scale = Number.isNaN(amax) ? NaN : Math.fround(vllm ? Math.max(amax, Math.fround(1e-4)) / 448 : Math.max(amax, Math.fround(1e-4)) * Math.fround(1 / 448));
  if (ue8m0 && !Number.isNaN(scale)) scale = 2 ** Math.ceil(Math.log2(scale));
  return { codes: v.map((y) => e4m3Nearest(Math.min(448, Math.max(-448, Math.fround(y / scale))))), scale };
}

/** A row of values (each with its scale) the scores are taken over: float32, int8, or e4m3 dequantized. */
interface Operand { values: number[]; scales: number[] }

function queryOperand(q: ArrayLike<number>, precision: Precision, rotate: boolean, ue8m0: boolean): Operand {
  if (precision === 'float32') return { values: Array.from(q), scales: Array(Math.ceil(q.length / 128)).fill(1) };
  if (precision === 'fp8') {
    const { codes, scale } = actQuant(q, rotate, ue8m0, false);
    return { values: codes.map(e4m3Value), scales: [scale] };
  }
  return quantInt(q, precision === 'int7' ? 63 : 127);
}

function keyOperand(k: ArrayLike<number>, precision: Precision, rotate: boolean, ue8m0: boolean, vllm: boolean): Operand {
  if (precision === 'float32') return { values: Array.from(k), scales: Array(Math.ceil(k.length / 128)).fill(1) };
  if (precision === 'fp8') {
    const { codes, scale } = actQuant(k, rotate, ue8m0, vllm);
    return { values: codes.map(e4m3Value), scales: [scale] };
  }
  return quantInt(k, 127);
}

/** The score of one (row, key) in float64, and the magnitude float32 rounding is measured against. */
function score(qs: Operand[], k: Operand, w: ArrayLike<number>, weightScale: number): { value: number; magnitude: number } {
  let value = 0, magnitude = 0;
  for (let hh = 0; hh < qs.length; hh++) {
    let dot = 0, mag = 0;
    const q = qs[hh], d = q.values.length;
    for (let e0 = 0, blk = 0; e0 < d; e0 += 128, blk++) {
      let bd = 0, bm = 0;
      for (let e = e0; e < Math.min(d, e0 + 128); e++) {
        bd += q.values[e] * k.values[e];
        bm += Math.abs(q.values[e] * k.values[e]);
      }
      const s = q.scales[blk] * k.scales[blk];
      dot += s * bd;
      mag += Math.abs(s) * bm;
    }
    // ReLU propagates NaN (torch.relu), as the scales of a non-finite block do.
    const relu = Number.isNaN(dot) ? NaN : Math.max(dot, 0);
    value += w[hh] * weightScale * relu;
    magnitude += Math.abs(w[hh] * weightScale) * (mag + Math.abs(relu));
  }
  return { value, magnitude };
}

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x);
const EXACT_SCALES = [undefined, 1, 0.5, 2, -1, 0, 0.25];

test('indexerScores: every precision and key form, contiguous and paged, windows, seqLens, shortSequences, rows, out, guards, non-finite inputs', () => {
  const started = performance.now();
  const arb = fc
    .record({
      b: fc.integer({ min: 1, max: 2 }), t: fc.integer({ min: 1, max: 3 }), h: fc.integer({ min: 1, max: 3 }),
      d: mostly(fc.constantFrom(1, 2, 3, 4, 8, 16), fc.constantFrom(130, 6), 12),
      s: fc.integer({ min: 1, max: 10 }),
      precision: mostly(fc.constantFrom<unknown>(undefined, 'float32', 'int8', 'int7', 'fp8', 'fp8'), fc.constantFrom<unknown>('bf16', 'int4', 8)),
      paged: fc.boolean(),
      pageSize: fc.constantFrom(1, 2, 4),
      numPages: fc.integer({ min: 1, max: 6 }),
      maxBlocks: fc.integer({ min: 1, max: 4 }),
      weightScale: mostly(fc.constantFrom<unknown>(...EXACT_SCALES), fc.constantFrom<unknown>(NaN, Infinity, '1'), 30),
      hadamard: mostly(fc.constant<unknown>(undefined), mostly(fc.boolean(), fc.constant<unknown>('yes'), 20), 2),
      keyHadamard: fc.boolean(),
      scaleFormat: mostly(fc.constant<unknown>(undefined), mostly(fc.constantFrom<unknown>('float32', 'ue8m0'), fc.constant<unknown>('e8m0'), 20), 2),
      // FP8's options passed to another precision (an error) now and then.
      strayFp8Options: percent.map((u) => u < 4),
      keyScaleFormat: fc.constantFrom('float32', 'ue8m0'),
      keyRule: fc.constantFrom('deepseek', 'vllm'),
      simd: mostly(fc.constantFrom<unknown>(undefined, false, true), fc.constant<unknown>('no'), 30),
      nonFinite: fc.constantFrom(0, 0, 0, 4),
      causalOffset: mostly(fc.constant<unknown>(undefined), mostly(fc.integer({ min: -4, max: 10 }), fc.constantFrom<unknown>(0.5, 2 ** 60, '1'), 20), 1),
      useWindow: fc.constantFrom(false, false, true),
      useSeqLens: fc.constantFrom(false, true),
      shortSequences: mostly(fc.constant<unknown>(undefined), mostly(fc.constantFrom<unknown>('error', 'empty'), fc.constant<unknown>('skip'), 20), 2),
      maxLen: mostly(fc.constant<unknown>(undefined), mostly(fc.integer({ min: 1, max: 12 }), fc.constantFrom<unknown>(0, 1.5, 2 ** 31 - 1, 2 ** 31, 2 ** 40, 2 ** 53, 1e300), 6), 3),
      strayMaxLen: percent.map((u) => u < 3),
      strayOption: percent.map((u) => u < 3),
      out: fc.constantFrom('none', 'none', 'none', 'right', 'right', 'right', 'wrong'),
      maxBytes: fc.oneof({ weight: 8, arbitrary: fc.constant<unknown>(undefined) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(1 << 16, 8, 0) }),
      shapeFault: mostly(fc.constant('none'), fc.constantFrom('qRank', 'wT', 'kB', 'kD', 'qF64', 'kI32', 'tableF32', 'noSeqLens')),
    })
    .chain((c0) => {
      const compatible = c0.precision === 'fp8' ? ['float32', 'fp8'] : c0.precision === 'int8' || c0.precision === 'int7' ? ['float32', 'int8'] : ['float32'];
      return fc.record({ c0: fc.constant(c0), keyForm: mostly(fc.constantFrom(...compatible), fc.constantFrom('int8', 'fp8'), 20) });
    })
    .map(({ c0, keyForm }) => ({ ...c0, keyForm }))
    .chain((c) => {
      const keyRows = c.paged ? c.numPages * c.pageSize : c.b * c.s;
      const hi = c.paged ? c.maxBlocks * c.pageSize : c.s;
      return fc.record({
        c: fc.constant(c),
        q: floatsArb(c.b * c.t * c.h * c.d, c.nonFinite),
        k: floatsArb(keyRows * c.d, c.nonFinite),
        w: floatsArb(c.b * c.t * c.h, c.nonFinite),
        seqLens: fc.array(mostly(fc.integer({ min: Math.min(c.t, hi), max: hi }), fc.integer({ min: -1, max: hi + 2 }), 6), { minLength: c.b, maxLength: c.b }),
        table: fc.array(mostly(fc.integer({ min: 0, max: c.numPages - 1 }), fc.constantFrom(-1, c.numPages), 25), { minLength: c.b * c.maxBlocks, maxLength: c.b * c.maxBlocks }),
        window: fc.array(fc.tuple(fc.integer({ min: 0, max: hi }), fc.integer({ min: 0, max: hi })), { minLength: c.b * c.t, maxLength: c.b * c.t }),
        rows: fc.option(fc.tuple(fc.integer({ min: 0, max: c.b * c.t }), fc.integer({ min: 0, max: c.b * c.t })).map(([x, y]) => (x === 0 && y === 1 ? [1, 0] : [Math.min(x, y), Math.max(x, y)])), { nil: undefined, freq: 3 }),
      });
    });
  fc.assert(
    fc.property(arb, ({ c, q: qIn, k: kIn, w: wIn, seqLens, table, window, rows }) => {
      const { b, t, h, d, s, paged, pageSize: P, numPages, maxBlocks, keyForm, shapeFault } = c;
      const precision = (c.precision ?? 'float32') as Precision;
      // Two known holes of the float32 kernels, left to their owners (the quantized paths have
      // neither: a non-finite block's scale is NaN): the TypeScript kernel skips a head whose
      // ReLU(q . k) is 0, so a NaN or infinite weight there gives 0 where w * 0 is NaN (the SIMD
      // kernel gives NaN); the SIMD kernel gives NaN for q . k = -Infinity, whose ReLU is 0 (the
      // TypeScript kernel gives 0). In float32 only NaN inputs are fuzzed, in q and k.
      const float32 = precision === 'float32' && keyForm === 'float32';
      const nanOnly = (x: Float32Array) => (float32 ? x.map((v) => (Number.isFinite(v) ? v : NaN)) : x);
      const q = nanOnly(qIn), k = nanOnly(kIn);
      const w = float32 ? wIn.map((x) => (Number.isFinite(x) ? x : 1)) : wIn;
      const bad: string[] = [];
      // The keys as the call gets them.
      const keyShape = paged ? [numPages, P, d] : [shapeFault === 'kB' ? b + 1 : b, s, d];
      const kData = shapeFault === 'kB' && !paged ? Float32Array.from([...k, ...k.subarray(0, s * d)]) : k;
      let keys: unknown;
      let keyPrecision: Precision = precision;
      let keyRotate = false, keyUe8m0 = false, keyVllm = false;
      if (shapeFault === 'kI32') { keys = { data: Int32Array.from(kData), shape: keyShape }; bad.push('k'); }
      else if (shapeFault === 'kD') { keys = { data: new Float32Array((kData.length / d) * (d + 1)), shape: [...keyShape.slice(0, 2), d + 1] }; bad.push('indexerScores'); }
      else if (keyForm === 'int8') {
        keys = quantizeKeys({ data: kData, shape: keyShape });
        keyPrecision = precision === 'int7' ? 'int8' : precision;
        if (precision !== 'int8' && precision !== 'int7') bad.push('k');
      } else if (keyForm === 'fp8') {
        if (d > 128 || (keyShape[1] * d) % 4 !== 0 || (c.keyHadamard && (d & (d - 1)) !== 0)) return; // keys quantizeKeysFp8 refuses (its own test)
        keys = quantizeKeysFp8({ data: kData, shape: keyShape }, { hadamard: c.keyHadamard, scaleFormat: c.keyScaleFormat as 'float32', scaleRule: c.keyRule as 'vllm' });
        keyRotate = c.keyHadamard; keyUe8m0 = c.keyScaleFormat === 'ue8m0'; keyVllm = c.keyRule === 'vllm';
        if (precision !== 'fp8') bad.push('k');
      } else keys = { data: kData, shape: keyShape };
      const qT = shapeFault === 'qRank' ? { data: q, shape: [b * t, h, d] } : shapeFault === 'qF64' ? { data: Float64Array.from(q), shape: [b, t, h, d] } : { data: q, shape: [b, t, h, d] };
      const wT = shapeFault === 'wT' ? { data: Float32Array.from([...w, ...w.subarray(0, b * h)]), shape: [b, t + 1, h] } : { data: w, shape: [b, t, h] };
      if (shapeFault === 'qRank' || shapeFault === 'qF64') bad.push('q');
      if (shapeFault === 'wT') bad.push('indexerScores');
      if (shapeFault === 'kB' && !paged) bad.push('indexerScores');
      const opts: Record<string, unknown> = { weightScale: c.weightScale, precision: c.precision, simd: c.simd, causalOffset: c.causalOffset, rows, maxBytes: c.maxBytes };
      const fp8Options = precision === 'fp8' || c.strayFp8Options;
      if (c.hadamard !== undefined && fp8Options) opts.hadamard = c.hadamard;
      if (c.scaleFormat !== undefined && fp8Options) opts.scaleFormat = c.scaleFormat;
      const hadamardOpt = opts.hadamard, scaleFormatOpt = opts.scaleFormat;
      if (c.shortSequences !== undefined) opts.shortSequences = c.shortSequences;
      if (c.weightScale !== undefined && !(typeof c.weightScale === 'number' && Number.isFinite(c.weightScale))) bad.push('weightScale');
      if (c.strayOption) { opts.weightscale = 2; bad.push('indexerScores'); }
      if (c.precision !== undefined && !['float32', 'int8', 'int7', 'fp8'].includes(c.precision as string)) bad.push('precision');
      if (c.causalOffset !== undefined && !isInt(c.causalOffset)) bad.push('causalOffset');
      if (c.simd !== undefined && typeof c.simd !== 'boolean') bad.push('simd');
      // Where each row's keys are, and how many positions a row has.
      const useSeq = c.useSeqLens || paged;
      let width = s;
      if (paged) {
        if (shapeFault !== 'noSeqLens') opts.seqLens = Int32Array.from(seqLens);
        else bad.push('blockTable');
        opts.blockTable = shapeFault === 'tableF32' ? { data: Float32Array.from(table), shape: [b, maxBlocks] } : { data: Int32Array.from(table), shape: [b, maxBlocks] };
        if (shapeFault === 'tableF32') bad.push('blockTable');
        if (c.maxLen !== undefined) opts.maxLen = c.maxLen;
        // maxLen: a position count, int32 as seqLens are.
        const maxLenOk = typeof c.maxLen === 'number' && Number.isInteger(c.maxLen) && c.maxLen > 0 && c.maxLen <= 2 ** 31 - 1;
        if (c.maxLen !== undefined && !maxLenOk) bad.push('maxLen');
        width = maxLenOk ? (c.maxLen as number) : Math.max(1, ...seqLens);
        if (shapeFault !== 'noSeqLens' && shapeFault !== 'tableF32') {
          for (let bi = 0; bi < b; bi++) {
            const used = Math.ceil(seqLens[bi] / P);
            if (used > maxBlocks) bad.push('blockTable');
            for (let j = 0; j < Math.min(used, maxBlocks); j++) if (table[bi * maxBlocks + j] < 0 || table[bi * maxBlocks + j] >= numPages) bad.push('blockTable');
          }
        }
      } else {
        if (c.useSeqLens) opts.seqLens = Int32Array.from(seqLens);
        if (c.maxLen !== undefined && c.strayMaxLen) { opts.maxLen = c.maxLen; bad.push('maxLen'); }
      }
      const shortEmpty = c.shortSequences === 'empty';
      if (c.shortSequences !== undefined && c.shortSequences !== 'error' && c.shortSequences !== 'empty') bad.push('shortSequences');
      if (shortEmpty && opts.seqLens === undefined) bad.push('shortSequences');
      if (opts.seqLens !== undefined && seqLens.some((n) => n < (shortEmpty ? 0 : t) || n > width)) bad.push('seqLens');
      if (c.useWindow) {
        const start = Int32Array.from(window, ([x, y]) => Math.min(x, y)), end = Int32Array.from(window, ([x, y]) => Math.max(x, y));
        opts.window = { start, end };
        if ([...end].some((e) => e > width)) bad.push('window');
      }
      // FP8's own options.
      const rotate = precision === 'fp8' ? (keyForm === 'fp8' ? c.keyHadamard : true) : false;
      let qRotate = rotate;
      if (precision === 'fp8') {
        if (d > 128) bad.push('precision');
        if (keyForm !== 'fp8' && (keyShape[1] * d) % 4 !== 0) bad.push('k');
        if (hadamardOpt !== undefined) {
          if (typeof hadamardOpt !== 'boolean') bad.push('hadamard');
          else {
            if (keyForm === 'fp8' && hadamardOpt !== c.keyHadamard) bad.push('hadamard');
            qRotate = hadamardOpt;
          }
        }
        if (qRotate && (d & (d - 1)) !== 0) bad.push('hadamard');
        if (scaleFormatOpt !== undefined && scaleFormatOpt !== 'float32' && scaleFormatOpt !== 'ue8m0') bad.push('scaleFormat');
      } else if (hadamardOpt !== undefined || scaleFormatOpt !== undefined) bad.push('hadamard');
      const ue8m0 = scaleFormatOpt === 'ue8m0';
      if (keyForm === 'float32') { keyRotate = qRotate; keyUe8m0 = ue8m0; }
      // Rows, out, memory guard.
      const [r0, r1] = rows ?? [0, b * t];
      if (rows !== undefined && r0 > r1) bad.push('rows');
      const length = Math.max(0, r1 - r0) * width;
      let out: Float32Array | Float64Array | undefined;
      if (c.out === 'right' && length <= 4096) { out = new Float32Array(length).fill(7); opts.out = out; }
      if (c.out === 'wrong' && length <= 4096) { out = new Float64Array(length).fill(7); opts.out = out; bad.push('out'); }
      if (out === undefined && c.maxBytes !== undefined && (!((c.maxBytes as number) > 0) || length * 4 > (c.maxBytes as number))) bad.push('maxBytes');
      if (out === undefined && c.maxBytes === undefined && length * 4 > 2 ** 31) bad.push('maxBytes');
      const what = `indexerScores q[${b},${t},${h},${d}] ${keyForm} keys${paged ? ` paged [${numPages},${P}] table[${b},${maxBlocks}]=${table}` : ` [${b},${s}]`} ${shapeFault} ${JSON.stringify({ ...opts, out: c.out, seqLens, blockTable: undefined, window: c.useWindow ? window : undefined, q: c.nonFinite ? [...q] : undefined })}`;
      let expected: Expected<Float32Array> = { bad };
      if (bad.length === 0) {
        // The definition: for each row in rows and position j < width, -Infinity unless the row sees j, else the score over the operands.
        const ws = (c.weightScale ?? 1) as number;
        const want = new Float32Array(length);
        const tol: number[] = [];
        const kOps = new Map<number, Operand>();
        const keyAt = (slot: number) => {
          if (!kOps.has(slot)) kOps.set(slot, keyOperand(k.subarray(slot * d, (slot + 1) * d), keyPrecision, keyRotate, keyUe8m0, keyVllm));
          return kOps.get(slot)!;
        };
        for (let r = r0; r < r1; r++) {
          const bi = Math.floor(r / t), ti = r % t;
          const qs = Array.from({ length: h }, (_, hh) => queryOperand(q.subarray((r * h + hh) * d, (r * h + hh + 1) * d), precision, qRotate, ue8m0));
          for (let j = 0; j < width; j++) {
            let sees = true;
            if (isInt(c.causalOffset) && j > ti + c.causalOffset) sees = false;
            if (useSeq && j > seqLens[bi] - t + ti) sees = false;
            if (c.useWindow && (j < Math.min(...window[r]) || j >= Math.max(...window[r]))) sees = false;
            const o = (r - r0) * width + j;
            if (!sees) { want[o] = -Infinity; tol[o] = 0; continue; }
            const slot = paged ? table[bi * maxBlocks + Math.floor(j / P)] * P + (j % P) : bi * s + j;
            const { value, magnitude } = score(qs, keyAt(slot), w.subarray(r * h, (r + 1) * h), ws);
            want[o] = value;
            tol[o] = 1e-6 * (d + h + 4) * magnitude;
          }
        }
        expected = { value: want };
        check(what, () => indexerScores(qT as never, keys as never, wT as never, opts as never), expected, (got, wantScores) => {
          assert.deepEqual(got.shape, rows === undefined ? [b, t, width] : [r1 - r0, width], `${what}: shape`);
          for (let i = 0; i < wantScores.length; i++) {
            const g = got.data[i], e = wantScores[i];
            if (!Number.isFinite(e) || !Number.isFinite(g)) assert.ok(Object.is(g, e) || (Number.isNaN(g) && Number.isNaN(e)), `${what}: at ${i} got ${g}, expected ${e}`);
            else assert.ok(Math.abs(g - e) <= tol[i] + 1e-30, `${what}: at ${i} got ${g}, expected ${e} (within ${tol[i]})`);
          }
          if (out !== undefined) assert.equal(got.data, out, `${what}: the result is out`);
        });
        return;
      }
      check(what, () => indexerScores(qT as never, keys as never, wT as never, opts as never), expected, () => {});
      if (out !== undefined) assert.ok(out.every((x) => x === 7), `${what}: out untouched`);
    }),
    { numRuns: 3000 },
  );
  report('indexerScores', started);
});

test('quantizeKeys and quantizeKeysFp8: the block definitions for every d, scaleFormat and scaleRule, non-finite keys, odd shapes and options', () => {
  const started = performance.now();
  const arb = fc
    .record({
      b: fc.integer({ min: 1, max: 3 }), s: fc.integer({ min: 1, max: 6 }),
      d: mostly(fc.constantFrom(1, 2, 3, 4, 8, 16, 32), fc.constantFrom(128, 129, 130, 256), 10),
      nonFinite: fc.constantFrom(0, 0, 3),
      hadamard: fc.option(mostly(fc.boolean(), fc.constantFrom<unknown>(1, 'true')), { nil: undefined }),
      scaleFormat: fc.option(mostly(fc.constantFrom<unknown>('float32', 'ue8m0'), fc.constantFrom<unknown>('e8m0', 1)), { nil: undefined }),
      scaleRule: fc.option(mostly(fc.constantFrom<unknown>('deepseek', 'vllm'), fc.constantFrom<unknown>('torch', 'VLLM')), { nil: undefined }),
      shared: fc.option(fc.boolean(), { nil: undefined }),
      unknown: mostly(fc.constant<string | null>(null), fc.constantFrom('scaleRul', 'hadmard', 'format')),
      fault: mostly(fc.constant('none'), fc.constantFrom('rank2', 'f64', 'noTensor', 'short')),
      scale: fc.constantFrom(1, 1, 1e-3, 1e-6, 300, 1e5),
    })
    .chain((c) => fc.record({ c: fc.constant(c), k: floatsArb(c.b * c.s * c.d, c.nonFinite).map((x) => x.map((v) => Math.fround(v * c.scale))) }));
  fc.assert(
    fc.property(arb, ({ c, k }) => {
      const { b, s, d, fault } = c;
      const tensor = fault === 'rank2' ? { data: k, shape: [b * s, d] } : fault === 'f64' ? { data: Float64Array.from(k), shape: [b, s, d] } : fault === 'noTensor' ? k : fault === 'short' ? { data: k.subarray(1), shape: [b, s, d] } : { data: k, shape: [b, s, d] };
      const tensorBad = fault === 'none' ? [] : ['k'];
      // quantizeKeys: int8 per 128-block.
      {
        const what = `quantizeKeys k[${b},${s},${d}] ${fault} shared=${c.shared}`;
        const nb = Math.ceil(d / 128);
        const values = new Int8Array(b * s * d), scales = new Float32Array(b * s * nb);
        for (let r = 0; r < b * s; r++) {
          const qz = quantInt(k.subarray(r * d, (r + 1) * d), 127);
          values.set(qz.values, r * d);
          scales.set(qz.scales, r * nb);
        }
        const strayBad = c.unknown !== null ? ['quantizeKeys'] : [];
        const qopts = c.unknown !== null ? { shared: c.shared, [c.unknown]: 1 } : { shared: c.shared };
        check(what, () => quantizeKeys(tensor as never, qopts), tensorBad.length + strayBad.length > 0 ? { bad: [...tensorBad, ...strayBad] } : { value: { values, scales } }, (got, want) => {
          sameBits(`${what}: values`, got.values.data, want.values);
          sameBits(`${what}: scales`, got.scales.data, want.scales);
          assert.deepEqual([got.values.shape, got.scales.shape], [[b, s, d], [b, s, nb]], what);
          assert.equal(got.values.data.buffer instanceof SharedArrayBuffer, c.shared === true, `${what}: shared`);
        });
      }
      // quantizeKeysFp8: pages of s tokens, s * d codes then s float32 scales.
      const opts: Record<string, unknown> = { hadamard: c.hadamard, scaleFormat: c.scaleFormat, scaleRule: c.scaleRule, shared: c.shared };
      if (c.unknown !== null) opts[c.unknown] = 'vllm';
      const bad = [...tensorBad];
      if (c.unknown !== null) bad.push('quantizeKeysFp8');
      if (fault === 'none') {
        if (d > 128) bad.push('k');
        if ((s * d) % 4 !== 0) bad.push('k');
      }
      const rotate = c.hadamard ?? true;
      if (typeof rotate !== 'boolean') bad.push('hadamard');
      else if (rotate && (d & (d - 1)) !== 0 && fault === 'none') bad.push('hadamard');
      if (c.scaleFormat !== undefined && c.scaleFormat !== 'float32' && c.scaleFormat !== 'ue8m0') bad.push('scaleFormat');
      if (c.scaleRule !== undefined && c.scaleRule !== 'deepseek' && c.scaleRule !== 'vllm') bad.push('scaleRule');
      const what = `quantizeKeysFp8 k[${b},${s},${d}] ${fault} ${JSON.stringify(opts)} keys ${c.nonFinite ? [...k] : `x${c.scale}`}`;
      let expected: Expected<Uint8Array> = { bad };
      if (bad.length === 0) {
        const data = new Uint8Array(b * s * (d + 4));
        const view = new DataView(data.buffer);
        for (let bi = 0; bi < b; bi++) {
          for (let i = 0; i < s; i++) {
            const r = bi * s + i;
            const { codes, scale } = actQuant(k.subarray(r * d, (r + 1) * d), rotate as boolean, c.scaleFormat === 'ue8m0', c.scaleRule === 'vllm');
            data.set(codes, bi * s * (d + 4) + i * d);
            view.setFloat32(bi * s * (d + 4) + s * d + i * 4, scale, true);
          }
        }
        expected = { value: data };
      }
      check(what, () => quantizeKeysFp8(tensor as never, opts as never), expected, (got, want) => {
        sameBits(what, got.data, want);
        assert.deepEqual(got.shape, [b, s, d + 4], what);
        assert.equal(got.hadamard, rotate, what);
        assert.equal(got.scaleFormat, c.scaleFormat ?? 'float32', what);
      });
    }),
    { numRuns: 3000 },
  );
  report('quantizeKeys', started);
  report('quantizeKeysFp8', started);
});

// Holes left to the float32 kernels' owners (src/indexer/scores-kernels.ts, src/simd): marked todo
// so the suite shows them until the two paths agree with the definition.
test('indexerScores float32: a NaN weight over ReLU 0 is NaN, and ReLU(-Infinity) is 0, on both paths', { todo: 'the TypeScript kernel skips heads with ReLU 0 (w NaN gives 0); the SIMD kernel gives NaN for q . k = -Infinity' }, () => {
  const one = (q: number[], k: number[], w: number[], simd: boolean) =>
    indexerScores({ data: Float32Array.from(q), shape: [1, 1, w.length, k.length] }, { data: Float32Array.from(k), shape: [1, 1, k.length] }, { data: Float32Array.from(w), shape: [1, 1, w.length] }, { simd }).data[0];
  for (const simd of [false, true]) {
    assert.ok(Number.isNaN(one([-1, -1, -1, -1], [1, 1, 1, 1], [NaN], simd)), `simd=${simd}: w = NaN over ReLU 0 is NaN * 0 = NaN`);
    assert.ok(Number.isNaN(one([-1, -1, -1, -1], [1, 1, 1, 1], [Infinity], simd)), `simd=${simd}: w = Infinity over ReLU 0 is NaN`);
    assert.ok(Object.is(one([-2, -2, -2, -2], [Infinity, 1, 1, 1], [-2], simd), -0) || one([-2, -2, -2, -2], [Infinity, 1, 1, 1], [-2], simd) === 0, `simd=${simd}: q . k = -Infinity, ReLU 0, score 0`);
  }
});
