/**
 * Where each public function takes and returns tensors, and what dtype each
 * needs: the one table the interop wrapper reads (src/interop/wrap.ts), so
 * no function of the library knows about other runtimes. A `Slot` says what
 * may stand at a position: a tensor `{ data, shape }` of a need, a bare
 * typed array (given as a rank-1 tensor: seqLens, window bounds, attnSink),
 * or a plain object whose named fields are slots (inputs, options, results).
 */
import type { Need } from './ecosystem.js';

export interface Slot {
  /** A `{ data, shape }` tensor of this need. */
  readonly tensor?: Need;
  /** A bare typed array of this need (an ecosystem tensor of rank 1 gives its data). */
  readonly array?: Need;
  /** With `array`: a tensor of any rank gives its data (a stored weight's codes [out, in], whose shape sits beside them). */
  readonly flat?: boolean;
  /** With `array`, on a GPU op: a GPU tensor here stays on the GPU as a GpuTensor (FP8 keys' bytes, which the GPU ops take there). */
  readonly gpu?: boolean;
  /** A plain object: these fields are slots (a field absent from the value is skipped). */
  readonly fields?: Readonly<Record<string, Slot>>;
}

export interface Signature {
  /** Each positional argument: its name (for messages) and slot; null where no tensor can stand. */
  readonly args: readonly (readonly [string, Slot | null])[];
  /** The position of the options object, which takes `output`; null: the function has none. */
  readonly options: number | null;
  /** The tensors of the result (awaited for async ones); null: it returns none, so `output` is refused. */
  readonly result: Slot | null;
}

const tensor = (need: Need): Slot => ({ tensor: need });
const array = (need: Need): Slot => ({ array: need });
const fields = (f: Record<string, Slot>): Slot => ({ fields: f });

const f32 = tensor('float32');
const i32 = tensor('int32');
const mask = tensor('mask');

/** KeyWindowOptions: the forms serving engines give the keys each row sees in. */
const keyWindow = {
  window: fields({ start: array('int32'), end: array('int32') }),
  seqLens: array('int32'),
  ragged: fields({ cuSeqlensQ: array('int32'), cuSeqlensK: array('int32') }),
};

/** IndexerKeys / KeyCache: float32 keys, quantizeKeys' { values, scales }, or FP8 keys (their bytes a bare array). */
const keys: Slot = { tensor: 'float32', fields: { values: tensor('int8'), scales: f32, data: { array: 'uint8', gpu: true } } };
/** The same as a result: float32 keys or { values, scales }; FP8 keys stay as they are (their bytes are not a tensor). */
const keysResult: Slot = { tensor: 'float32', fields: { values: tensor('int8'), scales: f32 } };

const weights = fields({ wqB: f32, wk: f32, kNormWeight: f32, kNormBias: f32, weightsProj: f32 });
const indexerInputs = fields({ x: f32, qr: f32, kCache: keys });
const indexerOptions = { ropeFreqs: array('float32'), mask };
const indexerResult = fields({ scores: f32, values: f32, indices: i32, keys: keysResult, mask });
const attentionOptions = { attnSink: array('float32') };
const sparseOptions = fields({ ...attentionOptions, topkLength: array('int32'), window: keyWindow.window, ragged: keyWindow.ragged });
const attentionResult = fields({ out: f32, lse: f32, maxLogits: f32 });
const stepInputs = fields({ x: f32, qr: f32, q: f32, kv: f32, seqs: array('int32') });
const stepOptions = fields({ ropeFreqs: array('float32'), attnSink: array('float32') });
const topkResult = fields({ values: f32, indices: i32 });
const maskOptions = fields({});
/** A stored Weight { format, shape, data, scale? }: its data and scale also as tensors of any rank. */
const storedWeight = fields({ data: { array: 'any', flat: true }, scale: { array: 'float32', flat: true } });

/** A signature whose options position stays a literal type (the wrapper's types put `output` there). */
const sig = <const O extends number | null>(args: Signature['args'], options: O, result: Slot | null): Signature & { readonly options: O } => ({ args, options, result });

