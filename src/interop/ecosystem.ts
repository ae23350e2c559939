/**
 * Tensors of the runtimes DSA users already have: ONNX Runtime's
 * `ort.Tensor` (onnxruntime-node, onnxruntime-web) and TensorFlow.js's
 * `tf.Tensor`, recognised by their shape (never `instanceof` of a class
 * this package would have to import), turned into the library's
 * `{ data, shape }` without a copy where their memory allows, and results
 * turned back into them with the caller's own module.
 */
import { describe, int64ToInt32, type Tensor, type TypedArray } from '../tensor.js';

/** An `ort.Tensor` as far as this library reads it. */
export interface OrtTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly location: string;
  /** The CPU data (a getter that throws for GPU locations). */
  readonly data: unknown;
}

/** A `tf.Tensor` as far as this library reads it. */
export interface TfTensorLike {
  readonly dtype: string;
  readonly shape: number[];
  readonly isDisposed?: boolean;
  dataSync(): unknown;
}

/** An ONNX Runtime or TensorFlow.js tensor. */
export type EcosystemTensor = OrtTensorLike | TfTensorLike;

/** The onnxruntime module (`import * as ort from 'onnxruntime-node'` or `'onnxruntime-web'`): what builds its tensors. */
export interface OrtModuleLike {
  Tensor: new (type: never, data: never, dims: never) => unknown;
}

/** The tfjs module (`import * as tf from '@tensorflow/tfjs-core'` or `'@tensorflow/tfjs'`). */
export interface TfModuleLike {
  tensor: (values: never, shape: never, dtype: never) => unknown;
  Tensor: unknown;
}

/** What the `output` option takes: the caller's onnxruntime or tfjs module. */
export type OutputModule = OrtModuleLike | TfModuleLike;

/** Whether `x` looks like an `ort.Tensor`: a string `type`, an array `dims` and a string `location`. */
export function isOrtTensor(x: unknown): x is OrtTensorLike {
  if (typeof x !== 'object' || x === null) return false;
  const t = x as { type?: unknown; dims?: unknown; location?: unknown };
  return typeof t.type === 'string' && Array.isArray(t.dims) && typeof t.location === 'string';
}

/** Whether `x` looks like a `tf.Tensor`: a string `dtype`, an array `shape` and a `dataSync()` method. */
export function isTfTensor(x: unknown): x is TfTensorLike {
  if (typeof x !== 'object' || x === null) return false;
  const t = x as { dtype?: unknown; shape?: unknown; dataSync?: unknown };
  return typeof t.dtype === 'string' && Array.isArray(t.shape) && typeof t.dataSync === 'function';
}

export function isEcosystemTensor(x: unknown): x is EcosystemTensor {
  return isOrtTensor(x) || isTfTensor(x);
}

/**
 * What a tensor argument needs, in the library's typed arrays: 'float32'
 * (Float32Array), 'int32' (Int32Array indices: int64 is converted,
 * range-checked), 'index' (Int32Array or BigInt64Array, both taken as they
 * are), 'float' (Float32Array or Float64Array), 'int8' and 'uint8'
 * (quantized keys, FP8 codes), 'mask' (any mask form) and 'any' (a tensor
 * kept as it is: .npy, uploads, stored weights).
 */
export type Need = 'float32' | 'int32' | 'index' | 'float' | 'int8' | 'uint8' | 'mask' | 'any';

/** The dtypes each need takes, as ONNX Runtime and tfjs name them; the data arrives as the matching typed array. */
export const ACCEPTED: Readonly<Record<Need, { ort: readonly string[]; tf: readonly string[]; says: string }>> = {
  float32: { ort: ['float32'], tf: ['float32'], says: 'float32' },
  int32: { ort: ['int32', 'int64'], tf: ['int32'], says: 'int32 (or int64, range-checked)' },
  index: { ort: ['int32', 'int64'], tf: ['int32'], says: 'int32 or int64' },
  float: { ort: ['float32', 'float64'], tf: ['float32'], says: 'float32 or float64' },
  int8: { ort: ['int8'], tf: [], says: 'int8' },
  uint8: { ort: ['uint8'], tf: [], says: 'uint8' },
  mask: { ort: ['float32', 'bool', 'uint8', 'uint32'], tf: ['float32', 'bool'], says: 'float32 (additive), bool or uint8 (bool form) or uint32 (bits)' },
  any: {
    ort: ['float32', 'float64', 'int32', 'uint32', 'int16', 'uint16', 'int8', 'uint8', 'bool', 'int64'],
    tf: ['float32', 'int32', 'bool'],
    says: 'a numeric dtype other than float16',
  },
};

