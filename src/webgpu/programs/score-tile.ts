/**
 * The lightning indexer's score tile, shared by `indexerScores` and the fused
 * `indexerTopk`, in every precision and key layout of the CPU plan.
 *
 * A tile is up to `tileRows(h)` query rows that share their keys (one batch,
 * one ragged sequence) x 64 key positions: a GEMM of the [rows * h, d]
 * queries by the [64, d] keys, tiled 16 (or 32) values of d at a time in workgroup
 * memory (16 x 16 threads, 4 x 4 outputs each), with ReLU and the weighted
 * head sum fused into the epilogue, heads added in ascending order. [t, s, h]
 * never exists. Keys are found by slot, as the CPU kernels find them
 * (src/indexer/scores-kernels.ts): `base + j` (contiguous: bi * pageSize;
 * ragged: the sequence's first packed key) or through the block table
 * (paged); positions at or past the sequence's key count (`end`) are never
 * read, so unused block-table entries may hold anything.
 *
 * Precisions, each the CPU kernels' arithmetic:
 * - float32: products summed in the GEMM's order (within the CPU's
 *   tolerance, not bit for bit); a dot <= 0 adds nothing.
 * - int8 / int7: the quantized values enter the GEMM as floats; their
 *   products and sums are integers below 2^24, so every block's dot is the
 *   exact integer dot. Per 128-value block, dot = dot + f32(f32(qs * ks) *
 *   idot), then score = score + f32(w' * ReLU(dot)) for every head in order
 *   (w' = f32(w * weightScale), prepared by the query pass).
 * - fp8: e4m3 codes decoded exactly; each product of two e4m3 values is
 *   exact in float32, so the GEMM's running sum is the CPU's sum in
 *   ascending d (fused or not); score = score + f32(w' * ReLU(dot)) per head
 *   in order, then times the key's scale (w' = f32(f32(w * weightScale) * qScale)).
 * `keep` (exact.ts) stops a compiler from fusing those multiplies into the
 * adds, so int8 and fp8 are bit-identical to the CPU.
 *
 * With `shader-f16`, the int8, int7 and fp8 tiles hold their values as f16 in
 * workgroup memory (every such value is exact in f16) and take 32 values of
 * d per stage instead of 16, half the barriers in the same memory; the
 * products and sums stay f32 in the same order, so the scores are the same
 * bits. float32 tiles stay f32.
 */
import type { KernelArgs } from '../../plan.js';
import { u32, f32, type Binding, type Dispatch, type Encoder, type Extension, type Uniform } from '../program.js';
import { exactWgsl, f64Words, keepWgsl } from './exact.js';
import { fp8AddressWgsl, int8QueryPass, int8KeyPass, fp8WeightPass } from './quantize.js';
import { WG } from './wgsl.js';

/** Query rows a score tile holds at most. */
export const TILE_ROWS = 16;
/** Keys a score tile holds. */
export const TILE_KEYS = 64;
/** Words per tile in the program's table: r0, rows, batch, base slot, key end. */
const TILE_FIELDS = 5;

export type ScorePrecision = 'float32' | 'int8' | 'int7' | 'fp8';

/**
 * Query rows per score tile for h heads: a tile is one GEMM block of
 * (row, head) pairs x 64 keys, so as many whole rows as fit 64 pairs.
 */
export function tileRows(h: number): number {
  return Math.max(1, Math.min(TILE_ROWS, Math.floor(64 / h)));
}

/** The precision a score kernel of the CPU plan computes. */
export function precisionOf(kernel: string): ScorePrecision {
  return kernel.includes('Int8') ? 'int8' : kernel.includes('Int7') ? 'int7' : kernel.includes('Fp8') ? 'fp8' : 'float32';
}

/**
 * The program's table (one buffer): tiles [r0, rows, batch, base, end] for
 * rows [start, end) of the plan's row ranges, then lo and hi of every row,
 * then the block table. Tiles break where the batch, the ragged sequence
 * (base) or the key count (keyEnd) changes.
 */
