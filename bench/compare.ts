// Benchmark of the `dsa compare` target: two selections of [1, 1024, 131072]
// float32 scores (512 MiB) at k = 2048 compared in at most 2x the time of
// reading the score file once. Run: npm run bench:compare [-- --smoke] [--reps 9]
//
// Inputs (seeded, in a temporary folder): the scores, uniform in [-1, 1); `a`, their exact
// top-k (the library's sorted topk, descending); `b`, the same keys in reverse slot order
// (as another backend would order them), and in every 16th row the k-th key swapped for
// the (k+1)-th: a near-tie, within --abs 1e-3. Measured in one run, interleaved, medians of
// --reps (the file in the page cache after a warm-up):
//
//   readBlocks   reading the score file once, 4 MiB blocks into one reused buffer (the CLI's
//                block size; the floor the target names)
//   readWhole    the same bytes in one read into one reused buffer of the file's size
//   copyMemory   the same bytes copied from memory in 4 MiB blocks into a reused buffer: what
//                reading them costs once no file is involved
//   cli          `dsa compare --a --b --scores --abs 1e-3` in this process (runCli: no start-up)
//   inMemory     compareSelections on the scores held in memory (a Float32Array), SIMD path
//   typescript   the same with simd: false (the TypeScript pass), fewer reps
//   process      the command as a child process (node --import tsx src/cli/main.ts), against a
//                child that only reads the file with the same loader (start-up on both sides)
//
// Every run is checked: the exit code, the verdict counts (no row different, each swapped row
// a near-tie, every other row equal as sets), and the in-memory results of both paths equal
// field by field. Results: bench/results/compare.json (not written by --smoke).
import { spawnSync } from 'node:child_process';
import { closeSync, fstatSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NpyWriter } from '../src/io/npy-file.js';
import { runCli } from '../src/cli/program.js';
import { topk } from '../src/topk/topk.js';
import { compareSelections, VERDICTS, type CompareSelectionsResult } from '../src/compare/selections.js';
import { flag, machine, median, option, rng, writeResults } from './common.js';

const smoke = flag('smoke');
const t = smoke ? 32 : 1024;
const s = smoke ? 4096 : 131072;
const k = smoke ? 64 : 2048;
const reps = Number(option('reps') ?? (smoke ? 1 : 9));
const every = 16;
const abs = 1e-3;
const root = fileURLToPath(new URL('../', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'dsa-bench-compare-'));
const paths = { scores: join(work, 'scores.npy'), a: join(work, 'a.npy'), b: join(work, 'b.npy'), reader: join(work, 'read.ts') };
let sink = 0;

const timed = async (f: () => unknown): Promise<number> => {
  const start = performance.now();
  await f();
  return performance.now() - start;
};

/** Writes the inputs; returns the scores, a and b in memory, and how many rows were swapped. */
function makeInputs(): { scores: Float32Array; a: Int32Array; b: Int32Array; swapped: number } {
  const next = rng(20261208);
  const scores = new Float32Array(t * s);
  for (let i = 0; i < scores.length; i++) scores[i] = next() * 2 - 1;
  const a = new Int32Array(t * k), b = new Int32Array(t * k);
  const block = 64;
  let swapped = 0;
  for (let t0 = 0; t0 < t; t0 += block) {
    const n = Math.min(block, t - t0);
    const top = topk({ data: scores.subarray(t0 * s, (t0 + n) * s), shape: [1, n, s] }, k + 1).indices.data;
    for (let r = 0; r < n; r++) {
      const row = t0 + r;
      const sorted = top.subarray(r * (k + 1), (r + 1) * (k + 1));
      a.set(sorted.subarray(0, k), row * k);
      for (let i = 0; i < k; i++) b[row * k + i] = sorted[k - 1 - i];
      if (row % every === every - 1) {
        b[row * k] = sorted[k]; // the k-th key (b's slot 0 after the reversal) out, the (k+1)-th in
        swapped++;
      }
    }
  }
  const save = (path: string, dtype: 'float32' | 'int32', data: Float32Array | Int32Array, width: number) => {
    const w = NpyWriter.create(path, dtype, [1, t, width]);
    w.write(data);
    w.commit();
  };
  save(paths.scores, 'float32', scores, s);
  save(paths.a, 'int32', a, k);
  save(paths.b, 'int32', b, k);
  return { scores, a, b, swapped };
}

