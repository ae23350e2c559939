// A fuzz of the decode loop's public edge: random sequences of prefill and
// decodeStep calls on caches made by createDsaCache (contiguous and paged,
// float32, int8 / int7 and FP8 keys, one to three sequences, one or two kv
// heads), each call with a random batch of sequences, token count, query
// block, topK, RoPE, dV, smScale and attnSink, and sometimes broken: NaN or
// Infinity in q or kv, a sequence out of range or listed twice, a cache
// that is full, wrong shapes, bad options. A call that succeeds must equal,
// bit for bit, its definition by composition: for each sequence, the
// indexer over all its tokens so far (lightningIndexer with the float32 keys
// of its history, scored in the cache's precision) and sparse attention over
// its kv history and the new rows at the chosen positions (the docs: "each
// step equals dsaForward over the tokens so far"). A refused call names its
// argument and leaves the cache as it was (lengths, free pages, contents).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createDsaCache, decodeStep, lightningIndexer, prefill, sparseAttention } from '../../src/interop/index.js';
import { check, mostly, realsArb, report, sameBits, type Expected } from './harness.js';

const D = 4;

const setupArb = fc.record({
  batch: fc.integer({ min: 1, max: 3 }),
  layout: fc.oneof(fc.record({ capacity: fc.integer({ min: 1, max: 16 }) }), fc.record({ pages: fc.integer({ min: 1, max: 12 }), pageSize: fc.integer({ min: 1, max: 4 }) })),
  keyForm: fc.constantFrom('float32', 'int8', 'fp8') as fc.Arbitrary<'float32' | 'int8' | 'fp8'>,
  int7: fc.boolean(),
  ue8m0: fc.boolean(),
  hkv: fc.integer({ min: 1, max: 2 }), group: fc.integer({ min: 1, max: 2 }), dqk: fc.integer({ min: 2, max: 4 }),
  h: fc.integer({ min: 1, max: 2 }), dim: fc.integer({ min: 1, max: 3 }), qRank: fc.integer({ min: 1, max: 2 }),
  ropeDim: fc.constantFrom(0, 2, 4),
  topK: fc.integer({ min: 1, max: 6 }),
  dV: fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined }),
  smScale: fc.option(fc.constantFrom(1, 0.5), { nil: undefined }),
  sink: fc.boolean(),
  simd: fc.constantFrom(undefined, false),
});

const callArb = (batch: number) => fc.record({
  kind: fc.constantFrom('step', 'step', 'prefill'),
  // Mostly distinct sequences of the cache; sometimes one out of range or listed twice.
  seqs: mostly(fc.shuffledSubarray(Array.from({ length: batch }, (_, i) => i), { minLength: 1 }), fc.array(fc.integer({ min: 0, max: batch }), { minLength: 1, maxLength: 3 }), 6),
  t: fc.integer({ min: 1, max: 3 }),
  queryBlock: fc.integer({ min: 1, max: 3 }),
  seed: fc.integer({ min: 0, max: 1 << 20 }),
  fault: mostly(fc.constant('none'), fc.constantFrom('nanQ', 'infKv', 'nanKv', 'qRows', 'kvHeads', 'seqsF32', 'topK', 'ropeDim', 'smScale', 'queryBlock', 'strayOption', 'hugeTopK'), 4),
});

const vals = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.round(Math.sin(seed * 0.37 + i * 1.7) * 64) / 32);

