import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { initSimd, simdModule, simdSupported } from '../../src/simd/index.js';

// The generic primitives against plain float64 loops; the SIMD sums run in
// float32 with 4 accumulators, so they agree to float32 rounding of |x|.|y|.
function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    a[i] = ((x >>> 0) / 2 ** 32) * 2 - 1;
  }
  return a;
}

function near(actual: number, expected: number, scale: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= 1e-5 * scale + 1e-30, `${what}: ${actual} vs ${expected} (scale ${scale})`);
}

test('this Node has WebAssembly SIMD and the module loads (sync, and initSimd for browser main threads)', async () => {
  assert.equal(simdSupported(), true);
  assert.ok(simdModule());
  assert.equal(await initSimd(), true);
  assert.equal(simdModule(), simdModule(), 'one instance per thread');
});

test('dot, dotRows, dotRowsGather match a float64 loop for any d', () => {
  const m = simdModule()!;
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 9 }), fc.integer(), (d, n, seed) => {
      const stride = d + 3;
      const x = rand(d, seed), rows = rand(n * stride, seed + 1);
      const idx = Int32Array.from({ length: n }, (_, i) => (i * 7) % n);
      const [px, pr, pi, po] = m.layout(d * 4, n * stride * 4, n * 4, n * 4);
      m.f32(px, d).set(x); m.f32(pr, n * stride).set(rows); m.i32(pi, n).set(idx);
      const expect = (r: number) => {
        let s = 0, a = 0;
        for (let e = 0; e < d; e++) { s += x[e] * rows[r * stride + e]; a += Math.abs(x[e] * rows[r * stride + e]); }
        return [s, a];
      };
      const [s0, a0] = expect(0);
      near(m.exports.dot(px, pr, d), s0, a0, `dot d=${d}`);
      m.exports.dotRows(px, pr, n, d, stride, po);
      for (let i = 0; i < n; i++) near(m.f32(po, n)[i], expect(i)[0], expect(i)[1], `dotRows[${i}] d=${d}`);
      m.exports.dotRowsGather(px, pr, pi, n, d, stride, po);
      for (let i = 0; i < n; i++) near(m.f32(po, n)[i], expect(idx[i])[0], expect(idx[i])[1], `dotRowsGather[${i}] d=${d}`);
    }),
    { numRuns: 60 },
  );
});

test('axpy, axpyRows, axpyRowsGather accumulate in slot order, exactly as float32 scalar code', () => {
  const m = simdModule()!;
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 9 }), fc.integer(), (d, n, seed) => {
      const stride = d + 1;
      const p = rand(n, seed), rows = rand(n * stride, seed + 1), y0 = rand(d, seed + 2);
      const idx = Int32Array.from({ length: n }, (_, i) => (i * 5 + 1) % n);
      const [pp, pr, pi, py] = m.layout(n * 4, n * stride * 4, n * 4, d * 4);
      m.f32(pp, n).set(p); m.f32(pr, n * stride).set(rows); m.i32(pi, n).set(idx);
      for (const gather of [false, true]) {
        m.f32(py, d).set(y0);
        if (gather) m.exports.axpyRowsGather(pp, pr, pi, n, d, stride, py);
        else m.exports.axpyRows(pp, pr, n, d, stride, py);
        const y = Float32Array.from(y0);
        for (let i = 0; i < n; i++) {
          const r = gather ? idx[i] : i;
          for (let e = 0; e < d; e++) y[e] = Math.fround(y[e] + Math.fround(p[i] * rows[r * stride + e]));
        }
        assert.deepEqual(m.f32(py, d), y, `axpyRows${gather ? 'Gather' : ''} d=${d} n=${n}`);
      }
    }),
    { numRuns: 60 },
  );
});
