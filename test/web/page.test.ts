// The library in a real browser: the page from `npm run web` in headless
// Chromium. The default run passes every check; the browser pool equals one
// thread; scores, top-k, masks and attention are bit-identical to Node's for
// the same seed; the relaxed module is the one in use and equals the
// baseline module and the TypeScript reference; dropped files get `dsa
// check`'s verdicts and error messages; a page without cross-origin
// isolation runs the pool on one thread and says so. Screenshots of each
// run are kept in a temporary folder (printed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server as HttpServer } from 'node:http';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import * as library from '../../src/index.js';
import { attentionInputs, indexerInputs } from '../../src/cli/demo-data.js';
import { encodeNpy } from '../../src/io/npy.js';
import { scratch } from '../helpers/numpy.js';
import { dsa as cli } from '../cli/run.js';
import { launch, openPage, shot, shots, startWeb, type Server } from '../../web/chromium.js';

let server: Server;
let browser: Browser;
let page: Page;
let errors: string[];

before(async () => {
  server = await startWeb();
  browser = await launch();
  ({ page, errors } = await openPage(browser, `${server.url}?run=0`));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  console.log(`# screenshots: ${shots()}`);
});

/**
 * SHA-256 of every result of a fixed seeded pipeline, run by the same code
 * in Node and in the page (a string, so no bundler touches it): `dsa` is the
 * library, `api` the library or a pool.
 */
const FINGERPRINT = `async (dsa, inputs, api) => {
  api = api || dsa;
  const hex = async (a) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice())), (x) => x.toString(16).padStart(2, '0')).join('');
  const [t, s, h, d, k] = [8, 3000, 64, 128, 512];
  const { q, k: keys, w } = inputs.indexerInputs({ b: 1, t, s, h, d }, 7);
  const Q = { data: q, shape: [1, t, h, d] }, K = { data: keys, shape: [1, s, d] }, W = { data: w, shape: [1, t, h] };
  const out = {};
  let top;
  for (const precision of ['float32', 'int8', 'int7', 'fp8']) {
    const scores = await api.indexerScores(Q, K, W, { weightScale: 1 / Math.sqrt(h * d), causalOffset: s - t, precision });
    out['scores ' + precision] = await hex(scores.data);
    const selected = await api.topk(scores, k, { causalOffset: s - t });
    out['top-k indices ' + precision] = await hex(selected.indices.data);
    out['top-k values ' + precision] = await hex(selected.values.data);
    out['mask bits ' + precision] = await hex((await api.generateMask(selected.indices, s, { form: 'bits' })).data);
    if (precision === 'float32') {
      top = selected;
      out['mask threshold'] = await hex((await api.maskFromThreshold(scores, selected.values)).data);
    }
  }
  const additive = await api.generateMask(top.indices, s);
  out['mask additive'] = await hex(additive.data);
  const att = inputs.attentionInputs(t, s, 8, 128, 7);
  const qa = { data: att.q, shape: [t, 8, 128] }, kv = { data: att.kv, shape: [s, 1, 128] };
  const sparse = await api.sparseAttention(qa, kv, { data: top.indices.data, shape: [t, 1, k] }, { dV: 128 });
  out['sparse out'] = await hex(sparse.out.data);
  out['sparse lse'] = await hex(sparse.lse.data);
  const dense = await api.denseAttention(qa, kv, { data: additive.data, shape: [t, 1, s] }, { dV: 128 });
  out['dense out'] = await hex(dense.out.data);
  return out;
}`;

async function inPage<T>(code: string): Promise<T> {
  return page.evaluate(code) as Promise<T>;
}

test('the page loads from npm run web: cross-origin isolated, relaxed SIMD module, and it says so', async () => {
  const env = await page.$eval('#env', (e) => (e as HTMLElement).innerText);
  assert.match(env, /Cross-origin isolated: the pool runs on Web Workers over SharedArrayBuffer/);
  assert.match(env, /the relaxed SIMD module/);
  assert.match(env, /GPU: only a software WebGPU adapter \(google swiftshader\), slower than the CPU path: everything runs on the CPU/);
  const facts = await inPage<{ isolated: boolean; build: string; relaxed: boolean; pool: boolean }>(
    '({ isolated: crossOriginIsolated, build: window.dsa.simdBuild(), relaxed: window.dsa.relaxedSimdSupported(), pool: window.dsa.poolSupported() })',
  );
  assert.deepEqual(facts, { isolated: true, build: 'relaxed', relaxed: true, pool: true });
  assert.deepEqual(errors, []);
});

