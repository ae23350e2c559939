/**
 * The WebAssembly SIMD module (built from src/simd/assembly/*.ts by
 * `npm run build`) and its loader. One instance per thread, created on first
 * use with the synchronous `new WebAssembly.Module` (fine in Node and in
 * workers; a browser's main thread should `await initSimd()` first, as it
 * refuses synchronous compiles of modules over 4 KiB).
 *
 * There are two builds of the same sources: the baseline module
 * (fixed-width SIMD) and the relaxed module (also relaxed SIMD, with the
 * 'int7' indexer kernels on `i32x4.relaxed_dot_i8x16_i7x16_add_s`). The
 * relaxed one is used wherever the engine validates it and computes the
 * relaxed dot exactly in both of its tiers (src/simd/relaxed-probe.ts: Node
 * 22+, Chromium, Firefox 145+; not Node 20, which validates it only with a
 * flag and whose baseline compiler then drops the accumulator). Both give
 * the same bits for every kernel: the relaxed module is only faster.
 *
 * Kernels take byte offsets into the instance's memory. A caller copies its
 * data in (`reserve` + the views below), runs a kernel, and copies results
 * out; views must be re-taken after `reserve`, which may grow the memory.
 */
import { wasmBase64, wasmRelaxedBase64 } from './wasm-bytes.generated.js';
import { probeRelaxedDot } from './relaxed-probe.js';

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
  /** quantizeRows with 63 levels (values in [-63, 63]): the 'int7' queries. */
  quantizeRows7(src: number, dst: number, scales: number, scaleStride: number, n: number, dp: number): void;
  [name: string]: unknown;
}

/** The kernels only the relaxed module has (src/simd/assembly/indexer-relaxed.ts). */
export interface RelaxedExports {
  quantizeKeysBytes(src: number, dst: number, scales: number, sums: number, stride: number, n: number, dp: number): void;
  keyBlockSums(keys: number, sums: number, stride: number, n: number, dp: number): void;
  quantizeQueriesBiased(src: number, dst: number, scales: number, scaleStride: number, n: number, dp: number): void;
  indexerBlockI7(q: number, qs: number, w: number, keys: number, ks: number, sums: number, ksStride: number, n: number, h: number, dp: number, out: number): void;
  indexerBlockI7D128(q: number, qs: number, w: number, keys: number, ks: number, sums: number, n: number, h: number, out: number): void;
}

/** Which build of the module a thread runs. */
export type SimdBuild = 'baseline' | 'relaxed';

