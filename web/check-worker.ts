// `dsa check` on two dropped .npy files, in a worker: the files are read a
// block at a time (FileReaderSync over Blob slices, never whole), checked
// with the CLI's messages, and compared by the CLI's own code
// (src/cli/check-mask.ts), so the verdict, the first differing position and
// every error message are the command's.
import { NpyBlobReader } from '../src/io/npy-blob.js';
import { openSource, type RowBlock } from '../src/cli/sources.js';
import { INDEX_DTYPES, MASK_DTYPES, compareMask } from '../src/cli/check-mask.js';
import { initSimd } from '../src/simd/index.js';
import type { CheckReply, CheckRequest } from './messages.js';

const post = (reply: CheckReply) => (self as unknown as Worker).postMessage(reply);

function* withProgress(total: number, blocks: Iterable<RowBlock>): Generator<RowBlock> {
  let done = 0;
  let last = 0;
  for (const block of blocks) {
    yield block;
    done += block.t1 - block.t0;
    const now = performance.now();
    if (now - last > 50) {
      last = now;
      post({ type: 'progress', done, total });
    }
  }
}

self.onmessage = async (event: MessageEvent<CheckRequest>) => {
  const { mask, indices, flags } = event.data;
  try {
    await initSimd();
    const maskSource = openSource('--mask', () => NpyBlobReader.open(mask, mask.name), MASK_DTYPES, ['b', 't', 's']);
    try {
      const indexSource = openSource('--indices', () => NpyBlobReader.open(indices, indices.name), INDEX_DTYPES, ['b', 't', 'k']);
      try {
        let output = '';
        const ok = compareMask({ ...flags, mask: mask.name, indices: indices.name }, maskSource, indexSource, (text) => (output += text), withProgress);
        post({ type: 'done', ok, output });
      } finally {
        indexSource.close();
      }
    } finally {
      maskSource.close();
    }
  } catch (err) {
    // The CLI prints `dsa check: <message>` and exits 2.
    post({ type: 'error', message: `dsa check: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}` });
  }
};