/** The CPU functions of `dsa-ts` (and, with the same arguments, the pool's and the GPU's). */
export const SIGNATURES = {
  generateMask: sig([['indices', i32], ['s', null], ['opts', fields(keyWindow)]], 2, mask),
  maskFromThreshold: sig([['scores', f32], ['topkValues', f32], ['opts', maskOptions]], 2, mask),
  combineMasks: sig([['a', mask], ['b', mask], ['opts', maskOptions]], 2, mask),
  causalMask: sig([['b', null], ['t', null], ['s', null], ['offset', null], ['form', null], ['opts', maskOptions]], 5, mask),
  windowMask: sig([['b', null], ['t', null], ['s', null], ['keys', fields(keyWindow)], ['form', null], ['opts', maskOptions]], 5, mask),
  verifyMask: sig([['mask', mask], ['indices', i32], ['s', null], ['options', maskOptions]], 3, null),
  denseAttention: sig([['q', f32], ['kv', f32], ['mask', mask], ['opts', fields(attentionOptions)]], 3, attentionResult),
  sparseAttention: sig([['q', f32], ['kv', f32], ['indices', i32], ['opts', sparseOptions]], 3, attentionResult),
  dsaForward: sig(
    [['weights', weights], ['inputs', indexerInputs], ['attention', fields({ q: f32, kv: f32 })], ['opts', fields({ indexer: fields(indexerOptions) })]],
    3,
    fields({ out: f32, lse: f32, indexer: indexerResult }),
  ),
  dsaForwardDense: sig(
    [['weights', weights], ['inputs', indexerInputs], ['attention', fields({ q: f32, kv: f32 })], ['opts', fields({ indexer: fields(indexerOptions) })]],
    3,
    fields({ out: f32, lse: f32, indexer: indexerResult, mask }),
  ),
  topk: sig([['scores', f32], ['k', null], ['opts', fields({ ...keyWindow, mask })]], 2, topkResult),
  indexerScores: sig([['q', f32], ['k', keys], ['w', f32], ['opts', fields({ ...keyWindow, blockTable: i32 })]], 3, f32),
  lightningIndexer: sig([['weights', weights], ['inputs', indexerInputs], ['opts', fields(indexerOptions)]], 2, indexerResult),
  quantizeKeys: sig([['k', f32], ['opts', fields({})]], 1, fields({ values: tensor('int8'), scales: f32 })),
  quantizeKeysFp8: sig([['k', f32], ['opts', fields({})]], 1, null),
  decodeStep: sig([['weights', weights], ['cache', null], ['inputs', stepInputs], ['opts', stepOptions]], 3, fields({ out: f32, lse: f32, indices: i32 })),
  prefill: sig([['weights', weights], ['cache', null], ['seq', null], ['inputs', fields({ x: f32, qr: f32, q: f32, kv: f32 })], ['opts', stepOptions]], 4, fields({ out: f32, lse: f32 })),
  pagedSlots: sig([['indices', i32], ['blockTable', i32], ['pageSize', null], ['opts', fields({ seqLens: array('int32') })]], 3, i32),
  shareWeights: sig([['weights', weights]], null, null),
  linear: sig([['x', f32], ['w', storedWeight], ['opts', fields({})]], 2, f32),
  mlaDecodeStep: sig(
    [['cache', null], ['layer', null], ['inputs', fields({ x: f32, seqs: array('int32') })], ['opts', fields({ indices: i32, attnSink: array('float32') })]],
    3,
    fields({ out: f32, indices: i32, lse: f32, latent: f32 }),
  ),
  mlaPrefill: sig(
    [['cache', null], ['layer', null], ['seq', null], ['inputs', fields({ x: f32 })], ['opts', fields({ attnSink: array('float32') })]],
    4,
    fields({ out: f32, indices: i32, lse: f32 }),
  ),
  encodeNpy: sig([['tensor', tensor('any')], ['dtype', null]], null, null),
  compareSelections: sig(
    [['a', tensor('index')], ['b', tensor('index')], ['opts', fields({ scores: tensor('float'), inputs: fields({ q: f32, k: f32, w: f32 }) })]],
    2,
    null,
  ),
  shareWeight: sig([['w', storedWeight]], null, null),
  quantizeWeightFp8: sig([['w', f32]], null, null),
} as const satisfies Record<string, Signature>;

/** `DsaCache.append(seq, { keys, kv })`, which the wrapped `createDsaCache` gives its caches. */
export const APPEND_SIGNATURE = sig([['seq', null], ['inputs', fields({ keys: f32, kv: f32 })]], null, null);

/** The ops of `createPool()`: the CPU functions of the same names. */
export const POOL_SIGNATURES = {
  generateMask: SIGNATURES.generateMask,
  maskFromThreshold: SIGNATURES.maskFromThreshold,
  combineMasks: SIGNATURES.combineMasks,
  causalMask: SIGNATURES.causalMask,
  windowMask: SIGNATURES.windowMask,
  topk: SIGNATURES.topk,
  indexerScores: SIGNATURES.indexerScores,
  lightningIndexer: SIGNATURES.lightningIndexer,
  denseAttention: SIGNATURES.denseAttention,
  sparseAttention: SIGNATURES.sparseAttention,
  dsaForward: SIGNATURES.dsaForward,
  dsaForwardDense: SIGNATURES.dsaForwardDense,
  decodeStep: SIGNATURES.decodeStep,
  prefill: SIGNATURES.prefill,
  pagedSlots: SIGNATURES.pagedSlots,
  linear: SIGNATURES.linear,
  mlaDecodeStep: SIGNATURES.mlaDecodeStep,
  mlaPrefill: SIGNATURES.mlaPrefill,
} as const satisfies Record<string, Signature>;

