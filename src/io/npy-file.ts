/**
 * .npy files on disk (Node only): a reader that reads any element range
 * without loading the rest, so callers can stream row blocks of arrays
 * bigger than memory, and a writer that appends row blocks to a temporary
 * file beside the target and renames it into place only when every element
 * has been written, so a failure never leaves a partial output file.
 */
import { closeSync, fstatSync, openSync, read, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { product, type Tensor, type TypedArray } from '../tensor.js';
import { NPY_DTYPES, readTarget, encodeNpyHeader, npyDtypeOf, npyItemSize, readNpyHeader, type NpyDtype, type NpyHeader, type NpySource } from './npy.js';

/** readSync/writeSync move at most 2 GiB - 1 per call. */
const IO_CHUNK = 1 << 30;

function readFully(fd: number, into: Uint8Array, position: number): number {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, Math.min(IO_CHUNK, into.length - done), position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

function writeFully(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, Math.min(IO_CHUNK, bytes.length - done));
}

/** An open .npy file whose header has been checked against the file size. */
export class NpyReader implements NpySource {
  readonly dtype: NpyDtype;
  readonly shape: number[];
  /** Elements in the file. */
  readonly size: number;
  private readonly dataOffset: number;
  private fd: number | null;

  private constructor(readonly name: string, fd: number, header: NpyHeader) {
    this.fd = fd;
    this.dtype = header.dtype;
    this.shape = header.shape;
    this.dataOffset = header.dataOffset;
    this.size = product(header.shape);
  }

  /**
   * Opens `path` and checks its header: C order, a supported dtype, and a
   * file size that matches the shape (a truncated or padded file is an error
   * here, before the caller writes anything).
   */
  static open(path: string): NpyReader {
    const fd = openSync(path, 'r');
    try {
      const header = readNpyHeader(path, fstatSync(fd).size, (length) => {
        const bytes = new Uint8Array(length);
        readFully(fd, bytes, 0);
        return bytes;
      });
      return new NpyReader(path, fd, header);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /**
   * Reads elements `[start, start + count)` (flat, C order) into `out`
   * (a fresh array of the file's type when omitted) and returns it.
   */
  read(start: number, count: number, out?: TypedArray): TypedArray {
    if (this.fd === null) throw new Error(`${this.name}: reader is closed`);
    const target = readTarget(this.name, this.dtype, this.size, start, count, out);
    const itemSize = npyItemSize(this.dtype);
    const bytes = new Uint8Array(target.buffer, target.byteOffset, count * itemSize);
    const got = readFully(this.fd, bytes, this.dataOffset + start * itemSize);
    if (got !== bytes.length) throw new RangeError(`${this.name}: file shrank while reading (truncated at element ${start + got / itemSize})`);
    return target;
  }

  /**
   * `read` on libuv's thread pool: the copy from the file runs off this
   * thread, so a caller can read the next block while it works on this one.
   * `out` must not be touched until the promise settles.
   */
  readAsync(start: number, count: number, out: TypedArray): Promise<TypedArray> {
    if (this.fd === null) return Promise.reject(new Error(`${this.name}: reader is closed`));
    try {
      readTarget(this.name, this.dtype, this.size, start, count, out);
    } catch (err) {
      return Promise.reject(err);
    }
    const fd = this.fd;
    const itemSize = npyItemSize(this.dtype);
    const bytes = new Uint8Array(out.buffer, out.byteOffset, count * itemSize);
    const position = this.dataOffset + start * itemSize;
    return new Promise((resolve, reject) => {
      const step = (done: number): void => {
        if (done === bytes.length) return resolve(out);
        read(fd, bytes, done, Math.min(IO_CHUNK, bytes.length - done), position + done, (err, n) => {
          if (err) reject(err);
          else if (n === 0) reject(new RangeError(`${this.name}: file shrank while reading (truncated at element ${start + done / itemSize})`));
          else step(done + n);
        });
      };
      step(0);
    });
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Reads a whole .npy file. */
export function readNpy(path: string): Tensor & { dtype: NpyDtype } {
  const reader = NpyReader.open(path);
  try {
    return { data: reader.read(0, reader.size), shape: reader.shape.slice(), dtype: reader.dtype };
  } finally {
    reader.close();
  }
}

/** Temporary files not yet committed; removed if the process exits first. */
const pending = new Set<string>();
let exitHookInstalled = false;
let writerCount = 0;

/** Removes every temporary file of writers not yet committed (for signal handlers). */
export function removePendingNpyFiles(): void {
  for (const tmp of pending) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  }
  pending.clear();
}

/**
 * Writes a .npy file of a known dtype and shape in sequential blocks. The
 * data goes to `<dir>/.<name>.<pid>-<n>.tmp` and is renamed to `path` by
 * `commit()` once exactly `product(shape)` elements have been written;
 * `abort()` (or the process exiting first) removes the temporary file.
 */
export class NpyWriter {
  readonly size: number;
  private written = 0;
  private fd: number | null;
  private readonly tmp: string;

  private constructor(readonly path: string, readonly dtype: NpyDtype, readonly shape: number[]) {
    this.size = product(shape);
    this.tmp = join(dirname(path), `.${basename(path)}.${process.pid}-${writerCount++}.tmp`);
    if (!exitHookInstalled) {
      process.on('exit', removePendingNpyFiles);
      exitHookInstalled = true;
    }
    this.fd = openSync(this.tmp, 'w');
    pending.add(this.tmp);
    try {
      writeFully(this.fd, encodeNpyHeader(dtype, shape));
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  static create(path: string, dtype: NpyDtype, shape: readonly number[]): NpyWriter {
    return new NpyWriter(path, dtype, shape.slice());
  }

  /** Appends the next `data.length` elements (C order). */
  write(data: TypedArray): void {
    if (this.fd === null) throw new Error(`${this.path}: writer is closed`);
    const ctor = NPY_DTYPES[this.dtype].ctor;
    if (!(data instanceof ctor)) throw new TypeError(`${this.path}: dtype ${this.dtype} needs a ${ctor.name}, got ${data.constructor.name}`);
    if (this.written + data.length > this.size) {
      throw new RangeError(`${this.path}: writing ${data.length} more elements would exceed the shape's ${this.size} (already ${this.written})`);
    }
    writeFully(this.fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.written += data.length;
  }

  /** Closes the file and renames it into place; throws (and removes it) if elements are missing. */
  commit(): void {
    if (this.fd === null) throw new Error(`${this.path}: writer is closed`);
    if (this.written !== this.size) {
      this.abort();
      throw new RangeError(`${this.path}: wrote ${this.written} of ${this.size} elements; nothing was saved`);
    }
    closeSync(this.fd);
    this.fd = null;
    renameSync(this.tmp, this.path);
    pending.delete(this.tmp);
  }

  /** Closes and removes the temporary file; the target path is untouched. */
  abort(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
    try {
      unlinkSync(this.tmp);
    } catch {
      // never created or already removed
    }
    pending.delete(this.tmp);
  }
}

/** Writes a whole tensor as a .npy file (atomically, through a temporary file). */
export function writeNpy(path: string, tensor: Tensor, dtype: NpyDtype = npyDtypeOf(tensor.data)): void {
  const writer = NpyWriter.create(path, dtype, tensor.shape);
  try {
    writer.write(tensor.data);
    writer.commit();
  } catch (err) {
    writer.abort();
    throw err;
  }
}
