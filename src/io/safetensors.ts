/**
 * The safetensors format (Hugging Face checkpoints), read lazily: the
 * header is parsed and checked against the file size once, and each tensor
 * is read from its own byte range on request, so a 5 GB shard never sits in
 * memory whole. Pure and browser-safe; files on disk come through
 * `fileSource` in `safetensors-file.ts` (Node only), a dropped File through
 * `blobSource`, bytes in memory through `bytesSource`.
 *
 * Layout: an unsigned 64-bit little-endian header length N, N bytes of
 * UTF-8 JSON `{ "__metadata__": { string: string }, name: { "dtype": "BF16",
 * "shape": [out, in], "data_offsets": [begin, end] }, ... }`, then the data;
 * offsets are relative to the data start (byte 8 + N), tensors are packed
 * without holes or overlap, and the data ends where the file ends.
 * Elements are little endian; so is every host this reads on (checked).
 *
 * API:
 *   parseSafetensorsHeader(bytes, { fileSize?, name? }) -> SafetensorsHeader
 *   openSafetensors(source: ByteSource | Blob | Uint8Array, name?) -> Promise<SafetensorsReader>
 *   safetensorsReader(source, header) -> SafetensorsReader (a reopened file, header parsed before)
 *     reader.tensors: Map<name, { dtype, shape, begin, end }> (begin/end relative to the data start)
 *     reader.read(name) -> Promise<{ dtype, shape, data }>, data in the dtype's typed array
 *       (F8_E4M3 / F8_E5M2 -> Uint8Array codes, BF16 / F16 -> Uint16Array bit patterns,
 *        F32 -> Float32Array, F64, I8, U8, BOOL (Uint8Array), I16, U16, I32, U32,
 *        I64 -> BigInt64Array, U64 -> BigUint64Array)
 *     reader.close()
 *   encodeSafetensors(tensors, metadata?) -> Uint8Array (the whole file)
 * Every failure is a SafetensorsError naming the file, with a `code`.
 */
import { describe, type TypedArray } from '../tensor.js';

export type SafetensorsDtype =
  | 'BOOL' | 'U8' | 'I8' | 'F8_E4M3' | 'F8_E5M2' | 'I16' | 'U16' | 'F16' | 'BF16' | 'I32' | 'U32' | 'F32' | 'F64' | 'I64' | 'U64';

/** The typed arrays tensors are read into: the project's, and BigUint64Array for U64. */
export type SafetensorsArray = TypedArray | BigUint64Array;

export interface SafetensorsArrayConstructor {
  new (length: number): SafetensorsArray;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
}

/** The typed array each dtype is read into (8- and 16-bit floats as their bit patterns). */
export const SAFETENSORS_DTYPES: Record<SafetensorsDtype, SafetensorsArrayConstructor> = {
  BOOL: Uint8Array,
  U8: Uint8Array,
  I8: Int8Array,
  F8_E4M3: Uint8Array,
  F8_E5M2: Uint8Array,
  I16: Int16Array,
  U16: Uint16Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I32: Int32Array,
  U32: Uint32Array,
  F32: Float32Array,
  F64: Float64Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
};

/** What went wrong, for callers that branch on it. */
export type SafetensorsErrorCode =
  | 'header-length' // the u64 length is past the file or absurd
  | 'header-json' // not UTF-8 JSON, not an object, or an entry of the wrong form
  | 'dtype' // a dtype this reader does not know
  | 'shape' // shape and data_offsets disagree on the byte length
  | 'offsets' // reversed, overlapping, with a hole, or past the end of the data
  | 'truncated' // the file is shorter than its header says (or shrank while reading)
  | 'missing' // no tensor of that name
  | 'closed'; // read after close()

export class SafetensorsError extends Error {
  override readonly name = 'SafetensorsError';
  constructor(
    readonly code: SafetensorsErrorCode,
    /** The file, as the caller named it. */
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
  }
}

