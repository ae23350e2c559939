// A fuzz of the byte formats at the public edge: .npy (parseNpyHeader,
// encodeNpyHeader, encodeNpy, decodeNpy), safetensors (parseSafetensorsHeader,
// openSafetensors, safetensorsReader, encodeSafetensors), parseModelConfig,
// int64ToInt32 and the e4m3 codec. Valid inputs are built by the definitions
// written here (the formats' layouts restated with plain loops) and must
// decode to what was put in; corrupted ones (flipped, cut or appended bytes,
// random JSON) must give the same answer a checker of the format gives, or
// the module's named error (its message starting with the file's name), in
// bounded time; an argument of the wrong kind is a TypeError or RangeError
// naming it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { int64ToInt32 } from '../../src/tensor.js';
import { E4M3_VALUES, e4m3Decode, e4m3Encode } from '../../src/indexer/fp8.js';
import { decodeNpy, encodeNpyHeader, parseNpyHeader, type NpyDtype } from '../../src/io/npy.js';
import { encodeNpy } from '../../src/interop/index.js';
import {
  SafetensorsError, blobSource, bytesSource, encodeSafetensors, openSafetensors, parseSafetensorsHeader, safetensorsReader,
  type SafetensorsDtype, type SafetensorsTensor,
} from '../../src/io/safetensors.js';
import { ConfigError, parseModelConfig } from '../../src/model/config.js';
import { check, checkAsync, mostly, report, sameBits, type Expected } from './harness.js';
import { e4m3Nearest, e4m3Value } from './definitions.js';

const NPY_CTOR = { int32: Int32Array, int64: BigInt64Array, float32: Float32Array, bool: Uint8Array, uint8: Uint8Array, uint32: Uint32Array } as const;
const NPY_DESCR: Record<NpyDtype, string> = { int32: '<i4', int64: '<i8', float32: '<f4', bool: '|b1', uint8: '|u1', uint32: '<u4' };
const NPY_NAMES = Object.keys(NPY_CTOR) as NpyDtype[];

