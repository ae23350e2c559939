/**
 * Sparse attention on the GPU (the plan of `sparseAttention`), FlashMLA's
 * sparse interface, in two dispatches:
 *
 * 1. gather, one workgroup per (row, kv head): the k slots, invalid ones
 *    (negative or >= s) made a sentinel, sorted ascending; unless
 *    `assumeUnique`, repeats become sentinels too and a second sort packs
 *    the distinct keys first. So each distinct valid key counts once, and the
 *    key order (hence the float sums) is the same on every run.
 * 2. attend, one workgroup per (row, kv head, tile of up to 16 query heads
 *    of the group): an online softmax over blocks of 32 gathered keys. The
 *    block's logits are a small GEMM of the heads by the keys tiled over dqk
 *    in workgroup memory; each thread keeps a slice of dV of one head's
 *    accumulator in registers and rescales it when the head's max grows.
 *
 * A query with no valid key writes out = 0, lse = +Infinity and
 * maxLogits = -Infinity (FlashMLA's convention). The serving forms arrive as
 * the plan's per-row position ranges [lo, hi) (windows, ragged batches),
 * `base` (ragged: the kv row of position 0), `topkLength` and `attnSink`;
 * a paged kv cache is the flat [slots, hkv, dqk] its indices name.
 */
import type { Step } from '../../plan.js';
import { f32, nextPow2, u32, type Dispatch, type Encoder, type GpuProgram } from '../program.js';
import { WG, bitonicWgsl } from './wgsl.js';

const BLOCK = 32;
const DCHUNK = 64;
const SENTINEL = 0x7fffffff;

function gatherWgsl(ranged: boolean, lengths: boolean): string {
  const ranges = ranged ? 'first = lo[r];\n  last = hi[r];' : '';
  const lengthsText = lengths ? 'slots = u32(topkLength[r]);' : '';
  return `
const SENTINEL = ${SENTINEL};
var<workgroup> distinct: atomic<u32>;
fn ascending(a: i32, b: i32) -> bool { return a < b; }
${bitonicWgsl('sortList', 'lists', 'ascending')}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = groupIndex(wid, nwg);
  if (g >= u.groups) { return; }
  let r = u.rowStart + g / u.hkv;
  let pair = r * u.hkv + g % u.hkv;
  let a = g * 2u * u.p;
  let b = a + u.p;
  // Positions the row may name, and the slots it reads.
  var first = 0;
  var last = i32(u.s);
  ${ranges}
  var slots = u.k;
  ${lengthsText}
  if (lid == 0u) { atomicStore(&distinct, 0u); }
  for (var i = lid; i < u.p; i += ${WG}u) {
    var j = SENTINEL;
    if (i < slots) {
      let v = indices[pair * u.k + i];
      if (v >= first && v < last) { j = v; }
    }
    lists[a + i] = j;
  }
  storageBarrier();
  sortList(a, u.p, lid);
  for (var i = lid; i < u.p; i += ${WG}u) {
    let j = lists[a + i];
    let keep = j != SENTINEL && (u.unique == 1u || i == 0u || lists[a + i - 1u] != j);
    lists[b + i] = select(SENTINEL, j, keep);
    if (keep) { atomicAdd(&distinct, 1u); }
  }
  storageBarrier();
  if (u.unique == 0u) { sortList(b, u.p, lid); }
  workgroupBarrier();
  if (lid == 0u) { counts[g] = atomicLoad(&distinct); }
}
`;
}

