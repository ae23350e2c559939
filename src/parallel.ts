/**
 * The pool's public functions over any transport. Each call validates on
 * this thread exactly as the single-threaded function does, then runs the
 * same kernels over row ranges in the workers, so results are bit-identical.
 * `createPool` builds them on a transport: worker_threads in Node
 * (src/pool/node.ts), Web Workers in browsers (src/pool/browser.ts).
 */
import type { WorkerPool } from './pool/pool.js';
import type { Plan } from './plan.js';
import type { TypedArray } from './tensor.js';
import { maskPoolApi } from './mask/pooled.js';
import { topkPoolApi } from './topk/pooled.js';
import { indexerPoolApi } from './indexer/pooled.js';
import { attentionPoolApi } from './attention/pooled.js';
import { cachePoolApi } from './cache/pooled.js';
import { kernels } from './kernels.js';
import { runKernel } from './plan.js';

/** Runs a plan (built with `allocShared`) on the pool and resolves to its result. */
export type PlanRunner = <R>(plan: Plan<R>) => Promise<R>;

export interface PoolOptions {
  /** Worker threads (default: the machine's available parallelism). */
  threads?: number;
}

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
 * The async versions of the public functions, running their plans on
 * `pool`. Arrays already backed by a SharedArrayBuffer are used in place;
 * others are copied into shared memory (and outputs copied back), which
 * costs a pass.
 */
export function poolApi(pool: WorkerPool) {
  const threads = pool.threads;
  const run = planRunner(pool);
  return {
    threads,
    ...maskPoolApi(run),
    ...topkPoolApi(run),
    ...indexerPoolApi(run),
    ...attentionPoolApi(run),
    ...cachePoolApi(run),
    /** Stops the workers. Calls after close reject. */
    close: () => pool.close(),
  };
}

/** Runs each step of a plan on the pool's workers, over shared memory. */
function planRunner(pool: WorkerPool): PlanRunner {
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

export type DsaPool = ReturnType<typeof poolApi>;
