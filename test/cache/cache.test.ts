// The DSA cache: appends write only the new slots, in every key form, both
// layouts; a full cache, a key that cannot be quantized or a bad shape is a
// named error that changes nothing; pagedSlots maps positions to slots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDsaCache, type DsaCache } from '../../src/cache/cache.js';
import { pagedSlots } from '../../src/cache/slots.js';
import { quantizeKeys, quantizeKeysFp8 } from '../../src/indexer/quantized-keys.js';
import { hadamardInPlace } from '../../src/indexer/fp8.js';
import type { Tensor } from '../../src/tensor.js';
import { rng } from '../../src/cli/demo-data.js';

function floats(shape: number[], seed: number): Tensor<Float32Array> {
  const next = rng(seed);
  return { data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => next() * 2 - 1), shape };
}

/** The stored key rows of sequence `seq` as the cache's keys tensor holds them, in position order. */
function storedRows(cache: DsaCache, seq: number): number[] {
  const slots: number[] = [];
  for (let p = 0; p < cache.length(seq); p++) slots.push(cache.blockTable.data[seq * cache.maxBlocks + Math.floor(p / cache.pageSize)] * cache.pageSize + (p % cache.pageSize));
  return slots;
}

for (const layout of ['contiguous', 'paged'] as const) {
  test(`${layout}: appends store each key form as quantizeKeys / quantizeKeysFp8 would and copy kv rows; nothing earlier moves`, () => {
    const d = 16, dqk = 8;
    const shape = layout === 'contiguous' ? { capacity: 40 } : { pages: 12, pageSize: 4 };
    for (const keyForm of ['float32', 'int8', 'fp8'] as const) {
      const cache = createDsaCache({ batch: 2, ...shape, indexerDim: d, kvDim: dqk, keyForm });
      const k1 = floats([7, d], 1), kv1 = floats([7, 1, dqk], 2), k2 = floats([5, d], 3), kv2 = floats([5, 1, dqk], 4);
      cache.append(1, { keys: k1, kv: kv1 });
      const before = new Uint8Array(cache.kv.data.buffer.slice(0));
      cache.append(0, { keys: k2, kv: kv2 });
      cache.append(1, { keys: k2, kv: kv2 });
      assert.deepEqual([...cache.lengths], [5, 12], `${keyForm}: lengths`);
      // Sequence 1's first 7 kv rows did not move.
      const slots1 = storedRows(cache, 1);
      for (let p = 0; p < 7; p++) {
        const at = slots1[p] * dqk;
        assert.deepEqual(new Float32Array(cache.kv.data.buffer, cache.kv.data.byteOffset + at * 4, dqk), new Float32Array(before.buffer, at * 4, dqk), `${keyForm}: kv row ${p} unmoved`);
        assert.deepEqual(Array.from(cache.kv.data.subarray(at, at + dqk)), Array.from(kv1.data.subarray(p * dqk, (p + 1) * dqk)));
      }
      // Keys as the one-shot quantizers store them (FP8 rotated by default).
      const all = { data: new Float32Array([...k1.data, ...k2.data]), shape: [1, 12, d] };
      if (keyForm === 'float32') {
        slots1.forEach((slot, p) => assert.deepEqual(Array.from((cache.keys as Tensor<Float32Array>).data.subarray(slot * d, (slot + 1) * d)), Array.from(all.data.subarray(p * d, (p + 1) * d))));
      } else if (keyForm === 'int8') {
        const want = quantizeKeys(all);
        const got = cache.keys as ReturnType<typeof quantizeKeys>;
        slots1.forEach((slot, p) => {
          assert.deepEqual(Array.from(got.values.data.subarray(slot * d, (slot + 1) * d)), Array.from(want.values.data.subarray(p * d, (p + 1) * d)), `int8 key ${p}`);
          assert.equal(got.scales.data[slot], want.scales.data[p]);
        });
      } else {
        const want = quantizeKeysFp8(all);
        const got = cache.keys as ReturnType<typeof quantizeKeysFp8>;
        const P = cache.pageSize;
        const gotScales = new Float32Array(got.data.buffer, got.data.byteOffset, got.data.length / 4);
        const wantScales = new Float32Array(want.data.buffer, want.data.byteOffset, want.data.length / 4);
        slots1.forEach((slot, p) => {
          const page = Math.floor(slot / P), o = slot % P;
          assert.deepEqual(Array.from(got.data.subarray(slot * d + page * P * 4, slot * d + page * P * 4 + d)), Array.from(want.data.subarray(p * d, (p + 1) * d)), `fp8 codes ${p}`);
          assert.equal(gotScales[(page * P * (d + 4) + P * d) / 4 + o], wantScales[(12 * d) / 4 + p], `fp8 scale ${p}`);
        });
      }
    }
  });

  test(`${layout}: a full cache, a non-finite key or a bad shape is a named error and changes nothing`, () => {
    const shape = layout === 'contiguous' ? { capacity: 8 } : { pages: 3, pageSize: 4 };
    const cache = createDsaCache({ batch: 2, ...shape, indexerDim: 8, kvDim: 4 });
    cache.append(0, { keys: floats([6, 8], 1), kv: floats([6, 1, 4], 2) });
    const snapshot = () => ({ lengths: [...cache.lengths], free: cache.freePages(), kv: cache.kv.data.slice(), keys: (cache.keys as { data: Uint8Array }).data.slice() });
    const before = snapshot();
    assert.throws(() => cache.append(0, { keys: floats([7, 8], 3), kv: floats([7, 1, 4], 4) }), /cache: sequence 0 holds 6 .*7 more.*a full cache/);
    const bad = floats([2, 8], 5);
    bad.data[11] = NaN;
    assert.throws(() => cache.append(1, { keys: bad, kv: floats([2, 1, 4], 6) }), /keys: token 1, dim 3 is NaN; an fp8 cache quantizes keys/);
    assert.throws(() => cache.append(1, { keys: floats([2, 7], 7), kv: floats([2, 1, 4], 6) }), /keys d = 7 must equal the cache indexerDim = 8/);
    assert.throws(() => cache.append(1, { keys: floats([2, 8], 7), kv: floats([3, 1, 4], 6) }), /kv n = 3 must equal keys n = 2/);
    assert.throws(() => cache.append(2, { keys: floats([2, 8], 7), kv: floats([2, 1, 4], 6) }), /seq: expected a sequence in \[0, 2\), got number 2/);
    assert.deepEqual(snapshot(), before, 'nothing changed');
    cache.reset(0);
    assert.equal(cache.length(0), 0);
    if (layout === 'paged') assert.equal(cache.freePages(), 3, 'pages back in the pool');
    cache.append(0, { keys: floats([8, 8], 1), kv: floats([8, 1, 4], 2) });
    assert.equal(cache.length(0), 8);
  });
}

