/**
 * The CLI's file edge: opening .npy inputs with their dtype and rank
 * checked (one clear message naming the flag, the file, the expected and
 * the actual), option parsers for commander, and the row blocks every
 * command streams through so memory stays bounded whatever the file size.
 */
import { InvalidArgumentError } from 'commander';
import { int64ToInt32, type MaskForm } from '../tensor.js';
import { NpyReader } from '../io/npy-file.js';
import type { NpyDtype } from '../io/npy.js';

/** An error the CLI reports as one line and exit code 2 (usage or input). */
export class CliError extends Error {}

/** Opens `path` for `flag`, checking the dtype is one of `dtypes` and the shape is `dims`. */
export function openInput(flag: string, path: string, dtypes: readonly NpyDtype[], dims: readonly string[]): NpyReader {
  let reader: NpyReader;
  try {
    reader = NpyReader.open(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new CliError(`${flag}: no such file ${path}`);
    if (e.code === 'EISDIR') throw new CliError(`${flag}: ${path} is a folder, expected a .npy file`);
    throw new CliError(`${flag}: ${e.message}`);
  }
  const fail = (what: string) => {
    reader.close();
    return new CliError(`${flag}: ${path}: ${what}`);
  };
  if (!dtypes.includes(reader.dtype)) throw fail(`expected dtype ${dtypes.join(' or ')}, got ${reader.dtype}`);
  if (reader.shape.length !== dims.length) {
    throw fail(`expected shape [${dims.join(', ')}] (rank ${dims.length}), got [${reader.shape.join(', ')}] (rank ${reader.shape.length})`);
  }
  const zero = reader.shape.indexOf(0);
  if (zero >= 0) throw fail(`dimension ${dims[zero]} is 0 in shape [${reader.shape.join(', ')}]`);
  return reader;
}

/** Reads rows [row, row + n) of an int32/int64 `[.., k]` file as Int32Array (int64 range-checked; int32 into `scratch` when given). */
export function readIndexRows(reader: NpyReader, row: number, n: number, k: number, scratch?: Int32Array): Int32Array {
  if (reader.dtype === 'int32') return reader.read(row * k, n * k, scratch).subarray(0, n * k) as Int32Array;
  const block = reader.read(row * k, n * k);
  try {
    return int64ToInt32('indices', block as BigInt64Array);
  } catch (err) {
    const m = /element (\d+) is (-?\d+)/.exec((err as Error).message);
    if (!m) throw err;
    const i = Number(m[1]);
    throw new CliError(`${reader.name}: value ${m[2]} at row ${row + Math.floor(i / k)}, slot ${i % k} does not fit int32`);
  }
}

/**
 * Throws for the first index >= s of a block whose first row is `row`, with
 * its position in the file (the library would name the block's position).
 */
export function checkIndicesBelow(name: string, block: Int32Array, row: number, t: number, k: number, s: number): void {
  for (let i = 0; i < block.length; i++) {
    if (block[i] >= s) {
      const r = row + Math.floor(i / k);
      throw new CliError(
        `${name}: value ${block[i]} at batch ${Math.floor(r / t)}, query ${r % t}, slot ${i % k} must be < s = ${s} ` +
          `(negative values are padding; --out-of-range skip drops values >= s)`,
      );
    }
  }
}

/** A block of queries `[t0, t1)` of batch `bi`; rows `bi * t + t0 ...`. Blocks never cross batches, so causal offsets stay per block. */
export interface RowBlock {
  bi: number;
  t0: number;
  t1: number;
  /** The first row, `bi * t + t0`. */
  row: number;
}

/** Query blocks of at most `rowsPerBlock` rows, batch by batch. */
export function* rowBlocks(b: number, t: number, rowsPerBlock: number): Generator<RowBlock> {
  const n = Math.max(1, Math.floor(rowsPerBlock));
  for (let bi = 0; bi < b; bi++) {
    for (let t0 = 0; t0 < t; t0 += n) yield { bi, t0, t1: Math.min(t, t0 + n), row: bi * t + t0 };
  }
}

/**
 * Rows per block so that one block of `bytesPerRow` stays near `budget` bytes
 * (default 4 MiB: a block read from the file is still in the cache when it
 * is processed, which measured faster than 32 MiB blocks; or the
 * DSA_BLOCK_BYTES environment variable, which tests
 * use to cross block boundaries on small files).
 */
export function blockRows(bytesPerRow: number, budget = Number(process.env.DSA_BLOCK_BYTES) || 4 * 2 ** 20): number {
  return Math.max(1, Math.floor(budget / Math.max(1, bytesPerRow)));
}

/** The npy dtype a mask form is stored as. */
export function maskDtype(form: MaskForm): NpyDtype {
  return form === 'additive' ? 'float32' : form === 'bool' ? 'bool' : 'uint32';
}

export function parsePositive(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive integer, got '${value}'`);
  return n;
}

export function parseInteger(value: string): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected an integer, got '${value}'`);
  return n;
}

export function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got '${value}'`);
  return n;
}
