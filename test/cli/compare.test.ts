import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import fc from 'fast-check';
import { writeNpy } from '../../src/io/npy-file.js';
import { encodeSafetensors } from '../../src/io/safetensors.js';
import { compareSelections, VERDICTS } from '../../src/compare/selections.js';
import { indexerScores } from '../../src/indexer/scores.js';
import { topk } from '../../src/topk/topk.js';
import { scratch } from '../helpers/numpy.js';
import { dsa, dsaProcess } from './run.js';

function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % n);
}

/** Rows of two selections from `S` [rows, s]: exact top-k with the same tie-break, then some rows permuted, re-broken or corrupted. */
function selections(S: Float32Array, rows: number, s: number, k: number, next: (n: number) => number): { a: Int32Array; b: Int32Array } {
  const a = new Int32Array(rows * k), b = new Int32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const order = (flip: boolean) => Array.from({ length: s }, (_, j) => j).sort((x, y) => S[r * s + y] - S[r * s + x] || (flip ? y - x : x - y));
    const ta = order(false);
    const kind = next(4);
    const tb = kind === 1 ? order(true) : ta.slice();
    for (let i = 0; i < k; i++) {
      a[r * k + i] = i < s ? ta[i] : -1;
      b[r * k + i] = i < s ? tb[i] : -1;
    }
    if (kind === 2) b.subarray(r * k, r * k + k).reverse();
    if (kind === 3) b[r * k + next(k)] = next(s + 1) - 1;
  }
  return { a, b };
}

test('dsa compare gives the library\'s verdicts per row across block edges (int32 and int64, [b, t, k] and [rows, k], with and without scores and tolerances); exit 0 when no row differs, 1 when one does', async () => {
  const tmp = scratch();
  process.env.DSA_BLOCK_BYTES = '600'; // a few rows per block
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          b: fc.integer({ min: 1, max: 2 }), t: fc.integer({ min: 1, max: 7 }), s: fc.integer({ min: 1, max: 40 }), k: fc.integer({ min: 1, max: 8 }),
          levels: fc.integer({ min: 1, max: 8 }), seed: fc.integer(), wide: fc.boolean(), flat: fc.boolean(), scored: fc.boolean(),
          abs: fc.option(fc.constantFrom(0.5, 2), { nil: undefined }),
        }),
        async ({ b, t, s, k, levels, seed, wide, flat, scored, abs }) => {
          const next = rng(seed);
          const rows = b * t;
          const S = Float32Array.from({ length: rows * s }, () => next(levels));
          const { a, b: sel } = selections(S, rows, s, k, next);
          const lead = flat ? [rows] : [b, t];
          writeNpy(tmp.file('a.npy'), { data: a, shape: [...lead, k] });
          writeNpy(tmp.file('b.npy'), { data: wide ? BigInt64Array.from(sel, BigInt) : sel, shape: [...lead, k] });
          writeNpy(tmp.file('s.npy'), { data: S, shape: [...lead, s] });
          const args = ['compare', '--a', tmp.file('a.npy'), '--b', tmp.file('b.npy'), '--json', tmp.file('r.json')];
          if (scored) args.push('--scores', tmp.file('s.npy'));
          else args.push('--seq-len', String(s));
          if (scored && abs !== undefined) args.push('--abs', String(abs));
          const r = await dsa(...args);
          const want = compareSelections({ data: a, shape: [rows, k] }, { data: sel, shape: [rows, k] }, scored ? { scores: { data: S, shape: [rows, s] }, tolerance: abs === undefined ? undefined : { abs } } : {});
          const json = JSON.parse(readFileSync(tmp.file('r.json'), 'utf8'));
          assert.deepEqual(json.perRow.verdict, Array.from(want.verdict, (v) => VERDICTS[v]));
          assert.deepEqual(json.perRow.firstKey, [...want.first.key]);
          assert.deepEqual(json.summary.counts, want.summary.counts);
          assert.equal(json.scored, scored);
          assert.equal(r.code, want.summary.equal ? 0 : 1, r.stdout + r.stderr);
          assert.match(r.stdout, want.summary.equal ? /\nresult: equal/ : /\nresult: DIFFERENT/);
          if (!want.summary.equal) {
            const row = want.summary.firstDifferent;
            const place = flat ? `row ${row}` : `batch ${Math.floor(row / t)}, query ${row % t}`;
            assert.match(r.stdout, new RegExp(`first different row: ${place}: key ${want.first.key[row]} \\(slot ${want.first.slot[row]} of ${want.first.side[row] === 0 ? 'a' : 'b'}`));
          }
          if (!scored) assert.match(r.stdout, /no scores: ties cannot be told from differences/);
        },
      ),
      { numRuns: 80 },
    );
  } finally {
    delete process.env.DSA_BLOCK_BYTES;
    tmp.done();
  }
});

