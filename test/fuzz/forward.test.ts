// A fuzz of the indexer module and the layer built on it: lightningIndexer
// (projections, LayerNorm, partial non-interleaved RoPE, Hadamard, causal
// masking, an extra mask, topK past s, a float32 kCache, maskForm) against
// the module written with loops in float64 (its scores within float32
// rounding; its top-k exactly the definition's order over the scores it
// returned), and dsaForward / dsaForwardDense against their definition by
// composition (the indexer's indices, or their bit mask, per kv head into
// sparseAttention / denseAttention), bit for bit. Bad weights, inputs and
// option values are named errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { denseAttention, dsaForward, dsaForwardDense, generateMask, lightningIndexer, sparseAttention } from '../../src/interop/index.js';
import { check, mostly, realsArb, report, sameBits, type Expected } from './harness.js';

interface Case {
  b: number; t: number; sPast: number; h: number; d: number; dim: number; qRank: number;
  wqB: Float32Array; wk: Float32Array; wp: Float32Array; gamma: Float32Array; beta: Float32Array;
  x: Float32Array; qr: Float32Array; kCache: Float32Array;
}

/** The module by its definition, in float64: q, k (LayerNorm, RoPE, Hadamard), w, and the scores with their rounding magnitude. */
function indexerDefinition(c: Case, o: { ropeDim: number; theta: number; eps: number; hadamard: boolean; causal: boolean }) {
  const { b, t, sPast, h, d, dim, qRank } = c;
  const s = sPast + t;
  const freqs = Array.from({ length: o.ropeDim / 2 }, (_, i) => o.theta ** (-(2 * i) / o.ropeDim));
  const rope = (v: number[], pos: number) => {
    const half = o.ropeDim / 2;
    for (let i = 0; i < half; i++) {
      const a = v[i], bb = v[half + i], angle = pos * freqs[i];
      v[i] = a * Math.cos(angle) - bb * Math.sin(angle);
      v[half + i] = a * Math.sin(angle) + bb * Math.cos(angle);
    }
  };
  const hadamard = (v: number[]) => {
    const out = v.map((_, i) => v.reduce((acc, x, j) => {
      let bits = i & j, parity = 0;
      while (bits) { parity ^= bits & 1; bits >>>= 1; }
      return acc + (parity ? -x : x);
    }, 0) / Math.sqrt(d));
    v.splice(0, d, ...out);
  };
  const keys: number[][] = [];
  for (let bi = 0; bi < b; bi++) for (let j = 0; j < sPast; j++) keys.push(Array.from(c.kCache.subarray((bi * sPast + j) * d, (bi * sPast + j + 1) * d)));
  const newKeys: number[][] = [];
  const qs: number[][][] = [], ws: number[][] = [];
  for (let r = 0; r < b * t; r++) {
    const pos = sPast + (r % t);
    const k = Array.from({ length: d }, (_, e) => { let acc = 0; for (let i = 0; i < dim; i++) acc += c.x[r * dim + i] * c.wk[e * dim + i]; return acc; });
    const mean = k.reduce((a, v) => a + v, 0) / d;
    const variance = k.reduce((a, v) => a + (v - mean) ** 2, 0) / d;
    for (let e = 0; e < d; e++) k[e] = ((k[e] - mean) / Math.sqrt(variance + o.eps)) * c.gamma[e] + c.beta[e];
    rope(k, pos);
    if (o.hadamard) hadamard(k);
    newKeys.push(k);
    qs.push(Array.from({ length: h }, (_, hh) => {
      const q = Array.from({ length: d }, (_, e) => { let acc = 0; for (let i = 0; i < qRank; i++) acc += c.qr[r * qRank + i] * c.wqB[(hh * d + e) * qRank + i]; return acc; });
      rope(q, pos);
      if (o.hadamard) hadamard(q);
      return q;
    }));
    ws.push(Array.from({ length: h }, (_, hh) => { let acc = 0; for (let i = 0; i < dim; i++) acc += c.x[r * dim + i] * c.wp[hh * dim + i]; return acc * h ** -0.5 * d ** -0.5; }));
  }
  const keyOf = (bi: number, j: number) => (j < sPast ? keys[bi * sPast + j] : newKeys[bi * t + (j - sPast)]);
  const scores = new Float64Array(b * t * s), magnitude = new Float64Array(b * t * s);
  for (let r = 0; r < b * t; r++) {
    const bi = Math.floor(r / t), ti = r % t;
    for (let j = 0; j < s; j++) {
      if (o.causal && j > sPast + ti) { scores[r * s + j] = -Infinity; continue; }
      let v = 0, m = 0;
      for (let hh = 0; hh < h; hh++) {
        const kk = keyOf(bi, j);
        const dotv = qs[r][hh].reduce((a, x, e) => a + x * kk[e], 0);
        const mag = qs[r][hh].reduce((a, x, e) => a + Math.abs(x * kk[e]), 0);
        v += ws[r][hh] * Math.max(0, dotv);
        m += Math.abs(ws[r][hh]) * (mag + Math.abs(dotv));
      }
      scores[r * s + j] = v;
      magnitude[r * s + j] = m;
    }
  }
  return { scores, magnitude, newKeys, s };
}

