/**
 * The CLI's file edge: opening .npy inputs with their dtype and rank
 * checked (one clear message naming the flag, the file, the expected and
 * the actual), option parsers for commander, and the row blocks every
 * command streams through so memory stays bounded whatever the file size.
 */
import { InvalidArgumentError } from 'commander';
import type { MaskForm } from '../tensor.js';
import { NpyReader } from '../io/npy-file.js';
import type { NpyDtype } from '../io/npy.js';
import { CliError, openSource } from './sources.js';

export { CliError, blockRows, checkIndicesBelow, checkInput, readIndexRows, rowBlocks, type RowBlock } from './sources.js';

/** Opens `path` for `flag`, checking the dtype is one of `dtypes` and the shape is `dims`. */
export function openInput(flag: string, path: string, dtypes: readonly NpyDtype[], dims: readonly string[]): NpyReader {
  return openSource(flag, () => {
    try {
      return NpyReader.open(path);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') throw new CliError(`${flag}: no such file ${path}`);
      if (e.code === 'EISDIR') throw new CliError(`${flag}: ${path} is a folder, expected a .npy file`);
      throw err; // openSource names the flag
    }
  }, dtypes, dims);
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
