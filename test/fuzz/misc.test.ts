// A fuzz of the small exports: wordsPerRow and allocShared (sizes of every
// kind, constructors that are not typed arrays), the SIMD probes and
// initSimd's options, shareWeights, and the interop helpers (isOrtTensor,
// isTfTensor, fromEcosystem, toEcosystem) over objects shaped like
// onnxruntime and tfjs tensors and modules, right and wrong. Each call
// equals its definition or throws a named RangeError / TypeError in bounded
// time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { allocShared, wordsPerRow } from '../../src/tensor.js';
import { initSimd, relaxedSimdSupported, simdBuild, simdSupported } from '../../src/simd/index.js';
import { shareWeights } from '../../src/interop/index.js';
import { fromEcosystem, isOrtTensor, isTfTensor, toEcosystem } from '../../src/interop/index.js';
import { check, checkAsync, mostly, report, sameBits, type Expected } from './harness.js';

const SIZES: unknown[] = [0, 1, 31, 32, 33, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1, 2 ** 53, -1, 1.5, NaN, Infinity, -Infinity, '32', null, undefined, 3n];

test('wordsPerRow: ceil(s / 32) for every non-negative integer up to 2^53, a named RangeError otherwise', () => {
  const started = performance.now();
  fc.assert(
    fc.property(fc.oneof(fc.constantFrom(...SIZES), fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.double()), (s) => {
      const ok = typeof s === 'number' && Number.isSafeInteger(s) && s >= 0;
      // The definition: the least w with 32 w >= s, in exact integer arithmetic.
      const want = ok ? Number((BigInt(s as number) + 31n) / 32n) : 0;
      check(`wordsPerRow(${String(s)})`, () => wordsPerRow(s as number), ok ? { value: want } : { bad: ['s'] }, (got, w) => assert.equal(got, w, `wordsPerRow(${String(s)})`));
    }),
    { numRuns: 3000 },
  );
  report('wordsPerRow', started);
});

class Float32Subclass extends Float32Array {}
const CTORS = [Float32Array, Float64Array, Int32Array, Uint32Array, Uint8Array, Int8Array, Int16Array, Uint16Array, BigInt64Array, BigUint64Array, Uint8ClampedArray, Float32Subclass] as const;

test('allocShared: zeroed shared arrays of every typed array kind and length, named errors for bad lengths and constructors', () => {
  const started = performance.now();
  const arb = fc.record({
    ctor: mostly(fc.constantFrom<unknown>(...CTORS), fc.constantFrom<unknown>(Array, Object, null, undefined, 'Float32Array', DataView, ArrayBuffer, Float32Array.prototype.constructor.name), 8),
    // 2^45 elements: a valid length whose allocation fails (about 0.1 s each, so rare).
    length: fc.oneof({ weight: 80, arbitrary: fc.integer({ min: 0, max: 64 }) }, { weight: 20, arbitrary: fc.constantFrom<unknown>(-1, 1.5, NaN, Infinity, '4', null, 2 ** 53) }, { weight: 1, arbitrary: fc.constant<unknown>(2 ** 45) }),
  });
  fc.assert(
    fc.property(arb, ({ ctor, length }) => {
      const what = `allocShared(${typeof ctor === 'function' ? ctor.name : String(ctor)}, ${String(length)})`;
      const ctorOk = (CTORS as readonly unknown[]).includes(ctor);
      const lengthOk = typeof length === 'number' && Number.isSafeInteger(length) && length >= 0 && length <= 2 ** 20;
      const bad = [...(ctorOk ? [] : ['ctor']), ...(typeof length === 'number' && Number.isSafeInteger(length) && length >= 0 ? [] : ['length'])];
      // 2^45 elements is a valid length no machine here can back: the allocation's failure, named.
      if (ctorOk && !lengthOk && bad.length === 0) bad.push('length');
      const expected: Expected<number> = bad.length > 0 ? { bad } : { value: length as number };
      check(what, () => allocShared(ctor as Float32ArrayConstructor, length as number), expected, (got, n) => {
        assert.equal(got.constructor, ctor, what);
        assert.equal(got.length, n, what);
        assert.ok(got.buffer instanceof SharedArrayBuffer, `${what}: shared`);
        assert.ok((got as unknown as ArrayLike<number | bigint>).length === 0 || Array.from(got as unknown as ArrayLike<number | bigint>).every((x) => x === 0 || x === 0n), `${what}: zeroed`);
      });
    }),
    { numRuns: 2000 },
  );
  report('allocShared', started);
});

