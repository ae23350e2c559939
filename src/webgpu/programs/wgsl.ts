/**
 * WGSL shared by several programs: the running top-k selection, a bitonic
 * sort, mask eligibility and a score tile's key range. Each is a function of
 * the shader text only; sizes come from the uniforms of the program that
 * includes it. (The indexer's score tile is in score-tile.ts.)
 */

import { nextPow2 } from '../program.js';

export const WG = 256;

/**
 * The entry point of a program that runs one thread per element: `body`
 * runs with `e`, the element's number, for e < u.n (the dispatch has
 * ceil(n / WG) workgroups); `prelude` is declared before it.
 */
export function perElementWgsl(body: string, prelude = ''): string {
  return `${prelude}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = groupIndex(wid, nwg);
  if (g >= u.groups) { return; }
  let e = g * ${WG}u + lid;
  if (e >= u.n) { return; }
  ${body}
}
`;
}

/**
 * Lane-level helpers whose result is the same with or without subgroups;
 * with them, a subgroup's lanes share one atomic instead of one each. Every
 * call must be in workgroup-uniform control flow (all the workgroup's
 * invocations call it; lanes without a contribution pass false), as subgroup
 * operations need.
 */
export interface Lanes {
  subgroups: boolean;
  /** `fn <name>(on: bool) -> u32`: a distinct slot (old value of the workgroup atomic counter plus the lane's rank) for each lane with on. */
  counter(name: string, atomic: string): string;
}

export function lanes(subgroups: boolean): Lanes {
  if (!subgroups) {
    return {
      subgroups,
      counter: (name, atomic) => `fn ${name}(on: bool) -> u32 {
  if (on) { return atomicAdd(&${atomic}, 1u); }
  return 0u;
}
`,
    };
  }
  return {
    subgroups,
    counter: (name, atomic) => `fn ${name}(on: bool) -> u32 {
  let one = select(0u, 1u, on);
  let n = subgroupAdd(one);
  let rank = subgroupExclusiveAdd(one);
  var first = 0u;
  if (subgroupElect() && n > 0u) { first = atomicAdd(&${atomic}, n); }
  return subgroupBroadcastFirst(first) + rank;
}
`,
  };
}

/**
 * The positions some row of a tile sees: [tileLo, tileHi) over the rows'
 * ranges [keyLo(r), keyHi(r)), as workgroup-uniform values (loop bounds
 * around barriers must be).
 */
export const tileRangeWgsl = `
var<workgroup> tileLo: u32;
var<workgroup> tileHi: u32;
fn tileRange(r0: u32, nr: u32, lid: u32) -> vec2u {
  if (lid == 0u) {
    var lo = 0xffffffffu;
    var hi = 0u;
    for (var lr = 0u; lr < nr; lr++) {
      let a = u32(keyLo(r0 + lr));
      let b = u32(keyHi(r0 + lr));
      if (b > a) {
        lo = min(lo, a);
        hi = max(hi, b);
      }
    }
    tileLo = lo;
    tileHi = hi;
  }
  return vec2u(workgroupUniformLoad(&tileLo), workgroupUniformLoad(&tileHi));
}
`;

/** The candidate list capacity of the running top-k for k slots over s keys when rows take `chunk` keys at a time. */
export function listCapacity(k: number, s: number, chunk: number): number {
  return nextPow2(Math.min(k, s) + chunk);
}

