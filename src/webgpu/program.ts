/**
 * What a GPU program is, after tfjs-backend-webgpu and onnxruntime-web: for
 * each plan kernel it runs, one object that checks the step's arguments and
 * returns its dispatches. A dispatch names a pipeline by a cache key made of
 * exactly the parameters that change the shader text, passes sizes as
 * uniforms, and lists its storage buffers; the declarations of both are
 * written here from those lists, so no shader spells out a binding by hand.
 */
import type { Step } from '../plan.js';
import type { TypedArray } from '../tensor.js';

export type Access = 'read' | 'read_write';

export interface Binding {
  /** The WGSL variable name. */
  name: string;
  /** Its WGSL type, e.g. `array<f32>` or `array<atomic<i32>>`. */
  type: string;
  access: Access;
  buffer: GPUBuffer;
}

export type Scalar = 'u32' | 'i32' | 'f32';

export interface Uniform {
  name: string;
  type: Scalar;
  value: number;
}

/** The optional WGSL extensions a program may enable, each behind the device feature of the same use. */
export type Extension = 'f16' | 'subgroups';

/** The device feature behind each extension. */
export const EXTENSION_FEATURE: Readonly<Record<Extension, GPUFeatureName>> = { f16: 'shader-f16', subgroups: 'subgroups' as GPUFeatureName };

export interface Dispatch {
  /** Pipeline cache key: the program and every parameter that changes `wgsl()`'s text (the extensions are added to it). */
  key: string;
  /** WGSL extensions the shader enables (`enable f16;`, `enable subgroups;`); only ones the backend uses (`Encoder.uses`). */
  enables?: readonly Extension[];
  /** The shader after the generated declarations; entry point `main`. */
  wgsl: () => string;
  bindings: Binding[];
  uniforms: Uniform[];
  /**
   * Workgroups to run, numbered 0 .. groups-1. The runner lays them out in
   * x and y (at most 65535 each) and adds the uniform `groups`; shaders get
   * their number from `groupIndex(wid, nwg)` and return when it is >= groups.
   */
  groups: number;
}

/** How a program gets buffers for a step's arguments and scratch space. */
export interface Encoder {
  /**
   * The buffer holding typed-array argument `name` of the step, one per array
   * per call. Its host values are uploaded when `initial` (default: when the
   * step does not write it); an output's buffer starts zeroed otherwise.
   */
  buffer(name: string, initial?: boolean): GPUBuffer;
  /** A zeroed scratch buffer of `bytes` (rounded up to 4), freed after the call. */
  scratch(bytes: number, what: string): GPUBuffer;
  /** A buffer holding `values` (a small table the program computed), freed after the call. */
  data(values: Uint32Array, what: string): GPUBuffer;
  /** The device's limits (workgroup memory, buffer sizes). */
  limits: GPUSupportedLimits;
  /**
   * Whether programs may enable a WGSL extension: the device has its feature
   * and the backend was not told to leave it alone (createGpu's `features`).
   * A program that uses one computes exactly what its plain form computes.
   */
  uses(extension: Extension): boolean;
}

export interface GpuProgram {
  /**
   * The step arguments the program implements. Any other argument whose value
   * is not null, undefined or false is an option this backend does not have
   * yet, and the step is refused rather than run without it.
   */
  args: readonly string[];
  /** Returns the dispatches of the step, in order; throws for argument values it does not implement. */
  encode(step: Step, enc: Encoder): Dispatch[];
}

export type ProgramTable = Readonly<Record<string, GpuProgram>>;

/** The error for an option or kernel this backend lacks: never silently ignored. */
export function unsupported(what: string): Error {
  return new Error(`${what} is not supported by the WebGPU backend yet`);
}

/** The WGSL declarations of a dispatch: its extensions, the uniform struct at binding 0, then the storage buffers. */
export function declarations(d: Pick<Dispatch, 'bindings' | 'uniforms' | 'enables'>): string {
  const fields = [...d.uniforms.map((u) => `  ${u.name}: ${u.type},`), '  groups: u32,'];
  const lines = [
    ...(d.enables ?? []).map((e) => `enable ${e};`),
    'struct Uniforms {', ...fields, '}', '@group(0) @binding(0) var<uniform> u: Uniforms;',
  ];
  d.bindings.forEach((b, i) => lines.push(`@group(0) @binding(${i + 1}) var<storage, ${b.access}> ${b.name}: ${b.type};`));
  lines.push(
    'fn groupIndex(wid: vec3u, nwg: vec3u) -> u32 { return wid.y * nwg.x + wid.x; }',
    'fn isNan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }',
    // Infinities as runtime values: WGSL constant expressions may not hold them.
    'var<private> NEG_INF_BITS: u32 = 0xff800000u;',
    'var<private> POS_INF_BITS: u32 = 0x7f800000u;',
    'fn negInf() -> f32 { return bitcast<f32>(NEG_INF_BITS); }',
    'fn posInf() -> f32 { return bitcast<f32>(POS_INF_BITS); }',
  );
  return lines.join('\n') + '\n';
}

/** The uniform buffer's bytes: each field 4 bytes in order, then `groups`, padded to 16. */
export function uniformBytes(uniforms: readonly Uniform[], groups: number): ArrayBuffer {
  const bytes = new ArrayBuffer(Math.ceil(((uniforms.length + 1) * 4) / 16) * 16);
  const view = new DataView(bytes);
  uniforms.forEach((u, i) => {
    if (u.type === 'f32') view.setFloat32(i * 4, u.value, true);
    else if (u.type === 'i32') view.setInt32(i * 4, u.value, true);
    else view.setUint32(i * 4, u.value, true);
  });
  view.setUint32(uniforms.length * 4, groups, true);
  return bytes;
}

export const u32 = (name: string, value: number): Uniform => ({ name, type: 'u32', value });
export const i32 = (name: string, value: number): Uniform => ({ name, type: 'i32', value });
export const f32 = (name: string, value: number): Uniform => ({ name, type: 'f32', value });

/** The bit pattern of a float32, for exact constants in WGSL. */
export function f32Bits(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}

/** The typed array behind argument `name` of a step, or a TypeError naming it. */
export function arrayArg(step: Step, name: string): TypedArray {
  const value = step.args[name];
  if (value === null || typeof value !== 'object') throw new TypeError(`${step.kernel}: argument ${name} is not an array`);
  return value as TypedArray;
}

/** A causal offset as the i32 a shader can hold: clamped to [-t - 1, s], which changes no row's limit. */
export function clampOffset(offset: number, t: number, s: number): number {
  return Math.max(-t - 1, Math.min(s, offset));
}

export const nextPow2 = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
