// Helpers shared by the benchmark scripts in bench/: command-line flags,
// seeded data, medians, result checks, MiB figures and the results folder.
import { writeFileSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { allocShared, type Tensor } from '../src/tensor.js';
import { rng } from '../src/cli/demo-data.js';
import { topk } from '../src/topk/topk.js';
import { simdBuild } from '../src/simd/index.js';

const argv = process.argv.slice(2);

/** Whether `--name` is on the command line. */
export const flag = (name: string): boolean => argv.includes(`--${name}`);

/** The word after `--name` on the command line, if any. */
export function option(name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : undefined;
}

/** mulberry32, the demo's generator: the same numbers in [0, 1) on every run for a seed. */
export { rng };

/** Seeded values in [-1, 1) in a SharedArrayBuffer (the pool reads them in place). */
export function sharedFloats(shape: number[], seed: number): Tensor<Float32Array> {
  const next = rng(seed);
  const data = allocShared(Float32Array, shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = next() * 2 - 1;
  return { data, shape };
}

/** The upper median (the middle of an odd count). */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Max abs difference over the first `n` values relative to the largest
 * |reference| value; throws over `tol` with `${label}: ${differs}: ...`.
 */
export function checkClose(label: string, got: ArrayLike<number>, want: ArrayLike<number>, n: number, tol: number, differs: string, value: string): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < n; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  const rel = err / scale;
  if (!(rel <= tol)) throw new Error(`${label}: ${differs}: max abs err ${err} (${rel} of max |${value}|)`);
  return rel;
}

export function bitIdentical(label: string, a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) throw new Error(`${label}: not bit-identical at ${i}: ${a[i]} vs ${b[i]}`);
}

/** Bytes to whole MiB. */
export const mib = (bytes: number): number => Math.round(bytes / 2 ** 20);

/** This process's peak RSS so far, in whole MiB. */
export const peakRssMiB = (): number => mib(process.resourceUsage().maxRSS * 1024);

/** The machine line of a results file: CPU model, cores, Node version, the SIMD build this thread (and the pool's workers) run. */
export const machine = (): string => `${cpus()[0]?.model ?? 'unknown'}, ${cpus().length} cores, Node ${process.versions.node}, ${simdBuild() ?? 'TypeScript'} SIMD module`;

/** Writes `text` to bench/results/<file>, making the folder if missing. */
export function writeResults(file: string, text: string): void {
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL(file, dir), text);
}

/** Runs `run` with console.log and console.warn silenced (packages that print adverts on start-up). */
export async function quietly<T>(run: () => Promise<T>): Promise<T> {
  const log = console.log, warn = console.warn;
  console.log = console.warn = () => {};
  try {
    return await run();
  } finally {
    console.log = log;
    console.warn = warn;
  }
}

/** Mean over the t rows of |top-k(a) ∩ top-k(b)| / k, k = min(topK, s), for scores [t, s]. */
export function recall(a: Float32Array, b: Float32Array, t: number, s: number, topK: number): number {
  const k = Math.min(topK, s);
  const ia = topk({ data: a, shape: [1, t, s] }, k).indices.data;
  const ib = topk({ data: b, shape: [1, t, s] }, k).indices.data;
  const mark = new Int32Array(s).fill(-1);
  let common = 0;
  for (let r = 0; r < t; r++) {
    for (let i = 0; i < k; i++) mark[ia[r * k + i]] = r;
    for (let i = 0; i < k; i++) if (mark[ib[r * k + i]] === r) common++;
  }
  return common / (t * k);
}
