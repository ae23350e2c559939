/**
 * Runs a plan on a GPUDevice: the sibling of the worker pool. The plan comes
 * from the CPU functions' own edge (same validation, same errors); each
 * step's kernel name maps to a GPU program (programs.ts), whose dispatches
 * run in one compute pass; then the written arrays are read back and the
 * plan's `finish` runs as on the CPU. The runner knows arrays, buffers and
 * programs, nothing of masks or attention.
 *
 * Failure is always a rejection, never a hang or a partial result: an array
 * over the device's buffer limits is refused before anything is allocated;
 * an allocation the device refuses (out-of-memory scope), a rejected command
 * (validation scope) and a lost device reject with an Error naming the
 * operation and the bytes. A caller's `out` is written only after `finish`
 * succeeded, so after an error it is untouched.
 */
import type { Plan, Step } from '../plan.js';
import type { Alloc, TypedArray, TypedArrayConstructor } from '../tensor.js';
import { formatBytes } from '../validate.js';
import { EXTENSION_FEATURE, declarations, uniformBytes, unsupported, type Binding, type Extension, type Dispatch, type Encoder, type GpuProgram, type ProgramTable } from './program.js';
import { GpuTensor, NeedsHost, bufferBytes, ctorOf, dirtyValues, dtypeOf, residentOf, sealOutput, setHostValues, standIn, type GpuDtype } from './resident.js';

// GPUBufferUsage and GPUMapMode values (spelled out: in Node the globals exist only once the webgpu package installed them).
export const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
const MAP_READ = 0x1;
const STORAGE_USAGE = USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST;
const MAX_GROUPS_X = 65535;

interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

/** One device and what the runner keeps across calls. */
export class GpuContext {
  readonly device: GPUDevice;
  readonly programs: ProgramTable;
  /** The optional device features programs may use (a subset of the device's). */
  readonly features: ReadonlySet<string>;
  /** Set once the device is lost (or destroyed). */
  lostInfo: { reason: string; message: string } | null = null;
  readonly lost: Promise<{ reason: string; message: string }>;
  private readonly pipelines = new Map<string, Promise<CachedPipeline>>();
  // Calls run one at a time: error scopes are a per-device stack, so two
  // interleaved calls would see each other's errors.
  private queue: Promise<unknown> = Promise.resolve();

  /** `features`: the optional features programs may use (default: every one the device has). */
  constructor(device: GPUDevice, programs: ProgramTable, features?: Iterable<string>) {
    this.device = device;
    this.programs = programs;
    const has = new Set(device.features as unknown as Iterable<string>);
    this.features = new Set([...(features ?? has)].filter((f) => has.has(f)));
    this.lost = device.lost.then((info) => {
      this.lostInfo = { reason: String(info.reason), message: info.message };
      return this.lostInfo;
    });
  }

