/**
 * The DSA cache of a decode loop: for each of `batch` sequences, the
 * indexer keys (float32, int8 or DeepSeek's FP8) and the attention kv rows
 * (MLA's latent rows) of every token so far, in pages of `pageSize` tokens
 * reached through a block table (SPEC "Paged cache"). Two layouts:
 *
 * - contiguous (`capacity`): sequence i owns page i of `capacity` tokens;
 * - paged (`pages`, `pageSize` 64 by default): sequences take pages from a
 *   shared pool as they grow and give them back on `reset`.
 *
 * Buffers are allocated once (in SharedArrayBuffer by default, so pool
 * steps read and write them in place) and `append` writes only the new
 * tokens' slots: nothing earlier is copied. A failed append (a full cache, a
 * non-finite key or kv row, a bad shape) changes nothing.
 */
import { allocLocal, allocShared, describe, type Tensor } from '../tensor.js';
import { checkBytes, checkOneOf, checkSame, checkSize, checkTensor } from '../validate.js';
import { QUANT_BLOCK } from '../indexer/quantize.js';
import { FP8_BLOCK, type Fp8Keys, type ScaleFormat, type ScaleRule } from '../indexer/fp8.js';
import { checkKnownOptions } from '../options.js';
import type { QuantizedKeys } from '../indexer/quantized-keys.js';
import type { IndexerKeys } from '../indexer/scores.js';
import { NO_BAD_ROW } from '../mask/check.js';
import { checkKeys, writeTokens } from './append.js';
import { MAX_SLOT } from './slots.js';
import { PageTable, type Reservation } from './page-table.js';

export type { Reservation } from './page-table.js';

export type KeyForm = 'float32' | 'int8' | 'fp8';
/** A cache's score precision: its key form, or 'int7' queries over int8 keys. */
export type CachePrecision = KeyForm | 'int7';

export interface DsaCacheOptions {
  /** Sequences the cache holds (not with pageTable). */
  batch?: number;
  /** Contiguous layout: tokens per sequence. Give this or `pages`. */
  capacity?: number;
  /** Paged layout: pages in the shared pool. */
  pages?: number;
  /** Paged layout: tokens per page (default 64, vLLM's and FlashMLA's). */
  pageSize?: number;
  /** Indexer head dim d (default 128). */
  indexerDim?: number;
  /** How indexer keys are stored: 'fp8' (default, DeepSeek's 132 bytes a token), 'int8' or 'float32'. */
  keyForm?: KeyForm;
  /**
   * The indexer's score precision: the key form's (default), or 'int7' over
   * an int8 cache (queries quantized to 63 levels: relaxed SIMD's i8 x i7 dot
   * where the module has it, the same bits everywhere).
   */
  precision?: CachePrecision;
  /** fp8: act_quant's scale rounding, 'float32' (default) or 'ue8m0'. */
  scaleFormat?: ScaleFormat;
  /**
   * fp8: how a key's scale comes from amax, 'deepseek' (default: times
   * f32(1/448)) or 'vllm' (divided by 448, as vLLM's indexer cache writer:
   * its bytes at d = 128). Queries are quantized DeepSeek's way either way.
   */
  scaleRule?: ScaleRule;
  /** Rotate keys (and so queries) by the Hadamard transform before storing (default true for fp8, false otherwise). */
  hadamard?: boolean;
  /** kv heads hkv (default 1, MLA). */
  kvHeads?: number;
  /** Floats per kv row dqk (default 576: MLA's 512 latent + 64 rope dims). */
  kvDim?: number;
  /** SharedArrayBuffer-backed buffers (default: where the engine has SharedArrayBuffer), used in place by pool steps. */
  shared?: boolean;
  /** Memory guard for the buffers (default: min(4 GiB, half the machine's memory)). */
  maxBytes?: number;
  /**
   * Another cache's `pageTable`, shared (one block table for every layer, as
   * serving engines keep it): the layout (batch, capacity or pages,
   * pageSize) is the table's, so those are not given; this cache holds its
   * own kv and key pages. Caches on one table step together
   * (src/model/model.ts), never one alone.
   */
  pageTable?: PageTable;
}