test('dsa compare: the summary table, --json - on stdout, --report with the margins plotted', async () => {
  const tmp = scratch();
  try {
    // Row 0 identical, row 1 a tie re-broken, row 2 a near-tie (0.1 below the k-th score), row 3 a far key.
    const S = Float32Array.from([5, 4, 3, 0, 5, 4, 4, 0, 5, 4, 3.9, 0, 5, 4, 3, -7]);
    writeNpy(tmp.file('s.npy'), { data: S, shape: [1, 4, 4] });
    writeNpy(tmp.file('a.npy'), { data: Int32Array.from([0, 1, 0, 1, 0, 1, 0, 1]), shape: [1, 4, 2] });
    writeNpy(tmp.file('b.npy'), { data: Int32Array.from([0, 1, 0, 2, 0, 2, 0, 3]), shape: [1, 4, 2] });
    const base = ['compare', '--a', tmp.file('a.npy'), '--b', tmp.file('b.npy'), '--scores', tmp.file('s.npy')];
    const r = await dsa(...base, '--abs', '0.25', '--report', tmp.file('r.html'));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^dsa compare: .*a\.npy vs .*b\.npy, 4 rows, k = 2, s = 4; scores .*s\.npy; near-ties within abs 0\.25\n/);
    for (const [label, n] of [['identical', 1], ['equal as sets', 0], ['equal up to ties', 1], ['equal up to near-ties', 1], ['different', 1]] as const) {
      assert.match(r.stdout, new RegExp(`\\n${label} +${n} +${(n * 25).toFixed(1)}%\\n`));
    }
    // Key 1 of a scores the k-th score itself (a tie); key 3 of b is the one that breaks the rule.
    assert.match(r.stdout, /\nfirst different row: batch 0, query 3: key 3 \(slot 1 of b, not in a\) scores -7, the k-th score is 4: -11 from it \(tolerance 0\.25\)\n/);
    assert.match(r.stdout, /\nresult: DIFFERENT \(1 of 4 rows, k = 2\)\nreport: /);
    const html = readFileSync(tmp.file('r.html'), 'utf8');
    assert.match(html, /<svg[^>]*>/);
    assert.match(html, /k-th score margins per row/);
    assert.match(html, /equal up to near-ties +1/);
    // With the tolerance wide enough every row is equal: exit 0, and the JSON on stdout instead of the table.
    const wide = await dsa(...base, '--abs', '20', '--json', '-');
    assert.equal(wide.code, 0, wide.stderr);
    const json = JSON.parse(wide.stdout);
    assert.deepEqual(json.perRow.verdict, ['identical', 'ties', 'nearTies', 'nearTies']);
    assert.deepEqual(json.perRow.gap, [1, 0, Math.fround(4) - Math.fround(3.9), 1]);
    assert.equal(json.summary.equal, true);
    // bf16 score rounding: 3.9 and 4 do not round to one bf16 value, so row 2 is different under it.
    const bf16 = await dsa(...base, '--precision', 'bf16', '--json', '-');
    assert.deepEqual(JSON.parse(bf16.stdout).perRow.verdict, ['identical', 'ties', 'different', 'different']);
    assert.equal(bf16.code, 1);
  } finally {
    tmp.done();
  }
});