/** The .npy layout: magic, version, header length, the dict padded with spaces and a newline to 64 bytes. */
function npyBytes(dict: string, major: 1 | 2 | 3, data: Uint8Array, align = 64): Uint8Array {
  const prefix = major === 1 ? 10 : 12;
  const total = Math.ceil((prefix + dict.length + 1) / align) * align;
  const text = dict.padEnd(total - prefix - 1, ' ') + '\n';
  const out = new Uint8Array(total + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  for (let i = 0, n = text.length; i < (major === 1 ? 2 : 4); i++) out[8 + i] = Math.floor(n / 256 ** i) % 256;
  for (let i = 0; i < text.length; i++) out[prefix + i] = text.charCodeAt(i);
  out.set(data, total);
  return out;
}

const shapeText = (shape: number[]) => (shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`);
const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Random elements of a dtype, as the typed array and its little-endian bytes. */
function elements(dtype: NpyDtype, n: number, seed: number) {
  const data = new NPY_CTOR[dtype](n);
  for (let i = 0; i < n; i++) {
    const x = Math.sin(seed + i * 7.1) * 1e4;
    if (data instanceof BigInt64Array) data[i] = BigInt(Math.trunc(x)) * 123456789n;
    else if (dtype === 'bool') data[i] = x > 0 ? 1 : 0;
    else (data as Float32Array)[i] = x;
  }
  return data;
}

/** What a checker of a .npy header finds in `bytes`: the header, or 'bad' (not .npy, corrupt, unsupported). */
function npyDefinition(bytes: Uint8Array): { dtype: NpyDtype; shape: number[]; dataOffset: number } | 'bad' {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) return 'bad';
  const major = bytes[6];
  if (major !== 1 && major !== 2 && major !== 3) return 'bad';
  if (major !== 1 && bytes.length < 12) return 'bad';
  const prefix = major === 1 ? 10 : 12;
  let len = 0;
  for (let i = 0; i < prefix - 8; i++) len += bytes[8 + i] * 256 ** i;
  const dataOffset = prefix + len;
  if (bytes.length < dataOffset) return 'bad';
  let text = '';
  for (let i = prefix; i < dataOffset; i++) text += String.fromCharCode(bytes[i]);
  // A Python dict of the three keys (any order, a trailing comma allowed) holding literals.
  const body = text.trim();
  if (!body.startsWith('{') || !body.endsWith('}')) return 'bad';
  const items = new Map<string, string>();
  let rest = body.slice(1, -1);
  while (rest.trim() !== '') {
    const m = /^\s*'([^']+)'\s*:\s*('[^']*'|\([^)]*\)|\[[^\]]*\]|True|False)\s*(,|$)/.exec(rest);
    if (m === null) return 'bad';
    items.set(m[1], m[2]);
    rest = rest.slice(m[0].length);
  }
  const descr = items.get('descr'), fortran = items.get('fortran_order'), shape = items.get('shape');
  if (descr === undefined || shape === undefined || fortran !== 'False') return 'bad';
  const dtype = NPY_NAMES.find((n) => `'${NPY_DESCR[n]}'` === descr || `'${NPY_DESCR[n].replace('<', '=')}'` === descr);
  if (dtype === undefined) return 'bad';
  const inner = shape.slice(1, -1).trim();
  const parts = inner === '' ? [] : inner.split(',').map((p) => p.trim());
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  if (!parts.every((p) => /^\d+$/.test(p) && Number.isSafeInteger(Number(p)))) return 'bad';
  return { dtype, shape: parts.map(Number), dataOffset };
}

test('npy: parseNpyHeader and decodeNpy on valid files of every version, dtype and dict layout, and on corrupted bytes', () => {
  const started = performance.now();
  const dims = fc.array(fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 4 }) }, { weight: 1, arbitrary: fc.constantFrom(2 ** 31, 2 ** 53 - 1, 2 ** 53, 2 ** 60) }), { maxLength: 3 });
  const arb = fc.record({
    dtype: fc.constantFrom(...NPY_NAMES),
    shape: dims,
    major: fc.constantFrom<1 | 2 | 3>(1, 1, 2, 3),
    order: fc.constantFrom([0, 1, 2], [2, 1, 0], [1, 0, 2]),
    spaces: fc.constantFrom('', ' ', '  '),
    trailing: fc.boolean(),
    equals: fc.boolean(),
    fortran: mostly(fc.constant('False'), fc.constantFrom('True', 'false', '0')),
    descr: mostly(fc.constant(null), fc.constantFrom("'<f8'", "'>f4'", "'<i2'", "[('a', '<f4')]", "'O'")),
    seed: fc.integer(),
    // Corruption: none, some bytes set at random, the file cut, bytes appended.
    flips: mostly(fc.constant([] as [number, number][]), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), 2),
    cut: mostly(fc.constant(null), fc.nat(), 6),
    extra: mostly(fc.constant(0), fc.integer({ min: 1, max: 9 }), 8),
  });
  fc.assert(
    fc.property(arb, (c) => {
      const n = product(c.shape);
      const data = n <= 64 ? elements(c.dtype, n, c.seed) : new NPY_CTOR[c.dtype](0);
      const descr = c.descr ?? `'${c.equals ? NPY_DESCR[c.dtype].replace('<', '=') : NPY_DESCR[c.dtype]}'`;
      const kv = [`'descr':${c.spaces} ${descr}`, `'fortran_order': ${c.fortran}`, `'shape': ${shapeText(c.shape)}`];
      const dict = `{${c.order.map((i) => kv[i]).join(`,${c.spaces} `)}${c.trailing ? ', ' : ''}}`;
      let bytes = npyBytes(dict, c.major, new Uint8Array(data.buffer, 0, data.byteLength));
      for (const [at, v] of c.flips) bytes[at % bytes.length] = v;
      if (c.cut !== null) bytes = bytes.slice(0, c.cut % (bytes.length + 1));
      if (c.extra > 0) bytes = Uint8Array.from([...bytes, ...new Uint8Array(c.extra).fill(0x20)]);
      const header = npyDefinition(bytes);
      const what = `parseNpyHeader ${JSON.stringify({ dict, major: c.major, flips: c.flips, cut: c.cut, extra: c.extra })}`;
      check(what, () => parseNpyHeader(bytes, 'f.npy'), header === 'bad' ? { bad: ['f.npy'] } : { value: header }, (got, want) => assert.deepEqual(got, want, what), [Error]);
      // decodeNpy: the header, then exactly product(shape) elements after it.
      let decoded: Expected<{ dtype: NpyDtype; shape: number[]; data: Uint8Array }>;
      if (header === 'bad') decoded = { bad: ['f.npy'] };
      else {
        const size = NPY_CTOR[header.dtype].BYTES_PER_ELEMENT;
        const need = product(header.shape) * size;
        decoded = bytes.length - header.dataOffset !== need ? { bad: ['f.npy'] } : { value: { dtype: header.dtype, shape: header.shape, data: bytes.slice(header.dataOffset) } };
      }
      check(`decodeNpy ${what}`, () => decodeNpy(bytes, 'f.npy'), decoded, (got, want) => {
        assert.equal(got.dtype, want.dtype, what);
        assert.deepEqual(got.shape, want.shape, what);
        assert.ok(got.data instanceof NPY_CTOR[want.dtype], `${what}: type`);
        sameBits(`${what}: bytes`, new Uint8Array(got.data.buffer, got.data.byteOffset, got.data.byteLength), want.data);
      }, [Error]);
    }),
    { numRuns: 3000 },
  );
  report('parseNpyHeader', started);
  report('decodeNpy', started);
});

test('npy: encodeNpyHeader and encodeNpy write the layout for every dtype and shape, and refuse bad dtypes, shapes and tensors', () => {
  const started = performance.now();
  const badDtype = fc.constantFrom<unknown>('float64', 'toString', 'constructor', '__proto__', '', undefined, 3);
  const dim = mostly(fc.integer({ min: 0, max: 4 }), fc.constantFrom<unknown>(-1, 1.5, NaN, Infinity, '2', 2 ** 53), 10);
  const arb = fc.record({
    dtype: mostly(fc.constantFrom<unknown>(...NPY_NAMES), badDtype, 10),
    shape: mostly(fc.array(dim, { maxLength: 3 }), fc.constantFrom<unknown>(undefined, 3, '2,3', null), 20),
    dataKind: mostly(fc.constant('right' as const), fc.constantFrom('wrong' as const, 'short' as const, 'none' as const), 10),
    seed: fc.integer(),
  });
  fc.assert(
    fc.property(arb, ({ dtype, shape, dataKind, seed }) => {
      const what = `encodeNpyHeader(${JSON.stringify(dtype) ?? 'undefined'}, ${JSON.stringify(shape) ?? 'undefined'})`;
      const dtypeOk = typeof dtype === 'string' && (NPY_NAMES as string[]).includes(dtype);
      const shapeOk = Array.isArray(shape) && shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0);
      const bad = [...(dtypeOk ? [] : ['dtype']), ...(shapeOk ? [] : ['shape'])];
      const header = (d: NpyDtype, s: number[]) => npyBytes(`{'descr': '${NPY_DESCR[d]}', 'fortran_order': False, 'shape': ${shapeText(s)}, }`, 1, new Uint8Array(0));
      check(what, () => encodeNpyHeader(dtype as NpyDtype, shape as number[]), bad.length > 0 ? { bad } : { value: header(dtype as NpyDtype, shape as number[]) }, (got, want) => sameBits(what, got, want));
      // encodeNpy: the header, then the data's bytes; the round trip through decodeNpy gives the tensor back.
      if (!shapeOk || !dtypeOk || product(shape as number[]) > 64) return;
      const d = dtype as NpyDtype, s = shape as number[], n = product(s);
      const right = elements(d, n, seed);
      const data = dataKind === 'right' ? right : dataKind === 'short' ? new NPY_CTOR[d](n + 1) : dataKind === 'wrong' ? (d === 'float32' ? new Float64Array(n) : new Float32Array(n + 0)) : undefined;
      const tensor = data === undefined ? (s as unknown) : { data, shape: s };
      const wrongType = data === undefined || !(data instanceof NPY_CTOR[d]) || (d === 'bool' && !(data instanceof Uint8Array));
      const w = `encodeNpy(${dataKind} ${d} [${s.join(', ')}])`;
      const expected: Expected<Uint8Array> = data === undefined ? { bad: ['tensor'] } : wrongType ? { bad: ['npy', 'tensor'] } : dataKind === 'short' ? { bad: ['npy', 'tensor'] } : { value: npyBytes(`{'descr': '${NPY_DESCR[d]}', 'fortran_order': False, 'shape': ${shapeText(s)}, }`, 1, new Uint8Array(right.buffer, 0, right.byteLength)) };
      check(w, () => encodeNpy(tensor as never, d), expected, (got, want) => {
        sameBits(w, got, want);
        const back = decodeNpy(got);
        assert.deepEqual(back.shape, s, w);
        sameBits(`${w}: round trip`, back.data as ArrayLike<number>, right as ArrayLike<number>);
      });
    }),
    { numRuns: 3000 },
  );
  report('encodeNpyHeader', started);
  report('encodeNpy', started);
});

test('npy: arguments of the wrong kind are TypeErrors naming them', () => {
  const started = performance.now();
  const junk: unknown[] = [undefined, null, 7, 'abc', [0x93, 0x4e], new ArrayBuffer(16), new Int8Array(16), new Uint16Array(8), { length: 12 }, new DataView(new ArrayBuffer(12))];
  for (const bytes of junk) {
    const what = `parseNpyHeader(${Object.prototype.toString.call(bytes)})`;
    check(what, () => parseNpyHeader(bytes as Uint8Array, 'f.npy'), { bad: ['f.npy', 'bytes'] }, () => {}, [TypeError]);
    check(`decodeNpy(${Object.prototype.toString.call(bytes)})`, () => decodeNpy(bytes as Uint8Array, 'f.npy'), { bad: ['f.npy', 'bytes'] }, () => {}, [TypeError]);
    check(`encodeNpy(${Object.prototype.toString.call(bytes)})`, () => encodeNpy(bytes as never), { bad: ['tensor', 'npy'] }, () => {}, [TypeError, RangeError]);
  }
  report('parseNpyHeader', started);
});

// ---------------------------------------------------------------- safetensors

const ST_SIZES: Record<SafetensorsDtype, number> = { BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8 };
const ST_DTYPES = Object.keys(ST_SIZES) as SafetensorsDtype[];

/** A whole file by the layout: u64 LE N, N bytes of JSON, the tensors' bytes at their offsets. */
function safetensorsFile(header: Record<string, unknown>, data: Uint8Array, pad = 0): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.length + data.length);
  for (let i = 0, n = json.length; i < 8; i++) out[i] = Math.floor(n / 256 ** i) % 256;
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

interface StEntry { dtype: string; shape: number[]; begin: number; end: number }

/** A checker of the header's rules: the entries in data order, or 'bad'. */
function safetensorsDefinition(bytes: Uint8Array, fileSize: number): { headerLength: number; metadata: Record<string, string>; entries: [string, StEntry][] } | 'bad' {
  if (fileSize < 8 || bytes.length < 8) return 'bad';
  let n = 0;
  for (let i = 0; i < 8; i++) n += bytes[i] * 256 ** i;
  if (n < 2 || n > 100_000_000 || 8 + n > fileSize || bytes.length < 8 + n) return 'bad';
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch {
    return 'bad';
  }
  const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (!isObject(json)) return 'bad';
  const uint = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  let metadata: Record<string, string> = {};
  const entries: [string, StEntry][] = [];
  for (const [key, v] of Object.entries(json)) {
    if (key === '__metadata__') {
      if (!isObject(v) || !Object.values(v).every((x) => typeof x === 'string')) return 'bad';
      metadata = { ...(v as Record<string, string>) };
      continue;
    }
    if (!isObject(v) || typeof v.dtype !== 'string' || !Object.hasOwn(ST_SIZES, v.dtype)) return 'bad';
    const { shape, data_offsets: o } = v;
    if (!Array.isArray(shape) || !shape.every(uint) || !Array.isArray(o) || o.length !== 2 || !o.every(uint) || o[1] < o[0]) return 'bad';
    if (product(shape) * ST_SIZES[v.dtype as SafetensorsDtype] !== o[1] - o[0]) return 'bad';
    entries.push([key, { dtype: v.dtype, shape: shape.slice(), begin: o[0], end: o[1] }]);
  }
  entries.sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let at = 0;
  for (const [, e] of entries) {
    if (e.begin !== at) return 'bad';
    at = e.end;
  }
  if (at !== fileSize - 8 - n) return 'bad';
  return { headerLength: n, metadata, entries };
}

const stTensor = fc.record({
  name: fc.constantFrom('w', 'model.layers.0.self_attn.q_a_proj.weight', 'b', 'x.y', '__proto__', 'toString', 'é'),
  dtype: fc.constantFrom(...ST_DTYPES),
  shape: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }),
});

const stArb = fc.record({
  tensors: fc.uniqueArray(stTensor, { selector: (t) => t.name, maxLength: 4 }),
  metadata: fc.option(fc.dictionary(fc.constantFrom('format', 'a', 'b'), fc.string({ maxLength: 4 }), { maxKeys: 2 }), { nil: undefined }),
  shuffle: fc.boolean(),
  pad: fc.integer({ min: 0, max: 7 }),
  // Corruption of the header entries or the bytes.
  entryEdit: mostly(fc.constant(null), fc.record({ at: fc.nat(), field: fc.constantFrom('dtype', 'shape', 'data_offsets', 'whole'), value: fc.constantFrom<unknown>('F128', 'f32', 7, null, [1, -1], [0.5], [2 ** 53, 1], [0, 2 ** 60], [[1]], '[1]', {}, [3, 1]) }), 3),
  flips: mostly(fc.constant([] as [number, number][]), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }), 3),
  cut: mostly(fc.constant(null), fc.nat(), 8),
  extra: mostly(fc.constant(0), fc.integer({ min: 1, max: 5 }), 8),
  fileSize: mostly(fc.constant<unknown>(undefined), fc.constantFrom<unknown>(-1, 0, 3.5, NaN, Infinity, 2 ** 53, '9', 'delta'), 12),
  seed: fc.integer(),
});

type StCase = typeof stArb extends fc.Arbitrary<infer T> ? T : never;

function buildSafetensors(c: StCase) {
  let offset = 0;
  const header: [string, unknown][] = [];
  if (c.metadata !== undefined) header.push(['__metadata__', c.metadata]);
  const parts: Uint8Array[] = [];
  for (const t of c.tensors) {
    const bytes = ST_SIZES[t.dtype] * product(t.shape);
    const data = Uint8Array.from({ length: bytes }, (_, i) => (c.seed + i * 31) & 0xff);
    parts.push(data);
    header.push([t.name, { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] }]);
    offset += bytes;
  }
  if (c.shuffle) header.reverse();
  const entries = header.filter(([k]) => k !== '__metadata__');
  if (c.entryEdit !== null && entries.length > 0) {
    const e = entries[c.entryEdit.at % entries.length];
    if (c.entryEdit.field === 'whole') e[1] = c.entryEdit.value;
    else e[1] = { ...(e[1] as object), [c.entryEdit.field]: c.entryEdit.value };
  }
  const data = new Uint8Array(offset);
  parts.reduce((at, p) => (data.set(p, at), at + p.length), 0);
  let file = safetensorsFile(Object.fromEntries(header), data, c.pad);
  for (const [at, v] of c.flips) file[at % file.length] = v;
  if (c.cut !== null) file = file.slice(0, c.cut % (file.length + 1));
  if (c.extra > 0) file = Uint8Array.from([...file, ...new Uint8Array(c.extra)]);
  return { file, data: Object.fromEntries(c.tensors.map((t, i) => [t.name, parts[i]])) as Record<string, Uint8Array> };
}

test('safetensors: parseSafetensorsHeader, openSafetensors and read on valid, reordered and corrupted files', async () => {
  const started = performance.now();
  await fc.assert(
    fc.asyncProperty(stArb, async (c) => {
      const { file } = buildSafetensors(c);
      const fileSizeOk = c.fileSize === undefined || (typeof c.fileSize === 'number' && Number.isSafeInteger(c.fileSize) && c.fileSize >= 0);
      const fileSize = c.fileSize === undefined ? file.length : (c.fileSize as number);
      const def = fileSizeOk ? safetensorsDefinition(file, fileSize) : 'bad';
      const what = `parseSafetensorsHeader ${JSON.stringify({ tensors: c.tensors, edit: c.entryEdit, flips: c.flips, cut: c.cut, extra: c.extra, fileSize: String(c.fileSize) })}`;
      const expected: Expected<NonNullable<Exclude<typeof def, 'bad'>>> = def === 'bad' ? { bad: fileSizeOk ? ['m.safetensors'] : ['fileSize', 'm.safetensors'] } : { value: def };
      check(what, () => parseSafetensorsHeader(file, { name: 'm.safetensors', fileSize: c.fileSize as number | undefined }), expected, (got, want) => {
        assert.equal(got.headerLength, want.headerLength, what);
        assert.equal(got.dataOffset, 8 + want.headerLength, what);
        assert.equal(got.fileSize, fileSize, what);
        assert.deepEqual(got.metadata, want.metadata, what);
        assert.deepEqual([...got.tensors], want.entries, what);
      }, fileSizeOk ? [SafetensorsError] : [SafetensorsError, RangeError, TypeError]);
      // The whole file through a reader: each tensor's bytes where its offsets put them.
      const whole = safetensorsDefinition(file, file.length);
      await checkAsync(`openSafetensors ${what}`, async () => {
        const reader = await openSafetensors(file, 'm.safetensors');
        const got = new Map<string, SafetensorsTensor>();
        for (const name of reader.tensors.keys()) got.set(name, await reader.read(name));
        await reader.close();
        return got;
      }, whole === 'bad' ? { bad: ['m.safetensors'] } : { value: whole }, (got, want) => {
        assert.deepEqual([...got.keys()].sort(), want.entries.map(([k]) => k).sort(), what);
        for (const [name, e] of want.entries) {
          const t = got.get(name)!;
          assert.equal(t.dtype, e.dtype, what);
          assert.deepEqual(t.shape, e.shape, what);
          assert.equal(t.data.byteLength, e.end - e.begin, what);
          sameBits(`${what}: ${name}`, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), file.subarray(8 + want.headerLength + e.begin, 8 + want.headerLength + e.end));
        }
      }, [SafetensorsError]);
    }),
    { numRuns: 2000 },
  );
  report('parseSafetensorsHeader', started);
  report('openSafetensors', started);
});

test('safetensors: encodeSafetensors writes the layout and round-trips; reader size mismatches, missing names, reads after close and bad arguments are named', async () => {
  const started = performance.now();
  await fc.assert(
    fc.asyncProperty(stArb, fc.constantFrom('right', 'right', 'right', 'wrongType', 'wrongLength', 'badDtype', 'badShape'), async (c, kind) => {
      const tensors = new Map<string, SafetensorsTensor>();
      let bad: string[] = [];
      for (const [i, t] of c.tensors.entries()) {
        const n = product(t.shape);
        const Ctor = { BOOL: Uint8Array, U8: Uint8Array, I8: Int8Array, F8_E4M3: Uint8Array, F8_E5M2: Uint8Array, I16: Int16Array, U16: Uint16Array, F16: Uint16Array, BF16: Uint16Array, I32: Int32Array, U32: Uint32Array, F32: Float32Array, F64: Float64Array, I64: BigInt64Array, U64: BigUint64Array }[t.dtype];
        let data: unknown = new Ctor(n);
        let dtype: unknown = t.dtype, shape: unknown = t.shape;
        if (i === 0 && kind === 'wrongType') { data = Ctor === Float64Array ? new Float32Array(n) : new Float64Array(n); bad = ['encodeSafetensors']; }
        if (i === 0 && kind === 'wrongLength') { data = new Ctor(n + 1); bad = ['encodeSafetensors']; }
        if (i === 0 && kind === 'badDtype') { dtype = 'F128'; bad = ['encodeSafetensors']; }
        if (i === 0 && kind === 'badShape') { shape = [-1, -n]; bad = ['encodeSafetensors']; }
        tensors.set(t.name, { dtype, shape, data } as SafetensorsTensor);
      }
      const what = `encodeSafetensors(${kind} ${JSON.stringify(c.tensors)})`;
      let file: Uint8Array | undefined;
      check(what, () => (file = encodeSafetensors(tensors, c.metadata)), bad.length > 0 ? { bad } : { value: null }, (got) => {
        const def = safetensorsDefinition(got, got.length);
        assert.ok(def !== 'bad', `${what}: the written file breaks the format`);
        assert.equal(def.headerLength % 8, 0, `${what}: header padded to 8`);
        assert.deepEqual(def.metadata, { ...c.metadata }, what);
        assert.deepEqual(def.entries.map(([k, e]) => [k, e.dtype, e.shape]), c.tensors.map((t) => [t.name, t.dtype, t.shape]), `${what}: in the given order`);
      });
      if (file === undefined) return;
      const reader = await openSafetensors(bytesSource(file, 'e.safetensors'));
      for (const t of c.tensors) {
        const got = await reader.read(t.name);
        sameBits(`${what}: ${t.name}`, got.data as ArrayLike<number>, tensors.get(t.name)!.data as ArrayLike<number>);
      }
      await checkAsync(`read missing ${what}`, () => reader.read('no such tensor'), { bad: ['e.safetensors'] }, () => {}, [SafetensorsError]);
      await reader.close();
      await checkAsync(`read closed ${what}`, () => reader.read(c.tensors[0]?.name ?? 'w'), { bad: ['e.safetensors'] }, () => {}, [SafetensorsError]);
      // A reader over a source that is shorter or longer than the header's file size.
      const header = parseSafetensorsHeader(file);
      const delta = c.extra > 0 ? c.extra : -1 - (c.pad % 3);
      const other = delta > 0 ? Uint8Array.from([...file, ...new Uint8Array(delta)]) : file.slice(0, Math.max(0, file.length + delta));
      check(`safetensorsReader size ${delta} ${what}`, () => safetensorsReader(bytesSource(other, 'r.safetensors'), header), { bad: ['r.safetensors'] }, () => {}, [SafetensorsError]);
    }),
    { numRuns: 700 },
  );
  const junk: unknown[] = [undefined, null, 7, 'abc', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], new ArrayBuffer(16), new Uint16Array(8), { length: 12 }];
  for (const bytes of junk) {
    const what = `parseSafetensorsHeader(${Object.prototype.toString.call(bytes)})`;
    check(what, () => parseSafetensorsHeader(bytes as Uint8Array, { name: 'j.safetensors' }), { bad: ['bytes', 'j.safetensors'] }, () => {}, [TypeError, SafetensorsError]);
    await checkAsync(`openSafetensors(${Object.prototype.toString.call(bytes)})`, () => openSafetensors(bytes as Uint8Array, 'j.safetensors'), { bad: ['source', 'j.safetensors'] }, () => {}, [TypeError, SafetensorsError]);
    check(`encodeSafetensors(${Object.prototype.toString.call(bytes)})`, () => encodeSafetensors(bytes as never), { bad: ['tensors', 'encodeSafetensors'] }, () => {}, [TypeError, RangeError]);
    check(`encodeSafetensors({ w: ${Object.prototype.toString.call(bytes)} })`, () => encodeSafetensors({ w: bytes as never }), { bad: ['tensors', 'encodeSafetensors'] }, () => {}, [TypeError, RangeError]);
    check(`bytesSource(${Object.prototype.toString.call(bytes)})`, () => bytesSource(bytes as Uint8Array), { bad: ['bytes'] }, () => {});
    check(`blobSource(${Object.prototype.toString.call(bytes)})`, () => blobSource(bytes as Blob), { bad: ['blob'] }, () => {});
    const file = encodeSafetensors({ w: { dtype: 'F32', shape: [1], data: new Float32Array(1) } });
    check(`safetensorsReader(${Object.prototype.toString.call(bytes)}, header)`, () => safetensorsReader(bytes as never, parseSafetensorsHeader(file)), { bad: ['src'] }, () => {});
    check(`safetensorsReader(source, ${Object.prototype.toString.call(bytes)})`, () => safetensorsReader(bytesSource(file), bytes as never), { bad: ['header'] }, () => {});
  }
  // A Blob of a valid file reads as the bytes do.
  const blobFile = encodeSafetensors({ w: { dtype: 'I32', shape: [2], data: Int32Array.of(7, -7) } });
  await checkAsync('openSafetensors(Blob)', async () => (await (await openSafetensors(new Blob([blobFile as Uint8Array<ArrayBuffer>]), 'b.safetensors')).read('w')).data, { value: Int32Array.of(7, -7) }, (got, want) => sameBits('Blob', got as Int32Array, want));
  report('encodeSafetensors', started);
});

// ---------------------------------------------------------------- config.json

const BASE = {
  model_type: 'deepseek_v32', hidden_size: 64, num_attention_heads: 4, q_lora_rank: 16, kv_lora_rank: 32, qk_nope_head_dim: 8, qk_rope_head_dim: 4,
  v_head_dim: 8, index_n_heads: 2, index_head_dim: 8, index_topk: 16, rms_norm_eps: 1e-6, rope_theta: 10000, num_hidden_layers: 3,
};
const INT_KEYS = ['hidden_size', 'num_attention_heads', 'q_lora_rank', 'kv_lora_rank', 'qk_nope_head_dim', 'qk_rope_head_dim', 'v_head_dim', 'index_n_heads', 'index_head_dim', 'index_topk', 'num_hidden_layers'] as const;

test('parseModelConfig: configs built from known values, one key broken, GLM-5 layer patterns with huge layer counts, and random JSON', () => {
  const started = performance.now();
  const badValue = fc.constantFrom<unknown>(undefined, 0, -3, 2.5, '64', null, true, [], {}, 1e300, 2 ** 53, NaN);
  const arb = fc.record({
    glm: fc.boolean(),
    ints: fc.record(Object.fromEntries(INT_KEYS.map((k) => [k, fc.integer({ min: 1, max: 6 })])) as Record<(typeof INT_KEYS)[number], fc.Arbitrary<number>>),
    broken: mostly(fc.constant(null), fc.tuple(fc.constantFrom(...INT_KEYS, 'rms_norm_eps', 'rope_theta', 'model_type'), badValue), 2),
    freq: fc.option(fc.oneof(fc.integer({ min: 1, max: 4 }), fc.constantFrom(0, -1, 1.5)), { nil: undefined }),
    offset: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
    hugeLayers: mostly(fc.constant(null), fc.constantFrom(2 ** 31, 2 ** 40, 2 ** 53 - 1, 1e7), 6),
    json: mostly(fc.constant(null), fc.json({ maxDepth: 2 }), 3),
    asText: fc.boolean(),
  });
  fc.assert(
    fc.property(arb, (c) => {
      if (c.json !== null) {
        // Random JSON: a ConfigError naming the file or a key (never anything else), or a config when it happens to be one.
        const what = `parseModelConfig(${c.json.slice(0, 80)})`;
        const parsed = JSON.parse(c.json);
        const isConfig = typeof parsed === 'object' && parsed !== null && (parsed.model_type === 'deepseek_v32' || parsed.model_type === 'glm_moe_dsa');
        if (!isConfig) check(what, () => parseModelConfig(c.asText ? c.json : parsed, 'c.json'), { bad: ['c.json'] }, () => {}, [ConfigError]);
        return;
      }
      const cfg: Record<string, unknown> = { ...BASE, ...c.ints, model_type: c.glm ? 'glm_moe_dsa' : 'deepseek_v32' };
      // The rules between keys, kept so that only the broken key is at fault.
      cfg.qk_rope_head_dim = 2 * c.ints.qk_rope_head_dim;
      cfg.index_head_dim = (cfg.qk_rope_head_dim as number) + c.ints.index_head_dim;
      // Huge layer counts only where no per-layer pattern is derived: GLM-5's index_topk_freq builds an
      // array of num_hidden_layers entries (2^31 of them exhaust the heap, beyond any catch).
      const derives = c.glm && typeof c.freq === 'number' && c.freq > 1 && Number.isInteger(c.freq);
      if (c.hugeLayers !== null && !derives) cfg.num_hidden_layers = c.hugeLayers;
      if (c.freq !== undefined) cfg.index_topk_freq = c.freq;
      if (c.offset !== undefined) cfg.index_skip_topk_offset = c.offset;
      const bad: string[] = [];
      if (c.broken !== null) {
        const [key, value] = c.broken;
        if (value === undefined) delete cfg[key];
        else cfg[key] = value;
        const intOk = typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
        const posOk = typeof value === 'number' && Number.isFinite(value) && value > 0;
        const ok = key === 'model_type' ? false : key === 'rms_norm_eps' || key === 'rope_theta' ? posOk : intOk && !(key === 'qk_rope_head_dim' && ((value as number) % 2 !== 0 || (value as number) > (cfg.index_head_dim as number))) && !(key === 'index_head_dim' && (value as number) < (cfg.qk_rope_head_dim as number));
        if (!ok) bad.push(`c.json: ${key}`, ...(key === 'qk_rope_head_dim' ? ['c.json: index_head_dim'] : []));
      }
      const layers = cfg.num_hidden_layers as number;
      // More than 65536 layers is refused (no model has them; a per-layer pattern is built from the count).
      if (typeof layers === 'number' && Number.isSafeInteger(layers) && layers > 65536) bad.push('c.json: num_hidden_layers');
      // GLM-5's derived pattern: layer i full when max(i - offset + 1, 0) % freq == 0; layer 0 must be full.
      let indexerTypes: ('full' | 'shared')[] | undefined;
      if (bad.length === 0 && c.glm && c.freq !== undefined) {
        const freq = c.freq, offset = c.offset ?? 2;
        if (!(Number.isSafeInteger(freq) && freq >= 1)) bad.push('c.json: index_topk_freq');
        else if (freq > 1) {
          indexerTypes = Array.from({ length: layers }, (_, i) => (Math.max(i - offset + 1, 0) % freq === 0 ? 'full' : 'shared'));
          if (indexerTypes[0] === 'shared') bad.push('c.json: index_skip_topk_offset');
        }
      }
      const what = `parseModelConfig(${JSON.stringify(cfg)})`;
      check(what, () => parseModelConfig(c.asText ? JSON.stringify(cfg) : cfg, 'c.json'), bad.length > 0 ? { bad } : { value: null }, (got) => {
        assert.equal(got.modelType, cfg.model_type, what);
        assert.equal(got.config.dim, cfg.hidden_size, what);
        assert.equal(got.config.nLayers, layers, what);
        assert.equal(got.config.qkRopeHeadDim, cfg.qk_rope_head_dim, what);
        assert.equal(got.config.indexHeadDim, cfg.index_head_dim, what);
        assert.equal(got.config.indexTopk, cfg.index_topk, what);
        assert.deepEqual(got.config.indexerTypes, indexerTypes, what);
        assert.equal(got.config.indexerRopeInterleaved, c.glm, what);
        assert.equal(got.fp8, null, what);
      }, [ConfigError]);
    }),
    { numRuns: 3000 },
  );
  report('parseModelConfig', started);
});

// ---------------------------------------------------------------- numbers

test('int64ToInt32: every element range-checked at the int32 bounds, wrong kinds refused', () => {
  const started = performance.now();
  const EDGES = [0n, 1n, -1n, 2147483647n, 2147483648n, -2147483648n, -2147483649n, 2n ** 53n, -(2n ** 63n), 2n ** 63n - 1n, 4294967296n];
  const value = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map(BigInt) }, { weight: 1, arbitrary: fc.constantFrom(...EDGES) });
  const arb = fc.record({ values: fc.array(value, { maxLength: 12 }), kind: mostly(fc.constant('right'), fc.constantFrom('int32', 'array', 'uint64', 'null'), 12) });
  fc.assert(
    fc.property(arb, ({ values, kind }) => {
      const what = `int64ToInt32 ${kind} [${values.join(', ')}]`;
      const input = kind === 'right' ? BigInt64Array.from(values) : kind === 'int32' ? new Int32Array(values.length) : kind === 'array' ? values : kind === 'uint64' ? new BigUint64Array(values.length) : null;
      const bad = kind !== 'right' ? ['idx'] : values.some((v) => v > 2147483647n || v < -2147483648n) ? ['idx'] : [];
      check(what, () => int64ToInt32('idx', input as BigInt64Array), bad.length > 0 ? { bad } : { value: Int32Array.from(values, Number) }, (got, want) => sameBits(what, got, want));
    }),
    { numRuns: 3000 },
  );
  report('int64ToInt32', started);
});



test('e4m3Encode and e4m3Decode: every code, values around each code and midpoint, huge, tiny and non-finite values; bad codes and non-numbers named', () => {
  const started = performance.now();
  for (let c = 0; c < 256; c++) {
    const what = `e4m3Decode(${c})`;
    check(what, () => e4m3Decode(c), { value: e4m3Value(c) }, (got, want) => assert.ok(Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want)), `${what}: ${got}, expected ${want}`));
    assert.ok(Object.is(E4M3_VALUES[c], e4m3Value(c)) || Number.isNaN(e4m3Value(c)), `E4M3_VALUES[${c}]`);
  }
  const nearCode = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.constantFrom(-1, -0.5, 0, 0.5, 1), fc.integer({ min: -3, max: 3 })).map(([c, side, ulps]) => {
    // A code's value, the midpoint to its neighbour, and a few float32 ulps either way.
    const v = e4m3Value(c), next = e4m3Value(c === 0x7e || c === 0xfe ? c : c + 1);
    const x = Math.fround(side === 0 ? v : v + ((next - v) / 2) * Math.sign(side) * (Math.abs(side) === 1 ? 1 : 0.5));
    const f = new Float32Array([x]), u = new Int32Array(f.buffer);
    if (Number.isFinite(x)) u[0] += ulps;
    return f[0];
  });
  const arb = fc.oneof(
    { weight: 6, arbitrary: nearCode },
    { weight: 2, arbitrary: fc.double() },
    { weight: 1, arbitrary: fc.constantFrom(448, 464, 480, 479.99, -464, 1e39, -1e39, Infinity, -Infinity, NaN, 0, -0, 2 ** -10, 2 ** -9, 3 * 2 ** -11, 2 ** -150, -(2 ** -150), 1.401298464324817e-45) },
  );
  fc.assert(
    fc.property(arb, (x) => {
      const what = `e4m3Encode(${x})`;
      check(what, () => e4m3Encode(x), { value: e4m3Nearest(x) }, (got, want) => assert.equal(got, want, what));
      const code = e4m3Nearest(x);
      check(`e4m3Decode(e4m3Encode(${x}))`, () => e4m3Decode(code), { value: e4m3Value(code) }, (got, want) => assert.ok(Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want)), what));
    }),
    { numRuns: 4000 },
  );
  for (const code of [-1, 256, 1.5, NaN, Infinity, 2 ** 53, '3', null, undefined, 3n]) {
    check(`e4m3Decode(${String(code)})`, () => e4m3Decode(code as number), { bad: ['code'] }, () => {});
  }
  for (const x of ['1', null, undefined, 3n, {}, [1]]) {
    check(`e4m3Encode(${String(x)})`, () => e4m3Encode(x as number), { bad: ['x'] }, () => {});
  }
  report('e4m3Encode', started);
  report('e4m3Decode', started);
});

