/**
 * The CLI's input edge that runs anywhere (Node and browser workers, for
 * the page's dropped-file check): .npy sources checked with the CLI's
 * messages, index rows read and range-checked, and the row blocks every
 * command streams through so memory stays bounded whatever the file size.
 */
import { int64ToInt32 } from '../tensor.js';
import type { NpyDtype, NpySource } from '../io/npy.js';

/** An error the CLI reports as one line and exit code 2 (usage or input). */
export class CliError extends Error {}

/** Checks that `reader` (opened for `flag`) has one of `dtypes` and the shape `dims`, with no zero dimension. */
export function checkInput(flag: string, reader: NpySource, dtypes: readonly NpyDtype[], dims: readonly string[]): void {
  const fail = (what: string) => new CliError(`${flag}: ${reader.name}: ${what}`);
  if (!dtypes.includes(reader.dtype)) throw fail(`expected dtype ${dtypes.join(' or ')}, got ${reader.dtype}`);
  if (reader.shape.length !== dims.length) {
    throw fail(`expected shape [${dims.join(', ')}] (rank ${dims.length}), got [${reader.shape.join(', ')}] (rank ${reader.shape.length})`);
  }
  const zero = reader.shape.indexOf(0);
  if (zero >= 0) throw fail(`dimension ${dims[zero]} is 0 in shape [${reader.shape.join(', ')}]`);
}

/**
 * Opens a source for `flag` with `open` and checks it as `openInput` does a
 * file: a header error becomes a CliError naming the flag (the page's
 * dropped files get the CLI's messages).
 */
export function openSource<S extends NpySource>(flag: string, open: () => S, dtypes: readonly NpyDtype[], dims: readonly string[]): S {
  let reader: S;
  try {
    reader = open();
  } catch (err) {
    throw err instanceof CliError ? err : new CliError(`${flag}: ${(err as Error).message}`);
  }
  try {
    checkInput(flag, reader, dtypes, dims);
  } catch (err) {
    reader.close();
    throw err;
  }
  return reader;
}

/** Reads rows [row, row + n) of an int32/int64 `[.., k]` file as Int32Array (int64 range-checked; int32 into `scratch` when given). */
export function readIndexRows(reader: NpySource, row: number, n: number, k: number, scratch?: Int32Array): Int32Array {
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
export function blockRows(bytesPerRow: number, budget = Number(globalThis.process?.env?.DSA_BLOCK_BYTES) || 4 * 2 ** 20): number {
  return Math.max(1, Math.floor(budget / Math.max(1, bytesPerRow)));
}