/** Where a tensor lies: `[begin, end)` relative to the data start. */
export interface SafetensorsEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** N, the JSON's length in bytes. */
  headerLength: number;
  /** 8 + N: where the data starts in the file. */
  dataOffset: number;
  /** `__metadata__` (empty when absent). */
  metadata: Record<string, string>;
  /** Every tensor, in data order. */
  tensors: Map<string, SafetensorsEntry>;
  /** The file size this header was checked against (8 + N + the data). */
  fileSize: number;
}

export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: SafetensorsArray;
}

/**
 * Random access to bytes (a file, a Blob, memory). `read` fills `into` from
 * `offset` and resolves the number of bytes read: fewer than asked only at
 * the end of the source.
 */
export interface ByteSource {
  readonly name: string;
  readonly size: number;
  read(offset: number, into: Uint8Array): Promise<number>;
  close(): Promise<void>;
}

/** safetensors' own limit on the header (100 MB); a larger length is a corrupt file. */
export const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function checkHost(): void {
  if (!LITTLE_ENDIAN) throw new Error('safetensors: this reader runs on little-endian hosts only');
}

/** The header length N from the first 8 bytes, checked against the file size. */
export function safetensorsHeaderLength(first8: Uint8Array, fileSize: number, name = 'safetensors'): number {
  if (fileSize < 8 || first8.length < 8) {
    throw new SafetensorsError('truncated', name, `${fileSize} bytes is shorter than the 8-byte header length`);
  }
  const view = new DataView(first8.buffer, first8.byteOffset, 8);
  const n = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
  if (n > MAX_HEADER_BYTES) {
    throw new SafetensorsError('header-length', name, `header length ${view.getBigUint64(0, true)} is absurd (at most ${MAX_HEADER_BYTES} bytes); not a safetensors file?`);
  }
  if (n < 2) throw new SafetensorsError('header-length', name, `header length ${n} is too short for a JSON object`);
  if (8 + n > fileSize) {
    throw new SafetensorsError('header-length', name, `header length ${n} reaches past the file's ${fileSize} bytes (needs ${8 + n})`);
  }
  return n;
}

function isNonNegativeInteger(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/**
 * Parses and checks a header. `bytes` holds at least the first `8 + N`
 * bytes of the file; `fileSize` is the file's length (default
 * `bytes.length`, when `bytes` is the whole file). Checks: the length, UTF-8
 * JSON object, each entry's form, known dtypes, byte lengths that match the
 * shapes, offsets packed from 0 without overlap or holes, and data that ends
 * exactly at the end of the file (shorter: truncated).
 */
export function parseSafetensorsHeader(bytes: Uint8Array, opts: { fileSize?: number; name?: string } = {}): SafetensorsHeader {
  const name = opts.name ?? 'safetensors';
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`bytes: expected a Uint8Array (the first 8 + N bytes of ${name}), got ${describe(bytes)}`);
  if (opts.fileSize !== undefined && !isNonNegativeInteger(opts.fileSize)) {
    throw new RangeError(`fileSize: expected a non-negative integer (the length of ${name} in bytes), got ${describe(opts.fileSize)}`);
  }
  const fileSize = opts.fileSize ?? bytes.length;
  const headerLength = safetensorsHeaderLength(bytes, fileSize, name);
  if (bytes.length < 8 + headerLength) {
    throw new SafetensorsError('truncated', name, `header needs ${8 + headerLength} bytes, got ${bytes.length}`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    throw new SafetensorsError('header-json', name, 'header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsError('header-json', name, `header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SafetensorsError('header-json', name, `header must be a JSON object, got ${Array.isArray(json) ? 'an array' : json === null ? 'null' : typeof json}`);
  }
  let metadata: Record<string, string> = {};
  const entries: [string, SafetensorsEntry][] = [];
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new SafetensorsError('header-json', name, '__metadata__ must be an object of strings');
      }
      for (const [mk, mv] of Object.entries(value as Record<string, unknown>)) {
        if (typeof mv !== 'string') throw new SafetensorsError('header-json', name, `__metadata__.${mk} must be a string, got ${typeof mv}`);
      }
      metadata = Object.fromEntries(Object.entries(value as Record<string, string>));
      continue;
    }
    entries.push([key, parseEntry(name, key, value)]);
  }
  entries.sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  const dataLength = fileSize - 8 - headerLength;
  let expected = 0;
  let previous = '';
  for (const [key, e] of entries) {
    if (e.begin < expected) {
      throw new SafetensorsError('offsets', name, `tensor '${key}' [${e.begin}, ${e.end}) overlaps '${previous}', which ends at ${expected}`);
    }
    if (e.begin > expected) {
      throw new SafetensorsError('offsets', name, `tensor '${key}' starts at ${e.begin}, expected ${expected} (a hole in the data)`);
    }
    expected = e.end;
    previous = key;
  }
  if (expected > dataLength) {
    const last = entries[entries.length - 1];
    throw new SafetensorsError(
      'truncated',
      name,
      `truncated: tensor '${last[0]}' ends at data byte ${expected} (file byte ${8 + headerLength + expected}), but the file has ${fileSize} bytes`,
    );
  }
  if (expected < dataLength) {
    throw new SafetensorsError('offsets', name, `the tensors' data ends at ${expected}, but the file holds ${dataLength} data bytes (trailing bytes)`);
  }
  return { headerLength, dataOffset: 8 + headerLength, metadata, tensors: new Map(entries), fileSize };
}

