import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withProgress } from '../../src/cli/progress.js';
import { rowBlocks } from '../../src/cli/inputs.js';
import type { CliContext } from '../../src/cli/context.js';

/** A stand-in terminal: what cli-progress writes to it, as text. */
function fakeTerminal() {
  let text = '';
  const stream = { isTTY: true, columns: 120, write: (chunk: string) => ((text += chunk), true) };
  return { stream: stream as unknown as NodeJS.WritableStream, text: () => text };
}

const ctx = (isTTY: boolean): CliContext => ({ io: { out() {}, err() {}, isTTY }, setExitCode() {} });

test('withProgress yields every block in order; off a terminal it draws nothing', () => {
  const term = fakeTerminal();
  const seen = [...withProgress(ctx(false), 'dsa mask', 10, rowBlocks(2, 5, 2), { after: 0, stream: term.stream })].map((b) => [b.row, b.t0, b.t1]);
  assert.deepEqual(seen, [[0, 0, 2], [2, 2, 4], [4, 4, 5], [5, 0, 2], [7, 2, 4], [9, 4, 5]]);
  assert.equal(term.text(), '');
});

test('withProgress draws a bar on a terminal once the run is slow enough, counts rows, and clears it when the loop ends early', () => {
  const term = fakeTerminal();
  let rows = 0;
  for (const b of withProgress(ctx(true), 'dsa check', 10, rowBlocks(2, 5, 2), { after: 0, stream: term.stream })) {
    rows += b.t1 - b.t0;
    if (rows === 9) break; // the generator's finally stops the bar
  }
  assert.match(term.text(), /dsa check \[.*\] \d+% \| \d+\/10 query rows/);
  const full = fakeTerminal();
  for (const _ of withProgress(ctx(true), 'dsa mask', 10, rowBlocks(2, 5, 2), { after: 0, stream: full.stream })) void _;
  assert.match(full.text(), /dsa mask \[=+\] 100% \| 10\/10 query rows/);
  const quick = fakeTerminal();
  for (const _ of withProgress(ctx(true), 'dsa mask', 10, rowBlocks(2, 5, 2), { after: 60_000, stream: quick.stream })) void _;
  assert.equal(quick.text(), '', 'a run shorter than `after` prints nothing');
});
