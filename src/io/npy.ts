/**
 * The NumPy `.npy` format (versions 1.0, 2.0 and 3.0), C order, little
 * endian: the header and whole-buffer encode/decode. Pure and browser-safe;
 * streaming file access is in `npy-file.ts`.
 *
 * Layout: `\x93NUMPY`, major, minor, header length (uint16 LE for 1.0,
 * uint32 LE after), then a Python dict literal
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with
 * spaces and a newline so the data starts on a 64-byte boundary.
 */
import { describe, product, type Tensor, type TypedArray, type TypedArrayConstructor } from '../tensor.js';

/** The dtypes read and written. int64 is NumPy's default integer; bool is one byte per element. */
export type NpyDtype = 'int32' | 'int64' | 'float32' | 'bool' | 'uint8' | 'uint32';

export interface NpyHeader {
  dtype: NpyDtype;
  /** `[]` for a 0-d array. */
  shape: number[];
  /** Byte offset of the first element (the header's total size). */
  dataOffset: number;
}

interface DtypeInfo {
  descr: string;
  ctor: TypedArrayConstructor<TypedArray>;
}

export const NPY_DTYPES: Record<NpyDtype, DtypeInfo> = {
  int32: { descr: '<i4', ctor: Int32Array },
  int64: { descr: '<i8', ctor: BigInt64Array },
  float32: { descr: '<f4', ctor: Float32Array },
  bool: { descr: '|b1', ctor: Uint8Array },
  uint8: { descr: '|u1', ctor: Uint8Array },
  uint32: { descr: '<u4', ctor: Uint32Array },
};

const BY_DESCR = new Map<string, NpyDtype>(Object.entries(NPY_DTYPES).map(([name, info]) => [info.descr, name as NpyDtype]));
const SUPPORTED = Object.values(NPY_DTYPES).map((i) => `'${i.descr}'`).join(', ');
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Bytes needed to know the header's length: magic, version and the length field. */
export const NPY_PREAMBLE_BYTES = 12;

/** Bytes per element of a dtype. */
export function npyItemSize(dtype: NpyDtype): number {
  return NPY_DTYPES[dtype].ctor.BYTES_PER_ELEMENT;
}

/**
 * The total header size (`dataOffset`) from the first `NPY_PREAMBLE_BYTES`
 * (or fewer, for a short file) bytes. Throws when this is not a .npy file.
 */
export function npyHeaderLength(preamble: Uint8Array, name = 'npy'): number {
  if (preamble.length < 10 || MAGIC.some((b, i) => preamble[i] !== b)) {
    throw new Error(`${name}: not a .npy file (expected the magic string \\x93NUMPY, got ${preamble.length < 6 ? `${preamble.length} bytes` : 'other bytes'})`);
  }
  const major = preamble[6];
  if (major === 1) return 10 + (preamble[8] | (preamble[9] << 8));
  if (major === 2 || major === 3) {
    if (preamble.length < 12) throw new Error(`${name}: truncated .npy header (${preamble.length} bytes)`);
    return 12 + (preamble[8] | (preamble[9] << 8) | (preamble[10] << 16)) + preamble[11] * 2 ** 24;
  }
  throw new Error(`${name}: unsupported .npy format version ${major}.${preamble[7]} (expected 1.0, 2.0 or 3.0)`);
}

/**
 * Parses a .npy header. `bytes` must hold at least the whole header.
 * Errors: not a .npy file, corrupt header, Fortran order, or a dtype other
 * than int32, int64, float32, bool, uint8, uint32 (little endian).
 */
export function parseNpyHeader(bytes: Uint8Array, name = 'npy'): NpyHeader {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${name}: expected the file's bytes as a Uint8Array, got ${describe(bytes)}`);
  const dataOffset = npyHeaderLength(bytes, name);
  const start = bytes[6] === 1 ? 10 : 12;
  if (bytes.length < dataOffset) {
    throw new Error(`${name}: truncated .npy header (needs ${dataOffset} bytes, got ${bytes.length})`);
  }
  let text = '';
  for (let i = start; i < dataOffset; i++) text += String.fromCharCode(bytes[i]);
  const dict = parseHeaderDict(text, name);
  const descr = dict.get('descr');
  const fortran = dict.get('fortran_order');
  const shapeText = dict.get('shape');
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new Error(`${name}: corrupt .npy header (expected keys 'descr', 'fortran_order', 'shape', got ${JSON.stringify(text.trim())})`);
  }
  if (fortran === 'True') {
    throw new Error(`${name}: Fortran-order arrays are not supported (expected C order; save np.ascontiguousarray(a))`);
  }
  if (fortran !== 'False') throw new Error(`${name}: corrupt .npy header (fortran_order is ${fortran})`);
  const dtype = dtypeOf(descr, name);
  return { dtype, shape: parseShape(shapeText, name), dataOffset };
}

