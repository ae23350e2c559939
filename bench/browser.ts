// Browser benchmark: the library in headless Chromium (the page of
// `npm run web`, cross-origin isolated) beside Node on the same machine, in
// the same run. Indexer scores in GFLOP/s (2*t*h*s*d) for float32, int8 and
// int7 (each also with the keys quantized once, as a decode step over a key
// cache runs) on the browser pool with 1 and 2 Web Workers running the baseline or
// the relaxed module (a worker keeps its module warm; one worker is one
// thread), and on the page's main thread; top-k time; the
// kernels' own rate on a key block already in memory (the floor: no copies,
// no quantization), including the float32 kernel with f32x4.relaxed_madd
// (compiled here from bench/assembly/indexer-fma.ts, not shipped); int8 and
// int7 top-k recall against float32 at k = 2048; the page's default run.
//
//   npm run bench:browser [-- --smoke] [--rounds 5] [--page-runs 2]
//
// Seeded data; a warm-up round; then rounds, each running every method once
// (Node and Chromium interleaved), medians over rounds, a sink. Every score
// is checked: Chromium's bits equal Node's for each precision and shape (the
// module and the pool never change results).
import asc from 'assemblyscript/asc';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { indexerScores } from '../src/indexer/scores.js';
import { topk } from '../src/topk/topk.js';
import { quantizeKeys } from '../src/indexer/quantized-keys.js';
import { createPool } from '../src/pool/index.js';
import { flag, machine, median, option, recall, sharedFloats, writeResults } from './common.js';
import { launch, openPage, startWeb } from '../web/chromium.js';

const smoke = flag('smoke');
const h = smoke ? 8 : 64, d = 128, topK = smoke ? 64 : 2048;
const cases = smoke
  ? [{ name: 'prefill', t: 4, s: 1024 }, { name: 'decode', t: 1, s: 4096 }]
  : [{ name: 'prefill', t: 64, s: 16384 }, { name: 'decode', t: 1, s: 131072 }];
const rounds = Number(option('rounds') ?? (smoke ? '1' : '5'));
const pageRuns = Number(option('page-runs') ?? (smoke ? '0' : '2'));
const precisions = ['float32', 'int8', 'int7', 'int8 cached', 'int7 cached'] as const;
type Precision = (typeof precisions)[number];
/** 'int8 cached': the keys quantized once (quantizeKeys, shared), as a decode step over a key cache runs. */
const precisionOf = (p: Precision) => p.split(' ')[0] as 'float32' | 'int8' | 'int7';
const weightScale = 1 / Math.sqrt(h * d);
const gflop = (c: { t: number; s: number }) => (2 * c.t * h * c.s * d) / 1e9;

/** The FMA experiment module: the shipped float32 d = 128 kernel and its relaxed_madd twin. */
async function fmaModule(): Promise<string> {
  let wasm: Uint8Array | undefined;
  const entry = fileURLToPath(new URL('./assembly/indexer-fma.ts', import.meta.url));
  const { error, stderr } = await asc.main([entry, '--enable', 'simd,relaxed-simd', '-O3', '--noAssert', '--runtime', 'stub', '--outFile', 'fma.wasm'], {
    writeFile(name: string, contents: string | Uint8Array) {
      if (name.endsWith('.wasm') && typeof contents !== 'string') wasm = contents;
    },
  });
  if (error || !wasm) throw error ?? new Error(`asc: ${stderr.toString()}`);
  return Buffer.from(wasm).toString('base64');
}

const generated = readFileSync(new URL('../src/simd/wasm-bytes.generated.ts', import.meta.url), 'utf8');
const modules = {
  baseline: /wasmBase64 = '([^']+)'/.exec(generated)![1],
  relaxed: /wasmRelaxedBase64 = '([^']+)'/.exec(generated)![1],
  fma: await fmaModule(),
};

/**
 * Kernel rates in G multiply-adds/s on one resident 512-key block (h heads,
 * d = 128), median of 7 runs of 20 calls, after a warm-up: the floor the
 * scoring path (copies, quantization, tiles) is measured against. Runs in
 * Node and in the page (a string: the same code in both).
 */
