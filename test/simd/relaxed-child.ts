// Run by relaxed.test.ts in a Node started with
// --experimental-wasm-relaxed-simd (and --no-liftoff, whose absence makes
// Node 20's baseline compiler get the relaxed dot wrong): scores from the
// relaxed module, the baseline module and the TypeScript kernels, compared
// bit for bit. Prints one JSON line.
import { initSimd, simdBuild } from '../../src/simd/index.js';
import { indexerScores } from '../../src/indexer/scores.js';
import { quantizeKeys } from '../../src/indexer/quantized-keys.js';
import type { IndexerScoresOptions } from '../../src/indexer/scores.js';

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed >>> 0 || 7;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    a[i] = ((x >>> 0) / 2 ** 32) * 2 - 1;
  }
  return a;
}

const report: { loaded: string | null; error?: string; cases: { name: string; differences: number }[] } = { loaded: null, cases: [] };
try {
  await initSimd({ relaxed: true });
  report.loaded = simdBuild();
  const grid: [number, number, number, number, number][] = [[1, 3, 64, 128, 1030], [2, 2, 3, 200, 37], [1, 2, 2, 20, 9], [1, 1, 5, 256, 515]];
  for (const [b, t, h, d, s] of grid) {
    const q = { data: rand(b * t * h * d, s), shape: [b, t, h, d] };
    const k = { data: rand(b * s * d, s + 1), shape: [b, s, d] };
    const w = { data: rand(b * t * h, s + 2), shape: [b, t, h] };
    k.data.fill(0, 0, d); // a zero key: scale 0
    q.data[7] = NaN; // a NaN block: NaN scores in row 0
    const kq = quantizeKeys(k);
    for (const precision of ['float32', 'int8', 'int7'] as const) {
      // The serving forms too: a key window and seqLens (the windows ask for
      // partial key blocks), each form a different tile walk.
      const rows = b * t;
      const window = { start: Int32Array.from({ length: rows }, (_, r) => (r * 7) % Math.max(1, s >> 1)), end: Int32Array.from({ length: rows }, (_, r) => s - ((r * 3) % Math.max(1, s >> 2))) };
      const seqLens = Int32Array.from({ length: b }, (_, bi) => Math.max(t, s - bi * 5));
      for (const extra of [{}, { causalOffset: s - t }, { window }, { seqLens }] as IndexerScoresOptions[]) {
        const opts = { precision, weightScale: 0.25, ...extra };
        await initSimd({ relaxed: true });
        const relaxed = [indexerScores(q, k, w, opts).data, ...(precision === 'float32' ? [] : [indexerScores(q, kq, w, opts).data])];
        await initSimd({ relaxed: false });
        const baseline = indexerScores(q, k, w, opts).data;
        const expected = precision === 'float32' ? baseline : indexerScores(q, k, w, { ...opts, simd: false }).data;
        let differences = 0;
        for (const got of [...relaxed, baseline]) for (let i = 0; i < expected.length; i++) if (!Object.is(got[i], expected[i])) differences++;
        report.cases.push({ name: `${precision} q[${b},${t},${h},${d}] s=${s} ${Object.keys(extra).join(' ') || 'all keys'}`, differences });
      }
    }
  }
  // A paged int8 cache (blocks in reverse page order) against the contiguous keys with seqLens.
  const [b, t, h, d, s, P] = [2, 2, 8, 128, 700, 64];
  const q = { data: rand(b * t * h * d, 1), shape: [b, t, h, d] }, k = { data: rand(b * s * d, 2), shape: [b, s, d] }, w = { data: rand(b * t * h, 3), shape: [b, t, h] };
  const blocks = Math.ceil(s / P);
  const pages = new Float32Array(b * blocks * P * d);
  const table = new Int32Array(b * blocks);
  for (let bi = 0; bi < b; bi++) for (let blk = 0; blk < blocks; blk++) {
    const p = b * blocks - 1 - (bi * blocks + blk);
    table[bi * blocks + blk] = p;
    for (let o = 0; o < P && blk * P + o < s; o++) pages.set(k.data.subarray((bi * s + blk * P + o) * d, (bi * s + blk * P + o + 1) * d), (p * P + o) * d);
  }
  const seqLens = Int32Array.from([s, s - 77]);
  const paged = quantizeKeys({ data: pages, shape: [b * blocks, P, d] });
  for (const precision of ['int8', 'int7'] as const) {
    await initSimd({ relaxed: true });
    const got = indexerScores(q, paged, w, { precision, seqLens, blockTable: { data: table, shape: [b, blocks] }, maxLen: s }).data;
    const expected = indexerScores(q, k, w, { precision, seqLens, simd: false }).data;
    let differences = got.length === expected.length ? 0 : 1;
    for (let i = 0; i < expected.length; i++) if (!Object.is(got[i], expected[i])) differences++;
    report.cases.push({ name: `${precision} paged int8 cache q[${b},${t},${h},${d}] s=${s} P=${P}`, differences });
  }
} catch (err) {
  report.error = (err as Error).message;
  report.loaded = simdBuild();
}
console.log(JSON.stringify(report));
