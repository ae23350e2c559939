/**
 * Quantization on the GPU, bit-identical to the CPU's (exact.ts has the
 * arithmetic WGSL does not promise by itself):
 *
 * - the plan's FP8 steps, `indexer.fp8.queries` (q [rows, h, d] -> e4m3
 *   codes and one scale per head) and `indexer.fp8.keys` (float32 keys into
 *   the 132-byte page layout), as src/indexer/fp8-kernels.ts: optional
 *   Hadamard rotation (butterflies in float32, then times d^-0.5 rounded as
 *   JavaScript rounds it), act_quant (scale = f32(max(amax, 1e-4) *
 *   f32(1/448)), ue8m0 rounding up to a power of two, codes =
 *   e4m3(x / scale) by IEEE division);
 * - the passes the int8 / int7 score tile runs first (src/indexer/quantize.ts):
 *   queries per head (and their weights f32(w * weightScale)) and float32
 *   keys per slot, per 128-value block scale = amax / levels and values
 *   nearest(x * f32(levels / amax)), ties to even; a block holding NaN or
 *   Infinity has scale NaN; the FP8 head weights f32(f32(w * weightScale) *
 *   qScale).
 *
 * Each vector (a head of a query row, or a key) is one thread's.
 */
import type { KernelArgs, Step } from '../../plan.js';
import { f32Bits, u32, type Dispatch, type Encoder, type GpuProgram } from '../program.js';
import { exactWgsl, f64Words } from './exact.js';
import { WG, perElementWgsl } from './wgsl.js';

/** Byte offsets of a slot's codes and word index of its scale in the FP8 page layout (src/indexer/fp8.ts); uniforms d, pageSize. */
export const fp8AddressWgsl = `
fn fp8CodesAt(slot: u32) -> u32 { return slot * u.d + (slot / u.pageSize) * u.pageSize * 4u; }
fn fp8ScaleAt(slot: u32) -> u32 { return ((slot / u.pageSize) * u.pageSize * (u.d + 4u) + u.pageSize * u.d) / 4u + slot % u.pageSize; }
`;

/** act_quant of one vector of d <= 128 values (rotated first when u.hadamard): writes its codes by `put(e, code)` and returns the scale. */
function fp8VectorWgsl(src: string): string {
  return `
fn quantizeFp8(at: u32) -> f32 {
  var v: array<f32, 128>;
  for (var e = 0u; e < u.d; e++) { v[e] = ${src}[at + e]; }
  if (u.hadamard == 1u) {
    for (var len = 1u; len < u.d; len <<= 1u) {
      for (var i = 0u; i < u.d; i += len << 1u) {
        for (var j = i; j < i + len; j++) {
          let a = v[j];
          let b = v[j + len];
          v[j] = a + b;
          v[j + len] = a - b;
        }
      }
    }
    for (var e = 0u; e < u.d; e++) { v[e] = mulF64(v[e], vec2u(u.rotLo, u.rotHi)); }
  }
  var amax = 0u;
  var finite = true;
  for (var e = 0u; e < u.d; e++) {
    let b = bitcast<u32>(v[e]) & 0x7fffffffu;
    finite = finite && b < 0x7f800000u;
    amax = max(amax, b);
  }
  var scale = qnan();
  if (finite) {
    scale = max(bitcast<f32>(amax), bitcast<f32>(${f32Bits(1e-4)}u)) * bitcast<f32>(${f32Bits(1 / 448)}u);
    if (u.ue8m0 == 1u) {
      let s = bitcast<u32>(scale);
      scale = bitcast<f32>(((s >> 23u) + select(0u, 1u, (s & 0x7fffffu) != 0u)) << 23u);
    }
  }
  for (var e = 0u; e < u.d; e++) { put(e, e4m3Encode(divRn(v[e], scale))); }
  return scale;
}
`;
}

function fp8Uniforms(a: KernelArgs, n: number) {
  const d = a.d as number;
  const [rotLo, rotHi] = f64Words(1 / Math.sqrt(d));
  return [u32('n', n), u32('d', d), u32('hadamard', a.hadamard ? 1 : 0), u32('ue8m0', a.ue8m0 ? 1 : 0), u32('rotLo', rotLo), u32('rotHi', rotHi)];
}

/** 'indexer.fp8.queries': q [rows, h, d] float32 -> q8 codes [rows, h, d] and qScales [rows, h], over query rows. */
const fp8QueriesProgram: GpuProgram = {
  args: ['q', 'h', 'd', 'hadamard', 'ue8m0', 'q8', 'qScales'],
  encode(step: Step, enc: Encoder): Dispatch[] {
    const a = step.args;
    const h = a.h as number, [start, end] = step.rows;
    const n = (end - start) * h;
    return [{
      key: 'indexer.fp8.queries',
      wgsl: () => perElementWgsl(`let head = u.first + e;
  codesAt = head * u.d;
  qScales[head] = quantizeFp8(head * u.d);`, `${exactWgsl}
var<private> codesAt: u32;
fn put(e: u32, code: u32) {
  let b = codesAt + e;
  atomicOr(&q8[b >> 2u], code << ((b & 3u) * 8u));
}
${fp8VectorWgsl('q')}`),
      bindings: [
        { name: 'q', type: 'array<f32>', access: 'read', buffer: enc.buffer('q') },
        { name: 'q8', type: 'array<atomic<u32>>', access: 'read_write', buffer: enc.buffer('q8') },
        { name: 'qScales', type: 'array<f32>', access: 'read_write', buffer: enc.buffer('qScales') },
      ],
      uniforms: [...fp8Uniforms(a, n), u32('first', start * h)],
      groups: Math.ceil(n / WG),
    }];
  },
};

