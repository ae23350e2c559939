import type { KernelTable } from '../plan.js';
import { fillOutside, scoresFp8Ts, scoresFp8Wasm, scoresInt7Ts, scoresInt7Wasm, scoresInt8Ts, scoresInt8Wasm, scoresTs, scoresWasm } from './scores-kernels.js';
import { quantizeKeysFp8Rows, quantizeQueriesFp8 } from './fp8-kernels.js';
import { prepareRows, projectionRows } from './projection.js';

export const indexerKernels: KernelTable = {
  'indexer.scoresWasm': scoresWasm,
  'indexer.scoresTs': scoresTs,
  'indexer.scoresInt8Wasm': scoresInt8Wasm,
  'indexer.scoresInt8Ts': scoresInt8Ts,
  'indexer.scoresInt7Wasm': scoresInt7Wasm,
  'indexer.scoresInt7Ts': scoresInt7Ts,
  'indexer.scoresFp8Wasm': scoresFp8Wasm,
  'indexer.scoresFp8Ts': scoresFp8Ts,
  'indexer.fillOutside': fillOutside,
  'indexer.fp8.queries': quantizeQueriesFp8,
  'indexer.fp8.keys': quantizeKeysFp8Rows,
  'indexer.projections': projectionRows,
  'indexer.prepare': prepareRows,
};
