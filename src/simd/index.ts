/**
 * The WebAssembly SIMD module (built from src/simd/assembly/*.ts by
 * `npm run build`) and its loader. One instance per thread, created on first
 * use with the synchronous `new WebAssembly.Module` (fine in Node and in
 * workers; a browser's main thread should `await initSimd()` first, as it
 * refuses synchronous compiles of modules over 4 KiB).
 *
 * Kernels take byte offsets into the instance's memory. A caller copies its
 * data in (`reserve` + the views below), runs a kernel, and copies results
 * out; views must be re-taken after `reserve`, which may grow the memory.
 */
import { wasmBase64 } from './wasm-bytes.generated.js';

/** The module's exports. Pointers are byte offsets; sizes are element counts. */
export interface SimdExports {
  memory: WebAssembly.Memory;
  /** x[d] . y[d] */
  dot(x: number, y: number, d: number): number;
  /** out[i] = x[d] . rows[i*stride ..+d], i < n */
  dotRows(x: number, rows: number, n: number, d: number, stride: number, out: number): void;
  /** out[i] = x[d] . rows[idx[i]*stride ..+d], i < n; idx Int32, all >= 0 */
  dotRowsGather(x: number, rows: number, idx: number, n: number, d: number, stride: number, out: number): void;
  /** y[d] += a * x[d] */
  axpy(a: number, x: number, y: number, d: number): void;
  /** y[d] += sum_i p[i] * rows[i*stride ..+d], i < n, in order */
  axpyRows(p: number, rows: number, n: number, d: number, stride: number, y: number): void;
  /** y[d] += sum_i p[i] * rows[idx[i]*stride ..+d], i < n, in order */
  axpyRowsGather(p: number, rows: number, idx: number, n: number, d: number, stride: number, y: number): void;
  indexerBlockF32(q: number, w: number, keys: number, n: number, h: number, dp: number, out: number): void;
  /** indexerBlockF32 / indexerBlockI8 specialised for dp = 128. */
  indexerBlockF32D128(q: number, w: number, keys: number, n: number, h: number, out: number): void;
  indexerBlockI8D128(q: number, qs: number, w: number, keys: number, ks: number, n: number, h: number, out: number): void;
  /** dst[i] = src[i], int8 -> int16, n a multiple of 16 */
  widenI8(src: number, dst: number, n: number): void;
  quantizeRows(src: number, dst: number, scales: number, scaleStride: number, n: number, dp: number): void;
  indexerBlockI8(q: number, qs: number, w: number, keys: number, ks: number, ksStride: number, n: number, h: number, dp: number, out: number): void;
  /**
   * e4m3 codes of n keys (n a multiple of 4) x dp dims (a multiple of 16) into
   * the key-interleaved float32 block: out[(g * dp + e) * 4 + i] = value of key 4g + i at dim e.
   */
  fp8DecodeKeys(codes: number, n: number, dp: number, out: number): void;
  /**
   * FP8 scores of one query row against n keys (a multiple of 8) of the
   * interleaved block: q [h, dp] decoded values, wq [h], key scales ks [n]; h a multiple of 4.
   */
  indexerBlockFp8(q: number, wq: number, keys: number, ks: number, n: number, h: number, dp: number, out: number): void;
  /**
   * Mask rows against their top-k indices (src/mask/verify.ts): the first of
   * n rows failing the fast test, or n; overwrites the cells.
   */
  verifyRowsF32(cells: number, idx: number, n: number, s: number, k: number, bound: number, strict: number, dropped: number): number;
  verifyRowsU8(cells: number, idx: number, n: number, s: number, k: number, bound: number, strict: number): number;
  verifyRowsBits(cells: number, idx: number, n: number, s: number, k: number, bound: number, strict: number): number;
  [name: string]: unknown;
}

export interface SimdModule {
  exports: SimdExports;
  /** Makes the memory at least `bytes` long (grows it; views taken before are then stale). */
  reserve(bytes: number): void;
  /** Offsets, 64-byte aligned, for consecutive regions of the given byte sizes; reserves them all. */
  layout(...bytes: number[]): number[];
  f32(ptr: number, length: number): Float32Array;
  i32(ptr: number, length: number): Int32Array;
  i16(ptr: number, length: number): Int16Array;
  i8(ptr: number, length: number): Int8Array;
  u8(ptr: number, length: number): Uint8Array;
}

// (func (result v128) v128.const 0): valid only where WebAssembly SIMD is.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 11,
]);

let supported: boolean | undefined;

/** Whether this engine has WebAssembly with fixed-width SIMD. */
export function simdSupported(): boolean {
  if (supported === undefined) {
    try {
      supported = typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
    } catch {
      supported = false;
    }
  }
  return supported;
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const text = atob(wasmBase64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

let instance: SimdModule | null | undefined;

function wrap(inst: WebAssembly.Instance): SimdModule {
  const exports = inst.exports as unknown as SimdExports;
  const memory = exports.memory;
  const reserve = (bytes: number) => {
    const have = memory.buffer.byteLength;
    if (bytes > have) memory.grow(Math.ceil((bytes - have) / 65536));
  };
  return {
    exports,
    reserve,
    layout(...sizes) {
      const offsets: number[] = [];
      let at = 0;
      for (const size of sizes) {
        offsets.push(at);
        at += Math.ceil(size / 64) * 64;
      }
      reserve(at);
      return offsets;
    },
    f32: (ptr, length) => new Float32Array(memory.buffer, ptr, length),
    i32: (ptr, length) => new Int32Array(memory.buffer, ptr, length),
    i16: (ptr, length) => new Int16Array(memory.buffer, ptr, length),
    i8: (ptr, length) => new Int8Array(memory.buffer, ptr, length),
    u8: (ptr, length) => new Uint8Array(memory.buffer, ptr, length),
  };
}

/**
 * This thread's SIMD module, or null where WebAssembly SIMD is unavailable
 * or a synchronous compile is refused (a browser main thread before
 * `initSimd()`); callers then use their TypeScript path.
 */
export function simdModule(): SimdModule | null {
  if (instance === undefined) {
    try {
      instance = simdSupported() ? wrap(new WebAssembly.Instance(new WebAssembly.Module(moduleBytes()), {})) : null;
    } catch {
      return null; // not cached: initSimd() may still succeed
    }
  }
  return instance;
}

/** Compiles the module asynchronously (for browser main threads); resolves to whether SIMD is in use. */
export async function initSimd(): Promise<boolean> {
  if (instance === undefined) {
    if (!simdSupported()) instance = null;
    else instance = wrap((await WebAssembly.instantiate(moduleBytes(), {})).instance);
  }
  return instance !== null;
}
