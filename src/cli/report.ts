/**
 * The `dsa demo` report: one self-contained HTML file (no scripts, no
 * network) with the strategy table and SVG plots rendered in Node by
 * vega-lite + vega (renderer 'none', `toSVG()`).
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { formatBytes } from '../validate.js';
import { formatMs, type DemoResult } from './demo.js';

export async function toSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The seed's finding: time per query row against s, per strategy (also drawn by the web page). */
export function timeAgainstS(result: Pick<DemoResult, 'config' | 'sweep'>): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Time per query row against s', subtitle: `k = ${result.config.k}, ${result.config.sweepRows} queries per run, one thread, median of repeats; log-log` },
    width: 560,
    height: 340,
    data: { values: result.sweep.map((p) => ({ ...p, msPerRow: Math.max(p.msPerRow, 1e-4) })) },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 's', type: 'quantitative', scale: { type: 'log', base: 2 }, title: 's (keys)' },
      y: { field: 'msPerRow', type: 'quantitative', scale: { type: 'log' }, title: 'ms per query row' },
      color: { field: 'strategy', type: 'nominal', title: 'strategy', legend: { labelLimit: 260 } },
    },
  };
}

/** Queries (every `stride`-th) against key bins: the share of each bin's keys selected. */
function selectedKeys(result: DemoResult): TopLevelSpec {
  const { t, s, kept } = result.selected;
  const queryRows = Math.min(64, t);
  const bins = Math.min(128, s);
  const values: { query: number; key: number; kept: number }[] = [];
  for (let qi = 0; qi < queryRows; qi++) {
    const ti = Math.floor((qi * t) / queryRows);
    for (let bin = 0; bin < bins; bin++) {
      const j0 = Math.floor((bin * s) / bins);
      const j1 = Math.floor(((bin + 1) * s) / bins);
      let n = 0;
      for (let j = j0; j < j1; j++) n += kept[ti * s + j];
      values.push({ query: ti, key: j0, kept: n / (j1 - j0) });
    }
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Selected keys, all of s', subtitle: `${queryRows} of ${t} queries, keys in ${bins} bins of ${Math.ceil(s / bins)}: share selected` },
    width: 640,
    height: 260,
    data: { values },
    mark: { type: 'rect' },
    encoding: {
      x: { field: 'key', type: 'ordinal', title: 'key (bin start)', axis: { values: values.filter((_, i) => i < bins && i % 16 === 0).map((v) => v.key), labelAngle: 0 } },
      y: { field: 'query', type: 'ordinal', title: 'query', axis: { values: values.filter((v, i) => i % bins === 0 && (i / bins) % 8 === 0).map((v) => v.query) } },
      color: { field: 'kept', type: 'quantitative', title: 'share kept', scale: { scheme: 'blues', domain: [0, 1] } },
    },
  };
}

/** The last queries against the last keys, key by key: kept, dropped, or beyond the causal limit. */
function causalEdge(result: DemoResult): TopLevelSpec {
  const { t, s, kept, offset } = result.selected;
  const queries = Math.min(48, t);
  const keys = Math.min(160, s);
  const values: { query: number; key: number; state: string }[] = [];
  for (let ti = t - queries; ti < t; ti++) {
    for (let j = s - keys; j < s; j++) {
      const state = kept[ti * s + j] ? 'selected' : offset !== null && j > ti + offset ? 'after the query (causal)' : 'not selected';
      values.push({ query: ti, key: j, state });
    }
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Selected keys at the causal edge', subtitle: `queries ${t - queries}..${t - 1}, keys ${s - keys}..${s - 1}` },
    width: 640,
    height: 200,
    data: { values },
    mark: { type: 'rect' },
    encoding: {
      x: { field: 'key', type: 'ordinal', title: 'key', axis: { values: values.filter((_, i) => i < keys && i % 20 === 0).map((v) => v.key), labelAngle: 0 } },
      y: { field: 'query', type: 'ordinal', title: 'query', axis: { values: values.filter((v, i) => i % keys === 0 && (i / keys) % 8 === 0).map((v) => v.query) } },
      color: {
        field: 'state',
        type: 'nominal',
        title: null,
        scale: { domain: ['selected', 'not selected', 'after the query (causal)'], range: ['#2166ac', '#e8eef5', '#bdbdbd'] },
        legend: { labelLimit: 300 },
      },
    },
  };
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export async function renderReport(result: DemoResult): Promise<string> {
  const c = result.config;
  const [time, selected, edge] = await Promise.all([timeAgainstS(result), selectedKeys(result), causalEdge(result)].map(toSvg));
  const rows = result.rows
    .map((r) => `<tr><td>${r.stage}</td><td>${escapeHtml(r.strategy)}</td><td class="n">${formatMs(r.ms)}</td><td class="n">${formatBytes(r.bytes)}</td>` +
      `<td class="${r.match === 'MISMATCH' ? 'bad' : ''}">${r.match || '-'}</td><td>${escapeHtml(r.detail)}</td></tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dsa demo report</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
td.n { text-align: right; white-space: nowrap; }
td.bad { color: #b00; font-weight: bold; }
figure { margin: 1.5em 0; }
code { background: #f4f4f4; padding: 0 3px; }
</style>
</head>
<body>
<h1>DeepSeek Sparse Attention: demo report</h1>
<p>b = ${c.b}, t = ${c.t}, s = ${c.s}, h = ${c.h}, d = ${c.d}, k = ${c.k}; attention hq = ${c.hq}, dqk = ${c.dqk}, dV = ${c.dV};
${c.causal ? `causal, offset s - t = ${c.s - c.t}` : 'not causal'}; seed ${c.seed}; ${c.threads > 1 ? `${c.threads} worker threads` : 'one thread'}; total ${formatMs(result.totalMs)}.
Inputs are synthetic: Gaussian noise plus planted "sink" spans (64 keys at 0 and every 4096 keys) and a recency bias, so the indexer's choices are visible.</p>
<table>
<thead><tr><th>stage</th><th>strategy</th><th>time</th><th>memory</th><th>matches the reference</th><th>notes</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
<p>Masks are compared byte for byte with the broadcast reference (the definition); sparse attention with dense masked attention,
within |a - e| &le; 1e-5 + 1e-4 |e|. Memory is the bytes of each result.</p>
<figure>${time}<figcaption>Broadcast grows with k*s per query, scatter and threshold with s, sparse attention not at all (k is fixed); dense attention grows with s.</figcaption></figure>
<figure>${selected}<figcaption>The sink spans are picked by every query (the columns); the recency bias makes later keys likelier.</figcaption></figure>
<figure>${edge}<figcaption>Query t sees keys up to t + ${c.causal ? c.s - c.t : 's'}; nothing past that edge is selected.</figcaption></figure>
</body>
</html>
`;
}
