/**
 * The GPU hand-over with ONNX Runtime Web and tfjs-webgpu on one device:
 * their GPU tensors taken by the GPU ops as GpuTensors over the same
 * buffers (no copy, no read-back), and `resident: true` results given back
 * as their GPU tensors.
 *
 * In: an `ort.Tensor` with `location: 'gpu-buffer'` (its `gpuBuffer`), a
 * tfjs `dataToGPU()` result (`{ buffer, tensorRef }`), or a plain
 * `{ buffer, shape, dtype }` over a GPUBuffer. The buffers stay their
 * makers': the library binds them during the call and never destroys them.
 *
 * Out (`output: ort` or `output: tf` with `resident: true`):
 * - onnxruntime-web: `ort.Tensor.fromGpuBuffer(buffer, { dataType, dims,
 *   dispose })` over the result's own buffer (no copy); the ort tensor owns
 *   it: its `dispose()` destroys the buffer.
 * - tfjs-webgpu: `tf.tensor({ buffer, zeroCopy: false }, shape, dtype)`:
 *   tfjs copies the buffer into one of its own on the GPU (tfjs never frees
 *   an outside buffer, and nothing tells the library when the tensor is
 *   disposed), and the library destroys its buffer at once.
 * - onnxruntime-node takes no GPUBuffer (its GPU tensors are native
 *   handles), so `output` of it with `resident: true` is a TypeError.
 */
import { describe } from '../tensor.js';
import { GpuTensor, type GpuDtype } from '../webgpu/resident.js';
import { borrowBuffer, isGpuBuffer } from '../webgpu/handover.js';
import { isOrtTensor, isTfTensor, type Need, type Output } from './ecosystem.js';

/** The GPU dtypes each need takes (int64 and float64 have no GPU form: the GPU ops compute in float32 with int32 indices). */
const GPU_NEEDS: Readonly<Record<Need, readonly GpuDtype[]>> = {
  float32: ['float32'],
  int32: ['int32'],
  index: ['int32'],
  float: ['float32'],
  int8: ['int8'],
  uint8: ['uint8'],
  mask: ['float32', 'uint8', 'uint32'],
  any: ['float32', 'int32', 'uint32', 'uint8', 'int8'],
};

/** ONNX Runtime's GPU types as the backend's dtypes (bool: one byte an element, as a bool mask). */
const ORT_GPU: Readonly<Record<string, GpuDtype>> = { float32: 'float32', int32: 'int32', uint32: 'uint32', uint8: 'uint8', bool: 'uint8', int8: 'int8' };
/** tfjs-webgpu's dtypes the backend can read as they are (tfjs keeps bool as 4 bytes an element, no mask form). */
const TF_GPU: Readonly<Record<string, GpuDtype>> = { float32: 'float32', int32: 'int32' };

function unsupported(name: string, what: string, dtype: string, need: Need): TypeError {
  const hint =
    dtype === 'int64'
      ? ' (the GPU ops take int32 indices: Cast to int32 in the graph, or read the tensor with await tensor.getData() for the CPU path, which converts int64)'
      : dtype === 'float16'
        ? ' (dsa-ts computes in float32: Cast to float32 in the graph)'
        : dtype === 'bool' && what.startsWith('a tfjs')
          ? ' (tfjs-webgpu stores bool as 4 bytes an element: tf.cast it to int32 or float32, or pass a float32 additive mask)'
          : '';
  return new TypeError(`${name}: expected dtype ${GPU_NEEDS[need].join(' or ')} on the GPU, got ${what} of dtype '${dtype}'${hint}`);
}