/** The new tokens of one sequence: its indexer keys (before rotation) and kv rows. */
export interface AppendInputs {
  /** [n, d] Float32Array: the indexer keys of the new tokens (LayerNorm and RoPE applied, not rotated). */
  keys: Tensor<Float32Array>;
  /** [n, hkv, dqk] Float32Array: their kv rows. */
  kv: Tensor<Float32Array>;
}

const CACHE_OPTIONS = [
  'batch', 'capacity', 'pages', 'pageSize', 'indexerDim', 'keyForm', 'precision', 'scaleFormat', 'scaleRule', 'hadamard', 'kvHeads', 'kvDim', 'shared', 'maxBytes', 'pageTable',
] as const;

export class DsaCache {
  readonly batch: number;
  readonly layout: 'contiguous' | 'paged';
  readonly pageSize: number;
  readonly numPages: number;
  /** Blocks per sequence in the block table. */
  readonly maxBlocks: number;
  readonly d: number;
  readonly keyForm: KeyForm;
  /** The indexer's score precision: `keyForm`, or 'int7' over int8 keys. */
  readonly precision: CachePrecision;
  readonly scaleFormat: ScaleFormat;
  /** fp8: how key scales come from amax ('deepseek' or 'vllm'). */
  readonly scaleRule: ScaleRule;
  readonly hadamard: boolean;
  readonly hkv: number;
  readonly dqk: number;
  readonly shared: boolean;
  /** Int32Array [batch]: tokens per sequence. Read it; only the cache writes it. */
  readonly lengths: Int32Array;
  /** [batch, maxBlocks] Int32Array: the page of each block of each sequence (entries past a sequence's blocks are unused). */
  readonly blockTable: Tensor<Int32Array>;
  /** The indexer keys in pages, in the form `indexerScores` takes with `blockTable`. */
  readonly keys: IndexerKeys;
  /** [numPages, pageSize, hkv, dqk] Float32Array: the kv rows in pages, as `sparseAttention` takes them (indices = physical slots). */
  readonly kv: Tensor<Float32Array>;
  /** Lengths, block table and free pages: this cache's own, or one shared with other layers' caches (`pageTable` option). */
  readonly pageTable: PageTable;
  /** A step is using the reserved slots: no other may reserve until it ends. */
  private busy = false;
  private scratch: Float32Array;
  private flag: Int32Array;

