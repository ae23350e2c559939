/**
 * Every GPU program by the plan kernel it runs: the WebGPU runner's table,
 * as src/kernels.ts is the pool's. A kernel missing here is refused by name.
 */
import type { ProgramTable } from './program.js';
import { maskPrograms } from './programs/mask.js';
import { maskRulePrograms } from './programs/mask-rules.js';
import { topkPrograms } from './programs/topk.js';
import { indexerPrograms } from './programs/indexer.js';
import { attentionPrograms } from './programs/attention.js';

export const programs: ProgramTable = {
  ...maskPrograms,
  ...maskRulePrograms,
  ...topkPrograms,
  ...indexerPrograms,
  ...attentionPrograms,
};