/**
 * The running top-k of the fused indexer top-k, whose rows' scores arrive a
 * tile at a time, in `cand`: per row a list of (value bits, key
 * index) of capacity u.cap (a power of two), with u.kc = min(k, s) the most
 * slots a row can fill. Keys stream in ascending order, a chunk of at most
 * CHUNK keys per row at a time; before a chunk, a row whose list could
 * overflow is compacted (sorted, cut to its kc best, whose last sets the
 * row's threshold). After a compaction only keys whose order key is above
 * the threshold are appended: a later key equal to it has a larger index,
 * so it ranks below every kept one. The final sort orders each row by
 * descending value, ties by ascending index (jax.lax.top_k); -0 equals +0;
 * NaN (nan: 'lowest') ranks below -Infinity. Sorting is bitonic in the
 * row's slice of `cand` (a storage buffer: at k = 2048 the list is 32 KiB,
 * more than workgroup memory holds beside the rest).
 *
 * The compaction sorts rather than radix-selects (as topk.ts does over a
 * whole row): a radix compaction measured 1.1-1.9x slower end to end on
 * SwiftShader, which runs the code of a branch not taken by a workgroup
 * (the compaction, checked before every tile of every row) with its lanes
 * masked off instead of skipping it (docs/webgpu.md).
 *
 * With subgroups the offers of a subgroup share one atomic; the lists hold the
 * same entries in another order, and every compaction and the final sort
 * order them by the same total order, so the result is the same.
 *
 * Needs uniforms cap, kc, k, nanLowest and bindings `cand: array<vec2u>`,
 * `values: array<u32>` (float bits, written exactly), `indices`, `nanAt`;
 * RW is the most rows one workgroup selects for.
 */
export function selectWgsl(rowsPerGroup: number, l: Lanes): string {
  // With subgroups, a subgroup whose takers are all of one row takes their slots with one atomic.
  const offer = l.subgroups ? `let lead = subgroupBroadcastFirst(lr);
  let oneRow = subgroupAll(!take || lr == lead);
  let one = select(0u, 1u, take && oneRow);
  let n = subgroupAdd(one);
  let rank = subgroupExclusiveAdd(one);
  var first = 0u;
  if (subgroupElect() && n > 0u) { first = atomicAdd(&fill[lead], n); }
  first = subgroupBroadcastFirst(first);
  if (take) {
    var at = first + rank;
    if (!oneRow) { at = atomicAdd(&fill[lr], 1u); }
    cand[cbFirst + lr * u.cap + at] = vec2u(vb, j);
  }` : `if (take) {
    let at = atomicAdd(&fill[lr], 1u);
    cand[cbFirst + lr * u.cap + at] = vec2u(vb, j);
  }`;
  return `
const RW = ${rowsPerGroup}u;
${orderWgsl}
var<workgroup> fill: array<atomic<u32>, RW>;
var<workgroup> nanFirst: array<atomic<u32>, RW>;
var<workgroup> cnt: array<u32, RW>;
var<workgroup> thr: array<u32, RW>;
var<workgroup> full: array<u32, RW>;

fn selectBegin(lid: u32) {
  if (lid < RW) {
    atomicStore(&fill[lid], 0u);
    atomicStore(&nanFirst[lid], 0xffffffffu);
    full[lid] = 0u;
    thr[lid] = 0u;
  }
  workgroupBarrier();
}

${candListWgsl}
// Before a chunk of up to 'chunk' keys per row: compacts every row that could overflow.
fn selectMakeRoom(rows: u32, cbFirst: u32, chunk: u32, lid: u32) {
  workgroupBarrier();
  if (lid < RW) { cnt[lid] = atomicLoad(&fill[lid]); }
  for (var lr = 0u; lr < rows; lr++) {
    let c = workgroupUniformLoad(&cnt[lr]);
    if (c + chunk > u.cap) {
      let cb = cbFirst + lr * u.cap;
      padCand(cb, c, u.cap, lid);
      sortCand(cb, u.cap, lid);
      if (lid == 0u) {
        atomicStore(&fill[lr], u.kc);
        thr[lr] = keyOf(cand[cb + u.kc - 1u].x);
        full[lr] = 1u;
      }
    }
  }
  workgroupBarrier();
}

// Offers key j of local row lr with value bits vb when on (an eligible key); call in uniform control flow.
fn selectOffer(on: bool, lr: u32, cbFirst: u32, j: u32, vb: u32) {
  var take = false;
  if (on) {
    if ((vb & 0x7fffffffu) > 0x7f800000u) { atomicMin(&nanFirst[lr], j); }
    take = full[lr] == 0u || keyOf(vb) > thr[lr];
  }
  ${offer}
}

// Sorts each row's list and writes its k slots (-1 / -Infinity past the list) and nanAt.
fn selectFinish(rows: u32, cbFirst: u32, outRow: u32, lid: u32) {
  workgroupBarrier();
  if (lid < RW) { cnt[lid] = atomicLoad(&fill[lid]); }
  for (var lr = 0u; lr < rows; lr++) {
    sortAndWrite(cbFirst + lr * u.cap, workgroupUniformLoad(&cnt[lr]), (outRow + lr) * u.k, lid);
    if (lid == 0u) { nanAt[outRow + lr] = nanIndex(atomicLoad(&nanFirst[lr])); }
  }
}
`;
}

