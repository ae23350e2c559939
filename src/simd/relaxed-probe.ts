/**
 * Whether this engine computes `i32x4.relaxed_dot_i8x16_i7x16_add_s` exactly,
 * in its baseline tier and after tier-up, on a module of its own.
 *
 * The relaxed module's kernels are only as right as the engine's relaxed dot,
 * and engines have got it wrong in one tier only: Node 20's Liftoff drops the
 * accumulator while its TurboFan is exact. A probe inside the kernel module
 * can be fooled: V8 shares compiled code between instances of the same bytes,
 * so a probe whose code was already optimised passes while the kernels still
 * run in the wrong tier. So the probe here is a separate module whose bytes
 * carry a nonce (compiled fresh every time, never from a cache): its first
 * call runs the baseline tier, and it is then called until the engine has
 * tiered it up (its calls get faster) or a bound is reached, every call
 * checked.
 */

const uleb = (v: number): number[] => {
  const out: number[] = [];
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
};

const sleb = (v: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) return [...out, byte];
    out.push(byte | 0x80);
  }
};

const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

/**
 * (func (export "probe") (param $n i32) (param $a i32) (param $b i32) (param $c i32) (result i32)
 *   acc = i32x4.splat c; repeat n times: acc = relaxed_dot(i8x16.splat a, i8x16.splat b, acc);
 *   lane 0 of acc)
 * with a global holding `nonce`, so that no two probes share bytes.
 */
export function probeBytes(nonce: number): Uint8Array<ArrayBuffer> {
  const body = [
    1, 1, 0x7b, // one v128 local: acc (local 4)
    0x20, 3, 0xfd, 0x11, 0x21, 4, // acc = i32x4.splat(c)
    0x02, 0x40, 0x03, 0x40, // block, loop
    0x20, 0, 0x45, 0x0d, 1, // if n == 0: break
    0x20, 1, 0xfd, 0x0f, 0x20, 2, 0xfd, 0x0f, 0x20, 4, // i8x16.splat a, i8x16.splat b, acc
    0xfd, 0x93, 0x02, 0x21, 4, // acc = i32x4.relaxed_dot_i8x16_i7x16_add_s
    0x20, 0, 0x41, 1, 0x6b, 0x21, 0, // n -= 1
    0x0c, 0, 0x0b, 0x0b, // continue; end loop, end block
    0x20, 4, 0xfd, 0x1b, 0, 0x0b, // i32x4.extract_lane 0
  ];
  return new Uint8Array([
    0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, [1, 0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7f]),
    ...section(3, [1, 0]),
    ...section(6, [1, 0x7f, 0, 0x41, ...sleb(nonce | 0), 0x0b]),
    ...section(7, [1, 5, 0x70, 0x72, 0x6f, 0x62, 0x65, 0, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}

type Probe = (n: number, a: number, b: number, c: number) => number;

/** Operands where a misread operand, a dropped or a doubled accumulator shows; b stays in i7 range. */
const CASES: [number, number, number][] = [[-127, 127, 5], [100, 1, -3], [-128, 64, 1 << 20], [37, -1 & 0x7f, -77]];
/** Dots per call: enough work that a few dozen calls exhaust V8's tiering budget. */
const ITERATIONS = 20000;
/** The most calls: past this the probe stops looking for tier-up (each call is checked all the same). */
const MAX_CALLS = 600;

const expected = (n: number, a: number, b: number, c: number) => (c + Math.imul(n, 4 * a * b)) | 0;

export interface RelaxedProbeResult {
  /** Every call gave the exact dot. */
  exact: boolean;
  calls: number;
  /** Whether the calls got faster (taken as the engine's tier-up) before the bound. */
  tieredUp: boolean;
}

let nonceCounter = 0;

function checkCall(probe: Probe, call: number): boolean {
  const [a, b, c] = CASES[call % CASES.length];
  return probe(ITERATIONS, a, b, c) === expected(ITERATIONS, a, b, c);
}

/**
 * Compiles a fresh probe (only where `WebAssembly.validate` accepts relaxed
 * SIMD: callers check that first) and checks it in the baseline tier and
 * until tier-up. Costs a few milliseconds.
 */
export function probeRelaxedDot(): RelaxedProbeResult {
  const nonce = (Math.random() * 2 ** 31) ^ (++nonceCounter << 20);
  const probe = new WebAssembly.Instance(new WebAssembly.Module(probeBytes(nonce)), {}).exports.probe as Probe;
  const now = typeof performance === 'object' ? () => performance.now() : () => Date.now();
  // The first calls run the baseline tier (a fresh module compiles lazily there).
  let firstTime = Infinity;
  for (let call = 0; call < 3; call++) {
    const start = now();
    if (!checkCall(probe, call)) return { exact: false, calls: call + 1, tieredUp: false };
    firstTime = Math.min(firstTime, now() - start);
  }
  let fast = 0;
  for (let call = 3; call < MAX_CALLS; call++) {
    const start = now();
    if (!checkCall(probe, call)) return { exact: false, calls: call + 1, tieredUp: fast > 0 };
    // Tier-up shows as calls at most 0.7x the baseline tier's; a few in a row, then a few more checked.
    fast = now() - start < 0.7 * firstTime ? fast + 1 : 0;
    if (fast === 8) return { exact: true, calls: call + 1, tieredUp: true };
  }
  return { exact: true, calls: MAX_CALLS, tieredUp: false };
}