const caseOf = (b: fc.Arbitrary<number>) => fc
  .record({
    b, t: fc.integer({ min: 1, max: 3 }), sPast: fc.integer({ min: 0, max: 4 }),
    h: fc.integer({ min: 1, max: 2 }), d: fc.constantFrom(2, 4, 8), dim: fc.integer({ min: 1, max: 4 }), qRank: fc.integer({ min: 1, max: 3 }),
  })
  .chain((sh) =>
    fc.record({
      sh: fc.constant(sh),
      wqB: realsArb(sh.h * sh.d * sh.qRank), wk: realsArb(sh.d * sh.dim), wp: realsArb(sh.h * sh.dim),
      gamma: realsArb(sh.d), beta: realsArb(sh.d), x: realsArb(sh.b * sh.t * sh.dim), qr: realsArb(sh.b * sh.t * sh.qRank),
      kCache: realsArb(sh.b * sh.sPast * sh.d),
    }),
  )
  .map(({ sh, ...arrays }) => ({ ...sh, ...arrays }) as Case);
const caseArb = caseOf(fc.integer({ min: 1, max: 2 }));

const optionsArb = fc.record({
  topK: mostly(fc.integer({ min: 1, max: 9 }), fc.constantFrom<unknown>(0, -1, 1.5, 2 ** 31, 2 ** 53, NaN), 15),
  ropeDim: mostly(fc.constantFrom<unknown>(undefined, 0, 2), fc.constantFrom<unknown>(3, -2, 1.5, 16), 15),
  ropeTheta: mostly(fc.constantFrom<unknown>(undefined, 10000, 50), fc.constantFrom<unknown>(NaN, Infinity), 20),
  eps: mostly(fc.constantFrom<unknown>(undefined, 1e-6, 0.5), fc.constantFrom<unknown>(NaN, '1e-6'), 20),
  hadamard: mostly(fc.constantFrom<unknown>(undefined, false, true), fc.constantFrom<unknown>('yes', 1), 20),
  causal: mostly(fc.constantFrom<unknown>(undefined, true, false), fc.constantFrom<unknown>('no', 0), 20),
  maskForm: mostly(fc.constantFrom<unknown>(undefined, undefined, 'additive', 'bool', 'bits'), fc.constant<unknown>('dense'), 20),
  extraMask: fc.constantFrom(false, false, true),
  useCache: fc.boolean(),
  fault: mostly(fc.constant('none'), fc.constantFrom('wqBRows', 'wkF64', 'normLength', 'xT', 'qrRank', 'cacheD', 'cacheB', 'cacheInt8Float32', 'strayOption')),
});

