/**
 * safetensors files on disk (Node only): a ByteSource over a file handle
 * with positional reads, so a tensor's range is read without touching the
 * rest of the shard. Browsers use `blobSource` in `safetensors.ts` instead.
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openSafetensors, type ByteSource, type SafetensorsReader } from './safetensors.js';

/** FileHandle.read moves at most 2 GiB - 1 per call. */
const IO_CHUNK = 1 << 30;

/** Opens `path` for positional reads; `name` (default the path) names it in errors. */
export async function fileSource(path: string, name = path): Promise<ByteSource> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    let closed = false;
    return {
      name,
      size,
      async read(offset, into) {
        if (closed) throw new Error(`${name}: file is closed`);
        let done = 0;
        while (done < into.length) {
          const { bytesRead } = await handle.read(into, done, Math.min(IO_CHUNK, into.length - done), offset + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        return done;
      },
      async close() {
        if (closed) return;
        closed = true;
        await handle.close();
      },
    };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** `openSafetensors` over a file on disk; the handle stays open until `close()`. */
export async function openSafetensorsFile(path: string): Promise<SafetensorsReader> {
  return openSafetensors(await fileSource(path));
}

/**
 * The files of a checkpoint folder, by name: `text` reads a small file
 * whole, `open` a source for positional reads (closed by the caller); both
 * resolve undefined when the file does not exist.
 */
export interface FolderFiles {
  readonly dir: string;
  text(file: string): Promise<string | undefined>;
  open(file: string): Promise<ByteSource | undefined>;
}

async function unlessMissing<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    if ((err as { code?: string })?.code === 'ENOENT') return undefined;
    throw err;
  }
}

export function folderFiles(dir: string): FolderFiles {
  return {
    dir,
    text: (file) => unlessMissing(() => readFile(join(dir, file), 'utf8')),
    open: (file) => unlessMissing(() => fileSource(join(dir, file))),
  };
}
