import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { decodeNpy, encodeNpy, encodeNpyHeader, parseNpyHeader, type NpyDtype } from '../../src/io/npy.js';
import { NpyReader, NpyWriter, readNpy, writeNpy } from '../../src/io/npy-file.js';
import { numpy, scratch } from '../helpers/numpy.js';

const numpyNames: Record<NpyDtype, string> = { int32: 'int32', int64: 'int64', float32: 'float32', bool: 'bool', uint8: 'uint8', uint32: 'uint32' };

test('reads every supported dtype written by numpy, C order', () => {
  const tmp = scratch();
  try {
    const cases = [['int32', [2, 3, 4]], ['int64', [1, 5, 2]], ['float32', [3, 7]], ['bool', [2, 2, 9]], ['uint8', [4]], ['uint32', [2, 3]]] as const;
    const printed = numpy(`import json
for dtype, shape in json.loads(${JSON.stringify(JSON.stringify(cases))}):
    a = (np.arange(int(np.prod(shape))) * 7 % 5 - 2).reshape(shape)
    a = (a % 2 == 0) if dtype == 'bool' else (a % 256 if dtype.startswith('uint') else a).astype(dtype)
    np.save(${JSON.stringify(tmp.dir)} + '/' + dtype + '.npy', a)
    print(' '.join(str(int(x)) for x in a.ravel()))`).trim().split('\n');
    cases.forEach(([dtype, shape], i) => {
      const t = readNpy(tmp.file(`${dtype}.npy`));
      assert.equal(t.dtype, dtype, `${dtype}[${shape}]`);
      assert.deepEqual(t.shape, shape);
      assert.deepEqual([...t.data].map((x) => String(Number(x))), printed[i].split(' '), `${dtype}[${shape}]`);
    });
  } finally {
    tmp.done();
  }
});

test('files written here load in numpy with the same dtype, shape and values', () => {
  const tmp = scratch();
  try {
    const cases = [
      { data: Float32Array.from([1.5, -0, Infinity, NaN, -3.25, 1e-30]), shape: [2, 3], np: 'float32' },
      { data: Int32Array.from([-2147483648, 2147483647, 0, -1]), shape: [4], np: 'int32' },
      { data: BigInt64Array.from([-(2n ** 63n), 2n ** 40n]), shape: [1, 2], np: 'int64' },
      { data: Uint8Array.from([1, 0, 1]), shape: [3], np: 'bool' },
      { data: Uint32Array.from([0xffffffff, 1]), shape: [1, 1, 2], np: 'uint32' },
    ];
    for (const c of cases) writeNpy(tmp.file(`${c.np}.npy`), c);
    const out = numpy(`for name in ${JSON.stringify(cases.map((c) => c.np))}:
    a = np.load(${JSON.stringify(tmp.dir)} + '/' + name + '.npy')
    print(a.dtype, list(a.shape), a.flags['C_CONTIGUOUS'])
    print(' '.join(repr(x.item()) for x in a.ravel()))
    np.save(${JSON.stringify(tmp.dir)} + '/' + name + '-ref.npy', a)`).trim().split('\n');
    cases.forEach((c, i) => {
      assert.equal(out[2 * i], `${c.np} [${c.shape.join(', ')}] True`);
      const values = [...c.data].map((x) => (c.np === 'bool' ? (x ? 'True' : 'False') : c.np === 'float32' ? pyFloat(Number(x)) : String(x)));
      assert.deepEqual(out[2 * i + 1].split(' '), values, c.np);
      // and the bytes are np.save's own, byte for byte
      assert.deepEqual(readFileSync(tmp.file(`${c.np}.npy`)), readFileSync(tmp.file(`${c.np}-ref.npy`)), `${c.np}: same bytes as np.save`);
    });
  } finally {
    tmp.done();
  }
});

function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (Object.is(x, -0)) return '-0.0';
  return Number.isInteger(x) && Math.abs(x) < 1e16 ? `${x}.0` : String(x);
}