/**
 * A row's list of (value bits, key index) entries in `cand` (both top-k
 * programs): `padCand` fills [c, p) with SENTINEL, `sortAndWrite` sorts the
 * c entries at cb (padded to a power of two) by `before` and writes the
 * row's k slots at o, the first min(c, kc) from the list, then -1 /
 * -Infinity; `nanIndex` is a row's nanAt from its first NaN key (none:
 * 0xffffffff). Needs orderWgsl, uniforms k, kc, nanLowest and bindings cand,
 * values, indices.
 */
export const candListWgsl = `
${bitonicWgsl('sortCand', 'cand', 'before')}
fn padCand(cb: u32, c: u32, p: u32, lid: u32) {
  for (var i = c + lid; i < p; i += ${WG}u) { cand[cb + i] = SENTINEL; }
  storageBarrier();
}

fn sortAndWrite(cb: u32, c: u32, o: u32, lid: u32) {
  var p = 1u;
  if (c > 1u) { p = 1u << (32u - countLeadingZeros(c - 1u)); }
  padCand(cb, c, p, lid);
  sortCand(cb, p, lid);
  for (var i = lid; i < u.k; i += ${WG}u) {
    if (i < min(c, u.kc)) {
      let e = cand[cb + i];
      indices[o + i] = i32(e.y);
      values[o + i] = e.x;
    } else {
      indices[o + i] = -1;
      values[o + i] = 0xff800000u;
    }
  }
}

fn nanIndex(first: u32) -> i32 {
  return select(i32(first), -1, u.nanLowest == 1u || first == 0xffffffffu);
}
`;

/**
 * The top-k order on (value bits, key index) entries: `keyOf` maps a float's
 * bits to an order key (larger value, larger key; -0 = +0; NaN lowest, 0),
 * `before(a, b)`: a ranks first (larger key, or the same key and a smaller
 * index); SENTINEL ranks last.
 */
export const orderWgsl = `
const SENTINEL = vec2u(0x7fc00000u, 0xffffffffu);
fn keyOf(b: u32) -> u32 {
  let mag = b & 0x7fffffffu;
  if (mag > 0x7f800000u) { return 0u; }
  if ((b >> 31u) == 1u) { return 0x80000000u - mag; }
  return 0x80000000u + mag;
}

fn before(a: vec2u, b: vec2u) -> bool {
  let ka = keyOf(a.x);
  let kb = keyOf(b.x);
  return ka > kb || (ka == kb && a.y < b.y);
}
`;

/**
 * A radix pass's histogram in workgroup memory: up to 2048 bins (the first
 * pass of top-k counts 11 bits of the order key, later passes 8), cleared
 * by `histClear(bins)`. `histPick` finds the bin holding the need-th value
 * from the top or the bottom: 256 threads each sum a group of bins, then one
 * thread walks the group sums and one group's bins. `kept(e, t, last)`:
 * entry e is among the selected when the selection's k-th has order key t
 * and, among entries with key t, index `last` is the largest selected.
 * `histAdd(on, bin)` counts a lane's bin, one atomic per key: subgroup-
 * aggregated bins (the lanes sharing a subgroup's smallest or largest bin
 * adding it once) measured 0.69-1.04x of this on lavapipe and SwiftShader
 * (docs/webgpu.md), so they are not used.
 */
