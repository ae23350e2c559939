import type { KernelTable } from '../plan.js';
import { scoresInt7Ts, scoresInt7Wasm, scoresInt8Ts, scoresInt8Wasm, scoresTs, scoresWasm } from './scores-kernels.js';

export const indexerKernels: KernelTable = {
  'indexer.scoresWasm': scoresWasm,
  'indexer.scoresTs': scoresTs,
  'indexer.scoresInt8Wasm': scoresInt8Wasm,
  'indexer.scoresInt8Ts': scoresInt8Ts,
  'indexer.scoresInt7Wasm': scoresInt7Wasm,
  'indexer.scoresInt7Ts': scoresInt7Ts,
};
