import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { numpy, scratch } from '../helpers/numpy.js';
import { dsa } from './run.js';

test('dsa topk matches numpy\'s stable sort, ties by increasing key (scores[2,9,50] k=7, causal, k > s)', async () => {
  const tmp = scratch();
  try {
    const f = tmp.file.bind(tmp);
    numpy(`rng = np.random.default_rng(4)
scores = rng.integers(-3, 4, size=(2, 9, 50)).astype(np.float32)
scores[0, 2, 5] = -np.inf
np.save(${JSON.stringify(f('scores.npy'))}, scores)`);
    const runs = await Promise.all([
      dsa('topk', '--scores', f('scores.npy'), '--k', '7', '--out-indices', f('i.npy'), '--out-values', f('v.npy')),
      dsa('topk', '--scores', f('scores.npy'), '--k', '7', '--out-indices', f('ic.npy'), '--index-dtype', 'int64', '--causal-offset', '0'),
      dsa('topk', '--scores', f('scores.npy'), '--k', '60', '--out-indices', f('ik.npy'), '--out-values', f('vk.npy')),
    ]);
    for (const r of runs) assert.deepEqual([r.code, r.stdout, r.stderr], [0, '', '']);
    const out = numpy(`scores = np.load(${JSON.stringify(f('scores.npy'))})
order = np.argsort(-scores, axis=-1, kind='stable')            # descending, ties by increasing key
i = np.load(${JSON.stringify(f('i.npy'))}); v = np.load(${JSON.stringify(f('v.npy'))})
print(i.dtype, i.shape, np.array_equal(i, order[..., :7]), np.array_equal(v, np.take_along_axis(scores, order[..., :7], -1)))
masked = np.where(np.arange(50)[None, None, :] <= np.arange(9)[None, :, None], scores, np.float32(np.nan))
ic = np.load(${JSON.stringify(f('ic.npy'))})
ok = True
for b in range(2):
    for t in range(9):
        eligible = [j for j in np.argsort(-masked[b, t], kind='stable') if j <= t][:7]
        ok &= list(ic[b, t]) == eligible + [-1] * (7 - len(eligible))
print(ic.dtype, ok)
ik = np.load(${JSON.stringify(f('ik.npy'))}); vk = np.load(${JSON.stringify(f('vk.npy'))})
print(np.array_equal(ik[..., :50], order), (ik[..., 50:] == -1).all(), np.isneginf(vk[..., 50:]).all())`);
    assert.equal(out, 'int32 (2, 9, 7) True True\nint64 True\nTrue True True\n');
  } finally {
    tmp.done();
  }
});

test('dsa topk names a NaN by its position in the file, writes nothing; --nan lowest ranks it last (scores[1,4,10])', async () => {
  const tmp = scratch();
  try {
    const f = tmp.file.bind(tmp);
    numpy(`s = np.arange(40, dtype=np.float32).reshape(1, 4, 10); s[0, 3, 6] = np.nan
np.save(${JSON.stringify(f('scores.npy'))}, s)`);
    const bad = await dsa('topk', '--scores', f('scores.npy'), '--k', '2', '--out-indices', f('i.npy'), '--out-values', f('v.npy'));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^dsa topk: .*scores.npy: NaN at batch 0, query 3, key 6; pass --nan lowest to rank NaN below -inf\n$/);
    assert.deepEqual(readdirSync(tmp.dir), ['scores.npy']);
    const ok = await dsa('topk', '--scores', f('scores.npy'), '--k', '10', '--nan', 'lowest', '--out-indices', f('i.npy'));
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(numpy(`print(np.load(${JSON.stringify(f('i.npy'))})[0, 3].tolist())`).trim(), '[9, 8, 7, 5, 4, 3, 2, 1, 0, 6]');
  } finally {
    tmp.done();
  }
});
