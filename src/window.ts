/**
 * Which keys each query row may see, in the forms serving engines pass them
 * (SPEC "Serving-engine forms"), checked once at the public edge and turned
 * into one per-row range `[lo[r], hi[r])` that every kernel reads:
 *
 * - `causalOffset` (a number): row (bi, ti) sees keys j <= ti + offset;
 * - `window` {start, end}: row r sees keys [start[r], end[r]) (vLLM's
 *   `cu_seqlen_ks` / `cu_seqlen_ke`), intersected with the causal limit;
 * - `seqLens` [b]: sequence bi holds seqLens[bi] tokens and its t queries are
 *   the last t of them, so row (bi, ti) sees positions <= seqLens[bi] - t + ti
 *   (vLLM's paged logits with `context_lens`, a decode step's batch); with
 *   `shortSequences: 'empty'` a sequence may hold fewer than t tokens, and a
 *   query whose position seqLens[bi] - t + ti is negative sees no keys (vLLM's
 *   paged logits with context_len < next_n);
 * - `ragged` {cuSeqlensQ, cuSeqlensK}: sequences of different lengths packed
 *   in one call (FlashAttention's varlen prefix sums); query p of sequence i
 *   sees that sequence's positions <= kLen_i - qLen_i + p, numbered from 0
 *   within the sequence, whose key rows start at `base[r] = cuSeqlensK[i]`.
 *   It stands alone (no window, seqLens or causalOffset with it).
 *
 * Rows are absolute (`r = bi * t + ti`, or the packed query index), also
 * when a call computes only `rows: [start, end)`.
 */
import type { Alloc } from './tensor.js';
import { describe } from './tensor.js';
import { checkInteger, checkOneOf } from './validate.js';

/** A key window per query row: row r sees keys `[start[r], end[r])`. */
export interface KeyWindow {
  /** Int32Array [rows]: the first key each row may see. */
  start: Int32Array;
  /** Int32Array [rows]: one past the last key each row may see. */
  end: Int32Array;
}

/** Sequences of different lengths packed along one axis, described by prefix sums (length b + 1, starting at 0). */
export interface RaggedBatch {
  /** Int32Array [b + 1]: queries of sequence i are packed rows [cuSeqlensQ[i], cuSeqlensQ[i + 1]). */
  cuSeqlensQ: Int32Array;
  /** Int32Array [b + 1]: keys of sequence i are packed rows [cuSeqlensK[i], cuSeqlensK[i + 1]). */
  cuSeqlensK: Int32Array;
}

export interface KeyWindowOptions {
  /** Row ti may see only keys j <= ti + causalOffset (s - t for a query block at the end of the cache). */
  causalOffset?: number;
  /** Per-row key windows (intersected with the causal limit). */
  window?: KeyWindow;
  /** Int32Array [b]: tokens of each sequence, the t queries being its last t (positions <= seqLens[bi] - t + ti). */
  seqLens?: Int32Array;
  /**
   * With seqLens, a sequence shorter than its t queries: 'error' (default,
   * a RangeError naming it) or 'empty' (vLLM's paged logits with
   * context_len < next_n: query ti sees positions <= seqLens[bi] - t + ti,
   * none when that is negative: scores -Infinity, top-k all -1, masks drop
   * every key).
   */
  shortSequences?: 'error' | 'empty';
  /** A packed batch of sequences (b = 1 in the tensor shapes); positions are numbered within each sequence. */
  ragged?: RaggedBatch;
}

/** The per-row key ranges a call runs with: row r sees positions [lo[r], hi[r]). */
export interface RowKeys {
  lo: Int32Array;
  hi: Int32Array;
  /** Ragged only: the packed key row of position 0 of each row's sequence. */
  base: Int32Array | null;
  /** Positions per row the call addresses: s, or (ragged) the longest sequence. */
  width: number;
}

function checkInt32Array(name: string, value: unknown, length: number, what: string): Int32Array {
  if (!(value instanceof Int32Array)) throw new TypeError(`${name}: expected an Int32Array of length ${length} (${what}), got ${describe(value)}`);
  if (value.length !== length) throw new RangeError(`${name}: expected an Int32Array of length ${length} (${what}), got length ${value.length}`);
  return value;
}

