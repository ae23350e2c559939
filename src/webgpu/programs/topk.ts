/**
 * Exact top-k on the GPU (the plan of `topk`, either kernel: both give the
 * same result), by radix select in workgroup memory, one workgroup per row
 * (DeepSeek's DeepSelect and FlashInfer's radix top-k select the same way).
 * The slots are always sorted (a valid answer for `sorted: false` too) and
 * the values are the scores' own bits (-0 stays -0, a NaN keeps its payload).
 */
import type { Step } from '../../plan.js';
import { clampOffset, nextPow2, u32, i32, unsupported, type Dispatch, type Encoder, type GpuProgram } from '../program.js';
import { WG, bitonicWgsl, eligibleWgsl, lanes, orderWgsl, radixWgsl, type Lanes } from './wgsl.js';

type MaskForm = 'additive' | 'bool' | 'bits' | null;

/** Budget for the candidate lists of one dispatch; more rows run as further dispatches over the same lists. */
const LIST_BUDGET = 64 * 2 ** 20;

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

/**
 * Radix select over the whole row: the row's eligible keys are read once per
 * byte of the order key (four passes, high to low, each a 256-bin histogram
 * in workgroup memory narrowing to the bin of the kc-th key) and, when that
 * key is tied and only some of its keys fit, once per byte of the index
 * (ties to the smaller index); one more pass collects the kc keys, which are
 * then sorted (bitonic, in the row's slice of `cand`). Order: order key
 * descending (wgsl.ts `keyOf`: -0 = +0, NaN lowest), ties by ascending
 * index. O(s) reads per byte and nothing sorted but the k results. With
 * subgroups, a subgroup adds its lanes' counts in one atomic per bin (the
 * histograms, the eligible count) and takes its collected keys' slots in one;
 * the counts are the same, and the collected keys are sorted afterwards by a
 * total order, so the result is too.
 */
