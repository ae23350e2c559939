// The page: a form for the demo's shape, which runs in a worker
// (demo-worker.ts) with progress here; the table, the time-against-s plot
// (vega-lite) and the selected keys on a canvas; the dropped-file check
// (check-worker.ts). The library is window.dsa, with the browser createPool.
import * as vega from 'vega';
import { compile } from 'vega-lite';
import * as library from '../src/index.js';
import { createPool, poolSupported } from '../src/pool/browser.js';
import { DEFAULT_MASK_VALUE } from '../src/tensor.js';
import { formatBytes } from '../src/validate.js';
import { formatMs, type DemoResult } from '../src/cli/demo.js';
import type { DemoConfig } from '../src/cli/demo-command.js';
import { timeAgainstS } from '../src/cli/report.js';
import type { CheckFlags } from '../src/cli/check-mask.js';
import { drawSelected } from './heatmap.js';
import { GPU_STAGES, computePath, type ComputePath, type GpuChoice } from './gpu.js';
import { attentionInputs, indexerInputs } from '../src/cli/demo-data.js';
import { createWebWorkerPool } from '../src/pool/web-pool.js';
import type { CheckReply, CheckRequest, DemoReply, DemoRequest } from './messages.js';

const dsa = { ...library, createPool, poolSupported };
declare global {
  interface Window {
    dsa: typeof dsa;
    dsaPage: typeof page;
  }
}
window.dsa = dsa;

const $ = <T extends HTMLElement = HTMLElement>(selector: string) => document.querySelector<T>(selector)!;

/** `dsa demo`'s defaults; threads: this machine's cores (at most 8). */
const DEFAULTS: DemoConfig = {
  b: 1, t: 256, s: 16384, h: 64, d: 128, k: 2048, hq: 8, dqk: 128, dV: 128, seed: 1,
  threads: Math.min(navigator.hardwareConcurrency || 1, 8), causal: true, module: false, dim: 7168, qRank: 1536,
  sweep: [2048, 4096, 8192, 16384], sweepRows: 16,
};

// ---- environment ------------------------------------------------------------

/** ?gpu=1 takes the WebGPU path even on a software adapter, ?gpu=0 never. */
const gpuChoice: GpuChoice = ({ '1': 'on', '0': 'off' } as const)[new URLSearchParams(location.search).get('gpu') ?? ''] ?? 'auto';
let path: ComputePath = { path: 'cpu', gpu: 'not looked at yet' };

async function describeEnvironment(): Promise<string[]> {
  path = await computePath(gpuChoice);
  const simd = await library.initSimd();
  const build = library.simdBuild();
  const lines = [
    poolSupported()
      ? `Cross-origin isolated: the pool runs on Web Workers over SharedArrayBuffer (${navigator.hardwareConcurrency} cores here).`
      : '!Not cross-origin isolated, so no SharedArrayBuffer: the pool runs on one thread (serve the page with COOP/COEP headers, as `npm run web` does).',
    !simd
      ? '!No WebAssembly SIMD: the TypeScript kernels run.'
      : build === 'relaxed'
        ? 'WebAssembly: the relaxed SIMD module (int7 scores on the relaxed i8 x i7 dot).'
        : 'WebAssembly: the baseline SIMD module (this browser rejects relaxed SIMD).',
    `GPU: ${path.gpu}.`,
  ];
  return lines;
}

// ---- the demo ---------------------------------------------------------------

interface RunSummary {
  ok: boolean;
  totalMs: number;
  wallMs: number;
  simd: string | null;
  poolShared: boolean | null;
  /** The WebGPU adapter the GPU stages ran on, or null (all on the CPU). */
  gpu: string | null;
  threads: number;
  rows: DemoResult['rows'];
}

let demoWorker: Worker | null = null;

