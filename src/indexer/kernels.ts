import type { Kernel } from '../plan.js';
import { scoresInt8Ts, scoresInt8Wasm, scoresTs, scoresWasm } from './scores-kernels.js';

export const indexerKernels: Record<string, Kernel> = {
  'indexer.scoresWasm': scoresWasm,
  'indexer.scoresTs': scoresTs,
  'indexer.scoresInt8Wasm': scoresInt8Wasm,
  'indexer.scoresInt8Ts': scoresInt8Ts,
};
