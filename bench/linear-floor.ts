// The read floor of bench/linear.ts as a pool kernel registry: a weight's
// bytes copied in 64 KiB chunks into one buffer per thread that stays in
// cache (what the linear kernels do before decoding a block), with nothing
// else, so the pool's scheduling cost is in the floor too.
type Args = Record<string, unknown>;

const CHUNK = 65536;
let sink = new Uint8Array(CHUNK);

/** Rows are 64 KiB chunks of `bytes`. */
export function readChunks(args: Args, rowStart: number, rowEnd: number): void {
  const bytes = args.bytes as Uint8Array;
  if (sink.length < CHUNK) sink = new Uint8Array(CHUNK);
  for (let c = rowStart; c < rowEnd; c++) {
    const from = c * CHUNK, to = Math.min(bytes.length, from + CHUNK);
    sink.set(bytes.subarray(from, to));
  }
}

export const kernels = { 'bench.read': readChunks };
