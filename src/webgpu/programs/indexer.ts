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
import { clampOffset, f32, i32, u32, unsupported, type Dispatch, type Encoder, type GpuProgram } from '../program.js';
import { TILE_KEYS, TILE_ROWS, WG, eligibleWgsl, scoreTileWgsl, selectWgsl, tileRows } from './wgsl.js';
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

const causalLimitWgsl = `
fn causalLimit(r: u32, offset: i32) -> u32 {
  return u32(clamp(i32(r % u.t) + offset + 1, 0, i32(u.s)));
}
`;

function scoresWgsl(): string {
  return `${scoreTileWgsl}
${causalLimitWgsl}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = groupIndex(wid, nwg);
  if (g >= u.groups) { return; }
  let tile = g / u.keyTiles;
  let j0 = (g % u.keyTiles) * TILE_KEYS;
  let r0 = tiles[tile * 3u];
  let nr = tiles[tile * 3u + 1u];
  let bi = tiles[tile * 3u + 2u];
  // A tile no row of which sees a key (causal) computes nothing.
  if (u.causal == 0u || j0 < causalLimit(r0 + nr - 1u, u.offset)) { scoreTile(r0, nr, bi, j0, lid); }
  workgroupBarrier();
  for (var i = lid; i < nr * TILE_KEYS; i += ${WG}u) {
    let lr = i / TILE_KEYS;
    let j = j0 + i % TILE_KEYS;
    let r = r0 + lr;
    if (j < u.s) {
      var v = S[lr][i % TILE_KEYS];
      if (u.causal == 1u && j >= causalLimit(r, u.offset)) { v = negInf(); }
      out[(r - u.rowStart) * u.s + j] = v;
    }
  }
}
`;
}

const scoresProgram: GpuProgram = {
  args: ['q', 'k', 'kq', 'kScales', 'w', 'out', 't', 's', 'h', 'd', 'rowStart', 'nRows', 'keyBlock', 'weightScale', 'causal', 'offset'],
  encode(step: Step, enc: Encoder): Dispatch[] {
    const a = step.args;
    const t = a.t as number, s = a.s as number, h = a.h as number, d = a.d as number;
    const rowStart = a.rowStart as number, nRows = a.nRows as number;
    const tiles = scoreTiles(rowStart, rowStart + nRows, t, tileRows(h));
    const nTiles = nRows === 0 ? 0 : tiles.length / 3;
    const keyTiles = Math.ceil(s / TILE_KEYS);
    return [{
      key: 'indexer.scores',
      wgsl: scoresWgsl,
      bindings: [
        { name: 'q', type: 'array<f32>', access: 'read', buffer: enc.buffer('q') },
        { name: 'keys', type: 'array<f32>', access: 'read', buffer: enc.buffer('k') },
        { name: 'w', type: 'array<f32>', access: 'read', buffer: enc.buffer('w') },
        { name: 'tiles', type: 'array<u32>', access: 'read', buffer: enc.data(tiles, 'score tiles') },
        { name: 'out', type: 'array<f32>', access: 'read_write', buffer: enc.buffer('out') },
      ],
      uniforms: [
        u32('t', t), u32('s', s), u32('h', h), u32('d', d), u32('rowStart', rowStart), u32('keyTiles', keyTiles),
        f32('weightScale', a.weightScale as number), u32('causal', a.causal ? 1 : 0), i32('offset', clampOffset(a.offset as number, t, s)),
      ],
      groups: nTiles * keyTiles,
    }];
  },
};

/** int8 scores are not on the GPU yet: refused by name rather than run in float32. */
const int8Scores: GpuProgram = {
  args: scoresProgram.args,
  encode(): Dispatch[] {
    throw unsupported("indexerScores precision 'int8'");
  },
};

