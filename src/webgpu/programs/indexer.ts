/**
 * The lightning indexer on the GPU: `indexerScores` (the plan's float32
 * kernels) and the fused `indexerTopk`, which streams key tiles through the
 * running top-k so the [t, s] scores never exist. Both compute their scores
 * with the same tile (wgsl.ts `scoreTileWgsl`), so the fused selection sees
 * exactly the scores indexerScores writes.
 *
 * Tiles hold whole query rows of one batch (their keys are that batch's), up
 * to `tileRows(h)` of them; the tile table is computed here and uploaded.
 */
import type { Step } from '../../plan.js';
import { f32, u32, unsupported, type Dispatch, type Encoder, type GpuProgram } from '../program.js';
import { TILE_KEYS, TILE_ROWS, WG, eligibleWgsl, scoreTileWgsl, selectWgsl, tileRangeWgsl, tileRows } from './wgsl.js';
import { checkMaskForm, listCapacity } from './topk.js';

/** [r0, rows, batch] per tile, for rows [start, end) of t per batch, `per` rows a tile at most. */
export function scoreTiles(start: number, end: number, t: number, per: number): Uint32Array {
  const tiles: number[] = [];
  for (let r = start; r < end; ) {
    const batchEnd = (Math.floor(r / t) + 1) * t;
    const n = Math.min(per, end - r, batchEnd - r);
    tiles.push(r, n, Math.floor(r / t));
    r += n;
  }
  return new Uint32Array(tiles.length ? tiles : [0, 0, 0]);
}

function scoresWgsl(): string {
  return `${scoreTileWgsl}
${tileRangeWgsl}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = groupIndex(wid, nwg);
  if (g >= u.groups) { return; }
  let tile = g / u.keyTiles;
  let j0 = (g % u.keyTiles) * TILE_KEYS;
  let r0 = tiles[tile * 3u];
  let nr = tiles[tile * 3u + 1u];
  let bi = tiles[tile * 3u + 2u];
  // A tile none of whose rows sees one of its positions computes nothing.
  let range = tileRange(r0, nr, lid);
  if (j0 < range.y && j0 + TILE_KEYS > range.x) { scoreTile(r0, nr, bi, j0, lid); }
  workgroupBarrier();
  for (var i = lid; i < nr * TILE_KEYS; i += ${WG}u) {
    let lr = i / TILE_KEYS;
    let j = j0 + i % TILE_KEYS;
    let r = r0 + lr;
    if (i32(j) >= keyLo[r] && i32(j) < keyHi[r]) { out[(r - u.rowStart) * u.width + j] = S[lr][i % TILE_KEYS]; }
  }
}
`;
}

/** Bindings and uniforms the score tile reads, from a step's arguments. */
function tileInputs(enc: Encoder, keys: string) {
  return [
    { name: 'q', type: 'array<f32>', access: 'read' as const, buffer: enc.buffer('q') },
    { name: 'keys', type: 'array<f32>', access: 'read' as const, buffer: enc.buffer(keys) },
    { name: 'w', type: 'array<f32>', access: 'read' as const, buffer: enc.buffer('w') },
    { name: 'keyLo', type: 'array<i32>', access: 'read' as const, buffer: enc.buffer('lo') },
    { name: 'keyHi', type: 'array<i32>', access: 'read' as const, buffer: enc.buffer('hi') },
  ];
}

/**
 * The plan's float32 score step. Its args carry per-row position ranges
 * [lo, hi) (causal offset, windows, seqLens); a ragged batch (base), a paged
 * cache (blockTable) and sequence key ends (keyEnd) are not implemented
 * here yet, so those args are absent from `args` and refused.
 */
const SCORE_ARGS = ['q', 'k', 'kq', 'kScales', 'k8', 'q8', 'qScales', 'w', 'out', 't', 'h', 'd', 'width', 'rowStart', 'nRows', 'keyBlock', 'weightScale', 'lo', 'hi', 'pageSize', 'maxBlocks'];