/** The typed array each ecosystem dtype arrives as (ONNX Runtime's own table; tfjs uses the float32, int32 and bool rows). */
const DATA_OF: Readonly<Record<string, string>> = {
  float32: 'Float32Array', float64: 'Float64Array', int32: 'Int32Array', uint32: 'Uint32Array', int16: 'Int16Array',
  uint16: 'Uint16Array', int8: 'Int8Array', uint8: 'Uint8Array', bool: 'Uint8Array', int64: 'BigInt64Array',
};

function kindOf(x: EcosystemTensor): string {
  return isOrtTensor(x) ? `an ort.Tensor of type '${x.type}'` : `a tf.Tensor of dtype '${(x as TfTensorLike).dtype}'`;
}

function why(dtype: string): string {
  if (dtype === 'float16') return ' (dsa-ts computes in float32 and takes no half-precision input: Cast to float32 in the graph, or tf.cast)';
  if (dtype === 'int64') return ' (int64 is taken only where int32 indices are)';
  return '';
}

/**
 * The `{ data, shape }` of an ONNX Runtime or tfjs tensor: the same typed
 * array, no copy (ort CPU tensors; tfjs's cpu backend, whose `dataSync()`
 * returns its own array), except int64 indices, converted to Int32Array
 * with every element range-checked (`int64ToInt32`), and tfjs backends whose
 * `dataSync()` copies (wasm, webgl, webgpu). With `need`, the dtype is
 * checked first: a TypeError names the argument, the dtypes it takes and
 * the one given. An ort tensor not on the CPU (`location` 'gpu-buffer',
 * 'texture', 'ml-tensor') or disposed is a TypeError naming its location.
 */
export function fromEcosystem(x: EcosystemTensor, name: string, need?: Need): Tensor {
  let dtype: string, shape: number[], data: unknown;
  if (isOrtTensor(x)) {
    dtype = x.type;
    if (x.location !== 'cpu' && x.location !== 'cpu-pinned') {
      const what = x.location === 'none' ? 'was disposed (location \'none\')' : `holds its data on '${x.location}', not the CPU`;
      throw new TypeError(`${name}: the ort.Tensor ${what}; expected location 'cpu' (read GPU data with await tensor.getData() first)`);
    }
    shape = Array.from(x.dims);
    checkDtype(x, name, dtype, need, 'ort');
    data = x.data;
  } else if (isTfTensor(x)) {
    dtype = x.dtype;
    if (x.isDisposed === true) throw new TypeError(`${name}: the tf.Tensor was disposed`);
    shape = x.shape.slice();
    checkDtype(x, name, dtype, need, 'tf');
    data = x.dataSync();
  } else {
    throw new TypeError(`${name}: expected an ort.Tensor or a tf.Tensor, got ${describe(x)}`);
  }
  if (!ArrayBuffer.isView(data) || (data as TypedArray).constructor.name !== DATA_OF[dtype]) {
    throw new TypeError(`${name}: ${kindOf(x)} holds ${describe(data)}; expected its data as a ${DATA_OF[dtype] ?? 'typed array'}`);
  }
  if (dtype === 'int64' && need === 'int32') {
    return { data: int64ToInt32(name, data as BigInt64Array), shape };
  }
  return { data: data as TypedArray, shape };
}

function checkDtype(x: EcosystemTensor, name: string, dtype: string, need: Need | undefined, runtime: 'ort' | 'tf'): void {
  const accepted = need === undefined ? ACCEPTED.any : ACCEPTED[need];
  if (accepted[runtime].includes(dtype)) return;
  const none = accepted[runtime].length === 0 ? ` (tfjs has no ${accepted.says} dtype: pass an ort.Tensor or { data, shape })` : '';
  throw new TypeError(`${name}: expected dtype ${accepted.says}, got ${kindOf(x)}${why(dtype)}${none}`);
}

/** The ecosystem dtype a result array is given as: masks' bytes are bool, everything else by its array type. */
export function dtypeOf(data: TypedArray, need: Need | undefined): string | null {
  if (data instanceof Uint8Array) return need === 'mask' ? 'bool' : 'uint8';
  for (const [dtype, ctor] of Object.entries(DATA_OF)) {
    if (dtype !== 'bool' && data.constructor.name === ctor) return dtype;
  }
  return null;
}

