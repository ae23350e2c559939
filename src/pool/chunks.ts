/**
 * What both pool transports (worker_threads, Web Workers) do around their
 * own dispatch: refuse arguments the workers cannot share, cut the rows into
 * contiguous chunks, and settle only when every chunk has (so no worker is
 * still writing into the caller's buffers when the promise settles),
 * rejecting with the first error.
 */

/**
 * Runs rows [rowStart, rowEnd) as `min(n, chunks)`
 * contiguous chunks (one when `split` is false), each through `runChunk`.
 */
export async function runInChunks(
  args: Record<string, unknown>,
  rowStart: number,
  rowEnd: number,
  chunks: number,
  split: boolean,
  runChunk: (chunkStart: number, chunkEnd: number) => Promise<unknown>,
): Promise<void> {
  for (const [name, value] of Object.entries(args)) {
    if (ArrayBuffer.isView(value) && !(value.buffer instanceof SharedArrayBuffer)) {
      throw new TypeError(`pool: kernel argument '${name}' must be backed by a SharedArrayBuffer`);
    }
  }
  const n = rowEnd - rowStart;
  if (n <= 0) return;
  const count = split ? Math.min(n, chunks) : 1;
  const tasks: Promise<unknown>[] = [];
  for (let c = 0; c < count; c++) {
    tasks.push(runChunk(rowStart + Math.floor((n * c) / count), rowStart + Math.floor((n * (c + 1)) / count)));
  }
  const settled = await Promise.allSettled(tasks);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
