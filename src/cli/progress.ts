/**
 * Progress for the commands that stream query blocks (mask, check, topk,
 * threshold): a bar on stderr, on a terminal only, and only once a run has
 * taken a second, so a quick run prints nothing and a 64 GiB mask shows how
 * far it is. cli-progress is loaded only when the bar appears.
 */
import { createRequire } from 'node:module';
import type { CliContext } from './context.js';
import type { RowBlock } from './inputs.js';

export interface ProgressOptions {
  /** Milliseconds before the bar appears (default 1000). */
  after?: number;
  /** Where it draws (default process.stderr). */
  stream?: NodeJS.WritableStream;
}

/**
 * Yields `blocks` and counts each block's rows as done once the loop body
 * has processed it; the bar is cleared when the loop ends, returns early or
 * throws.
 */
export function* withProgress(ctx: CliContext, label: string, totalRows: number, blocks: Iterable<RowBlock>, options: ProgressOptions = {}): Generator<RowBlock> {
  if (!ctx.io.isTTY) {
    yield* blocks;
    return;
  }
  const start = performance.now();
  const after = options.after ?? 1000;
  let bar: import('cli-progress').SingleBar | null = null;
  let done = 0;
  try {
    for (const block of blocks) {
      yield block;
      done += block.t1 - block.t0;
      if (bar !== null) bar.update(done);
      else if (performance.now() - start >= after) {
        const { SingleBar } = createRequire(import.meta.url)('cli-progress') as typeof import('cli-progress');
        bar = new SingleBar({
          format: `${label} [{bar}] {percentage}% | {value}/{total} query rows | {duration_formatted}, about {eta_formatted} to go`,
          hideCursor: true,
          clearOnComplete: true,
          stream: options.stream ?? process.stderr,
        });
        bar.start(totalRows, done);
      }
    }
  } finally {
    bar?.stop();
  }
}