export const radixWgsl = `
const HIST_BINS = 2048u;
var<workgroup> hist: array<atomic<u32>, 2048>;
var<workgroup> binSums: array<u32, ${WG}>;
var<workgroup> radix: array<u32, 3>;

fn histClear(bins: u32, lid: u32) {
  workgroupBarrier();
  for (var i = lid; i < bins; i += ${WG}u) { atomicStore(&hist[i], 0u); }
  workgroupBarrier();
}

// [prefix with the picked bin's digit at shift, the rank left within the bin, the bin's count]; bins = groups * per, groups <= ${WG}.
fn histPick(prefix: u32, shift: u32, need: u32, descending: bool, groups: u32, per: u32, lid: u32) -> vec3u {
  workgroupBarrier();
  if (lid < groups) {
    var sum = 0u;
    for (var b = 0u; b < per; b++) { sum += atomicLoad(&hist[lid * per + b]); }
    binSums[lid] = sum;
  }
  workgroupBarrier();
  if (lid == 0u) {
    var cum = 0u;
    var group = 0u;
    for (var i = 0u; i < groups; i++) {
      group = select(i, groups - 1u - i, descending);
      if (cum + binSums[group] >= need) { break; }
      cum += binSums[group];
    }
    var bin = 0u;
    var count = 0u;
    for (var i = 0u; i < per; i++) {
      bin = group * per + select(i, per - 1u - i, descending);
      count = atomicLoad(&hist[bin]);
      if (cum + count >= need) { break; }
      cum += count;
    }
    radix[0] = prefix | (bin << shift);
    radix[1] = need - cum;
    radix[2] = count;
  }
  return vec3u(workgroupUniformLoad(&radix[0]), workgroupUniformLoad(&radix[1]), workgroupUniformLoad(&radix[2]));
}

fn kept(e: vec2u, t: u32, last: u32) -> bool {
  let key = keyOf(e.x);
  return key > t || (key == t && e.y <= last);
}

// Counts bin once for each lane with on.
fn histAdd(on: bool, bin: u32) {
  if (on) { atomicAdd(&hist[bin], 1u); }
}
`;

/**
 * A bitonic sort of `array[base .. base + p)` (p a power of two, uniform) by
 * the order `before(a, b)`, by one workgroup, in storage memory: every
 * compare-exchange stage is followed by a storageBarrier.
 */
export function bitonicWgsl(name: string, array: string, before: string): string {
  return `fn ${name}(base: u32, p: u32, lid: u32) {
  for (var size = 2u; size <= p; size <<= 1u) {
    for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
      for (var i = lid; i < p / 2u; i += ${WG}u) {
        let a = (i / stride) * 2u * stride + i % stride;
        let b = a + stride;
        let x = ${array}[base + a];
        let y = ${array}[base + b];
        if (select(${before}(x, y), ${before}(y, x), (a & size) == 0u)) {
          ${array}[base + a] = y;
          ${array}[base + b] = x;
        }
      }
      storageBarrier();
    }
  }
}
`;
}

/** WGSL of `maskEligible(r, j)` for a top-k eligibility mask form (null: every key). */
export function eligibleWgsl(form: 'additive' | 'bool' | 'bits' | null): string {
  const body = {
    none: 'return true;',
    additive: 'return (bitcast<u32>(mask[r * u.s + j]) & 0x7fffffffu) == 0u;',
    bool: 'let p = r * u.s + j;\n  return ((mask[p >> 2u] >> ((p & 3u) * 8u)) & 0xffu) != 0u;',
    bits: 'return ((mask[r * ((u.s + 31u) >> 5u) + (j >> 5u)] >> (j & 31u)) & 1u) == 1u;',
  }[form ?? 'none'];
  return `fn maskEligible(r: u32, j: u32) -> bool {\n  ${body}\n}\n`;
}
