/**
 * Row fills for the mask kernels. On a plain buffer this is
 * TypedArray.prototype.fill, a memset. On a SharedArrayBuffer (the worker
 * pool's memory) V8's fill stores one element at a time, so that no store
 * tears for another thread: measured here 1.5 to 3x slower than a plain fill
 * for float32 and about 30x for bytes. There the fill instead stores 8 bytes at a
 * time through a Float64Array view of the same memory, holding the value's
 * bit pattern repeated: still V8's fill, but half (float32) or an eighth
 * (bytes) as many stores. A pattern that is a NaN as float64 could be
 * canonicalised by the engine, so those fills fall back to fill(). (A JS
 * store loop was no faster: over a view made per call V8 does not keep the
 * loop tight.)
 * A kernel makes its view once per call (`wideView`): a view, not a buffer.
 */
import type { MaskData } from '../tensor.js';

/** A Float64Array over the 8-byte-aligned interior of `out` when it is shared memory, else null. */
export function wideView(out: MaskData): Float64Array | null {
  if (typeof SharedArrayBuffer === 'undefined' || !(out.buffer instanceof SharedArrayBuffer)) return null;
  const first = Math.ceil(out.byteOffset / 8) * 8;
  const words = Math.floor((out.byteOffset + out.byteLength - first) / 8);
  return words > 0 ? new Float64Array(out.buffer, first, words) : null;
}

/** The float64 whose 8 bytes hold `value` repeated as elements of `ctor`. */
export function widePattern(ctor: { new (buffer: ArrayBuffer): MaskData }, value: number): number {
  const word = new Float64Array(1);
  new ctor(word.buffer).fill(value);
  return word[0];
}

/** out[start, end) = value; `pattern` is widePattern(out's type, value). */
export function fillRange(out: MaskData, wide: Float64Array | null, start: number, end: number, value: number, pattern: number): void {
  if (start >= end) return;
  if (wide === null || Number.isNaN(pattern)) {
    out.fill(value, start, end);
    return;
  }
  const size = out.BYTES_PER_ELEMENT, perWord = 8 / size;
  const base = out.byteOffset - wide.byteOffset; // byte of element 0, relative to the view
  let e = start;
  while (e < end && (base + e * size) % 8 !== 0) out[e++] = value;
  const from = (base + e * size) / 8;
  const words = Math.floor((end - e) / perWord);
  wide.fill(pattern, from, from + words);
  e += words * perWord;
  while (e < end) out[e++] = value;
}