function dtypeOf(descrLiteral: string, name: string): NpyDtype {
  const m = /^'([^']*)'$/.exec(descrLiteral);
  if (!m) {
    throw new TypeError(`${name}: unsupported dtype ${descrLiteral} (structured arrays are not supported; expected one of ${SUPPORTED})`);
  }
  const descr = m[1];
  const dtype = BY_DESCR.get(descr) ?? BY_DESCR.get(descr.replace(/^=/, '<'));
  if (dtype === undefined) {
    const hint = descr.startsWith('>') ? ' (big endian: use a.astype(a.dtype.newbyteorder("<")))' : descr === '<f8' ? ' (float64: use a.astype(np.float32))' : '';
    throw new TypeError(`${name}: unsupported dtype '${descr}'${hint}; expected one of ${SUPPORTED}`);
  }
  return dtype;
}

/** Splits `{'a': x, 'b': (1, 2), }` into key -> value text; values stay unparsed. */
function parseHeaderDict(text: string, name: string): Map<string, string> {
  const body = text.trim();
  const corrupt = () => new Error(`${name}: corrupt .npy header ${JSON.stringify(body.slice(0, 120))}`);
  if (!body.startsWith('{') || !body.endsWith('}')) throw corrupt();
  const entries = new Map<string, string>();
  const re = /\s*'([^']+)'\s*:\s*('[^']*'|\([^)]*\)|\[[^\]]*\]|True|False)\s*(,|(?=}$))/y;
  let pos = 1;
  while (pos < body.length - 1) {
    if (/^\s*$/.test(body.slice(pos, body.length - 1))) break;
    re.lastIndex = pos;
    const m = re.exec(body);
    if (!m) throw corrupt();
    entries.set(m[1], m[2]);
    pos = re.lastIndex;
  }
  return entries;
}

function parseShape(text: string, name: string): number[] {
  const inner = text.slice(1, -1).trim();
  if (inner === '') return [];
  const parts = inner.split(',').map((p) => p.trim());
  if (parts[parts.length - 1] === '') parts.pop();
  return parts.map((p) => {
    if (!/^\d+$/.test(p) || !Number.isSafeInteger(Number(p))) throw new Error(`${name}: corrupt .npy header (shape ${text})`);
    return Number(p);
  });
}

