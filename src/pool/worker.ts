/**
 * The pool's worker: loads a kernel registry module once, then runs named
 * kernels over row ranges of shared buffers. It knows nothing of what the
 * kernels compute.
 */
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
    registry = import(task.registry).then((m: { kernels: Record<string, Kernel> }) => m.kernels);
    registries.set(task.registry, registry);
  }
  const kernel = (await registry)[task.kernel];
  if (!kernel) throw new Error(`unknown kernel '${task.kernel}' in ${task.registry}`);
  kernel(task.args, task.rowStart, task.rowEnd);
  return null;
}