/** The weights, inputs and options of a case as the module takes them, and the arguments they make bad. */
function moduleCall(c: Case, o: typeof optionsArb extends fc.Arbitrary<infer T> ? T : never) {
  const { b, t, sPast, h, d, dim, qRank } = c;
  const bad: string[] = [];
  const weights: Record<string, unknown> = {
    wqB: { data: c.wqB, shape: [h * d, qRank] }, wk: { data: c.wk, shape: [d, dim] }, weightsProj: { data: c.wp, shape: [h, dim] },
    kNormWeight: { data: c.gamma, shape: [d] }, kNormBias: { data: c.beta, shape: [d] },
  };
  const inputs: Record<string, unknown> = { x: { data: c.x, shape: [b, t, dim] }, qr: { data: c.qr, shape: [b, t, qRank] } };
  if (o.useCache && sPast > 0) inputs.kCache = { data: c.kCache, shape: [b, sPast, d] };
  const sPastUsed = o.useCache ? sPast : 0;
  switch (o.fault) {
    case 'wqBRows': weights.wqB = { data: Float32Array.from([...c.wqB, ...new Float32Array(qRank)]), shape: [h * d + 1, qRank] }; bad.push('lightningIndexer'); break;
    case 'wkF64': weights.wk = { data: Float64Array.from(c.wk), shape: [d, dim] }; bad.push('weights.wk'); break;
    case 'normLength': weights.kNormBias = { data: new Float32Array(d + 1), shape: [d + 1] }; bad.push('lightningIndexer'); break;
    case 'xT': inputs.x = { data: Float32Array.from([...c.x, ...new Float32Array(b * dim)]), shape: [b, t + 1, dim] }; bad.push('lightningIndexer'); break;
    case 'qrRank': inputs.qr = { data: c.qr, shape: [b * t * qRank] }; bad.push('inputs.qr'); break;
    case 'cacheD': inputs.kCache = { data: new Float32Array(b * (sPast + 1) * (d + 1)), shape: [b, sPast + 1, d + 1] }; bad.push('lightningIndexer'); break;
    case 'cacheB': inputs.kCache = { data: new Float32Array((b + 1) * (sPast + 1) * d), shape: [b + 1, sPast + 1, d] }; bad.push('lightningIndexer'); break;
    case 'cacheInt8Float32': inputs.kCache = { values: { data: new Int8Array(b * d), shape: [b, 1, d] }, scales: { data: new Float32Array(b), shape: [b, 1, 1] } }; bad.push('inputs.kCache'); break;
  }
  const opts: Record<string, unknown> = {};
  for (const key of ['topK', 'ropeDim', 'ropeTheta', 'eps', 'hadamard', 'causal', 'maskForm'] as const) if (o[key] !== undefined) opts[key] = o[key];
  if (opts.topK === undefined) opts.topK = 4;
  if (o.fault === 'strayOption') { opts.topk = 2; bad.push('lightningIndexer'); }
  const topK = opts.topK;
  if (!(typeof topK === 'number' && Number.isInteger(topK) && topK > 0)) bad.push('topK');
  const ropeDim = o.ropeDim ?? 0;
  opts.ropeDim = ropeDim;
  if (!(typeof ropeDim === 'number' && Number.isInteger(ropeDim) && ropeDim >= 0 && ropeDim % 2 === 0 && ropeDim <= d)) bad.push('ropeDim');
  if (o.ropeTheta !== undefined && !(typeof o.ropeTheta === 'number' && Number.isFinite(o.ropeTheta))) bad.push('ropeTheta');
  if (o.eps !== undefined && !(typeof o.eps === 'number' && Number.isFinite(o.eps))) bad.push('eps');
  if (o.hadamard !== undefined && typeof o.hadamard !== 'boolean') bad.push('hadamard');
  if (o.causal !== undefined && typeof o.causal !== 'boolean') bad.push('causal');
  if (o.maskForm !== undefined && !['additive', 'bool', 'bits'].includes(o.maskForm as string)) bad.push('maskForm');
  const s = sPastUsed + t;
  let extra: boolean[] | null = null;
  if (o.extraMask) {
    // An extra eligibility mask [b, t, s] (bool): every third key dropped.
    extra = Array.from({ length: b * t * s }, (_, i) => i % 3 !== 1);
    opts.mask = { data: Uint8Array.from(extra, Number), shape: [b, t, s] };
  }
  return { weights, inputs, opts, bad, sPastUsed, s, extra };
}

