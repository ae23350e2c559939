/**
 * One wrapper for every public function: ecosystem tensors among the
 * arguments (at the positions `signatures.ts` names, also inside input and
 * option objects) become `{ data, shape }` before the function's own edge
 * checks them, and with `output: ort` or `output: tf` the result's tensors
 * come back in that runtime's kind. The function itself never sees the
 * `output` option, so its unknown-option check stays strict.
 */
import type { Tensor, TypedArray } from '../tensor.js';
import type { DsaCache } from '../cache/cache.js';
import { GpuTensor, type GpuDtype } from '../webgpu/resident.js';
import { fromGpuInput, gpuDtypeName, gpuOutputOf, isGpuInput, type GpuOutput } from './gpu.js';
import {
  dtypeOf, fromEcosystem, isEcosystemTensor, resolveOutput,
  type EcosystemTensor, type Need, type OrtModuleLike, type Output, type OutputModule, type TfModuleLike, type TfTensorLike,
} from './ecosystem.js';
import type { Signature, Slot } from './signatures.js';

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/**
 * A value at a slot with its ecosystem tensors converted (the same object
 * where none was). With `device` (a GPU op), GPU tensors of other runtimes
 * at tensor slots become GpuTensors over their buffers (src/interop/gpu.ts).
 */
export function convertIn(value: unknown, slot: Slot | null, name: string, device?: GPUDevice): unknown {
  if (slot === null || value === undefined || value === null) return value;
  const gpuNeed = slot.tensor ?? (slot.gpu === true ? slot.array : undefined);
  if (device !== undefined && gpuNeed !== undefined) {
    const g = fromGpuInput(device, value, name, gpuNeed);
    if (g !== null) return g;
  } else if (gpuNeed !== undefined && !isEcosystemTensor(value) && isGpuInput(value)) {
    throw new TypeError(`${name}: a GPUBuffer (a tfjs dataToGPU() result or { buffer, shape, dtype }) is taken by the GPU ops only (createGpu); here pass the values on the host`);
  }
  if (isEcosystemTensor(value)) {
    if (slot.tensor !== undefined) return fromEcosystem(value, name, slot.tensor);
    if (slot.array !== undefined) {
      const t = fromEcosystem(value, name, slot.array);
      if (slot.flat !== true && t.shape.length !== 1) throw new RangeError(`${name}: expected a rank-1 tensor (its data is the array), got shape [${t.shape.join(', ')}]`);
      return t.data;
    }
    return value;
  }
  if (slot.fields !== undefined && isPlainObject(value)) {
    let copy: Record<string, unknown> | null = null;
    for (const [key, sub] of Object.entries(slot.fields)) {
      if (!(key in value)) continue;
      const v = value[key];
      const c = convertIn(v, sub, name === '' ? key : `${name}.${key}`, device);
      if (c !== v) (copy ??= { ...value })[key] = c;
    }
    return copy ?? value;
  }
  return value;
}

function isHostTensor(x: unknown): x is Tensor {
  return isPlainObject(x) && ArrayBuffer.isView(x.data) && Array.isArray(x.shape);
}

const FITS: Readonly<Record<Need, (d: TypedArray) => boolean>> = {
  float32: (d) => d instanceof Float32Array,
  int32: (d) => d instanceof Int32Array,
  index: (d) => d instanceof Int32Array || d instanceof BigInt64Array,
  float: (d) => d instanceof Float32Array || d instanceof Float64Array,
  int8: (d) => d instanceof Int8Array,
  uint8: (d) => d instanceof Uint8Array,
  mask: (d) => d instanceof Float32Array || d instanceof Uint8Array || d instanceof Uint32Array,
  any: () => true,
};

/**
 * A result with the tensors at its slot in the output's kind. A tensor the
 * kind has no dtype for (tfjs: int8 keys, uint32 bit masks) stays
 * `{ data, shape }`; so do FP8 keys, whose bytes are no tensor.
 */
export function convertOut(value: unknown, slot: Slot | null, output: Output, gpu: GpuOutput | null = null): unknown {
  if (slot === null) return value;
  if (value instanceof GpuTensor) {
    if (gpu === null || slot.tensor === undefined) return value;
    const dtype = gpuDtypeName(value, slot.tensor);
    return gpu.holds(dtype) ? gpu.from(value, dtype) : value;
  }
  if (!isPlainObject(value)) return value;
  if (slot.tensor !== undefined && isHostTensor(value) && FITS[slot.tensor](value.data as TypedArray)) {
    const dtype = dtypeOf(value.data as TypedArray, slot.tensor);
    return dtype !== null && output.holds(dtype) ? output.fromHost(value.data as TypedArray, value.shape, dtype) : value;
  }
  if (slot.fields !== undefined) {
    const copy: Record<string, unknown> = { ...value };
    for (const [key, sub] of Object.entries(slot.fields)) {
      if (key in copy) copy[key] = convertOut(copy[key], sub, output, gpu);
    }
    return copy;
  }
  return value;
}