test('paged: sequences take pages from the shared pool as they grow and give them back on reset', () => {
  const cache = createDsaCache({ batch: 3, pages: 5, pageSize: 4, indexerDim: 8, kvDim: 4, keyForm: 'int8' });
  cache.append(0, { keys: floats([5, 8], 1), kv: floats([5, 1, 4], 2) }); // 2 pages
  cache.append(1, { keys: floats([4, 8], 3), kv: floats([4, 1, 4], 4) }); // 1 page
  assert.equal(cache.freePages(), 2);
  assert.equal(cache.room(2), 8);
  assert.equal(cache.room(0), 3 + 8);
  assert.throws(() => cache.append(2, { keys: floats([9, 8], 5), kv: floats([9, 1, 4], 6) }), /9 more need 3 new pages of 4, but only 2 of 5 are free/);
  cache.reset(0);
  assert.equal(cache.freePages(), 4);
  cache.append(2, { keys: floats([9, 8], 5), kv: floats([9, 1, 4], 6) });
  const pages = new Set<number>();
  for (const seq of [1, 2]) for (let blk = 0; blk < Math.ceil(cache.length(seq) / 4); blk++) pages.add(cache.blockTable.data[seq * cache.maxBlocks + blk]);
  assert.equal(pages.size, 4, 'no page held twice');
});

