import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { numpy, scratch } from '../helpers/numpy.js';
import { dsa, dsaProcess } from './run.js';

const MASK_VALUE = 'np.float32(-0.7 * 3.4028234663852886e38)';

test('dsa mask writes, in every form, what numpy\'s broadcast definition gives (idx[2,37,9] s=300, int64 with padding and duplicates)', async () => {
  const tmp = scratch();
  try {
    const f = tmp.file.bind(tmp);
    numpy(`rng = np.random.default_rng(1)
idx = rng.integers(-1, 300, size=(2, 37, 9))
idx[0, 3, :] = 17
idx[1, 5, :] = -1
np.save(${JSON.stringify(f('idx.npy'))}, idx)`);
    const runs = await Promise.all([
      dsa('mask', '--indices', f('idx.npy'), '--seq-len', '300', '--out', f('add.npy')),
      dsa('mask', '--indices', f('idx.npy'), '--seq-len', '300', '--form', 'bool', '--out', f('bool.npy')),
      dsa('mask', '--indices', f('idx.npy'), '--seq-len', '300', '--form', 'bits', '--out', f('bits.npy')),
      dsa('mask', '--indices', f('idx.npy'), '--seq-len', '300', '--form', 'bool', '--causal-offset', '250', '--out', f('causal.npy')),
    ]);
    for (const r of runs) assert.deepEqual([r.code, r.stderr], [0, '']);
    const out = numpy(`idx = np.load(${JSON.stringify(f('idx.npy'))})
s = 300
keep = (np.arange(s) == idx[..., None]).any(-2)          # [b, t, s], numpy's own broadcast definition
add = np.load(${JSON.stringify(f('add.npy'))})
print(add.dtype, add.shape, np.array_equal(add.view(np.uint32), np.where(keep, np.float32(0), ${MASK_VALUE}).view(np.uint32)))
bl = np.load(${JSON.stringify(f('bool.npy'))})
print(bl.dtype, bl.shape, np.array_equal(bl, keep))
bits = np.load(${JSON.stringify(f('bits.npy'))})
unpacked = np.unpackbits(bits.view(np.uint8), axis=-1, bitorder='little').astype(bool)
print(bits.dtype, bits.shape, np.array_equal(unpacked[..., :s], keep), unpacked[..., s:].any())
causal = np.load(${JSON.stringify(f('causal.npy'))})
t = idx.shape[1]
print(np.array_equal(causal, keep & (np.arange(s)[None, :] <= np.arange(t)[:, None] + 250)))`);
    assert.equal(out, 'float32 (2, 37, 300) True\nbool (2, 37, 300) True\nuint32 (2, 37, 10) True False\nTrue\n');
    const checks = await Promise.all([
      dsa('check', '--mask', f('causal.npy'), '--indices', f('idx.npy'), '--causal-offset', '250'),
      dsa('check', '--mask', f('causal.npy'), '--indices', f('idx.npy')),
    ]);
    assert.deepEqual([checks[0].code, checks[0].stdout], [0, 'ok: bool mask [2, 37, 300] matches the mask of indices [2, 37, 9] with s = 300, causal offset 250\n']);
    assert.equal(checks[1].code, 1);
    assert.match(checks[1].stdout, /^mismatch: batch 0, query \d+, key 2[5-9]\d: the mask holds 0 \(dropped\), the indices keep it \(slot \d\)\n$/);
  } finally {
    tmp.done();
  }
});

