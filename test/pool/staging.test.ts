import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStaging } from '../../src/pool/staging.js';

test('a buffer taken is the taker alone until given back, then served again', () => {
  const staging = createStaging();
  const first = staging.take(1000), second = staging.take(1000);
  assert.notEqual(first, second);
  assert.ok(first.byteLength >= 1000 && second.byteLength >= 1000);
  staging.give(first);
  assert.equal(staging.take(10), first);
  assert.equal(staging.free.length, 0, 'second is still out');
});

test('takes the smallest free buffer that fits; when none does, the largest grows with 1/8 room', () => {
  const staging = createStaging();
  const [a, b, c] = [staging.take(100), staging.take(1000), staging.take(10_000)];
  for (const x of [c, a, b]) staging.give(x);
  assert.deepEqual(staging.free, [a, b, c], 'smallest first');
  assert.equal(staging.take(500), b);
  staging.give(b);
  const grown = staging.take(20_000);
  assert.equal(grown.byteLength, 20_000 + 2_500);
  assert.deepEqual(staging.free, [a, b], 'the largest (too small) was dropped');
  staging.give(grown);
  assert.deepEqual(staging.free, [a, b, grown]);
});

test('keeps at most 4 free buffers, the largest', () => {
  const staging = createStaging();
  const taken = [600, 100, 300, 500, 200].map((bytes) => staging.take(bytes));
  for (const x of taken) staging.give(x);
  assert.deepEqual(staging.free.map((x) => x.byteLength), [200, 300, 500, 600].map((x) => x + (x >>> 3)));
});

test('close drops the free buffers and every buffer given back later', () => {
  const staging = createStaging();
  const [a, b] = [staging.take(64), staging.take(64)];
  staging.give(a);
  staging.close();
  assert.equal(staging.free.length, 0);
  staging.give(b);
  assert.equal(staging.free.length, 0);
});
