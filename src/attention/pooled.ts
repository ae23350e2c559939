import type { PlanRunner } from '../parallel.js';

/** The async versions of this area's public functions, for `createPool`. */
export function attentionPoolApi(run: PlanRunner) {
  void run;
  return {};
}
