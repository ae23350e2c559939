/** The CLI's output edge: .npy writers whose failures read as one line naming the flag, and the check that no output is an input. */
import { realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
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

/**
 * Throws, before a command opens anything for writing, if one of its
 * `outputs` (flag -> path; an unset flag is skipped) is the same file as one
 * of its `inputs` or as another output. Paths are compared as files: the
 * same device and inode with links followed (another spelling, a hard link,
 * or a symlink to the file), or, for an output that does not exist yet, the
 * same absolute path with the folders' links resolved. The rename that
 * commits an output would otherwise replace the input (or the first output)
 * by the new file; a symlink to an input is refused too, although the rename
 * would only replace the link, since the file it names is the input.
 */
export function checkOutputs(inputs: Record<string, string>, outputs: Record<string, string | false | undefined>): void {
  const seen = Object.entries(inputs).map(([flag, path]) => ({ flag, path, file: fileOf(path), input: true }));
  for (const [flag, path] of Object.entries(outputs)) {
    if (typeof path !== 'string') continue;
    const file = fileOf(path);
    const same = seen.find((other) => other.file === file);
    if (same !== undefined) {
      const paths = same.path === path ? path : `${path} and ${same.path}`;
      throw new CliError(`${flag} is the same file as ${same.flag} (${paths}): ` +
        `${same.input ? 'refusing to overwrite an input' : 'refusing to write two outputs to one file'}`);
    }
    seen.push({ flag, path, file, input: false });
  }
}

/** What `path` names: `dev:ino` of the file (links followed), or its resolved path where nothing is there yet. */
function fileOf(path: string): string {
  try {
    const stat = statSync(path, { bigint: true });
    return `${stat.dev}:${stat.ino}`;
  } catch {
    // Not there yet, or a dangling link (the rename replaces the link
    // itself): the path, through the real folder when that exists.
    const absolute = resolve(path);
    try {
      return join(realpathSync(dirname(absolute)), basename(absolute));
    } catch {
      return absolute;
    }
  }
}
