// The one float closeness check of the test suite. Non-finite values must sit
// at the same positions (same inf sign, NaN where NaN); finite values must
// satisfy |actual - expected| <= atol + rtol * |expected|. A failure names the
// worst position, both values and the max abs/rel errors.
import assert from 'node:assert/strict';

type Floats = ArrayLike<number>;

export interface Tolerance {
  rtol?: number;
  atol?: number;
}

export function assertClose(actual: Floats, expected: Floats, tol: Tolerance = {}, label = ''): void {
  const rtol = tol.rtol ?? 1e-5;
  const atol = tol.atol ?? 0;
  const at = label ? `${label}: ` : '';
  assert.equal(actual.length, expected.length, `${at}length ${actual.length} != expected ${expected.length}`);
  let worst = -1;
  let worstRatio = 0;
  let maxAbs = 0;
  let maxRel = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (!Object.is(a, e) && !(Number.isNaN(a) && Number.isNaN(e))) {
        assert.fail(`${at}non-finite mismatch at ${i}: actual ${a}, expected ${e}`);
      }
      continue;
    }
    const err = Math.abs(a - e);
    maxAbs = Math.max(maxAbs, err);
    if (e !== 0) maxRel = Math.max(maxRel, err / Math.abs(e));
    const ratio = err / (atol + rtol * Math.abs(e));
    if (ratio > worstRatio || (err > 0 && atol + rtol * Math.abs(e) === 0)) {
      worstRatio = ratio;
      worst = i;
    }
  }
  if (worstRatio > 1) {
    assert.fail(
      `${at}not close (rtol ${rtol}, atol ${atol}): worst at ${worst}: actual ${actual[worst]}, expected ${expected[worst]}; ` +
        `max abs err ${maxAbs.toExponential(3)}, max rel err ${maxRel.toExponential(3)}`,
    );
  }
}