function checked(name: string, what: string, dtype: string, table: Readonly<Record<string, GpuDtype>>, need: Need): GpuDtype {
  const d = table[dtype];
  if (d === undefined || !GPU_NEEDS[need].includes(d)) throw unsupported(name, what, dtype, need);
  return d;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** Whether `x` is a GPU tensor of another runtime (or a plain `{ buffer, shape, dtype }`), which only the GPU ops take. */
export function isGpuInput(x: unknown): boolean {
  if (isOrtTensor(x)) return x.location === 'gpu-buffer';
  return isPlainObject(x) && isGpuBuffer(x.buffer) && (isTfTensor(x.tensorRef) || ('shape' in x && 'dtype' in x));
}

/**
 * A GPU input at a tensor slot of a GPU op as a GpuTensor over the same
 * buffer of `device` (no copy), its dtype checked against `need`; null for
 * anything else (a host tensor, a GpuTensor), which goes on as it is.
 */
export function fromGpuInput(device: GPUDevice, value: unknown, name: string, need: Need): GpuTensor | null {
  if (isOrtTensor(value)) {
    if (value.location !== 'gpu-buffer') return null;
    const buffer = (value as { gpuBuffer?: unknown }).gpuBuffer;
    if (!isGpuBuffer(buffer)) {
      throw new TypeError(
        `${name}: the ort.Tensor on 'gpu-buffer' holds ${describe(buffer)}, not a WebGPU GPUBuffer ` +
          "(onnxruntime-node's GPU tensors are native handles that no WebGPU device binds): read it with await tensor.getData(), or run the graph with onnxruntime-web",
      );
    }
    const dtype = checked(name, `an ort.Tensor on 'gpu-buffer'`, value.type, ORT_GPU, need);
    return borrowBuffer(device, buffer, Array.from(value.dims), dtype, name);
  }
  if (!isPlainObject(value) || !isGpuBuffer(value.buffer)) return null;
  const ref = value.tensorRef;
  if (isTfTensor(ref)) {
    if (ref.isDisposed === true) throw new TypeError(`${name}: the tfjs dataToGPU() result's tensorRef was disposed (dispose it only after the call settles)`);
    const dtype = checked(name, 'a tfjs dataToGPU() result', ref.dtype, TF_GPU, need);
    return borrowBuffer(device, value.buffer, ref.shape.slice(), dtype, name);
  }
  if (!('shape' in value) || !('dtype' in value)) return null;
  if (typeof value.dtype !== 'string' || !(GPU_NEEDS.any as readonly string[]).includes(value.dtype)) {
    throw new TypeError(`${name}.dtype: expected one of ${GPU_NEEDS.any.map((d) => `'${d}'`).join(', ')}, got ${describe(value.dtype)}`);
  }
  const dtype = checked(name, 'a { buffer, shape, dtype }', value.dtype, Object.fromEntries(GPU_NEEDS.any.map((d) => [d, d])), need);
  return borrowBuffer(device, value.buffer, value.shape, dtype, name);
}

/** The dtype a resident result is given as: a mask's bytes are bool, everything else its own dtype. */
export function gpuDtypeName(tensor: GpuTensor, need: Need): string {
  return tensor.dtype === 'uint8' && need === 'mask' ? 'bool' : tensor.dtype;
}

/** The GPU half of an output kind: which dtypes it takes over a GPUBuffer and how it builds them. */
export interface GpuOutput {
  holds(dtype: string): boolean;
  from(tensor: GpuTensor, dtype: string): unknown;
}

/**
 * The GPU half of an `output` kind, for `resident: true`: onnxruntime-web's
 * or tfjs's. onnxruntime-node (its `env.versions.node`), or an onnxruntime
 * without `Tensor.fromGpuBuffer`, is a TypeError naming `output`.
 */
export function gpuOutputOf(output: Output, op: string, read?: (tensor: GpuTensor) => Promise<unknown>): GpuOutput {
  const m = output.module as { Tensor?: unknown; env?: { versions?: { node?: unknown } }; tensor?: unknown };
  if (output.runtime === 'tf') return tfGpuOutput(m as { tensor: unknown });
  if (typeof m.env?.versions?.node === 'string') {
    throw new TypeError(
      `output: with resident: true ${op}'s results stay on the GPU as GpuTensors, and onnxruntime-node takes no GPUBuffer (its GPU tensors are native handles, not WebGPU buffers): ` +
        'drop resident to get CPU ort.Tensors, or use onnxruntime-web',
    );
  }
  const gpu = ortGpuOutput(m.Tensor, read);
  if (gpu === null) throw new TypeError(`output: with resident: true the onnxruntime module needs Tensor.fromGpuBuffer (onnxruntime-web 1.17 or later)`);
  return gpu;
}

/**
 * onnxruntime-web's `Tensor.fromGpuBuffer` (its GpuBufferDataTypes but
 * float16 and int64, which no result is), with `dispose` destroying the
 * buffer and `download` (what `tensor.getData()` calls) reading it back
 * through `read`.
 */
export function ortGpuOutput(Tensor: unknown, read?: (tensor: GpuTensor) => Promise<unknown>): GpuOutput | null {
  const fromGpuBuffer = (Tensor as { fromGpuBuffer?: unknown }).fromGpuBuffer;
  if (typeof fromGpuBuffer !== 'function') return null;
  const make = fromGpuBuffer.bind(Tensor) as (buffer: GPUBuffer, o: { dataType: string; dims: readonly number[]; dispose(): void; download?: () => Promise<unknown> }) => unknown;
  return {
    holds: (d) => ['float32', 'int32', 'uint32', 'uint8', 'bool'].includes(d),
    from: (tensor, dtype) =>
      make(tensor.buffer, { dataType: dtype, dims: tensor.shape.slice(), dispose: () => tensor.destroy(), ...(read ? { download: () => read(tensor) } : {}) }),
  };
}

/** tfjs-webgpu's `tf.tensor({ buffer, zeroCopy: false })`, on the backend's own device only. */
export function tfGpuOutput(tf: { tensor: unknown; backend?: unknown; getBackend?: unknown }): GpuOutput {
  const tensor = tf.tensor as (values: { buffer: GPUBuffer; zeroCopy: boolean }, shape: number[], dtype: string) => unknown;
  return {
    holds: (d) => d === 'float32' || d === 'int32',
    from: (t, dtype) => {
      const backend = typeof tf.backend === 'function' ? (tf.backend as () => { device?: unknown })() : undefined;
      if (backend?.device !== t.device) {
        const which = typeof tf.getBackend === 'function' ? `'${(tf.getBackend as () => string)()}'` : 'unknown';
        throw new TypeError(
          `output: tfjs's backend (${which}) is not webgpu on this backend's device, so it cannot take the result's GPUBuffer: ` +
            "await tf.setBackend('webgpu') and createGpu({ device: tf.backend().device }), or drop resident",
        );
      }
      const out = tensor({ buffer: t.buffer, zeroCopy: false }, t.shape.slice(), dtype);
      t.destroy(); // tfjs copied it into its own buffer (submitted): this one is done
      return out;
    },
  };
}