/** 'indexer.fp8.keys': k [slots, d] float32 -> the FP8 page layout `data` (codes, then the page's scales), over slots. */
const fp8KeysProgram: GpuProgram = {
  args: ['k', 'd', 'hadamard', 'ue8m0', 'data', 'pageSize'],
  encode(step: Step, enc: Encoder): Dispatch[] {
    const a = step.args;
    const [start, end] = step.rows;
    return [{
      key: 'indexer.fp8.keys',
      wgsl: () => perElementWgsl(`let slot = u.first + e;
  codesAt = fp8CodesAt(slot);
  atomicStore(&data[fp8ScaleAt(slot)], bitcast<u32>(quantizeFp8(slot * u.d)));`, `${exactWgsl}
${fp8AddressWgsl}
var<private> codesAt: u32;
fn put(e: u32, code: u32) {
  let b = codesAt + e;
  atomicOr(&data[b >> 2u], code << ((b & 3u) * 8u));
}
${fp8VectorWgsl('k')}`),
      bindings: [
        { name: 'k', type: 'array<f32>', access: 'read', buffer: enc.buffer('k') },
        { name: 'data', type: 'array<atomic<u32>>', access: 'read_write', buffer: enc.buffer('data') },
      ],
      uniforms: [...fp8Uniforms(a, end - start), u32('first', start), u32('pageSize', a.pageSize as number)],
      groups: Math.ceil((end - start) / WG),
    }];
  },
};

export const quantizePrograms: Record<string, GpuProgram> = {
  'indexer.fp8.queries': fp8QueriesProgram,
  'indexer.fp8.keys': fp8KeysProgram,
};

/** The FP8 head weights of query rows [start, end): wq[i] = f32(f32(w * weightScale) * qScale), i over (row, head). */
export function fp8WeightPass(a: KernelArgs, enc: Encoder, start: number, end: number, wq: GPUBuffer): Dispatch {
  const h = a.h as number, n = (end - start) * h;
  const [wsLo, wsHi] = f64Words(a.weightScale as number);
  return {
    key: 'indexer.fp8.weights',
    wgsl: () => perElementWgsl(`let at = u.first + e;
  wq[e] = mulF64(w[at], vec2u(u.wsLo, u.wsHi)) * qScales[at];`, `${exactWgsl}`),
    bindings: [
      { name: 'w', type: 'array<f32>', access: 'read', buffer: enc.buffer('w') },
      { name: 'qScales', type: 'array<f32>', access: 'read', buffer: enc.buffer('qScales') },
      { name: 'wq', type: 'array<f32>', access: 'read_write', buffer: wq },
    ],
    uniforms: [u32('n', n), u32('first', start * h), u32('wsLo', wsLo), u32('wsHi', wsHi)],
    groups: Math.ceil(n / WG),
  };
}

/**
 * int8 quantization of one vector of u.d values of `src` at `at`, per block
 * of 128: values as bytes into words `word ..` of `values`, scales (as bits)
 * into `scales[scaleAt + block]`.
 */
function int8VectorWgsl(src: string, values: string, scales: string): string {
  return `
fn quantizeInt8(at: u32, word: u32, scaleAt: u32, levels: f32) {
  for (var blk = 0u; blk * 128u < u.d; blk++) {
    let e0 = blk * 128u;
    let e1 = min(u.d, e0 + 128u);
    var amax = 0u;
    var finite = true;
    for (var e = e0; e < e1; e++) {
      let b = bitcast<u32>(${src}[at + e]) & 0x7fffffffu;
      finite = finite && b < 0x7f800000u;
      amax = max(amax, b);
    }
    let a = bitcast<f32>(amax);
    var inv = 0.0;
    if (finite && amax != 0u) { inv = divRn(levels, a); }
    ${scales}[scaleAt + blk] = select(QNAN_BITS, bitcast<u32>(divRn(a, levels)), finite);
    for (var e = e0; e < e1; e += 4u) {
      var packed = 0u;
      for (var i = 0u; i < 4u && e + i < e1; i++) {
        let v = round(${src}[at + e + i] * inv);
        // Non-finite (a huge 1 / amax) stores 0, as the CPU's Int8Array does.
        if (finite && (bitcast<u32>(v) & 0x7fffffffu) <= 0x42fe0000u) { packed |= (bitcast<u32>(i32(v)) & 0xffu) << (8u * i); }
      }
      ${values}[word + e / 4u] = packed;
    }
  }
}
`;
}