test('SIMD probes: booleans and a build name that agree; initSimd refuses bad options by name and resolves a boolean', async () => {
  const started = performance.now();
  const supported = simdSupported();
  assert.equal(typeof supported, 'boolean');
  assert.equal(typeof relaxedSimdSupported(), 'boolean');
  if (relaxedSimdSupported()) assert.ok(supported, 'relaxed SIMD implies SIMD');
  assert.ok([null, 'baseline', 'relaxed'].includes(simdBuild() as string | null), `simdBuild ${simdBuild()}`);
  if (!supported) assert.equal(simdBuild(), null);
  const junk: [unknown, string[]][] = [[null, ['options']], [7, ['options']], ['relaxed', ['options']], [{ relax: true }, ['initSimd']], [{ relaxed: 'yes' }, ['relaxed']], [{ relaxed: 1 }, ['relaxed']], [{ relaxed: true, other: 1 }, ['initSimd']]];
  for (const [options, bad] of junk) {
    await checkAsync(`initSimd(${JSON.stringify(options)})`, () => initSimd(options as never), { bad }, () => {});
  }
  await checkAsync('initSimd()', () => initSimd(), { value: supported }, (got, want) => assert.equal(got, want));
  assert.equal(simdSupported(), supported, 'initSimd changes nothing it was not asked to');
  report('initSimd', started);
});

test('shareWeights: shared copies of every weight, equal to the originals; bad weights named', () => {
  const started = performance.now();
  const arb = fc.record({
    h: fc.integer({ min: 1, max: 3 }), d: fc.integer({ min: 1, max: 4 }), dim: fc.integer({ min: 1, max: 4 }), qRank: fc.integer({ min: 1, max: 3 }),
    alreadyShared: fc.boolean(),
    fault: mostly(fc.constant('none'), fc.constantFrom('missing', 'f64', 'shape', 'normLength', 'notObject', 'bf16Weight')),
  });
  fc.assert(
    fc.property(arb, ({ h, d, dim, qRank, alreadyShared, fault }) => {
      const make = (n: number, seed: number) => {
        const a = alreadyShared ? new Float32Array(new SharedArrayBuffer(n * 4)) : new Float32Array(n);
        for (let i = 0; i < n; i++) a[i] = Math.sin(seed + i);
        return a;
      };
      const weights: Record<string, unknown> = {
        wqB: { data: make(h * d * qRank, 1), shape: [h * d, qRank] }, wk: { data: make(d * dim, 2), shape: [d, dim] }, weightsProj: { data: make(h * dim, 3), shape: [h, dim] },
        kNormWeight: { data: make(d, 4), shape: [d] }, kNormBias: { data: make(d, 5), shape: [d] },
      };
      const bad: string[] = [];
      if (fault === 'missing') { delete weights.wk; bad.push('weights.wk'); }
      if (fault === 'f64') { weights.weightsProj = { data: new Float64Array(h * dim), shape: [h, dim] }; bad.push('weights.weightsProj'); }
      if (fault === 'shape') { weights.wqB = { data: make(h * d * qRank + qRank, 1), shape: [h * d + 1, qRank] }; bad.push('lightningIndexer'); }
      if (fault === 'normLength') { weights.kNormWeight = { data: make(d + 1, 4), shape: [d + 1] }; bad.push('lightningIndexer'); }
      if (fault === 'bf16Weight') weights.wk = { format: 'bf16', shape: [d, dim], data: new Uint16Array(d * dim).fill(0x3f80) };
      const input = fault === 'notObject' ? null : weights;
      if (fault === 'notObject') bad.push('weights', 'weights.weightsProj');
      const what = `shareWeights h=${h} d=${d} dim=${dim} qRank=${qRank} ${fault} shared=${alreadyShared}`;
      check(what, () => shareWeights(input as never), bad.length > 0 ? { bad } : { value: weights }, (got, want) => {
        for (const key of ['wqB', 'wk', 'weightsProj', 'kNormWeight', 'kNormBias']) {
          const g = (got as unknown as Record<string, { data: Float32Array | Uint16Array; shape: number[] }>)[key], w = want[key] as { data: Float32Array | Uint16Array; shape: number[] };
          assert.ok(g.data.buffer instanceof SharedArrayBuffer, `${what}: ${key} shared`);
          assert.deepEqual(g.shape, w.shape, `${what}: ${key} shape`);
          sameBits(`${what}: ${key}`, g.data, w.data);
          if (w.data.buffer instanceof SharedArrayBuffer) assert.equal(g.data, w.data, `${what}: ${key} already shared, not copied`);
        }
      });
    }),
    { numRuns: 2000 },
  );
  report('shareWeights', started);
});