/**
 * The ops of `createGpu()`. Their GpuTensor arguments pass through (a class
 * instance is never looked into); with `resident: true` the results are
 * GpuTensors, or with `output` the runtime's GPU tensors (docs/interop.md,
 * "GPU hand-over").
 */
export const GPU_SIGNATURES = {
  generateMask: SIGNATURES.generateMask,
  maskFromThreshold: SIGNATURES.maskFromThreshold,
  combineMasks: SIGNATURES.combineMasks,
  causalMask: SIGNATURES.causalMask,
  windowMask: SIGNATURES.windowMask,
  topk: SIGNATURES.topk,
  indexerScores: SIGNATURES.indexerScores,
  indexerTopk: sig([['q', f32], ['k', keys], ['w', f32], ['topK', null], ['o', fields({ ...keyWindow, mask, blockTable: i32 })]], 4, topkResult),
  sparseAttention: SIGNATURES.sparseAttention,
  upload: sig([['tensor', tensor('any')]], null, null),
} as const satisfies Record<string, Signature>;

/**
 * The exports of `dsa-ts` that take and give no tensor, and why, so a test
 * can check that every public function is in one table or the other.
 */
export const NO_TENSORS: Readonly<Record<string, string>> = {
  DEFAULT_MASK_VALUE: 'a constant',
  VERDICTS: 'a constant',
  PRECISIONS: 'a constant',
  createDsaModel: 'stored weights and options in, a model object out (its steps take { data, shape } tensors; ecosystem tensors not yet)',
  loadDsaModel: 'a checkpoint in, a model object out',
  computesTopk: 'a config and a layer index in, a boolean out',
  DsaModel: 'the class',
  SyncDsaModel: 'the class',
  PooledDsaModel: 'the class',
  PageTable: 'the class (sequence lengths and block tables, no tensors)',
  WEIGHT_BLOCK: 'a constant',
  checkWeight: 'a stored Weight (not a tensor) in, its shape out',
  dequantizeWeight: 'a stored Weight in, a bare Float32Array out (a test helper)',
  isWeight: 'a predicate',
  toBf16: 'a bare Float32Array in, bf16 bit patterns out',
  bf16Bits: 'a number in, a number out',
  bf16Value: 'a number in, a number out',
  checkMlaLayer: 'a layer of stored weights (Weight objects, not tensors) in, its sizes out',
  mlaRopeFrequencies: 'a config in, a frequency table out',
  mlaScale: 'a config in, a number out',
  mlaPreparedBytes: 'a layer of stored weights in, a byte count out',
  ropeFrequencies: 'numbers in, a frequency table out',
  mlaSoftmaxScale: 'numbers in, a number out',
  shareMlaWeights: 'stored weights (Weight objects, not tensors) in and out',
  E4M3_VALUES: 'a constant',
  int64ToInt32: 'the explicit int64 helper over a bare BigInt64Array (an int64 ort tensor goes straight where int32 indices go)',
  wordsPerRow: 'a size',
  allocShared: 'an allocator',
  simdSupported: 'no tensors',
  initSimd: 'no tensors',
  simdBuild: 'no tensors',
  relaxedSimdSupported: 'no tensors',
  e4m3Encode: 'numbers',
  e4m3Decode: 'numbers',
  parseNpyHeader: 'bytes',
  encodeNpyHeader: 'a dtype and a shape',
  decodeNpy: 'bytes in; its tensor out goes to a runtime with toEcosystem (it has no options object for output)',
  DsaCache: 'the class; createDsaCache gives its caches an append that takes ecosystem tensors',
  createDsaCache: 'wrapped by hand: its result is a cache whose append converts (src/interop/index.ts)',
  summarizeComparison: 'a comparison result in, a summary out',
  weightBytes: 'a size',
  openCheckpoint: 'files and bytes in; its layers are stored weights',
  parseModelConfig: 'JSON in',
  ConfigError: 'an error class',
  CheckpointError: 'an error class',
  layerWeightBytes: 'a size',
  parseSafetensorsHeader: 'bytes',
  openSafetensors: 'bytes and files; tensors it reads are { dtype, shape, data }',
  safetensorsReader: 'bytes and files',
  encodeSafetensors: "named tensors with a safetensors dtype ({ dtype, shape, data }: pass an ort tensor's .data with its dtype)",
  bytesSource: 'bytes',
  blobSource: 'a Blob',
  SafetensorsError: 'an error class',
  SAFETENSORS_DTYPES: 'a constant',
  isOrtTensor: 'the interop helpers themselves',
  isTfTensor: 'the interop helpers themselves',
  fromEcosystem: 'the interop helpers themselves',
  toEcosystem: 'the interop helpers themselves',
};
