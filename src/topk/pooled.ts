import type { PlanRunner } from '../parallel.js';

/** The async versions of this area's public functions, for `createPool`. */
export function topkPoolApi(run: PlanRunner) {
  void run;
  return {};
}
