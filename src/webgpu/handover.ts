/**
 * The GPU hand-over with other WebGPU users of one device (ONNX Runtime
 * Web, tfjs-webgpu, the caller's own code): whether a device they made can
 * run the backend's programs, and GPUBuffers they made taken as GpuTensors
 * without a copy.
 *
 * A borrowed buffer stays its maker's: the GpuTensor over it never destroys
 * it. WebGPU does not say which device a buffer belongs to, so on the way in
 * each new buffer is bound once, inside a validation error scope, in a bind
 * group of this device (nothing runs); a call whose work the device rejects
 * looks at those answers and names a buffer of another device instead of
 * the device's own message.
 */
import { describe } from '../tensor.js';
import { GpuTensor, bufferBytes, type GpuDtype } from './resident.js';

/**
 * The device limits the programs are written for: the WebGPU defaults of a
 * core device (workgroups of 256 invocations, 16 KiB of workgroup memory, 8
 * storage buffers a stage, 65535 workgroups a dimension). A device with
 * less (a compatibility-mode device) is refused by name.
 */
export const NEEDED_LIMITS = {
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupStorageSize: 16384,
  maxStorageBuffersPerShaderStage: 8,
  maxComputeWorkgroupsPerDimension: 65535,
  maxUniformBufferBindingSize: 16384,
} as const;

const GPU_DTYPES: readonly GpuDtype[] = ['float32', 'int32', 'uint32', 'uint8', 'int8'];

/** Buffer usage bits (GPUBufferUsage, which Node's globals lack). */
const STORAGE = 0x80;
const COPY_SRC = 0x4;

/**
 * Checks a device given to `createGpu({ device })`: a GPUDevice (by shape:
 * `createBuffer`, `queue`, `limits`, `features`) with at least
 * `NEEDED_LIMITS`. Else a TypeError (not a device) or an Error naming each
 * limit it lacks, the device's value and the one needed.
 */
export function checkDevice(device: unknown): GPUDevice {
  const d = device as Partial<GPUDevice> | null;
  if (typeof d !== 'object' || d === null || typeof d.createBuffer !== 'function' || typeof d.queue !== 'object' || typeof d.limits !== 'object' || typeof d.features !== 'object') {
    throw new TypeError(`createGpu: device: expected a GPUDevice (await ort.env.webgpu.device, tf.backend().device, or adapter.requestDevice()), got ${describe(device)}`);
  }
  const limits = d.limits as unknown as Record<string, number>;
  const short = Object.entries(NEEDED_LIMITS).filter(([name, need]) => !(limits[name] >= need));
  if (short.length > 0) {
    throw new Error(
      `createGpu: device: ${short.map(([name, need]) => `${name} is ${limits[name]}, the programs need at least ${need}`).join('; ')} ` +
        '(a core WebGPU device has these by default; request the device without a compatibility feature level)',
    );
  }
  return d as GPUDevice;
}

/** Whether `x` looks like a GPUBuffer: a number `size` and `usage`, `mapAsync()` and `destroy()`. */
export function isGpuBuffer(x: unknown): x is GPUBuffer {
  if (typeof x !== 'object' || x === null) return false;
  const b = x as { size?: unknown; usage?: unknown; mapAsync?: unknown; destroy?: unknown };
  return typeof b.size === 'number' && typeof b.usage === 'number' && typeof b.mapAsync === 'function' && typeof b.destroy === 'function';
}

/** Per device, the layout the ownership probe binds a buffer in. */
const probeLayouts = new WeakMap<GPUDevice, GPUBindGroupLayout>();
/** Per device and buffer, the probe's answer: null where the device took it, else the device's message. */
const probes = new WeakMap<GPUDevice, WeakMap<GPUBuffer, Promise<string | null>>>();
/** Borrowed tensors: what they are called in messages. */
const borrowed = new WeakMap<GpuTensor, string>();