/** Names row r = bi * t + ti for messages. */
function rowName(r: number, t: number): string {
  return `row ${r} (batch ${Math.floor(r / t)}, query ${r % t})`;
}

/**
 * Validates the ragged prefix sums: same length b + 1 >= 2, starting at 0,
 * non-decreasing, ending at the packed query and key counts, and no sequence
 * with more queries than keys (its queries are its last tokens). Returns b.
 */
export function checkRagged(ragged: unknown, totalQ: number, totalK: number | null): number {
  if (typeof ragged !== 'object' || ragged === null || !('cuSeqlensQ' in ragged) || !('cuSeqlensK' in ragged)) {
    throw new TypeError(`ragged: expected { cuSeqlensQ, cuSeqlensK } (Int32Array prefix sums of length b + 1), got ${describe(ragged)}`);
  }
  const { cuSeqlensQ: cuQ, cuSeqlensK: cuK } = ragged as RaggedBatch;
  if (!(cuQ instanceof Int32Array) || cuQ.length < 2) {
    throw new TypeError(`ragged.cuSeqlensQ: expected an Int32Array of length b + 1 >= 2, got ${cuQ instanceof Int32Array ? `length ${cuQ.length}` : describe(cuQ)}`);
  }
  checkInt32Array('ragged.cuSeqlensK', cuK, cuQ.length, 'b + 1, the length of ragged.cuSeqlensQ');
  const b = cuQ.length - 1;
  if (cuQ[0] !== 0 || cuK[0] !== 0) throw new RangeError(`ragged: cuSeqlensQ[0] and cuSeqlensK[0] must be 0, got ${cuQ[0]} and ${cuK[0]}`);
  for (let i = 0; i < b; i++) {
    const qLen = cuQ[i + 1] - cuQ[i], kLen = cuK[i + 1] - cuK[i];
    if (qLen < 0 || kLen < 0) {
      throw new RangeError(`ragged: sequence ${i} has cuSeqlensQ [${cuQ[i]}, ${cuQ[i + 1]}) and cuSeqlensK [${cuK[i]}, ${cuK[i + 1]}); prefix sums must not decrease`);
    }
    if (qLen > kLen) {
      throw new RangeError(`ragged: sequence ${i} has ${qLen} queries but ${kLen} keys; its queries are its last tokens, so it needs at least as many keys`);
    }
  }
  if (cuQ[b] !== totalQ) throw new RangeError(`ragged.cuSeqlensQ: the last entry must be the packed query count ${totalQ}, got ${cuQ[b]}`);
  if (totalK !== null && cuK[b] !== totalK) throw new RangeError(`ragged.cuSeqlensK: the last entry must be the packed key count ${totalK}, got ${cuK[b]}`);
  return b;
}

/** The longest sequence of a (checked) ragged batch. */
export function longestSequence(ragged: RaggedBatch): number {
  let longest = 0;
  for (let i = 0; i + 1 < ragged.cuSeqlensK.length; i++) longest = Math.max(longest, ragged.cuSeqlensK[i + 1] - ragged.cuSeqlensK[i]);
  return longest;
}

/** Whether the options ask for per-row ranges (anything beyond a plain causal offset). */
export function hasRowKeys(opts: KeyWindowOptions): boolean {
  return opts.window !== undefined || opts.seqLens !== undefined || opts.ragged !== undefined;
}

/**
 * Resolves the options into per-row ranges for `b * t` rows over `s`
 * positions. Ragged: b = 1 and t = the packed queries; with `packedKeys`
 * (scores, attention) s is the packed key count and the result's `width`
 * the longest sequence; without (top-k, masks over per-sequence positions)
 * s is the row width, which every sequence must fit. Returns null when only a
 * plain causal offset (or nothing) is given: kernels keep their scalar path.
 * Throws, before anything is written, on a window with start > end,
 * end > s or a negative start (naming the row and both bounds), on
 * seqLens that do not fit, and on mismatched prefix sums.
 */
