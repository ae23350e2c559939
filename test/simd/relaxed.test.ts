// The relaxed module in Node, engine by engine. Node 22 and later validate
// relaxed SIMD and compute its dot exactly in both tiers: the relaxed module
// is the default there, and must give the baseline module's bits and the
// TypeScript reference's in the baseline tier alone (--no-wasm-tier-up) and
// in the optimising tier alone (--no-liftoff). Node 20 validates it only
// with --experimental-wasm-relaxed-simd, and its baseline tier (Liftoff)
// then drops the dot's accumulator: the fresh probe must refuse the module
// there, even when the same probe code was optimised before. Chromium runs
// the relaxed module for real in test/web/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { initSimd, relaxedSimdSupported, simdBuild } from '../../src/simd/index.js';
import { probeBytes, probeRelaxedDot } from '../../src/simd/relaxed-probe.js';

const major = Number(process.versions.node.split('.')[0]);
const child = fileURLToPath(new URL('./relaxed-child.ts', import.meta.url));
const probeChild = fileURLToPath(new URL('./probe-child.ts', import.meta.url));
/** Node 20 needs the flag to validate relaxed SIMD; later lines no longer know it. */
const relaxedFlag = major < 22 ? ['--experimental-wasm-relaxed-simd'] : [];

function runChild(file: string, flags: string[]) {
  const out = execFileSync(process.execPath, [...flags, '--import', 'tsx', file], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!);
}

interface ChildReport {
  loaded: string | null;
  error?: string;
  cases: { name: string; differences: number }[];
}

function assertBitIdentical(report: ChildReport) {
  assert.equal(report.error, undefined);
  assert.equal(report.loaded, 'relaxed');
  assert.equal(report.cases.length, 50);
  for (const c of report.cases) assert.equal(c.differences, 0, c.name);
}

test(`Node ${process.versions.node}: the default build is ${major >= 22 ? 'the relaxed module' : 'the baseline module (relaxed SIMD needs a flag)'}; initSimd switches builds and refuses bad options`, async () => {
  await assert.rejects(initSimd({ relaxed: 'yes' as unknown as boolean }), { name: 'TypeError', message: /relaxed: expected a boolean, got string/ });
  await assert.rejects(initSimd({ relax: true } as never), { name: 'TypeError', message: /initSimd: unknown option 'relax'/ });
  if (major >= 22) {
    assert.equal(relaxedSimdSupported(), true, `Node ${process.versions.node} validates relaxed SIMD and computes its dot exactly`);
    assert.equal(simdBuild(), 'relaxed');
    await initSimd({ relaxed: false });
    assert.equal(simdBuild(), 'baseline');
    await initSimd({ relaxed: true });
    assert.equal(simdBuild(), 'relaxed');
  } else {
    assert.equal(relaxedSimdSupported(), false, 'Node 20 validates relaxed SIMD only with a flag');
    assert.equal(simdBuild(), 'baseline');
    await assert.rejects(initSimd({ relaxed: true }), { name: 'RangeError', message: /relaxed: true needs WebAssembly relaxed SIMD/ });
    assert.equal(simdBuild(), 'baseline');
  }
});

test('the probe module: valid bytes of its own for every nonce; the relaxed dot with its accumulator is checked on every call', () => {
  for (const nonce of [0, 1, -1, 63, 64, -65, 2 ** 31 - 1, -(2 ** 31)]) assert.equal(WebAssembly.validate(probeBytes(nonce)), major >= 22, `nonce ${nonce}`);
  assert.notDeepEqual(probeBytes(1), probeBytes(2));
  if (major >= 22) {
    const result = probeRelaxedDot();
    assert.equal(result.exact, true);
    assert.ok(result.calls >= 4, `${result.calls} calls`);
  }
});

test('relaxed module, baseline tier only (--no-wasm-tier-up): float32, int8 and int7 scores (all keys, causal, key windows, seqLens, a paged int8 cache) bit-identical to the baseline module and the TypeScript reference', { skip: major < 22 && 'Node 20: its baseline tier gets the relaxed dot wrong (the next tests)' }, () => {
  assertBitIdentical(runChild(child, ['--no-wasm-tier-up']));
});

test('relaxed module, optimising tier only (--no-liftoff): float32, int8 and int7 scores bit-identical to the baseline module and the TypeScript reference', () => {
  assertBitIdentical(runChild(child, [...relaxedFlag, '--no-liftoff']));
});

test('a baseline tier that drops the relaxed dot\'s accumulator (Node 20 Liftoff) fails the fresh probe, even after a copy of the same probe code was optimised: the baseline module is used', { skip: major >= 22 && `Node ${process.versions.node} computes the relaxed dot exactly in both tiers; the engine with the wrong tier is Node 20` }, () => {
  const report = runChild(child, relaxedFlag);
  assert.match(report.error ?? '', /computes the relaxed dot wrong/);
  assert.equal(report.loaded, 'baseline');
  const probe = runChild(probeChild, relaxedFlag);
  assert.equal(probe.firstWarmCall, false, 'the baseline tier is wrong on its first call');
  assert.equal(probe.copyFirstCall, true, 'an instance of the same bytes starts on the optimised code: a probe of that kind would be fooled');
  assert.equal(probe.fresh.exact, false, 'a probe with bytes of its own still sees the baseline tier');
});