test('header and data round-trip for any shape and dtype', () => {
  const dtypes: NpyDtype[] = ['int32', 'int64', 'float32', 'bool', 'uint32'];
  fc.assert(
    fc.property(fc.constantFrom(...dtypes), fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 4 }), (dtype, shape) => {
      const n = shape.reduce((x, y) => x * y, 1);
      const ctor = { int32: Int32Array, int64: BigInt64Array, float32: Float32Array, bool: Uint8Array, uint8: Uint8Array, uint32: Uint32Array }[dtype];
      const data = new ctor(n);
      for (let i = 0; i < n; i++) (data as any)[i] = dtype === 'int64' ? BigInt(i * 3 - 7) : dtype === 'bool' ? i & 1 : i * 3 + 1;
      const bytes = encodeNpy({ data, shape }, dtype);
      assert.equal(encodeNpyHeader(dtype, shape).length % 64, 0);
      const back = decodeNpy(bytes);
      assert.equal(back.dtype, dtype);
      assert.deepEqual(back.shape, shape);
      assert.deepEqual(back.data, data);
    }),
  );
});

test('reads element ranges without loading the file, on this thread or the thread pool', async () => {
  const tmp = scratch();
  try {
    const path = tmp.file('rows.npy');
    numpy(`np.save(${JSON.stringify(path)}, np.arange(6 * 1000, dtype=np.float32).reshape(6, 1000))`);
    const reader = NpyReader.open(path);
    try {
      assert.deepEqual(reader.shape, [6, 1000]);
      const block = reader.read(2000, 2000) as Float32Array;
      assert.equal(block[0], 2000);
      assert.equal(block[1999], 3999);
      const into = new Float32Array(3);
      reader.read(5997, 3, into);
      assert.deepEqual([...into], [5997, 5998, 5999]);
      assert.throws(() => reader.read(5999, 2), /element range \[5999, 6001\) is outside \[0, 6000\]/);
      const [a, b] = await Promise.all([reader.readAsync(1000, 1500, new Float32Array(1500)), reader.readAsync(4000, 3, new Float32Array(4))]);
      assert.deepEqual([a[0], a[1499], b[0], b[2], b[3]], [1000, 2499, 4000, 4002, 0]);
      await assert.rejects(reader.readAsync(5999, 2, new Float32Array(2)), /is outside \[0, 6000\]/);
      await assert.rejects(reader.readAsync(0, 2, new Int32Array(2)), /out must be a Float32Array of at least 2 elements/);
    } finally {
      reader.close();
    }
  } finally {
    tmp.done();
  }
});

