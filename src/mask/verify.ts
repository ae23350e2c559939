/**
 * Verifying mask rows made elsewhere against the mask their top-k indices
 * define (`dsa check`), at close to the speed of reading them.
 *
 * The fast test visits every kept key's cell, which must hold the kept
 * value and is set to the dropped value, then asks whether the whole row
 * holds the dropped value: k random visits and one sequential pass a row, in
 * WebAssembly SIMD where the engine has it (src/simd/assembly/verify.ts) or
 * in the TypeScript below. A row with a repeated index fails it (the second
 * visit finds the cell dropped) although its mask may be right, so a failing
 * row is only a candidate: settleBlock decides it with the exact
 * definition (generateMask and a compare), which also finds the position.
 * Top-k never repeats an index.
 *
 * Rows: row r of a block keeps index j iff 0 <= j < causalLimit(t0 + r, s,
 * offset); with `strict`, an index >= s fails its row (the 'error'
 * out-of-range policy; 'skip' keeps nothing for it).
 */
import { DEFAULT_MASK_VALUE, type MaskData, type MaskForm, type Tensor } from '../tensor.js';
import { checkInteger, checkOneOf, checkTensor } from '../validate.js';
import { simdModule } from '../simd/index.js';
import { causalLimit, checkKeyCount, formOf, maskCtor, rowWidth } from './form.js';
import { generateMask, outOfRangeError } from './masks.js';
import { NO_BAD_ROW, checkIndices } from './check.js';
import { checkKnownOptions } from '../options.js';

export interface VerifyRowsOptions {
  form: MaskForm;
  s: number;
  k: number;
  /** Query position of the block's first row, for the causal limit. */
  t0: number;
  /** Causal offset (row ti keeps j <= ti + offset); Infinity: not causal. */
  offset: number;
  /** Fail a row holding an index >= s. */
  strict: boolean;
  /** The additive form's dropped value (kept is 0); ignored by the others. */
  dropped: number;
}

/**
 * The definition, kept obviously right: the first of the n rows that differs
 * from the row its indices define (or, with `strict`, holds an index >= s),
 * or n when all match. O(s * k) a row: for tests.
 */
export function verifyRowsReference(cells: MaskData, indices: Int32Array, n: number, o: VerifyRowsOptions): number {
  const { form, s, k } = o;
  const width = rowWidth(form, s);
  for (let r = 0; r < n; r++) {
    const row = indices.subarray(r * k, (r + 1) * k);
    if (o.strict && row.some((j) => j >= s)) return r;
    const limit = causalLimit(o.t0 + r, s, o.offset);
    const want = new (maskCtor(form))(width);
    for (let j = 0; j < s; j++) {
      const kept = j < limit && row.includes(j);
      if (form === 'additive') want[j] = kept ? 0 : o.dropped;
      else if (form === 'bool') want[j] = kept ? 1 : 0;
      else if (kept) want[j >>> 5] |= 1 << (j & 31);
    }
    const got = cells.subarray(r * width, (r + 1) * width);
    if (!sameBits(got, want)) return r;
  }
  return n;
}

