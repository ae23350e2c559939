/**
 * dsa-ts: DeepSeek Sparse Attention on typed arrays. This entry runs in Node
 * and in browsers; the worker pool is `dsa-ts/pool` (worker_threads in Node,
 * Web Workers in browsers: the package's `browser` condition).
 */
export { DEFAULT_MASK_VALUE, int64ToInt32, wordsPerRow, allocShared } from './tensor.js';
export type { Tensor, TypedArray, MaskForm, MaskData } from './tensor.js';
export { generateMask, maskFromThreshold, combineMasks, causalMask, windowMask } from './interop/index.js';
export type { KeyWindow, KeyWindowOptions, RaggedBatch } from './window.js';
export type { GenerateMaskOptions, ThresholdMaskOptions, MaskBlockOptions } from './mask/masks.js';
export { verifyMask } from './interop/index.js';
export type { VerifyMaskOptions, MaskDifference } from './mask/verify.js';
export { denseAttention } from './interop/index.js';
export { sparseAttention } from './interop/index.js';
export type { AttentionOptions, AttentionResult } from './attention/inputs.js';
export type { SparseAttentionOptions, SparseAttentionResult } from './attention/sparse.js';
export { dsaForward, dsaForwardDense } from './interop/index.js';
export type { DsaAttentionInputs, DsaForwardOptions, DsaForwardResult } from './attention/forward.js';
export { topk } from './interop/index.js';
export type { TopkOptions, TopkResult } from './topk/topk.js';
export { indexerScores } from './interop/index.js';
export type { IndexerScoresOptions } from './indexer/scores.js';
export { simdSupported, initSimd, simdBuild, relaxedSimdSupported } from './simd/index.js';
export type { InitSimdOptions, SimdBuild } from './simd/index.js';
export { lightningIndexer } from './interop/index.js';
export type { IndexerWeights, IndexerInputs, KeyCache, LightningIndexerOptions, LightningIndexerResult } from './indexer/module.js';
export { quantizeKeys, quantizeKeysFp8 } from './interop/index.js';
export type { QuantizedKeys, QuantizeKeysOptions, QuantizeKeysFp8Options } from './indexer/quantized-keys.js';
export { e4m3Encode, e4m3Decode, E4M3_VALUES } from './indexer/fp8.js';
export type { Fp8Keys, ScaleFormat, ScaleRule } from './indexer/fp8.js';
export type { IndexerKeys } from './indexer/scores.js';
export { parseNpyHeader, encodeNpyHeader, decodeNpy } from './io/npy.js';
export { encodeNpy } from './interop/index.js';
export type { NpyDtype, NpyHeader } from './io/npy.js';
export { DsaCache } from './cache/cache.js';
export { createDsaCache } from './interop/index.js';
export type { InteropDsaCache } from './interop/index.js';
export type { DsaCacheOptions, AppendInputs, KeyForm, CachePrecision } from './cache/cache.js';
export { decodeStep, prefill } from './interop/index.js';
export type { StepInputs, StepOptions, StepResult, PrefillInputs, PrefillOptions } from './cache/step.js';
export { pagedSlots } from './interop/index.js';
export type { PagedSlotsOptions } from './cache/slots.js';
export { shareWeights } from './interop/index.js';
export { isOrtTensor, isTfTensor, fromEcosystem, toEcosystem } from './interop/index.js';
export type { OrtTensorLike, TfTensorLike, EcosystemTensor, OrtModuleLike, TfModuleLike, OutputModule, OutputOption } from './interop/index.js';
export { parseSafetensorsHeader, openSafetensors, safetensorsReader, encodeSafetensors, bytesSource, blobSource, SafetensorsError, SAFETENSORS_DTYPES } from './io/safetensors.js';
export type { SafetensorsArrayConstructor, SafetensorsDtype, SafetensorsTensor, SafetensorsHeader, SafetensorsEntry, SafetensorsReader, ByteSource, SafetensorsErrorCode } from './io/safetensors.js';
export { parseModelConfig, ConfigError } from './model/config.js';
export type { ModelConfig, Fp8QuantConfig, DsaModelType } from './model/config.js';
export { openCheckpoint, CheckpointError, layerWeightBytes } from './model/checkpoint.js';
export type { Checkpoint, CheckpointSource, CheckpointFile, LoadLayerOptions, LayerTensor, CheckpointErrorCode } from './model/checkpoint.js';
export type { MlaConfig, MlaLayerWeights, IndexerLayerWeights } from './model/types.js';
export type { Weight, WeightFormat, Float32Weight, Bf16Weight, Fp8Weight } from './weights/weight.js';
export { compareSelections } from './interop/index.js';
export { summarizeComparison, VERDICTS, PRECISIONS } from './compare/selections.js';
export type { CompareOptions, CompareTolerance, CompareInputs, CompareSelectionsResult, CompareSummary, Verdict, Precision } from './compare/selections.js';