test('dsa compare reads safetensors tensors (file.safetensors:name; I64 indices, BF16 and F32 scores) as it reads .npy', async () => {
  const tmp = scratch();
  try {
    const next = rng(7);
    const [rows, s, k] = [5, 30, 6];
    // bf16-exact scores (few significant bits), so both files hold the same values.
    const S = Float32Array.from({ length: rows * s }, () => (next(64) - 32) / 8);
    const { a, b } = selections(S, rows, s, k, next);
    const bf16 = Uint16Array.from(S, (x) => new Uint32Array(Float32Array.of(x).buffer)[0] >>> 16);
    writeFileSync(tmp.file('m.safetensors'), encodeSafetensors({
      a: { dtype: 'I64', shape: [1, rows, k], data: BigInt64Array.from(a, BigInt) },
      b: { dtype: 'I32', shape: [1, rows, k], data: b },
      scores: { dtype: 'BF16', shape: [1, rows, s], data: bf16 },
      f32: { dtype: 'F32', shape: [1, rows, s], data: S },
      q: { dtype: 'F32', shape: [1, rows, 3], data: new Float32Array(rows * 3) },
    }));
    writeNpy(tmp.file('a.npy'), { data: a, shape: [1, rows, k] });
    writeNpy(tmp.file('b.npy'), { data: b, shape: [1, rows, k] });
    writeNpy(tmp.file('s.npy'), { data: S, shape: [1, rows, s] });
    const st = (name: string) => `${tmp.file('m.safetensors')}:${name}`;
    const fromNpy = await dsa('compare', '--a', tmp.file('a.npy'), '--b', tmp.file('b.npy'), '--scores', tmp.file('s.npy'), '--json', '-');
    for (const scores of ['scores', 'f32']) {
      const fromSt = await dsa('compare', '--a', st('a'), '--b', st('b'), '--scores', st(scores), '--json', '-');
      assert.equal(fromSt.code, fromNpy.code, fromSt.stderr);
      assert.deepEqual(JSON.parse(fromSt.stdout).perRow, JSON.parse(fromNpy.stdout).perRow);
    }
    const missing = await dsa('compare', '--a', st('nope'), '--b', st('b'));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^dsa compare: --a: .*m\.safetensors: no tensor 'nope' .*\(tensors: a, b, scores, f32, q\)\n$/);
    const dtype = await dsa('compare', '--a', st('f32'), '--b', st('b'));
    assert.match(dtype.stderr, /^dsa compare: --a: .*m\.safetensors:f32: expected dtype I32 or I64, got F32\n$/);
    // Scores of 3 keys: an index >= 3 is named by its place in the tensor.
    const narrow = await dsa('compare', '--a', st('a'), '--b', st('b'), '--scores', st('q'));
    const at = a.findIndex((j) => j >= 3);
    assert.equal(narrow.stderr, `dsa compare: --a: ${st('a')}: value ${a[at]} at batch 0, query ${Math.floor(at / k)}, slot ${at % k} must be < s = 3 (negative values are none)\n`);
  } finally {
    tmp.done();
  }
});

test('dsa compare recomputes the scores from --q, --keys, --weights: int8 top-k against float32 top-k is equal within the int8 bound', async () => {
  const tmp = scratch();
  try {
    const [b, t, s, h, d, k] = [1, 16, 400, 4, 32, 32];
    let x = 11;
    const value = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5);
    const q = { data: Float32Array.from({ length: b * t * h * d }, value), shape: [b, t, h, d] };
    const keys = { data: Float32Array.from({ length: b * s * d }, value), shape: [b, s, d] };
    const w = { data: Float32Array.from({ length: b * t * h }, value), shape: [b, t, h] };
    writeNpy(tmp.file('q.npy'), q);
    writeNpy(tmp.file('k.npy'), keys);
    writeNpy(tmp.file('w.npy'), w);
    writeNpy(tmp.file('a.npy'), topk(indexerScores(q, keys, w), k).indices);
    writeNpy(tmp.file('b.npy'), topk(indexerScores(q, keys, w, { precision: 'int8' }), k).indices);
    const args = ['compare', '--a', tmp.file('a.npy'), '--b', tmp.file('b.npy'), '--q', tmp.file('q.npy'), '--keys', tmp.file('k.npy'), '--weights', tmp.file('w.npy')];
    const strict = await dsa(...args, '--json', '-');
    const bounded = await dsa(...args, '--precision', 'int8', '--json', '-');
    assert.equal(bounded.code, 0, bounded.stderr);
    const verdicts = JSON.parse(bounded.stdout).perRow.verdict as string[];
    assert.ok(verdicts.includes('nearTies'), 'int8 moved a key somewhere');
    assert.equal(strict.code, 1, 'without the bound the moved keys are differences');
    const table = await dsa(...args, '--precision', 'int8');
    assert.match(table.stdout, /scores recomputed from --q, --keys, --weights; near-ties within int8 bound of the inputs\n/);
  } finally {
    tmp.done();
  }
});