  constructor(opts: DsaCacheOptions) {
    if (typeof opts !== 'object' || opts === null) throw new TypeError(`createDsaCache: expected options { batch, capacity | pages, ... }, got ${describe(opts)}`);
    checkKnownOptions('createDsaCache', opts, CACHE_OPTIONS);
    const table = opts.pageTable;
    if (table !== undefined) {
      if (!(table instanceof PageTable)) throw new TypeError(`pageTable: expected another cache's pageTable, got ${describe(table)}`);
      for (const name of ['batch', 'capacity', 'pages', 'pageSize'] as const) {
        if (opts[name] !== undefined) throw new RangeError(`${name}: a cache on a shared pageTable takes its layout (batch, capacity or pages, pageSize) from the table; give none of them`);
      }
    } else {
      checkSize('batch', opts.batch);
      if ((opts.capacity === undefined) === (opts.pages === undefined)) {
        throw new RangeError(`createDsaCache: give capacity (tokens per sequence, contiguous) or pages (a shared pool of pages), got ${opts.capacity === undefined ? 'neither' : 'both'}`);
      }
    }
    this.d = checkSize('indexerDim', opts.indexerDim ?? 128);
    this.keyForm = checkOneOf('keyForm', opts.keyForm ?? 'fp8', ['float32', 'int8', 'fp8'] as const);
    this.precision = checkOneOf('precision', opts.precision ?? this.keyForm, ['float32', 'int8', 'int7', 'fp8'] as const);
    if (this.precision !== this.keyForm && !(this.precision === 'int7' && this.keyForm === 'int8')) {
      throw new RangeError(`precision: keyForm '${this.keyForm}' scores in precision '${this.keyForm}'${this.keyForm === 'int8' ? " or 'int7'" : ''}, got '${this.precision}'`);
    }
    this.scaleFormat = checkOneOf('scaleFormat', opts.scaleFormat ?? 'float32', ['float32', 'ue8m0'] as const);
    this.scaleRule = checkOneOf('scaleRule', opts.scaleRule ?? 'deepseek', ['deepseek', 'vllm'] as const);
    if (this.scaleRule !== 'deepseek' && this.keyForm !== 'fp8') throw new RangeError(`scaleRule: only keyForm 'fp8' takes a scale rule, got keyForm '${this.keyForm}'`);
    const hadamard = opts.hadamard ?? this.keyForm === 'fp8';
    if (typeof hadamard !== 'boolean') throw new TypeError(`hadamard: expected a boolean, got ${describe(hadamard)}`);
    if (hadamard && (this.d & (this.d - 1)) !== 0) throw new RangeError(`hadamard: needs indexerDim a power of 2, got ${this.d}`);
    this.hadamard = hadamard;
    if (this.keyForm === 'fp8' && this.d > FP8_BLOCK) throw new RangeError(`keyForm 'fp8': needs indexerDim <= ${FP8_BLOCK} (one scale per key), got ${this.d}`);
    this.hkv = checkSize('kvHeads', opts.kvHeads ?? 1);
    this.dqk = checkSize('kvDim', opts.kvDim ?? 576);
    this.shared = opts.shared ?? typeof SharedArrayBuffer !== 'undefined';
    if (typeof this.shared !== 'boolean') throw new TypeError(`shared: expected a boolean, got ${describe(this.shared)}`);
    if (table !== undefined) {
      if (table.shared !== this.shared) throw new RangeError(`shared: the pageTable's arrays are ${table.shared ? '' : 'not '}in shared memory; give shared: ${table.shared} (or leave it out where that is the default)`);
      this.batch = table.batch;
      this.layout = table.layout;
      this.pageSize = table.pageSize;
      this.numPages = table.numPages;
      this.maxBlocks = table.maxBlocks;
    } else if (opts.capacity !== undefined) {
      this.batch = opts.batch!;
      this.layout = 'contiguous';
      this.pageSize = checkSize('capacity', opts.capacity);
      this.numPages = this.batch;
      this.maxBlocks = 1;
      if (opts.pageSize !== undefined) throw new RangeError('pageSize: only the paged layout (pages) takes a page size; a contiguous sequence is one region of capacity tokens');
    } else {
      this.batch = opts.batch!;
      this.layout = 'paged';
      this.numPages = checkSize('pages', opts.pages);
      this.pageSize = checkSize('pageSize', opts.pageSize ?? 64);
      this.maxBlocks = this.numPages;
    }
    if (this.keyForm === 'fp8' && (this.pageSize * this.d) % 4 !== 0) {
      throw new RangeError(`pageSize: the FP8 page layout needs pageSize * indexerDim a multiple of 4 (float32 scales after the codes), got ${this.pageSize} * ${this.d}`);
    }
    const slots = this.numPages * this.pageSize;
    if (slots > MAX_SLOT + 1) {
      const what = this.layout === 'paged' ? `pages * pageSize = ${this.numPages} * ${this.pageSize}` : `batch * capacity = ${this.batch} * ${this.pageSize}`;
      throw new RangeError(`createDsaCache: ${what} = ${slots} slots; expected at most ${MAX_SLOT + 1} (slots are int32)`);
    }
    const nb = Math.ceil(this.d / QUANT_BLOCK);
    const keyBytes = this.keyForm === 'float32' ? this.d * 4 : this.keyForm === 'int8' ? this.d + nb * 4 : this.d + 4;
    checkBytes(`a DSA cache of ${slots} slots`, slots * (keyBytes + this.hkv * this.dqk * 4), opts.maxBytes, 'use fewer pages or a smaller capacity, or an fp8 key form');
    const alloc = this.shared ? allocShared : allocLocal;
    const d = this.d;
    if (this.keyForm === 'float32') this.keys = { data: alloc(Float32Array, slots * d), shape: [this.numPages, this.pageSize, d] };
    else if (this.keyForm === 'int8') {
      this.keys = {
        values: { data: alloc(Int8Array, slots * d), shape: [this.numPages, this.pageSize, d] },
        scales: { data: alloc(Float32Array, slots * nb), shape: [this.numPages, this.pageSize, nb] },
      } satisfies QuantizedKeys;
    } else {
      this.keys = { data: alloc(Uint8Array, slots * (d + 4)), shape: [this.numPages, this.pageSize, d + 4], hadamard: this.hadamard, scaleFormat: this.scaleFormat, scaleRule: this.scaleRule } satisfies Fp8Keys;
    }
    this.kv = { data: alloc(Float32Array, slots * this.hkv * this.dqk), shape: [this.numPages, this.pageSize, this.hkv, this.dqk] };
    this.pageTable = table ?? new PageTable(this.batch, this.layout, this.pageSize, this.numPages, this.shared, alloc);
    this.pageTable.join();
    this.lengths = this.pageTable.lengths;
    this.blockTable = this.pageTable.blockTable;
    this.scratch = alloc(Float32Array, 0);
    this.flag = alloc(Int32Array, 1);
  }

