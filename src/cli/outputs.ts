/** The CLI's output edge: .npy writers whose failures read as one line naming the flag. */
import { NpyWriter } from '../io/npy-file.js';
import type { NpyDtype } from '../io/npy.js';
import { CliError } from './inputs.js';

/** A block writer for `flag`'s file; nothing appears at `path` until `commit()`. */
export function createOutput(flag: string, path: string, dtype: NpyDtype, shape: number[]): NpyWriter {
  try {
    return NpyWriter.create(path, dtype, shape);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new CliError(`${flag}: cannot write ${path}: the folder does not exist`);
    if (e.code === 'EACCES') throw new CliError(`${flag}: cannot write ${path}: permission denied`);
    throw new CliError(`${flag}: cannot write ${path}: ${e.message}`);
  }
}
