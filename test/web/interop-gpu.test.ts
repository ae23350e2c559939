// The GPU hand-over in headless Chromium (SwiftShader's WebGPU adapter):
// test/web/interop-gpu.page.ts, bundled here with esbuild and served with
// onnxruntime-web's wasm files from node_modules (no network). An
// onnxruntime-web session on its WebGPU execution provider gives scores, q
// and kv as GPU buffers; topk and sparseAttention run on dsa-ts's backend on
// ONNX Runtime's own device (await ort.env.webgpu.device), the session's
// indexer q, k and weights into indexerTopk, and give ort
// tensors over GPU buffers that a second WebGPU session takes: no
// intermediate is read back (counted), and every stage equals the CPU path
// of the same session outputs (top-k bit for bit, attention and the
// projection within float32 tolerance). The wasm provider's CPU tensors go
// through the same GPU ops, and tfjs-webgpu's dataToGPU() hand-over on
// tfjs's device, results back as tfjs tensors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { launch, openPage } from '../../web/chromium.js';
import { assertClose } from '../helpers/close.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const ortDist = `${root}node_modules/onnxruntime-web/dist/`;

let server: Server;
let browser: Browser;
let page: Page;
let errors: string[];

before(async () => {
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL('./interop-gpu.page.ts', import.meta.url))],
    bundle: true, format: 'esm', target: 'es2022', write: false, logLevel: 'warning', absWorkingDir: root,
  });
  const js = bundle.outputFiles[0].text;
  server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/') {
      res.setHeader('content-type', 'text/html');
      return res.end('<!doctype html><html><head><link rel="icon" href="data:,"></head><body><script type="module" src="/page.js"></script></body></html>');
    }
    if (path === '/page.js') {
      res.setHeader('content-type', 'text/javascript');
      return res.end(js);
    }
    const file = path.startsWith('/ort/') ? ortDist + path.slice(5) : null;
    if (file && !file.includes('..') && existsSync(file)) {
      res.setHeader('content-type', file.endsWith('.wasm') ? 'application/wasm' : 'text/javascript');
      return res.end(readFileSync(file));
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  browser = await launch();
  ({ page, errors } = await openPage(browser, `http://127.0.0.1:${address.port}/`));
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
});

type Stage = { values: number[]; indices: number[]; out: number[]; y: number[] };
type Result<T> = { ok: true; value: T } | { ok: false; error: string };

const check = <T>(name: string) => page.evaluate(`window.interopGpu.${name}()`) as Promise<Result<T>>;
const floats = (bits: number[]) => new Float32Array(Uint32Array.from(bits).buffer);
const TOL = { rtol: 1e-5, atol: 1e-6 };
/** The projection's MatMul on the WebGPU provider against the wasm provider's. */
const MATMUL_TOL = { rtol: 1e-5, atol: 1e-5 };

test('onnxruntime-web on WebGPU -> topk -> sparseAttention -> onnxruntime-web on WebGPU, on its device: no intermediate read back, equal to the CPU path', async (t) => {
  const r = await check<{
    locations: string[]; resultLocations: string[]; sameBuffers: boolean; handOver: number[]; checkedReads: number[]; projectionReads: number[];
    got: Stage; cpu: Stage; foreign: string; features: string[]; adapter: { vendor: string; architecture: string };
    indexer: { location: string; values: number[]; indices: number[]; cpuValues: number[]; cpuIndices: number[]; reads: number[] };
  }>('ortWebgpu');
  if (!r.ok) assert.fail(`onnxruntime-web's WebGPU provider or the hand-over failed on this adapter: ${r.error}`);
  const v = r.value;
  t.diagnostic(
    `adapter ${v.adapter.vendor} ${v.adapter.architecture}, features used: ${v.features.join(' ') || 'none'}; read-backs during the hand-over: [${v.handOver.join(', ')}] bytes; ` +
      `during the second session: [${v.projectionReads.join(', ')}]; during indexerTopk: [${v.indexer.reads.join(', ')}]`,
  );
  assert.deepEqual(v.locations, Array(6).fill('gpu-buffer'), 'the first session gives GPU buffers');
  assert.deepEqual(v.resultLocations, ['gpu-buffer', 'gpu-buffer', 'gpu-buffer', 'cpu']);
  assert.ok(v.sameBuffers);
  // With nan: 'lowest' the hand-over reads nothing back; the default nan: 'error' reads topk's NaN flags, one int32 a row, never scores, indices or attention.
  assert.deepEqual(v.handOver, [], 'no intermediate read back');
  assert.deepEqual(v.indexer.reads, [], 'indexerTopk: no read-back');
  assert.deepEqual(v.checkedReads, [6 * 4], 'nan: error reads the NaN flags only');
  assert.deepEqual(v.got.values, v.cpu.values, 'top-k values bit for bit');
  assert.deepEqual(v.got.indices, v.cpu.indices, 'top-k indices bit for bit');
  assertClose(v.got.out, v.cpu.out, TOL, 'attention out');
  assertClose(v.got.y, v.cpu.y, MATMUL_TOL, 'second session');
  // The indexer's q, k and weights from the session into the fused top-k: the CPU's selection, scores within the float32 tolerance.
  assert.equal(v.indexer.location, 'gpu-buffer');
  assert.deepEqual(v.indexer.indices, v.indexer.cpuIndices, 'indexerTopk selects what the CPU selects');
  assertClose(v.indexer.values, v.indexer.cpuValues, TOL, 'indexerTopk values');
  assert.match(v.foreign, /^TypeError: topk: scores: the GPUBuffer \(a float32 tensor of shape \[1, 6, 80\]\) is not one of this backend's device \(\[Buffer.*\] is associated with \[Device.*\], and cannot be used with \[Device.*\]\.\); create the backend on the device that made it/);
  assert.deepEqual(errors, []);
});

test("onnxruntime-web's wasm provider: its CPU tensors through the GPU ops and into a second session equal the CPU path", async () => {
  const r = await check<{ kinds: string[]; got: Stage; cpu: Stage }>('ortWasm');
  if (!r.ok) assert.fail(r.error);
  assert.deepEqual(r.value.kinds, ['cpu', 'cpu']);
  assert.deepEqual(r.value.got.values, r.value.cpu.values);
  assert.deepEqual(r.value.got.indices, r.value.cpu.indices);
  assertClose(r.value.got.out, r.value.cpu.out, TOL, 'attention out');
  assertClose(r.value.got.y, r.value.cpu.y, TOL, 'second session');
});

test("tfjs-webgpu: dataToGPU() into topk on tfjs's device, results as tfjs tensors that tfjs ops take; bool refused by name", async () => {
  const r = await check<{ backend: string; handOver: number[]; got: { values: number[]; indices: number[]; doubled: number[] }; cpu: { values: number[]; indices: number[] }; bool: string }>('tfWebgpu');
  if (!r.ok) assert.fail(`tfjs-webgpu on this adapter: ${r.error}`);
  const v = r.value;
  assert.equal(v.backend, 'webgpu');
  assert.deepEqual(v.handOver, [6 * 4], 'only topk\'s NaN flags read back');
  assert.deepEqual(v.got.values, v.cpu.values);
  assert.deepEqual(v.got.indices, v.cpu.indices);
  assert.deepEqual(v.got.doubled, Array.from(floats(v.cpu.values), (x) => Math.fround(x * 2)));
  assert.match(v.bool, /^TypeError: mask: expected dtype float32 or uint8 or uint32 on the GPU, got a tfjs dataToGPU\(\) result of dtype 'bool'/);
  assert.deepEqual(errors, []);
});