test('dsa check accepts numpy-written masks in every form and prints the first differing position of a corrupted one (idx[1,20,16] s=100)', async () => {
  const tmp = scratch();
  try {
    const f = tmp.file.bind(tmp);
    const out = numpy(`rng = np.random.default_rng(2)
idx = rng.integers(-1, 100, size=(1, 20, 16)).astype(np.int32)
np.save(${JSON.stringify(f('idx.npy'))}, idx)
keep = (np.arange(100) == idx[..., None]).any(-2)
add = np.where(keep, np.float32(0), ${MASK_VALUE}).astype(np.float32)
np.save(${JSON.stringify(f('add.npy'))}, add)
np.save(${JSON.stringify(f('bool.npy'))}, keep)
packed = np.packbits(np.pad(keep, ((0, 0), (0, 0), (0, 28))), axis=-1, bitorder='little').view('<u4')
np.save(${JSON.stringify(f('bits.npy'))}, packed)
bad = add.copy(); bad[0, 7, 55] = 0 if bad[0, 7, 55] != 0 else ${MASK_VALUE}
np.save(${JSON.stringify(f('bad-add.npy'))}, bad)
print('kept' if keep[0, 7, 55] else 'dropped', list(idx[0, 7]).index(55) if keep[0, 7, 55] else -1)
inf = np.where(keep, np.float32(0), np.float32(-np.inf)).astype(np.float32)
np.save(${JSON.stringify(f('inf.npy'))}, inf)
u8 = keep.astype(np.uint8); r, j = np.argwhere(keep[0])[5]; u8[0, r, j] = 2
np.save(${JSON.stringify(f('two.npy'))}, u8)
bb = keep.copy(); bb[0, 19, 99] = not bb[0, 19, 99]
np.save(${JSON.stringify(f('bad-bool.npy'))}, bb)
pb = packed.copy(); pb[0, 2, 1] ^= np.uint32(1 << 4)
np.save(${JSON.stringify(f('bad-bits.npy'))}, pb)
print('kept' if keep[0, 2, 36] else 'dropped')`).trim().split('\n');
    const [ok1, ok2, ok3, bad, inf, badBool, badBits, wrongS, two] = await Promise.all([
      dsa('check', '--mask', f('add.npy'), '--indices', f('idx.npy')),
      dsa('check', '--mask', f('bool.npy'), '--indices', f('idx.npy')),
      dsa('check', '--mask', f('bits.npy'), '--indices', f('idx.npy'), '--seq-len', '100'),
      dsa('check', '--mask', f('bad-add.npy'), '--indices', f('idx.npy')),
      dsa('check', '--mask', f('inf.npy'), '--indices', f('idx.npy')),
      dsa('check', '--mask', f('bad-bool.npy'), '--indices', f('idx.npy')),
      dsa('check', '--mask', f('bad-bits.npy'), '--indices', f('idx.npy'), '--seq-len', '100'),
      dsa('check', '--mask', f('add.npy'), '--indices', f('idx.npy'), '--seq-len', '99'),
      dsa('check', '--mask', f('two.npy'), '--indices', f('idx.npy')),
    ]);
    assert.equal(two.code, 1);
    assert.match(two.stdout, /^mismatch: batch 0, query \d+, key \d+: the mask holds 2 \(neither 0 nor 1\), the indices keep it/);
    assert.deepEqual([ok1.code, ok1.stdout], [0, 'ok: additive mask [1, 20, 100] matches the mask of indices [1, 20, 16] with s = 100\n']);
    assert.deepEqual([ok2.code, ok2.stdout], [0, 'ok: bool mask [1, 20, 100] matches the mask of indices [1, 20, 16] with s = 100\n']);
    assert.deepEqual([ok3.code, ok3.stdout], [0, 'ok: bits mask [1, 20, 4] matches the mask of indices [1, 20, 16] with s = 100\n']);
    const [was, slot] = out[0].split(' ');
    assert.equal(bad.code, 1);
    assert.equal(
      bad.stdout,
      was === 'kept'
        ? `mismatch: batch 0, query 7, key 55: the mask holds -2.381976e+38 (dropped), the indices keep it (slot ${slot})\n`
        : 'mismatch: batch 0, query 7, key 55: the mask holds 0 (kept), the indices drop it\n',
    );
    assert.equal(inf.code, 1);
    assert.match(inf.stdout, /^mismatch: batch 0, query 0, key \d+: the mask holds -Infinity \(neither 0 nor DEFAULT_MASK_VALUE -2.381976e\+38; pass --dropped-value -inf for masks filled with -inf\), the indices drop it\n$/);
    const [infOk, infBad] = await Promise.all([
      dsa('check', '--mask', f('inf.npy'), '--indices', f('idx.npy'), '--dropped-value', '-inf'),
      dsa('check', '--mask', f('add.npy'), '--indices', f('idx.npy'), '--dropped-value', '-inf'),
    ]);
    assert.deepEqual([infOk.code, infOk.stdout], [0, 'ok: additive mask [1, 20, 100] matches the mask of indices [1, 20, 16] with s = 100\n']);
    assert.equal(infBad.code, 1);
    assert.match(infBad.stdout, /the mask holds -2.381976e\+38 \(neither 0 nor the dropped value -Infinity\), the indices drop it\n$/);
    assert.equal(badBool.code, 1);
    assert.match(badBool.stdout, /^mismatch: batch 0, query 19, key 99: the mask holds [01] /);
    assert.equal(badBits.code, 1);
    assert.match(badBits.stdout, out[1] === 'kept'
      ? /^mismatch: batch 0, query 2, key 36: the mask drops it \(bit 4 of word 1 is 0\), the indices keep it/
      : /^mismatch: batch 0, query 2, key 36: the mask keeps it \(bit 4 of word 1 is 1\), the indices drop it\n$/);
    assert.deepEqual([wrongS.code, wrongS.stderr], [2, 'dsa check: --mask: last dimension 100 does not fit --seq-len 99: expected s = 99 keys\n']);
  } finally {
    tmp.done();
  }
});

