// The pool kernel registry of bench/layer.ts: the library's kernels with the
// layer's (src/model), for the layer step on 2 workers, and the read floor:
// a streaming read of a byte buffer in 1 MiB rows through Buffer#indexOf of
// a byte the buffer does not hold (memchr: the machine's vector loads, no
// stores), so the floor is what reading the bytes costs on this machine,
// the pool's scheduling included.
import { kernels as library, setup } from '../src/kernels.js';
import { modelKernels } from '../src/model/kernels.js';

type Args = Record<string, unknown>;

/** Bytes per row of the floor kernel. */
export const SCAN_ROW = 1 << 20;

/** Reads rows [rowStart, rowEnd) of `bytes` (SCAN_ROW bytes each); `found` gets -1 per row unless the byte 1 occurs. */
export function scanRows(args: Args, rowStart: number, rowEnd: number): void {
  const bytes = args.bytes as Uint8Array, found = args.found as Int32Array, length = args.length as number;
  for (let r = rowStart; r < rowEnd; r++) {
    const from = r * SCAN_ROW, to = Math.min(length, from + SCAN_ROW);
    found[r] = Buffer.from(bytes.buffer, bytes.byteOffset + from, to - from).indexOf(1);
  }
}

export const kernels = { ...library, ...modelKernels, 'bench.scan': scanRows };
export { setup };