function sameBits(a: MaskData, b: MaskData): boolean {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * The fast test in TypeScript: the first of the n rows that fails it, or n.
 * Every row that differs from its definition fails (so does a row with a
 * repeated index); overwrites `cells`.
 */
export function verifyRowsFast(cells: MaskData, indices: Int32Array, n: number, o: VerifyRowsOptions): number {
  const { form, s, k } = o;
  const width = rowWidth(form, s);
  // Bit patterns for the additive form: -0 and NaN payloads are differences.
  const words = form === 'bool' ? null : new Int32Array(cells.buffer, cells.byteOffset, n * width);
  const bytes = form === 'bool' ? (cells as Uint8Array) : null;
  const dropped = form === 'additive' ? bitsOf(o.dropped) : 0;
  for (let r = 0; r < n; r++) {
    const limit = causalLimit(o.t0 + r, s, o.offset);
    const base = r * width;
    for (let i = r * k, end = i + k; i < end; i++) {
      const j = indices[i];
      if (j < 0 || j >= limit) {
        if (j >= s && o.strict) return r;
        continue;
      }
      if (bytes !== null) {
        if (bytes[base + j] !== 1) return r;
        bytes[base + j] = 0;
      } else if (form === 'additive') {
        if (words![base + j] !== 0) return r;
        words![base + j] = dropped;
      } else {
        const bit = 1 << (j & 31);
        if ((words![base + (j >>> 5)] & bit) === 0) return r;
        words![base + (j >>> 5)] ^= bit;
      }
    }
    if (bytes !== null) {
      for (let j = base, end = base + width; j < end; j++) if (bytes[j] !== 0) return r;
    } else {
      for (let j = base, end = base + width; j < end; j++) if (words![j] !== dropped) return r;
    }
  }
  return n;
}

function bitsOf(x: number): number {
  return new Int32Array(new Float32Array([x]).buffer)[0];
}

/**
 * Buffers for blocks of up to `rows` rows and the fast test over them. Fill
 * `cells` (rows * width mask values) with a block and `indices`
 * (`indexRows` * k, default `rows` * k) with at least its rows of indices,
 * then call `verify`. Where WebAssembly SIMD is available the buffers are
 * views into this thread's SIMD module memory, so data read from a file
 * goes straight to the kernel: they stay valid until another SIMD kernel
 * runs on this thread.
 */
export interface RowVerifier {
  readonly cells: MaskData;
  readonly indices: Int32Array;
  readonly simd: boolean;
  /**
   * The first of the first n rows of `cells` that fails the fast test, or n;
   * their indices are rows [at, at + n) of `indices`, their first query is
   * t0. Overwrites `cells`.
   */
  verify(n: number, t0: number, at?: number): number;
}

export function createRowVerifier(o: Omit<VerifyRowsOptions, 't0'>, rows: number, indexRows = rows): RowVerifier {
  const { form, s, k } = o;
  const width = rowWidth(form, s);
  const ctor = maskCtor(form);
  const module = simdModule();
  if (module === null) {
    const cells = new ctor(rows * width);
    const indices = new Int32Array(indexRows * k);
    return {
      cells,
      indices,
      simd: false,
      verify: (n, t0, at = 0) => verifyRowsFast(cells, indices.subarray(at * k, (at + n) * k), n, { ...o, t0 }),
    };
  }
  const [cellsAt, indicesAt] = module.layout(rows * width * ctor.BYTES_PER_ELEMENT, indexRows * k * 4);
  const memory = module.exports.memory.buffer;
  const cells = new ctor(memory, cellsAt, rows * width);
  const indices = new Int32Array(memory, indicesAt, indexRows * k);
  const strict = o.strict ? 1 : 0;
  const dropped = bitsOf(o.dropped);
  const e = module.exports;
  return {
    cells,
    indices,
    simd: true,
    verify(n, t0, at = 0) {
      if (n > rows || n < 0 || at < 0 || at + n > indexRows) {
        throw new RangeError(`verify: rows [0, ${n}) with indices [${at}, ${at + n}); the buffers hold ${rows} and ${indexRows}`);
      }
      // Row r keeps j < clamp(bound + r, 0, s): bound is the limit of row 0, kept within int32.
      const bound = o.offset === Infinity ? s : Math.max(-n, Math.min(s, t0 + o.offset + 1));
      if (bound + n - 1 > 0x7fffffff) {
        // The kernel's int32 bound + r would wrap (rows of nearly 2^31 keys): the TypeScript test.
        return verifyRowsFast(cells.subarray(0, n * width), indices.subarray(at * k, (at + n) * k), n, { ...o, t0 });
      }
      const idx = indicesAt + at * k * 4;
      if (form === 'additive') return e.verifyRowsF32(cellsAt, idx, n, s, k, bound, strict, dropped);
      if (form === 'bool') return e.verifyRowsU8(cellsAt, idx, n, s, k, bound, strict);
      return e.verifyRowsBits(cellsAt, idx, n, s, k, bound, strict);
    },
  };
}

/** A block's exact verdict after a failed fast test (null: its rows match; a repeated index tripped the test). */
export type BlockVerdict =
  | null
  | { row: number; outOfRange: true }
  | { row: number; outOfRange: false; key: number; kept: boolean; got: number };

/**
 * The exact answer for n rows whose fast test failed: the first element
 * (row-major) whose bits differ from the rows their indices define, built by
 * generateMask, as { row, key, kept (by the indices), got (the float, byte,
 * or the key's bit) }; or, with `strict`, the first row holding an index
 * >= s when it comes before any difference; or null.
 */
export function settleBlock(got: MaskData, indices: Int32Array, n: number, o: VerifyRowsOptions): BlockVerdict {
  const { form, s, k } = o;
  const bad = o.strict ? firstRowWithIndexAbove(indices, n, k, s) : n;
  if (bad === 0) return { row: 0, outOfRange: true };
  const want = generateMask({ data: indices.subarray(0, bad * k), shape: [1, bad, k] }, s, {
    form,
    outOfRange: 'skip',
    causalOffset: o.offset === Infinity ? undefined : o.offset + o.t0,
  }).data;
  if (form === 'additive' && !Object.is(o.dropped, DEFAULT_MASK_VALUE)) {
    for (let i = 0; i < want.length; i++) if (want[i] !== 0) want[i] = o.dropped;
  }
  const a = got instanceof Float32Array ? new Uint32Array(got.buffer, got.byteOffset, want.length) : got;
  const w = want instanceof Float32Array ? new Uint32Array(want.buffer, want.byteOffset, want.length) : want;
  const width = rowWidth(form, s);
  for (let i = 0; i < w.length; i++) {
    if (a[i] === w[i]) continue;
    const col = i % width;
    if (form !== 'bits') return { row: Math.floor(i / width), outOfRange: false, key: col, kept: form === 'additive' ? Object.is(want[i], 0) : want[i] === 1, got: got[i] };
    const diff = (a[i] ^ w[i]) >>> 0;
    const bit = 31 - Math.clz32(diff & -diff);
    return { row: Math.floor(i / width), outOfRange: false, key: col * 32 + bit, kept: ((w[i] >>> bit) & 1) === 1, got: (a[i] >>> bit) & 1 };
  }
  return bad < n ? { row: bad, outOfRange: true } : null;
}

/** The first of n rows of k indices holding one >= s, or n: the index check step of generateMask. */
function firstRowWithIndexAbove(indices: Int32Array, n: number, k: number, s: number): number {
  const firstBad = new Int32Array([NO_BAD_ROW]);
  checkIndices({ indices, k, s, firstBad }, 0, n);
  return firstBad[0] === NO_BAD_ROW ? n : firstBad[0];
}

export interface VerifyMaskOptions {
  /** The mask also drops keys j > ti + causalOffset (as generateMask's option). */
  causalOffset?: number;
  /** An index >= s: 'error' (default: RangeError, as generateMask) or 'skip' (keeps nothing). */
  outOfRange?: 'error' | 'skip';
  /**
   * What an additive mask holds at dropped keys: DEFAULT_MASK_VALUE (the
   * default, MaxText's) or another non-zero value (-Infinity for DeepSeek's
   * PyTorch reference). Kept keys hold +0.
   */
  droppedValue?: number;
}

/** The first position where a mask differs from the mask its indices define. */
export interface MaskDifference {
  batch: number;
  query: number;
  key: number;
  /** Whether the indices keep the key. */
  kept: boolean;
  /** What the mask holds there: the float (additive), the byte (bool) or the key's bit (bits). */
  got: number;
}

/**
 * Checks a mask made elsewhere (JAX, PyTorch, NumPy, a file) against the
 * definition: key j of row (bi, ti) is kept iff some slot of indices[bi, ti]
 * holds j (and j <= ti + causalOffset). The form comes from the data type:
 * Float32Array additive (kept +0, dropped `droppedValue`, compared as bit
 * patterns, so -0 and NaN differ), Uint8Array bool (1 / 0), Uint32Array
 * bits (bits past s must be 0). Returns null when they agree, else the first
 * difference in row-major order. With outOfRange 'error', an index >= s is
 * a RangeError (generateMask's) unless a difference comes in an earlier row.
 * O(b*t*(s + k)): rows are tested k cells and
 * one SIMD pass at a time on copies (the mask is not modified), and only a
 * block that fails is compared with the mask generateMask builds.
 */
export function verifyMask(mask: Tensor<MaskData>, indices: Tensor<Int32Array>, s: number, options: VerifyMaskOptions = {}): MaskDifference | null {
  checkKnownOptions('verifyMask', options, ['causalOffset', 'outOfRange', 'droppedValue']);
  const form = formOf('mask', (mask as { data?: unknown } | null)?.data);
  const [b, t, k] = checkTensor('indices', indices, Int32Array, ['b', 't', 'k']);
  checkKeyCount('s', s);
  const width = rowWidth(form, s);
  const shape = checkTensor('mask', mask, maskCtor(form), ['b', 't', form === 'bits' ? 'ceil(s / 32)' : 's']);
  if (shape[0] !== b || shape[1] !== t || shape[2] !== width) {
    throw new RangeError(`mask.shape: expected [${b}, ${t}, ${width}] (indices' b and t, ${form === 'bits' ? `ceil(${s} / 32) words` : `s = ${s}`}), got [${shape.join(', ')}]`);
  }
  const outOfRange = checkOneOf('outOfRange', options.outOfRange ?? 'error', ['error', 'skip'] as const);
  const offset = options.causalOffset === undefined ? Infinity : checkInteger('causalOffset', options.causalOffset);
  const dropped = options.droppedValue ?? DEFAULT_MASK_VALUE;
  if (typeof dropped !== 'number' || Number.isNaN(dropped) || dropped === 0) {
    throw new RangeError(`droppedValue: expected a non-zero number, got ${String(dropped)}`);
  }
  const droppedF32 = Math.fround(dropped);
  const rows = Math.max(1, Math.min(t, Math.floor((1 << 20) / (width * mask.data.BYTES_PER_ELEMENT))));
  const o = { form, s, k, offset, strict: outOfRange === 'error', dropped: droppedF32 };
  const verifier = createRowVerifier(o, rows);
  for (let bi = 0; bi < b; bi++) {
    for (let t0 = 0; t0 < t; t0 += rows) {
      const n = Math.min(rows, t - t0);
      const row = bi * t + t0;
      const got = mask.data.subarray(row * width, (row + n) * width) as MaskData;
      const idx = indices.data.subarray(row * k, (row + n) * k);
      verifier.cells.set(got);
      verifier.indices.set(idx);
      if (verifier.verify(n, t0) === n) continue;
      const verdict = settleBlock(got, idx, n, { ...o, t0 });
      if (verdict === null) continue;
      if (verdict.outOfRange) throw outOfRangeError(indices.data, t, k, s, row + verdict.row);
      return { batch: bi, query: t0 + verdict.row, key: verdict.key, kept: verdict.kept, got: verdict.got };
    }
  }
  return null;
}
