/**
 * The public functions taking ONNX Runtime and tfjs tensors wherever they
 * take `{ data, shape }`, and giving results in either runtime's kind with
 * `output: ort` / `output: tf` (docs/interop.md). Each is the function of
 * its area with the interop wrapper around it; `src/index.ts` exports these.
 */
import { generateMask as generateMaskPlain, maskFromThreshold as maskFromThresholdPlain, combineMasks as combineMasksPlain, causalMask as causalMaskPlain, windowMask as windowMaskPlain } from '../mask/masks.js';
import { verifyMask as verifyMaskPlain } from '../mask/verify.js';
import { denseAttention as denseAttentionPlain } from '../attention/dense.js';
import { sparseAttention as sparseAttentionPlain } from '../attention/sparse.js';
import { dsaForward as dsaForwardPlain, dsaForwardDense as dsaForwardDensePlain } from '../attention/forward.js';
import { topk as topkPlain } from '../topk/topk.js';
import { indexerScores as indexerScoresPlain } from '../indexer/scores.js';
import { lightningIndexer as lightningIndexerPlain, shareWeights as shareWeightsPlain } from '../indexer/module.js';
import { quantizeKeys as quantizeKeysPlain, quantizeKeysFp8 as quantizeKeysFp8Plain } from '../indexer/quantized-keys.js';
import { decodeStep as decodeStepPlain, prefill as prefillPlain } from '../cache/step.js';
import { pagedSlots as pagedSlotsPlain } from '../cache/slots.js';
import { createDsaCache as createDsaCachePlain, type AppendInputs, type DsaCache, type DsaCacheOptions } from '../cache/cache.js';
import { encodeNpy as encodeNpyPlain } from '../io/npy.js';
import { linear as linearPlain } from '../weights/linear.js';
import { shareWeight as shareWeightPlain, quantizeWeightFp8 as quantizeWeightFp8Plain } from '../weights/weight.js';
import { compareSelections as compareSelectionsPlain } from '../compare/selections.js';
import { mlaDecodeStep as mlaDecodeStepPlain, mlaPrefill as mlaPrefillPlain } from '../model/mla.js';
import { APPEND_SIGNATURE, SIGNATURES as S } from './signatures.js';
import { withInterop, type EcoIn } from './wrap.js';

export { isOrtTensor, isTfTensor, fromEcosystem, toEcosystem } from './ecosystem.js';
export type { OrtTensorLike, TfTensorLike, EcosystemTensor, OrtModuleLike, TfModuleLike, OutputModule, Need } from './ecosystem.js';
export type { OutputOption, EcoIn, Interop } from './wrap.js';

export const generateMask = withInterop('generateMask', generateMaskPlain, S.generateMask);
export const maskFromThreshold = withInterop('maskFromThreshold', maskFromThresholdPlain, S.maskFromThreshold);
export const combineMasks = withInterop('combineMasks', combineMasksPlain, S.combineMasks);
export const causalMask = withInterop('causalMask', causalMaskPlain, S.causalMask);
export const windowMask = withInterop('windowMask', windowMaskPlain, S.windowMask);
export const verifyMask = withInterop('verifyMask', verifyMaskPlain, S.verifyMask);
export const denseAttention = withInterop('denseAttention', denseAttentionPlain, S.denseAttention);
export const sparseAttention = withInterop('sparseAttention', sparseAttentionPlain, S.sparseAttention);
export const dsaForward = withInterop('dsaForward', dsaForwardPlain, S.dsaForward);
export const dsaForwardDense = withInterop('dsaForwardDense', dsaForwardDensePlain, S.dsaForwardDense);
export const topk = withInterop('topk', topkPlain, S.topk);
export const indexerScores = withInterop('indexerScores', indexerScoresPlain, S.indexerScores);
export const lightningIndexer = withInterop('lightningIndexer', lightningIndexerPlain, S.lightningIndexer);
export const quantizeKeys = withInterop('quantizeKeys', quantizeKeysPlain, S.quantizeKeys);
export const quantizeKeysFp8 = withInterop('quantizeKeysFp8', quantizeKeysFp8Plain, S.quantizeKeysFp8);
export const decodeStep = withInterop('decodeStep', decodeStepPlain, S.decodeStep);
export const prefill = withInterop('prefill', prefillPlain, S.prefill);
export const pagedSlots = withInterop('pagedSlots', pagedSlotsPlain, S.pagedSlots);
export const shareWeights = withInterop('shareWeights', shareWeightsPlain, S.shareWeights);
export const encodeNpy = withInterop('encodeNpy', encodeNpyPlain, S.encodeNpy);
export const linear = withInterop('linear', linearPlain, S.linear);
export const shareWeight = withInterop('shareWeight', shareWeightPlain, S.shareWeight);
export const quantizeWeightFp8 = withInterop('quantizeWeightFp8', quantizeWeightFp8Plain, S.quantizeWeightFp8);
export const compareSelections = withInterop('compareSelections', compareSelectionsPlain, S.compareSelections);
export const mlaDecodeStep = withInterop('mlaDecodeStep', mlaDecodeStepPlain, S.mlaDecodeStep);
export const mlaPrefill = withInterop('mlaPrefill', mlaPrefillPlain, S.mlaPrefill);

/** A DsaCache whose `append` also takes ecosystem tensors (the same instance: it is still a DsaCache). */
export type InteropDsaCache = DsaCache & { append(seq: number, inputs: EcoIn<AppendInputs>): void };

/**
 * `createDsaCache`, whose cache's `append(seq, { keys, kv })` also takes
 * ort/tf tensors: the instance gets an own `append` that converts them and
 * calls the class's.
 */
export function createDsaCache(opts: DsaCacheOptions): InteropDsaCache {
  const cache = createDsaCachePlain(opts);
  const append = cache.append;
  Object.defineProperty(cache, 'append', {
    value: withInterop('append', append as (seq: number, inputs: AppendInputs) => void, APPEND_SIGNATURE),
    writable: true,
    configurable: true,
  });
  return cache as InteropDsaCache;
}