/** A stand-in for onnxruntime's module and tensors, as the library detects them (by shape). */
class FakeOrtTensor {
  constructor(readonly type: string, readonly data: unknown, readonly dims: readonly number[], readonly location = 'cpu') {}
}
const fakeOrt = { Tensor: FakeOrtTensor };
/** A stand-in for tfjs: tensor() and Tensor, tensors with dtype, shape and dataSync(). */
class FakeTfTensor {
  isDisposed = false;
  constructor(readonly values: unknown, readonly shape: number[], readonly dtype: string) {}
  dataSync() { return this.values; }
}
const fakeTf = { Tensor: FakeTfTensor, tensor: (v: unknown, s: number[], d: string) => new FakeTfTensor(v, s, d) };

const ORT_DTYPES: Record<string, () => ArrayBufferView> = {
  float32: () => new Float32Array([1, -2, 3.5, 0]), float64: () => new Float64Array([1, 2, 3, 4]), int32: () => new Int32Array([1, -1, 7, 0]),
  int64: () => new BigInt64Array([1n, -1n, 7n, 0n]), uint8: () => new Uint8Array([1, 0, 2, 3]), int8: () => new Int8Array([1, -1, 2, 3]),
  bool: () => new Uint8Array([1, 0, 1, 1]), uint32: () => new Uint32Array([1, 2, 3, 4]), float16: () => new Uint16Array(4),
};
const NEEDS = ['float32', 'int32', 'index', 'float', 'int8', 'uint8', 'mask', 'any'] as const;
const ACCEPT: Record<string, string[]> = {
  float32: ['float32'], int32: ['int32', 'int64'], index: ['int32', 'int64'], float: ['float32', 'float64'], int8: ['int8'], uint8: ['uint8'],
  mask: ['float32', 'bool', 'uint8', 'uint32'], any: ['float32', 'float64', 'int32', 'uint32', 'int8', 'uint8', 'bool', 'int64'],
};