/** A version 1.0 header (2.0 when the dict does not fit 65535 bytes), data aligned to 64 bytes. */
export function encodeNpyHeader(dtype: NpyDtype, shape: readonly number[]): Uint8Array {
  if (typeof dtype !== 'string' || !Object.hasOwn(NPY_DTYPES, dtype)) {
    throw new TypeError(`dtype: expected one of ${Object.keys(NPY_DTYPES).map((d) => `'${d}'`).join(', ')}, got ${describe(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new RangeError(`shape: expected an array of non-negative integers, got ${Array.isArray(shape) ? `[${shape.map(String).join(', ')}]` : describe(shape)}`);
  }
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${NPY_DTYPES[dtype].descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let prefix = 10;
  if (dict.length + 1 + prefix > 65535) prefix = 12;
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  dict = dict.padEnd(total - prefix - 1, ' ') + '\n';
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  out[6] = prefix === 10 ? 1 : 2;
  out[7] = 0;
  const len = dict.length;
  out[8] = len & 0xff;
  out[9] = (len >>> 8) & 0xff;
  if (prefix === 12) {
    out[10] = (len >>> 16) & 0xff;
    out[11] = (len >>> 24) & 0xff;
  }
  for (let i = 0; i < len; i++) out[prefix + i] = dict.charCodeAt(i);
  return out;
}

/** The dtype a typed array is written as (Uint8Array: bool). */
export function npyDtypeOf(data: TypedArray): NpyDtype {
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Uint8Array) return 'bool';
  if (data instanceof Uint32Array) return 'uint32';
  throw new TypeError(`npy: expected an Int32Array, BigInt64Array, Float32Array, Uint8Array or Uint32Array, got ${data.constructor.name}`);
}

/**
 * A .npy array that can be read in element ranges without loading the rest:
 * a file in Node (NpyReader, npy-file.ts) or a Blob in a browser worker
 * (NpyBlobReader, npy-blob.ts). `name` (the path or file name) starts its
 * error messages.
 */
export interface NpySource {
  readonly name: string;
  readonly dtype: NpyDtype;
  readonly shape: number[];
  /** Elements in the array. */
  readonly size: number;
  /** Reads elements `[start, start + count)` (flat, C order) into `out` (a fresh array when omitted) and returns it. */
  read(start: number, count: number, out?: TypedArray): TypedArray;
  close(): void;
}

/**
 * The array an `NpySource.read(start, count, out)` fills: `out` (checked to
 * be of the source's type and long enough) or a fresh one, after checking
 * that [start, start + count) lies inside the source's `size` elements.
 */
export function readTarget(name: string, dtype: NpyDtype, size: number, start: number, count: number, out?: TypedArray): TypedArray {
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > size) {
    throw new RangeError(`${name}: element range [${start}, ${start + count}) is outside [0, ${size}]`);
  }
  const ctor = NPY_DTYPES[dtype].ctor;
  const target = out ?? new ctor(count);
  if (!(target instanceof ctor) || target.length < count) {
    throw new TypeError(`${name}: out must be a ${ctor.name} of at least ${count} elements`);
  }
  return target;
}

/**
 * The header of a .npy file of `fileBytes` bytes, read through `readBytes`
 * (its first `length` bytes), checked: C order, a supported dtype, and a
 * file size that matches the shape (a truncated or padded file is an error
 * here, before a caller writes anything).
 */
export function readNpyHeader(name: string, fileBytes: number, readBytes: (length: number) => Uint8Array): NpyHeader {
  const preamble = readBytes(Math.min(NPY_PREAMBLE_BYTES, fileBytes));
  const header = parseNpyHeader(readBytes(Math.min(npyHeaderLength(preamble, name), fileBytes)), name);
  const need = product(header.shape) * npyItemSize(header.dtype);
  const have = fileBytes - header.dataOffset;
  if (have !== need) {
    throw new RangeError(
      `${name}: ${have < need ? 'truncated' : 'corrupt'} .npy data (shape [${header.shape.join(', ')}] ${header.dtype} needs ${need} bytes, file has ${have})`,
    );
  }
  return header;
}

/** A whole .npy file as bytes (header + data). */
export function encodeNpy(tensor: Tensor, dtype?: NpyDtype): Uint8Array {
  if (typeof tensor !== 'object' || tensor === null || !ArrayBuffer.isView(tensor.data) || tensor.data instanceof DataView) {
    throw new TypeError(`tensor: expected a tensor { data, shape } over a typed array, got ${describe(tensor)}`);
  }
  dtype ??= npyDtypeOf(tensor.data);
  const header = encodeNpyHeader(dtype, tensor.shape);
  const { data } = tensor;
  if (!(data instanceof NPY_DTYPES[dtype].ctor)) {
    throw new TypeError(`npy: dtype ${dtype} needs a ${NPY_DTYPES[dtype].ctor.name}, got ${data.constructor.name}`);
  }
  if (data.length !== product(tensor.shape)) {
    throw new RangeError(`npy: data.length must equal the product of shape [${tensor.shape.join(', ')}] = ${product(tensor.shape)}, got ${data.length}`);
  }
  const out = new Uint8Array(header.length + data.byteLength);
  out.set(header, 0);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), header.length);
  return out;
}

/** Decodes a whole .npy file held in memory (the data is copied, so it is aligned). */
export function decodeNpy(bytes: Uint8Array, name = 'npy'): Tensor & { dtype: NpyDtype } {
  const { dtype, shape, dataOffset } = parseNpyHeader(bytes, name);
  const n = product(shape);
  const itemSize = npyItemSize(dtype);
  const have = bytes.length - dataOffset;
  if (have !== n * itemSize) {
    throw new RangeError(`${name}: ${have < n * itemSize ? 'truncated' : 'corrupt'} .npy data (shape [${shape.join(', ')}] ${dtype} needs ${n * itemSize} bytes, file has ${have})`);
  }
  const data = new NPY_DTYPES[dtype].ctor(n);
  new Uint8Array(data.buffer).set(bytes.subarray(dataOffset, dataOffset + n * itemSize));
  return { data, shape, dtype };
}
