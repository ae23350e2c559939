import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWorkerPool } from '../../src/pool/pool.js';
import { planRunner } from '../../src/pool/runner.js';
import { createStaging } from '../../src/pool/staging.js';
import { runPlan, type KernelTable, type Plan } from '../../src/plan.js';
import { allocShared } from '../../src/tensor.js';
import { rng } from '../../src/cli/demo-data.js';
import { kernels as fixtureKernels } from './fixture-kernels.js';

const registry = new URL('./fixture-kernels.ts', import.meta.url);
const kernels = fixtureKernels as KernelTable;

function floats(length: number, seed: number): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length }, () => next() * 2 - 1);
}

/** out = a + b over [rows, width], into `out` or a fresh shared array. */
function addPlan(a: Float32Array, b: Float32Array, width: number, out = allocShared(Float32Array, a.length)): Plan<Float32Array> {
  return { steps: [{ kernel: 'addRows', args: { a, b, out, width }, rows: [0, a.length / width], writes: ['out'] }], finish: () => out };
}

/** a + b on this thread: what the pool must give. */
const addHere = (a: Float32Array, b: Float32Array, width: number) => runPlan(addPlan(a, b, width, new Float32Array(a.length)), kernels);

/** Plain inputs [rows, width] of seed `seed`, and a plain out unless `fresh`. */
function addCase(rows: number, width: number, seed: number, fresh = false) {
  const a = floats(rows * width, seed), b = floats(rows * width, seed + 1);
  return { a, b, width, out: fresh ? undefined : new Float32Array(rows * width), want: addHere(a, b, width) };
}

test('plain arrays: repeated and concurrent calls equal this thread, and warm calls allocate no staging', async () => {
  const pool = createWorkerPool({ threads: 2, registry });
  const staging = createStaging();
  const run = planRunner(pool, kernels, staging);
  try {
    const runCase = async (c: ReturnType<typeof addCase>, what: string) => {
      const got = await run(addPlan(c.a, c.b, c.width, c.out));
      assert.deepEqual(got, c.want, what);
      if (c.out) assert.equal(got, c.out, `${what}: the caller's out`);
    };
    // Two sizes in flight together: two buffers.
    await Promise.all([runCase(addCase(8, 100, 1), 'a[8,100]'), runCase(addCase(33, 70, 3, true), 'a[33,70] fresh out')]);
    assert.equal(staging.free.length, 2);
    const [small, large] = staging.free;
    // Larger than either: the larger buffer grows; the smaller is kept.
    await runCase(addCase(64, 300, 5), 'a[64,300]');
    assert.equal(staging.free.length, 2);
    assert.equal(staging.free[0], small);
    assert.notEqual(staging.free[1], large);
    assert.ok(staging.free[1].byteLength >= 3 * 64 * 300 * 4);
    // Smaller again, repeated: served by the buffers there, none allocated.
    const kept = [...staging.free];
    for (const [rows, width, seed] of [[2, 50, 7], [8, 100, 9], [64, 300, 11], [3, 3, 13]]) {
      await runCase(addCase(rows, width, seed), `a[${rows},${width}] again`);
      assert.deepEqual(staging.free, kept, `a[${rows},${width}] again: the same buffers`);
    }
    // Shared inputs and out are used in place: no staging.
    const shared = addCase(4, 10, 15);
    const inPlace = { a: allocShared(Float32Array, 40), b: allocShared(Float32Array, 40), out: allocShared(Float32Array, 40) };
    inPlace.a.set(shared.a);
    inPlace.b.set(shared.b);
    assert.deepEqual(await run(addPlan(inPlace.a, inPlace.b, 10, inPlace.out)), shared.want);
    assert.deepEqual(staging.free, kept);
  } finally {
    await pool.close();
  }
});