test('createDsaCache checks its options by name', () => {
  assert.throws(() => createDsaCache({ batch: 1 }), /give capacity .* or pages/);
  assert.throws(() => createDsaCache({ batch: 1, capacity: 8, pages: 2 }), /got both/);
  assert.throws(() => createDsaCache({ batch: 0, capacity: 8 }), /batch: expected a positive integer, got number 0/);
  assert.throws(() => createDsaCache({ batch: 1, capacity: 8, pageSize: 4 }), /pageSize: only the paged layout/);
  assert.throws(() => createDsaCache({ batch: 1, pages: 2, pageSize: 3, indexerDim: 3, hadamard: false }), /pageSize \* indexerDim a multiple of 4/);
  assert.throws(() => createDsaCache({ batch: 1, capacity: 8, indexerDim: 256 }), /keyForm 'fp8': needs indexerDim <= 128/);
  assert.throws(() => createDsaCache({ batch: 1, capacity: 8, indexerDim: 12 }), /hadamard: needs indexerDim a power of 2/);
  assert.throws(() => createDsaCache({ batch: 1, capacity: 8, keyForm: 'bf16' as never }), /keyForm: expected one of 'float32', 'int8', 'fp8'/);
  assert.throws(() => createDsaCache({ batch: 1, capacity: 8, precision: 'int4' as never }), /precision: expected one of 'float32', 'int8', 'int7', 'fp8'/);
  assert.throws(() => createDsaCache({ batch: 1, capacity: 8, precision: 'int7' }), /precision: keyForm 'fp8' scores in precision 'fp8', got 'int7'/);
  assert.throws(() => createDsaCache({ batch: 1, capacity: 8, keyForm: 'int8', precision: 'fp8' }), /precision: keyForm 'int8' scores in precision 'int8' or 'int7', got 'fp8'/);
  assert.equal(createDsaCache({ batch: 1, capacity: 8, keyForm: 'int8', precision: 'int7', kvDim: 4 }).precision, 'int7');
  assert.equal(createDsaCache({ batch: 1, capacity: 8, keyForm: 'int8', kvDim: 4 }).precision, 'int8');
  assert.throws(() => createDsaCache({ batch: 8, capacity: 1 << 20, maxBytes: 1 << 20 }), /a DSA cache of 8388608 slots needs .* over maxBytes/);
  // Slots are int32: at most 2^31 of them, checked before the memory guard and before anything is allocated.
  assert.throws(() => createDsaCache({ batch: 1, pages: 2 ** 20, pageSize: 2 ** 12, indexerDim: 1, kvDim: 1, keyForm: 'float32', maxBytes: 2 ** 60 }), {
    name: 'RangeError',
    message: /^createDsaCache: pages \* pageSize = 1048576 \* 4096 = 4294967296 slots; expected at most 2147483648 \(slots are int32\)$/,
  });
  assert.throws(() => createDsaCache({ batch: 3, capacity: 2 ** 30, keyForm: 'float32', maxBytes: 2 ** 60 }), /^RangeError: createDsaCache: batch \* capacity = 3 \* 1073741824 = 3221225472 slots; expected at most 2147483648/);
  assert.throws(() => createDsaCache({ batch: 1, pages: 2, pageSize: 2 ** 31, keyForm: 'float32', maxBytes: 2 ** 60 }), /pages \* pageSize = 2 \* 2147483648 = 4294967296 slots/);
  assert.throws(() => createDsaCache({ batch: 1, pages: 1, pageSize: 2 ** 31, keyForm: 'float32', maxBytes: 1 << 20 }), /a DSA cache of 2147483648 slots needs .* over maxBytes/);
});