test('decodeStep and prefill over createDsaCache: every layout and key form, random batches of calls, broken calls leave the cache unchanged, results equal the indexer and sparse attention over each history', () => {
  const started = performance.now();
  const arb = setupArb.chain((setup) => fc.record({ setup: fc.constant(setup), calls: fc.array(callArb(setup.batch), { minLength: 1, maxLength: 5 }) })).chain(({ setup, calls }) =>
    fc.record({
      setup: fc.constant(setup), calls: fc.constant(calls),
      wqB: realsArb(setup.h * D * setup.qRank), wk: realsArb(D * setup.dim), wp: realsArb(setup.h * setup.dim), gamma: realsArb(D), beta: realsArb(D),
    }),
  );
  fc.assert(
    fc.property(arb, ({ setup, calls, wqB, wk, wp, gamma, beta }) => {
      const { batch, layout, keyForm, hkv, group, dqk, h, dim, qRank } = setup;
      const hq = hkv * group;
      const precision = keyForm === 'int8' && setup.int7 ? 'int7' : keyForm;
      const scaleFormat = keyForm === 'fp8' && setup.ue8m0 ? 'ue8m0' : 'float32';
      if (keyForm === 'fp8' && 'pageSize' in layout && (layout.pageSize * D) % 4 !== 0) return;
      const cache = createDsaCache({ batch, ...layout, indexerDim: D, keyForm, precision, ...(keyForm === 'fp8' ? { scaleFormat } : {}), kvHeads: hkv, kvDim: dqk, shared: false });
      const hadamard = keyForm === 'fp8';
      const weights = {
        wqB: { data: wqB, shape: [h * D, qRank] }, wk: { data: wk, shape: [D, dim] }, weightsProj: { data: wp, shape: [h, dim] },
        kNormWeight: { data: gamma, shape: [D] }, kNormBias: { data: beta, shape: [D] },
      };
      // The model: each sequence's float32 keys and kv rows so far, and the free pages.
      const history = Array.from({ length: batch }, () => ({ keys: [] as number[], kv: [] as number[] }));
      const paged = 'pages' in layout;
      const P = paged ? layout.pageSize : layout.capacity;
      let free = paged ? layout.pages : 0;
      const dV = setup.dV !== undefined && setup.dV <= dqk ? setup.dV : undefined;
      const attnSink = setup.sink ? Float32Array.from({ length: hq }, (_, i) => [0, -1, -Infinity][i % 3]) : undefined;
      for (const [ci, call] of calls.entries()) {
        const prefillCall = call.kind === 'prefill';
        const seqList = prefillCall ? [call.seqs[0]] : call.seqs;
        const m = seqList.length, t = call.t, n = m * t;
        const x = vals(m * t * dim, call.seed), qr = vals(m * t * qRank, call.seed + 1);
        const q = vals(n * hq * dqk, call.seed + 2), kv = vals(n * hkv * dqk, call.seed + 3);
        const opts: Record<string, unknown> = { topK: setup.topK, ropeDim: setup.ropeDim, dV, smScale: setup.smScale, attnSink, simd: setup.simd };
        if (prefillCall) opts.queryBlock = call.queryBlock;
        const bad: string[] = [];
        let qT: unknown = { data: q, shape: [n, hq, dqk] }, kvT: unknown = { data: kv, shape: [n, hkv, dqk] };
        let seqsArg: unknown = Int32Array.from(seqList);
        switch (call.fault) {
          case 'nanQ': q[call.seed % q.length] = NaN; bad.push('inputs.q'); break;
          case 'infKv': kv[call.seed % kv.length] = Infinity; bad.push('inputs.kv'); break;
          case 'nanKv': kv[call.seed % kv.length] = NaN; bad.push('inputs.kv'); break;
          case 'qRows': qT = { data: Float32Array.from([...q, ...new Float32Array(hq * dqk)]), shape: [n + 1, hq, dqk] }; bad.push('prefill', 'decodeStep'); break;
          case 'kvHeads': kvT = { data: new Float32Array(n * (hkv + 1) * dqk), shape: [n, hkv + 1, dqk] }; bad.push('prefill', 'decodeStep'); break;
          case 'seqsF32': if (!prefillCall) { seqsArg = Float32Array.from(seqList); bad.push('inputs.seqs'); } break;
          case 'topK': opts.topK = 0; bad.push('topK'); break;
          case 'ropeDim': opts.ropeDim = 3; bad.push('ropeDim'); break;
          case 'smScale': opts.smScale = NaN; bad.push('smScale'); break;
          case 'queryBlock': if (prefillCall) { opts.queryBlock = 0; bad.push('queryBlock'); } break;
          case 'strayOption': opts.topk = 2; bad.push(prefillCall ? 'prefill' : 'decodeStep'); break;
          // Past int32 and any memory: the step's [m*t, topK] buffers meet the guard before they exist.
          case 'hugeTopK': opts.topK = [2 ** 31, 2 ** 53, 1e300][call.seed % 3]; bad.push('maxBytes'); break;
        }
        // The sequences: in range, each once; then the room for t more tokens each.
        if (seqList.some((sq) => sq >= batch)) bad.push(prefillCall ? 'seq' : 'inputs.seqs', 'seqs');
        if (new Set(seqList).size !== m) bad.push('seqs');
        {
          let need = 0;
          for (const sq of new Set(seqList.filter((x0) => x0 < batch))) {
            const len = history[sq].keys.length / D;
            if (!paged && len + t > P) bad.push('cache');
            if (paged) {
              const blocks = Math.ceil((len + t) / P);
              if (blocks > layout.pages) bad.push('cache');
              need += blocks - Math.ceil(len / P);
            }
          }
          if (paged && need > free) bad.push('cache');
        }
        const lengthsBefore = [...cache.lengths], freeBefore = cache.freePages();
        const what = `${prefillCall ? 'prefill' : 'decodeStep'} #${ci} on ${JSON.stringify({ batch, ...layout, keyForm, precision, scaleFormat, hkv, hq, dqk, h, dim, qRank })} seqs [${seqList}] t=${t} ${call.fault} ${JSON.stringify({ ...opts, attnSink: attnSink && [...attnSink] })} lengths [${lengthsBefore}]`;
        const run = () => {
          if (prefillCall) {
            return prefill(weights, cache, seqList[0], { x: { data: x, shape: [1, t, dim] }, qr: { data: qr, shape: [1, t, qRank] }, q: qT, kv: kvT } as never, opts as never);
          }
          return decodeStep(weights, cache, { x: { data: x, shape: [m, t, dim] }, qr: { data: qr, shape: [m, t, qRank] }, q: qT, kv: kvT, seqs: seqsArg } as never, opts as never);
        };
        if (bad.length > 0) {
          check(what, run, { bad } as Expected<never>, () => {});
          assert.deepEqual([...cache.lengths], lengthsBefore, `${what}: lengths unchanged`);
          assert.equal(cache.freePages(), freeBefore, `${what}: free pages unchanged`);
          continue;
        }
        // The definition: per sequence, the indexer over its history and sparse attention at the chosen positions.
        const want = { out: new Float32Array(n * hq * (dV ?? dqk)), lse: new Float32Array(n * hq), indices: new Int32Array(m * t * setup.topK).fill(-1) };
        const updates: { sq: number; keys: Float32Array; kv: Float32Array }[] = [];
        seqList.forEach((sq, i) => {
          const past = history[sq].keys.length / D;
          const kCache = past > 0 ? { data: Float32Array.from(history[sq].keys), shape: [1, past, D] } : undefined;
          const indexer = lightningIndexer(weights, { x: { data: x.subarray(i * t * dim, (i + 1) * t * dim), shape: [1, t, dim] }, qr: { data: qr.subarray(i * t * qRank, (i + 1) * t * qRank), shape: [1, t, qRank] }, kCache }, {
            topK: setup.topK, ropeDim: setup.ropeDim, precision, hadamard, simd: setup.simd, ...(keyForm === 'fp8' ? { scaleFormat } : {}),
          });
          const k = indexer.indices.shape[2], s = past + t;
          const kvAll = Float32Array.from([...history[sq].kv, ...kv.subarray(i * t * hkv * dqk, (i + 1) * t * hkv * dqk)]);
          const idx = new Int32Array(t * hkv * k);
          for (let r = 0; r < t; r++) for (let g = 0; g < hkv; g++) idx.set(indexer.indices.data.subarray(r * k, (r + 1) * k), (r * hkv + g) * k);
          const att = sparseAttention({ data: q.subarray(i * t * hq * dqk, (i + 1) * t * hq * dqk), shape: [t, hq, dqk] }, { data: kvAll, shape: [s, hkv, dqk] }, { data: idx, shape: [t, hkv, k] }, { dV, smScale: setup.smScale, attnSink, simd: setup.simd, assumeUnique: true });
          want.out.set(att.out.data, i * t * hq * (dV ?? dqk));
          want.lse.set(att.lse.data, i * t * hq);
          for (let r = 0; r < t; r++) want.indices.set(indexer.indices.data.subarray(r * k, (r + 1) * k), (i * t + r) * setup.topK);
          updates.push({ sq, keys: (indexer.keys as { data: Float32Array }).data.subarray(past * D), kv: kv.subarray(i * t * hkv * dqk, (i + 1) * t * hkv * dqk) });
        });
        check(what, run, { value: want }, (got, w) => {
          sameBits(`${what}: out`, got.out.data, w.out);
          sameBits(`${what}: lse`, got.lse.data, w.lse);
          if ('indices' in got) sameBits(`${what}: indices`, (got as { indices: { data: Int32Array } }).indices.data, w.indices);
        });
        for (const u of updates) {
          const len = history[u.sq].keys.length / D;
          if (paged) free -= Math.ceil((len + t) / P) - Math.ceil(len / P);
          history[u.sq].keys.push(...u.keys);
          history[u.sq].kv.push(...u.kv);
        }
        assert.deepEqual([...cache.lengths], history.map((x0) => x0.keys.length / D), `${what}: lengths`);
        assert.equal(cache.freePages(), free, `${what}: free pages`);
      }
    }),
    { numRuns: 1500 },
  );
  report('decodeStep', started);
  report('prefill', started);
});