const scoresProgram: GpuProgram = {
  args: SCORE_ARGS,
  encode(step: Step, enc: Encoder): Dispatch[] {
    const a = step.args;
    const t = a.t as number, width = a.width as number, h = a.h as number, d = a.d as number;
    const rowStart = a.rowStart as number, nRows = a.nRows as number;
    const tiles = scoreTiles(rowStart, rowStart + nRows, t, tileRows(h));
    const nTiles = nRows === 0 ? 0 : tiles.length / 3;
    const keyTiles = Math.ceil(width / TILE_KEYS);
    return [{
      key: 'indexer.scores',
      wgsl: scoresWgsl,
      bindings: [
        ...tileInputs(enc, 'k'),
        { name: 'tiles', type: 'array<u32>', access: 'read', buffer: enc.data(tiles, 'score tiles') },
        { name: 'out', type: 'array<f32>', access: 'read_write', buffer: enc.buffer('out') },
      ],
      uniforms: [
        u32('width', width), u32('pageSize', a.pageSize as number), u32('h', h), u32('d', d), u32('rowStart', rowStart),
        u32('keyTiles', keyTiles), f32('weightScale', a.weightScale as number),
      ],
      groups: nTiles * keyTiles,
    }];
  },
};

/** -Infinity at the positions a row does not see (the score step writes the others). */
const fillOutsideProgram: GpuProgram = {
  args: SCORE_ARGS,
  encode(step: Step, enc: Encoder): Dispatch[] {
    const a = step.args;
    const [start, end] = step.rows;
    const width = a.width as number;
    const n = (end - start) * width;
    return [{
      key: 'indexer.fillOutside',
      wgsl: () => `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = groupIndex(wid, nwg);
  if (g >= u.groups) { return; }
  let i = g * ${WG}u + lid;
  if (i >= u.n) { return; }
  let r = u.first + i / u.width;
  let j = i32(i % u.width);
  if (j < keyLo[r] || j >= max(keyLo[r], keyHi[r])) { out[(r - u.rowStart) * u.width + u32(j)] = negInf(); }
}
`,
      bindings: [
        { name: 'keyLo', type: 'array<i32>', access: 'read', buffer: enc.buffer('lo') },
        { name: 'keyHi', type: 'array<i32>', access: 'read', buffer: enc.buffer('hi') },
        { name: 'out', type: 'array<f32>', access: 'read_write', buffer: enc.buffer('out') },
      ],
      uniforms: [u32('first', start), u32('n', n), u32('width', width), u32('rowStart', a.rowStart as number)],
      groups: Math.ceil(n / WG),
    }];
  },
};

/** Quantized scores are not on the GPU yet: refused by name rather than run in float32. */
function refusedScores(precision: string): GpuProgram {
  return {
    // Every argument of the quantized plans' steps, so that the precision is what the error names.
    args: [...SCORE_ARGS, 'base', 'blockTable', 'keyEnd', 'hadamard', 'ue8m0', 'data'],
    encode(): Dispatch[] {
      throw unsupported(`indexerScores precision '${precision}'`);
    },
  };
}

function fusedWgsl(form: 'additive' | 'bool' | 'bits' | null): string {
  return `${scoreTileWgsl}
${tileRangeWgsl}
${selectWgsl(TILE_ROWS)}
${eligibleWgsl(form)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = groupIndex(wid, nwg);
  if (g >= u.groups) { return; }
  let r0 = tiles[g * 3u];
  let nr = tiles[g * 3u + 1u];
  let bi = tiles[g * 3u + 2u];
  let cbFirst = (r0 - u.rowStart) * u.cap;
  // Only positions some row of the tile sees: [lo, hi) per row, the same ranges the scores use.
  let range = tileRange(r0, nr, lid);
  selectBegin(lid);
  for (var j0 = (range.x / TILE_KEYS) * TILE_KEYS; j0 < range.y; j0 += TILE_KEYS) {
    scoreTile(r0, nr, bi, j0, lid);
    selectMakeRoom(nr, cbFirst, TILE_KEYS, lid);
    for (var i = lid; i < nr * TILE_KEYS; i += ${WG}u) {
      let lr = i / TILE_KEYS;
      let j = j0 + i % TILE_KEYS;
      let r = r0 + lr;
      if (i32(j) >= keyLo[r] && i32(j) < keyHi[r] && maskEligible(r, j)) {
        selectOffer(lr, cbFirst, j, bitcast<u32>(S[lr][i % TILE_KEYS]));
      }
    }
  }
  selectFinish(nr, cbFirst, r0 - u.row0, lid);
}
`;
}