test('dsa threshold (exact) gives the index mask of the top-k; raw keeps every tie (scores[2,8,64] k=5)', async () => {
  const tmp = scratch();
  try {
    const f = tmp.file.bind(tmp);
    numpy(`rng = np.random.default_rng(3)
scores = rng.integers(0, 6, size=(2, 8, 64)).astype(np.float32)     # many ties
order = np.lexsort((np.arange(64)[None, None, :].repeat(8, 1).repeat(2, 0), -scores), axis=-1)
top = order[..., :5]                                                  # descending value, ties by increasing key
np.save(${JSON.stringify(f('scores.npy'))}, scores)
np.save(${JSON.stringify(f('values.npy'))}, np.take_along_axis(scores, top, -1))
np.save(${JSON.stringify(f('idx.npy'))}, top)`);
    const [exact, raw] = await Promise.all([
      dsa('threshold', '--scores', f('scores.npy'), '--values', f('values.npy'), '--form', 'bool', '--out', f('exact.npy')),
      dsa('threshold', '--scores', f('scores.npy'), '--values', f('values.npy'), '--mode', 'raw', '--form', 'bool', '--out', f('raw.npy')),
    ]);
    assert.deepEqual([exact.code, exact.stderr, raw.code, raw.stderr], [0, '', 0, '']);
    const out = numpy(`scores = np.load(${JSON.stringify(f('scores.npy'))}); top = np.load(${JSON.stringify(f('idx.npy'))})
keep = (np.arange(64) == top[..., None]).any(-2)
print(np.array_equal(np.load(${JSON.stringify(f('exact.npy'))}), keep))
thr = np.load(${JSON.stringify(f('values.npy'))}).min(-1, keepdims=True)
print(np.array_equal(np.load(${JSON.stringify(f('raw.npy'))}), scores >= thr))`);
    assert.equal(out, 'True\nTrue\n');
    const check = await dsa('check', '--mask', f('exact.npy'), '--indices', f('idx.npy'));
    assert.equal(check.code, 0, check.stdout + check.stderr);
  } finally {
    tmp.done();
  }
});

