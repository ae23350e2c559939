import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { scratch } from '../helpers/numpy.js';
import { dsa } from './run.js';

test('dsa demo, tiny configuration: every strategy agrees with its reference; the report holds three SVG plots (b=2 t=24 s=640 k=64)', async () => {
  const tmp = scratch();
  try {
    const r = await dsa('demo', '--b', '2', '--t', '24', '--s', '640', '--h', '4', '--d', '16', '--k', '64', '--hq', '4', '--dqk', '16', '--dv', '8',
      '--threads', '1', '--sweep', '128,640', '--sweep-rows', '4', '--report', tmp.file('report.html'), '--json', tmp.file('demo.json'));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stderr, '', 'no progress bar when stderr is not a terminal');
    const lines = r.stdout.split('\n');
    assert.match(lines[0], /^dsa demo: b=2 t=24 s=640 h=4 d=16 k=64, attention hq=4 dqk=16 dV=8, causal offset 616, seed 1, this thread$/);
    const table = `${lines.slice(2, 12).join('\n')}\n`;
    for (const [strategy, match] of [
      ['lightning indexer scores', '-'], ['radix select', 'bit-exact'], ['broadcast', 'reference'], ['scatter', 'bit-exact'],
      ['scatter, bits form', 'bit-exact'], ['threshold \\(exact\\)', 'bit-exact'], ['dense masked', 'reference'], ['sparse \\(mask-free\\)', 'within tolerance'],
    ]) {
      assert.match(table, new RegExp(`  ${strategy} +[0-9.]+ m?s +[0-9.]+ (B|KiB|MiB)  ${match}\\n`), strategy);
    }
    const html = readFileSync(tmp.file('report.html'), 'utf8');
    assert.equal(html.match(/<svg[\s>]/g)?.length, 3);
    assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org|vega\.github\.io)/, 'self-contained: no scripts, no fetched resources');
    assert.match(html, /Time per query row against s/);
    const json = JSON.parse(readFileSync(tmp.file('demo.json'), 'utf8'));
    assert.equal(json.rows.length, 8);
    assert.deepEqual([...new Set(json.sweep.map((p: { s: number }) => p.s))], [128, 640]);
  } finally {
    tmp.done();
  }
});

test('dsa demo rejects bad flags with one line', async () => {
  const r = await dsa('demo', '--dqk', '16', '--dv', '32', '--no-report');
  assert.deepEqual([r.code, r.stderr], [2, 'dsa demo: --dv: expected at most --dqk = 16, got 32\n']);
  const r2 = await dsa('demo', '--s', 'lots');
  assert.deepEqual([r2.code, r2.stderr], [2, "error: option '--s <n>' argument 'lots' is invalid. expected a positive integer, got 'lots'\n"]);
});

test('dsa demo --module adds the full indexer module on seeded random weights, checked against top-k of its own scores (t=16 s=256 dim=64)', async () => {
  const r = await dsa('demo', '--t', '16', '--s', '256', '--h', '4', '--d', '16', '--k', '32', '--hq', '2', '--dqk', '8', '--threads', '1',
    '--module', '--dim', '64', '--q-rank', '32', '--sweep', 'none', '--no-report');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /\n\s*indexer +lightningIndexer module +[0-9.]+ m?s +[0-9.]+ (B|KiB|MiB)  bit-exact\n/);
});