test('the default run completes in the browser with every check passing, on 2 Web Workers and the relaxed module', async (t) => {
  const summary = await inPage<{ ok: boolean; wallMs: number; simd: string; poolShared: boolean; threads: number; rows: { strategy: string; match: string; ms: number }[] }>(
    'window.dsaPage.run()',
  );
  await shot(page, 'default-run');
  t.diagnostic(`default run: ${(summary.wallMs / 1000).toFixed(1)} s in headless Chromium (${summary.rows.map((r) => `${r.strategy} ${r.ms.toFixed(0)} ms`).join(', ')})`);
  assert.equal(summary.ok, true, JSON.stringify(summary.rows));
  assert.equal(summary.simd, 'relaxed');
  assert.equal(summary.poolShared, true);
  assert.equal(summary.threads, 2);
  assert.deepEqual(summary.rows.map((r) => r.match), ['', 'bit-exact', 'reference', 'bit-exact', 'bit-exact', 'bit-exact', 'reference', 'within tolerance']);
  assert.equal(await page.$eval('body', (b) => (b as HTMLElement).dataset.demo), 'done');
  assert.match(await page.$eval('#summary', (e) => (e as HTMLElement).innerText), /path: CPU, main run on 2 Web Workers, relaxed SIMD module\. .*every check passes/);
  assert.equal(await page.$$eval('#plot svg .mark-line path', (paths) => paths.length), 8, 'one line per strategy in the time-against-s plot');
  const painted = await page.$eval('#heatmap', (c) => {
    const canvas = c as HTMLCanvasElement;
    const pixels = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    let blue = 0;
    for (let i = 0; i < pixels.length; i += 4) if (pixels[i + 2] > pixels[i] + 40) blue++;
    return { width: canvas.width, height: canvas.height, blue };
  });
  assert.equal(painted.width, 1024);
  assert.ok(painted.blue > 1000, `the heatmap shows selected keys (${painted.blue} blue pixels)`);
  assert.deepEqual(errors, []);
});

test('the WebGPU path (SwiftShader, asked for): scores, top-k, masks and sparse attention on the GPU pass every check, and the page says which path ran', async (t) => {
  const summary = await inPage<{ ok: boolean; gpu: string | null; wallMs: number; rows: { strategy: string; match: string }[] }>(
    'window.dsaPage.run({ ...window.dsaPage.defaults, t: 32, s: 2048, k: 256, h: 16, d: 64, sweep: [1024, 2048], sweepRows: 8 }, true)',
  );
  await shot(page, 'webgpu-path');
  t.diagnostic(`WebGPU path on SwiftShader: ${(summary.wallMs / 1000).toFixed(1)} s`);
  assert.equal(summary.ok, true, JSON.stringify(summary.rows));
  assert.match(summary.gpu ?? '', /swiftshader/);
  assert.deepEqual(summary.rows.map((r) => r.match), ['', 'bit-exact', 'reference', 'bit-exact', 'bit-exact', 'bit-exact', 'reference', 'within tolerance']);
  assert.match(await page.$eval('#summary', (e) => (e as HTMLElement).innerText), /path: WebGPU on google swiftshader for indexer scores, top-k, masks: broadcast, scatter, bits, threshold, causal, combined, sparse attention; the rest on the CPU \(2 Web Workers, relaxed SIMD module\)\. .*every check passes/);
  assert.deepEqual(errors, []);
});

test('scores (float32, int8, int7, fp8), top-k, masks and attention in Chromium are bit-identical to Node for the same seed, on one thread and on the pool', async () => {
  const node = await (new Function(`return ${FINGERPRINT}`)() as (d: unknown, i: unknown, a: unknown) => Promise<Record<string, string>>)(library, { indexerInputs, attentionInputs }, null);
  const browserOne = await inPage<Record<string, string>>(`(${FINGERPRINT})(window.dsa, window.dsaPage.demoInputs, null)`);
  const browserPool = await inPage<Record<string, string>>(`(async () => {
    const pool = window.dsa.createPool({ threads: 2 });
    try { return await (${FINGERPRINT})(window.dsa, window.dsaPage.demoInputs, pool); } finally { await pool.close(); }
  })()`);
  assert.equal(Object.keys(node).length, 21);
  assert.deepEqual(browserOne, node, 'Chromium (relaxed module), one thread, vs Node (baseline module)');
  assert.deepEqual(browserPool, node, 'Chromium, 2 Web Workers, vs Node');
});