test('bad input: one line on stderr, exit code 2, no output file', async () => {
  const tmp = scratch();
  try {
    const f = tmp.file.bind(tmp);
    numpy(`np.save(${JSON.stringify(f('f64.npy'))}, np.zeros((1, 4, 3)))
np.save(${JSON.stringify(f('rank2.npy'))}, np.zeros((4, 3), dtype=np.int32))
np.save(${JSON.stringify(f('fortran.npy'))}, np.asfortranarray(np.zeros((2, 4, 3), dtype=np.int32)))
np.save(${JSON.stringify(f('big.npy'))}, np.array([[[1, 2**40]]], dtype=np.int64))
np.save(${JSON.stringify(f('idx.npy'))}, np.array([[[1, 2], [3, 99]]], dtype=np.int32))
np.save(${JSON.stringify(f('scores.npy'))}, np.zeros((1, 2, 8), dtype=np.float32))
np.save(${JSON.stringify(f('values3.npy'))}, np.zeros((1, 3, 2), dtype=np.float32))
with open(${JSON.stringify(f('idx.npy'))}, 'rb') as src, open(${JSON.stringify(f('cut.npy'))}, 'wb') as dst:
    dst.write(src.read()[:-3])
with open(${JSON.stringify(f('junk.npy'))}, 'wb') as dst:
    dst.write(b'hello, not numpy')`);
    const out = f('out.npy');
    const cases: [string[], RegExp][] = [
      [['mask', '--indices', f('f64.npy'), '--seq-len', '8', '--out', out], /^dsa mask: --indices: .*f64.npy: unsupported dtype '<f8' \(float64: use a.astype\(np.float32\)\)/],
      [['mask', '--indices', f('rank2.npy'), '--seq-len', '8', '--out', out], /^dsa mask: --indices: .*rank2.npy: expected shape \[b, t, k\] \(rank 3\), got \[4, 3\] \(rank 2\)$/],
      [['mask', '--indices', f('fortran.npy'), '--seq-len', '8', '--out', out], /Fortran-order arrays are not supported/],
      [['mask', '--indices', f('big.npy'), '--seq-len', '8', '--out', out], /^dsa mask: .*big.npy: value 1099511627776 at row 0, slot 1 does not fit int32$/],
      [['mask', '--indices', f('idx.npy'), '--seq-len', '50', '--out', out], /^dsa mask: .*idx.npy: value 99 at batch 0, query 1, slot 1 must be < s = 50/],
      [['mask', '--indices', f('cut.npy'), '--seq-len', '100', '--out', out], /^dsa mask: --indices: .*cut.npy: truncated .npy data \(shape \[1, 2, 2\] int32 needs 16 bytes, file has 13\)$/],
      [['mask', '--indices', f('junk.npy'), '--seq-len', '100', '--out', out], /^dsa mask: --indices: .*junk.npy: not a .npy file/],
      [['mask', '--indices', f('missing.npy'), '--seq-len', '100', '--out', out], /^dsa mask: --indices: no such file .*missing.npy$/],
      [['mask', '--indices', f('idx.npy'), '--seq-len', '100', '--out', f('no/such/dir/m.npy')], /^dsa mask: --out: cannot write .*m.npy: the folder does not exist$/],
      [['mask', '--indices', f('idx.npy'), '--seq-len', '0', '--out', out], /^error: option '--seq-len <s>' argument '0' is invalid. expected a positive integer, got '0'$/],
      [['mask', '--indices', f('idx.npy'), '--seq-len', '100', '--form', 'dense', '--out', out], /^error: option '--form <form>' argument 'dense' is invalid/],
      [['mask', '--indices', f('idx.npy'), '--out', out], /^error: required option '--seq-len <s>' not specified$/],
      [['mask', '--indices', f('idx.npy'), '--seq-len', '100', '--frm', 'bits'], /^error: unknown option '--frm'/],
      [['threshold', '--scores', f('scores.npy'), '--values', f('values3.npy'), '--out', out], /^dsa threshold: --values: shape \[1, 3, 2\] must match --scores \[1, 2, 8\] in b and t$/],
      [['check', '--mask', f('scores.npy'), '--indices', f('rank2.npy')], /^dsa check: --indices: .*expected shape \[b, t, k\]/],
      [['maks'], /^error: unknown command 'maks'/],
    ];
    const results = await Promise.all(cases.map(([args]) => dsa(...args)));
    results.forEach((r, i) => {
      const label = cases[i][0].slice(0, 2).join(' ') + ` (case ${i})`;
      assert.equal(r.code, 2, `${label}: exit code; stderr ${r.stderr}`);
      assert.match(r.stderr.split('\n')[0], cases[i][1], label);
      assert.equal(r.stdout, '', label);
    });
    const left = readdirSync(tmp.dir).filter((name) => name === 'out.npy' || name.endsWith('.tmp'));
    assert.deepEqual(left, [], 'no output or temporary file left');
  } finally {
    tmp.done();
  }
});

test('--help for every command', async () => {
  const results = await Promise.all(['mask', 'check', 'topk', 'threshold', 'demo'].map((c) => dsa(c, '--help')));
  for (const r of results) {
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: dsa \w+ \[options\]/);
  }
});

test('the executable exits with the program\'s code and prints to the right stream', async () => {
  const [bad, help] = await Promise.all([dsaProcess('src', 'mask', '--indices', 'missing.npy', '--seq-len', '4'), dsaProcess('src', '--help')]);
  assert.deepEqual(bad, { code: 2, stdout: '', stderr: 'dsa mask: --indices: no such file missing.npy\n' });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: dsa \[options\] \[command\]/);
});

const built = existsSync(fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url)));

test('bin/dsa.js runs the built CLI', { skip: built ? false : 'dist/ not built (npm run build)' }, async () => {
  const [help, bad] = await Promise.all([dsaProcess('bin', 'mask', '--help'), dsaProcess('bin', 'check', '--mask', 'missing.npy', '--indices', 'missing.npy')]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: dsa mask \[options\]/);
  assert.deepEqual(bad, { code: 2, stdout: '', stderr: 'dsa check: --mask: no such file missing.npy\n' });
});
