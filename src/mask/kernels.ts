import type { KernelTable } from '../plan.js';
import { scatterAdditive, scatterBool, scatterBits } from './scatter.js';
import { broadcastMask } from './broadcast.js';
import { checkIndices } from './check.js';
import { thresholdAdditive, thresholdBool, thresholdBits, thresholdReference } from './threshold.js';
import { causalAdditive, causalBool, causalBits } from './causal.js';
import { combineAdditive, combineBool, combineBits } from './combine.js';

export const maskKernels: KernelTable = {
  'mask.scatter.additive': scatterAdditive,
  'mask.scatter.bool': scatterBool,
  'mask.scatter.bits': scatterBits,
  'mask.broadcast': broadcastMask,
  'mask.indices.check': checkIndices,
  'mask.threshold.additive': thresholdAdditive,
  'mask.threshold.bool': thresholdBool,
  'mask.threshold.bits': thresholdBits,
  'mask.threshold.reference': thresholdReference,
  'mask.causal.additive': causalAdditive,
  'mask.causal.bool': causalBool,
  'mask.causal.bits': causalBits,
  'mask.combine.additive': combineAdditive,
  'mask.combine.bool': combineBool,
  'mask.combine.bits': combineBits,
};