/** Binds `buffer` in a bind group of `device` inside a validation scope (nothing is submitted). */
function probe(device: GPUDevice, buffer: GPUBuffer): Promise<string | null> {
  let answers = probes.get(device);
  if (!answers) probes.set(device, (answers = new WeakMap()));
  let answer = answers.get(buffer);
  if (answer) return answer;
  let layout = probeLayouts.get(device);
  if (!layout) {
    layout = device.createBindGroupLayout({ entries: [{ binding: 0, visibility: 0x4 /* COMPUTE */, buffer: { type: 'read-only-storage' } }] });
    probeLayouts.set(device, layout);
  }
  // Push, bind and pop in one synchronous stretch, so no other call's work falls into this scope.
  device.pushErrorScope('validation');
  device.createBindGroup({ layout, entries: [{ binding: 0, resource: { buffer, offset: 0, size: 4 } }] });
  answer = device.popErrorScope().then((e) => (e ? e.message.split('\n')[0].trim() : null), (e: Error) => e.message);
  answers.set(buffer, answer);
  return answer;
}

/**
 * A GpuTensor over a GPUBuffer another user of `device` made, no copy: its
 * shape and dtype checked, the buffer unmapped, with usage STORAGE (the
 * programs bind it) and COPY_SRC (a read-back, where an edge reads the
 * values), and at least `bufferBytes(dtype, length)` bytes (a larger buffer,
 * as ONNX Runtime's pooled ones are, is fine: the tensor is its first
 * bytes). Its `destroy()` leaves the buffer alone. `name` names the
 * argument in errors.
 */
export function borrowBuffer(device: GPUDevice, buffer: unknown, shape: unknown, dtype: unknown, name: string): GpuTensor {
  if (!isGpuBuffer(buffer)) throw new TypeError(`${name}: expected a GPUBuffer, got ${describe(buffer)}`);
  if (!Array.isArray(shape) || shape.some((n) => !Number.isSafeInteger(n) || n < 0)) {
    throw new TypeError(`${name}: shape: expected an array of non-negative integers, got ${describe(shape)}`);
  }
  if (!GPU_DTYPES.includes(dtype as GpuDtype)) {
    throw new TypeError(`${name}: dtype: expected one of ${GPU_DTYPES.map((d) => `'${d}'`).join(', ')}, got ${describe(dtype)}`);
  }
  const missing = [[STORAGE, 'STORAGE'], [COPY_SRC, 'COPY_SRC']].filter(([bit]) => (buffer.usage & (bit as number)) === 0).map(([, n]) => n);
  if (missing.length > 0) {
    throw new TypeError(`${name}: the GPUBuffer's usage (${buffer.usage}) lacks GPUBufferUsage.${missing.join(' and GPUBufferUsage.')}; the programs bind it as storage and read it back where an edge needs the values`);
  }
  const state = (buffer as { mapState?: string }).mapState;
  if (state !== undefined && state !== 'unmapped') throw new TypeError(`${name}: the GPUBuffer is ${state}; unmap it first`);
  const t = new GpuTensor(device, buffer, dtype as GpuDtype, shape.slice() as number[], false);
  const bytes = bufferBytes(t.dtype, t.length);
  if (buffer.size < bytes) {
    throw new RangeError(`${name}: a ${t.dtype} tensor of shape [${t.shape.join(', ')}] needs ${bytes} bytes, the GPUBuffer has ${buffer.size}`);
  }
  borrowed.set(t, name);
  void probe(device, buffer);
  return t;
}

/**
 * After a call rejected: where one of its borrowed tensors is a buffer of
 * another device, a TypeError naming it (`op: name: ...`); else `error`.
 */
export async function foreignError(op: string, tensors: Iterable<GpuTensor>, error: unknown): Promise<never> {
  for (const t of tensors) {
    const name = borrowed.get(t) ?? (t.borrowed ? 'a borrowed GpuTensor' : undefined);
    if (name === undefined || !t.hasBuffer) continue;
    const message = await probe(t.device, t.buffer);
    if (message !== null) {
      throw new TypeError(`${op}: ${name}: the GPUBuffer (a ${t.dtype} tensor of shape [${t.shape.join(', ')}]) is not one of this backend's device (${message}); create the backend on the device that made it: createGpu({ device })`);
    }
  }
  throw error;
}
