/**
 * .npy files in a browser: a reader over a Blob (a dropped File) that reads
 * any element range without loading the rest, with the same header checks
 * and messages as NpyReader in Node. It reads synchronously through
 * FileReaderSync, which exists only in workers: run it in one (the main
 * thread must not block on a file anyway).
 */
import { product, type TypedArray } from '../tensor.js';
import { readTarget, npyItemSize, readNpyHeader, type NpyDtype, type NpySource } from './npy.js';

interface SyncReader {
  readAsArrayBuffer(blob: Blob): ArrayBuffer;
}

function syncReader(): SyncReader {
  const ctor = (globalThis as { FileReaderSync?: new () => SyncReader }).FileReaderSync;
  if (ctor === undefined) throw new Error('NpyBlobReader: FileReaderSync is missing (it exists only in workers; read dropped files in a worker)');
  return new ctor();
}

export class NpyBlobReader implements NpySource {
  readonly dtype: NpyDtype;
  readonly shape: number[];
  readonly size: number;
  private readonly dataOffset: number;
  private blob: Blob | null;
  private readonly reader: SyncReader;

  private constructor(readonly name: string, blob: Blob, reader: SyncReader, header: { dtype: NpyDtype; shape: number[]; dataOffset: number }) {
    this.blob = blob;
    this.reader = reader;
    this.dtype = header.dtype;
    this.shape = header.shape;
    this.dataOffset = header.dataOffset;
    this.size = product(header.shape);
  }

  /** Checks the header of `blob` (named `name` in messages) against its size, as NpyReader.open does. */
  static open(blob: Blob, name: string): NpyBlobReader {
    const reader = syncReader();
    const header = readNpyHeader(name, blob.size, (length) => new Uint8Array(reader.readAsArrayBuffer(blob.slice(0, length))));
    return new NpyBlobReader(name, blob, reader, header);
  }

  read(start: number, count: number, out?: TypedArray): TypedArray {
    if (this.blob === null) throw new Error(`${this.name}: reader is closed`);
    const target = readTarget(this.name, this.dtype, this.size, start, count, out);
    const itemSize = npyItemSize(this.dtype);
    const at = this.dataOffset + start * itemSize;
    const bytes = new Uint8Array(this.reader.readAsArrayBuffer(this.blob.slice(at, at + count * itemSize)));
    if (bytes.length !== count * itemSize) throw new RangeError(`${this.name}: file shrank while reading (truncated at element ${start + bytes.length / itemSize})`);
    new Uint8Array(target.buffer, target.byteOffset, bytes.length).set(bytes);
    return target;
  }

  close(): void {
    this.blob = null;
  }
}