/** The result kind an `output` module gives: how it builds a tensor over a host array, and which dtypes it can hold. */
export interface Output {
  readonly runtime: 'ort' | 'tf';
  /** The caller's module (what builds GPU tensors: src/interop/gpu.ts). */
  readonly module: OutputModule;
  holds(dtype: string): boolean;
  /** A tensor over `data` itself (no copy where the runtime adopts the array: ort, tfjs's cpu backend). */
  fromHost(data: TypedArray, shape: readonly number[], dtype: string): unknown;
}

const TF_DTYPES = ['float32', 'int32', 'bool'];

/**
 * Whether this is onnxruntime-node on Node 20, whose binding refuses a
 * SharedArrayBuffer-backed input ('Invalid argument' from session.run;
 * Node 22 and later take it): there a shared result (the pool's) is copied
 * into a plain array before it becomes an ort.Tensor. Everywhere else the
 * tensor is over the result itself.
 */
function refusesShared(ort: unknown): boolean {
  const binding = (ort as { env?: { versions?: { node?: unknown } } }).env?.versions?.node;
  const node = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;
  return typeof binding === 'string' && typeof node === 'string' && Number(node.split('.')[0]) < 22;
}

/**
 * The result kind of an `output` value: undefined (plain `{ data, shape }`),
 * the tfjs module (it has `tensor()` and `Tensor`) or the onnxruntime
 * module (it has a `Tensor` class and no `tensor()`). Anything else is a
 * TypeError naming it.
 */
export function resolveOutput(value: unknown, name = 'output'): Output | null {
  if (value === undefined) return null;
  const m = value as { tensor?: unknown; Tensor?: unknown };
  if ((typeof value === 'object' || typeof value === 'function') && value !== null) {
    if (typeof m.tensor === 'function' && typeof m.Tensor === 'function') {
      const tensor = m.tensor as (values: TypedArray, shape: number[], dtype: string) => unknown;
      return { runtime: 'tf', module: value as OutputModule, holds: (d) => TF_DTYPES.includes(d), fromHost: (data, shape, dtype) => tensor(data, shape.slice(), dtype) };
    }
    if (typeof m.Tensor === 'function' && m.tensor === undefined) {
      const Ctor = m.Tensor as new (type: string, data: TypedArray, dims: readonly number[]) => unknown;
      const copyShared = refusesShared(value);
      return {
        runtime: 'ort',
        module: value as OutputModule,
        holds: (d) => d in DATA_OF,
        fromHost: (data, shape, dtype) => new Ctor(dtype, copyShared && data.buffer instanceof SharedArrayBuffer ? data.slice() : data, shape.slice()),
      };
    }
  }
  throw new TypeError(
    `${name}: expected the onnxruntime module (import * as ort from 'onnxruntime-node' or 'onnxruntime-web': an object with a Tensor class) ` +
      `or the tfjs module (import * as tf from '@tensorflow/tfjs-core': an object with tensor()), got ${describe(value)}`,
  );
}

/**
 * A host tensor as an ONNX Runtime or tfjs tensor of the caller's module,
 * over the same array (no copy: ort and tfjs's cpu backend adopt it; tfjs's
 * wasm backend copies it into its heap). `dtype` defaults to the array's
 * (Uint8Array: 'uint8'; pass 'bool' for a bool mask). A dtype tfjs has no
 * name for (it has float32, int32 and bool) is a TypeError.
 */
export function toEcosystem(tensor: Tensor, output: OutputModule, dtype?: string): unknown {
  const out = resolveOutput(output);
  if (typeof tensor !== 'object' || tensor === null || !ArrayBuffer.isView(tensor.data) || !Array.isArray(tensor.shape)) {
    throw new TypeError(`tensor: expected a tensor { data, shape }, got ${describe(tensor)}`);
  }
  const d = dtype ?? dtypeOf(tensor.data, undefined);
  if (d === null || !out!.holds(d)) {
    throw new TypeError(`tensor: ${out!.runtime === 'tf' ? 'tfjs' : 'ONNX Runtime'} has no dtype for ${d === null ? describe(tensor.data) : `'${d}'`}${out!.runtime === 'tf' ? ' (it has float32, int32 and bool)' : ''}`);
  }
  if (DATA_OF[d] !== tensor.data.constructor.name) throw new TypeError(`dtype: '${d}' needs a ${DATA_OF[d]}, got ${describe(tensor.data)}`);
  return out!.fromHost(tensor.data, tensor.shape, d);
}