  /** Tokens held by sequence `seq`. */
  length(seq: number): number {
    return this.lengths[this.checkSeq('seq', seq)];
  }

  /** Pages not held by any sequence (paged); 0 for the contiguous layout. */
  freePages(): number {
    return this.pageTable.freePages();
  }

  /** Tokens sequence `seq` can still take. */
  room(seq: number): number {
    return this.pageTable.room(seq);
  }

  checkSeq(name: string, seq: unknown): number {
    if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0 || seq >= this.batch) {
      throw new RangeError(`${name}: expected a sequence in [0, ${this.batch}), got ${describe(seq)}`);
    }
    return seq;
  }

  /** Throws unless no step is using the cache; then marks it in use until `release`. */
  acquire(): void {
    if (this.busy) throw new Error('DsaCache: a step is already running on this cache; await it before the next (steps on one cache run one at a time)');
    this.busy = true;
  }

  release(): void {
    this.busy = false;
  }

  /** Reserves slots for n more tokens of each listed sequence (PageTable's `reserve`: nothing committed). */
  reserve(seqs: Int32Array, n: number): Reservation[] {
    return this.pageTable.reserve(seqs, n);
  }

  /** Makes reserved tokens part of their sequences: lengths grow, reserved pages leave the free pool. */
  commit(reservations: Reservation[]): void {
    this.pageTable.commit(reservations);
  }

  /** Empties sequence `seq` (of every cache on its page table): its length becomes 0 and (paged) its pages return to the pool. */
  reset(seq: number): void {
    this.pageTable.checkSeq('seq', seq);
    if (this.busy) throw new Error('DsaCache: a step is running on this cache; reset after it ends');
    this.pageTable.reset(seq);
  }

  /** The arguments of the append kernels (src/cache/append.ts) for tokens whose keys and kv rows are in `keys` / `kvIn`. */
  appendArgs(keys: Float32Array, kvIn: Float32Array, slots: Int32Array, firstBad: Int32Array) {
    const k = this.keys as Tensor<Float32Array> & QuantizedKeys & Fp8Keys;
    return {
      keys, kvIn, slots, d: this.d, rowWidth: this.hkv * this.dqk, form: this.keyForm, hadamard: this.hadamard,
      ue8m0: this.scaleFormat === 'ue8m0', vllmScale: this.scaleRule === 'vllm', pageSize: this.pageSize, firstBad, kv: this.kv.data,
      keysF32: this.keyForm === 'float32' ? k.data : null,
      keysI8: this.keyForm === 'int8' ? k.values.data : null,
      scalesI8: this.keyForm === 'int8' ? k.scales.data : null,
      keysFp8: this.keyForm === 'fp8' ? k.data : null,
    };
  }

  /**
   * Appends n tokens to sequence `seq`: keys [n, d] (rotated and quantized
   * here into the cache's form) and kv [n, hkv, dqk]. Only the new slots are
   * written. Throws, changing nothing, when they do not fit, when a key or a
   * kv row holds NaN or Infinity (naming tensor, token, head, dim and value),
   * or on a bad shape.
   */
  append(seq: number, inputs: AppendInputs): void {
    const s = this.checkSeq('seq', seq);
    const [n, d] = checkTensor('keys', inputs?.keys, Float32Array, ['n', 'd']);
    checkSame('append', d, 'keys d', this.d, 'the cache indexerDim');
    const [nkv, hkv, dqk] = checkTensor('kv', inputs.kv, Float32Array, ['n', 'hkv', 'dqk']);
    checkSame('append', nkv, 'kv n', n, 'keys n');
    checkSame('append', hkv, 'kv hkv', this.hkv, 'the cache kvHeads');
    checkSame('append', dqk, 'kv dqk', this.dqk, 'the cache kvDim');
    this.acquire();
    try {
      const [reservation] = this.reserve(Int32Array.of(s), n);
      const firstBad = this.flag;
      firstBad[0] = NO_BAD_ROW;
      const args = this.appendArgs(inputs.keys.data, inputs.kv.data, reservation.slots, firstBad);
      checkKeys(args, 0, n);
      checkKeys({ keys: inputs.kv.data, d: hkv * dqk, firstBad }, 0, n);
      if (firstBad[0] !== NO_BAD_ROW) throw nonFiniteToken(firstBad[0], this.tokenRows(inputs.keys.data, 'kv', inputs.kv));
      writeTokens(args, 0, n);
      this.commit([reservation]);
    } finally {
      this.release();
    }
  }

  /**
   * The rows a token must hold finite values in, in the order the refusal
   * looks: its key, then its kv row. A NaN in a stored kv row or key would
   * poison every later step that selects it, so neither is ever stored.
   */
  tokenRows(keys: Float32Array, kvName: string, kv: Tensor<Float32Array>): TokenRows[] {
    const [, hkv, dqk] = kv.shape;
    const keyWhy = this.keyForm === 'float32'
      ? 'the cache stores only finite keys, since a non-finite one would poison every later step that selects it'
      : `an ${this.keyForm} cache quantizes keys and cannot store a non-finite one`;
    return [
      { name: 'keys', data: keys, width: this.d, headDim: 0, why: keyWhy },
      { name: kvName, data: kv.data, width: hkv * dqk, headDim: dqk, why: 'the cache stores only finite kv rows, since a non-finite one would poison every later step that selects it' },
    ];
  }

  /** A reusable float buffer of at least `length` elements (the step's scores), grown by doubling. */
  workspace(length: number): Float32Array {
    if (this.scratch.length < length) {
      const size = Math.max(length, 2 * this.scratch.length);
      this.scratch = (this.shared ? allocShared : allocLocal)(Float32Array, size);
    }
    return this.scratch.subarray(0, length);
  }
}

