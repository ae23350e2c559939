/**
 * Exact top-k on the GPU (the plan of `topk`, either kernel: both give the
 * same result), by radix select in workgroup memory, one workgroup per row
 * (DeepSeek's DeepSelect and FlashInfer's radix top-k select the same way).
 * The slots are always sorted (a valid answer for `sorted: false` too) and
 * the values are the scores' own bits (-0 stays -0, a NaN keeps its payload).
 */
import type { Step } from '../../plan.js';
import { clampOffset, nextPow2, u32, i32, unsupported, type Dispatch, type Encoder, type GpuProgram } from '../program.js';
import { WG, candListWgsl, eligibleWgsl, lanes, orderWgsl, radixWgsl, type Lanes } from './wgsl.js';

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

/** Most tied-bin keys a row's list holds; a bin with more is refined over the whole row instead. */
const TIE_CAP = 8192;

/**
 * Radix select, one workgroup per row, in two reads of the row when the
 * data allow (DeepSeek's DeepSelect and FlashInfer's radix top-k select
 * this way). Read 1 counts the row's eligible keys by the top 11 bits of
 * their order key (wgsl.ts `keyOf`: -0 = +0, NaN lowest) in a 2048-bin
 * histogram and finds the bin of the kc-th key (kc = min(k, s)). Read 2
 * collects the keys of higher bins (all selected) and copies the keys of
 * that bin to the row's tie list (in `cand` after its results); the rest of the key (8, 8, then 5 bits)
 * and, when that key is tied and only some of its keys fit, the index (ties
 * to the smaller index) are found by radix passes over the list only, and
 * its selected keys are collected. A bin of more than TIE_CAP keys (many
 * equal scores) is refined by the same passes over the row instead. The kc
 * results are then sorted (bitonic, in the row's slice of `cand`): order
 * key descending, ties by ascending index. A pass stops early once the
 * whole bin is needed. Slots are taken with one atomic per collected key:
 * few of a stride's keys are collected, except in a row with no more
 * eligible keys than k, where every one is. There, with subgroups, a
 * subgroup takes its keys' slots with one atomic (the keys land in another
 * order and are sorted by a total order afterwards, so the result is the
 * same). Aggregating the sparse collections, the histograms or the eligible
 * count the same way measured slower on both software adapters
 * (docs/webgpu.md); the count is summed per thread instead.
 */