export function resolveRowKeys(opts: KeyWindowOptions, b: number, t: number, s: number, alloc: Alloc, packedKeys = false): RowKeys | null {
  const shortEmpty = checkOneOf('shortSequences', opts.shortSequences ?? 'error', ['error', 'empty'] as const) === 'empty';
  if (shortEmpty && opts.seqLens === undefined) {
    throw new RangeError("shortSequences: 'empty' applies to seqLens (a sequence shorter than its t queries); pass seqLens or drop shortSequences");
  }
  if (!hasRowKeys(opts)) return null;
  const nRows = b * t;
  const offset = opts.causalOffset === undefined ? null : checkInteger('causalOffset', opts.causalOffset);
  if (opts.ragged !== undefined && opts.seqLens !== undefined) {
    throw new RangeError('ragged and seqLens: pass one of them (a ragged batch already gives each sequence its length)');
  }
  if (opts.ragged !== undefined && opts.window !== undefined) {
    throw new RangeError('ragged and window: pass one of them (a window names keys on one axis, a ragged batch numbers them within each sequence)');
  }
  if (opts.ragged !== undefined && offset !== null) {
    throw new RangeError('ragged and causalOffset: a ragged batch is causal by position within each sequence; drop causalOffset');
  }
  const lo = alloc(Int32Array, nRows);
  const hi = alloc(Int32Array, nRows);
  let base: Int32Array | null = null;
  let width = s;
  if (opts.ragged !== undefined) {
    if (b !== 1) throw new RangeError(`ragged: the sequences are packed along one axis, so the batch dimension must be 1, got b = ${b}`);
    const nSeq = checkRagged(opts.ragged, t, packedKeys ? s : null);
    const { cuSeqlensQ: cuQ, cuSeqlensK: cuK } = opts.ragged;
    base = alloc(Int32Array, nRows);
    const longest = longestSequence(opts.ragged);
    if (!packedKeys && longest > s) {
      throw new RangeError(`ragged: the longest sequence has ${longest} keys, more than the ${s} positions per row`);
    }
    width = packedKeys ? longest : s;
    for (let i = 0; i < nSeq; i++) {
      const qLen = cuQ[i + 1] - cuQ[i], kLen = cuK[i + 1] - cuK[i];
      for (let p = 0; p < qLen; p++) {
        const r = cuQ[i] + p;
        base[r] = cuK[i];
        hi[r] = kLen - qLen + p + 1;
      }
    }
  } else if (opts.seqLens !== undefined) {
    const seqLens = checkInt32Array('seqLens', opts.seqLens, b, 'b, one length per sequence');
    const least = shortEmpty ? 0 : t;
    for (let bi = 0; bi < b; bi++) {
      const n = seqLens[bi];
      if (n < least || n > s) {
        const why = shortEmpty
          ? `it holds at most s = ${s} positions`
          : `its ${t} queries are its last tokens, and it holds at most s = ${s} positions; shortSequences: 'empty' lets a shorter one's first queries see no keys`;
        throw new RangeError(`seqLens: sequence ${bi} has length ${n}; expected ${least} <= length <= ${s} (${why})`);
      }
      // A query before the sequence's first token (n - t + ti < 0) sees nothing.
      for (let ti = 0; ti < t; ti++) hi[bi * t + ti] = Math.max(0, n - t + ti + 1);
    }
  } else {
    hi.fill(s);
  }
  if (offset !== null) {
    for (let r = 0; r < nRows; r++) hi[r] = Math.max(0, Math.min(hi[r], (r % t) + offset + 1));
  }
  if (opts.window !== undefined) {
    const w = opts.window as unknown;
    if (typeof w !== 'object' || w === null || !('start' in w) || !('end' in w)) {
      throw new TypeError(`window: expected { start, end } (Int32Arrays of length ${nRows}, one per query row), got ${describe(w)}`);
    }
    const start = checkInt32Array('window.start', (w as KeyWindow).start, nRows, 'one per query row');
    const end = checkInt32Array('window.end', (w as KeyWindow).end, nRows, 'one per query row');
    for (let r = 0; r < nRows; r++) {
      if (start[r] < 0 || start[r] > end[r] || end[r] > s) {
        throw new RangeError(`window: ${rowName(r, t)} has start ${start[r]} and end ${end[r]}; expected 0 <= start <= end <= s = ${s}`);
      }
      lo[r] = start[r];
      hi[r] = Math.min(hi[r], end[r]);
    }
  }
  for (let r = 0; r < nRows; r++) if (hi[r] < lo[r]) hi[r] = lo[r];
  return { lo, hi, base, width };
}
