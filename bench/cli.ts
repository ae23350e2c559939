// Benchmark of the `dsa` CLI's targets. Run: npm run bench:cli [-- --smoke] [--skip-demo] [--skip-bits] [--reps 5]
//
//   demo   `dsa demo` with its defaults, wall time of the whole command (child process)
//   bits   `dsa mask --form bits --causal-offset 0` at t = s = 131072, k = 2048 (int32
//          indices, 1 GiB): peak RSS (GNU time, or the child's own maxRSS), wall time,
//          and numpy loads the 2 GiB result and checks sampled rows against its own
//          broadcast definition
//   check  `dsa check` on a 512 MiB additive mask [1, 8192, 16384] (in this process)
//          against the floor, reading the same file in 4 MiB blocks on this thread (the
//          CLI's block size; faster here than 32 MiB or one big read); also reading the mask
//          and the indices (all that check reads), the mask read by two threads (this one and
//          a worker, started beforehand: the machine's floor, with the worker's start-up time
//          reported apart), and the peer numpy np.load (timed inside Python); medians of
//          --reps, ratios to the floor. And as whole commands, start-up included: the
//          compiled `node bin/dsa.js check` (when dist/ is built) against a Node process that
//          only reads the file the same way, and Python's np.load as a process
// Inputs are seeded; every run is verified (check must print ok). JSON goes to
// bench/results/cli.json (cli.smoke.tmp for --smoke).
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NpyWriter } from '../src/io/npy-file.js';
import { runCli } from '../src/cli/program.js';
import { rng } from '../src/cli/demo-data.js';
import { median } from './common.js';
import { Worker } from 'node:worker_threads';

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const option = (name: string, fallback: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const smoke = flag('--smoke');
const reps = Number(option('--reps', smoke ? '1' : '5'));
const root = fileURLToPath(new URL('../', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'dsa-bench-cli-'));
const cli = [process.execPath, '--import', 'tsx', join(root, 'src/cli/main.ts')];
const GiB = 1024 ** 3;
let sink = 0;

/**
 * Reads bytes [from, to) of a file in 4 MiB blocks on a worker thread each
 * time `go()` is called, while the caller reads its own part: the two-thread
 * floor. `started` is the worker's start-up time (not part of any read).
 */
async function readerThread(path: string, from: number, to: number): Promise<{ go(): void; done(): void; started: number; close(): Promise<number> }> {
  const flags = new Int32Array(new SharedArrayBuffer(8));
  const body = `const { workerData: w } = require('node:worker_threads'); const fs = require('node:fs');
const f = new Int32Array(w.flags.buffer); const fd = fs.openSync(w.path, 'r'); const buf = Buffer.alloc(4 << 20);
Atomics.store(f, 1, 1); Atomics.notify(f, 1);
for (;;) { Atomics.wait(f, 0, 0); if (Atomics.load(f, 0) === 2) break;
  for (let o = w.from; o < w.to; o += buf.length) fs.readSync(fd, buf, 0, Math.min(buf.length, w.to - o), o);
  Atomics.store(f, 0, 0); Atomics.store(f, 1, 1); Atomics.notify(f, 1); }
fs.closeSync(fd);`;
  const start = performance.now();
  const worker = new Worker(body, { eval: true, workerData: { flags, path, from, to } });
  Atomics.wait(flags, 1, 0, 10_000);
  const started = performance.now() - start;
  return {
    started,
    go() {
      Atomics.store(flags, 1, 0);
      Atomics.store(flags, 0, 1);
      Atomics.notify(flags, 0);
    },
    done() {
      Atomics.wait(flags, 1, 0, 10_000);
    },
    async close() {
      Atomics.store(flags, 0, 2);
      Atomics.notify(flags, 0);
      return worker.terminate();
    },
  };
}

function run(args: string[], what: string): { ms: number; stdout: string; stderr: string } {
  const start = performance.now();
  const r = spawnSync(args[0], args.slice(1), { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 });
  const ms = performance.now() - start;
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${r.stderr}`);
  return { ms, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Causal top-k-like indices: row ti holds k distinct keys of [0, ti] in
 * random order (all of them, then -1 padding, when ti < k), as top-k gives.
 */
function writeIndices(path: string, t: number, k: number, seed: number): void {
  const next = rng(seed);
  const w = NpyWriter.create(path, 'int32', [1, t, k]);
  const block = 1024;
  const buf = new Int32Array(block * k);
  const taken = new Uint8Array(t);
  for (let t0 = 0; t0 < t; t0 += block) {
    const n = Math.min(block, t - t0);
    for (let r = 0; r < n; r++) {
      const ti = t0 + r;
      const row = buf.subarray(r * k, (r + 1) * k);
      if (ti < k) {
        for (let i = 0; i < k; i++) row[i] = i <= ti ? i : -1;
        continue;
      }
      for (let i = 0; i < k; i++) {
        let j: number;
        do j = Math.floor(next() * (ti + 1));
        while (taken[j]);
        taken[j] = 1;
        row[i] = j;
      }
      for (let i = 0; i < k; i++) taken[row[i]] = 0;
    }
    w.write(buf.subarray(0, n * k));
  }
  w.commit();
}

function numpy(code: string): string {
  const r = spawnSync('python3', ['-c', `import numpy as np, time\n${code}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
  return r.stdout.trim();
}

const results: Record<string, unknown> = { date: new Date().toISOString(), smoke, node: process.version };

try {
  // demo
  if (!flag('--skip-demo')) {
    const args = smoke ? ['--threads', '1', '--t', '16', '--s', '512', '--k', '64', '--h', '4', '--d', '16', '--sweep', '256,512', '--sweep-rows', '4'] : [];
    const r = run([...cli, 'demo', ...args, '--report', join(work, 'report.html'), '--json', join(work, 'demo.json')], 'dsa demo');
    const total = /total: ([0-9.]+) (m?s)/.exec(r.stdout);
    results.demo = { wallMs: r.ms, pipelineMs: total ? Number(total[1]) * (total[2] === 's' ? 1000 : 1) : null, table: r.stdout };
    console.log(r.stdout);
    console.log(`demo: ${(r.ms / 1000).toFixed(1)} s wall (target <= 60 s)`);
  }

  // bits mask at t = s = 131072
  if (!flag('--skip-bits')) {
    const n = smoke ? 4096 : 131072;
    const k = smoke ? 64 : 2048;
    const idx = join(work, 'bits-idx.npy');
    const out = join(work, 'bits.npy');
    writeIndices(idx, n, k, 7);
    const timeBin = existsSync('/usr/bin/time') ? ['/usr/bin/time', '-v'] : [];
    const r = run([...timeBin, ...cli, 'mask', '--indices', idx, '--seq-len', String(n), '--form', 'bits', '--causal-offset', '0', '--out', out], 'dsa mask --form bits');
    const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
    const rssBytes = rss ? Number(rss[1]) * 1024 : null;
    const verdict = numpy(`m = np.load(${JSON.stringify(out)}, mmap_mode='r'); idx = np.load(${JSON.stringify(idx)}, mmap_mode='r')
s = ${n}; ok = m.dtype == np.uint32 and m.shape == (1, s, (s + 31) // 32)
for r in [0, 1, ${k - 1}, ${k}, s // 2, s - 1]:
    want = (np.arange(s) == idx[0, r][:, None]).any(0) & (np.arange(s) <= r)   # numpy's broadcast definition, causal
    got = np.unpackbits(np.ascontiguousarray(m[0, r]).view(np.uint8), bitorder='little')[:s].astype(bool)
    ok = ok and np.array_equal(got, want)
print('ok' if ok else 'MISMATCH', m.dtype, list(m.shape))`);
    results.bits = { t: n, s: n, k, wallMs: r.ms, peakRssBytes: rssBytes, indicesBytes: statSync(idx).size, outBytes: statSync(out).size, numpy: verdict };
    console.log(`bits mask t=s=${n} k=${k}: ${(r.ms / 1000).toFixed(1)} s, peak RSS ${rssBytes === null ? 'n/a' : `${(rssBytes / GiB).toFixed(2)} GiB`} (target < 3 GiB), ` +
      `file ${(statSync(out).size / GiB).toFixed(2)} GiB, numpy: ${verdict}`);
    rmSync(out);
    rmSync(idx);
  }

  // check on a 512 MiB mask
  {
    const t = smoke ? 64 : 8192;
    const s = 16384;
    const k = smoke ? 64 : 2048;
    const idx = join(work, 'check-idx.npy');
    const mask = join(work, 'check-mask.npy');
    writeIndices(idx, t, k, 11);
    run([...cli, 'mask', '--indices', idx, '--seq-len', String(s), '--out', mask], 'dsa mask');
    const bytes = statSync(mask).size;
    const idxBytes = statSync(idx).size;
    const readRange = (path: string, from: number, to: number, buf: Buffer) => {
      const fd = openSync(path, 'r');
      for (let o = from; o < to; o += buf.length) sink += readSync(fd, buf, 0, Math.min(buf.length, to - o), o);
      closeSync(fd);
    };
    const buf = Buffer.alloc(4 << 20);
    const timed = (f: () => void) => {
      const start = performance.now();
      f();
      return performance.now() - start;
    };
    // The .npy header is part of the file: reading the file is reading all of it.
    const readFloor = () => timed(() => readRange(mask, 0, bytes, buf));
    const readBoth = () => timed(() => {
      readRange(mask, 0, bytes, buf);
      readRange(idx, 0, idxBytes, buf);
    });
    const half = Math.floor(bytes / 2 / buf.length) * buf.length;
    const helper = await readerThread(mask, half, bytes);
    const readTwo = () => timed(() => {
      helper.go();
      readRange(mask, 0, half, buf);
      helper.done();
    });
    const check = async () => {
      let stdout = '';
      const start = performance.now();
      const code = await runCli(['check', '--mask', mask, '--indices', idx], { out: (x) => void (stdout += x), err: (x) => void (stdout += x), isTTY: false });
      const ms = performance.now() - start;
      if (code !== 0 || !stdout.startsWith('ok:')) throw new Error(`dsa check did not pass: ${stdout}`);
      return ms;
    };
    readBoth();
    readTwo();
    await check(); // warm-up: page cache, JIT
    const floor: number[] = [];
    const both: number[] = [];
    const two: number[] = [];
    const checks: number[] = [];
    for (let i = 0; i < reps; i++) {
      floor.push(readFloor());
      both.push(readBoth());
      two.push(readTwo());
      checks.push(await check());
    }
    await helper.close();
    // Whole commands, start-up included.
    const reader = join(work, 'read.mjs');
    writeFileSync(reader, `import { openSync, readSync, fstatSync } from 'node:fs';
const fd = openSync(process.argv[2], 'r'), size = fstatSync(fd).size, buf = Buffer.alloc(4 << 20);
for (let o = 0; o < size; o += buf.length) readSync(fd, buf, 0, Math.min(buf.length, size - o), o);\n`);
    const compiled = existsSync(join(root, 'dist/cli/main.js'));
    const processes = { read: [] as number[], check: [] as number[], numpy: [] as number[] };
    for (let i = 0; i < (compiled ? reps : 0); i++) {
      processes.read.push(run([process.execPath, reader, mask], 'read process').ms);
      const r = run([process.execPath, join(root, 'bin/dsa.js'), 'check', '--mask', mask, '--indices', idx], 'dsa check (process)');
      if (!r.stdout.startsWith('ok:')) throw new Error(`dsa check did not pass: ${r.stdout}`);
      processes.check.push(r.ms);
      processes.numpy.push(run(['python3', '-c', `import numpy as np; np.load(${JSON.stringify(mask)})`], 'np.load process').ms);
    }
    const npLoad = Number(numpy(`ts = []
for _ in range(${reps}):
    t0 = time.perf_counter(); a = np.load(${JSON.stringify(mask)}); ts.append(time.perf_counter() - t0); del a
print(sorted(ts)[len(ts) // 2] * 1000)`));
    const c = {
      maskBytes: bytes, t, s, k, reps, readMs: median(floor), checkMs: median(checks), numpyLoadMs: npLoad, ratio: median(checks) / median(floor),
      readMinMs: Math.min(...floor), checkMinMs: Math.min(...checks), ratioMin: Math.min(...checks) / Math.min(...floor),
      readBothMs: median(both), ratioBoth: median(checks) / median(both), readTwoThreadsMs: median(two), ratioTwoThreads: median(checks) / median(two),
      workerStartMs: helper.started,
      process: compiled ? { readMs: median(processes.read), checkMs: median(processes.check), numpyLoadMs: median(processes.numpy), ratio: median(processes.check) / median(processes.read) } : null,
    };
    results.check = c;
    console.log(`check ${(bytes / 2 ** 20).toFixed(0)} MiB mask [1, ${t}, ${s}]: read (floor) median ${c.readMs.toFixed(0)} ms (min ${c.readMinMs.toFixed(0)}), ` +
      `numpy np.load ${npLoad.toFixed(0)} ms, dsa check median ${c.checkMs.toFixed(0)} ms (min ${c.checkMinMs.toFixed(0)}) = ${c.ratio.toFixed(2)}x the read ` +
      `(mins: ${c.ratioMin.toFixed(2)}x; target <= 2x); reading mask + indices ${c.readBothMs.toFixed(0)} ms (check = ${c.ratioBoth.toFixed(2)}x), ` +
      `the mask on 2 threads ${c.readTwoThreadsMs.toFixed(0)} ms (check = ${c.ratioTwoThreads.toFixed(2)}x; starting the worker took ${c.workerStartMs.toFixed(0)} ms)`);
    console.log(c.process === null ? 'check as a command: skipped (dist/ is not built; npm run build)' :
      `check as a command: node bin/dsa.js check ${c.process.checkMs.toFixed(0)} ms, a node process reading the file ${c.process.readMs.toFixed(0)} ms ` +
      `(check = ${c.process.ratio.toFixed(2)}x), python3 np.load ${c.process.numpyLoadMs.toFixed(0)} ms (medians, start-up included)`);
  }

  mkdirSync(join(root, 'bench/results'), { recursive: true });
  const file = join(root, 'bench/results', smoke ? 'cli.smoke.tmp' : 'cli.json');
  // Sections skipped this run keep their last measured values.
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  writeFileSync(file, JSON.stringify({ ...previous, ...results, sink }, null, 2));
  console.log(`saved ${file}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
