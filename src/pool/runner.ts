/**
 * Runs plans (src/plan.ts) on a WorkerPool: each step's rows go to the
 * workers over shared memory, from whichever transport the pool is. Below
 * both `poolApi` (src/parallel.ts) and the areas' `pooled.ts`, which are
 * handed a `PlanRunner` and import only its type from here.
 */
import type { WorkerPool } from './pool.js';
import type { Staging } from './staging.js';
import { runKernel, type KernelTable, type Plan, type Step } from '../plan.js';
import type { TypedArray } from '../tensor.js';

/** Runs a plan (built with `allocShared`) on the pool and resolves to its result. */
export type PlanRunner = <R>(plan: Plan<R>) => Promise<R>;

/**
 * Whether the workers can use `a` in place: it is backed by a
 * SharedArrayBuffer, or this realm has none (a browser page that is not
 * cross-origin isolated), where the pool runs on this thread.
 */
function inPlace(a: TypedArray): boolean {
  return typeof SharedArrayBuffer === 'undefined' || a.buffer instanceof SharedArrayBuffer;
}

/** A step's args for a kernel run on this thread: arrays an earlier pool step wrote through a shared copy are read from that copy. */
function argsHere(args: Record<string, unknown>, copies: Map<TypedArray, TypedArray>): Record<string, never> {
  const here: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(args)) here[name] = ArrayBuffer.isView(value) ? copies.get(value as TypedArray) ?? value : value;
  return here as Record<string, never>;
}

/** A step of one row cannot be split: it runs on this thread rather than pay a worker's round trip. */
const onThisThread = (step: Step): boolean => step.rows[1] - step.rows[0] <= 1;

/** Staged arrays start on a cache line, so two of them never share one between workers. */
const ALIGN = 64;

/**
 * Where each array the workers cannot use in place goes in one staging
 * buffer: its byte offset, and the bytes of them all.
 */
function stagingLayout(steps: readonly Step[]): { offsets: Map<TypedArray, number>; bytes: number } {
  const offsets = new Map<TypedArray, number>();
  let bytes = 0;
  for (const step of steps) {
    if (onThisThread(step)) continue;
    for (const value of Object.values(step.args)) {
      if (ArrayBuffer.isView(value) && !inPlace(value) && !offsets.has(value)) {
        offsets.set(value, bytes);
        bytes += Math.ceil(value.byteLength / ALIGN) * ALIGN;
      }
    }
  }
  return { offsets, bytes };
}

function stagedCopy<T extends TypedArray>(a: T, buffer: SharedArrayBuffer, offset: number): T {
  const ctor = a.constructor as new (buffer: SharedArrayBuffer, offset: number, length: number) => T;
  const copy = new ctor(buffer, offset, a.length);
  (copy as unknown as { set(src: T): void }).set(a);
  return copy;
}

/**
 * Runs each step of a plan on the pool's workers, over shared memory; a
 * step of one row runs on this thread, from `kernels` (the table the
 * workers load). Arrays not backed by a SharedArrayBuffer are copied into
 * a buffer taken from `staging` for the call (each when a worker step
 * first uses it), and the ones a step writes are copied back after it;
 * the buffer is given back when the call settles, so its results never
 * alias staging.
 */
export function planRunner(pool: WorkerPool, kernels: KernelTable, staging: Staging): PlanRunner {
  return async (plan) => {
    const { offsets, bytes } = stagingLayout(plan.steps);
    const buffer = bytes > 0 ? staging.take(bytes) : null;
    try {
      const copies = new Map<TypedArray, TypedArray>();
      for (const step of plan.steps) {
        if (onThisThread(step)) {
          // The same kernel on the same row; arrays with a staged copy are used through it.
          runKernel({ ...step, args: argsHere(step.args, copies) }, kernels);
        } else {
          const args: Record<string, unknown> = {};
          for (const [name, value] of Object.entries(step.args)) {
            if (ArrayBuffer.isView(value) && !inPlace(value)) {
              let copy = copies.get(value);
              if (!copy) copies.set(value, (copy = stagedCopy(value, buffer!, offsets.get(value)!)));
              args[name] = copy;
            } else {
              args[name] = value;
            }
          }
          await pool.runRows(step.kernel, args, step.rows[0], step.rows[1], step.splittable ?? true);
        }
        for (const name of step.writes) {
          const original = step.args[name] as TypedArray;
          const copy = copies.get(original);
          if (copy) (original as unknown as { set(src: TypedArray): void }).set(copy);
        }
      }
      return plan.finish();
    } finally {
      // runRows settles only when every chunk has, so no worker still uses the buffer.
      if (buffer) staging.give(buffer);
    }
  };
}