test('lightningIndexer: projections, LayerNorm, RoPE, Hadamard, causal, extra masks, topK past s, a float32 kCache and maskForm against the module written with loops', () => {
  const started = performance.now();
  fc.assert(
    fc.property(caseArb, optionsArb, (c, o) => {
      const { weights, inputs, opts, bad, sPastUsed, s, extra } = moduleCall(c, o);
      const { b, t, h, d } = c;
      const what = `lightningIndexer x[${b},${t},${c.dim}] h=${h} d=${d} sPast=${sPastUsed} ${o.fault} ${JSON.stringify({ ...opts, mask: extra !== null })}`;
      let expected: Expected<ReturnType<typeof indexerDefinition>> = { bad };
      if (bad.length === 0) {
        const def = indexerDefinition({ ...c, sPast: sPastUsed }, { ropeDim: opts.ropeDim as number, theta: (o.ropeTheta ?? 10000) as number, eps: (o.eps ?? 1e-6) as number, hadamard: o.hadamard === true, causal: o.causal !== false });
        expected = { value: def };
      }
      check(what, () => lightningIndexer(weights as never, inputs as never, opts as never), expected, (got, def) => {
        assert.deepEqual(got.scores.shape, [b, t, s], `${what}: scores shape`);
        for (let i = 0; i < def.scores.length; i++) {
          const g = got.scores.data[i], e = def.scores[i];
          if (!Number.isFinite(e)) assert.ok(Object.is(g, e), `${what}: score ${i} = ${g}, expected ${e}`);
          else assert.ok(Math.abs(g - e) <= 1e-4 * def.magnitude[i] + 1e-6, `${what}: score ${i} = ${g}, expected ${e}`);
        }
        // The keys: kCache, then the new ones.
        assert.deepEqual((got.keys as { shape: number[] }).shape, [b, s, d], `${what}: keys shape`);
        const keyData = (got.keys as { data: Float32Array }).data;
        for (let bi = 0; bi < b; bi++) {
          for (let j = 0; j < s; j++) {
            const want = j < sPastUsed ? Array.from(c.kCache.subarray((bi * sPastUsed + j) * d, (bi * sPastUsed + j + 1) * d)) : def.newKeys[bi * t + j - sPastUsed];
            want.forEach((e, i) => assert.ok(Math.abs(keyData[(bi * s + j) * d + i] - e) <= 1e-4 * (1 + Math.abs(e)), `${what}: key ${bi},${j}`));
          }
        }
        // Top-k over the returned scores: eligible keys (causal, extra mask) by descending score, ties by lower index; k' = min(topK, s).
        const k = Math.min(opts.topK as number, s);
        assert.deepEqual(got.indices.shape, [b, t, k], `${what}: indices shape`);
        for (let r = 0; r < b * t; r++) {
          const ti = r % t;
          const row = got.scores.data.subarray(r * s, (r + 1) * s);
          const eligible = Array.from({ length: s }, (_, j) => j).filter((j) => (o.causal === false || j <= sPastUsed + ti) && (extra === null || extra[r * s + j]));
          eligible.sort((x, y) => row[y] - row[x] || x - y);
          for (let i = 0; i < k; i++) {
            assert.equal(got.indices.data[r * k + i], i < eligible.length ? eligible[i] : -1, `${what}: row ${r} slot ${i}`);
            assert.ok(Object.is(got.values.data[r * k + i], i < eligible.length ? row[eligible[i]] : -Infinity), `${what}: value ${r} ${i}`);
          }
        }
        if (opts.maskForm !== undefined) {
          const want = generateMask(got.indices, s, { form: opts.maskForm as 'bits' });
          sameBits(`${what}: mask`, got.mask!.data, want.data);
        } else assert.equal(got.mask, undefined, what);
      });
    }),
    { numRuns: 2500 },
  );
  report('lightningIndexer', started);
});

