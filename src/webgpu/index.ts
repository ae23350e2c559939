/**
 * dsa-ts/webgpu: the library's functions on a GPU, through WebGPU (browsers'
 * `navigator.gpu`, or the `webgpu` package in Node).
 *
 * Each call validates and plans exactly as the CPU function does (the plans
 * are the CPU edge's own, so the errors are the same) and runs the plan's
 * kernels as WGSL programs. Masks, top-k and index transforms are
 * bit-identical to the CPU; scores and attention agree within the CPU's
 * tolerance of the float64 reference. Inputs may be host tensors or
 * GpuTensors; with `resident: true` the results stay on the GPU.
 */
import type { MaskData, MaskForm, Tensor, TypedArray } from '../tensor.js';
import {
  planCausalMask, planCombineMasks, planGenerateMask, planMaskFromThreshold, planWindowMask,
  type GenerateMaskOptions, type MaskBlockOptions, type ThresholdMaskOptions,
} from '../mask/masks.js';
import type { KeyWindowOptions } from '../window.js';
import { planTopk, type TopkOptions, type TopkResult } from '../topk/topk.js';
import { planIndexerScores, type IndexerKeys, type IndexerScoresOptions } from '../indexer/scores.js';
import type { Fp8Keys } from '../indexer/fp8.js';
import { planSparseAttention, type SparseAttentionOptions, type SparseAttentionResult } from '../attention/sparse.js';
import type { Plan } from '../plan.js';
import type { Alloc } from '../tensor.js';
import { GpuContext, readTensor, runOnGpu, uploadTensor } from './runner.js';
import { GpuTensor, standIn, type GpuDtype } from './resident.js';
import { borrowBuffer, checkDevice, foreignError } from './handover.js';
import { programs } from './programs.js';
import { planIndexerTopk, type IndexerTopkOptions } from './fused.js';
import { describe } from '../tensor.js';
import { withInteropOps } from '../interop/wrap.js';
import { GPU_SIGNATURES } from '../interop/signatures.js';

export { GpuTensor } from './resident.js';
export { NEEDED_LIMITS } from './handover.js';
export type { GpuHandOverInput } from '../interop/wrap.js';
export type { GpuDtype } from './resident.js';
export type { IndexerTopkOptions } from './fused.js';

export interface CreateGpuOptions {
  /**
   * A device to use (the caller keeps it: `destroy()` leaves it alone), e.g.
   * ONNX Runtime Web's (`await ort.env.webgpu.device`) or tfjs-webgpu's
   * (`tf.backend().device`), whose GPU tensors the ops then take and give
   * without a copy (docs/interop.md, "GPU hand-over"). It needs the limits
   * of a core WebGPU device (`NEEDED_LIMITS`); less is an Error naming them.
   * Default: one requested here.
   */
  device?: GPUDevice;
  /** Passed to requestAdapter when no device is given. */
  powerPreference?: 'low-power' | 'high-performance';
  /**
   * Node only: flags for the `webgpu` package's `create()`, e.g.
   * `['adapter=llvmpipe']` to pick an adapter by name when several are
   * installed. An error where `navigator.gpu` is used.
   */
  dawnFlags?: readonly string[];
  /**
   * The optional features the programs may use, each only where it changes
   * no result (docs/webgpu.md): `'subgroups'` (top-k's collection where
   * every key is kept, the fused top-k's offers) and `'shader-f16'` (the int8, int7
   * and fp8 score tiles in workgroup memory). Default: each the adapter (or
   * the given device) has; `[]`: the plain programs on any adapter. Asking
   * for one the adapter lacks is an error.
   */
  features?: readonly OptionalFeature[];
}

/** The optional WebGPU features the backend can use. */
export type OptionalFeature = 'shader-f16' | 'subgroups';
const OPTIONAL_FEATURES: readonly OptionalFeature[] = ['shader-f16', 'subgroups'];

