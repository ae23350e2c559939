/**
 * The pool's worker: loads a kernel registry module once (awaiting its
 * `setup` export, if any, with the pool's `setup` value), then runs named
 * kernels over row ranges of shared buffers. It knows nothing of what the
 * kernels compute.
 */
import { workerData } from 'node:worker_threads';

type Kernel = (args: Record<string, unknown>, rowStart: number, rowEnd: number) => void;

export interface Task {
  registry: string;
  kernel: string;
  args: Record<string, unknown>;
  rowStart: number;
  rowEnd: number;
}

const registries = new Map<string, Promise<Record<string, Kernel>>>();

export default async function runTask(task: Task): Promise<null> {
  let registry = registries.get(task.registry);
  if (!registry) {
    registry = import(task.registry).then(async (m: { kernels: Record<string, Kernel>; setup?: (data: unknown) => unknown }) => {
      await m.setup?.((workerData as { setup: unknown } | null)?.setup ?? null);
      return m.kernels;
    });
    registries.set(task.registry, registry);
  }
  const kernel = (await registry)[task.kernel];
  if (!kernel) throw new Error(`unknown kernel '${task.kernel}' in ${task.registry}`);
  kernel(task.args, task.rowStart, task.rowEnd);
  return null;
}
