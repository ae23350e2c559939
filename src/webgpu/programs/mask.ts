/**
 * Masks from top-k indices on the GPU (the plan of `generateMask`). One
 * workgroup per (row, chunk of 65536 keys): the chunk's keep-bits are built
 * in workgroup memory (8 KiB), by scatter (each slot sets its key's bit) or
 * by the broadcast definition (each key compares every slot), then the chunk
 * is written once, coalesced, in the mask's form. So every element of the
 * rows is written exactly once and the k scattered stores never leave the
 * workgroup. Negative indices and indices outside [0, min(s, causal limit))
 * keep nothing; an index >= s under 'error' is found by the check step and
 * the plan's finish throws (the caller's `out` is then never written).
 */
import { DEFAULT_MASK_VALUE } from '../../tensor.js';
import type { Step } from '../../plan.js';
import { clampOffset, f32Bits, i32, u32, unsupported, type Dispatch, type Encoder, type GpuProgram } from '../program.js';
import { WG, perElementWgsl } from './wgsl.js';

const CHUNK_WORDS = 2048;
const CHUNK_KEYS = CHUNK_WORDS * 32;
const DROPPED = f32Bits(DEFAULT_MASK_VALUE);

type Form = 'additive' | 'bool' | 'bits';

function maskWgsl(strategy: 'scatter' | 'broadcast', form: Form, ranged: boolean): string {
  const build =
    strategy === 'scatter'
      ? `for (var i = lid; i < u.k; i += WG) {
    let j = indices[r * u.k + i];
    if (j >= i32(lo) && j < i32(hi)) {
      let o = u32(j) - c0;
      atomicOr(&bits[o >> 5u], 1u << (o & 31u));
    }
  }`
      : `for (var o = lid; c0 + o < hi; o += WG) {
    if (c0 + o < lo) { continue; }
    var hit = false;
    for (var i = 0u; i < u.k; i++) { hit = hit || indices[r * u.k + i] == i32(c0 + o); }
    if (hit) { atomicOr(&bits[o >> 5u], 1u << (o & 31u)); }
  }`;
  const write = {
    bits: `let words = (u.s + 31u) >> 5u;
  for (var w = lid; w < ((c1 - c0 + 31u) >> 5u); w += WG) {
    out[(r - u.rowBase) * words + (c0 >> 5u) + w] = atomicLoad(&bits[w]);
  }`,
    additive: `for (var o = lid; c0 + o < c1; o += WG) {
    let kept = (atomicLoad(&bits[o >> 5u]) >> (o & 31u)) & 1u;
    out[(r - u.rowBase) * u.s + c0 + o] = select(DROPPED, 0u, kept == 1u);
  }`,
    // Bytes, four to a word; a word shared with the neighbouring chunk or
    // row is written through a mask of this chunk's bytes only.
    bool: `let p0 = (r - u.rowBase) * u.s + c0;
  let p1 = p0 + (c1 - c0);
  for (var w = (p0 >> 2u) + lid; w <= ((p1 - 1u) >> 2u); w += WG) {
    var value = 0u;
    var mine = 0u;
    for (var b = 0u; b < 4u; b++) {
      let p = w * 4u + b;
      if (p >= p0 && p < p1) {
        let o = p - p0;
        mine |= 0xffu << (8u * b);
        value |= ((atomicLoad(&bits[o >> 5u]) >> (o & 31u)) & 1u) << (8u * b);
      }
    }
    if (mine == 0xffffffffu) {
      atomicStore(&out[w], value);
    } else {
      atomicAnd(&out[w], ~mine);
      atomicOr(&out[w], value);
    }
  }`,
  }[form];
  return `
const WG = ${WG}u;
const CHUNK_KEYS = ${CHUNK_KEYS}u;
const DROPPED = ${DROPPED}u;
var<workgroup> bits: array<atomic<u32>, ${CHUNK_WORDS}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = groupIndex(wid, nwg);
  if (g >= u.groups) { return; }
  let r = u.rowStart + g / u.chunks;
  let c0 = (g % u.chunks) * CHUNK_KEYS;
  let c1 = min(u.s, c0 + CHUNK_KEYS);
  let limit = u32(clamp(i32(r % u.t) + u.offset + 1, 0, i32(u.s)));
  ${ranged ? 'let lo = max(c0, u32(keyLo[r]));\n  let hi = min(min(c1, limit), u32(keyHi[r]));' : 'let lo = c0;\n  let hi = min(c1, limit);'}
  for (var w = lid; w < ${CHUNK_WORDS}u; w += WG) { atomicStore(&bits[w], 0u); }
  workgroupBarrier();
  ${build}
  workgroupBarrier();
  ${write}
}
`;
}

