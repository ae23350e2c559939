// Plain definitions the mask tests compare against: written for reading, not speed.
import fc from 'fast-check';
import { DEFAULT_MASK_VALUE, type MaskData, type MaskForm } from '../../src/tensor.js';

/** kept[row][j] from the broadcast definition (+ causal rule), rows [start, end). */
export function keptByIndices(indices: Int32Array, t: number, k: number, s: number, start: number, end: number, offset?: number): boolean[][] {
  const kept: boolean[][] = [];
  for (let r = start; r < end; r++) {
    const row = new Array<boolean>(s).fill(false);
    for (let i = 0; i < k; i++) {
      const j = indices[r * k + i];
      if (j >= 0 && j < s && (offset === undefined || j <= (r % t) + offset)) row[j] = true;
    }
    kept.push(row);
  }
  return kept;
}

/** The rows of a kept matrix in a storage form, as the library must lay them out. */
export function encode(kept: boolean[][], form: MaskForm, s: number): MaskData {
  if (form === 'additive') return Float32Array.from(kept.flat(), (x) => (x ? 0 : DEFAULT_MASK_VALUE));
  if (form === 'bool') return Uint8Array.from(kept.flat(), (x) => (x ? 1 : 0));
  const words = Math.ceil(s / 32);
  const out = new Uint32Array(kept.length * words);
  kept.forEach((row, r) => row.forEach((x, j) => {
    if (x) out[r * words + Math.floor(j / 32)] |= 2 ** (j % 32);
  }));
  return out;
}

/** Decodes any form back to kept[row][j]. */
export function decode(data: MaskData, s: number): boolean[][] {
  const rows: boolean[][] = [];
  const words = Math.ceil(s / 32);
  const n = data instanceof Uint32Array ? data.length / words : data.length / s;
  for (let r = 0; r < n; r++) {
    const row: boolean[] = [];
    for (let j = 0; j < s; j++) {
      if (data instanceof Uint32Array) row.push(((data[r * words + (j >> 5)] >>> (j & 31)) & 1) === 1);
      else row.push(data[r * s + j] === (data instanceof Float32Array ? 0 : 1));
    }
    rows.push(row);
  }
  return rows;
}

/** Sort-based top-k indices of each row: descending score, ties by ascending key; k > s pads with -1. */
export function sortTopkIndices(scores: Float32Array, rows: number, s: number, k: number): Int32Array {
  const out = new Int32Array(rows * k).fill(-1);
  for (let r = 0; r < rows; r++) {
    const keys = Array.from({ length: s }, (_, j) => j);
    // Compare, never subtract: -Infinity - -Infinity is NaN.
    keys.sort((x, y) => {
      const a = scores[r * s + x], b = scores[r * s + y];
      return a === b ? x - y : b > a ? 1 : -1;
    });
    for (let i = 0; i < Math.min(k, s); i++) out[r * k + i] = keys[i];
  }
  return out;
}

/** Same array type and the same bits (so -0 vs 0 and NaN payloads would show). */
export function assertSameBits(actual: MaskData, expected: MaskData, what: string): void {
  if (actual.constructor !== expected.constructor) throw new Error(`${what}: ${actual.constructor.name} != ${expected.constructor.name}`);
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length} != ${expected.length}`);
  const a = new Uint8Array(actual.buffer, actual.byteOffset, actual.byteLength);
  const e = new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) {
      const el = Math.floor(i / actual.BYTES_PER_ELEMENT);
      throw new Error(`${what}: element ${el} is ${actual[el]}, expected ${expected[el]}`);
    }
  }
}

const forms: MaskForm[] = ['additive', 'bool', 'bits'];

/** A random case: shapes (s often not a multiple of 32, k sometimes > s), indices with -1, duplicates and values >= s. */
export const indexCase = fc
  .record({ b: fc.integer({ min: 1, max: 3 }), t: fc.integer({ min: 1, max: 5 }), k: fc.integer({ min: 1, max: 12 }), s: fc.integer({ min: 1, max: 70 }) })
  .chain(({ b, t, k, s }) =>
    fc.record({
      b: fc.constant(b),
      t: fc.constant(t),
      k: fc.constant(k),
      s: fc.constant(s),
      indices: fc.array(fc.oneof(fc.integer({ min: 0, max: s - 1 }), fc.integer({ min: -3, max: s + 3 })), { minLength: b * t * k, maxLength: b * t * k }),
      causalOffset: fc.option(fc.integer({ min: -t - 1, max: s + 1 }), { nil: undefined }),
      rows: fc.option(fc.tuple(fc.integer({ min: 0, max: b * t }), fc.integer({ min: 0, max: b * t })).map(([x, y]) => [Math.min(x, y), Math.max(x, y)] as [number, number]), { nil: undefined }),
      form: fc.constantFrom(...forms),
      strategy: fc.constantFrom('scatter' as const, 'broadcast' as const),
    }),
  );

