/**
 * A plan is what a public function turns its validated arguments into: a
 * list of kernel steps over row ranges and a `finish` that assembles the
 * result. The same plan runs on this thread (`runPlan`) or on the worker pool
 * (`createPool`), so both paths share the validation and the kernels and give
 * bit-identical results.
 */
import type { TypedArray } from './tensor.js';

export type KernelArg = TypedArray | number | string | boolean | null;
export type KernelArgs = Record<string, KernelArg>;

/** A kernel: reads `args`, writes the rows `[rowStart, rowEnd)` of its outputs, allocates nothing. */
export type Kernel = (args: KernelArgs, rowStart: number, rowEnd: number) => void;

/**
 * Kernels by name. A runner is handed the table it runs from: each area's
 * synchronous functions pass their own (`<area>/kernels.ts`), the pool's
 * workers load the union of them all (src/kernels.ts).
 */
export type KernelTable = Readonly<Record<string, Kernel>>;

export interface Step {
  /** A name in the runner's kernel table. */
  kernel: string;
  args: KernelArgs;
  /** Rows to run, `[start, end)`; the pool splits them across workers. */
  rows: [number, number];
  /** The names of the args the kernel writes; the rest are read only. */
  writes: readonly string[];
  /** Whether the rows can be split across workers (default true). */
  splittable?: boolean;
}

export interface Plan<R> {
  steps: Step[];
  finish(): R;
}

export function runKernel(step: Step, kernels: KernelTable, rowStart = step.rows[0], rowEnd = step.rows[1]): void {
  const kernel = kernels[step.kernel];
  if (!kernel) throw new Error(`unknown kernel '${step.kernel}'`);
  kernel(step.args, rowStart, rowEnd);
}

/** Runs every step of a plan on this thread, from `kernels`, and returns its result. */
export function runPlan<R>(plan: Plan<R>, kernels: KernelTable): R {
  for (const step of plan.steps) runKernel(step, kernels);
  return plan.finish();
}