test('interop helpers: isOrtTensor / isTfTensor by shape, fromEcosystem by dtype and need (int64 range-checked), toEcosystem into either module; wrong kinds named', () => {
  const started = performance.now();
  const arb = fc.record({
    runtime: fc.constantFrom('ort', 'ort', 'ort', 'tf', 'tf', 'plain', 'junk'),
    dtype: mostly(fc.constantFrom('float32', 'int32', 'int64', 'bool', 'uint8', 'float64'), fc.constantFrom(...Object.keys(ORT_DTYPES), 'string', 'constructor'), 3),
    need: fc.option(fc.constantFrom(...NEEDS), { nil: undefined, freq: 2 }),
    location: mostly(fc.constant('cpu'), fc.constantFrom('gpu-buffer', 'none', 'cpu-pinned'), 6),
    disposed: fc.constantFrom(false, false, false, true),
    wrongData: fc.constantFrom(false, false, false, true),
    huge: fc.constantFrom(false, false, true),
    output: fc.constantFrom<unknown>('ort', 'tf', 'ort', 'tf', null, 7, {}),
  });
  fc.assert(
    fc.property(arb, ({ runtime, dtype, need, location, disposed, wrongData, huge, output }) => {
      let data: unknown = Object.hasOwn(ORT_DTYPES, dtype) ? ORT_DTYPES[dtype]() : ['a', 'b', 'c', 'd'];
      if (huge && data instanceof BigInt64Array) data[2] = 2n ** 40n;
      if (wrongData) data = Array.from({ length: 4 }, () => 1);
      const tfDtype = ['float32', 'int32', 'bool'].includes(dtype);
      let x: unknown;
      if (runtime === 'ort') x = new FakeOrtTensor(dtype, data, [2, 2], location);
      else if (runtime === 'tf') { const t = new FakeTfTensor(data, [2, 2], dtype); t.isDisposed = disposed; x = t; }
      else if (runtime === 'plain') x = { data, shape: [2, 2] };
      else x = [data];
      const what = `fromEcosystem ${runtime} ${dtype} need=${need} ${JSON.stringify({ location, disposed, wrongData, huge })}`;
      assert.equal(isOrtTensor(x), runtime === 'ort', `${what}: isOrtTensor`);
      assert.equal(isTfTensor(x), runtime === 'tf', `${what}: isTfTensor`);
      const bad: string[] = [];
      if (runtime === 'plain' || runtime === 'junk') bad.push('arg');
      else {
        if (runtime === 'ort' && location !== 'cpu' && location !== 'cpu-pinned') bad.push('arg');
        if (runtime === 'tf' && disposed) bad.push('arg');
        if (need !== undefined && !(runtime === 'ort' ? ACCEPT[need] : ACCEPT[need].filter((d) => ['float32', 'int32', 'bool'].includes(d))).includes(dtype)) bad.push('arg');
        if (!Object.hasOwn(ORT_DTYPES, dtype) || dtype === 'float16' || wrongData) bad.push('arg');
        if (runtime === 'tf' && !tfDtype) bad.push('arg');
        if (huge && dtype === 'int64' && need === 'int32') bad.push('arg');
      }
      const expected: Expected<unknown> = bad.length > 0 ? { bad } : { value: data };
      check(what, () => fromEcosystem(x as never, 'arg', need), expected, (got, want) => {
        assert.deepEqual(got.shape, [2, 2], what);
        if (dtype === 'int64' && need === 'int32') sameBits(what, got.data as Int32Array, Array.from(want as BigInt64Array, Number));
        else assert.equal(got.data, want, `${what}: the same array, no copy`);
      });
      // toEcosystem: a host tensor into the module's kind (tfjs has float32, int32 and bool only).
      if (!(data instanceof Float32Array || data instanceof Int32Array || data instanceof Uint8Array || data instanceof Float64Array)) return;
      const module = output === 'ort' ? fakeOrt : output === 'tf' ? fakeTf : output;
      const hostDtype = data instanceof Float32Array ? 'float32' : data instanceof Int32Array ? 'int32' : data instanceof Float64Array ? 'float64' : 'uint8';
      const tbad: string[] = [];
      if (output !== 'ort' && output !== 'tf') tbad.push('output');
      else if (output === 'tf' && !['float32', 'int32'].includes(hostDtype)) tbad.push('tensor');
      const w = `toEcosystem ${hostDtype} into ${String(output)}`;
      check(w, () => toEcosystem({ data: data as Float32Array, shape: [2, 2] }, module as never), tbad.length > 0 ? { bad: tbad } : { value: data }, (got, want) => {
        if (output === 'ort') {
          const t = got as FakeOrtTensor;
          assert.ok(t instanceof FakeOrtTensor, w);
          assert.deepEqual([t.type, [...t.dims]], [hostDtype, [2, 2]], w);
          assert.equal(t.data, want, `${w}: no copy`);
        } else {
          const t = got as FakeTfTensor;
          assert.ok(t instanceof FakeTfTensor, w);
          assert.deepEqual([t.dtype, t.shape], [hostDtype, [2, 2]], w);
        }
      });
    }),
    { numRuns: 3000 },
  );
  report('fromEcosystem', started);
  report('toEcosystem', started);
});
