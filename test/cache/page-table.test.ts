// The page table shared by several caches (src/cache/page-table.ts): one
// block table, lengths and free pool for every cache on it; reservations
// that commit nothing give the same slots again; inside a hold the commits
// of every cache apply once (or not at all); restore puts a snapshot back;
// a table of several caches refuses a step of one alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDsaCache } from '../../src/cache/cache.js';

const layout = { batch: 2, pages: 6, pageSize: 4, indexerDim: 8, kvDim: 4, keyForm: 'float32' as const };
const keys = (n: number) => ({ data: new Float32Array(n * 8).fill(0.5), shape: [n, 8] });
const kv = (n: number) => ({ data: new Float32Array(n * 4).fill(0.25), shape: [n, 1, 4] });

test('caches on one page table share its lengths and block table; each holds its own kv and key pages', () => {
  const a = createDsaCache(layout);
  const b = createDsaCache({ pageTable: a.pageTable, indexerDim: 1, kvDim: 4, keyForm: 'float32' });
  assert.equal(b.pageTable, a.pageTable);
  assert.equal(b.lengths, a.lengths);
  assert.equal(b.blockTable, a.blockTable);
  assert.equal(b.numPages, 6);
  assert.equal(b.pageSize, 4);
  assert.notEqual(b.kv.data, a.kv.data);
  assert.equal(a.pageTable.caches, 2);
  for (const name of ['batch', 'pages', 'capacity', 'pageSize']) {
    assert.throws(() => createDsaCache({ pageTable: a.pageTable, [name]: 4 }), new RegExp(`^RangeError: ${name}: a cache on a shared pageTable`));
  }
  assert.throws(() => createDsaCache({ pageTable: {} as never }), /pageTable: expected another cache's pageTable/);
  assert.throws(() => createDsaCache({ pageTable: a.pageTable, shared: !a.shared }), /shared: the pageTable's arrays are/);
});

test('inside a hold: reservations repeat, commits of every cache apply once at settle(true) and none at settle(false); outside one, a shared table refuses a step', () => {
  const a = createDsaCache(layout);
  const b = createDsaCache({ pageTable: a.pageTable, indexerDim: 8, kvDim: 4, keyForm: 'float32' });
  const table = a.pageTable;
  assert.throws(() => a.append(0, { keys: keys(1), kv: kv(1) }), /shared by 2 layer caches/);
  assert.equal(a.length(0), 0);
  const seqs = Int32Array.of(1, 0);
  table.hold();
  assert.throws(() => table.hold(), /a step is already running/);
  assert.throws(() => b.reset(0), /reset after it ends/);
  const ra = a.reserve(seqs, 5), rb = b.reserve(seqs, 5);
  assert.deepEqual(rb, ra, 'the same slots for every cache');
  assert.deepEqual(ra.map((r) => r.pages), [2, 2]);
  a.commit(ra);
  b.commit(rb);
  assert.deepEqual(Array.from(table.lengths), [0, 0], 'nothing applied inside the hold');
  assert.throws(() => b.commit(b.reserve(Int32Array.of(0), 1)), /reserved different slots/);
  table.settle(false);
  assert.deepEqual(Array.from(table.lengths), [0, 0]);
  assert.equal(table.freePages(), 6);
  table.hold();
  a.commit(a.reserve(seqs, 5));
  b.commit(b.reserve(seqs, 5));
  table.settle(true);
  assert.deepEqual(Array.from(table.lengths), [5, 5], 'applied once, not per cache');
  assert.equal(table.freePages(), 2);
  const snap = table.snapshot();
  table.hold();
  const taken = a.reserve(Int32Array.of(0), 4);
  a.commit(taken);
  table.settle(true);
  assert.equal(table.freePages(), 1);
  table.restore(snap);
  assert.deepEqual(Array.from(table.lengths), [5, 5]);
  assert.equal(table.freePages(), 2);
  table.hold();
  const again = a.reserve(Int32Array.of(0), 4);
  table.settle(false);
  assert.deepEqual(again, taken, 'after restore, the same slots (the same page) are taken again');
  b.reset(1);
  assert.equal(a.length(1), 0, 'a reset through one cache empties the sequence in all');
  assert.equal(table.freePages(), 4);
});

test('a cache alone on its table steps as before (no hold needed)', () => {
  const a = createDsaCache(layout);
  a.append(0, { keys: keys(5), kv: kv(5) });
  assert.equal(a.length(0), 5);
  assert.equal(a.freePages(), 4);
});