test('streams blocks to a temporary file and renames only when complete', () => {
  const tmp = scratch();
  try {
    const path = tmp.file('out.npy');
    const w = NpyWriter.create(path, 'int32', [3, 2]);
    w.write(Int32Array.from([1, 2]));
    assert.equal(existsSync(path), false, 'no output before commit');
    w.write(Int32Array.from([3, 4, 5, 6]));
    w.commit();
    assert.deepEqual(readdirSync(tmp.dir), ['out.npy']);
    assert.equal(numpy(`print(np.load(${JSON.stringify(path)}).sum())`).trim(), '21');

    const short = NpyWriter.create(tmp.file('short.npy'), 'int32', [3, 2]);
    short.write(Int32Array.from([1, 2]));
    assert.throws(() => short.commit(), /wrote 2 of 6 elements; nothing was saved/);
    assert.throws(() => NpyWriter.create(tmp.file('x.npy'), 'int32', [1]).write(Int32Array.from([1, 2])), /would exceed the shape's 1/);
    assert.throws(() => writeNpy(tmp.file('y.npy'), { data: new Float32Array(2), shape: [2] }, 'int32'), /needs a Int32Array, got Float32Array/);
    assert.deepEqual(readdirSync(tmp.dir).filter((f) => f !== 'x.npy' && !f.startsWith('.x.npy')), ['out.npy']);
  } finally {
    tmp.done();
  }
});

test('clear errors for other dtypes, Fortran order, truncated and corrupt files', () => {
  const tmp = scratch();
  try {
    const f = (name: string) => tmp.file(name);
    numpy(`np.save(${JSON.stringify(f('f64.npy'))}, np.zeros((2, 3)))
np.save(${JSON.stringify(f('be.npy'))}, np.zeros(3, dtype='>f4'))
np.save(${JSON.stringify(f('fortran.npy'))}, np.asfortranarray(np.zeros((2, 3), dtype=np.float32)))
np.save(${JSON.stringify(f('struct.npy'))}, np.zeros(2, dtype=[('a', '<f4')]))
np.save(${JSON.stringify(f('ok.npy'))}, np.zeros((4, 4), dtype=np.int32))`);
    assert.throws(() => readNpy(f('f64.npy')), { name: 'TypeError', message: /unsupported dtype '<f8' \(float64: use a.astype\(np.float32\)\); expected one of '<i4', '<i8', '<f4', '\|b1', '\|u1', '<u4'/ });
    assert.throws(() => readNpy(f('be.npy')), /unsupported dtype '>f4' \(big endian/);
    assert.throws(() => readNpy(f('fortran.npy')), /Fortran-order arrays are not supported/);
    assert.throws(() => readNpy(f('struct.npy')), /unsupported dtype \[\('a', '<f4'\)\] \(structured arrays/);

    const ok = readFileSync(f('ok.npy'));
    writeFileSync(f('truncated.npy'), ok.subarray(0, ok.length - 5));
    assert.throws(() => readNpy(f('truncated.npy')), { name: 'RangeError', message: /truncated.npy: truncated .npy data \(shape \[4, 4\] int32 needs 64 bytes, file has 59\)/ });
    writeFileSync(f('padded.npy'), Buffer.concat([ok, Buffer.from([0])]));
    assert.throws(() => readNpy(f('padded.npy')), /corrupt .npy data/);
    writeFileSync(f('header-cut.npy'), ok.subarray(0, 40));
    assert.throws(() => readNpy(f('header-cut.npy')), /truncated .npy header/);
    writeFileSync(f('magic.npy'), Buffer.from('PK\x03\x04 not numpy at all'));
    assert.throws(() => readNpy(f('magic.npy')), /not a .npy file/);
    writeFileSync(f('empty.npy'), Buffer.alloc(0));
    assert.throws(() => readNpy(f('empty.npy')), /not a .npy file/);
    const garbled = Buffer.from(ok);
    garbled.write("{'descr' '<i4'", 10, 'latin1');
    writeFileSync(f('garbled.npy'), garbled);
    assert.throws(() => readNpy(f('garbled.npy')), /corrupt .npy header/);
    assert.throws(() => readNpy(f('missing.npy')), /ENOENT/);
  } finally {
    tmp.done();
  }
});

test('parses headers of version 2.0 and 0-d arrays', () => {
  const tmp = scratch();
  try {
    const p = tmp.file('v2.npy');
    numpy(`import numpy.lib.format as f
with open(${JSON.stringify(p)}, 'wb') as fh:
    f.write_array(fh, np.arange(3, dtype=np.int64), version=(2, 0))
np.save(${JSON.stringify(tmp.file('scalar.npy'))}, np.float32(2.5))`);
    const t = readNpy(p);
    assert.deepEqual([t.dtype, t.shape, [...t.data]], ['int64', [3], [0n, 1n, 2n]]);
    const s = readNpy(tmp.file('scalar.npy'));
    assert.deepEqual([s.shape, [...s.data]], [[], [2.5]]);
    assert.deepEqual(parseNpyHeader(encodeNpyHeader('bool', [7])), { dtype: 'bool', shape: [7], dataOffset: 128 });
  } finally {
    tmp.done();
  }
});
