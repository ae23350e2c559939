/**
 * Tensors are plain `{ data, shape }` pairs: a contiguous, row-major typed
 * array and its shape. Nothing else is attached, so a caller can back `data`
 * with a SharedArrayBuffer, a WebAssembly memory or a slice of a file buffer.
 */

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | Uint32Array
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | BigInt64Array;

export interface Tensor<T extends TypedArray = TypedArray> {
  data: T;
  shape: number[];
}

export type TypedArrayConstructor<T extends TypedArray> = {
  new (length: number): T;
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): T;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
};

/**
 * MaxText's mask value, `-0.7 * float32 max`, as float32. An additive mask
 * holds exactly 0 (kept) or this value (dropped). Two of them added overflow
 * to -Infinity in float32, which is why masks are combined, never added.
 */
export const DEFAULT_MASK_VALUE = Math.fround(-0.7 * 3.4028234663852886e38);

/** Mask forms: additive float32, boolean bytes (1 = kept), or 32 keys per Uint32 word. */
export type MaskForm = 'additive' | 'bool' | 'bits';

export type MaskData = Float32Array | Uint8Array | Uint32Array;

/** Number of Uint32 words per row of a bit-packed mask over s keys (a non-negative integer). */
export function wordsPerRow(s: number): number {
  // (s + 31) >>> 5 would wrap past 2^32 - 32 keys (2^32 gave 0 words) and take NaN, -1 or 1.5 silently.
  if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0) throw new RangeError(`s: expected a non-negative integer key count, got ${describe(s)}`);
  return Math.ceil(s / 32) || 0; // -0 keys: 0 words, not -0
}

export function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Allocates typed arrays; the pool passes one that backs them with SharedArrayBuffer. */
export type Alloc = <T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number) => T;

export const allocLocal: Alloc = (ctor, length) => new ctor(length);

/**
 * Backs arrays with SharedArrayBuffer, so the pool's workers use them in
 * place. A browser page that is not cross-origin isolated has no
 * SharedArrayBuffer: there the arrays are plain (and the browser pool runs
 * on the calling thread, which needs no shared memory).
 */
/** %TypedArray%, the constructor every typed array constructor (and subclass) extends. */
const TYPED_ARRAY = Object.getPrototypeOf(Int8Array);

export const allocShared: Alloc = (ctor, length) => {
  // Checked here because a public export: a fractional or NaN length would be truncated silently, a
  // negative or huge one, or a constructor that is no typed array, would fail with an engine error.
  if (typeof ctor !== 'function' || !Object.prototype.isPrototypeOf.call(TYPED_ARRAY, ctor)) {
    throw new TypeError(`ctor: expected a typed array constructor (Float32Array, Int32Array, ...), got ${describe(ctor)}`);
  }
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`length: expected a non-negative integer element count, got ${describe(length)}`);
  }
  try {
    return typeof SharedArrayBuffer === 'function' ? new ctor(new SharedArrayBuffer(length * ctor.BYTES_PER_ELEMENT), 0, length) : new ctor(length);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new RangeError(`length: ${length} ${ctor.name} elements (${length * ctor.BYTES_PER_ELEMENT} bytes) could not be allocated (${e.message})`);
  }
};

/**
 * NumPy's default integer is int64. Converts `[..]` int64 indices to the
 * Int32Array the library works on, checking every element: a value outside
 * int32 is a RangeError naming its flat position and value (nothing wraps).
 */
export function int64ToInt32(name: string, values: BigInt64Array): Int32Array {
  if (!(values instanceof BigInt64Array)) {
    throw new TypeError(`${name}: expected a BigInt64Array, got ${describe(values)}`);
  }
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v > 2147483647n || v < -2147483648n) {
      throw new RangeError(`${name}: element ${i} is ${v}, outside int32 [-2147483648, 2147483647]`);
    }
    out[i] = Number(v);
  }
  return out;
}

/** A short description of any value for error messages: the constructor name or the typeof. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  // String, not JSON.stringify, for numbers: NaN and Infinity would read 'null'.
  if (typeof value === 'number') return `number ${String(value)}`;
  if (typeof value === 'string' || typeof value === 'boolean') return `${typeof value} ${JSON.stringify(value)}`;
  return typeof value;
}