test('calls in flight together never share a staging buffer', async () => {
  const pool = createWorkerPool({ threads: 2, registry });
  const staging = createStaging();
  const run = planRunner(pool, kernels, staging);
  try {
    const width = 16, rows = 4;
    const gate = allocShared(Int32Array, 1);
    const open = allocShared(Int32Array, 1);
    open[0] = 1;
    const copyPlan = (input: Float32Array, gate: Int32Array): Plan<Float32Array> => {
      const out = allocShared(Float32Array, input.length);
      return { steps: [{ kernel: 'copyWhenOpen', args: { input, out, gate, width }, rows: [0, rows], writes: ['out'], splittable: false }], finish: () => out };
    };
    const first = floats(rows * width, 1), second = floats(rows * width, 2);
    // The first call's worker waits before it reads its staged input; the
    // second call stages its own input (same size) and completes meanwhile.
    const waiting = run(copyPlan(first, gate));
    assert.deepEqual(await run(copyPlan(second, open)), second);
    Atomics.store(gate, 0, 1);
    Atomics.notify(gate, 0);
    assert.deepEqual(await waiting, first);
    assert.equal(staging.free.length, 2);
  } finally {
    await pool.close();
  }
});

test('a failing call gives its staging back', async () => {
  const pool = createWorkerPool({ threads: 2, registry });
  const staging = createStaging();
  const run = planRunner(pool, kernels, staging);
  try {
    const values = new Float32Array(64);
    // A kernel that throws on a worker.
    await assert.rejects(run({ steps: [{ kernel: 'failAt', args: { values, badRow: 5 }, rows: [0, 8], writes: [] }], finish: () => null }), /row 5 is bad/);
    assert.equal(staging.free.length, 1);
    const buffer = staging.free[0];
    // A plan whose finish throws (a data-dependent check, as generateMask's index check).
    const failing: Plan<never> = {
      steps: [{ kernel: 'fillRows', args: { out: values, width: 8 }, rows: [0, 8], writes: ['out'] }],
      finish: () => {
        throw new RangeError('finish: bad');
      },
    };
    await assert.rejects(run(failing), /finish: bad/);
    assert.deepEqual(staging.free, [buffer]);
    // A worker that dies.
    await assert.rejects(run({ steps: [{ kernel: 'exit', args: { values }, rows: [0, 2], writes: [] }], finish: () => null }));
    assert.deepEqual(staging.free, [buffer]);
    // The pool and the staging still work, with that same buffer.
    const c = addCase(4, 4, 1);
    assert.deepEqual(await run(addPlan(c.a, c.b, c.width, c.out)), c.want);
    assert.deepEqual(staging.free, [buffer]);
  } finally {
    await pool.close();
  }
});

test("a call's results never alias a later call's staging", async () => {
  const pool = createWorkerPool({ threads: 2, registry });
  const staging = createStaging();
  const run = planRunner(pool, kernels, staging);
  try {
    const firstPlain = addCase(16, 32, 1), firstFresh = addCase(16, 32, 3, true);
    const gotPlain = await run(addPlan(firstPlain.a, firstPlain.b, firstPlain.width, firstPlain.out));
    const gotFresh = await run(addPlan(firstFresh.a, firstFresh.b, firstFresh.width));
    // Later calls of the same size overwrite the staging buffer the first ones used.
    for (let seed = 5; seed < 9; seed++) {
      const c = addCase(16, 32, seed * 2);
      assert.deepEqual(await run(addPlan(c.a, c.b, c.width, c.out)), c.want);
    }
    assert.deepEqual(gotPlain, firstPlain.want);
    assert.deepEqual(gotFresh, firstFresh.want);
    assert.ok(!(gotPlain.buffer instanceof SharedArrayBuffer), "a plain out stays the caller's plain array");
    assert.ok(!staging.free.includes(gotFresh.buffer as SharedArrayBuffer), 'a fresh out is not staging');
  } finally {
    await pool.close();
  }
});

test('a step of one row runs on this thread through the staged copies', async () => {
  const pool = createWorkerPool({ threads: 2, registry });
  const staging = createStaging();
  const run = planRunner(pool, kernels, staging);
  try {
    // Rows [0, 2) on the workers, row 2 here, then all three on the workers again, each seeing the last.
    const width = 8;
    const a = floats(3 * width, 1), b = floats(3 * width, 2), out = new Float32Array(3 * width);
    const step = (rows: [number, number]) => ({ kernel: 'addRows', args: { a, b, out, width }, rows, writes: ['out'] });
    const got = await run({ steps: [step([0, 2]), step([2, 3]), step([0, 3])], finish: () => out });
    assert.deepEqual(got, addHere(a, b, width));
    assert.equal(staging.free.length, 1);
  } finally {
    await pool.close();
  }
});