test('dsa compare: usage and input errors exit 2 with one line naming the flag; no output is written', async () => {
  const tmp = scratch();
  try {
    writeNpy(tmp.file('a.npy'), { data: Int32Array.from([0, 1, 2, 3]), shape: [1, 2, 2] });
    writeNpy(tmp.file('far.npy'), { data: Int32Array.from([0, 1, 2, 9]), shape: [1, 2, 2] });
    writeNpy(tmp.file('k3.npy'), { data: Int32Array.from([0, 1, 2, 3, 0, 1]), shape: [1, 2, 3] });
    writeNpy(tmp.file('s.npy'), { data: Float32Array.from([1, 2, 3, 4, 5, 6, 7, NaN]), shape: [1, 2, 4] });
    writeNpy(tmp.file('f.npy'), { data: new Float32Array(4), shape: [1, 2, 2] });
    const A = tmp.file('a.npy');
    const cases: [string[], RegExp][] = [
      [['--a', A, '--b', tmp.file('none.npy')], /^dsa compare: --b: no such file .*none\.npy\n$/],
      [['--a', A, '--b', tmp.file('k3.npy')], /^dsa compare: --b: .*k3\.npy: shape \[1, 2, 3\] must equal --a's \[1, 2, 2\]\n$/],
      [['--a', A, '--b', tmp.file('f.npy')], /^dsa compare: --b: .*f\.npy: expected dtype int32 or int64, got float32\n$/],
      [['--a', A, '--b', tmp.file('far.npy'), '--scores', tmp.file('s.npy')], /^dsa compare: --b: .*far\.npy: value 9 at batch 0, query 1, slot 1 must be < s = 4 \(negative values are none\)\n$/],
      [['--a', A, '--b', A, '--scores', tmp.file('s.npy')], /^dsa compare: --scores: .*s\.npy: NaN at batch 0, query 1, key 3; the k-th score of that row is undefined\n$/],
      [['--a', A, '--b', A, '--abs', '1'], /^dsa compare: --abs, --rel and --precision: a near-tie needs scores; pass --scores/],
      [['--a', A, '--b', A, '--abs', '-1'], /^error: option '--abs <x>' argument '-1' is invalid\. expected a number >= 0, got '-1'\n$/],
      [['--a', A, '--b', A, '--scores', tmp.file('f.npy'), '--precision', 'int8'], /^dsa compare: --precision int8: bounds quantized indexer inputs, not rounded scores; pass --q, --keys and --weights/],
      [['--a', A, '--b', A, '--scores', tmp.file('f.npy'), '--precision', 'bf16', '--precision-of', 'inputs'], /^dsa compare: --precision-of inputs: needs --q, --keys and --weights\n$/],
      [['--a', A, '--b', A, '--scores', tmp.file('f.npy'), '--seq-len', '3'], /^dsa compare: --seq-len: 3 must equal the scores' s = 2 \(or leave it out\)\n$/],
      [['--a', A, '--b', A, '--q', tmp.file('f.npy')], /^dsa compare: --q, --keys and --weights: give all three/],
      [['--a', A, '--b', A, '--json', A], /^dsa compare: --json is the same file as --a .*refusing to overwrite an input\n$/],
      [['--a', A, '--b', A, '--precision', 'fp32'], /^error: option '--precision <p>' argument 'fp32' is invalid\. Allowed choices are bf16, fp16, fp8, int8\.\n$/],
    ];
    for (const [args, message] of cases) {
      const r = await dsa('compare', ...args, '--report', tmp.file('r.html'));
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '');
      assert.ok(!existsSync(tmp.file('r.html')), 'no report after an error');
    }
  } finally {
    tmp.done();
  }
});

test('dsa compare as a process: exit code 1 on a difference, the table on stdout', async () => {
  const tmp = scratch();
  try {
    writeNpy(tmp.file('a.npy'), { data: Int32Array.from([0, 1]), shape: [1, 1, 2] });
    writeNpy(tmp.file('b.npy'), { data: Int32Array.from([0, 2]), shape: [1, 1, 2] });
    const r = await dsaProcess('src', 'compare', '--a', tmp.file('a.npy'), '--b', tmp.file('b.npy'));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /\nresult: DIFFERENT \(1 of 1 rows, k = 2\)\n$/);
  } finally {
    tmp.done();
  }
});