test('a float32 cache with hadamard stores the rotated keys', () => {
  const cache = createDsaCache({ batch: 1, capacity: 4, indexerDim: 8, kvDim: 2, keyForm: 'float32', hadamard: true });
  const k = floats([2, 8], 9);
  cache.append(0, { keys: k, kv: floats([2, 1, 2], 1) });
  const want = k.data.slice();
  hadamardInPlace(want, 0, 8);
  hadamardInPlace(want, 8, 8);
  assert.deepEqual((cache.keys as Tensor<Float32Array>).data.subarray(0, 16), want);
});

test('pagedSlots maps positions to physical slots through the block table; -1 stays; bad positions and entries are named', () => {
  const table = { data: Int32Array.from([3, 0, 9, 2, 7, 1]), shape: [2, 3] };
  const indices = { data: Int32Array.from([0, 5, -1, 9, 11, 4]), shape: [2, 1, 3] };
  const slots = pagedSlots(indices, table, 4);
  assert.deepEqual([...slots.data], [12, 1, -1, 5, 7, 28]);
  assert.throws(() => pagedSlots(indices, table, 4, { seqLens: Int32Array.from([6, 10]) }), /indices: batch 1, query 0, slot 1 is position 11, past the sequence's length 10/);
  assert.throws(() => pagedSlots({ data: Int32Array.from([1, 9]), shape: [1, 1, 2] }, { data: Int32Array.from([3, 0, 9]), shape: [1, 3] }, 4, { numPages: 8 }), /blockTable: sequence 0, block 2 is 9; expected a page in \[0, 8\)/);
  assert.throws(() => pagedSlots({ data: Int32Array.from([12]), shape: [1, 1, 1] }, { data: Int32Array.from([0, 1, 2]), shape: [1, 3] }, 4), /position 12, in block 3, past the table's 3 blocks of 4/);
});

// Before: pageSize 2^31 gave slot -2147483647 for 2147483649, pageSize 2^32 gave 4 for 17179869188.
test('pagedSlots: a slot past 2^31 - 1 is a RangeError naming position, page and pageSize, before anything is written; up to it, exact', () => {
  const one = (p: number) => ({ data: Int32Array.of(p), shape: [1, 1, 1] });
  const cases: [pageSize: number, page: number, p: number, slot: number][] = [
    [2 ** 31, 1, 1, 2 ** 31 + 1],
    [2 ** 32, 4, 4, 17179869188],
    [2 ** 16, 2 ** 15, 0, 2 ** 31],
    [1e300, 1, 7, 1e300 + 7],
  ];
  for (const [pageSize, page, p, slot] of cases) {
    assert.throws(() => pagedSlots(one(p), { data: Int32Array.of(page), shape: [1, 1] }, pageSize), {
      name: 'RangeError',
      message: new RegExp(`^pageSize: batch 0, query 0, slot 0 is position ${p}, in page ${page} \\(sequence 0, block 0\\) of pageSize ${String(pageSize).replace('+', '\\+')}: slot ${String(slot).replace('+', '\\+')}; expected a slot <= 2147483647 \\(slots are int32\\)$`),
    });
  }
  // Page 0 of a huge page and the last int32 slot are fine; -1 stays -1.
  assert.deepEqual([...pagedSlots({ data: Int32Array.of(5, -1), shape: [1, 1, 2] }, { data: Int32Array.of(0), shape: [1, 1] }, 2 ** 32).data], [5, -1]);
  assert.deepEqual([...pagedSlots(one(2 ** 16 - 1), { data: Int32Array.of(2 ** 15 - 1), shape: [1, 1] }, 2 ** 16).data], [2 ** 31 - 1]);
  assert.deepEqual([...pagedSlots(one(2 ** 31 - 1), { data: Int32Array.of(0), shape: [1, 1] }, 2 ** 31).data], [2 ** 31 - 1]);
});