function readForm(): DemoConfig {
  const form = $<HTMLFormElement>('#demo-form');
  const value = (name: string) => (form.elements.namedItem(name) as HTMLInputElement).value.trim();
  const positive = (name: string) => {
    const n = Number(value(name));
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`${name}: expected a positive integer, got '${value(name)}'`);
    return n;
  };
  const sweepText = value('sweep');
  const sweep = sweepText === '' || sweepText === 'none' ? [] : sweepText.split(',').map((part) => {
    const n = Number(part.trim());
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`sweep s: expected positive integers separated by commas, got '${part.trim()}'`);
    return n;
  });
  return {
    ...DEFAULTS,
    t: positive('t'), s: positive('s'), k: positive('k'), h: positive('h'), d: positive('d'), seed: positive('seed'),
    threads: positive('threads'), sweep, sweepRows: positive('sweepRows'),
    causal: (form.elements.namedItem('causal') as HTMLInputElement).checked,
  };
}

function fillForm(c: DemoConfig): void {
  const form = $<HTMLFormElement>('#demo-form');
  for (const name of ['t', 's', 'k', 'h', 'd', 'seed', 'threads', 'sweepRows'] as const) (form.elements.namedItem(name) as HTMLInputElement).value = String(c[name]);
  (form.elements.namedItem('sweep') as HTMLInputElement).value = c.sweep.join(',');
  (form.elements.namedItem('causal') as HTMLInputElement).checked = c.causal;
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

async function showResult(result: DemoResult, summary: RunSummary): Promise<void> {
  const c = result.config;
  const body = $('#results tbody');
  body.innerHTML = result.rows
    .map((r) => `<tr><td>${r.stage}</td><td>${escapeHtml(r.strategy)}</td><td class="n">${formatMs(r.ms)}</td><td class="n">${formatBytes(r.bytes)}</td>` +
      `<td class="${r.match === 'MISMATCH' ? 'bad' : ''}">${r.match || '-'}</td><td>${escapeHtml(r.detail)}</td></tr>`)
    .join('');
  $('#results').hidden = false;
  const where = summary.poolShared ? `${c.threads} Web Workers` : c.threads > 1 ? 'one thread (no SharedArrayBuffer)' : 'one worker thread';
  const cpu = `${where}, ${summary.simd ? `${summary.simd} SIMD module` : 'TypeScript kernels'}`;
  const ran = summary.gpu
    ? `path: WebGPU on ${escapeHtml(summary.gpu)} for ${GPU_STAGES.join(', ')}; the rest on the CPU (${cpu})`
    : `path: CPU, main run on ${cpu}`;
  $('#summary').innerHTML =
    `b = ${c.b}, t = ${c.t}, s = ${c.s}, h = ${c.h}, d = ${c.d}, k = ${c.k}; ${c.causal ? `causal, offset ${c.s - c.t}` : 'not causal'}; seed ${c.seed}; ` +
    `${ran}. Total ${formatMs(result.totalMs)}: ` +
    (result.ok ? '<span class="good">every check passes</span>.' : '<span class="bad">SOME STRATEGIES DISAGREE WITH THE REFERENCE</span>.');
  if (result.sweep.length > 0) {
    $('#plot-figure').hidden = false;
    const view = new vega.View(vega.parse(compile(timeAgainstS(result)).spec), { renderer: 'svg', container: '#plot', hover: true });
    await view.runAsync();
  }
  $('#heatmap-figure').hidden = false;
  drawSelected($<HTMLCanvasElement>('#heatmap'), result.selected);
  $('#heatmap-caption').textContent =
    `Keys selected by each query (batch 0): ${Math.min(result.selected.t, 256)} of ${result.selected.t} queries (rows) against all ${result.selected.s} keys ` +
    `(${Math.ceil(result.selected.s / Math.min(result.selected.s, 1024))} keys per pixel column); darker: more of the column's keys kept; grey: past the causal limit. ` +
    'The planted sink spans (64 keys at 0 and every 4096) are the dark columns every query picks.';
}

/**
 * Runs the demo in a worker and shows it; resolves with a summary (also for
 * tests, through window.dsaPage). `gpu`: take the WebGPU path (default: the
 * path the page chose for this browser).
 */
function run(config: DemoConfig = readForm(), gpu: boolean = path.path === 'webgpu'): Promise<RunSummary> {
  demoWorker?.terminate();
  fillForm(config);
  const worker = new Worker(new URL('./demo-worker.ts', import.meta.url), { type: 'module', name: 'dsa-ts demo' });
  demoWorker = worker;
  document.body.dataset.demo = 'running';
  $<HTMLButtonElement>('#run').disabled = true;
  const progress = $<HTMLProgressElement>('#progress');
  progress.value = 0;
  $('#stage').textContent = 'starting';
  const start = performance.now();
  return new Promise<RunSummary>((resolve, reject) => {
    const fail = (message: string) => {
      document.body.dataset.demo = 'error';
      $('#stage').innerHTML = `<span class="bad">${escapeHtml(message)}</span>`;
      $<HTMLButtonElement>('#run').disabled = false;
      worker.terminate();
      reject(new Error(message));
    };
    worker.onerror = (event) => fail(event.message || 'the demo worker failed');
    worker.onmessage = async (event: MessageEvent<DemoReply>) => {
      const reply = event.data;
      if (reply.type === 'progress') {
        progress.max = reply.total;
        progress.value = reply.done;
        $('#stage').textContent = `${reply.stage} (${reply.done} of ${reply.total})`;
      } else if (reply.type === 'error') {
        fail(reply.message);
      } else {
        worker.terminate();
        const wallMs = performance.now() - start;
        const summary: RunSummary = { ok: reply.result.ok, totalMs: reply.result.totalMs, wallMs, simd: reply.simd, poolShared: reply.poolShared, gpu: reply.gpu, threads: reply.result.config.threads, rows: reply.result.rows };
        progress.value = progress.max;
        $('#stage').textContent = `done in ${formatMs(wallMs)}`;
        await showResult(reply.result, summary);
        $<HTMLButtonElement>('#run').disabled = false;
        document.body.dataset.demo = 'done';
        resolve(summary);
      }
    };
    worker.postMessage({ config, gpu } satisfies DemoRequest);
  });
}

// ---- the dropped-file check ---------------------------------------------------

const files: { mask: File | null; indices: File | null } = { mask: null, indices: null };

function readCheckFlags(): CheckFlags {
  const form = $<HTMLFormElement>('#check-form');
  const value = (name: string) => (form.elements.namedItem(name) as HTMLInputElement).value.trim();
  const integer = (name: string, flag: string, positive: boolean) => {
    if (value(name) === '') return undefined;
    const n = Number(value(name));
    if (!Number.isSafeInteger(n) || (positive && n <= 0)) throw new RangeError(`${flag}: expected ${positive ? 'a positive integer' : 'an integer'}, got '${value(name)}'`);
    return n;
  };
  const dropped = value('droppedValue');
  const droppedValue = dropped === 'default' ? DEFAULT_MASK_VALUE : dropped === '-inf' ? -Infinity : dropped === 'inf' ? Infinity : Number(dropped);
  if (dropped === '' || Number.isNaN(droppedValue) || droppedValue === 0) throw new RangeError(`--dropped-value: expected 'default', '-inf' or a non-zero number, got '${dropped}'`);
  return {
    mask: files.mask?.name ?? '', indices: files.indices?.name ?? '',
    seqLen: integer('seqLen', '--seq-len', true), causalOffset: integer('causalOffset', '--causal-offset', false),
    outOfRange: value('outOfRange') === 'skip' ? 'skip' : 'error', droppedValue: Math.fround(droppedValue),
  };
}

let checkWorker: Worker | null = null;

/** Checks `mask` against `indices` in a worker; shows and resolves the CLI's output (or its error line). A new check stops the one running. */
function check(mask: File, indices: File, flags: CheckFlags = readCheckFlags()): Promise<{ ok: boolean; exitCode: number; output: string }> {
  checkWorker?.terminate();
  const worker = new Worker(new URL('./check-worker.ts', import.meta.url), { type: 'module', name: 'dsa-ts check' });
  checkWorker = worker;
  document.body.dataset.check = 'running';
  const bar = $<HTMLProgressElement>('#check-progress');
  bar.hidden = false;
  bar.value = 0;
  const out = $('#check-output');
  out.textContent = `dsa check --mask ${mask.name} --indices ${indices.name} ...`;
  return new Promise((resolve) => {
    const finish = (ok: boolean, exitCode: number, output: string) => {
      worker.terminate();
      bar.hidden = true;
      out.innerHTML = `<span class="${ok ? 'good' : 'bad'}">${escapeHtml(output.trim())}</span> (exit code ${exitCode})`;
      document.body.dataset.check = 'done';
      resolve({ ok, exitCode, output });
    };
    worker.onerror = (event) => finish(false, 2, `dsa check: ${event.message || 'the check worker failed'}`);
    worker.onmessage = (event: MessageEvent<CheckReply>) => {
      const reply = event.data;
      if (reply.type === 'progress') {
        bar.max = reply.total;
        bar.value = reply.done;
      } else if (reply.type === 'error') finish(false, 2, reply.message);
      else finish(reply.ok, reply.ok ? 0 : 1, reply.output);
    };
    worker.postMessage({ mask, indices, flags: { ...flags, mask: mask.name, indices: indices.name } } satisfies CheckRequest);
  });
}

let pendingCheck: ReturnType<typeof setTimeout> | undefined;

/** Sets a file; once both are set, checks them (after this task, so two files dropped together start one check). */
function setFile(role: 'mask' | 'indices', file: File): void {
  files[role] = file;
  $(`#drop-${role} .file`).textContent = `${file.name} (${formatBytes(file.size)})`;
  clearTimeout(pendingCheck);
  pendingCheck = setTimeout(() => {
    if (!files.mask || !files.indices) return;
    try {
      void check(files.mask, files.indices);
    } catch (err) {
      document.body.dataset.check = 'done';
      $('#check-output').innerHTML = `<span class="bad">${escapeHtml((err as Error).message)}</span>`;
    }
  }, 0);
}

for (const role of ['mask', 'indices'] as const) {
  const zone = $(`#drop-${role}`);
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    const file = event.dataTransfer?.files[0];
    if (file) setFile(role, file);
  });
  $<HTMLInputElement>(`#${role}-file`).addEventListener('change', (event) => {
    const file = (event.target as HTMLInputElement).files?.[0];
    if (file) setFile(role, file);
  });
}

// ---- start --------------------------------------------------------------------

/**
 * The page's own handle (console and tests): run the demo, check files, the
 * demo's seeded inputs, and the raw Web Worker pool under createPool.
 */
const page = {
  run,
  check,
  defaults: DEFAULTS,
  ready: Promise.resolve() as Promise<void>,
  demoInputs: { indexerInputs, attentionInputs },
  internals: { createWebWorkerPool },
};
window.dsaPage = page;

fillForm(DEFAULTS);
$<HTMLFormElement>('#demo-form').addEventListener('submit', (event) => {
  event.preventDefault();
  try {
    run().catch(() => {});
  } catch (err) {
    $('#stage').innerHTML = `<span class="bad">${escapeHtml((err as Error).message)}</span>`;
  }
});

page.ready = describeEnvironment().then((lines) => {
  $('#env').innerHTML = lines.map((line) => (line.startsWith('!') ? `<li class="warn">${escapeHtml(line.slice(1))}</li>` : `<li>${escapeHtml(line)}</li>`)).join('');
  document.body.dataset.ready = 'yes';
  // A visit runs the default pipeline once; ?run=0 skips it (tests drive the page themselves).
  if (new URLSearchParams(location.search).get('run') !== '0') run().catch(() => {});
});