/** Every row equal as sets but the swapped ones, near-ties (or ties, where the k-th and (k+1)-th scores are equal). */
function checkCounts(counts: Record<string, number>, swapped: number, what: string): void {
  const ok = counts.identical === 0 && counts.sets === t - swapped && counts.ties + counts.nearTies === swapped && counts.different === 0;
  if (!ok || VERDICTS.some((v) => !(v in counts))) throw new Error(`${what}: verdicts ${JSON.stringify(counts)}, expected ${t - swapped} sets and ${swapped} near-ties or ties`);
}

function sameResults(x: CompareSelectionsResult, y: CompareSelectionsResult): void {
  for (const name of ['verdict', 'threshold', 'gap', 'margin', 'keysA', 'keysB'] as const) {
    const p = x[name], q = y[name];
    for (let i = 0; i < p.length; i++) if (!Object.is(p[i], q[i])) throw new Error(`SIMD and TypeScript paths differ: ${name}[${i}] ${p[i]} vs ${q[i]}`);
  }
  for (const name of ['slot', 'key', 'side', 'score', 'tolerance'] as const) {
    const p = x.first[name], q = y.first[name];
    for (let i = 0; i < p.length; i++) if (!Object.is(p[i], q[i])) throw new Error(`SIMD and TypeScript paths differ: first.${name}[${i}] ${p[i]} vs ${q[i]}`);
  }
}

function readFile(buf: Uint8Array): void {
  const fd = openSync(paths.scores, 'r');
  const size = fstatSync(fd).size;
  for (let o = 0; o < size; o += buf.length) sink += readSync(fd, buf, 0, Math.min(buf.length, size - o), o);
  closeSync(fd);
}

function child(args: string[], what: string): { ms: number; stdout: string } {
  const start = performance.now();
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 24 });
  const ms = performance.now() - start;
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return { ms, stdout: r.stdout };
}