  /** Runs `task` after every call before it has settled. */
  serial<R>(task: () => Promise<R>): Promise<R> {
    const next = this.queue.then(task, task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** The pipeline of a dispatch, built once per cache key. */
  pipeline(d: Dispatch): Promise<CachedPipeline> {
    const key = pipelineKey(d);
    let cached = this.pipelines.get(key);
    if (!cached) {
      const layout = this.device.createBindGroupLayout({
        entries: [
          { binding: 0, visibility: 4 /* COMPUTE */, buffer: { type: 'uniform' } },
          ...d.bindings.map((b, i) => ({
            binding: i + 1,
            visibility: 4,
            buffer: { type: b.access === 'read' ? ('read-only-storage' as const) : ('storage' as const) },
          })),
        ],
      });
      const code = declarations(d) + d.wgsl();
      const module = this.device.createShaderModule({ code, label: key });
      cached = this.device
        .createComputePipelineAsync({
          label: key,
          layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
          compute: { module, entryPoint: 'main' },
        })
        .then((pipeline) => ({ pipeline, layout }))
        .catch(async (e: Error) => {
          // A shader that does not compile is a bug here, not the caller's: name the program and the messages.
          const info = await module.getCompilationInfo().catch(() => null);
          const messages = info?.messages.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('; ') ?? '';
          throw new Error(`WebGPU program ${key} did not build: ${e.message}${messages ? ` (${messages})` : ''}`);
        });
      cached.catch(() => this.pipelines.delete(key));
      this.pipelines.set(key, cached);
    }
    return cached;
  }

  /** Rejects with the lost-device error if the device is lost before `promise` settles. */
  async guard<T>(op: string, bytes: number, promise: Promise<T>): Promise<T> {
    const lost = this.lost.then((info) => {
      throw lostError(op, bytes, info);
    });
    return Promise.race([promise, lost]);
  }
}

/** A dispatch's cache key with the extensions it enables. */
function pipelineKey(d: Dispatch): string {
  return d.enables?.length ? `${d.key}+${d.enables.join('+')}` : d.key;
}

function lostError(op: string, bytes: number, info: { reason: string; message: string }): Error {
  return new Error(
    `${op}: the WebGPU device was lost (${info.reason}${info.message ? `: ${info.message}` : ''}) with ${formatBytes(bytes)} (${bytes} bytes) of buffers in use; ` +
      'nothing was returned; create a new backend with createGpu()',
  );
}

/** Refuses a buffer over the device's limits before anything is allocated. */
export function checkDeviceBytes(device: GPUDevice, op: string, what: string, bytes: number): void {
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  if (bytes > limit) {
    throw new Error(
      `${op}: ${what} needs a GPU buffer of ${formatBytes(bytes)} (${bytes} bytes), over this device's limit of ${formatBytes(limit)} ` +
        `(${limit} bytes, the smaller of maxStorageBufferBindingSize and maxBufferSize); stream query blocks with rows: [start, end)`,
    );
  }
}

/** The step's arguments the program does not implement: refused unless null, undefined or false. */
export function checkArgs(op: string, program: GpuProgram, step: Step): void {
  for (const [name, value] of Object.entries(step.args)) {
    if (program.args.includes(name) || value === null || value === undefined || value === false) continue;
    throw unsupported(`${op}: option '${name}' (kernel ${step.kernel})`);
  }
}

export interface RunOptions {
  /** Leave every plan output on the GPU: the result's tensors become GpuTensors. */
  resident: boolean;
  /** Stand-ins of the call's GPU-resident inputs, filled as `build` makes them (for NeedsHost). */
  standIns: TypedArray[];
}

/** Copies `bytes` of a buffer into a new mapped staging buffer and returns its contents. */
async function readBack(ctx: GpuContext, op: string, source: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
  const device = ctx.device;
  const size = Math.max(4, Math.ceil(bytes / 4) * 4);
  const staging = device.createBuffer({ size, usage: MAP_READ | USAGE.COPY_DST });
  try {
    const encoder = device.createCommandEncoder();
    encoder.copyBufferToBuffer(source, 0, staging, 0, size);
    device.queue.submit([encoder.finish()]);
    await ctx.guard(op, size, staging.mapAsync(MAP_READ));
    return staging.getMappedRange().slice(0, bytes);
  } finally {
    staging.destroy();
  }
}

/** Reads a GPU tensor back into a new typed array. */
export async function readTensor(ctx: GpuContext, op: string, tensor: GpuTensor): Promise<TypedArray> {
  const ctor = ctorOf(tensor.dtype);
  const bytes = tensor.length * ctor.BYTES_PER_ELEMENT;
  return new ctor(await readBack(ctx, op, tensor.buffer, bytes), 0, tensor.length);
}

/** Bytes of a typed array as a writeBuffer source: 4-byte aligned and padded, never shared memory. */
function uploadSource(data: TypedArray): ArrayBuffer | ArrayBufferView {
  const bytes = data.byteLength;
  if (bytes % 4 === 0 && data.byteOffset % 4 === 0 && !(typeof SharedArrayBuffer !== 'undefined' && data.buffer instanceof SharedArrayBuffer)) {
    return data as ArrayBufferView;
  }
  const copy = new Uint8Array(Math.max(4, Math.ceil(bytes / 4) * 4));
  copy.set(new Uint8Array(data.buffer, data.byteOffset, bytes));
  return copy;
}

/** Calls `fn`, reading back any GPU-resident tensor it asks for (NeedsHost) and calling it again. */
async function withHostValues<T>(ctx: GpuContext, op: string, standIns: () => TypedArray[], fn: () => T): Promise<T> {
  for (;;) {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof NeedsHost)) throw e;
      const targets = standIns().filter((s) => residentOf(s) === e.tensor);
      if (targets.length === 0 || !e.tensor.hasBuffer) throw new Error(`${op}: a GPU tensor this call does not know was read on the host`);
      const host = await readTensor(ctx, op, e.tensor);
      for (const s of targets) setHostValues(s, host);
    }
  }
}

