import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWorkerPool } from '../../src/pool/pool.js';

const registry = new URL('./fixture-kernels.ts', import.meta.url);

test('runs a kernel over row ranges across workers, writing shared memory', async () => {
  const pool = createWorkerPool({ threads: 2, registry });
  try {
    for (const [rows, width] of [[1, 3], [7, 5], [64, 33]] as const) {
      const out = new Float32Array(new SharedArrayBuffer(rows * width * 4));
      await pool.runRows('fillRows', { out, width }, 0, rows);
      for (let r = 0; r < rows; r++) for (let j = 0; j < width; j++) assert.equal(out[r * width + j], r * 1000 + j);
    }
  } finally {
    await pool.close();
  }
});

test('writes only the rows asked for', async () => {
  const pool = createWorkerPool({ threads: 2, registry });
  try {
    const out = new Float32Array(new SharedArrayBuffer(10 * 2 * 4)).fill(-1);
    await pool.runRows('fillRows', { out, width: 2 }, 3, 7);
    for (let r = 0; r < 10; r++) assert.equal(out[r * 2], r >= 3 && r < 7 ? r * 1000 : -1, `row ${r}`);
  } finally {
    await pool.close();
  }
});

test('a kernel error rejects the call with that error, and the pool still works', async () => {
  const pool = createWorkerPool({ threads: 2, registry });
  try {
    await assert.rejects(pool.runRows('failAt', { badRow: 5 }, 0, 8), /row 5 is bad/);
    await assert.rejects(pool.runRows('noSuchKernel', {}, 0, 8), /unknown kernel 'noSuchKernel'/);
    const out = new Float32Array(new SharedArrayBuffer(4 * 4));
    await pool.runRows('fillRows', { out, width: 1 }, 0, 4);
    assert.deepEqual([...out], [0, 1000, 2000, 3000]);
  } finally {
    await pool.close();
  }
});

test('a worker that dies rejects the call instead of hanging', async () => {
  const pool = createWorkerPool({ threads: 2, registry });
  try {
    await assert.rejects(pool.runRows('exit', {}, 0, 2));
  } finally {
    await pool.close();
  }
});

test('refuses arrays not backed by a SharedArrayBuffer', async () => {
  const pool = createWorkerPool({ threads: 1, registry });
  try {
    await assert.rejects(pool.runRows('fillRows', { out: new Float32Array(4), width: 1 }, 0, 4), /'out' must be backed by a SharedArrayBuffer/);
  } finally {
    await pool.close();
  }
});

test('rejects calls after close', async () => {
  const pool = createWorkerPool({ threads: 1, registry });
  await pool.close();
  await assert.rejects(pool.runRows('fillRows', {}, 0, 1), /closed/);
});
