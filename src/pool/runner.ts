/**
 * Runs plans (src/plan.ts) on a WorkerPool: each step's rows go to the
 * workers over shared memory, from whichever transport the pool is. Below
 * both `poolApi` (src/parallel.ts) and the areas' `pooled.ts`, which are
 * handed a `PlanRunner` and import only its type from here.
 */
import type { WorkerPool } from './pool.js';
import { runKernel, type KernelTable, type Plan } from '../plan.js';
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

function sharedCopy<T extends TypedArray>(a: T): T {
  const ctor = a.constructor as new (buffer: SharedArrayBuffer, offset: number, length: number) => T;
  const copy = new ctor(new SharedArrayBuffer(a.byteLength), 0, a.length);
  (copy as unknown as { set(src: T): void }).set(a);
  return copy;
}

/**
 * Runs each step of a plan on the pool's workers, over shared memory; a
 * step of one row runs on this thread, from `kernels` (the table the
 * workers load).
 */
export function planRunner(pool: WorkerPool, kernels: KernelTable): PlanRunner {
  return async (plan) => {
    const copies = new Map<TypedArray, TypedArray>();
    for (const step of plan.steps) {
      if (step.rows[1] - step.rows[0] <= 1) {
        // A step of one row cannot be split: it runs here rather than pay a worker's round
        // trip (the same kernel on the same row). Arrays with a shared copy are used through it.
        runKernel({ ...step, args: argsHere(step.args, copies) }, kernels);
      } else {
        const args: Record<string, unknown> = {};
        for (const [name, value] of Object.entries(step.args)) {
          if (ArrayBuffer.isView(value) && !inPlace(value)) {
            let copy = copies.get(value);
            if (!copy) copies.set(value, (copy = sharedCopy(value)));
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
  };
}