function parseEntry(name: string, key: string, value: unknown): SafetensorsEntry {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SafetensorsError('header-json', name, `tensor '${key}' must be an object { dtype, shape, data_offsets }`);
  }
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== 'string') throw new SafetensorsError('header-json', name, `tensor '${key}': dtype must be a string, got ${typeof dtype}`);
  if (!Object.hasOwn(SAFETENSORS_DTYPES, dtype)) {
    throw new SafetensorsError('dtype', name, `tensor '${key}': unknown dtype '${dtype}' (known: ${Object.keys(SAFETENSORS_DTYPES).join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
    throw new SafetensorsError('header-json', name, `tensor '${key}': shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
    throw new SafetensorsError('header-json', name, `tensor '${key}': data_offsets must be [begin, end] of non-negative integers, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw new SafetensorsError('offsets', name, `tensor '${key}': data_offsets [${begin}, ${end}] are reversed (end < begin)`);
  const ctor = SAFETENSORS_DTYPES[dtype as SafetensorsDtype];
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  const bytes = elements * ctor.BYTES_PER_ELEMENT;
  if (bytes !== end - begin) {
    throw new SafetensorsError(
      'shape',
      name,
      `tensor '${key}': shape [${shape.join(', ')}] of ${dtype} needs ${bytes} bytes, but data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  return { dtype: dtype as SafetensorsDtype, shape: (shape as number[]).slice(), begin, end };
}

/** Bytes in memory as a ByteSource. */
export function bytesSource(bytes: Uint8Array, name = 'safetensors'): ByteSource {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`bytes: expected a Uint8Array (the bytes of ${name}), got ${describe(bytes)}`);
  return {
    name,
    size: bytes.length,
    async read(offset, into) {
      const got = bytes.subarray(offset, offset + into.length);
      into.set(got);
      return got.length;
    },
    async close() {},
  };
}

/** A Blob (a dropped File) as a ByteSource: each read is one `slice`. */
export function blobSource(blob: Blob, name?: string): ByteSource {
  if (typeof blob !== 'object' || blob === null || typeof blob.slice !== 'function' || typeof blob.size !== 'number') {
    throw new TypeError(`blob: expected a Blob or File, got ${describe(blob)}`);
  }
  name ??= (blob as { name?: string }).name ?? 'safetensors';
  return {
    name,
    size: blob.size,
    async read(offset, into) {
      const got = new Uint8Array(await blob.slice(offset, offset + into.length).arrayBuffer());
      into.set(got);
      return got.length;
    },
    async close() {},
  };
}

export function isByteSource(x: unknown): x is ByteSource {
  return typeof x === 'object' && x !== null && typeof (x as ByteSource).read === 'function' && typeof (x as ByteSource).size === 'number';
}

/** Reads exactly `length` bytes at `offset`, or throws 'truncated' naming the tensor (or the header). */
async function readExactly(source: ByteSource, offset: number, into: Uint8Array, what: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const n = await source.read(offset + done, into.subarray(done));
    if (n === 0) {
      throw new SafetensorsError('truncated', source.name, `truncated: ${what} needs bytes [${offset}, ${offset + into.length}) but the file ended at ${offset + done}`);
    }
    done += n;
  }
}

