/**
 * The lightning indexer on the GPU: `indexerScores` (the plan's score
 * kernels in every precision: float32, int8, int7, fp8) and the fused
 * `indexerTopk`, which streams key tiles through the running top-k so the
 * [t, s] scores never exist. Both compute their scores with the same tile
 * (score-tile.ts), so the fused selection sees exactly the scores
 * indexerScores writes. The plan's FP8 quantization steps are in
 * quantize.ts.
 */
import type { Step } from '../../plan.js';
import { u32, type Dispatch, type Encoder, type GpuProgram } from '../program.js';
import { WG, eligibleWgsl, lanes, listCapacity, perElementWgsl, selectWgsl, tileRangeWgsl, type Lanes } from './wgsl.js';
import { TILE_KEYS, TILE_ROWS, scoreSetup } from './score-tile.js';
import { checkMaskForm } from './topk.js';
import { quantizePrograms } from './quantize.js';

function scoresWgsl(tile: string): string {
  return `${tile}
${tileRangeWgsl}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = groupIndex(wid, nwg);
  if (g >= u.groups) { return; }
  let tile = tileAt(g / u.keyTiles);
  let j0 = (g % u.keyTiles) * TILE_KEYS;
  // A tile none of whose rows sees one of its positions computes nothing.
  let range = tileRange(tile.r0, tile.nr, lid);
  if (j0 < range.y && j0 + TILE_KEYS > range.x) { scoreTile(tile, j0, lid); }
  workgroupBarrier();
  for (var i = lid; i < tile.nr * TILE_KEYS; i += ${WG}u) {
    let lr = i / TILE_KEYS;
    let j = j0 + i % TILE_KEYS;
    let r = tile.r0 + lr;
    if (i32(j) >= keyLo(r) && i32(j) < keyHi(r)) { out[(r - u.rowStart) * u.width + j] = tileScore(lr, i % TILE_KEYS); }
  }
}
`;
}

/**
 * The plan's score step, every kernel of it (the WebAssembly and TypeScript
 * kernels of a precision compute the same scores). Its args carry per-row
 * position ranges [lo, hi) (causal offset, windows, seqLens, ragged), the
 * ragged bases, a paged cache's block table and each row's key count.
 */
const SCORE_ARGS = [
  'q', 'k', 'kq', 'kScales', 'k8', 'q8', 'qScales', 'w', 'out', 't', 'h', 'd', 'width', 'rowStart', 'nRows', 'keyBlock', 'weightScale',
  'lo', 'hi', 'base', 'pageSize', 'blockTable', 'maxBlocks', 'keyEnd',
];