function scoreTable(a: KernelArgs, start: number, end: number, per: number) {
  const t = a.t as number, width = a.width as number, pageSize = a.pageSize as number;
  const lo = a.lo as Int32Array, hi = a.hi as Int32Array;
  const base = a.base as Int32Array | null, keyEnd = a.keyEnd as Int32Array | null, blocks = a.blockTable as Int32Array | null;
  const tiles: number[] = [];
  for (let r = start; r < end; ) {
    const bi = Math.floor(r / t);
    const first = base !== null ? base[r] : blocks !== null ? 0 : bi * pageSize;
    const stop = keyEnd !== null ? keyEnd[r] : width;
    let n = 1;
    while (n < per && r + n < end && Math.floor((r + n) / t) === bi && (base === null || base[r + n] === first) && (keyEnd === null || keyEnd[r + n] === stop)) n++;
    tiles.push(r, n, bi, first, stop);
    r += n;
  }
  const rows = lo.length;
  const loAt = tiles.length, hiAt = loAt + rows, btAt = hiAt + rows;
  const data = new Uint32Array(Math.max(1, btAt + (blocks?.length ?? 0)));
  data.set(tiles);
  // Element by element: lo and hi may be stand-ins of GPU-resident plan arrays (their host values are here).
  for (let r = 0; r < rows; r++) {
    data[loAt + r] = lo[r];
    data[hiAt + r] = hi[r];
  }
  if (blocks !== null) data.set(new Uint32Array(blocks.buffer, blocks.byteOffset, blocks.length), btAt);
  return { data, nTiles: tiles.length / TILE_FIELDS, loAt, hiAt, btAt };
}

/** What a program needs to run score tiles: the passes before it, its bindings and uniforms, the WGSL of the tile. */
export interface ScoreSetup {
  /** Dispatches to run first (quantization of the queries and keys, FP8 weights). */
  before: Dispatch[];
  bindings: Binding[];
  uniforms: Uniform[];
  /** The WGSL of `scoreTile(tile, j0, lid)`, `tileScore(lr, n)`, `tileAt`, `keyLo`, `keyHi`. */
  wgsl: string;
  /** Part of the pipeline key: precision, layout and element type. */
  key: string;
  /** The extensions the tile's WGSL enables. */
  enables: Extension[];
  nTiles: number;
}

/**
 * The score tile over the step's arguments (the plan's score step, or the
 * fused step carrying the same ones), for query rows [start, end).
 */
export function scoreSetup(a: KernelArgs, kernel: string, enc: Encoder, start: number, end: number): ScoreSetup {
  const precision = precisionOf(kernel);
  const h = a.h as number, d = a.d as number;
  const paged = a.blockTable !== null;
  const table = scoreTable(a, start, end, tileRows(h));
  const tableBuffer = enc.data(table.data, 'score tiles');
  const uniforms: Uniform[] = [
    u32('h', h), u32('d', d), u32('pageSize', a.pageSize as number), u32('maxBlocks', a.maxBlocks as number), u32('rowStart', start),
    u32('loAt', table.loAt), u32('hiAt', table.hiAt), u32('btAt', table.btAt),
  ];
  const bindings: Binding[] = [];
  const before: Dispatch[] = [];
  const nRows = end - start;
  if (precision === 'float32') {
    bindings.push(
      { name: 'q', type: 'array<f32>', access: 'read', buffer: enc.buffer('q') },
      { name: 'keys', type: 'array<f32>', access: 'read', buffer: enc.buffer('k') },
      { name: 'w', type: 'array<f32>', access: 'read', buffer: enc.buffer('w') },
    );
    uniforms.push(f32('weightScale', a.weightScale as number));
  } else if (precision === 'fp8') {
    const wq = enc.scratch(Math.max(1, nRows * h) * 4, `FP8 head weights [${nRows}, ${h}]`);
    before.push(fp8WeightPass(a, enc, start, end, wq));
    bindings.push(
      { name: 'q8', type: 'array<u32>', access: 'read', buffer: enc.buffer('q8') },
      { name: 'wq', type: 'array<f32>', access: 'read', buffer: wq },
      { name: 'k8', type: 'array<u32>', access: 'read', buffer: enc.buffer('k8') },
    );
    uniforms.push(u32('zero', 0));
  } else {
    const query = int8QueryPass(a, enc, start, end, precision === 'int7' ? 63 : 127);
    before.push(query.dispatch);
    let kq: GPUBuffer, kScales: GPUBuffer, kStride: number;
    if (a.kq !== null) {
      kq = enc.buffer('kq');
      kScales = enc.buffer('kScales');
      kStride = d;
    } else {
      const keys = int8KeyPass(a, enc);
      before.push(keys.dispatch);
      ({ kq, kScales, kStride } = keys);
    }
    bindings.push(
      { name: 'qs', type: 'array<u32>', access: 'read', buffer: query.buffer },
      { name: 'kq', type: 'array<u32>', access: 'read', buffer: kq },
      { name: 'kScales', type: 'array<f32>', access: 'read', buffer: kScales },
    );
    uniforms.push(u32('zero', 0), u32('nb', Math.ceil(d / 128)), u32('qStride', query.stride), u32('kStride', kStride), u32('qsAt', query.scalesAt), u32('wqAt', query.weightsAt));
  }
  bindings.push({ name: 'table', type: 'array<u32>', access: 'read', buffer: tableBuffer });
  const form = precision === 'int7' ? 'int8' : precision;
  // int8 / int7 values and e4m3 values are exact in f16; float32 values are not.
  const half = form !== 'float32' && enc.uses('f16');
  return {
    before, bindings, uniforms, wgsl: scoreTileWgsl(form, paged, half), key: `${form}${paged ? '.paged' : ''}${half ? '.f16' : ''}`,
    enables: half ? ['f16'] : [], nTiles: end > start ? table.nTiles : 0,
  };
}