export interface SimdModule {
  exports: SimdExports;
  /** The relaxed module's own kernels, or null in the baseline module. */
  relaxed: RelaxedExports | null;
  build: SimdBuild;
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

function moduleBytes(build: SimdBuild): Uint8Array<ArrayBuffer> {
  const text = atob(build === 'relaxed' ? wasmRelaxedBase64 : wasmBase64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

let relaxedValid: boolean | undefined;
let relaxedExact: boolean | undefined;

/** Whether this engine validates the relaxed module (not Safari, not Node 20 without a flag). */
function relaxedValidates(): boolean {
  if (relaxedValid === undefined) {
    try {
      relaxedValid = simdSupported() && WebAssembly.validate(moduleBytes('relaxed'));
    } catch {
      relaxedValid = false;
    }
  }
  return relaxedValid;
}

/**
 * Whether this engine runs the relaxed module: it validates it (relaxed
 * SIMD: Node 22+, Chromium, Firefox 145+; not Safari, not Node 20 without a
 * flag) and a fresh probe of the relaxed dot is exact in its baseline tier
 * and after tier-up (not Node 20 with the flag). Probed once per thread, on
 * first ask (a few milliseconds).
 */
export function relaxedSimdSupported(): boolean {
  if (relaxedExact === undefined) {
    try {
      relaxedExact = relaxedValidates() && probeRelaxedDot().exact;
    } catch {
      relaxedExact = false;
    }
  }
  return relaxedExact;
}

/** The build this thread loads unless told otherwise (initSimd's `relaxed`): relaxed wherever it is exact. */
let preferred: SimdBuild | null = null;

function wantedBuild(): SimdBuild {
  return preferred ?? (relaxedSimdSupported() ? 'relaxed' : 'baseline');
}

let instance: SimdModule | null | undefined;
/** Every build this thread has loaded: switching back (initSimd) reuses its instance and the memory it grew. */
const loaded = new Map<SimdBuild, SimdModule>();

function wrap(inst: WebAssembly.Instance, build: SimdBuild): SimdModule {
  const exports = inst.exports as unknown as SimdExports;
  const relaxed = build === 'relaxed' ? (inst.exports as unknown as RelaxedExports) : null;
  const memory = exports.memory;
  const reserve = (bytes: number) => {
    const have = memory.buffer.byteLength;
    if (bytes > have) memory.grow(Math.ceil((bytes - have) / 65536));
  };
  return {
    exports,
    relaxed,
    build,
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
      if (!simdSupported()) instance = null;
      else {
        const build = wantedBuild();
        instance = loaded.get(build) ?? wrap(new WebAssembly.Instance(new WebAssembly.Module(moduleBytes(build)), {}), build);
        loaded.set(build, instance);
      }
    } catch {
      return null; // not cached: initSimd() may still succeed
    }
  }
  return instance;
}

export interface InitSimdOptions {
  /**
   * true: the relaxed module (a RangeError where the engine lacks relaxed
   * SIMD or computes its dot wrong); false: the baseline module; default:
   * relaxed wherever `relaxedSimdSupported()`. Results are the same either
   * way; this only picks the speed (benchmarks compare the two).
   */
  relaxed?: boolean;
}

/**
 * Compiles the module asynchronously (needed on browser main threads) and
 * resolves to whether SIMD is in use. With `relaxed` set, this thread's
 * module is switched when it is the other build (a build loaded before is
 * reused, its memory kept): call it before running kernels, or between
 * calls.
 */
export async function initSimd(options: InitSimdOptions = {}): Promise<boolean> {
  if (typeof options !== 'object' || options === null) throw new TypeError(`options: expected an object, got ${options === null ? 'null' : typeof options}`);
  const { relaxed } = options;
  for (const key of Object.keys(options)) {
    if (key !== 'relaxed') throw new TypeError(`initSimd: unknown option '${key}' (expected: relaxed)`);
  }
  if (relaxed !== undefined && typeof relaxed !== 'boolean') throw new TypeError(`relaxed: expected a boolean, got ${typeof relaxed}`);
  if (relaxed === true && !relaxedSimdSupported()) {
    throw new RangeError(
      relaxedValidates()
        ? 'relaxed: true: this engine validates relaxed SIMD but computes the relaxed dot wrong (Node 20 with --experimental-wasm-relaxed-simd); the baseline module stays'
        : 'relaxed: true needs WebAssembly relaxed SIMD, which this engine does not validate (Safari; Node 20 without --experimental-wasm-relaxed-simd)',
    );
  }
  if (relaxed !== undefined && instance && instance.build !== (relaxed ? 'relaxed' : 'baseline')) instance = undefined;
  if (instance === undefined) {
    if (!simdSupported()) instance = null;
    else {
      const build = relaxed === undefined ? wantedBuild() : relaxed ? 'relaxed' : 'baseline';
      instance = loaded.get(build) ?? wrap((await WebAssembly.instantiate(moduleBytes(build), {})).instance, build);
      loaded.set(build, instance);
    }
  }
  if (relaxed !== undefined) preferred = relaxed ? 'relaxed' : 'baseline';
  return instance !== null;
}

/** The build this thread's kernels run ('relaxed' or 'baseline'), or null when they run in TypeScript. */
export function simdBuild(): SimdBuild | null {
  return simdModule()?.build ?? null;
}