function topkWgsl(form: MaskForm, ranged: boolean, l: Lanes): string {
  // Loops in whole strides of the workgroup (uniform control flow, as the lane helpers need), each lane with on0, j, vb (value bits), key.
  const overRow = (body: string) => `for (var j0 = first; j0 < n; j0 += ${WG}u) {
    let j = j0 + lid;
    let on0 = j < n && maskEligible(r, j);
    var vb = 0u;
    if (on0) { vb = scores[base + j]; }
    let key = keyOf(vb);
    ${body}
  }`;
  const overList = (body: string) => `for (var i0 = 0u; i0 < listed; i0 += ${WG}u) {
    let i = i0 + lid;
    let on0 = i < listed;
    var e = vec2u(0u);
    if (on0) { e = cand[tb + i]; }
    let j = e.y;
    let vb = e.x;
    let key = keyOf(vb);
    ${body}
  }`;
  // Narrows (prefix, known, need, count) from the 11-bit bin to the full key t, then to the index last.
  const refine = (over: (body: string) => string) => `
    var settled = need == count;
    for (var step = 0u; step < 3u; step++) {
      if (settled) { break; }
      let shift = select(select(0u, 5u, step == 1u), 13u, step == 0u);
      histClear(256u, lid);
      ${over('histAdd(on0 && (key & known) == prefix, (key >> shift) & 255u);')}
      let pick = histPick(prefix, shift, need, true, 16u, 16u, lid);
      prefix = pick.x;
      need = pick.y;
      count = pick.z;
      known |= 255u << shift;
      settled = need == count;
    }
    t = prefix;
    // Of the keys tied at t, only the need with the smallest indices.
    if (need < count) {
      var ip = 0u;
      var iknown = 0u;
      for (var shift = u.indexShift; shift < 32u; shift -= 8u) {
        histClear(256u, lid);
        ${over('histAdd(on0 && (j & iknown) == ip && key == t, (j >> shift) & 255u);')}
        let pick = histPick(ip, shift, need, false, 16u, 16u, lid);
        ip = pick.x;
        need = pick.y;
        iknown |= 255u << shift;
        if (shift == 0u) { break; }
      }
      last = ip;
    }`;
  const collect = (take: string) => `let keep = on0 && kept(vec2u(vb, j), t, last);
    let at = ${take}(keep);
    if (keep) { cand[cb + at] = vec2u(vb, j); }`;
  return `${orderWgsl}
${radixWgsl}
${eligibleWgsl(form)}
${candListWgsl}
var<workgroup> rowLo: u32;
var<workgroup> rowHi: u32;
var<workgroup> nanFirst: atomic<u32>;
var<workgroup> total: atomic<u32>;
var<workgroup> taken: atomic<u32>;
var<workgroup> tied: atomic<u32>;
${lanes(false).counter('takeSlot', 'taken')}
${lanes(false).counter('takeTie', 'tied')}
${l.counter('takeEvery', 'taken')}

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
    atomicStore(&tied, 0u);
  }
  let first = workgroupUniformLoad(&rowLo);
  let n = min(workgroupUniformLoad(&rowHi), u32(clamp(i32(r % u.t) + u.offset + 1, 0, i32(u.s))));
  let base = r * u.s;
  // The row's slice of cand: its results (cap), then its tie list (tieCap).
  let cb = g * (u.cap + u.tieCap);
  let tb = cb + u.cap;
  // Read 1: the eligible keys, the first NaN, the histogram of the top 11 bits.
  histClear(HIST_BINS, lid);
  var eligible = 0u;
  ${overRow(`eligible += select(0u, 1u, on0);
    if (on0 && key == 0u && (vb & 0x7fffffffu) > 0x7f800000u) { atomicMin(&nanFirst, j); }
    histAdd(on0, key >> 21u);`)}
  atomicAdd(&total, eligible);
  // No more eligible keys than slots: every one is kept (t = 0, the lowest key).
  var t = 0u;
  var last = 0xffffffffu;
  var listed = 0u;
  let every = workgroupUniformLoad(&total) <= u.kc;
  if (!every) {
    let pick = histPick(0u, 21u, u.kc, true, ${WG}u, 8u, lid);
    var prefix = pick.x;
    var need = pick.y;
    var count = pick.z;
    var known = 0xffe00000u;
    if (count <= u.tieCap) {
      // Read 2: the keys of higher bins are selected; the bin's go to the tie list.
      ${overRow(`let above = on0 && (key >> 21u) > (prefix >> 21u);
    let at = takeSlot(above);
    if (above) { cand[cb + at] = vec2u(vb, j); }
    let inBin = on0 && (key >> 21u) == (prefix >> 21u);
    let slot = takeTie(inBin);
    if (inBin) { cand[tb + slot] = vec2u(vb, j); }`)}
      storageBarrier();
      listed = count;
      ${refine(overList)}
    } else {
      ${refine(overRow)}
    }
  }
  // Collect the selected keys (from the list when there is one), sort, write.
  if (listed > 0u) {
    ${overList(collect('takeSlot'))}
  } else if (every) {
    ${overRow(collect('takeEvery'))}
  } else {
    ${overRow(collect('takeSlot'))}
  }
  workgroupBarrier();
  sortAndWrite(cb, min(workgroupUniformLoad(&taken), u.kc), (r - u.row0) * u.k, lid);
  if (lid == 0u) { nanAt[r - u.row0] = nanIndex(atomicLoad(&nanFirst)); }
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
    const tieCap = Math.min(s, TIE_CAP);
    const [start, end] = step.rows;
    const per = Math.max(1, Math.min(end - start, Math.floor(LIST_BUDGET / ((cap + tieCap) * 8))));
    const cand = enc.scratch(per * (cap + tieCap) * 8, `top-k candidate and tie lists [${per}, ${cap} + ${tieCap}]`);
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
        u32('cap', cap), u32('tieCap', tieCap), u32('kc', Math.min(k, s)), u32('nanLowest', a.nanLowest ? 1 : 0),
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
