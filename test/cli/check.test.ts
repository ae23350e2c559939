import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { readNpy, writeNpy } from '../../src/io/npy-file.js';
import { DEFAULT_MASK_VALUE, wordsPerRow, type MaskForm } from '../../src/tensor.js';
import { scratch } from '../helpers/numpy.js';
import { dsa } from './run.js';

/** The definition, by hand: key j of row (bi, ti) is kept iff some slot holds j and j <= ti + offset. */
function definition(idx: Int32Array, b: number, t: number, k: number, s: number, offset: number): Uint8Array {
  const kept = new Uint8Array(b * t * s);
  for (let r = 0; r < b * t; r++) {
    for (let i = 0; i < k; i++) {
      const j = idx[r * k + i];
      if (j >= 0 && j < s && j <= (r % t) + offset) kept[r * s + j] = 1;
    }
  }
  return kept;
}

function encode(kept: Uint8Array, rows: number, s: number, form: MaskForm, dropped = DEFAULT_MASK_VALUE): Float32Array | Uint8Array | Uint32Array {
  if (form === 'bool') return kept.slice();
  if (form === 'additive') return Float32Array.from(kept, (x) => (x ? 0 : dropped));
  const words = wordsPerRow(s);
  const out = new Uint32Array(rows * words);
  for (let r = 0; r < rows; r++) for (let j = 0; j < s; j++) if (kept[r * s + j]) out[r * words + (j >>> 5)] |= 1 << (j & 31);
  return out;
}

test('dsa check agrees with the definition on random masks, duplicates, padding, causal offsets, block edges, -inf fills, distinct top-k-like rows, int32 and int64; it names the first difference', async () => {
  const tmp = scratch();
  process.env.DSA_BLOCK_BYTES = '2048'; // a few rows per block
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          b: fc.integer({ min: 1, max: 2 }), t: fc.integer({ min: 1, max: 9 }), s: fc.integer({ min: 1, max: 70 }), k: fc.integer({ min: 1, max: 6 }),
          form: fc.constantFrom<MaskForm>('additive', 'bool', 'bits'), causal: fc.option(fc.integer({ min: -3, max: 70 }), { nil: undefined }),
          seed: fc.integer({ min: 0, max: 1 << 30 }), flips: fc.integer({ min: 0, max: 2 }), skip: fc.boolean(), inf: fc.boolean(), unique: fc.boolean(), wide: fc.boolean(),
        }),
        async ({ b, t, s, k, form, causal, seed, flips, skip, inf, unique, wide }) => {
          let x = seed;
          const next = (n: number) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % n);
          const idx = Int32Array.from({ length: b * t * k }, () => next(s + (skip ? 3 : 1)) - 1); // -1 padding, duplicates, >= s with skip
          if (unique) {
            // What top-k gives: distinct keys (a shuffled prefix of 0..s-1), -1 past s.
            const keys = Int32Array.from({ length: s }, (_, j) => j);
            for (let r = 0; r < b * t; r++) {
              for (let i = 0; i < k; i++) {
                if (i >= s) { idx[r * k + i] = -1; continue; }
                const pick = i + next(s - i);
                [keys[i], keys[pick]] = [keys[pick], keys[i]];
                idx[r * k + i] = keys[i];
              }
            }
          }
          const kept = definition(idx, b, t, k, s, causal ?? Infinity);
          const corrupt = kept.slice();
          for (let f = 0; f < flips; f++) corrupt[next(corrupt.length)] ^= 1;
          const data = encode(corrupt, b * t, s, form, inf ? -Infinity : DEFAULT_MASK_VALUE);
          const width = form === 'bits' ? wordsPerRow(s) : s;
          writeNpy(tmp.file('m.npy'), { data, shape: [b, t, width] });
          writeNpy(tmp.file('i.npy'), { data: wide ? BigInt64Array.from(idx, BigInt) : idx, shape: [b, t, k] });
          const args = ['check', '--mask', tmp.file('m.npy'), '--indices', tmp.file('i.npy'), '--seq-len', String(s)];
          if (causal !== undefined) args.push('--causal-offset', String(causal));
          if (skip) args.push('--out-of-range', 'skip');
          if (inf) args.push('--dropped-value', '-inf');
          const r = await dsa(...args);
          const first = corrupt.findIndex((v, i) => v !== kept[i]);
          if (first < 0) {
            assert.equal(r.code, 0, r.stdout + r.stderr);
            assert.match(r.stdout, /^ok: /);
          } else {
            assert.equal(r.code, 1, r.stdout + r.stderr);
            const row = Math.floor(first / s);
            assert.match(r.stdout, new RegExp(`^mismatch: batch ${Math.floor(row / t)}, query ${row % t}, key ${first % s}: `));
          }
        },
      ),
      { numRuns: 150 },
    );
  } finally {
    delete process.env.DSA_BLOCK_BYTES;
    tmp.done();
  }
});