function attendWgsl(heads: number, dimsPerThread: number, based: boolean, sunk: boolean): string {
  const threadsPerHead = WG / heads;
  return `
const HT = ${heads}u;
const DT = ${threadsPerHead}u;
const DPT = ${dimsPerThread}u;
const BLOCK = ${BLOCK}u;
const DCHUNK = ${DCHUNK}u;
var<workgroup> Qs: array<array<f32, ${DCHUNK}>, ${heads}>;
var<workgroup> Kc: array<array<f32, ${DCHUNK + 1}>, ${BLOCK}>;
var<workgroup> L: array<array<f32, ${BLOCK}>, ${heads}>;
var<workgroup> blockKeys: array<u32, ${BLOCK}>;
var<workgroup> runMax: array<f32, ${heads}>;
var<workgroup> runSum: array<f32, ${heads}>;
var<workgroup> rescale: array<f32, ${heads}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let gi = groupIndex(wid, nwg);
  if (gi >= u.groups) { return; }
  let tile = gi % u.headTiles;
  let pairLocal = gi / u.headTiles;
  let r = u.rowStart + pairLocal / u.hkv;
  let kvh = pairLocal % u.hkv;
  let list = pairLocal * 2u * u.p + u.p;
  let n = counts[pairLocal];
  let group = u.hq / u.hkv;
  let h0 = kvh * group + tile * HT;
  let nh = min(HT, group - tile * HT);
  let hl = lid / DT;
  let ds = lid % DT;
  var acc: array<f32, DPT>;
  let shift = ${based ? 'base[r]' : '0'};
  if (lid < HT) {
    runMax[lid] = negInf();
    runSum[lid] = 0.0;
  }
  for (var first = 0u; first < n; first += BLOCK) {
    let count = min(BLOCK, n - first);
    workgroupBarrier();
    if (lid < BLOCK) { blockKeys[lid] = u32(lists[list + first + min(lid, count - 1u)] + shift); }
    for (var i = lid; i < HT * BLOCK; i += ${WG}u) { L[i / BLOCK][i % BLOCK] = 0.0; }
    workgroupBarrier();
    // Logits of the block: heads x keys, dqk a chunk at a time.
    for (var e0 = 0u; e0 < u.dqk; e0 += DCHUNK) {
      for (var i = lid; i < HT * DCHUNK; i += ${WG}u) {
        let hh = i / DCHUNK;
        let e = e0 + i % DCHUNK;
        var v = 0.0;
        if (hh < nh && e < u.dqk) { v = q[((r * u.hq) + h0 + hh) * u.dqk + e]; }
        Qs[hh][i % DCHUNK] = v;
      }
      for (var i = lid; i < BLOCK * DCHUNK; i += ${WG}u) {
        let kb = i / DCHUNK;
        let e = e0 + i % DCHUNK;
        var v = 0.0;
        if (kb < count && e < u.dqk) { v = kv[(blockKeys[kb] * u.hkv + kvh) * u.dqk + e]; }
        Kc[kb][i % DCHUNK] = v;
      }
      workgroupBarrier();
      for (var i = lid; i < HT * BLOCK; i += ${WG}u) {
        let hh = i / BLOCK;
        let kb = i % BLOCK;
        var sum = 0.0;
        for (var e = 0u; e < DCHUNK; e++) { sum += Qs[hh][e] * Kc[kb][e]; }
        L[hh][kb] += sum;
      }
      workgroupBarrier();
    }
    // Online softmax: one thread per head.
    if (lid < nh) {
      var blockMax = negInf();
      for (var kb = 0u; kb < count; kb++) {
        let l = L[lid][kb] * u.smScale;
        L[lid][kb] = l;
        if (l > blockMax) { blockMax = l; }
      }
      let old = runMax[lid];
      var scale = 1.0;
      if (blockMax > old) {
        scale = select(exp(old - blockMax), 0.0, old == negInf());
        runMax[lid] = blockMax;
      }
      let m = runMax[lid];
      var total = 0.0;
      for (var kb = 0u; kb < count; kb++) {
        var p = 0.0;
        if (m != negInf()) { p = exp(L[lid][kb] - m); }
        L[lid][kb] = p;
        total += p;
      }
      runSum[lid] = runSum[lid] * scale + total;
      rescale[lid] = scale;
    }
    workgroupBarrier();
    if (hl < nh) {
      let scale = rescale[hl];
      for (var x = 0u; x < DPT; x++) {
        let d = ds + x * DT;
        if (d < u.dV) {
          var a = acc[x] * scale;
          for (var kb = 0u; kb < count; kb++) {
            a += L[hl][kb] * kv[(blockKeys[kb] * u.hkv + kvh) * u.dqk + d];
          }
          acc[x] = a;
        }
      }
    }
  }
  workgroupBarrier();
  if (hl < nh) {
    let h = h0 + hl;
    let row = (r - u.rowOffset) * u.hq + h;
    let sum = runSum[hl];
    let empty = !(sum > 0.0);
    // The sink joins the denominator of out only (FlashMLA's attn_sink); lse and maxLogits are the keys'.
    let denominator = ${sunk ? 'sum + exp(attnSink[h] - runMax[hl])' : 'sum'};
    for (var x = 0u; x < DPT; x++) {
      let d = ds + x * DT;
      if (d < u.dV) { out[row * u.dV + d] = select(acc[x] / denominator, 0.0, empty); }
    }
    if (ds == 0u) {
      lse[row] = select(runMax[hl] + log(sum), posInf(), empty);
      maxLogits[row] = select(runMax[hl], negInf(), empty);
    }
  }
}
`;
}