try {
  const { scores, a, b, swapped } = makeInputs();
  const bytes = statSync(paths.scores).size;
  const block = new Uint8Array(4 << 20);
  const whole = new Uint8Array(bytes);
  const inMemory = new Uint8Array(scores.buffer, scores.byteOffset, scores.byteLength);
  const cliArgs = ['compare', '--a', paths.a, '--b', paths.b, '--scores', paths.scores, '--abs', String(abs), '--json', '-'];
  const cli = async () => {
    let out = '';
    const code = await runCli(cliArgs, { out: (x) => void (out += x), err: (x) => void (out += x), isTTY: false });
    if (code !== 0) throw new Error(`dsa compare exited ${code}: ${out.slice(0, 500)}`);
    return out;
  };
  const scoreTensor = { data: scores, shape: [1, t, s] };
  const compare = (simd: boolean) => compareSelections({ data: a, shape: [1, t, k] }, { data: b, shape: [1, t, k] }, { scores: scoreTensor, tolerance: { abs }, simd });

  // Warm-up (page cache, JIT) and the checks.
  readFile(block);
  const json = JSON.parse(await cli()) as { summary: { counts: Record<string, number> } };
  checkCounts(json.summary.counts, swapped, 'dsa compare');
  const fast = compare(true);
  checkCounts(fast.summary.counts, swapped, 'compareSelections');
  sameResults(fast, compare(false));

  const runs = { readBlocks: [] as number[], readWhole: [] as number[], copyMemory: [] as number[], cli: [] as number[], inMemory: [] as number[], typescript: [] as number[] };
  for (let i = 0; i < reps; i++) {
    runs.readBlocks.push(await timed(() => readFile(block)));
    runs.cli.push(await timed(cli));
    runs.readWhole.push(await timed(() => readFile(whole)));
    runs.copyMemory.push(await timed(() => {
      for (let o = 0; o < inMemory.length; o += block.length) block.set(inMemory.subarray(o, Math.min(o + block.length, inMemory.length)));
      sink += block[0];
    }));
    runs.inMemory.push(await timed(() => compare(true)));
    if (i < Math.min(reps, 3)) runs.typescript.push(await timed(() => compare(false)));
  }

  // Whole commands, start-up included: the CLI against a process that only reads the file, both through tsx.
  writeFileSync(paths.reader, `import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
const fd = openSync(process.argv[2], 'r'), size = fstatSync(fd).size, buf = new Uint8Array(4 << 20);
for (let o = 0; o < size; o += buf.length) readSync(fd, buf, 0, Math.min(buf.length, size - o), o);
closeSync(fd);\n`);
  const processes = { compare: [] as number[], read: [] as number[] };
  for (let i = 0; i < Math.min(reps, 5); i++) {
    processes.read.push(child(['--import', 'tsx', paths.reader, paths.scores], 'read process').ms);
    const r = child(['--import', 'tsx', join(root, 'src/cli/main.ts'), ...cliArgs], 'dsa compare (process)');
    checkCounts((JSON.parse(r.stdout) as { summary: { counts: Record<string, number> } }).summary.counts, swapped, 'dsa compare (process)');
    processes.compare.push(r.ms);
  }

  const m = Object.fromEntries(Object.entries(runs).map(([name, xs]) => [name, median(xs)])) as Record<keyof typeof runs, number>;
  const floor = m.readBlocks;
  const result = {
    date: new Date().toISOString(), machine: machine(), smoke, shape: [1, t, s], k, scoreBytes: bytes, swappedRows: swapped, reps,
    medianMs: m,
    minMs: Object.fromEntries(Object.entries(runs).map(([name, xs]) => [name, Math.min(...xs)])),
    runsMs: runs,
    ratioToReadBlocks: { cli: m.cli / floor, inMemory: m.inMemory / floor, typescript: m.typescript / floor, readWhole: m.readWhole / floor, copyMemory: m.copyMemory / floor },
    ratioToReadWhole: { cli: m.cli / m.readWhole, inMemory: m.inMemory / m.readWhole },
    process: { compareMs: median(processes.compare), readMs: median(processes.read), ratio: median(processes.compare) / median(processes.read), extraMs: median(processes.compare) - median(processes.read) },
    target: { ratio: 2, met: m.cli <= 2 * floor },
  };
  const f = (x: number) => x.toFixed(1);
  console.log(`dsa compare, [1, ${t}, ${s}] float32 scores (${(bytes / 2 ** 20).toFixed(0)} MiB), k = ${k}, ${swapped} near-tie rows; medians of ${reps} (${machine()})`);
  console.log(`  read the file once, 4 MiB blocks   ${f(m.readBlocks)} ms`);
  console.log(`  read the file once, one read       ${f(m.readWhole)} ms (${(m.readWhole / floor).toFixed(2)}x)`);
  console.log(`  copy the same bytes in memory      ${f(m.copyMemory)} ms (${(m.copyMemory / floor).toFixed(2)}x)`);
  console.log(`  dsa compare (in process)           ${f(m.cli)} ms = ${(m.cli / floor).toFixed(2)}x the read (target <= 2x: ${result.target.met ? 'met' : 'not met'})`);
  console.log(`  compareSelections, scores in memory ${f(m.inMemory)} ms (${(m.inMemory / floor).toFixed(2)}x); simd: false ${f(m.typescript)} ms (${(m.typescript / floor).toFixed(2)}x)`);
  console.log(`  as processes (start-up included): dsa compare ${f(result.process.compareMs)} ms, a process reading the file ${f(result.process.readMs)} ms ` +
    `(${result.process.ratio.toFixed(2)}x, ${f(result.process.extraMs)} ms more)`);
  if (!smoke) writeResults('compare.json', JSON.stringify({ ...result, sink }, null, 2) + '\n');
} finally {
  rmSync(work, { recursive: true, force: true });
}