/**
 * Runs the plan `build(alloc)` returns on the GPU and resolves to its result.
 * `build` runs again if it reads a GPU-resident input (after reading it back).
 */
export async function runOnGpu<R>(ctx: GpuContext, op: string, build: (alloc: Alloc) => Plan<R>, opts: RunOptions): Promise<R> {
  if (ctx.lostInfo) throw lostError(op, 0, ctx.lostInfo);
  const device = ctx.device;
  // Stand-ins of the call's GPU inputs (made by build, one per tensor) and of resident outputs.
  const outputStandIns: TypedArray[] = [];
  const standIns = () => [...opts.standIns, ...outputStandIns];

  // Arrays the plan allocates: host arrays (read back before finish) or,
  // resident, GPU tensors whose buffers are made when the plan runs.
  const owned = new Set<TypedArray>();
  const outputs: GpuTensor[] = [];
  const alloc: Alloc = <T extends TypedArray>(ctor: TypedArrayConstructor<T>, length: number): T => {
    const dtype = dtypeOf(new ctor(0));
    if (dtype === null) throw new Error(`${op}: ${ctor.name} has no GPU form`);
    checkDeviceBytes(device, op, `a ${ctor.name} of ${length} elements`, length * ctor.BYTES_PER_ELEMENT);
    if (!opts.resident) {
      const a = new ctor(length);
      owned.add(a);
      return a;
    }
    const tensor = new GpuTensor(device, null, dtype, [length]);
    outputs.push(tensor);
    const s = standIn(tensor, true);
    outputStandIns.push(s);
    return s as T;
  };

  const plan = await withHostValues(ctx, op, standIns, () => build(alloc));

  // Encode: buffers for every array a program binds, in step order.
  const created: GPUBuffer[] = [];
  const buffers = new Map<object, GPUBuffer>();
  const written = new Map<TypedArray, GPUBuffer>();
  let bytesInUse = 0;
  const makeBuffer = (bytes: number, usage: number, label: string): GPUBuffer => {
    const buffer = device.createBuffer({ size: Math.max(4, Math.ceil(bytes / 4) * 4), usage, label });
    created.push(buffer);
    bytesInUse += buffer.size;
    return buffer;
  };
  const dispatches: Dispatch[] = [];
  const uploads: [GPUBuffer, TypedArray][] = [];

  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let scoped = true;
  const popScopes = async (): Promise<void> => {
    scoped = false;
    const validation = await device.popErrorScope();
    const memory = await device.popErrorScope();
    if (memory) {
      throw new Error(`${op}: the GPU refused to allocate ${formatBytes(bytesInUse)} (${bytesInUse} bytes) of buffers: ${memory.message}; nothing was returned`);
    }
    if (validation) throw new Error(`${op}: the WebGPU device rejected the work (${formatBytes(bytesInUse)} of buffers): ${validation.message}`);
  };
  try {
    for (const step of plan.steps) {
      const program = ctx.programs[step.kernel];
      if (!program) throw unsupported(`${op}: kernel '${step.kernel}'`);
      checkArgs(op, program, step);
      const enc: Encoder = {
        limits: device.limits,
        uses: (e: Extension) => ctx.features.has(EXTENSION_FEATURE[e]),
        scratch: (bytes, what) => {
          checkDeviceBytes(device, op, what, bytes);
          return makeBuffer(bytes, USAGE.STORAGE, what);
        },
        data: (values, what) => {
          const buffer = makeBuffer(values.byteLength, USAGE.STORAGE | USAGE.COPY_DST, what);
          uploads.push([buffer, values]);
          return buffer;
        },
        buffer: (name, initial) => {
          const value = step.args[name];
          if (value === null || typeof value !== 'object') throw new TypeError(`${op}: kernel ${step.kernel} argument ${name} is not an array`);
          const array = value as TypedArray;
          const isOutput = step.writes.includes(name);
          let buffer = buffers.get(array);
          if (!buffer) {
            const resident = residentOf(array);
            if (resident && resident.device !== device) throw new TypeError(`${op}: argument ${name} is a GpuTensor of another device`);
            if (resident) {
              if (!resident.hasBuffer) {
                resident.setBuffer(makeBuffer(bufferBytes(resident.dtype, resident.length), STORAGE_USAGE, name));
              }
              buffer = resident.buffer;
              const dirty = dirtyValues(array);
              if (dirty && (initial ?? !isOutput)) uploads.push([buffer, dirty]);
            } else {
              const dtype = dtypeOf(array);
              if (dtype === null) throw new TypeError(`${op}: argument ${name} (${array.constructor.name}) has no GPU form`);
              checkDeviceBytes(device, op, `argument ${name}`, array.byteLength);
              buffer = makeBuffer(bufferBytes(dtype, array.length), STORAGE_USAGE, name);
              // Inputs carry their values; an output only when the program reads them (a flag's start value).
              if (initial ?? !isOutput) uploads.push([buffer, array]);
            }
            buffers.set(array, buffer);
          }
          if (isOutput && !residentOf(array)) written.set(array, buffer);
          return buffer;
        },
      };
      for (const d of program.encode(step, enc)) {
        const unused = (d.enables ?? []).find((e) => !enc.uses(e));
        if (unused) throw new Error(`${op}: program ${d.key} enables ${unused} but this backend does not use ${EXTENSION_FEATURE[unused]}`);
        const allowed = device.limits.maxStorageBuffersPerShaderStage;
        if (d.bindings.length > allowed) {
          throw unsupported(`${op}: program ${d.key} binds ${d.bindings.length} storage buffers, this device allows ${allowed}, and a split of it`);
        }
        dispatches.push(d);
      }
    }
  } catch (e) {
    device.popErrorScope().catch(() => undefined);
    device.popErrorScope().catch(() => undefined);
    for (const b of created) b.destroy();
    throw e;
  }

  try {
    // Pipelines build outside the scopes' synchronous part; their own errors reject here.
    const pipelines = await ctx.guard(op, bytesInUse, Promise.all(dispatches.map((d) => ctx.pipeline(d))));
    for (const [buffer, data] of uploads) {
      const source = uploadSource(data);
      device.queue.writeBuffer(buffer, 0, source as BufferSource);
    }
    const encoder = device.createCommandEncoder({ label: op });
    const pass = encoder.beginComputePass({ label: op });
    const uniforms: GPUBuffer[] = [];
    dispatches.forEach((d, i) => {
      if (d.groups === 0) return;
      const data = uniformBytes(d.uniforms, d.groups);
      const ub = makeBuffer(data.byteLength, USAGE.UNIFORM | USAGE.COPY_DST, `${d.key} uniforms`);
      device.queue.writeBuffer(ub, 0, data);
      uniforms.push(ub);
      const { pipeline, layout } = pipelines[i];
      const entries = [{ binding: 0, resource: { buffer: ub } }, ...d.bindings.map((b: Binding, j) => ({ binding: j + 1, resource: { buffer: b.buffer } }))];
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, device.createBindGroup({ layout, entries }));
      const x = Math.min(d.groups, MAX_GROUPS_X);
      pass.dispatchWorkgroups(x, Math.ceil(d.groups / x));
    });
    pass.end();
    // Written host arrays come back through staging buffers.
    const staging: [TypedArray, GPUBuffer][] = [];
    for (const [array, buffer] of written) {
      const s = makeBuffer(buffer.size, MAP_READ | USAGE.COPY_DST, 'staging');
      encoder.copyBufferToBuffer(buffer, 0, s, 0, buffer.size);
      staging.push([array, s]);
    }
    device.queue.submit([encoder.finish()]);
    // From here a resident output's host values (if the edge wrote any) are stale: reads go to the GPU.
    for (const s of outputStandIns) sealOutput(s);
    await ctx.guard(op, bytesInUse, popScopes());
    await ctx.guard(op, bytesInUse, Promise.all(staging.map(([, s]) => s.mapAsync(MAP_READ))));

    // Plan-allocated arrays get their values before finish (it reads flags
    // from them); a caller's arrays only once finish has succeeded.
    const later: [TypedArray, ArrayBuffer][] = [];
    for (const [array, s] of staging) {
      const bytes = s.getMappedRange().slice(0, array.byteLength);
      if (owned.has(array)) copyInto(array, bytes);
      else later.push([array, bytes]);
    }
    const result = await withHostValues(ctx, op, standIns, () => plan.finish());
    for (const [array, bytes] of later) copyInto(array, bytes);
    const kept = new Set<GPUBuffer>();
    const out = opts.resident ? (toResident(result, kept) as R) : result;
    for (const b of created) if (!kept.has(b)) b.destroy();
    return out;
  } catch (e) {
    if (scoped) {
      device.popErrorScope().catch(() => undefined);
      device.popErrorScope().catch(() => undefined);
    }
    for (const b of created) b.destroy();
    for (const t of outputs) if (t.hasBuffer) t.buffer.destroy();
    throw e;
  }
}