test('the relaxed module in Chromium: int7 and int8 scores equal the baseline module and the TypeScript reference bit for bit', async () => {
  const report = await inPage<{ builds: string[]; differences: Record<string, number> }>(`(async () => {
    const dsa = window.dsa;
    const rand = (n, seed) => { const a = new Float32Array(n); let x = seed; for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; a[i] = ((x >>> 0) / 2 ** 32) * 2 - 1; } return a; };
    const differences = {};
    const builds = [];
    for (const [b, t, h, d, s] of [[1, 3, 64, 128, 1030], [2, 2, 3, 200, 37], [1, 2, 2, 20, 9], [1, 1, 5, 256, 515]]) {
      const q = { data: rand(b * t * h * d, s), shape: [b, t, h, d] }, k = { data: rand(b * s * d, s + 1), shape: [b, s, d] }, w = { data: rand(b * t * h, s + 2), shape: [b, t, h] };
      k.data.fill(0, 0, d);
      q.data[7] = NaN;
      const kq = dsa.quantizeKeys(k);
      for (const precision of ['int8', 'int7', 'float32']) {
        const opts = { precision, weightScale: 0.25, causalOffset: s - t };
        await dsa.initSimd({ relaxed: true });
        builds.push(dsa.simdBuild());
        const relaxed = [dsa.indexerScores(q, k, w, opts).data].concat(precision === 'float32' ? [] : [dsa.indexerScores(q, kq, w, opts).data]);
        await dsa.initSimd({ relaxed: false });
        builds.push(dsa.simdBuild());
        const baseline = dsa.indexerScores(q, k, w, opts).data;
        const expected = precision === 'float32' ? baseline : dsa.indexerScores(q, k, w, { ...opts, simd: false }).data;
        let n = 0;
        for (const got of relaxed.concat([baseline])) for (let i = 0; i < expected.length; i++) if (!Object.is(got[i], expected[i])) n++;
        differences[precision + ' q[' + [b, t, h, d] + '] s=' + s] = n;
      }
    }
    await dsa.initSimd({ relaxed: true });
    return { builds: [...new Set(builds)].sort(), differences };
  })()`);
  assert.deepEqual(report.builds, ['baseline', 'relaxed']);
  assert.equal(Object.keys(report.differences).length, 12);
  for (const [name, n] of Object.entries(report.differences)) assert.equal(n, 0, name);
  assert.equal(await inPage('window.dsa.simdBuild()'), 'relaxed');
});

test('the browser pool: threads and shared, validation errors and worker errors reject, the pool keeps working, calls after close reject', async () => {
  const r = await inPage<Record<string, unknown>>(`(async () => {
    const dsa = window.dsa;
    const pool = dsa.createPool({ threads: 2 });
    const out = { threads: pool.threads, shared: pool.shared };
    const scores = { data: new Float32Array([1, NaN, 3, 2, 5, 4]), shape: [1, 2, 3] };
    out.nan = await pool.topk(scores, 2).then(() => 'resolved', (e) => e.name + ': ' + e.message);
    out.invalid = await pool.generateMask({ data: new Int32Array(3), shape: [1, 2, 2] }, 4).then(() => 'resolved', (e) => e.name + ': ' + e.message);
    const raw = window.dsaPage.internals.createWebWorkerPool({ threads: 2 });
    out.unknown = await raw.runRows('noSuchKernel', {}, 0, 4).then(() => 'resolved', (e) => e.message);
    out.thrown = await raw.runRows('mask.causal.bits', { out: null, t: 1, s: 40, rowBase: 0, offset: 0 }, 0, 2).then(() => 'resolved', (e) => e.name);
    out.clone = await raw.runRows('mask.causal.bits', { out: () => 1 }, 0, 2).then(() => 'resolved', (e) => e.name);
    const bits = new Uint32Array(new SharedArrayBuffer(4 * 2 * 4));
    await raw.runRows('mask.causal.bits', { out: bits, t: 4, s: 40, rowBase: 0, offset: 0 }, 0, 4);
    out.after = Array.from(bits);
    out.notShared = await raw.runRows('mask.causal.bits', { out: new Uint32Array(8), t: 4, s: 40, rowBase: 0, offset: 0 }, 0, 4).then(() => 'resolved', (e) => e.message);
    await raw.close();
    out.rawClosed = await raw.runRows('mask.causal.bits', {}, 0, 1).then(() => 'resolved', (e) => e.message);
    const top = await pool.topk({ data: new Float32Array([1, 7, 3, 2, 5, 4]), shape: [1, 2, 3] }, 2);
    out.top = Array.from(top.indices.data);
    out.sharedResult = top.indices.data.buffer instanceof SharedArrayBuffer;
    await pool.close();
    out.closed = await pool.topk(scores, 1).then(() => 'resolved', (e) => e.message);
    return out;
  })()`);
  assert.equal(r.threads, 2);
  assert.equal(r.shared, true);
  assert.match(String(r.nan), /^RangeError: scores: NaN at \[0, 0, 1\]/);
  assert.match(String(r.invalid), /^RangeError: indices/);
  assert.equal(r.unknown, "unknown kernel 'noSuchKernel'");
  assert.equal(r.thrown, 'TypeError');
  assert.equal(r.clone, 'DataCloneError');
  assert.deepEqual(r.after, [1, 0, 3, 0, 7, 0, 15, 0], 'the pool works after failed tasks');
  assert.equal(r.notShared, "pool: kernel argument 'out' must be backed by a SharedArrayBuffer");
  assert.equal(r.rawClosed, 'pool: closed');
  assert.deepEqual(r.top, [1, 2, 1, 2]);
  assert.equal(r.sharedResult, true);
  assert.equal(r.closed, 'pool: closed');
});