test('dsaForward and dsaForwardDense: the indexer into sparse and dense attention, per kv head, bit for bit; bad attention inputs and b > 1 named', () => {
  const started = performance.now();
  const arb = fc
    .record({ c: caseOf(mostly(fc.constant(1), fc.constant(2), 10)), o: optionsArb, hkv: fc.integer({ min: 1, max: 2 }), group: fc.integer({ min: 1, max: 2 }), dqk: fc.integer({ min: 1, max: 4 }), attnFault: mostly(fc.constant('none'), fc.constantFrom('qT', 'kvS', 'kvF64', 'stray')), dV: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }), simd: fc.constantFrom(undefined, false, true) })
    .chain((p) => fc.record({ p: fc.constant(p), q: realsArb(p.c.t * p.hkv * p.group * p.dqk), kv: realsArb((p.c.sPast + p.c.t) * p.hkv * p.dqk) }));
  fc.assert(
    fc.property(arb, ({ p, q, kv }) => {
      const { c, o, hkv, group, dqk, attnFault, dV, simd } = p;
      const { weights, inputs, opts: indexerOpts, bad, s } = moduleCall(c, { ...o, maskForm: undefined });
      delete indexerOpts.maskForm;
      const { t } = c;
      const hq = hkv * group;
      if (c.b !== 1) bad.push('inputs.x');
      // The forward checks the attention inputs against the indexer's t and s first.
      if (o.fault === 'xT') bad.push('attention.q', 'attention.kv');
      if ((o.fault === 'cacheD' || o.fault === 'cacheB' || o.fault === 'cacheInt8Float32') && o.useCache !== undefined) bad.push('attention.kv');
      let attention: Record<string, unknown> = { q: { data: q, shape: [t, hq, dqk] }, kv: { data: kv.subarray(0, s * hkv * dqk), shape: [s, hkv, dqk] } };
      if (attnFault === 'qT') { attention = { ...attention, q: { data: Float32Array.from([...q, ...new Float32Array(hq * dqk)]), shape: [t + 1, hq, dqk] } }; bad.push('attention.q'); }
      if (attnFault === 'kvS') { attention = { ...attention, kv: { data: new Float32Array((s + 1) * hkv * dqk), shape: [s + 1, hkv, dqk] } }; bad.push('attention.kv'); }
      if (attnFault === 'kvF64') { attention = { ...attention, kv: { data: Float64Array.from(kv.subarray(0, s * hkv * dqk)), shape: [s, hkv, dqk] } }; bad.push('attention.kv'); }
      if (dV !== undefined && dV > dqk) bad.push('dV');
      const opts: Record<string, unknown> = { indexer: indexerOpts, dV, simd };
      if (attnFault === 'stray') { opts.dv = 1; bad.push('dsaForward', 'dsaForwardDense'); }
      const what = `dsaForward b=${c.b} t=${t} s=${s} hq=${hq} hkv=${hkv} dqk=${dqk} ${o.fault} ${attnFault} ${JSON.stringify({ ...indexerOpts, mask: undefined, dV, simd })}`;
      if (bad.length > 0) {
        check(what, () => dsaForward(weights as never, inputs as never, attention as never, opts as never), { bad }, () => {});
        check(`dsaForwardDense ${what}`, () => dsaForwardDense(weights as never, inputs as never, attention as never, opts as never), { bad }, () => {});
        return;
      }
      // The definition by composition: the same indexer call, its indices (or bit mask) repeated per kv head.
      const indexer = lightningIndexer(weights as never, inputs as never, indexerOpts as never);
      const k = indexer.indices.shape[2];
      const perHead = <T extends Int32Array | Uint32Array>(data: T, width: number): T => {
        const out = new (data.constructor as new (n: number) => T)(t * hkv * width);
        for (let r = 0; r < t; r++) for (let g = 0; g < hkv; g++) out.set(data.subarray(r * width, (r + 1) * width), (r * hkv + g) * width);
        return out;
      };
      const sparse = sparseAttention(attention.q as never, attention.kv as never, { data: perHead(indexer.indices.data, k), shape: [t, hkv, k] }, { dV, simd });
      const bits = generateMask(indexer.indices, s, { form: 'bits' }).data as Uint32Array;
      const words = Math.ceil(s / 32);
      const dense = denseAttention(attention.q as never, attention.kv as never, { data: perHead(bits, words), shape: [t, hkv, words] }, { dV, simd });
      check(what, () => dsaForward(weights as never, inputs as never, attention as never, opts as never), { value: sparse }, (got, want) => {
        sameBits(`${what}: out`, got.out.data, want.out.data);
        sameBits(`${what}: lse`, got.lse.data, want.lse.data);
        sameBits(`${what}: indices`, got.indexer.indices.data, indexer.indices.data);
      });
      check(`dsaForwardDense ${what}`, () => dsaForwardDense(weights as never, inputs as never, attention as never, opts as never), { value: dense }, (got, want) => {
        sameBits(`${what}: dense out`, got.out.data, want.out.data);
        sameBits(`${what}: dense lse`, got.lse.data, want.lse.data);
      });
    }),
    { numRuns: 2500 },
  );
  report('dsaForward', started);
  report('dsaForwardDense', started);
});