test('dsa compare --help names every flag', async () => {
  const r = await dsa('compare', '--help');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Usage: dsa compare \[options\]/);
  for (const flag of ['--a', '--b', '--scores', '--q', '--keys', '--weights', '--seq-len', '--abs', '--rel', '--precision', '--precision-of', '--json', '--report']) assert.match(r.stdout, new RegExp(`\\n +${flag} `));
});

test('dsa compare: a NaN, an index >= s or an int64 index outside int32 in a block while the next block is being read ahead is named, exit 2', async () => {
  const tmp = scratch();
  process.env.DSA_BLOCK_BYTES = '200'; // a row or two per block
  try {
    const [t, s, k] = [12, 16, 2];
    const S = Float32Array.from({ length: t * s }, (_, i) => (i * 7) % 13);
    const a = new Int32Array(t * k);
    for (let r = 0; r < t; r++) a.set(topk({ data: S.subarray(r * s, (r + 1) * s), shape: [1, 1, s] }, k).indices.data, r * k);
    writeNpy(tmp.file('a.npy'), { data: a, shape: [1, t, k] });
    const nan = S.slice();
    nan[2 * s + 5] = NaN; // query 2
    writeNpy(tmp.file('nan.npy'), { data: nan, shape: [1, t, s] });
    writeNpy(tmp.file('s.npy'), { data: S, shape: [1, t, s] });
    const far = a.slice();
    far[3 * k + 1] = s; // query 3, slot 1
    writeNpy(tmp.file('far.npy'), { data: far, shape: [1, t, k] });
    const bad = await dsa('compare', '--a', tmp.file('a.npy'), '--b', tmp.file('a.npy'), '--scores', tmp.file('nan.npy'));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^dsa compare: --scores: .*nan\.npy: NaN at batch 0, query 2, key 5; the k-th score of that row is undefined\n$/);
    const out = await dsa('compare', '--a', tmp.file('a.npy'), '--b', tmp.file('far.npy'), '--scores', tmp.file('s.npy'));
    assert.equal(out.code, 2);
    assert.match(out.stderr, /^dsa compare: --b: .*far\.npy: value 16 at batch 0, query 3, slot 1 must be < s = 16 \(negative values are none\)\n$/);
    // int64 indices (converted as they are read ahead): a value outside int32 in a later block.
    const wide = BigInt64Array.from(a, BigInt);
    wide[9 * k] = 2n ** 40n; // query 9, slot 0
    writeNpy(tmp.file('wide.npy'), { data: wide, shape: [1, t, k] });
    const outside = await dsa('compare', '--a', tmp.file('a.npy'), '--b', tmp.file('wide.npy'), '--scores', tmp.file('s.npy'));
    assert.equal(outside.code, 2);
    assert.match(outside.stderr, /^dsa compare: .*wide\.npy: value 1099511627776 at row 9, slot 0 does not fit int32\n$/);
    const ok = await dsa('compare', '--a', tmp.file('a.npy'), '--b', tmp.file('a.npy'), '--scores', tmp.file('s.npy'));
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /\nidentical +12 +100\.0%\n/);
  } finally {
    delete process.env.DSA_BLOCK_BYTES;
    tmp.done();
  }
});