test('dropped .npy files get dsa check\'s verdicts and messages, exactly as the CLI prints them', async () => {
  const tmp = scratch();
  try {
    const [b, t, s, k] = [2, 5, 200, 7];
    const indices = new Int32Array(b * t * k);
    for (let i = 0; i < indices.length; i++) indices[i] = (i * 37 + 11) % s;
    indices[3] = -1; // padding
    const idx = { data: indices, shape: [b, t, k] };
    const bits = library.generateMask(idx, s, { form: 'bits' });
    const additive = library.generateMask(idx, s);
    const files: Record<string, Uint8Array> = {
      'indices.npy': encodeNpy(idx),
      'indices64.npy': encodeNpy({ data: BigInt64Array.from(indices, (x) => BigInt(x)), shape: [b, t, k] }),
      'mask-bits.npy': encodeNpy(bits, 'uint32'),
      'mask-additive.npy': encodeNpy(additive),
      'mask-causal.npy': encodeNpy(library.generateMask(idx, s, { causalOffset: 3 }), 'float32'),
    };
    const flipped = additive.data.slice();
    flipped[1 * s + indices[k]] = library.DEFAULT_MASK_VALUE; // row 1 drops a key its indices keep
    files['mask-wrong.npy'] = encodeNpy({ data: flipped, shape: [b, t, s] });
    files['mask-truncated.npy'] = files['mask-additive.npy'].subarray(0, files['mask-additive.npy'].length - 8);
    files['mask-float64.npy'] = encodeNpy({ data: new Float32Array(b * t * s), shape: [b, t, s] }).slice();
    // Rewrite the dtype of a valid header to float64 ('<f8'); the data size then no longer matters (the dtype fails first).
    const header = new TextDecoder().decode(files['mask-float64.npy'].subarray(0, 128)).replace("'<f4'", "'<f8'");
    files['mask-float64.npy'].set(new TextEncoder().encode(header));
    files['not-npy.npy'] = new TextEncoder().encode('just some text, not an array');
    files['indices-big.npy'] = encodeNpy({ data: Int32Array.from(indices, (x, i) => (i === 12 ? s + 5 : x)), shape: [b, t, k] });
    files['mask-short.npy'] = encodeNpy(library.generateMask({ data: indices.subarray(0, t * k), shape: [1, t, k] }, s));
    for (const [name, bytes] of Object.entries(files)) writeFileSync(tmp.file(name), bytes);

    const cases: [string, string, Record<string, string>][] = [
      ['mask-bits.npy', 'indices.npy', {}],
      ['mask-additive.npy', 'indices64.npy', {}],
      ['mask-causal.npy', 'indices.npy', { causalOffset: '3' }],
      ['mask-causal.npy', 'indices.npy', {}],
      ['mask-wrong.npy', 'indices.npy', {}],
      ['mask-truncated.npy', 'indices.npy', {}],
      ['mask-float64.npy', 'indices.npy', {}],
      ['not-npy.npy', 'indices.npy', {}],
      ['mask-additive.npy', 'indices-big.npy', {}],
      ['mask-additive.npy', 'indices-big.npy', { outOfRange: 'skip' }],
      ['mask-short.npy', 'indices.npy', {}],
      ['mask-bits.npy', 'indices.npy', { seqLen: '190' }],
    ];
    let shotIndex = 0;
    for (const [mask, index, flags] of cases) {
      const args = ['check', '--mask', tmp.file(mask), '--indices', tmp.file(index)];
      if (flags.causalOffset) args.push('--causal-offset', flags.causalOffset);
      if (flags.outOfRange) args.push('--out-of-range', flags.outOfRange);
      if (flags.seqLen) args.push('--seq-len', flags.seqLen);
      const expected = await cli(...args);
      const expectedText = (expected.stdout + expected.stderr).trim().replaceAll(`${tmp.dir}/`, '');

      await page.fill('#check-form [name=causalOffset]', flags.causalOffset ?? '');
      await page.fill('#check-form [name=seqLen]', flags.seqLen ?? '');
      await page.selectOption('#check-form [name=outOfRange]', flags.outOfRange ?? 'error');
      // Both files dropped in one task, as a visitor dropping them one after the other gets one check per drop.
      await page.evaluate(`(() => {
        document.body.dataset.check = 'idle';
        for (const [role, name, b64] of ${JSON.stringify([['mask', mask, Buffer.from(files[mask]).toString('base64')], ['indices', index, Buffer.from(files[index]).toString('base64')]])}) {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const transfer = new DataTransfer();
          transfer.items.add(new File([bytes], name));
          document.querySelector('#drop-' + role).dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }
      })()`);
      await page.waitForFunction(() => document.body.dataset.check === 'done', null, { timeout: 30_000 });
      const shown = await page.$eval('#check-output', (e) => (e as HTMLElement).innerText);
      assert.equal(shown, `${expectedText} (exit code ${expected.code})`, `${mask} ${index} ${JSON.stringify(flags)}`);
      if (shotIndex++ % 4 === 0 || expected.code !== 0) await shot(page, `check-${shotIndex}-${mask.replace('.npy', '')}`);
    }
  } finally {
    tmp.done();
  }
  assert.deepEqual(errors, []);
});