function topkWgsl(form: MaskForm, ranged: boolean, l: Lanes): string {
  return `${orderWgsl}
${radixWgsl(l)}
${eligibleWgsl(form)}
${bitonicWgsl('sortCand', 'cand', 'before')}
var<workgroup> rowLo: u32;
var<workgroup> rowHi: u32;
var<workgroup> nanFirst: atomic<u32>;
var<workgroup> total: atomic<u32>;
var<workgroup> taken: atomic<u32>;
${l.counter('countEligible', 'total')}
${l.counter('takeSlot', 'taken')}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = groupIndex(wid, nwg);
  if (g >= u.groups) { return; }
  let r = u.rowStart + g;
  if (lid == 0u) {
    rowLo = ${ranged ? 'u32(keyLo[r])' : '0u'};
    rowHi = ${ranged ? 'u32(keyHi[r])' : 'u.s'};
    atomicStore(&nanFirst, 0xffffffffu);
    atomicStore(&total, 0u);
    atomicStore(&taken, 0u);
  }
  let first = workgroupUniformLoad(&rowLo);
  let n = min(workgroupUniformLoad(&rowHi), u32(clamp(i32(r % u.t) + u.offset + 1, 0, i32(u.s))));
  let base = r * u.s;
  let cb = g * u.cap;
  // Every pass over the row runs its loop in uniform control flow (whole strides of the workgroup), as the lane helpers need.
  // The kc-th order key, byte by byte; the first pass also counts the eligible keys and finds the first NaN.
  var t = 0u;
  var last = 0xffffffffu;
  var prefix = 0u;
  var known = 0u;
  var need = u.kc;
  var ties = 0u;
  for (var shift = 24u; shift < 32u; shift -= 8u) {
    histClear(lid);
    for (var j0 = first; j0 < n; j0 += ${WG}u) {
      let j = j0 + lid;
      let on = j < n && maskEligible(r, j);
      var key = 0u;
      if (on) { key = keyOf(scores[base + j]); }
      if (shift == 24u) {
        countEligible(on);
        if (on && key == 0u && (scores[base + j] & 0x7fffffffu) > 0x7f800000u) { atomicMin(&nanFirst, j); }
      }
      histAdd(on && (key & known) == prefix, (key >> shift) & 255u);
    }
    // No more eligible keys than slots: every one is kept (t = 0, the lowest key).
    if (shift == 24u && workgroupUniformLoad(&total) <= u.kc) { break; }
    let pick = histPick(prefix, shift, need, true, lid);
    prefix = pick.x;
    need = pick.y;
    ties = pick.z;
    known |= 255u << shift;
    if (shift == 0u) {
      t = prefix;
      break;
    }
  }
  // Of the keys tied at t, only the need with the smallest indices.
  if (need < ties) {
    var ip = 0u;
    var iknown = 0u;
    for (var shift = u.indexShift; shift < 32u; shift -= 8u) {
      histClear(lid);
      for (var j0 = first; j0 < n; j0 += ${WG}u) {
        let j = j0 + lid;
        let on = j < n && (j & iknown) == ip && maskEligible(r, j) && keyOf(scores[base + j]) == t;
        histAdd(on, (j >> shift) & 255u);
      }
      let pick = histPick(ip, shift, need, false, lid);
      ip = pick.x;
      need = pick.y;
      iknown |= 255u << shift;
      if (shift == 0u) { break; }
    }
    last = ip;
  }
  // Collect, sort, write.
  for (var j0 = first; j0 < n; j0 += ${WG}u) {
    let j = j0 + lid;
    var e = vec2u(0u);
    var keep = false;
    if (j < n && maskEligible(r, j)) {
      e = vec2u(scores[base + j], j);
      keep = kept(e, t, last);
    }
    let at = takeSlot(keep);
    if (keep) { cand[cb + at] = e; }
  }
  workgroupBarrier();
  let c = min(workgroupUniformLoad(&taken), u.kc);
  var p = 1u;
  if (c > 1u) { p = 1u << (32u - countLeadingZeros(c - 1u)); }
  for (var i = c + lid; i < p; i += ${WG}u) { cand[cb + i] = SENTINEL; }
  storageBarrier();
  sortCand(cb, p, lid);
  let o = (r - u.row0) * u.k;
  for (var i = lid; i < u.k; i += ${WG}u) {
    if (i < c) {
      let e = cand[cb + i];
      indices[o + i] = i32(e.y);
      values[o + i] = e.x;
    } else {
      indices[o + i] = -1;
      values[o + i] = 0xff800000u;
    }
  }
  if (lid == 0u) {
    let nan = atomicLoad(&nanFirst);
    nanAt[r - u.row0] = select(i32(nan), -1, u.nanLowest == 1u || nan == 0xffffffffu);
  }
}
`;
}

const topkProgram: GpuProgram = {
  args: ['scores', 't', 's', 'k', 'row0', 'values', 'indices', 'nanAt', 'nanLowest', 'sorted', 'causalOffset', 'mask', 'maskForm', 'simd', 'lo', 'hi'],
  encode(step: Step, enc: Encoder): Dispatch[] {
    const a = step.args;
    const form = checkMaskForm(a.maskForm);
    const t = a.t as number, s = a.s as number, k = a.k as number;
    const cap = nextPow2(Math.min(k, s));
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
    const sg = enc.uses('subgroups');
    return rowRuns(start, end, per).map(([r0, r1]) => ({
      key: `topk.${form ?? 'all'}${ranged ? '.ranged' : ''}`,
      enables: sg ? ['subgroups' as const] : [],
      wgsl: () => topkWgsl(form, ranged, lanes(sg)),
      bindings,
      uniforms: [
        u32('rowStart', r0), u32('row0', a.row0 as number), u32('t', t), u32('s', s), u32('k', k), i32('offset', offset),
        u32('cap', cap), u32('kc', Math.min(k, s)), u32('nanLowest', a.nanLowest ? 1 : 0),
        u32('indexShift', 8 * Math.floor(Math.log2(Math.max(1, s - 1)) / 8)),
      ],
      groups: r1 - r0,
    }));
  },
};

export const topkPrograms: Record<string, GpuProgram> = {
  topkRadix: topkProgram,
  topkSortReference: topkProgram,
};