/** The features asked for, checked (null: every one available). */
function checkFeatures(features: unknown): OptionalFeature[] | null {
  if (features === undefined) return null;
  if (!Array.isArray(features) || features.some((f) => !OPTIONAL_FEATURES.includes(f as OptionalFeature))) {
    throw new TypeError(`createGpu: features: expected an array of ${OPTIONAL_FEATURES.map((f) => `'${f}'`).join(', ')}, got ${describe(features)}`);
  }
  return features as OptionalFeature[];
}

function missingFeature(asked: readonly OptionalFeature[], has: ReadonlySet<string>, what: string): Error | null {
  const missing = asked.find((f) => !has.has(f));
  if (missing === undefined) return null;
  const offered = OPTIONAL_FEATURES.filter((f) => has.has(f));
  return new Error(`createGpu: features: ${what} does not offer '${missing}' (it offers ${offered.length ? offered.map((f) => `'${f}'`).join(', ') : 'none of them'})`);
}

/** A tensor argument: on the host (`{ data, shape }`) or already on the GPU. */
export type TensorIn<T extends TypedArray> = Tensor<T> | GpuTensor;

/**
 * Indexer keys in any form the CPU takes (float32, `quantizeKeys`,
 * `quantizeKeysFp8`), each array on the host or already on the GPU (an FP8
 * cache's bytes as a uint8 GpuTensor).
 */
export type KeysIn =
  | TensorIn<Float32Array>
  | { values: TensorIn<Int8Array>; scales: TensorIn<Float32Array> }
  | (Omit<Fp8Keys, 'data'> & { data: Uint8Array | GpuTensor });

/** A result with each tensor a GpuTensor (what `resident: true` returns). */
export type OnGpu<R> = R extends Tensor ? GpuTensor : { [K in keyof R]: OnGpu<R[K]> };

export interface Residency {
  /** Keep the results on the GPU as GpuTensors (default false: typed arrays on the host). */
  resident?: boolean;
}

type Out<R, O> = O extends { resident: true } ? OnGpu<R> : R;

type Gpuify<O> = { [K in keyof O]: O[K] extends Tensor<infer T> | undefined ? TensorIn<T & TypedArray> | undefined : O[K] };

export type GpuMaskOptions = GenerateMaskOptions & Residency;
export type GpuThresholdMaskOptions = ThresholdMaskOptions & Residency;
export type GpuMaskBlockOptions = MaskBlockOptions & Residency;
export type GpuTopkOptions = Gpuify<TopkOptions> & Residency;
export type GpuIndexerScoresOptions = IndexerScoresOptions & Residency;
/** As IndexerTopkOptions, `mask` also a GpuTensor (the block table stays on the host: the edge checks every entry a sequence uses). */
export type GpuIndexerTopkOptions = Gpuify<Omit<IndexerTopkOptions, 'blockTable'>> & Pick<IndexerTopkOptions, 'blockTable'> & Residency;
export type GpuSparseAttentionOptions = SparseAttentionOptions & Residency;

export interface AdapterFacts {
  /** vendor, architecture, device and description as the adapter reports them ('' where it says nothing). */
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}

async function requestDevice(opts: CreateGpuOptions, asked: readonly OptionalFeature[] | null): Promise<{ device: GPUDevice; keep: unknown }> {
  let gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  let keep: unknown = null;
  const flags = opts.dawnFlags;
  if (flags !== undefined && (!Array.isArray(flags) || flags.some((f) => typeof f !== 'string'))) {
    throw new TypeError(`createGpu: dawnFlags: expected an array of strings, got ${describe(flags)}`);
  }
  if (gpu && flags?.length) throw new TypeError('createGpu: dawnFlags are flags of the webgpu package in Node; here WebGPU is navigator.gpu');
  if (!gpu) {
    const name = 'webgpu'; // a variable, so that bundlers leave this Node-only import alone
    let mod: { create(flags: string[]): GPU };
    try {
      mod = (await import(name)) as typeof mod;
    } catch (e) {
      throw new Error(`createGpu: no WebGPU: navigator.gpu is missing and the 'webgpu' package did not load (npm install webgpu): ${(e as Error).message}`);
    }
    gpu = mod.create([...(flags ?? [])]);
    keep = gpu; // the Dawn instance must outlive the device
  }
  const adapter = await gpu.requestAdapter(opts.powerPreference ? { powerPreference: opts.powerPreference } : undefined).catch((e: Error) => {
    throw new Error(`createGpu: requestAdapter() failed${flags?.length ? ` (dawnFlags ${flags.join(' ')})` : ''}: ${e.message}`);
  });
  if (!adapter) {
    throw new Error(
      `createGpu: requestAdapter() found no WebGPU adapter${flags?.length ? ` matching dawnFlags ${flags.join(' ')}` : ''} ` +
        '(on Linux without a GPU, point VK_ICD_FILENAMES at a software Vulkan driver; see docs/webgpu.md)',
    );
  }
  const offered = new Set(adapter.features as unknown as Iterable<string>);
  const missing = asked && missingFeature(asked, offered, 'the adapter');
  if (missing) throw missing;
  // The adapter's own buffer limits (the defaults are 128 / 256 MiB): masks and scores are large.
  const limits = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: (asked ?? OPTIONAL_FEATURES).filter((f) => offered.has(f)) as GPUFeatureName[],
    requiredLimits: {
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      // The fused top-k with a mask binds 11 storage buffers (the default allows 8).
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
    },
  });
  return { device, keep: [keep, adapter] };
}