/**
 * The fused indexer + top-k step (built by the backend from the two plans'
 * steps, see webgpu/fused.ts): args of the scores step (q, keys, w, h, d,
 * width, pageSize, weightScale, lo, hi) and of the top-k step (t, s, topK,
 * row0, values, indices, nanAt, nanLowest, sorted, mask, maskForm). Both
 * plans come from the same key options, so the rows' score ranges are
 * their top-k eligibility (fused.ts checks it).
 * Memory: the outputs and one candidate list per row, O(t * k).
 */
const fusedProgram: GpuProgram = {
  args: ['q', 'keys', 'w', 't', 's', 'h', 'd', 'width', 'pageSize', 'weightScale', 'lo', 'hi', 'topK', 'row0', 'values', 'indices', 'nanAt', 'nanLowest', 'sorted', 'mask', 'maskForm'],
  encode(step: Step, enc: Encoder): Dispatch[] {
    const a = step.args;
    const form = checkMaskForm(a.maskForm);
    const t = a.t as number, s = a.s as number, h = a.h as number, d = a.d as number, k = a.topK as number;
    const [start, end] = step.rows;
    const cap = listCapacity(k, s, TILE_KEYS);
    const tiles = scoreTiles(start, end, t, tileRows(h));
    const cand = enc.scratch((end - start) * cap * 8, `indexerTopk candidate lists [${end - start}, ${cap}]`);
    return [{
      key: `indexer.topk.${form ?? 'all'}`,
      wgsl: () => fusedWgsl(form),
      bindings: [
        ...tileInputs(enc, 'keys'),
        { name: 'tiles', type: 'array<u32>', access: 'read', buffer: enc.data(tiles, 'score tiles') },
        ...(form === null ? [] : [{ name: 'mask', type: 'array<u32>', access: 'read' as const, buffer: enc.buffer('mask') }]),
        { name: 'cand', type: 'array<vec2u>', access: 'read_write', buffer: cand },
        { name: 'values', type: 'array<u32>', access: 'read_write', buffer: enc.buffer('values') },
        { name: 'indices', type: 'array<i32>', access: 'read_write', buffer: enc.buffer('indices') },
        { name: 'nanAt', type: 'array<i32>', access: 'read_write', buffer: enc.buffer('nanAt') },
      ],
      uniforms: [
        u32('s', s), u32('width', a.width as number), u32('pageSize', a.pageSize as number), u32('h', h), u32('d', d),
        f32('weightScale', a.weightScale as number), u32('rowStart', start), u32('row0', a.row0 as number), u32('k', k),
        u32('cap', cap), u32('kc', Math.min(k, s)), u32('nanLowest', a.nanLowest ? 1 : 0),
      ],
      groups: end === start ? 0 : tiles.length / 3,
    }];
  },
};

export const indexerPrograms: Record<string, GpuProgram> = {
  'indexer.scoresWasm': scoresProgram,
  'indexer.scoresTs': scoresProgram,
  'indexer.fillOutside': fillOutsideProgram,
  'indexer.scoresInt8Wasm': refusedScores('int8'),
  'indexer.scoresInt8Ts': refusedScores('int8'),
  'indexer.scoresFp8Wasm': refusedScores('fp8'),
  'indexer.scoresFp8Ts': refusedScores('fp8'),
  'indexer.fp8.queries': refusedScores('fp8'),
  'indexer.fp8.keys': refusedScores('fp8'),
  'webgpu.indexerTopk': fusedProgram,
};
