import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  SAFETENSORS_DTYPES,
  SafetensorsError,
  bytesSource,
  encodeSafetensors,
  openSafetensors,
  parseSafetensorsHeader,
  type ByteSource,
  type SafetensorsDtype,
  type SafetensorsErrorCode,
  type SafetensorsArray,
  type SafetensorsTensor,
} from '../../src/io/safetensors.js';
import { fileSource, openSafetensorsFile } from '../../src/io/safetensors-file.js';
import { numpy, scratch } from '../helpers/numpy.js';

const DTYPES = Object.keys(SAFETENSORS_DTYPES) as SafetensorsDtype[];

/** A whole file from a header object and data bytes, the header written as given (no checks). */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), headerLength?: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function expectError(code: SafetensorsErrorCode, pattern: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof SafetensorsError, `expected a SafetensorsError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  };
}

/** A ByteSource over bytes that counts what is read and whether it was closed. */
function counting(bytes: Uint8Array, name = 'counted.safetensors', size = bytes.length): ByteSource & { bytesRead: number; reads: [number, number][]; closed: boolean } {
  const inner = bytesSource(bytes, name);
  const src = {
    name,
    size,
    bytesRead: 0,
    reads: [] as [number, number][],
    closed: false,
    async read(offset: number, into: Uint8Array) {
      const n = await inner.read(offset, into);
      src.bytesRead += n;
      src.reads.push([offset, offset + n]);
      return n;
    },
    async close() {
      src.closed = true;
    },
  };
  return src;
}

const bytesOf = (a: SafetensorsArray) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function arbTensor(): fc.Arbitrary<SafetensorsTensor> {
  return fc
    .record({ dtype: fc.constantFrom(...DTYPES), shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }) })
    .chain(({ dtype, shape }) => {
      const ctor = SAFETENSORS_DTYPES[dtype];
      const n = shape.reduce((a, b) => a * b, 1);
      return fc.uint8Array({ minLength: n * ctor.BYTES_PER_ELEMENT, maxLength: n * ctor.BYTES_PER_ELEMENT }).map((raw) => {
        const data = new ctor(n);
        bytesOf(data).set(raw);
        return { dtype, shape, data };
      });
    });
}

test('round trip: encodeSafetensors then openSafetensors gives every tensor back bit for bit, over bytes, a Blob and a file', async () => {
  const tmp = scratch();
  try {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s !== '__metadata__'), arbTensor()), { maxLength: 6, selector: ([k]) => k }),
        fc.option(fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 })), { nil: undefined }),
        async (list, metadata) => {
          const file = encodeSafetensors(new Map(list), metadata);
          const header = parseSafetensorsHeader(file);
          assert.equal(header.dataOffset % 8, 0, 'the data starts 8-byte aligned');
          const path = tmp.file(`t${run++}.safetensors`);
          writeFileSync(path, file);
          for (const reader of [await openSafetensors(file), await openSafetensors(new Blob([file as BlobPart])), await openSafetensorsFile(path)]) {
            assert.deepEqual(reader.metadata, { ...metadata });
            assert.deepEqual([...reader.tensors.keys()].sort(), list.map(([k]) => k).sort());
            for (const [key, t] of list) {
              const got = await reader.read(key);
              assert.equal(got.dtype, t.dtype);
              assert.deepEqual(got.shape, t.shape);
              assert.equal(got.data.constructor, t.data.constructor, `${key}: ${t.dtype} reads as a ${t.data.constructor.name}`);
              assert.deepEqual(bytesOf(got.data), bytesOf(t.data), `${key} ${t.dtype}[${t.shape}]`);
            }
            await reader.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  } finally {
    tmp.done();
  }
});

test('reads a file laid out by an independent writer (NumPy, sorted keys, unpadded header, F32 / BF16 / I64 / F8_E4M3 codes)', async () => {
  const tmp = scratch();
  try {
    const path = tmp.file('np.safetensors');
    numpy(`import json, struct
a = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
b = (a.view(np.uint32) >> 16).astype(np.uint16)
c = np.array([-(2**40), 7], dtype=np.int64)
d = np.array([[0x38, 0x40], [0xb8, 0x7e]], dtype=np.uint8)
entries, off, blobs = {}, 0, []
for name, dtype, arr in [('w.bf16', 'BF16', b), ('a.f32', 'F32', a), ('c.i64', 'I64', c), ('d.fp8', 'F8_E4M3', d)]:
    raw = arr.tobytes()
    entries[name] = {'dtype': dtype, 'shape': list(arr.shape), 'data_offsets': [off, off + len(raw)]}
    off += len(raw); blobs.append(raw)
entries['__metadata__'] = {'format': 'pt'}
h = json.dumps(entries, sort_keys=True).encode()
open(${JSON.stringify(path)}, 'wb').write(struct.pack('<Q', len(h)) + h + b''.join(blobs))`);
    const r = await openSafetensorsFile(path);
    try {
      assert.deepEqual(r.metadata, { format: 'pt' });
      const a = await r.read('a.f32');
      assert.deepEqual([...(a.data as Float32Array)], [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]);
      const b = await r.read('w.bf16');
      assert.ok(b.data instanceof Uint16Array);
      assert.deepEqual([...new Float32Array(Uint32Array.from(b.data as Uint16Array, (x) => x << 16).buffer)], [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]);
      assert.deepEqual([...((await r.read('c.i64')).data as BigInt64Array)], [-(2n ** 40n), 7n]);
      const d = await r.read('d.fp8');
      assert.deepEqual(d.shape, [2, 2]);
      assert.deepEqual([...d.data], [0x38, 0x40, 0xb8, 0x7e]);
    } finally {
      await r.close();
    }
  } finally {
    tmp.done();
  }
});

test('opening reads only the header; a tensor read reads only its own range', async () => {
  const big = new Float32Array(1000).map((_, i) => i);
  const file = encodeSafetensors({ first: { dtype: 'F32', shape: [1000], data: big }, small: { dtype: 'I32', shape: [3], data: Int32Array.from([1, 2, 3]) } });
  const src = counting(file);
  const r = await openSafetensors(src);
  const header = r.dataOffset;
  assert.equal(src.bytesRead, header, 'open reads 8 + N bytes');
  const small = await r.read('small');
  assert.deepEqual([...small.data], [1, 2, 3]);
  assert.equal(src.bytesRead, header + 12);
  assert.deepEqual(src.reads.at(-1), [header + 4000, header + 4012]);
});

test('bad header length: past the file, absurd, or too short; a file under 8 bytes is truncated', async () => {
  const ok = rawFile({ x: { dtype: 'U8', shape: [2], data_offsets: [0, 2] } }, Uint8Array.of(1, 2));
  const past = ok.slice();
  new DataView(past.buffer).setBigUint64(0, BigInt(ok.length), true);
  assert.throws(() => parseSafetensorsHeader(past), expectError('header-length', /reaches past the file's \d+ bytes/));
  await assert.rejects(openSafetensors(past, 'past.safetensors'), expectError('header-length', /^past\.safetensors: header length/));
  const absurd = ok.slice();
  new DataView(absurd.buffer).setBigUint64(0, 2n ** 60n, true);
  assert.throws(() => parseSafetensorsHeader(absurd), expectError('header-length', /1152921504606846976 is absurd/));
  assert.throws(() => parseSafetensorsHeader(rawFile('{}', undefined, 1)), expectError('header-length', /too short/));
  assert.throws(() => parseSafetensorsHeader(Uint8Array.of(1, 2, 3)), expectError('truncated', /3 bytes is shorter than the 8-byte header length/));
  await assert.rejects(openSafetensors(new Uint8Array(0), 'empty'), expectError('truncated', /^empty: /));
});

test('bad header JSON: not JSON, not UTF-8, not an object, entries of the wrong form, __metadata__ not strings', () => {
  assert.throws(() => parseSafetensorsHeader(rawFile('{"x": ')), expectError('header-json', /not valid JSON/));
  const bad = rawFile('{"a":1}');
  bad[9] = 0xff;
  assert.throws(() => parseSafetensorsHeader(bad), expectError('header-json', /not valid UTF-8/));
  assert.throws(() => parseSafetensorsHeader(rawFile('[1, 2]')), expectError('header-json', /must be a JSON object, got an array/));
  assert.throws(() => parseSafetensorsHeader(rawFile('null')), expectError('header-json', /got null/));
  assert.throws(() => parseSafetensorsHeader(rawFile('"text"')), expectError('header-json', /got string/));
  assert.throws(() => parseSafetensorsHeader(rawFile({ x: 3 })), expectError('header-json', /tensor 'x' must be an object/));
  assert.throws(() => parseSafetensorsHeader(rawFile({ x: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } })), expectError('header-json', /'x': shape must be an array of non-negative integers/));
  assert.throws(() => parseSafetensorsHeader(rawFile({ x: { dtype: 'U8', shape: [1], data_offsets: [0] } }, Uint8Array.of(0))), expectError('header-json', /'x': data_offsets must be \[begin, end\]/));
  assert.throws(() => parseSafetensorsHeader(rawFile({ x: { dtype: 7, shape: [1], data_offsets: [0, 1] } }, Uint8Array.of(0))), expectError('header-json', /dtype must be a string/));
  assert.throws(() => parseSafetensorsHeader(rawFile({ __metadata__: { format: 1 } })), expectError('header-json', /__metadata__\.format must be a string/));
  assert.throws(() => parseSafetensorsHeader(rawFile({ __metadata__: [] })), expectError('header-json', /__metadata__ must be an object/));
});

test('an unknown dtype is named with the tensor and the known ones', () => {
  assert.throws(
    () => parseSafetensorsHeader(rawFile({ 'w.weight': { dtype: 'F4', shape: [2], data_offsets: [0, 1] } }, Uint8Array.of(0)), { name: 'model.safetensors' }),
    expectError('dtype', /^model\.safetensors: tensor 'w\.weight': unknown dtype 'F4' \(known: BOOL, .*F8_E4M3.*BF16/),
  );
});

test('shape and byte length disagree', () => {
  assert.throws(
    () => parseSafetensorsHeader(rawFile({ w: { dtype: 'BF16', shape: [2, 3], data_offsets: [0, 10] } }, new Uint8Array(10))),
    expectError('shape', /'w': shape \[2, 3\] of BF16 needs 12 bytes, but data_offsets \[0, 10\] span 10/),
  );
});

test('offsets: reversed, overlapping, with a hole, trailing bytes; past the end of the file is truncated', () => {
  const u8 = (b: number, e: number) => ({ dtype: 'U8', shape: [e - b], data_offsets: [b, e] });
  assert.throws(() => parseSafetensorsHeader(rawFile({ a: { dtype: 'U8', shape: [0], data_offsets: [4, 2] } }, new Uint8Array(4))), expectError('offsets', /'a': data_offsets \[4, 2\] are reversed/));
  assert.throws(() => parseSafetensorsHeader(rawFile({ a: u8(0, 4), b: u8(2, 6) }, new Uint8Array(6))), expectError('offsets', /'b' \[2, 6\) overlaps 'a', which ends at 4/));
  assert.throws(() => parseSafetensorsHeader(rawFile({ a: u8(0, 2), b: u8(3, 5) }, new Uint8Array(5))), expectError('offsets', /'b' starts at 3, expected 2 \(a hole/));
  assert.throws(() => parseSafetensorsHeader(rawFile({ a: u8(1, 2) }, new Uint8Array(2))), expectError('offsets', /'a' starts at 1, expected 0/));
  assert.throws(() => parseSafetensorsHeader(rawFile({ a: u8(0, 2) }, new Uint8Array(5))), expectError('offsets', /ends at 2, but the file holds 5 data bytes \(trailing/));
  assert.throws(() => parseSafetensorsHeader(rawFile({ a: u8(0, 2), b: u8(2, 9) }, new Uint8Array(5))), expectError('truncated', /tensor 'b' ends at data byte 9 .* but the file has \d+ bytes/));
  // out of order in the JSON is fine: the data order is the offsets' order
  const h = parseSafetensorsHeader(rawFile({ b: u8(2, 5), a: u8(0, 2) }, new Uint8Array(5)));
  assert.deepEqual([...h.tensors.keys()], ['a', 'b']);
});

test('a truncated file: the header says more data than the file has, or the file shrinks while reading', async () => {
  const file = encodeSafetensors({ a: { dtype: 'F32', shape: [4], data: new Float32Array(4) }, b: { dtype: 'F32', shape: [2], data: new Float32Array(2) } });
  await assert.rejects(openSafetensors(file.subarray(0, file.length - 3), 'cut.safetensors'), expectError('truncated', /^cut\.safetensors: truncated: tensor 'b' ends at data byte 24/));
  const lying = counting(file.subarray(0, file.length - 3), 'shrunk.safetensors', file.length);
  const r = await openSafetensors(lying);
  assert.equal((await r.read('a')).data.length, 4);
  await assert.rejects(r.read('b'), expectError('truncated', /^shrunk\.safetensors: truncated: tensor 'b' needs bytes \[\d+, \d+\) but the file ended at/));
  await assert.rejects(openSafetensors(file.subarray(0, 20), 'head.safetensors'), expectError('header-length', /^head\.safetensors: header length \d+ reaches past/));
});

test('a missing tensor names the file; reading after close fails; errors while opening close the source', async () => {
  const file = encodeSafetensors({ a: { dtype: 'U8', shape: [1], data: Uint8Array.of(9) } });
  const r = await openSafetensors(file, 'shard-1.safetensors');
  await assert.rejects(r.read('b'), expectError('missing', /^shard-1\.safetensors: no tensor 'b' \(the file holds 1\)/));
  await r.close();
  await assert.rejects(r.read('a'), expectError('closed', /after close/));
  const src = counting(rawFile('[]'), 'bad.safetensors');
  await assert.rejects(openSafetensors(src), expectError('header-json', /^bad\.safetensors/));
  assert.ok(src.closed, 'the source is closed after a failed open');
});

test('a file source closes its handle and reads ranges with positional reads', async () => {
  const tmp = scratch();
  try {
    const path = tmp.file('x.safetensors');
    writeFileSync(path, encodeSafetensors({ a: { dtype: 'I16', shape: [2], data: Int16Array.of(-3, 4) } }));
    const src = await fileSource(path, 'x');
    const into = new Uint8Array(8);
    assert.equal(await src.read(0, into), 8);
    await src.close();
    await assert.rejects(src.read(0, into), /x: file is closed/);
    writeFileSync(path, rawFile('{"a": 1}'));
    await assert.rejects(openSafetensorsFile(path), expectError('header-json', /tensor 'a' must be an object/));
  } finally {
    tmp.done();
  }
});

test('encodeSafetensors refuses a typed array that is not the dtype\'s, a length that is not the shape\'s, and __metadata__ as a name', () => {
  assert.throws(() => encodeSafetensors({ a: { dtype: 'BF16', shape: [2], data: new Float32Array(2) } }), /tensor 'a': dtype BF16 needs a Uint16Array, got Float32Array/);
  assert.throws(() => encodeSafetensors({ a: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }), /shape \[3\] holds 3 elements, data has 2/);
  assert.throws(() => encodeSafetensors(new Map([['__metadata__', { dtype: 'U8' as const, shape: [0], data: new Uint8Array(0) }]])), /reserved/);
});