const sparseProgram: GpuProgram = {
  args: [
    'q', 'kv', 'indices', 'out', 'lse', 'maxLogits', 's', 'hq', 'hkv', 'dqk', 'dV', 'k', 'smScale', 'assumeUnique', 'rowOffset', 'simd',
    'headChunk', 'lo', 'hi', 'base', 'topkLength', 'attnSink',
  ],
  encode(step: Step, enc: Encoder): Dispatch[] {
    const a = step.args;
    const hq = a.hq as number, hkv = a.hkv as number, dqk = a.dqk as number, dV = a.dV as number, k = a.k as number;
    const group = hq / hkv;
    // The plan's steps run over (row, kv head, head chunk) tiles of the CPU kernel; here rows.
    const tilesPerRow = hkv * Math.ceil(group / (a.headChunk as number));
    const start = a.rowOffset as number, end = step.rows[1] / tilesPerRow;
    const pairs = (end - start) * hkv;
    const p = nextPow2(k);
    const heads = Math.min(16, nextPow2(group));
    const headTiles = Math.ceil(group / heads);
    const dimsPerThread = Math.ceil(dV / (WG / heads));
    const ranged = a.lo !== null, based = a.base !== null, lengths = a.topkLength !== null, sunk = a.attnSink !== null;
    const lists = enc.scratch(pairs * 2 * p * 4, `sparse attention key lists [${pairs}, 2, ${p}]`);
    const counts = enc.scratch(pairs * 4, 'sparse attention key counts');
    const unique = a.assumeUnique ? 1 : 0;
    const shared = [u32('rowStart', start), u32('hkv', hkv), u32('p', p), u32('unique', unique)];
    const flags = (xs: [boolean, string][]) => xs.filter(([on]) => on).map(([, n]) => n).join('.');
    return [
      {
        key: `attention.sparse.gather.${flags([[ranged, 'ranged'], [lengths, 'lengths']])}`,
        wgsl: () => gatherWgsl(ranged, lengths),
        bindings: [
          { name: 'indices', type: 'array<i32>', access: 'read', buffer: enc.buffer('indices') },
          ...(ranged ? [
            { name: 'lo', type: 'array<i32>', access: 'read' as const, buffer: enc.buffer('lo') },
            { name: 'hi', type: 'array<i32>', access: 'read' as const, buffer: enc.buffer('hi') },
          ] : []),
          ...(lengths ? [{ name: 'topkLength', type: 'array<i32>', access: 'read' as const, buffer: enc.buffer('topkLength') }] : []),
          { name: 'lists', type: 'array<i32>', access: 'read_write', buffer: lists },
          { name: 'counts', type: 'array<u32>', access: 'read_write', buffer: counts },
        ],
        uniforms: [...shared, u32('k', k), u32('s', a.s as number)],
        groups: pairs,
      },
      {
        key: `attention.sparse.attend.${heads}.${dimsPerThread}.${flags([[based, 'based'], [sunk, 'sink']])}`,
        wgsl: () => attendWgsl(heads, dimsPerThread, based, sunk),
        bindings: [
          { name: 'q', type: 'array<f32>', access: 'read', buffer: enc.buffer('q') },
          { name: 'kv', type: 'array<f32>', access: 'read', buffer: enc.buffer('kv') },
          { name: 'lists', type: 'array<i32>', access: 'read', buffer: lists },
          { name: 'counts', type: 'array<u32>', access: 'read', buffer: counts },
          ...(based ? [{ name: 'base', type: 'array<i32>', access: 'read' as const, buffer: enc.buffer('base') }] : []),
          ...(sunk ? [{ name: 'attnSink', type: 'array<f32>', access: 'read' as const, buffer: enc.buffer('attnSink') }] : []),
          { name: 'out', type: 'array<f32>', access: 'read_write', buffer: enc.buffer('out') },
          { name: 'lse', type: 'array<f32>', access: 'read_write', buffer: enc.buffer('lse') },
          { name: 'maxLogits', type: 'array<f32>', access: 'read_write', buffer: enc.buffer('maxLogits') },
        ],
        uniforms: [
          ...shared, u32('hq', hq), u32('dqk', dqk), u32('dV', dV), u32('headTiles', headTiles),
          u32('rowOffset', start), f32('smScale', a.smScale as number),
        ],
        groups: pairs * headTiles,
      },
    ];
  },
};

export const attentionPrograms: Record<string, GpuProgram> = {
  'attention.sparse': sparseProgram,
};