test('dsa mask writes the definition in every form across block edges (random int32 and int64 idx, padding, duplicates, causal offsets)', async () => {
  const tmp = scratch();
  process.env.DSA_BLOCK_BYTES = '2048';
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          b: fc.integer({ min: 1, max: 2 }), t: fc.integer({ min: 1, max: 9 }), s: fc.integer({ min: 1, max: 70 }), k: fc.integer({ min: 1, max: 6 }),
          form: fc.constantFrom<MaskForm>('additive', 'bool', 'bits'), causal: fc.option(fc.integer({ min: -3, max: 70 }), { nil: undefined }),
          seed: fc.integer({ min: 0, max: 1 << 30 }), wide: fc.boolean(),
        }),
        async ({ b, t, s, k, form, causal, seed, wide }) => {
          let x = seed;
          const next = (n: number) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % n);
          const idx = Int32Array.from({ length: b * t * k }, () => next(s + 1) - 1);
          writeNpy(tmp.file('i.npy'), { data: wide ? BigInt64Array.from(idx, BigInt) : idx, shape: [b, t, k] });
          const args = ['mask', '--indices', tmp.file('i.npy'), '--seq-len', String(s), '--form', form, '--out', tmp.file('m.npy')];
          if (causal !== undefined) args.push('--causal-offset', String(causal));
          const r = await dsa(...args);
          assert.equal(r.code, 0, r.stderr);
          const got = readNpy(tmp.file('m.npy'));
          const want = encode(definition(idx, b, t, k, s, causal ?? Infinity), b * t, s, form);
          assert.deepEqual(got.shape, [b, t, form === 'bits' ? wordsPerRow(s) : s]);
          assert.deepEqual(Buffer.from(got.data.buffer), Buffer.from(want.buffer));
        },
      ),
      { numRuns: 100 },
    );
  } finally {
    delete process.env.DSA_BLOCK_BYTES;
    tmp.done();
  }
});

test('dsa check under --out-of-range error: a difference before the row of an index >= s is reported; an index >= s before any difference is the error', async () => {
  const tmp = scratch();
  try {
    const s = 8, k = 2, t = 4;
    const idx = new Int32Array([0, 1, 2, 3, 4, 5, 6, 7]);
    const right = encode(definition(idx, 1, t, k, s, Infinity), t, s, 'bool') as Uint8Array;
    const late = idx.slice();
    late[3 * k] = 9; // row 3 holds an index >= s ...
    const wrong = right.slice();
    wrong[1 * s + 7] = 1; // ... and row 1 keeps a key its indices drop
    writeNpy(tmp.file('m.npy'), { data: wrong, shape: [1, t, s] });
    writeNpy(tmp.file('late.npy'), { data: late, shape: [1, t, k] });
    const first = await dsa('check', '--mask', tmp.file('m.npy'), '--indices', tmp.file('late.npy'));
    assert.equal(first.code, 1, first.stderr);
    assert.equal(first.stdout, 'mismatch: batch 0, query 1, key 7: the mask holds 1 (kept), the indices drop it\n');
    const early = idx.slice();
    early[0] = 9; // row 0 holds an index >= s, before the difference in row 1
    writeNpy(tmp.file('early.npy'), { data: early, shape: [1, t, k] });
    const second = await dsa('check', '--mask', tmp.file('m.npy'), '--indices', tmp.file('early.npy'));
    assert.equal(second.code, 2);
    assert.equal(second.stderr, `dsa check: ${tmp.file('early.npy')}: value 9 at batch 0, query 0, slot 0 must be < s = 8 (negative values are padding; --out-of-range skip drops values >= s)\n`);
  } finally {
    tmp.done();
  }
});