/** `<name>Byte(i)`: byte i of a byte array bound as array<u32>. */
const byteOf = (name: string) => `fn ${name}Byte(i: u32) -> u32 { return (${name}[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu; }`;

function scoreTileWgsl(precision: 'float32' | 'int8' | 'fp8', paged: boolean, half: boolean): string {
  // The GEMM's tiles: f32, 16 values of d per stage; f16 (quantized values only), 32 per stage in the same memory.
  const type = half ? 'f16' : 'f32';
  const depth = half ? 32 : 16;
  const pad = half ? 2 : 1;
  const slot = paged
    ? 'return bitcast<i32>(table[u.btAt + tile.bi * u.maxBlocks + j / u.pageSize]) * i32(u.pageSize) + i32(j % u.pageSize);'
    : 'return i32(tile.base + j);';
  const values = {
    float32: `
fn qValue(row: u32, head: u32, e: u32) -> f32 { return q[(row * u.h + head) * u.d + e]; }
fn kValue(slot: u32, e: u32) -> f32 { return keys[slot * u.d + e]; }
fn weightOf(row: u32, head: u32) -> f32 { return w[row * u.h + head] * u.weightScale; }`,
    int8: `
${byteOf('qs')}
${byteOf('kq')}
fn signed(b: u32) -> f32 { return f32(bitcast<i32>(b << 24u) >> 24u); }
fn qValue(row: u32, head: u32, e: u32) -> f32 { return signed(qsByte(((row - u.rowStart) * u.h + head) * u.qStride + e)); }
fn kValue(slot: u32, e: u32) -> f32 { return signed(kqByte(slot * u.kStride + e)); }
fn qScaleOf(row: u32, head: u32, blk: u32) -> f32 { return bitcast<f32>(qs[u.qsAt + ((row - u.rowStart) * u.h + head) * u.nb + blk]); }
fn weightOf(row: u32, head: u32) -> f32 { return bitcast<f32>(qs[u.wqAt + (row - u.rowStart) * u.h + head]); }`,
    fp8: `
${exactWgsl}
${fp8AddressWgsl}
${byteOf('q8')}
${byteOf('k8')}
fn qValue(row: u32, head: u32, e: u32) -> f32 { return e4m3Decode(q8Byte((row * u.h + head) * u.d + e)); }
fn kValue(slot: u32, e: u32) -> f32 { return e4m3Decode(k8Byte(fp8CodesAt(slot) + e)); }
fn weightOf(row: u32, head: u32) -> f32 { return wq[(row - u.rowStart) * u.h + head]; }`,
  }[precision];
  const exactAdd = 'S[lr][tn * 4u + y] = S[lr][tn * 4u + y] + keep(weight * select(0.0, dot, dot > 0.0 || isNan(dot)));';
  const add = precision === 'float32' ? 'if (dot > 0.0 || isNan(dot)) { S[lr][tn * 4u + y] += weight * dot; }' : exactAdd;
  const fold = precision !== 'int8' ? '' : `
      if ((e0 + DEPTH) % 128u == 0u || e0 + DEPTH >= u.d) {
        let blk = e0 / 128u;
        for (var x = 0u; x < 4u; x++) {
          let m = m0 + tm * 4u + x;
          var qsc = 0.0;
          if (m < pairs) { qsc = qScaleOf(tile.r0 + m / u.h, m % u.h, blk); }
          for (var y = 0u; y < 4u; y++) {
            let slot = kslot[tn * 4u + y];
            var ksc = 0.0;
            if (slot >= 0) { ksc = kScales[u32(slot) * u.nb + blk]; }
            dots[x][y] = dots[x][y] + keep(keep(qsc * ksc) * acc[x][y]);
            acc[x][y] = 0.0;
          }
        }
      }`;
  return `${precision === 'float32' ? '' : keepWgsl}
const TILE_ROWS = ${TILE_ROWS}u;
const TILE_KEYS = ${TILE_KEYS}u;
const DEPTH = ${depth}u;
var<workgroup> Qs: array<array<${type}, ${depth}>, 64>;
var<workgroup> Ks: array<array<${type}, ${depth + pad}>, 64>;
var<workgroup> S: array<array<f32, 64>, ${TILE_ROWS}>;
// The slot of each key of the tile (-1: not read), and (fp8) its scale.
var<workgroup> kslot: array<i32, 64>;
var<workgroup> kscale: array<f32, 64>;

struct Tile { r0: u32, nr: u32, bi: u32, base: u32, end: u32 }
fn tileAt(i: u32) -> Tile {
  let o = i * ${TILE_FIELDS}u;
  return Tile(table[o], table[o + 1u], table[o + 2u], table[o + 3u], table[o + 4u]);
}
fn keyLo(r: u32) -> i32 { return bitcast<i32>(table[u.loAt + r]); }
fn keyHi(r: u32) -> i32 { return bitcast<i32>(table[u.hiAt + r]); }
fn slotOf(tile: Tile, j: u32) -> i32 { ${slot} }
${values}

fn scoreTile(tile: Tile, j0: u32, lid: u32) {
  let tm = lid / 16u;
  let tn = lid % 16u;
  workgroupBarrier();
  for (var i = lid; i < TILE_ROWS * TILE_KEYS; i += ${WG}u) { S[i / TILE_KEYS][i % TILE_KEYS] = 0.0; }
  if (lid < TILE_KEYS) {
    let j = j0 + lid;
    var slot = -1;
    if (j < tile.end) { slot = slotOf(tile, j); }
    kslot[lid] = slot;
    ${precision === 'fp8' ? 'kscale[lid] = select(0.0, bitcast<f32>(k8[fp8ScaleAt(u32(max(slot, 0)))]), slot >= 0);' : ''}
  }
  workgroupBarrier();
  let pairs = tile.nr * u.h;
  for (var m0 = 0u; m0 < pairs; m0 += 64u) {
    // Zeroed by hand: a var declared in a loop body is not reliably zeroed per iteration.
    var acc: array<array<f32, 4>, 4>;
    var dots: array<array<f32, 4>, 4>;
    for (var x = 0u; x < 4u; x++) {
      for (var y = 0u; y < 4u; y++) {
        acc[x][y] = 0.0;
        dots[x][y] = 0.0;
      }
    }
    for (var e0 = 0u; e0 < u.d; e0 += DEPTH) {
      for (var i = lid; i < 64u * DEPTH; i += ${WG}u) {
        let m = m0 + i / DEPTH;
        let e = e0 + i % DEPTH;
        var qv = 0.0;
        if (m < pairs && e < u.d) { qv = qValue(tile.r0 + m / u.h, m % u.h, e); }
        Qs[i / DEPTH][i % DEPTH] = ${type}(qv);
        let slot = kslot[i / DEPTH];
        var kv = 0.0;
        if (slot >= 0 && e < u.d) { kv = kValue(u32(slot), e); }
        Ks[i / DEPTH][i % DEPTH] = ${type}(kv);
      }
      workgroupBarrier();
      for (var e = 0u; e < DEPTH; e++) {
        var a: array<f32, 4>;
        var b: array<f32, 4>;
        for (var x = 0u; x < 4u; x++) {
          a[x] = f32(Qs[tm * 4u + x][e]);
          b[x] = f32(Ks[tn * 4u + x][e]);
        }
        for (var x = 0u; x < 4u; x++) {
          for (var y = 0u; y < 4u; y++) { acc[x][y] += a[x] * b[y]; }
        }
      }
      workgroupBarrier();${fold}
    }
    // Epilogue, one 4-pair row of threads at a time: heads add in ascending order.
    for (var phase = 0u; phase < 16u; phase++) {
      if (tm == phase) {
        for (var x = 0u; x < 4u; x++) {
          let m = m0 + tm * 4u + x;
          if (m < pairs) {
            let lr = m / u.h;
            let weight = weightOf(tile.r0 + lr, m % u.h);
            for (var y = 0u; y < 4u; y++) {
              let dot = ${precision === 'int8' ? 'dots' : 'acc'}[x][y];
              ${add}
            }
          }
        }
      }
      workgroupBarrier();
    }
  }
}

// The score of local row lr at key n of the last tile.
fn tileScore(lr: u32, n: u32) -> f32 { return ${precision === 'fp8' ? 'S[lr][n] * kscale[n]' : 'S[lr][n]'}; }
`;
}