export interface SafetensorsReader {
  readonly name: string;
  /** The parsed header (for `safetensorsReader` on a later open of the same file). */
  readonly header: SafetensorsHeader;
  readonly metadata: Record<string, string>;
  /** Every tensor, in data order; `begin`/`end` relative to `dataOffset`. */
  readonly tensors: Map<string, SafetensorsEntry>;
  /** Where the data starts in the file (8 + header length). */
  readonly dataOffset: number;
  /** Reads one tensor from its byte range. Missing name: SafetensorsError 'missing'. */
  read(name: string): Promise<SafetensorsTensor>;
  /** Closes the source (a file handle); further reads fail. */
  close(): Promise<void>;
}

/**
 * Opens a safetensors file over `source` (a ByteSource, a Blob/File, or
 * bytes) and checks its header against its size; reads nothing else. On
 * any error the source is closed.
 */
export async function openSafetensors(source: ByteSource | Blob | Uint8Array, name?: string): Promise<SafetensorsReader> {
  checkHost();
  const blobLike = typeof source === 'object' && source !== null && typeof (source as Blob).slice === 'function' && typeof (source as Blob).size === 'number';
  if (!(source instanceof Uint8Array) && !isByteSource(source) && !blobLike) {
    throw new TypeError(`source: expected a ByteSource, a Blob or a Uint8Array, got ${describe(source)}`);
  }
  const src = source instanceof Uint8Array ? bytesSource(source, name) : isByteSource(source) ? source : blobSource(source, name);
  try {
    const first8 = new Uint8Array(Math.min(8, src.size));
    await readExactly(src, 0, first8, 'the header length');
    const n = safetensorsHeaderLength(first8, src.size, src.name);
    const head = new Uint8Array(8 + n);
    head.set(first8);
    await readExactly(src, 8, head.subarray(8), 'the header');
    const header = parseSafetensorsHeader(head, { fileSize: src.size, name: src.name });
    return safetensorsReader(src, header);
  } catch (err) {
    await src.close();
    throw err;
  }
}

/**
 * A reader over `src` with a header parsed before (from this source or an
 * earlier open of the same file), so reopening a file skips the header
 * read. A source whose size is not the header's `fileSize` is refused
 * ('truncated' when shorter, 'offsets' when longer): the file changed.
 */
