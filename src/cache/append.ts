/**
 * Appending tokens to a DSA cache as kernels: a check step that flags the
 * first new key that cannot be stored (a NaN or Infinity where the keys are
 * quantized), then a write step that stores nothing when a key was flagged,
 * so a failed append leaves the cache unchanged. Keys are rotated (Hadamard)
 * and quantized into the cache's form; kv rows are copied. Slots were
 * reserved by the cache (src/cache/cache.ts), one per new token.
 *
 * 'cache.checkKeys' args: keys [n, d], d, firstBad (Int32Array [1]); rows = tokens.
 * 'cache.write' args: keys [n, d], kvIn [n, rowWidth], slots [n], d,
 * rowWidth (hkv * dqk), form ('float32' | 'int8' | 'fp8'), hadamard, ue8m0,
 * vllmScale (fp8: vLLM's division scale rule), pageSize, keysF32 | keysI8 + scalesI8 | keysFp8 (the cache's storage),
 * kv (the cache's kv storage), firstBad; rows = tokens.
 */
import type { KernelArgs } from '../plan.js';
import { NO_BAD_ROW } from '../mask/check.js';
import { QUANT_BLOCK, quantizeRowsRef } from '../indexer/quantize.js';
import { hadamardInPlace, writeFp8Keys } from '../indexer/fp8.js';

/** Flags (atomically, as the mask check does) the first token whose key holds a non-finite value. */
export function checkKeys(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const keys = args.keys as Float32Array, d = args.d as number, firstBad = args.firstBad as Int32Array;
  for (let r = rowStart; r < rowEnd; r++) {
    for (let e = 0; e < d; e++) {
      if (!Number.isFinite(keys[r * d + e])) {
        let current = Atomics.load(firstBad, 0);
        while (r < current) {
          const seen = Atomics.compareExchange(firstBad, 0, current, r);
          if (seen === current) break;
          current = seen;
        }
        return;
      }
    }
  }
}

let rotated = new Float32Array(0);

export function writeTokens(args: KernelArgs, rowStart: number, rowEnd: number): void {
  if ((args.firstBad as Int32Array)[0] !== NO_BAD_ROW) return;
  const keys = args.keys as Float32Array, kvIn = args.kvIn as Float32Array, slots = args.slots as Int32Array;
  const kv = args.kv as Float32Array;
  const d = args.d as number, rowWidth = args.rowWidth as number, form = args.form as string;
  const hadamard = args.hadamard as boolean, pageSize = args.pageSize as number;
  if (rotated.length < d) rotated = new Float32Array(d);
  for (let r = rowStart; r < rowEnd; r++) {
    const slot = slots[r];
    kv.set(kvIn.subarray(r * rowWidth, (r + 1) * rowWidth), slot * rowWidth);
    if (form === 'fp8') {
      const data = args.keysFp8 as Uint8Array;
      const scales = new Float32Array(data.buffer, data.byteOffset, data.length >>> 2);
      writeFp8Keys(keys, r * d, 1, d, hadamard, args.ue8m0 ? 'ue8m0' : 'float32', data, scales, pageSize, slot, rotated, args.vllmScale ? 'vllm' : 'deepseek');
      continue;
    }
    rotated.set(keys.subarray(r * d, (r + 1) * d));
    if (hadamard) hadamardInPlace(rotated, 0, d);
    if (form === 'float32') {
      (args.keysF32 as Float32Array).set(rotated.subarray(0, d), slot * d);
    } else {
      // int8 scales are slot-major [slots, nb]: one key row with a stride of nb per block.
      const nb = Math.ceil(d / QUANT_BLOCK);
      const values = new Int8Array((args.keysI8 as Int8Array).buffer, (args.keysI8 as Int8Array).byteOffset + slot * d, d);
      const scales = new Float32Array((args.scalesI8 as Float32Array).buffer, (args.scalesI8 as Float32Array).byteOffset + slot * nb * 4, nb);
      quantizeRowsRef(rotated, 0, 1, d, values, scales, 1);
    }
  }
}
