import type { PlanRunner } from '../parallel.js';

/** The async versions of this area's public functions, for `createPool`. */
export function indexerPoolApi(run: PlanRunner) {
  void run;
  return {};
}
