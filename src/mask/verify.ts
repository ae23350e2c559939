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
 * row is only a candidate: the caller settles it with the exact definition
 * (generateMask and a byte compare), which also finds the position. Top-k
 * never repeats an index.
 *
 * Rows: row r of a block keeps index j iff 0 <= j < causalLimit(t0 + r, s,
 * offset); with `strict`, an index >= s fails its row (the 'error'
 * out-of-range policy; 'skip' keeps nothing for it).
 */
import type { MaskData, MaskForm } from '../tensor.js';
import { simdModule } from '../simd/index.js';
import { causalLimit, maskCtor, rowWidth } from './form.js';

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
      const idx = indicesAt + at * k * 4;
      // Row r keeps j < clamp(bound + r, 0, s): bound is the limit of row 0, kept within int32.
      const bound = o.offset === Infinity ? s : Math.max(-n, Math.min(s, t0 + o.offset + 1));
      if (form === 'additive') return e.verifyRowsF32(cellsAt, idx, n, s, k, bound, strict, dropped);
      if (form === 'bool') return e.verifyRowsU8(cellsAt, idx, n, s, k, bound, strict);
      return e.verifyRowsBits(cellsAt, idx, n, s, k, bound, strict);
    },
  };
}