const KERNELS = `(async (modules, h) => {
  const B = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const out = {};
  for (const [name, b64] of Object.entries(modules)) {
    if (!WebAssembly.validate(B(b64))) continue;
    const { instance } = await WebAssembly.instantiate(B(b64), {});
    const e = instance.exports;
    e.memory.grow(96);
    const f = new Float32Array(e.memory.buffer), bytes = new Int8Array(e.memory.buffer), ints = new Int32Array(e.memory.buffer);
    let x = 12345;
    const next = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) / 2 ** 32; };
    const n = 512, pq = 0, pw = 1 << 16, pk = 1 << 17, po = 1 << 20, ps = 5 << 18, psum = 11 << 17, pk8 = 3 << 20, pq8 = 4 << 20;
    for (let i = 0; i < (pk + n * 512) / 4; i++) f[i] = next() - 0.5;
    for (let i = 0; i < n; i++) { f[ps / 4 + i] = 0.01; ints[psum / 4 + i] = 0; }
    for (let i = 0; i < n * 256; i++) bytes[pk8 + i] = Math.floor(next() * 254) - 127;
    for (let i = 0; i < h * 256; i++) bytes[pq8 + i] = 1 + Math.floor(next() * 127);
    const kernels = {};
    if (e.indexerBlockF32D128) kernels['float32'] = () => e.indexerBlockF32D128(pq, pw, pk, n, h, po);
    if (e.indexerBlockF32D128Fma) kernels['float32, relaxed_madd'] = () => e.indexerBlockF32D128Fma(pq, pw, pk, n, h, po);
    if (e.indexerBlockI8D128) kernels['int8 (dot_i16x8_s)'] = () => e.indexerBlockI8D128(pq8, ps, pw, pk8, ps, n, h, po);
    if (e.indexerBlockI7D128) kernels['int7 (relaxed_dot_i8x16_i7x16_add_s)'] = () => e.indexerBlockI7D128(pq8, ps, pw, pk8, ps, psum, n, h, po);
    for (const [kernel, fn] of Object.entries(kernels)) {
      for (let i = 0; i < 40; i++) fn();
      const times = [];
      for (let r = 0; r < 7; r++) { const t0 = performance.now(); for (let i = 0; i < 20; i++) fn(); times.push(performance.now() - t0); }
      times.sort((a, b) => a - b);
      out[name + ': ' + kernel] = (20 * n * h * 128) / (times[3] / 1000) / 1e9;
    }
  }
  return out;
})`;

/** The page side: seeded inputs (the same as Node's), pools per build, and one timed call per method. */
const PAGE = `(() => {
  const dsa = window.dsa;
  const rng = (seed) => { let a = seed >>> 0; return () => { a = (a + 0x6d2b79f5) >>> 0; let x = a; x = Math.imul(x ^ (x >>> 15), x | 1); x ^= x + Math.imul(x ^ (x >>> 7), x | 61); return ((x ^ (x >>> 14)) >>> 0) / 4294967296; }; };
  const floats = (shape, seed) => { const n = shape.reduce((a, b) => a * b, 1); const data = dsa.allocShared(Float32Array, n); const next = rng(seed); for (let i = 0; i < n; i++) data[i] = next() * 2 - 1; return { data, shape }; };
  const hex = async (a) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice())), (x) => x.toString(16).padStart(2, '0')).join('');
  const inputs = {}, scores = {}, pools = {};
  let sink = 0;
  window.__bench = {
    async setup(cases, h, d) {
      for (const c of cases) {
        const k = floats([1, c.s, d], 12);
        inputs[c.name] = { q: floats([1, c.t, h, d], 11), k, kq: dsa.quantizeKeys(k, { shared: true }), w: floats([1, c.t, h], 13) };
      }
      for (const build of ['baseline', 'relaxed']) {
        await dsa.initSimd({ relaxed: build === 'relaxed' });
        for (const threads of [1, 2]) pools[build + threads] = dsa.createPool({ threads });
      }
      await dsa.initSimd({ relaxed: true });
    },
    /**
     * ms of one call; where: 'main' (this thread, relaxed module) or a pool,
     * 'baseline1', 'relaxed2'..., whose workers keep their module (so each
     * build stays compiled and warm; switching this thread's module per call
     * would time compiles).
     */
    async scores(name, form, where, weightScale) {
      const { q, w } = inputs[name];
      const [precision, cached] = form.split(' ');
      const k = cached ? inputs[name].kq : inputs[name].k;
      const pool = pools[where];
      const start = performance.now();
      const r = pool ? await pool.indexerScores(q, k, w, { precision, weightScale }) : dsa.indexerScores(q, k, w, { precision, weightScale });
      const ms = performance.now() - start;
      sink += r.data[r.data.length >> 1];
      if (precision === 'float32') scores[name] = r;
      return ms;
    },
    /** SHA-256 of the scores; where: 'baseline' or 'relaxed' (this thread, that module) or a pool. */
    async hash(name, form, where, weightScale) {
      const { q, w } = inputs[name];
      const [precision, cached] = form.split(' ');
      const k = cached ? inputs[name].kq : inputs[name].k;
      const pool = pools[where];
      if (!pool) await dsa.initSimd({ relaxed: where === 'relaxed' });
      const r = pool ? await pool.indexerScores(q, k, w, { precision, weightScale }) : dsa.indexerScores(q, k, w, { precision, weightScale });
      await dsa.initSimd({ relaxed: true });
      return hex(r.data);
    },
    async topk(name, k, where) {
      const pool = pools[where];
      const start = performance.now();
      const r = pool ? await pool.topk(scores[name], k) : dsa.topk(scores[name], k);
      const ms = performance.now() - start;
      sink += r.indices.data[0];
      return ms;
    },
    sink: () => sink,
  };
})()`;