function fusedWgsl(form: 'additive' | 'bool' | 'bits' | null): string {
  return `${scoreTileWgsl}
${selectWgsl(TILE_ROWS)}
${eligibleWgsl(form)}
${causalLimitWgsl}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = groupIndex(wid, nwg);
  if (g >= u.groups) { return; }
  let r0 = tiles[g * 3u];
  let nr = tiles[g * 3u + 1u];
  let bi = tiles[g * 3u + 2u];
  let cbFirst = (r0 - u.rowStart) * u.cap;
  // Keys past the last row's limit are eligible for no row of the tile.
  let n = causalLimit(r0 + nr - 1u, u.offset);
  selectBegin(lid);
  for (var j0 = 0u; j0 < n; j0 += TILE_KEYS) {
    scoreTile(r0, nr, bi, j0, lid);
    selectMakeRoom(nr, cbFirst, TILE_KEYS, lid);
    for (var i = lid; i < nr * TILE_KEYS; i += ${WG}u) {
      let lr = i / TILE_KEYS;
      let j = j0 + i % TILE_KEYS;
      let r = r0 + lr;
      if (j < causalLimit(r, u.offset) && maskEligible(r, j)) {
        var v = S[lr][i % TILE_KEYS];
        if (u.scoreCausal == 1u && j >= causalLimit(r, u.scoreOffset)) { v = negInf(); }
        selectOffer(lr, cbFirst, j, bitcast<u32>(v));
      }
    }
  }
  selectFinish(nr, cbFirst, r0 - u.row0, lid);
}
`;
}

/**
 * The fused indexer + top-k step (built by the backend from the two plans'
 * steps, see webgpu/fuse.ts): args of the scores step (q, keys, w, h, d,
 * weightScale, scoreCausal, scoreOffset) and of the top-k step (t, s, topK,
 * row0, values, indices, nanAt, nanLowest, sorted, causalOffset, mask, maskForm).
 * Memory: the outputs and one candidate list per row, O(t * k).
 */
const fusedProgram: GpuProgram = {
  args: ['q', 'keys', 'w', 't', 's', 'h', 'd', 'weightScale', 'scoreCausal', 'scoreOffset', 'topK', 'row0', 'values', 'indices', 'nanAt', 'nanLowest', 'sorted', 'causalOffset', 'mask', 'maskForm'],
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
        { name: 'q', type: 'array<f32>', access: 'read', buffer: enc.buffer('q') },
        { name: 'keys', type: 'array<f32>', access: 'read', buffer: enc.buffer('keys') },
        { name: 'w', type: 'array<f32>', access: 'read', buffer: enc.buffer('w') },
        { name: 'tiles', type: 'array<u32>', access: 'read', buffer: enc.data(tiles, 'score tiles') },
        ...(form === null ? [] : [{ name: 'mask', type: 'array<u32>', access: 'read' as const, buffer: enc.buffer('mask') }]),
        { name: 'cand', type: 'array<vec2u>', access: 'read_write', buffer: cand },
        { name: 'values', type: 'array<u32>', access: 'read_write', buffer: enc.buffer('values') },
        { name: 'indices', type: 'array<i32>', access: 'read_write', buffer: enc.buffer('indices') },
        { name: 'nanAt', type: 'array<i32>', access: 'read_write', buffer: enc.buffer('nanAt') },
      ],
      uniforms: [
        u32('t', t), u32('s', s), u32('h', h), u32('d', d), f32('weightScale', a.weightScale as number),
        u32('scoreCausal', a.scoreCausal ? 1 : 0), i32('scoreOffset', clampOffset(a.scoreOffset as number, t, s)),
        i32('offset', a.causalOffset === null ? s : clampOffset(a.causalOffset as number, t, s)),
        u32('rowStart', start), u32('row0', a.row0 as number), u32('k', k), u32('cap', cap), u32('kc', Math.min(k, s)),
        u32('nanLowest', a.nanLowest ? 1 : 0),
      ],
      groups: end === start ? 0 : tiles.length / 3,
    }];
  },
};

export const indexerPrograms: Record<string, GpuProgram> = {
  'indexer.scoresWasm': scoresProgram,
  'indexer.scoresTs': scoresProgram,
  'indexer.scoresInt8Wasm': int8Scores,
  'indexer.scoresInt8Ts': int8Scores,
  'webgpu.indexerTopk': fusedProgram,
};