test('a page without cross-origin isolation runs the pool on one thread, says so, and gives the same results', async () => {
  const dist = fileURLToPath(new URL('../../web/dist/', import.meta.url));
  assert.ok(existsSync(join(dist, 'index.html')), 'npm run web built web/dist');
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
  const plain: HttpServer = createServer((req, res) => {
    const path = join(dist, decodeURIComponent(new URL(req.url!, 'http://x').pathname).replace(/^\/+/, '') || 'index.html');
    if (!path.startsWith(dist) || !existsSync(path)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(readFileSync(path));
  });
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  const port = (plain.address() as { port: number }).port;
  try {
    const { page: open, errors: openErrors } = await openPage(browser, `http://127.0.0.1:${port}/?run=0`);
    const env = await open.$eval('#env', (e) => (e as HTMLElement).innerText);
    assert.match(env, /Not cross-origin isolated, so no SharedArrayBuffer: the pool runs on one thread/);
    const r = await open.evaluate(`(async () => {
      const pool = window.dsa.createPool({ threads: 2 });
      const fingerprint = await (${FINGERPRINT})(window.dsa, window.dsaPage.demoInputs, pool);
      const facts = { isolated: crossOriginIsolated, sab: typeof SharedArrayBuffer, threads: pool.threads, shared: pool.shared };
      await pool.close();
      return { facts, fingerprint };
    })()`) as { facts: Record<string, unknown>; fingerprint: Record<string, string> };
    assert.deepEqual(r.facts, { isolated: false, sab: 'undefined', threads: 1, shared: false });
    assert.deepEqual(r.fingerprint, await inPage<Record<string, string>>(`(${FINGERPRINT})(window.dsa, window.dsaPage.demoInputs, null)`));
    const summary = await open.evaluate(`window.dsaPage.run({ ...window.dsaPage.defaults, t: 32, s: 2048, k: 256, sweep: [512, 1024] })`) as { ok: boolean; poolShared: boolean };
    await shot(open, 'not-isolated');
    assert.equal(summary.ok, true);
    assert.equal(summary.poolShared, false);
    assert.match(await open.$eval('#summary', (e) => (e as HTMLElement).innerText), /main run on one thread \(no SharedArrayBuffer\)/);
    assert.deepEqual(openErrors, []);
    await open.close();
  } finally {
    await new Promise((resolve) => plain.close(resolve));
  }
});