const scoresProgram: GpuProgram = {
  args: SCORE_ARGS,
  encode(step: Step, enc: Encoder): Dispatch[] {
    const a = step.args;
    const rowStart = a.rowStart as number, nRows = a.nRows as number, width = a.width as number;
    const setup = scoreSetup(a, step.kernel, enc, rowStart, rowStart + nRows);
    const keyTiles = Math.ceil(width / TILE_KEYS);
    return [...setup.before, {
      key: `indexer.scores.${setup.key}`,
      enables: setup.enables,
      wgsl: () => scoresWgsl(setup.wgsl),
      bindings: [...setup.bindings, { name: 'out', type: 'array<f32>', access: 'read_write', buffer: enc.buffer('out') }],
      uniforms: [...setup.uniforms, u32('width', width), u32('keyTiles', keyTiles)],
      groups: setup.nTiles * keyTiles,
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
      wgsl: () => perElementWgsl(`let r = u.first + e / u.width;
  let j = i32(e % u.width);
  if (j < keyLo[r] || j >= max(keyLo[r], keyHi[r])) { out[(r - u.rowStart) * u.width + u32(j)] = negInf(); }`),
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

function fusedWgsl(tile: string, form: 'additive' | 'bool' | 'bits' | null, l: Lanes): string {
  return `${tile}
${tileRangeWgsl}
${selectWgsl(TILE_ROWS, l)}
${eligibleWgsl(form)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = groupIndex(wid, nwg);
  if (g >= u.groups) { return; }
  let tile = tileAt(g);
  let cbFirst = (tile.r0 - u.rowStart) * u.cap;
  // Only positions some row of the tile sees: [lo, hi) per row, the same ranges the scores use.
  let range = tileRange(tile.r0, tile.nr, lid);
  selectBegin(lid);
  for (var j0 = (range.x / TILE_KEYS) * TILE_KEYS; j0 < range.y; j0 += TILE_KEYS) {
    scoreTile(tile, j0, lid);
    selectMakeRoom(tile.nr, cbFirst, TILE_KEYS, lid);
    // Whole strides of the workgroup (uniform control flow, as the offers need).
    for (var i0 = 0u; i0 < tile.nr * TILE_KEYS; i0 += ${WG}u) {
      let i = i0 + lid;
      let lr = min(i / TILE_KEYS, tile.nr - 1u);
      let j = j0 + i % TILE_KEYS;
      let r = tile.r0 + lr;
      let on = i < tile.nr * TILE_KEYS && i32(j) >= keyLo(r) && i32(j) < keyHi(r) && maskEligible(r, j);
      selectOffer(on, lr, cbFirst, j, bitcast<u32>(tileScore(lr, i % TILE_KEYS)));
    }
  }
  selectFinish(tile.nr, cbFirst, tile.r0 - u.row0, lid);
}
`;
}

/**
 * The fused indexer + top-k step (built by the backend from the two plans'
 * steps, see webgpu/fused.ts): the score step's args (any precision and key
 * layout; `scoreKernel` names the plan's score kernel) and the top-k step's
 * (s, topK, row0, values, indices, nanAt, nanLowest, sorted, mask,
 * maskForm). Both plans come from the same key options, so the rows' score
 * ranges are their top-k eligibility (fused.ts checks it). The plan's FP8
 * quantization steps, if any, run before it as steps of their own.
 * Memory: the outputs and one candidate list per row, O(t * k).
 */
const fusedProgram: GpuProgram = {
  args: [
    ...SCORE_ARGS.filter((name) => !['out', 'rowStart', 'nRows', 'keyBlock'].includes(name)),
    'scoreKernel', 's', 'topK', 'row0', 'values', 'indices', 'nanAt', 'nanLowest', 'sorted', 'mask', 'maskForm',
  ],
  encode(step: Step, enc: Encoder): Dispatch[] {
    const a = step.args;
    const form = checkMaskForm(a.maskForm);
    const s = a.s as number, k = a.topK as number;
    const [start, end] = step.rows;
    const cap = listCapacity(k, s, TILE_KEYS);
    const setup = scoreSetup(a, a.scoreKernel as string, enc, start, end);
    const cand = enc.scratch((end - start) * cap * 8, `indexerTopk candidate lists [${end - start}, ${cap}]`);
    const sg = enc.uses('subgroups');
    return [...setup.before, {
      key: `indexer.topk.${setup.key}.${form ?? 'all'}`,
      enables: [...setup.enables, ...(sg ? ['subgroups' as const] : [])],
      wgsl: () => fusedWgsl(setup.wgsl, form, lanes(sg)),
      bindings: [
        ...setup.bindings,
        ...(form === null ? [] : [{ name: 'mask', type: 'array<u32>', access: 'read' as const, buffer: enc.buffer('mask') }]),
        { name: 'cand', type: 'array<vec2u>', access: 'read_write', buffer: cand },
        { name: 'values', type: 'array<u32>', access: 'read_write', buffer: enc.buffer('values') },
        { name: 'indices', type: 'array<i32>', access: 'read_write', buffer: enc.buffer('indices') },
        { name: 'nanAt', type: 'array<i32>', access: 'read_write', buffer: enc.buffer('nanAt') },
      ],
      uniforms: [
        ...setup.uniforms, u32('s', s), u32('row0', a.row0 as number), u32('k', k),
        u32('cap', cap), u32('kc', Math.min(k, s)), u32('nanLowest', a.nanLowest ? 1 : 0),
      ],
      groups: setup.nTiles,
    }];
  },
};

export const indexerPrograms: Record<string, GpuProgram> = {
  'indexer.scoresWasm': scoresProgram,
  'indexer.scoresTs': scoresProgram,
  'indexer.scoresInt8Wasm': scoresProgram,
  'indexer.scoresInt8Ts': scoresProgram,
  'indexer.scoresInt7Wasm': scoresProgram,
  'indexer.scoresInt7Ts': scoresProgram,
  'indexer.scoresFp8Wasm': scoresProgram,
  'indexer.scoresFp8Ts': scoresProgram,
  'indexer.fillOutside': fillOutsideProgram,
  ...quantizePrograms,
  'webgpu.indexerTopk': fusedProgram,
};