const up4 = (x: number) => Math.ceil(x / 4) * 4;

/**
 * The int8 / int7 query pass of rows [start, end): one buffer holding the
 * values (each head's d bytes at a stride of `stride` bytes, a multiple of
 * 4), then the block scales at word `scalesAt`, then the head weights
 * f32(w * weightScale) at word `weightsAt`, all indexed from row `start`.
 */
export function int8QueryPass(a: KernelArgs, enc: Encoder, start: number, end: number, levels: number) {
  const h = a.h as number, d = a.d as number, nb = Math.ceil(d / 128);
  const n = (end - start) * h, stride = up4(d);
  const scalesAt = (n * stride) / 4, weightsAt = scalesAt + n * nb;
  const buffer = enc.scratch(Math.max(1, weightsAt + n) * 4, `int8 queries [${end - start}, ${h}, ${d}]`);
  const [wsLo, wsHi] = f64Words(a.weightScale as number);
  const dispatch: Dispatch = {
    key: 'indexer.int8.queries',
    wgsl: () => perElementWgsl(`let head = u.first + e;
  quantizeInt8(head * u.d, e * (u.stride / 4u), u.scalesAt + e * u.nb, f32(u.levels));
  qs[u.weightsAt + e] = bitcast<u32>(mulF64(w[head], vec2u(u.wsLo, u.wsHi)));`, `${exactWgsl}
${int8VectorWgsl('q', 'qs', 'qs')}`),
    bindings: [
      { name: 'q', type: 'array<f32>', access: 'read', buffer: enc.buffer('q') },
      { name: 'w', type: 'array<f32>', access: 'read', buffer: enc.buffer('w') },
      { name: 'qs', type: 'array<u32>', access: 'read_write', buffer },
    ],
    uniforms: [
      u32('n', n), u32('d', d), u32('nb', nb), u32('first', start * h), u32('stride', stride), u32('scalesAt', scalesAt),
      u32('weightsAt', weightsAt), u32('levels', levels), u32('wsLo', wsLo), u32('wsHi', wsHi),
    ],
    groups: Math.ceil(n / WG),
  };
  return { dispatch, buffer, stride, scalesAt, weightsAt };
}

/**
 * The int8 pass over float32 keys: every slot of a contiguous or ragged
 * cache, or (paged) only the slots of the pages some sequence's length
 * uses. Values at a stride of `kStride` bytes per slot, scales [slot, nb].
 */
export function int8KeyPass(a: KernelArgs, enc: Encoder) {
  const d = a.d as number, nb = Math.ceil(d / 128), kStride = up4(d);
  const k = a.k as Float32Array;
  const slots = k.length / d;
  const kq = enc.scratch(Math.max(1, slots * kStride), `int8 keys [${slots}, ${d}]`);
  const kScales = enc.scratch(Math.max(1, slots * nb) * 4, `int8 key scales [${slots}, ${nb}]`);
  const table = a.blockTable as Int32Array | null;
  const pageSize = a.pageSize as number;
  let pages: Uint32Array | null = null;
  if (table !== null) {
    const t = a.t as number, keyEnd = a.keyEnd as Int32Array, maxBlocks = a.maxBlocks as number;
    const used = new Set<number>();
    for (let bi = 0; bi * t < keyEnd.length; bi++) {
      for (let j = 0; j < Math.ceil(keyEnd[bi * t] / pageSize); j++) used.add(table[bi * maxBlocks + j]);
    }
    pages = Uint32Array.from([...used].sort((x, y) => x - y));
  }
  const n = pages === null ? slots : pages.length * pageSize;
  const dispatch: Dispatch = {
    key: `indexer.int8.keys${pages ? '.paged' : ''}`,
    wgsl: () => perElementWgsl(`let slot = ${pages ? 'pages[e / u.pageSize] * u.pageSize + e % u.pageSize' : 'e'};
  quantizeInt8(slot * u.d, slot * (u.stride / 4u), slot * u.nb, 127.0);`, `${exactWgsl}
${int8VectorWgsl('keys', 'kq', 'kScales')}`),
    bindings: [
      { name: 'keys', type: 'array<f32>', access: 'read', buffer: enc.buffer('k') },
      ...(pages ? [{ name: 'pages', type: 'array<u32>', access: 'read' as const, buffer: enc.data(pages.length ? pages : new Uint32Array(1), 'used pages') }] : []),
      { name: 'kq', type: 'array<u32>', access: 'read_write', buffer: kq },
      { name: 'kScales', type: 'array<u32>', access: 'read_write', buffer: kScales },
    ],
    uniforms: [u32('n', n), u32('d', d), u32('nb', nb), u32('stride', kStride), u32('pageSize', pageSize)],
    groups: Math.ceil(n / WG),
  };
  return { dispatch, kq, kScales, kStride };
}
