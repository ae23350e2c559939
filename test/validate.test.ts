import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkTensor, checkRows, checkSize, checkOut, checkBytes, checkOneOf, defaultMaxBytes } from '../src/validate.js';
import { int64ToInt32, DEFAULT_MASK_VALUE } from '../src/tensor.js';

test('checkTensor names the argument, the expected and the actual value', () => {
  const ok = { data: new Int32Array(6), shape: [1, 2, 3] };
  assert.deepEqual(checkTensor('indices', ok, Int32Array, ['b', 't', 'k']), [1, 2, 3]);
  assert.throws(() => checkTensor('indices', { data: new Float32Array(6), shape: [1, 2, 3] }, Int32Array, ['b', 't', 'k']),
    { name: 'TypeError', message: 'indices.data: expected a Int32Array, got Float32Array' });
  assert.throws(() => checkTensor('indices', { data: new Int32Array(6), shape: [6] }, Int32Array, ['b', 't', 'k']),
    { name: 'RangeError', message: 'indices.shape: expected [b, t, k] (rank 3), got [6] (rank 1)' });
  assert.throws(() => checkTensor('indices', { data: new Int32Array(6), shape: [1, 0, 3] }, Int32Array, ['b', 't', 'k']),
    { name: 'RangeError', message: 'indices.shape: dimension t must be a positive integer, got 0' });
  assert.throws(() => checkTensor('indices', { data: new Int32Array(5), shape: [1, 2, 3] }, Int32Array, ['b', 't', 'k']),
    { name: 'RangeError', message: 'indices: data.length must equal the product of shape [1, 2, 3] = 6, got 5' });
  assert.throws(() => checkTensor('indices', new Int32Array(3), Int32Array, ['b', 't', 'k']), /indices: expected a tensor/);
});

test('sizes, rows, options and out buffers are checked', () => {
  assert.equal(checkSize('s', 5), 5);
  for (const bad of [0, -1, 1.5, NaN, '3']) assert.throws(() => checkSize('s', bad), /^RangeError: s: expected a positive integer/);
  assert.deepEqual(checkRows(undefined, 4), [0, 4]);
  assert.deepEqual(checkRows([1, 3], 4), [1, 3]);
  for (const bad of [[3, 1], [0, 5], [-1, 2], [0.5, 2], [1]]) assert.throws(() => checkRows(bad, 4), /^RangeError: rows: expected \[start, end\)/);
  assert.equal(checkOneOf('form', 'bits', ['additive', 'bool', 'bits'] as const), 'bits');
  assert.throws(() => checkOneOf('form', 'dense', ['additive', 'bool']), /form: expected one of 'additive', 'bool', got string "dense"/);
  assert.throws(() => checkOut('out', new Float32Array(3), Float32Array, 4), /out: expected a Float32Array of length 4, got length 3/);
  assert.throws(() => checkOut('out', new Uint8Array(4), Float32Array, 4), /^TypeError: out: expected a Float32Array of length 4, got Uint8Array/);
});

test('the memory guard throws before allocating and names the cheaper forms', () => {
  assert.doesNotThrow(() => checkBytes('mask', 1024, 2048, 'use bits'));
  assert.throws(() => checkBytes('mask', 4096, 2048, "use form 'bits'"), /mask needs 4\.0 KiB \(4096 bytes\), over maxBytes = 2\.0 KiB; use form 'bits'/);
  const limit = defaultMaxBytes();
  assert.ok(limit > 0 && limit <= 4 * 1024 ** 3);
});

test('int64ToInt32 range-checks every element', () => {
  assert.deepEqual([...int64ToInt32('indices', new BigInt64Array([0n, -1n, 2147483647n]))], [0, -1, 2147483647]);
  assert.throws(() => int64ToInt32('indices', new BigInt64Array([1n, 2147483648n])), /indices: element 1 is 2147483648, outside int32/);
  assert.throws(() => int64ToInt32('indices', new BigInt64Array([-2147483649n])), /element 0 is -2147483649/);
});

test('DEFAULT_MASK_VALUE is MaxText -0.7 * float32 max, exact in float32', () => {
  assert.equal(DEFAULT_MASK_VALUE, new Float32Array([-0.7 * 3.4028234663852886e38])[0]);
  assert.equal(Math.fround(DEFAULT_MASK_VALUE + DEFAULT_MASK_VALUE), -Infinity);
});