/** Reads a GpuTensor's values back (an onnxruntime-web result's `getData()`). */
export type GpuRead = (tensor: GpuTensor) => Promise<TypedArray>;

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return typeof x === 'object' && x !== null && typeof (x as { then?: unknown }).then === 'function';
}

/**
 * Takes `output` out of the options, converts the arguments, runs `fn`,
 * converts its result (awaited when it is a promise). `device`: a GPU op's,
 * whose tensor slots also take other runtimes' GPU tensors and whose
 * `resident: true` results go out as their GPU tensors.
 */
function invoke(op: string, fn: (...args: unknown[]) => unknown, self: unknown, sig: Signature, args: unknown[], gpu: boolean, device?: GPUDevice, read?: GpuRead): unknown {
  let output: Output | null = null;
  let gpuOut: GpuOutput | null = null;
  const call = args.slice();
  const at = sig.options;
  if (at !== null && isPlainObject(call[at]) && 'output' in (call[at] as object)) {
    const { output: asked, ...rest } = call[at] as Record<string, unknown>;
    output = resolveOutput(asked);
    if (output !== null && sig.result === null) {
      throw new TypeError(`output: ${op} returns no tensors, so it takes no output kind (got the ${output.runtime === 'tf' ? 'tfjs' : 'onnxruntime'} module)`);
    }
    if (output !== null && gpu && rest.resident === true) {
      if (device === undefined) throw new TypeError(`output: with resident: true ${op}'s results stay on the GPU as GpuTensors; output takes host results only here (drop resident, or read the GpuTensors)`);
      gpuOut = gpuOutputOf(output, op, read);
    }
    call[at] = rest;
  }
  for (let i = 0; i < call.length && i < sig.args.length; i++) {
    const [name, slot] = sig.args[i];
    call[i] = convertIn(call[i], slot, at === i ? '' : name, device);
  }
  const result = fn.apply(self, call);
  if (output === null) return result;
  const out = output;
  return isThenable(result) ? Promise.resolve(result).then((r) => convertOut(r, sig.result, out, gpuOut)) : convertOut(result, sig.result, out, gpuOut);
}

/**
 * `fn` taking ecosystem tensors and the `output` option. A synchronous
 * `fn` throws its errors (the wrapper's included); an async one rejects.
 */
export function withInterop<F extends (...args: never[]) => unknown, S extends Signature>(
  op: string,
  fn: F,
  sig: S,
  opts: { async?: boolean; gpu?: boolean; device?: GPUDevice; read?: GpuRead } = {},
): Interop<F, S['options']> {
  const run = fn as unknown as (...args: unknown[]) => unknown;
  const gpu = opts.gpu === true;
  const { device, read } = opts;
  const wrapped = opts.async
    ? function (this: unknown, ...args: unknown[]) {
        try {
          return invoke(op, run, this, sig, args, gpu, device, read);
        } catch (e) {
          return Promise.reject(e);
        }
      }
    : function (this: unknown, ...args: unknown[]) {
        return invoke(op, run, this, sig, args, gpu, device, read);
      };
  Object.defineProperty(wrapped, 'name', { value: fn.name || op });
  return wrapped as unknown as Interop<F, S['options']>;
}

/**
 * An object of ops (a pool's, a GPU backend's) with the ops `sigs` names
 * wrapped (async: errors reject, except the ops `sync` names); everything
 * else as it is. `device`: the GPU backend's, for the GPU hand-over of its
 * async ops (src/interop/gpu.ts); the sync ones (`upload`) take host data.
 */
export function withInteropOps<T extends object, M extends Record<string, Signature>>(
  api: T,
  sigs: M,
  opts: { gpu?: boolean; device?: GPUDevice; read?: GpuRead; sync?: readonly (keyof M)[] } = {},
): InteropOps<T, M> {
  const out: Record<string, unknown> = { ...(api as Record<string, unknown>) };
  for (const [op, sig] of Object.entries(sigs)) {
    const fn = (api as Record<string, unknown>)[op];
    if (typeof fn !== 'function') throw new Error(`interop: the api has no op '${op}' its signature table names`);
    const sync = opts.sync?.includes(op) === true;
    out[op] = withInterop(op, fn as (...args: never[]) => unknown, sig, { async: !sync, gpu: opts.gpu, device: sync ? undefined : opts.device, read: opts.read });
  }
  return out as InteropOps<T, M>;
}