export function safetensorsReader(src: ByteSource, header: SafetensorsHeader): SafetensorsReader {
  if (!isByteSource(src)) throw new TypeError(`src: expected a ByteSource { name, size, read, close }, got ${describe(src)}`);
  const h = header as Partial<SafetensorsHeader> | null;
  if (typeof h !== 'object' || h === null || !(h.tensors instanceof Map) || !isNonNegativeInteger(h.fileSize) || !isNonNegativeInteger(h.dataOffset)) {
    throw new TypeError(`header: expected a parsed header (parseSafetensorsHeader's, or a reader's .header), got ${describe(header)}`);
  }
  if (src.size < header.fileSize) throw new SafetensorsError('truncated', src.name, `truncated: the file has ${src.size} bytes, its header says ${header.fileSize}`);
  if (src.size > header.fileSize) throw new SafetensorsError('offsets', src.name, `the file has ${src.size} bytes, its header says ${header.fileSize} (trailing bytes)`);
  checkHost();
  let closed = false;
  return {
    name: src.name,
    header,
    metadata: header.metadata,
    tensors: header.tensors,
    dataOffset: header.dataOffset,
    async read(tensor) {
      if (closed) throw new SafetensorsError('closed', src.name, `reading '${tensor}' after close()`);
      const e = header.tensors.get(tensor);
      if (e === undefined) throw new SafetensorsError('missing', src.name, `no tensor '${tensor}' (the file holds ${header.tensors.size})`);
      const ctor = SAFETENSORS_DTYPES[e.dtype];
      const data = new ctor((e.end - e.begin) / ctor.BYTES_PER_ELEMENT);
      await readExactly(src, header.dataOffset + e.begin, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), `tensor '${tensor}'`);
      return { dtype: e.dtype, shape: e.shape.slice(), data };
    },
    async close() {
      if (closed) return;
      closed = true;
      await src.close();
    },
  };
}

/**
 * Writes a whole safetensors file: tensors in the given order, packed from
 * data offset 0, the header padded with spaces to a multiple of 8 bytes (as
 * Hugging Face's writer does, so the data starts aligned). Each `data` must
 * be the dtype's typed array of `product(shape)` elements.
 */
export function encodeSafetensors(
  tensors: Map<string, SafetensorsTensor> | Record<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  checkHost();
  const plain = typeof tensors === 'object' && tensors !== null && [Object.prototype, null].includes(Object.getPrototypeOf(tensors));
  if (!(tensors instanceof Map) && !plain) throw new TypeError(`tensors: expected a Map or a record of { dtype, shape, data }, got ${describe(tensors)}`);
  if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null || !Object.values(metadata).every((v) => typeof v === 'string'))) {
    throw new TypeError(`metadata: expected a record of strings (safetensors' __metadata__), got ${describe(metadata)}`);
  }
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  // fromEntries, not assignment: a tensor named '__proto__' stays a plain key
  const header: [string, unknown][] = [];
  if (metadata !== undefined) header.push(['__metadata__', Object.fromEntries(Object.entries(metadata))]);
  let offset = 0;
  for (const [key, t] of list) {
    if (key === '__metadata__') throw new RangeError(`encodeSafetensors: '__metadata__' is reserved, not a tensor name`);
    if (typeof t !== 'object' || t === null) throw new TypeError(`encodeSafetensors: tensor '${key}': expected { dtype, shape, data }, got ${describe(t)}`);
    const ctor = Object.hasOwn(SAFETENSORS_DTYPES, t.dtype) ? SAFETENSORS_DTYPES[t.dtype] : undefined;
    if (ctor === undefined) throw new RangeError(`encodeSafetensors: tensor '${key}': unknown dtype '${String(t.dtype)}'`);
    if (!(t.data instanceof ctor)) throw new TypeError(`encodeSafetensors: tensor '${key}': dtype ${t.dtype} needs a ${ctor.name}, got ${t.data?.constructor?.name}`);
    if (!Array.isArray(t.shape)) throw new TypeError(`encodeSafetensors: tensor '${key}': shape must be an array of non-negative integers, got ${describe(t.shape)}`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (!t.shape.every(isNonNegativeInteger) || n !== t.data.length) {
      throw new RangeError(`encodeSafetensors: tensor '${key}': shape [${t.shape.map(String).join(', ')}] holds ${n} elements, data has ${t.data.length}`);
    }
    header.push([key, { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] }]);
    offset += t.data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(Object.fromEntries(header)));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  let at = 8 + padded;
  for (const [, t] of list) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}