function maskProgram(strategy: 'scatter' | 'broadcast', fixedForm: Form | null): GpuProgram {
  return {
    args: ['indices', 'out', 't', 's', 'k', 'rowBase', 'offset', 'form', 'firstBad', 'lo', 'hi'],
    encode(step: Step, enc: Encoder): Dispatch[] {
      const a = step.args;
      const form = (fixedForm ?? a.form) as Form;
      if (form !== 'additive' && form !== 'bool' && form !== 'bits') throw unsupported(`mask form '${String(form)}'`);
      const [start, end] = step.rows;
      const t = a.t as number, s = a.s as number, k = a.k as number;
      const chunks = Math.ceil(s / CHUNK_KEYS);
      const outType = form === 'bool' ? 'array<atomic<u32>>' : 'array<u32>';
      // Windows, seqLens, ragged batches: per-row ranges [lo, hi) with the causal limit folded in.
      const ranged = a.lo !== null;
      return [{
        key: `mask.${strategy}.${form}${ranged ? '.ranged' : ''}`,
        wgsl: () => maskWgsl(strategy, form, ranged),
        bindings: [
          { name: 'indices', type: 'array<i32>', access: 'read', buffer: enc.buffer('indices') },
          ...(ranged ? [
            { name: 'keyLo', type: 'array<i32>', access: 'read' as const, buffer: enc.buffer('lo') },
            { name: 'keyHi', type: 'array<i32>', access: 'read' as const, buffer: enc.buffer('hi') },
          ] : []),
          { name: 'out', type: outType, access: 'read_write', buffer: enc.buffer('out') },
        ],
        uniforms: [
          u32('rowStart', start), u32('rowBase', a.rowBase as number), u32('t', t), u32('s', s), u32('k', k),
          u32('chunks', chunks), i32('offset', clampOffset(a.offset as number, t, s)),
        ],
        groups: (end - start) * chunks,
      }];
    },
  };
}

/** The out-of-range check: the smallest row holding an index >= s, by atomicMin over every slot of the rows. */
const indicesCheck: GpuProgram = {
  args: ['indices', 'k', 's', 'firstBad'],
  encode(step: Step, enc: Encoder): Dispatch[] {
    const [start, end] = step.rows;
    const k = step.args.k as number;
    const n = (end - start) * k;
    return [{
      key: 'mask.indices.check',
      wgsl: () => perElementWgsl('if (indices[u.first + e] >= i32(u.s)) { atomicMin(&firstBad[0], i32((u.first + e) / u.k)); }'),
      bindings: [
        { name: 'indices', type: 'array<i32>', access: 'read', buffer: enc.buffer('indices') },
        { name: 'firstBad', type: 'array<atomic<i32>>', access: 'read_write', buffer: enc.buffer('firstBad', true) },
      ],
      uniforms: [u32('first', start * k), u32('n', n), u32('k', k), u32('s', step.args.s as number)],
      groups: Math.ceil(n / WG),
    }];
  },
};

export const maskPrograms: Record<string, GpuProgram> = {
  'mask.scatter.additive': maskProgram('scatter', 'additive'),
  'mask.scatter.bool': maskProgram('scatter', 'bool'),
  'mask.scatter.bits': maskProgram('scatter', 'bits'),
  'mask.broadcast': maskProgram('broadcast', null),
  'mask.indices.check': indicesCheck,
};