function adapterFacts(device: GPUDevice): AdapterFacts {
  const info = (device as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
  };
}

/**
 * Creates the WebGPU backend: `opts.device`, or a device of the default
 * adapter (navigator.gpu in browsers, the `webgpu` package in Node). Calls
 * run one at a time on the device, in call order.
 */
export async function createGpu(opts: CreateGpuOptions = {}) {
  const asked = checkFeatures(opts.features);
  const owned = opts.device === undefined;
  const { device, keep } = owned ? await requestDevice(opts, asked) : { device: checkDevice(opts.device), keep: null };
  if (!owned && asked) {
    const missing = missingFeature(asked, new Set(device.features as unknown as Iterable<string>), 'the device');
    if (missing) throw missing;
  }
  const ctx = new GpuContext(device, programs, asked ?? OPTIONAL_FEATURES);
  let destroyed = false;

  /** Runs a plan built from the call's arguments, GPU tensors among them entering as stand-ins. */
  function call<R>(op: string, resident: unknown, build: (alloc: Alloc, input: <T extends TypedArray>(x: TensorIn<T>) => Tensor<T>) => Plan<R>): Promise<R> {
    if (resident !== undefined && typeof resident !== 'boolean') {
      return Promise.reject(new TypeError(`resident: expected a boolean, got ${describe(resident)}`));
    }
    if (destroyed) return Promise.reject(new Error(`${op}: this WebGPU backend was destroyed`));
    return ctx.serial(() => {
      // One stand-in per GPU tensor for the whole call, so a retry of build sees the values read back.
      const standIns = new Map<GpuTensor, TypedArray>();
      const list: TypedArray[] = [];
      const input = <T extends TypedArray>(x: TensorIn<T>): Tensor<T> => {
        if (!(x instanceof GpuTensor)) return x;
        let data = standIns.get(x);
        if (!data) {
          standIns.set(x, (data = standIn(x)));
          list.push(data);
        }
        return { data: data as T, shape: x.shape.slice() };
      };
      // A rejected call with borrowed buffers says which of them is another device's (src/webgpu/handover.ts).
      return runOnGpu(ctx, op, (alloc) => build(alloc, input), { resident: resident === true, standIns: list }).catch((e: unknown) =>
        foreignError(op, [...standIns.keys()].filter((t) => t.borrowed), e));
    });
  }

  const maybe = <T extends TypedArray>(x: TensorIn<T> | undefined, input: (x: TensorIn<T>) => Tensor<T>) => (x === undefined ? undefined : input(x));
  // Keys of any form with their GPU tensors as stand-ins; anything else goes to the edge as it is, to be refused there.
  const keys = (k: KeysIn, input: <T extends TypedArray>(x: TensorIn<T>) => Tensor<T>): IndexerKeys => {
    if (k instanceof GpuTensor) return input(k as TensorIn<Float32Array>);
    if (typeof k === 'object' && k !== null && 'values' in k && 'scales' in k) {
      return { values: input(k.values), scales: input(k.scales) };
    }
    if (typeof k === 'object' && k !== null && 'hadamard' in k && k.data instanceof GpuTensor) {
      return { ...k, data: input(k.data as TensorIn<Uint8Array>).data };
    }
    return k as IndexerKeys;
  };

  // Every op also takes ONNX Runtime and tfjs CPU tensors and the `output` option (docs/interop.md).
  return withInteropOps({
    device,
    /** What the adapter says it is. */
    adapter: adapterFacts(device),
    /** The optional features the programs use on this device. */
    features: OPTIONAL_FEATURES.filter((f) => ctx.features.has(f)),

    /** `generateMask` on the GPU: every form, strategy and option; bit-identical. indices [b, t, k] Int32Array. */
    generateMask<O extends GpuMaskOptions>(indices: TensorIn<Int32Array>, s: number, o?: O): Promise<Out<Tensor<MaskData>, O>> {
      return call('generateMask', o?.resident, (alloc, input) => planGenerateMask(input(indices), s, o ?? {}, alloc)) as never;
    },

    /** `maskFromThreshold` on the GPU (MaxText's merged form): both modes, every form; bit-identical. scores [b, t, s], topkValues [b, t, k]. */
    maskFromThreshold<O extends GpuThresholdMaskOptions>(scores: TensorIn<Float32Array>, topkValues: TensorIn<Float32Array>, o?: O): Promise<Out<Tensor<MaskData>, O>> {
      return call('maskFromThreshold', o?.resident, (alloc, input) => planMaskFromThreshold(input(scores), input(topkValues), o ?? {}, alloc)) as never;
    },

    /** `combineMasks` on the GPU: a and b of one form and shape; bit-identical. */
    combineMasks<O extends GpuMaskBlockOptions>(a: TensorIn<MaskData>, b: TensorIn<MaskData>, o?: O): Promise<Out<Tensor<MaskData>, O>> {
      return call('combineMasks', o?.resident, (alloc, input) => planCombineMasks(input(a), input(b), o ?? {}, alloc)) as never;
    },

    /** `causalMask` on the GPU: row ti keeps keys j <= ti + offset; bit-identical. */
    causalMask<O extends GpuMaskBlockOptions>(b: number, t: number, s: number, offset: number, form: MaskForm = 'additive', o?: O): Promise<Out<Tensor<MaskData>, O>> {
      return call('causalMask', o?.resident, (alloc) => planCausalMask(b, t, s, offset, form, o ?? {}, alloc)) as never;
    },

    /** `windowMask` on the GPU: the keys each row sees (causalOffset, window, seqLens, ragged); bit-identical. */
    windowMask<O extends GpuMaskBlockOptions>(b: number, t: number, s: number, keys: KeyWindowOptions, form: MaskForm = 'additive', o?: O): Promise<Out<Tensor<MaskData>, O>> {
      return call('windowMask', o?.resident, (alloc) => planWindowMask(b, t, s, keys, form, o ?? {}, alloc)) as never;
    },

    /** `topk` on the GPU: every option; bit-identical values and indices (slots always sorted). */
    topk<O extends GpuTopkOptions>(scores: TensorIn<Float32Array>, k: number, o?: O): Promise<Out<TopkResult, O>> {
      return call('topk', o?.resident, (alloc, input) =>
        planTopk(input(scores), k, { ...(o ?? {}), mask: maybe(o?.mask as TensorIn<MaskData> | undefined, input) } as TopkOptions, alloc)) as never;
    },

    /**
     * `indexerScores` on the GPU, every precision and serving form: float32
     * within the CPU's tolerance of the float64 reference; int8, int7 and
     * fp8 (keys as float32, or quantized once, also paged) bit-identical to
     * the CPU.
     */
    indexerScores<O extends GpuIndexerScoresOptions>(q: TensorIn<Float32Array>, k: KeysIn, w: TensorIn<Float32Array>, o?: O): Promise<Out<Tensor<Float32Array>, O>> {
      return call('indexerScores', o?.resident, (alloc, input) => planIndexerScores(input(q), keys(k, input), input(w), o ?? {}, alloc)) as never;
    },

    /**
     * The indexer's scores and their top-k in one pass: key tiles stream
     * through each row's running top-k, so the [t, s] scores never exist
     * (memory O(t * topK)). Equals `topk(indexerScores(q, k, w, { weightScale,
     * precision, hadamard, scaleFormat, causalOffset, window, seqLens, ragged,
     * blockTable, maxLen }), topK, { causalOffset, window, seqLens, ragged,
     * mask, rows, sorted, nan })`.
     * q [b, t, h, d], k [b, s, d] (or any form indexerScores takes), w [b, t, h];
     * returns values/indices [b, t, topK] (positions within each sequence when ragged or paged).
     */
    indexerTopk<O extends GpuIndexerTopkOptions>(q: TensorIn<Float32Array>, k: KeysIn, w: TensorIn<Float32Array>, topK: number, o?: O): Promise<Out<TopkResult, O>> {
      return call('indexerTopk', o?.resident, (alloc, input) =>
        planIndexerTopk(device, programs, input(q), keys(k, input), input(w), topK, { ...(o ?? {}), mask: maybe(o?.mask as TensorIn<MaskData> | undefined, input) } as IndexerTopkOptions, alloc)) as never;
    },

    /**
     * `sparseAttention` on the GPU (FlashMLA's sparse interface): q [t, hq, dqk],
     * kv [s, hkv, dqk], indices [t, hkv, k]; out [rows, hq, dV], lse and
     * maxLogits [rows, hq]. A query with no valid key: out 0, lse +Infinity,
     * maxLogits -Infinity.
     */
    sparseAttention<O extends GpuSparseAttentionOptions>(q: TensorIn<Float32Array>, kv: TensorIn<Float32Array>, indices: TensorIn<Int32Array>, o?: O): Promise<Out<SparseAttentionResult, O>> {
      return call('sparseAttention', o?.resident, (alloc, input) => planSparseAttention(input(q), input(kv), input(indices), o ?? {}, alloc)) as never;
    },

    /** Copies a host tensor to the GPU. */
    upload<T extends TypedArray>(tensor: Tensor<T>): GpuTensor {
      if (destroyed) throw new Error('upload: this WebGPU backend was destroyed');
      if (typeof tensor !== 'object' || tensor === null || !ArrayBuffer.isView(tensor.data) || !Array.isArray(tensor.shape)) {
        throw new TypeError(`upload: expected a tensor { data, shape }, got ${describe(tensor)}`);
      }
      return uploadTensor(ctx, 'upload', tensor.data, tensor.shape);
    },

    /**
     * A GpuTensor over a GPUBuffer of this device made elsewhere (ONNX
     * Runtime Web, tfjs-webgpu, the caller's code), no copy: `shape` and
     * `dtype` say what it holds (its first `bufferBytes(dtype, length)`
     * bytes, row-major); usage needs STORAGE and COPY_SRC. The buffer stays
     * the caller's: the tensor's `destroy()` leaves it alone. A buffer of
     * another device rejects the first call that binds it, naming it.
     */
    wrap(buffer: GPUBuffer, shape: readonly number[], dtype: GpuDtype): GpuTensor {
      if (destroyed) throw new Error('wrap: this WebGPU backend was destroyed');
      return borrowBuffer(device, buffer, shape, dtype, 'wrap');
    },

    /** Reads a GPU tensor back to the host. */
    read(tensor: GpuTensor): Promise<Tensor> {
      if (!(tensor instanceof GpuTensor)) return Promise.reject(new TypeError(`read: expected a GpuTensor, got ${describe(tensor)}`));
      return ctx.serial(async () => ({ data: await readTensor(ctx, 'read', tensor), shape: tensor.shape.slice() }));
    },

    /** Frees the backend (and the device, when it requested it); later calls reject. */
    destroy(): void {
      destroyed = true;
      if (owned) device.destroy();
      void keep;
    },
  }, GPU_SIGNATURES, { gpu: true, device, sync: ['upload'], read: (t) => ctx.serial(() => readTensor(ctx, 'getData', t)) });
}

export type DsaGpu = Awaited<ReturnType<typeof createGpu>>;