// ---- Types: the wrapped function is the original (first overload, exact types) and two ecosystem overloads.

/** Class instances the type mapping leaves alone (a cache, a GPU tensor). */
export type Opaque = DsaCache | GpuTensor | TypedArray | ((...args: never[]) => unknown) | readonly unknown[];

/**
 * What a GPU op takes where it takes a GpuTensor: an onnxruntime-web tensor
 * on 'gpu-buffer' (an EcosystemTensor), a tfjs `dataToGPU()` result, or a
 * GPUBuffer with its shape and dtype (src/interop/gpu.ts).
 */
export type GpuHandOverInput =
  | { readonly buffer: GPUBuffer; readonly tensorRef: TfTensorLike }
  | { readonly buffer: GPUBuffer; readonly shape: readonly number[]; readonly dtype: GpuDtype };

/** An argument type with every tensor (and bare typed array) also taking an ecosystem tensor; a GpuTensor also a GPU hand-over input. */
export type EcoIn<T> = T extends GpuTensor
  ? T | EcosystemTensor | GpuHandOverInput
  : T extends TypedArray
  ? T | EcosystemTensor
  : T extends { hadamard: boolean } | { format: string }
    ? { [P in keyof T]: EcoIn<T[P]> }
    : T extends Tensor
    ? T | EcosystemTensor
    : T extends Opaque
      ? T
      : T extends object
        ? { [P in keyof T]: EcoIn<T[P]> }
        : T;

/** The `output` option the wrapper adds to a function's options. */
export interface OutputOption {
  /** Results as tensors of this runtime: the caller's onnxruntime or tfjs module (default: `{ data, shape }`). */
  output?: OutputModule;
}

export type WithOutput<T> = T extends object ? T & OutputOption : T;
export type EcoArgs<A extends readonly unknown[], I> = { [J in keyof A]: J extends `${I & number}` ? WithOutput<EcoIn<A[J]>> : EcoIn<A[J]> };
/** The arguments up to and with the options object, which holds an `output` module. */
export type EcoArgsWithOutput<A extends readonly unknown[], I> = {
  [J in keyof A]-?: J extends `${I & number}` ? EcoIn<NonNullable<A[J]>> & { output: OutputModule } : EcoIn<A[J]>;
};

export type OutputOf<Args, I> = I extends number ? (`${I}` extends keyof Args ? (Args[`${I}` & keyof Args] extends { output: infer K } ? K : undefined) : undefined) : undefined;

/**
 * A result's tensors as the runtime's tensor type `E`; tfjs holds float32,
 * int32 and bool only (on the GPU float32 and int32: a resident mask may stay
 * a GpuTensor).
 */
export type MapOut<R, E, Tf extends boolean> = R extends { hadamard: boolean }
  ? R
  : R extends GpuTensor
    ? Tf extends true
      ? E | GpuTensor
      : E
  : R extends Tensor<infer D>
    ? Tf extends true
      ? D extends Float32Array | Int32Array | Uint8Array
        ? E
        : Tensor<D>
      : E
    : R extends Opaque
      ? R
      : R extends object
        ? { [P in keyof R]: MapOut<R[P], E, Tf> }
        : R;

export type Converted<R, K> = K extends TfModuleLike
  ? MapOut<R, K['tensor'] extends (...args: never[]) => infer E ? E : unknown, true>
  : K extends OrtModuleLike
    ? MapOut<R, K['Tensor'] extends new (...args: never[]) => infer E ? E : unknown, false>
    : R;

export type EcoResult<R, K> = R extends Promise<infer U> ? Promise<Converted<U, K>> : Converted<R, K>;

/**
 * An overload with `output` in the options at position `I` whose result is
 * that runtime's tensors, `F` itself (so plain calls keep its exact,
 * generic types), and one taking ecosystem tensors without `output`. The
 * `output` overload requires the option, so plain calls never match it (a
 * generic catch-all would win TypeScript's first (subtype) pass of overload
 * resolution over `F` itself); it comes first because an op whose options
 * are a generic parameter (the GPU ops' `O extends ...`) takes `output` in
 * `F` itself too, with no excess-property check, and would type the result
 * as its own.
 */
export type Interop<F, I> = F extends (...args: infer A) => infer R
  ? (I extends number ? <Args extends EcoArgsWithOutput<A, I>>(...args: Args) => EcoResult<R, OutputOf<Args, I>> : unknown) &
      F &
      ((...args: EcoArgs<A, I>) => R)
  : F;

export type InteropOps<T, M> = { [K in keyof T]: K extends keyof M ? (M[K] extends Signature ? Interop<T[K], M[K]['options']> : T[K]) : T[K] };