/** One tensor of new tokens' rows that must be finite, for the refusal's message. */
export interface TokenRows {
  name: string;
  data: Float32Array;
  /** Values per token. */
  width: number;
  /** Values per head (the message names `head, dim`), or 0: no heads (`dim`). */
  headDim: number;
  /** Why a non-finite value is refused. */
  why: string;
}

/**
 * The RangeError for the first non-finite value of token `row`, looked for
 * in each tensor in turn: names the tensor, the token, its head and dim,
 * and the value.
 */
export function nonFiniteToken(row: number, tensors: TokenRows[]): RangeError {
  for (const { name, data, width, headDim, why } of tensors) {
    for (let e = 0; e < width; e++) {
      const value = data[row * width + e];
      if (Number.isFinite(value)) continue;
      const at = headDim === 0 ? `dim ${e}` : `head ${Math.floor(e / headDim)}, dim ${e % headDim}`;
      return new RangeError(`${name}: token ${row}, ${at} is ${value}; ${why} (nothing was appended)`);
    }
  }
  return new RangeError(`token ${row}: expected finite values, got a non-finite one (nothing was appended)`);
}

/**
 * Creates a DSA cache (see DsaCache): `{ batch, capacity }` for contiguous
 * sequences or `{ batch, pages, pageSize }` for a paged pool; indexer keys
 * in `keyForm` (default 'fp8'), kv rows [hkv, dqk] (default [1, 576]). An
 * option it does not take is a TypeError naming it.
 */
export function createDsaCache(opts: DsaCacheOptions): DsaCache {
  return new DsaCache(opts);
}
