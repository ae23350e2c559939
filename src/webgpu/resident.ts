/**
 * GPU-resident tensors, and the stand-ins that let the CPU edge validate them.
 *
 * A `GpuTensor` is a shape, a dtype and a GPUBuffer: what a call returns with
 * `resident: true` and what any call takes in place of a `{ data, shape }`
 * tensor, so a pipeline (indexer -> top-k -> attention) never round-trips
 * through the CPU.
 *
 * The plans are built by the CPU functions' own edge, which checks
 * `data instanceof Int32Array` and `data.length`. A GPU tensor enters it as a
 * *stand-in*: a Proxy over an empty typed array of its dtype that reports the
 * tensor's length. Reading an element of a stand-in whose values are not on
 * the host throws `NeedsHost`; the runner then reads that tensor back and
 * builds the plan (or runs its `finish`) again. So an edge that scans data
 * (a NaN check, the message naming a bad index) sees the real values, and
 * nothing is read back unless the edge asks for it.
 */
import type { TypedArray, TypedArrayConstructor } from '../tensor.js';

export type GpuDtype = 'float32' | 'int32' | 'uint32' | 'uint8' | 'int8';

const CTORS: Record<GpuDtype, TypedArrayConstructor<TypedArray>> = {
  float32: Float32Array,
  int32: Int32Array,
  uint32: Uint32Array,
  uint8: Uint8Array,
  int8: Int8Array,
} as Record<GpuDtype, TypedArrayConstructor<TypedArray>>;

export function ctorOf(dtype: GpuDtype): TypedArrayConstructor<TypedArray> {
  return CTORS[dtype];
}

export function dtypeOf(data: TypedArray): GpuDtype | null {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint32Array) return 'uint32';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int8Array) return 'int8';
  return null;
}

/** Bytes a GPU buffer needs for `length` elements of `dtype`: a multiple of 4, at least 4. */
export function bufferBytes(dtype: GpuDtype, length: number): number {
  const bytes = length * ctorOf(dtype).BYTES_PER_ELEMENT;
  return Math.max(4, Math.ceil(bytes / 4) * 4);
}

/** A tensor that lives on the GPU: `shape`, element type `dtype`, contiguous row-major in `buffer`. */
export class GpuTensor {
  readonly shape: number[];
  readonly dtype: GpuDtype;
  readonly length: number;
  /** @internal the device the buffer belongs to */
  readonly device: GPUDevice;
  #buffer: GPUBuffer | null;
  /** Whether the buffer is another user's (`gpu.wrap`, an ONNX Runtime or tfjs GPU tensor): `destroy()` leaves it alone. */
  readonly borrowed: boolean;

  /** @internal made by `gpu.upload`, `gpu.wrap` (owned false) and by calls with `resident: true` (a plan output gets its buffer when the plan runs) */
  constructor(device: GPUDevice, buffer: GPUBuffer | null, dtype: GpuDtype, shape: number[], owned = true) {
    this.device = device;
    this.#buffer = buffer;
    this.borrowed = !owned;
    this.dtype = dtype;
    this.shape = shape;
    this.length = shape.reduce((a, b) => a * b, 1);
  }

  /** The buffer: `bufferBytes(dtype, length)` bytes, usage STORAGE | COPY_SRC | COPY_DST. */
  get buffer(): GPUBuffer {
    if (this.#buffer === null) throw new Error('this GPU tensor has no buffer yet');
    return this.#buffer;
  }

  /** @internal */
  get hasBuffer(): boolean {
    return this.#buffer !== null;
  }

  /** @internal */
  setBuffer(buffer: GPUBuffer): void {
    this.#buffer = buffer;
  }

  /** The same buffer under another shape of the same length. */
  reshape(shape: number[]): GpuTensor {
    const t = new GpuTensor(this.device, this.#buffer, this.dtype, shape, !this.borrowed);
    if (t.length !== this.length) throw new RangeError(`reshape: [${shape.join(', ')}] holds ${t.length} elements, the tensor ${this.length}`);
    return t;
  }

  /** Frees the GPU memory now (otherwise it lives until the device does); a borrowed buffer is its maker's to free, and stays. */
  destroy(): void {
    if (!this.borrowed) this.#buffer?.destroy();
  }
}

/** Thrown by a stand-in read whose values are still on the GPU; the runner reads `tensor` back and retries. */
export class NeedsHost extends Error {
  constructor(readonly tensor: GpuTensor) {
    super('a GPU-resident tensor was read on the host');
  }
}

interface StandInState {
  tensor: GpuTensor;
  /** The values on the host: read back after NeedsHost, or written by the edge (an output's initial values). */
  host: TypedArray | null;
  /** Whether the host values were written there and must be uploaded before the run. */
  dirty: boolean;
  /** Outputs may be written by the edge (a flag's initial value); inputs may not. */
  writable: boolean;
}

const states = new WeakMap<object, StandInState>();

/**
 * A stand-in for `tensor.data`: passes `instanceof` and `length` checks.
 * Reads need the host values (NeedsHost until `setHostValues`); a writable
 * stand-in (a plan output) takes writes into a host copy that the runner
 * uploads before the run.
 */
export function standIn(tensor: GpuTensor, writable = false): TypedArray {
  const ctor = ctorOf(tensor.dtype);
  const state: StandInState = { tensor, host: null, dirty: false, writable };
  const host = (): TypedArray => {
    if (state.host === null) {
      if (!state.writable) throw new NeedsHost(tensor);
      state.host = new ctor(tensor.length);
    }
    return state.host;
  };
  const proxy = new Proxy(new ctor(0), {
    get(target, key) {
      if (key === 'length') return tensor.length;
      if (typeof key === 'string' && /^\d+$/.test(key)) return host()[Number(key)];
      const value = Reflect.get(target, key);
      if (typeof value !== 'function' || key === 'constructor') return value;
      const values = host();
      if (state.writable) state.dirty = true;
      return value.bind(values);
    },
    set(_target, key, value) {
      if (!state.writable) throw new TypeError(`a GPU-resident input cannot be written on the host (element ${String(key)})`);
      (host() as unknown as Record<string, unknown>)[key as string] = value;
      state.dirty = true;
      return true;
    },
  });
  states.set(proxy, state);
  return proxy as TypedArray;
}

/** The GPU tensor a stand-in stands for, or null for any other value. */
export function residentOf(value: unknown): GpuTensor | null {
  return typeof value === 'object' && value !== null ? states.get(value)?.tensor ?? null : null;
}

/** Host values written into a writable stand-in by the edge (to upload), or null. */
export function dirtyValues(value: unknown): TypedArray | null {
  const state = typeof value === 'object' && value !== null ? states.get(value) : undefined;
  return state?.dirty ? state.host : null;
}

/** Gives a stand-in the host copy of its values (after `NeedsHost`). */
export function setHostValues(value: unknown, host: TypedArray): void {
  const state = typeof value === 'object' && value !== null ? states.get(value) : undefined;
  if (state) {
    state.host = host;
    state.dirty = false;
  }
}

/** After the run: a plan output's host values are stale, so reads go back to the GPU (NeedsHost). */
export function sealOutput(value: unknown): void {
  const state = typeof value === 'object' && value !== null ? states.get(value) : undefined;
  if (state) {
    state.writable = false;
    state.host = null;
    state.dirty = false;
  }
}
