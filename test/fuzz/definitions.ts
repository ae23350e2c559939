// Plain-loop definitions that several fuzz files check the library against:
// the mask forms' layout and the e4m3 code table, each written from the
// contract (SPEC "Masks", "FP8 indexer"), never from the library's code.
import assert from 'node:assert/strict';
import { DEFAULT_MASK_VALUE, type MaskData, type MaskForm } from '../../src/tensor.js';

export const ctorOf = (form: MaskForm) => (form === 'additive' ? Float32Array : form === 'bool' ? Uint8Array : Uint32Array);
export const widthOf = (form: MaskForm, s: number) => (form === 'bits' ? Math.ceil(s / 32) : s);

/** Rows of kept flags in a mask form, laid out as the contract states. */
export function encode(kept: boolean[][], form: MaskForm, s: number): MaskData {
  const width = widthOf(form, s);
  const out = new (ctorOf(form))(kept.length * width);
  kept.forEach((row, r) => row.forEach((x, j) => {
    if (form === 'additive') out[r * width + j] = x ? 0 : DEFAULT_MASK_VALUE;
    else if (form === 'bool') out[r * width + j] = x ? 1 : 0;
    else if (x) out[r * width + Math.floor(j / 32)] |= 2 ** (j % 32);
  }));
  return out;
}

/** A check that two masks are the same: shape, typed-array kind and every byte. */
export function sameMask(what: string) {
  return (got: { data: MaskData; shape: number[] }, want: { data: MaskData; shape: number[] }) => {
    assert.deepEqual(got.shape, want.shape, `${what}: shape`);
    assert.equal(got.data.constructor, want.data.constructor, `${what}: type`);
    const a = new Uint8Array(got.data.buffer, got.data.byteOffset, got.data.byteLength);
    const e = new Uint8Array(want.data.buffer, want.data.byteOffset, want.data.byteLength);
    assert.ok(a.length === e.length && a.every((x, i) => x === e[i]), `${what}: data differs`);
  };
}

/** The e4m3 value of a code, from its bits: sign, 4 exponent bits (bias 7), 3 mantissa bits, subnormals, S.1111.111 NaN. */
export function e4m3Value(code: number): number {
  const sign = code & 0x80 ? -1 : 1, e = (code >> 3) & 15, m = code & 7;
  if (e === 15 && m === 7) return NaN;
  return sign * (e === 0 ? (m / 8) * 2 ** -6 : (1 + m / 8) * 2 ** (e - 7));
}

const POSITIVE = Array.from({ length: 0x7f }, (_, c) => e4m3Value(c));

/** The nearest e4m3 code to float32(x), ties to the even code, saturating at ±448, NaN 0x7f. */
export function e4m3Nearest(x: number): number {
  const f = Math.fround(x);
  if (Number.isNaN(f)) return 0x7f;
  const sign = f < 0 || Object.is(f, -0) ? 0x80 : 0;
  const a = Math.min(Math.abs(f), 448);
  let best = 0;
  for (let c = 1; c < 0x7f; c++) {
    const d = Math.abs(POSITIVE[c] - a), db = Math.abs(POSITIVE[best] - a);
    if (d < db || (d === db && c % 2 === 0)) best = c;
  }
  return sign | best;
}