async function hexNode(a: Float32Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice());
  return Buffer.from(digest).toString('hex');
}

const started = new Date();
const server = await startWeb();
const browser = await launch();
let sink = 0;
try {
  const { page, errors } = await openPage(browser, `${server.url}?run=0`);
  await page.evaluate(PAGE);
  await page.evaluate(`window.__bench.setup(${JSON.stringify(cases)}, ${h}, ${d})`);
  const inPage = <T>(code: string) => page.evaluate(code) as Promise<T>;
  const userAgent = await inPage<string>('navigator.userAgent');

  // Node: the same seeded inputs, the baseline module, this thread and the pool.
  const nodeInputs = Object.fromEntries(cases.map((c) => {
    const k = sharedFloats([1, c.s, d], 12);
    return [c.name, { q: sharedFloats([1, c.t, h, d], 11), k, kq: quantizeKeys(k, { shared: true }), w: sharedFloats([1, c.t, h], 13) }];
  }));
  const keysFor = (name: string, p: Precision) => (p.endsWith('cached') ? nodeInputs[name].kq : nodeInputs[name].k);
  const nodePools = { 1: createPool({ threads: 1 }), 2: createPool({ threads: 2 }) };
  const nodeScores: Record<string, Record<Precision, Float32Array>> = {};
  try {
    // Correctness first: Chromium's scores (each module, each pool) are Node's bits.
    for (const c of cases) {
      const { q, w } = nodeInputs[c.name];
      nodeScores[c.name] = {} as Record<Precision, Float32Array>;
      for (const precision of precisions) {
        const mine = indexerScores(q, keysFor(c.name, precision), w, { precision: precisionOf(precision), weightScale }).data;
        nodeScores[c.name][precision] = mine;
        const want = await hexNode(mine);
        for (const where of ['baseline', 'relaxed', 'baseline1', 'relaxed1', 'baseline2', 'relaxed2']) {
          const got = await inPage<string>(`window.__bench.hash('${c.name}', '${precision}', '${where}', ${weightScale})`);
          if (got !== want) throw new Error(`${c.name} ${precision} ${where}: Chromium's scores differ from Node's`);
        }
      }
    }

    const nodeTime = async (c: (typeof cases)[number], precision: Precision, threads: 0 | 1 | 2) => {
      const { q, w } = nodeInputs[c.name];
      const k = keysFor(c.name, precision);
      const opts = { precision: precisionOf(precision), weightScale };
      const start = performance.now();
      const r = threads === 0 ? indexerScores(q, k, w, opts) : await nodePools[threads].indexerScores(q, k, w, opts);
      const ms = performance.now() - start;
      sink += r.data[r.data.length >> 1];
      return ms;
    };
    const nodeTopk = async (c: (typeof cases)[number], threads: 0 | 2) => {
      const scores = { data: nodeScores[c.name].float32, shape: [1, c.t, c.s] };
      const start = performance.now();
      const r = threads === 0 ? topk(scores, Math.min(topK, c.s)) : await nodePools[2].topk(scores, Math.min(topK, c.s));
      sink += r.indices.data[0];
      return performance.now() - start;
    };

    const browserWhere = ['main', 'baseline1', 'relaxed1', 'baseline2', 'relaxed2'] as const;
    const nodeWhere = [0, 1, 2] as const;
    const times = new Map<string, number[]>();
    const add = (key: string, ms: number) => times.set(key, [...(times.get(key) ?? []), ms]);
    for (let round = 0; round <= rounds; round++) {
      const record = round > 0; // round 0 warms up every path
      for (const c of cases) {
        for (const precision of precisions) {
          for (const threads of nodeWhere) {
            const ms = await nodeTime(c, precision, threads);
            if (record) add(`${c.name} ${precision} node ${threads}`, ms);
          }
          for (const where of browserWhere) {
            const ms = await inPage<number>(`window.__bench.scores('${c.name}', '${precision}', '${where}', ${weightScale})`);
            if (record) add(`${c.name} ${precision} chromium ${where}`, ms);
          }
        }
        const k = Math.min(topK, c.s);
        for (const threads of [0, 2] as const) {
          const ms = await nodeTopk(c, threads);
          if (record) add(`${c.name} topk node ${threads}`, ms);
        }
        for (const where of ['main', 'baseline1', 'relaxed1', 'relaxed2']) {
          const ms = await inPage<number>(`window.__bench.topk('${c.name}', ${k}, '${where}')`);
          if (record) add(`${c.name} topk chromium ${where}`, ms);
        }
      }
    }
    sink += await inPage<number>('window.__bench.sink()');
    const med = (key: string) => median(times.get(key)!);
    const spread = (key: string) => {
      const xs = [...times.get(key)!].sort((a, b) => a - b);
      return [xs[0], xs[xs.length - 1]];
    };

    // Kernel floors, in Node and in Chromium.
    const kernelCode = `${KERNELS}(${JSON.stringify(modules)}, ${h})`;
    const nodeKernels = await (new Function(`return ${kernelCode}`)() as Promise<Record<string, number>>);
    const browserKernels = await inPage<Record<string, number>>(kernelCode);
    // The same kernels in two Web Workers at once (the sum of their rates): what two threads of this machine can do together.
    const pairKernels = await inPage<Record<string, number>>(`(async () => {
      const source = 'self.onmessage = async (e) => self.postMessage(await (' + ${JSON.stringify(KERNELS)} + ')(e.data.modules, e.data.h));';
      const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
      const workers = [new Worker(url), new Worker(url)];
      const results = await Promise.all(workers.map((w) => new Promise((resolve) => { w.onmessage = (e) => resolve(e.data); w.postMessage({ modules: ${JSON.stringify({ baseline: modules.baseline, relaxed: modules.relaxed })}, h: ${h} }); })));
      workers.forEach((w) => w.terminate());
      const sum = {};
      for (const r of results) for (const [k, v] of Object.entries(r)) sum[k] = (sum[k] ?? 0) + v;
      return sum;
    })()`);

    // Recall of int8 and int7 against float32 (the same bits in Node and Chromium, checked above).
    const recalls = cases.map((c) => ({
      shape: c.name,
      int8: recall(nodeScores[c.name].float32, nodeScores[c.name].int8, c.t, c.s, topK),
      int7: recall(nodeScores[c.name].float32, nodeScores[c.name].int7, c.t, c.s, topK),
    }));

    // The page's default run (dsa demo's defaults), as a visitor gets it.
    const pageTimes: number[] = [];
    for (let i = 0; i < pageRuns; i++) {
      const summary = await inPage<{ ok: boolean; wallMs: number }>('window.dsaPage.run()');
      if (!summary.ok) throw new Error('the page\'s default run has a check that fails');
      pageTimes.push(summary.wallMs);
    }
    if (errors.length > 0) throw new Error(`page errors: ${errors.join('; ')}`);

    // ---- report --------------------------------------------------------------
    const f1 = (x: number) => x.toFixed(1);
    const rate = (c: (typeof cases)[number], key: string) => gflop(c) / (med(key) / 1000);
    const lines: string[] = [];
    lines.push(`machine: ${machine()}; ${userAgent}`);
    lines.push(`indexer scores, h = ${h}, d = ${d}, GFLOP/s (2*t*h*s*d), medians of ${rounds} rounds; Chromium's bits = Node's for every row`);
    lines.push('| shape | precision | Node 1 thread | Node pool 1 | Node pool 2 | Chromium 1 worker, baseline module | 1 worker, relaxed module | relaxed / baseline | 2 workers, baseline | 2 workers, relaxed | 2 / 1 workers (relaxed) | 2 / 1 (baseline) | Chromium main thread (relaxed) |');
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    const rows: Record<string, unknown>[] = [];
    for (const c of cases) {
      for (const precision of precisions) {
        const key = (w: string) => `${c.name} ${precision} ${w}`;
        const r = {
          shape: `${c.name} [1,${c.t},${c.s}]`, precision,
          node1: rate(c, key('node 0')), nodePool1: rate(c, key('node 1')), nodePool2: rate(c, key('node 2')),
          baseline: rate(c, key('chromium baseline1')), relaxed: rate(c, key('chromium relaxed1')),
          baseline2: rate(c, key('chromium baseline2')), relaxed2: rate(c, key('chromium relaxed2')),
          main: rate(c, key('chromium main')),
          relaxedRange: spread(key('chromium relaxed1')).map((ms) => gflop(c) / (ms / 1000)).reverse(),
          baselineRange: spread(key('chromium baseline1')).map((ms) => gflop(c) / (ms / 1000)).reverse(),
          relaxed2Range: spread(key('chromium relaxed2')).map((ms) => gflop(c) / (ms / 1000)).reverse(),
        };
        rows.push(r);
        lines.push(`| ${r.shape} | ${precision} | ${f1(r.node1)} | ${f1(r.nodePool1)} | ${f1(r.nodePool2)} | ${f1(r.baseline)} | ${f1(r.relaxed)} | ${(r.relaxed / r.baseline).toFixed(2)}x | ${f1(r.baseline2)} | ${f1(r.relaxed2)} | ${(r.relaxed2 / r.relaxed).toFixed(2)}x | ${(r.baseline2 / r.baseline).toFixed(2)}x | ${f1(r.main)} |`);
      }
    }
    const row = (name: string, p: string) => rows.find((r) => r.precision === p && String(r.shape).startsWith(name)) as { baseline: number; relaxed: number };
    for (const c of cases) {
      for (const cached of ['', ' cached']) {
        lines.push(`${c.name}${cached ? ', keys quantized once' : ''}: int7 on the relaxed module / int8 on the baseline module: ${(row(c.name, `int7${cached}`).relaxed / row(c.name, `int8${cached}`).baseline).toFixed(2)}x`);
      }
    }
    lines.push('');
    lines.push(`top-k (k = ${topK}) of the float32 scores, ms, medians`);
    lines.push('| shape | Node 1 thread | Node pool 2 | Chromium 1 worker, baseline | 1 worker, relaxed | 2 workers, relaxed | Chromium main thread |');
    lines.push('|---|---|---|---|---|---|---|');
    const topkRows = cases.map((c) => {
      const key = (w: string) => `${c.name} topk ${w}`;
      const r = { shape: `${c.name} [1,${c.t},${c.s}]`, node1: med(key('node 0')), node2: med(key('node 2')), baseline: med(key('chromium baseline1')), relaxed: med(key('chromium relaxed1')), pool2: med(key('chromium relaxed2')), main: med(key('chromium main')) };
      lines.push(`| ${r.shape} | ${r.node1.toFixed(1)} | ${r.node2.toFixed(1)} | ${r.baseline.toFixed(1)} | ${r.relaxed.toFixed(1)} | ${r.pool2.toFixed(1)} | ${r.main.toFixed(1)} |`);
      return r;
    });
    lines.push('');
    lines.push(`kernel floors: one resident block of 512 keys x ${h} heads x d = ${d}, G multiply-adds/s`);
    lines.push('| module: kernel | Node | Chromium | Chromium, 2 workers at once (sum) | 2 / 1 |');
    lines.push('|---|---|---|---|---|');
    for (const name of new Set([...Object.keys(browserKernels), ...Object.keys(nodeKernels)])) {
      const pair = pairKernels[name];
      lines.push(`| ${name} | ${nodeKernels[name] === undefined ? '-' : f1(nodeKernels[name])} | ${browserKernels[name] === undefined ? '-' : f1(browserKernels[name])} | ${pair === undefined ? '-' : f1(pair)} | ${pair === undefined ? '-' : `${(pair / browserKernels[name]).toFixed(2)}x`} |`);
    }
    lines.push('');
    lines.push(`recall against float32 at k = ${topK}: ${recalls.map((r) => `${r.shape} int8 ${r.int8.toFixed(4)}, int7 ${r.int7.toFixed(4)}`).join('; ')}`);
    if (pageTimes.length > 0) lines.push(`the page's default run (t = 256, s = 16384, k = 2048, 2 workers): ${pageTimes.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(', ')}`);
    console.log(lines.join('\n'));
    writeResults(
      smoke ? 'browser.smoke.tmp' : 'browser.json',
      JSON.stringify({ date: started.toISOString(), machine: machine(), userAgent, h, d, topK, rounds, scores: rows, topk: topkRows, kernels: { node: nodeKernels, chromium: browserKernels, chromiumTwoWorkers: pairKernels }, recalls, pageMs: pageTimes, sink }, null, 2) + '\n',
    );
  } finally {
    await Promise.all([nodePools[1].close(), nodePools[2].close()]);
  }
} finally {
  await browser.close();
  await server.stop();
}