function copyInto(array: TypedArray, bytes: ArrayBuffer): void {
  new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(new Uint8Array(bytes));
}

/** The result with each `{ data: stand-in, shape }` tensor replaced by its GpuTensor. */
function toResident(value: unknown, kept: Set<GPUBuffer>): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const v = value as { data?: unknown; shape?: unknown };
  const tensor = residentOf(v.data);
  if (tensor && Array.isArray(v.shape)) {
    kept.add(tensor.buffer);
    return tensor.reshape(v.shape as number[]);
  }
  if (Array.isArray(value)) return value.map((x) => toResident(x, kept));
  if (ArrayBuffer.isView(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, x]) => [k, toResident(x, kept)]));
}

/** Uploads a host tensor into a new GpuTensor. */
export function uploadTensor(ctx: GpuContext, op: string, data: TypedArray, shape: number[]): GpuTensor {
  const dtype: GpuDtype | null = dtypeOf(data);
  if (dtype === null) throw new TypeError(`${op}: data: expected a Float32Array, Int32Array, Uint32Array, Uint8Array or Int8Array, got ${data?.constructor?.name}`);
  checkDeviceBytes(ctx.device, op, 'the tensor', data.byteLength);
  const buffer = ctx.device.createBuffer({ size: bufferBytes(dtype, data.length), usage: STORAGE_USAGE, label: op });
  ctx.device.queue.writeBuffer(buffer, 0, uploadSource(data) as BufferSource);
  return new GpuTensor(ctx.device, buffer, dtype, shape.slice());
}
