// What every fuzz file of test/fuzz checks of one random call: it ends
// within BOUND_MS; it either equals the definition the test wrote with plain
// loops, or throws an Error of an allowed class (RangeError, TypeError, or
// the module's own named error) whose message names one of the arguments
// the definition says are bad, and never an engine error ('Invalid typed
// array length', 'Maximum call stack', 'Cannot read properties'...) nor a
// thrown non-Error.
import assert from 'node:assert/strict';
import fc from 'fast-check';

export const BOUND_MS = 250;
export const INT32_MAX = 2 ** 31 - 1;

/** The definition's verdict: the result, or every argument that makes the call invalid (the call may name any one). */
export type Expected<T> = { bad: string[] } | { value: T };

/** Messages of the engine, not of the library: an argument got past the edge unchecked. */
const ENGINE = /Invalid typed array length|Maximum call stack|Invalid array length|Array buffer allocation failed|Cannot read propert|is not a function|is not iterable|Cannot convert|out of memory|Offset is outside|Start offset|should be a multiple of|Cannot destructure|is not a constructor|Invalid string length|Do not know how to serialize|Cannot mix BigInt|Invalid DataView|Invalid time value|cyclic object/;

/** Whether `message` names `arg`: it starts with it (`s:`, `window.start:`, `b * t:`), or it is the memory guard's. */
export function names(message: string, arg: string): boolean {
  if (arg === 'maxBytes') return /over maxBytes = |^maxBytes: /.test(message);
  return message.startsWith(arg) && /^[:.\s[]/.test(message.slice(arg.length));
}

/** Calls made, and how many of them were refused, per function (printed with the results). */
const tally = new Map<string, { calls: number; refused: number }>();

export function count(fn: string, refused: boolean): void {
  const c = tally.get(fn) ?? { calls: 0, refused: 0 };
  tally.set(fn, { calls: c.calls + 1, refused: c.refused + (refused ? 1 : 0) });
}

export function report(fn: string, started: number): void {
  const { calls, refused } = tally.get(fn) ?? { calls: 0, refused: 0 };
  console.log(`${fn}: ${calls} calls, ${calls - refused} results and ${refused} named errors, ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

type ErrorClass = abstract new (...args: never[]) => Error;
const STANDARD: readonly ErrorClass[] = [RangeError, TypeError];

/** The error of a refused call: of an allowed class, naming one of `bad`, no engine message. */
export function assertNamedError(what: string, error: unknown, bad: readonly string[], classes: readonly ErrorClass[] = STANDARD): asserts error is Error {
  assert.ok(error instanceof Error, `${what}: expected an Error naming ${bad.join(' or ')}, got ${error === undefined ? 'a result' : `a thrown ${typeof error} ${String(error)}`}`);
  assert.ok(classes.some((c) => error instanceof c), `${what}: expected ${classes.map((c) => c.name).join(' or ')} naming ${bad.join(' or ')}, got ${error.constructor.name}: ${error.message}`);
  // An engine's message quoted in parentheses after the library's own (what a failed allocation said) is fine.
  assert.ok(!ENGINE.test(error.message.replace(/\([^()]*\)/g, '')), `${what}: an engine error got through: ${error.constructor.name}: ${error.message}`);
  assert.ok(bad.some((arg) => names(error.message, arg)), `${what}: "${error.message}" names none of ${bad.join(', ')}`);
}

function timed<T>(call: () => T): { got?: T; error?: unknown; threw: boolean; ms: number } {
  const t0 = performance.now();
  try {
    const got = call();
    return { got, threw: false, ms: performance.now() - t0 };
  } catch (error) {
    return { error, threw: true, ms: performance.now() - t0 };
  }
}

/** The verdict on one finished call: within the bound, and the definition's result or a named error of an allowed class. */
function judge<T, W>(what: string, run: { got: T | undefined; error: unknown; threw: boolean; ms: number }, expected: Expected<W>, same: (got: T, want: W) => void, classes?: readonly ErrorClass[]): void {
  const { got, error, threw, ms } = run;
  assert.ok(ms < BOUND_MS, `${what}: took ${ms.toFixed(0)} ms`);
  if ('bad' in expected) {
    if (!threw) assert.fail(`${what}: expected an error naming ${expected.bad.join(' or ')}, got a result`);
    assertNamedError(what, error, expected.bad, classes);
  } else {
    if (threw) assert.fail(`${what}: expected a result, got ${error instanceof Error ? `${error.constructor.name}: ${error.message}` : `a thrown ${typeof error}`}`);
    same(got as T, expected.value);
  }
}

/** Runs one call against its definition, within the time bound. */
export function check<T, W>(what: string, call: () => T, expected: Expected<W>, same: (got: T, want: W) => void, classes?: readonly ErrorClass[]): void {
  count(what.split(/[ (]/)[0], 'bad' in expected);
  const { got, error, threw, ms } = timed(call);
  judge(what, { got, error, threw, ms }, expected, same, classes);
}

/** The same for an async call: it settles within the bound, resolving to the definition or rejecting with a named error. */
export async function checkAsync<T, W>(what: string, call: () => Promise<T>, expected: Expected<W>, same: (got: T, want: W) => void, classes?: readonly ErrorClass[]): Promise<void> {
  count(what.split(/[ (]/)[0], 'bad' in expected);
  const t0 = performance.now();
  let got: T | undefined, error: unknown, threw = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), BOUND_MS * 4)));
  try {
    const r = await Promise.race([call(), late]);
    if (r === 'late') assert.fail(`${what}: did not settle within ${BOUND_MS * 4} ms`);
    got = r as T;
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    error = e;
    threw = true;
  } finally {
    clearTimeout(timer);
  }
  const ms = performance.now() - t0;
  judge(what, { got, error, threw, ms }, expected, same, classes);
}

/** A uniform integer in [0, 100) (fc.double is not uniform in value). */
export const percent = fc.integer({ min: 0, max: 99 });

export const isSize = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0;

/** Mostly `good`, sometimes (1 in `odds + 1`) `bad`. */
export function mostly<T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>, odds = 8): fc.Arbitrary<T> {
  return fc.oneof({ weight: odds, arbitrary: good }, { weight: 1, arbitrary: bad });
}

/** Values a float input may hold: small integers and halves (sums exact in float32), zero of both signs, rarely NaN or ±Infinity. */
export const FLOATS = [-2, -1, -0.5, 0, -0, 0.5, 1, 1.5, 2, 3];
export function floatsArb(n: number, nonFinitePercent = 0): fc.Arbitrary<Float32Array> {
  return fc
    .array(fc.tuple(fc.constantFrom(...FLOATS), percent, fc.constantFrom(NaN, Infinity, -Infinity)), { minLength: n, maxLength: n })
    .map((xs) => Float32Array.from(xs, ([v, u, bad]) => (u < nonFinitePercent ? bad : v)));
}

/** Random reals in [-4, 4) as float32, for results compared with a tolerance. */
export function realsArb(n: number): fc.Arbitrary<Float32Array> {
  return fc.array(fc.integer({ min: -4096, max: 4095 }), { minLength: n, maxLength: n }).map((xs) => Float32Array.from(xs, (x) => x / 1024));
}

/** Numbers that are no size: zero, negative, fractional, NaN, infinite, past 2^31 and 2^53, a string. */
export const NOT_SIZES: readonly unknown[] = [0, -1, 1.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e300, '4', null];

/** Typed arrays of the wrong kind for a Float32Array argument of n elements. */
export const wrongFloatArrays = (n: number): unknown[] => [new Float64Array(n), new Int32Array(n), new Uint8Array(n), Array.from({ length: n }, () => 0)];

/** |a - e| <= atol + rtol |e| everywhere, non-finite values at the same places (NaN where NaN). */
export function close(what: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-5, atol = 1e-6): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const a = got[i], e = want[i];
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      assert.ok(Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e)), `${what}: at ${i} got ${a}, expected ${e}`);
      continue;
    }
    assert.ok(Math.abs(a - e) <= atol + rtol * Math.abs(e), `${what}: at ${i} got ${a}, expected ${e}`);
  }
}

/** Bit-for-bit equality of two typed arrays (NaN == NaN, -0 != 0). */
export function sameBits(what: string, got: ArrayLike<number | bigint>, want: ArrayLike<number | bigint>): void {
  assert.equal(got.length, want.length, `${what}: length ${got.length}, expected ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    const a = got[i], e = want[i];
    assert.ok(Object.is(a, e) || (typeof a === 'number' && typeof e === 'number' && Number.isNaN(a) && Number.isNaN(e)), `${what}: at ${i} got ${String(a)}, expected ${String(e)}`);
  }
}
