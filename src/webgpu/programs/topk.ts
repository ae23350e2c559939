/**
 * Exact top-k on the GPU (the plan of `topk`, either kernel: both give the
 * same result). One workgroup per row streams the row once, 256 keys at a
 * time, keeping the row's running top-k by threshold and compaction
 * (wgsl.ts `selectWgsl`), and sorts the survivors. The slots are always
 * sorted (a valid answer for `sorted: false` too) and the values are the
 * scores' own bits (-0 stays -0, a NaN keeps its payload).
 */
import type { Step } from '../../plan.js';
import { clampOffset, nextPow2, u32, i32, unsupported, type Dispatch, type Encoder, type GpuProgram } from '../program.js';
import { WG, eligibleWgsl, selectWgsl } from './wgsl.js';

type MaskForm = 'additive' | 'bool' | 'bits' | null;

/** Budget for the candidate lists of one dispatch; more rows run as further dispatches over the same lists. */
const LIST_BUDGET = 64 * 2 ** 20;

/** The candidate list capacity for k slots over s keys when rows take `chunk` keys at a time. */
export function listCapacity(k: number, s: number, chunk: number): number {
  return nextPow2(Math.min(k, s) + chunk);
}

/** Splits rows [start, end) into runs of at most `per` rows. */
export function rowRuns(start: number, end: number, per: number): [number, number][] {
  const runs: [number, number][] = [];
  for (let r = start; r < end; r += per) runs.push([r, Math.min(end, r + per)]);
  return runs;
}

export function checkMaskForm(form: unknown): MaskForm {
  if (form === null || form === 'additive' || form === 'bool' || form === 'bits') return form;
  throw unsupported(`top-k mask form '${String(form)}'`);
}

function topkWgsl(form: MaskForm, ranged: boolean): string {
  return `${selectWgsl(1)}
${eligibleWgsl(form)}
var<workgroup> rowLo: u32;
var<workgroup> rowHi: u32;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = groupIndex(wid, nwg);
  if (g >= u.groups) { return; }
  let r = u.rowStart + g;
  // The row's eligible keys: [lo, hi) (windows, seqLens, ragged: the causal limit folded in) within the causal limit.
  if (lid == 0u) {
    rowLo = ${ranged ? 'u32(keyLo[r])' : '0u'};
    rowHi = ${ranged ? 'u32(keyHi[r])' : 'u.s'};
  }
  let first = workgroupUniformLoad(&rowLo);
  let n = min(workgroupUniformLoad(&rowHi), u32(clamp(i32(r % u.t) + u.offset + 1, 0, i32(u.s))));
  let base = r * u.s;
  let cb = g * u.cap;
  selectBegin(lid);
  for (var j0 = first; j0 < n; j0 += ${WG}u) {
    selectMakeRoom(1u, cb, ${WG}u, lid);
    let j = j0 + lid;
    if (j < n && maskEligible(r, j)) { selectOffer(0u, cb, j, scores[base + j]); }
  }
  selectFinish(1u, cb, r - u.row0, lid);
}
`;
}

const topkProgram: GpuProgram = {
  args: ['scores', 't', 's', 'k', 'row0', 'values', 'indices', 'nanAt', 'nanLowest', 'sorted', 'causalOffset', 'mask', 'maskForm', 'simd', 'lo', 'hi'],
  encode(step: Step, enc: Encoder): Dispatch[] {
    const a = step.args;
    const form = checkMaskForm(a.maskForm);
    const t = a.t as number, s = a.s as number, k = a.k as number;
    const cap = listCapacity(k, s, WG);
    const [start, end] = step.rows;
    const per = Math.max(1, Math.min(end - start, Math.floor(LIST_BUDGET / (cap * 8))));
    const cand = enc.scratch(per * cap * 8, `top-k candidate lists [${per}, ${cap}]`);
    const offset = a.causalOffset === null ? s : clampOffset(a.causalOffset as number, t, s);
    const ranged = a.lo !== null;
    const bindings = [
      { name: 'scores', type: 'array<u32>', access: 'read' as const, buffer: enc.buffer('scores') },
      ...(form === null ? [] : [{ name: 'mask', type: 'array<u32>', access: 'read' as const, buffer: enc.buffer('mask') }]),
      ...(ranged ? [
        { name: 'keyLo', type: 'array<i32>', access: 'read' as const, buffer: enc.buffer('lo') },
        { name: 'keyHi', type: 'array<i32>', access: 'read' as const, buffer: enc.buffer('hi') },
      ] : []),
      { name: 'cand', type: 'array<vec2u>', access: 'read_write' as const, buffer: cand },
      { name: 'values', type: 'array<u32>', access: 'read_write' as const, buffer: enc.buffer('values') },
      { name: 'indices', type: 'array<i32>', access: 'read_write' as const, buffer: enc.buffer('indices') },
      { name: 'nanAt', type: 'array<i32>', access: 'read_write' as const, buffer: enc.buffer('nanAt') },
    ];
    return rowRuns(start, end, per).map(([r0, r1]) => ({
      key: `topk.${form ?? 'all'}${ranged ? '.ranged' : ''}`,
      wgsl: () => topkWgsl(form, ranged),
      bindings,
      uniforms: [
        u32('rowStart', r0), u32('row0', a.row0 as number), u32('t', t), u32('s', s), u32('k', k), i32('offset', offset),
        u32('cap', cap), u32('kc', Math.min(k, s)), u32('nanLowest', a.nanLowest ? 1 : 0),
      ],
      groups: r1 - r0,
    }));
  },
};

export const topkPrograms: Record<string, GpuProgram> = {
  topkRadix: topkProgram,
  topkSortReference: topkProgram,
};
