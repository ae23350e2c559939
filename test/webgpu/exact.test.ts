// The exact float arithmetic the quantized indexer programs are built on
// (src/webgpu/programs/exact.ts) against JavaScript's own: IEEE division,
// float32 x double rounded as Math.fround does (twice), and the e4m3 codec,
// on random bit patterns, subnormals, specials and constructed
// double-rounding cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GpuContext, runOnGpu } from '../../src/webgpu/runner.js';
import { u32, type GpuProgram } from '../../src/webgpu/program.js';
import { exactWgsl } from '../../src/webgpu/programs/exact.js';
import { WG } from '../../src/webgpu/programs/wgsl.js';
import { e4m3Encode, E4M3_VALUES } from '../../src/indexer/fp8.js';
import { rng } from '../../src/cli/demo-data.js';
import { bits, gpu } from './device.js';

const program: GpuProgram = {
  args: ['a', 'b', 'x', 'c', 'codes', 'div', 'mul', 'enc', 'dec', 'n'],
  encode(step, enc) {
    return [{
      key: 'test.exact',
      wgsl: () => `${exactWgsl}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = groupIndex(wid, nwg) * ${WG}u + lid;
  if (i >= u.n) { return; }
  div[i] = divRn(a[i], b[i]);
  mul[i] = mulF64(x[i], c[i]);
  enc[i] = e4m3Encode(x[i]);
  dec[i] = e4m3Decode(codes[i] & 0xffu);
}
`,
      bindings: ['a', 'b', 'x', 'c', 'codes', 'div', 'mul', 'enc', 'dec'].map((name) => ({
        name,
        type: name === 'c' ? 'array<vec2u>' : name === 'codes' || name === 'enc' ? 'array<u32>' : 'array<f32>',
        access: ['a', 'b', 'x', 'c', 'codes'].includes(name) ? 'read' as const : 'read_write' as const,
        buffer: enc.buffer(name),
      })),
      uniforms: [u32('n', step.args.n as number)],
      groups: Math.ceil((step.args.n as number) / WG),
    }];
  },
};

const ctx = new GpuContext(gpu.device, { 'test.exact': program });

/** divRn(a, b), mulF64(x, c), e4m3Encode(x) and e4m3Decode(i & 0xff) for each i; c is one double or one per element. */
async function run(a: Float32Array, b: Float32Array, x: Float32Array, cs: number | Float64Array) {
  const n = a.length;
  const c = new Uint32Array(typeof cs === 'number' ? new Float64Array(n).fill(cs).buffer : cs.buffer);
  const out = { div: new Float32Array(n), mul: new Float32Array(n), enc: new Uint32Array(n), dec: new Float32Array(n) };
  const codes = Uint32Array.from({ length: n }, (_, i) => i & 0xff);
  await runOnGpu(ctx, 'exact', () => ({
    steps: [{ kernel: 'test.exact', args: { a, b, x, codes, ...out, n, c }, rows: [0, n], writes: ['div', 'mul', 'enc', 'dec'] }],
    finish: () => null,
  }), { resident: false, standIns: [] });
  return out;
}

/** Random float32 bit patterns (every exponent: subnormals, infinities, NaN), with zeros, ones and powers of two mixed in. */
function randomBits(n: number, seed: number): Float32Array {
  const next = rng(seed);
  const u = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const kind = next();
    const sign = next() < 0.5 ? 0x80000000 : 0;
    if (kind < 0.05) u[i] = sign; // zero
    else if (kind < 0.1) u[i] = sign | (Math.floor(next() * 0x800000)); // subnormal
    else if (kind < 0.12) u[i] = sign | 0x7f800000; // infinity
    else if (kind < 0.13) u[i] = 0x7fc00000; // NaN
    else if (kind < 0.2) u[i] = sign | (Math.floor(next() * 254 + 1) << 23); // a power of two
    else if (kind < 0.6) u[i] = sign | ((Math.floor(next() * 40) + 107) << 23) | Math.floor(next() * 0x800000); // near 1
    else u[i] = sign | Math.floor(next() * 0x7f800000);
  }
  return new Float32Array(u.buffer);
}

/** Same bits, or both NaN (NaN payloads are not part of the contract). */
function assertBits(got: Float32Array, want: Float32Array, label: string, inputs: (i: number) => string): void {
  const g = bits(got), w = bits(want);
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) assert.fail(`${label} at ${i} (${inputs(i)}): got ${got[i]} (0x${g[i].toString(16)}), want ${want[i]} (0x${w[i].toString(16)})`);
  }
}

/** x * c rounded once to float32 (exact, by BigInt), to find where JavaScript's double rounding differs. */
function roundedOnce(x: number, c: number): number {
  if (x === 0 || !Number.isFinite(x)) return Math.fround(x * c);
  // x * c = X * C * 2^-(e) with integers X, C: both are dyadic rationals.
  const frac = (v: number): [bigint, number] => {
    let e = 0;
    while (!Number.isInteger(v)) { v *= 2; e++; }
    return [BigInt(v), e];
  };
  const [X, ex] = frac(Math.abs(x)), [C, ec] = frac(Math.abs(c));
  // (exact for the normal float32 results these tests build)
  const P = X * C;
  const e = ex + ec;
  // P / 2^e rounded to 24 significant bits, ties to even.
  const bitsP = P.toString(2).length;
  const drop = Math.max(0, bitsP - 24);
  let m = P >> BigInt(drop);
  const rest = P - (m << BigInt(drop));
  const half = drop > 0 ? 1n << BigInt(drop - 1) : 0n;
  if (drop > 0 && (rest > half || (rest === half && (m & 1n) === 1n))) m += 1n;
  const value = Number(m) * 2 ** (drop - e);
  return Math.sign(x) * Math.sign(c) * value;
}

test('divRn is IEEE float32 division (Math.fround(a / b)) on random bits, subnormals and specials', async () => {
  const n = 20000;
  const a = randomBits(n, 1), b = randomBits(n, 2), x = randomBits(n, 3);
  // Quotients by the quantizers' constants and exact ones (ties of the long division's rounding).
  for (let i = 0; i < 2000; i++) {
    b[i] = [127, 63, 448, 3, 1.5, 2 ** -140, 7 * 2 ** -149][i % 7];
    a[i + 2000] = b[i + 2000] * [3, 0.5, 1 + 2 ** -23, 2 ** 100][i % 4];
  }
  const got = await run(a, b, x, 1);
  assertBits(got.div, Float32Array.from(a, (v, i) => v / b[i]), 'divRn', (i) => `${a[i]} / ${b[i]}`);
});

test('mulF64 is Math.fround(x * c) for a double c, double rounding included', async () => {
  const n = 20000;
  for (const c of [1 / Math.sqrt(128), 1 / Math.sqrt(2), 64 ** -0.5 * 128 ** -0.5, 0.25, -3.1e-5, 1e300, 1e-300, 0, 1 + 2 ** -24 + 2 ** -50]) {
    const x = randomBits(n, 4);
    const got = await run(new Float32Array(n), new Float32Array(n).fill(1), x, c);
    assertBits(got.mul, Float32Array.from(x, (v) => v * c), `mulF64 c=${c}`, (i) => `${x[i]}`);
  }
  // Products that the rounding to a double puts on a float32 midpoint the exact product is not on: c = M / x for a
  // midpoint M, kept where rounding once would give the other neighbour.
  const next = rng(9);
  const xs: number[] = [], cs: number[] = [];
  while (xs.length < 512) {
    const v = Math.fround(1 + Math.floor(next() * 2 ** 23) * 2 ** -23);
    const m = (1 + (Math.floor(next() * 2 ** 23) + 0.5) * 2 ** -23) * 2 ** (Math.floor(next() * 20) - 10);
    const c = m / v;
    if (Math.fround(v * c) !== roundedOnce(v, c)) {
      xs.push(v);
      cs.push(c);
    }
  }
  const x = Float32Array.from(xs), c = Float64Array.from(cs);
  const got = await run(new Float32Array(x.length), new Float32Array(x.length).fill(1), x, c);
  assertBits(got.mul, Float32Array.from(x, (v, i) => v * c[i]), 'mulF64 double rounding', (i) => `${x[i]} * ${c[i]}`);
});

test('e4m3Encode and e4m3Decode are the CPU codec: all 256 codes, midpoints and random floats', async () => {
  const midpoints: number[] = [];
  for (let c = 0; c < 0x7e; c++) {
    const m = (E4M3_VALUES[c] + E4M3_VALUES[c + 1]) / 2;
    midpoints.push(m, -m, Math.fround(m * (1 + 2 ** -23)), Math.fround(m * (1 - 2 ** -23)), E4M3_VALUES[c]);
  }
  const x = new Float32Array(4096);
  x.set(randomBits(4096, 5));
  x.set(midpoints, 256);
  x.set([448, 464, 480, -480, Infinity, -Infinity, NaN, -0, 0, 2 ** -10, 2 ** -9 * 1.5, 2 ** -6], 0);
  const got = await run(new Float32Array(x.length), new Float32Array(x.length).fill(1), x, 1);
  assert.deepEqual(Array.from(got.enc), Array.from(x, (v) => e4m3Encode(v)), 'encode');
  assertBits(got.dec.subarray(0, 256), E4M3_VALUES, 'decode', (i) => `code ${i}`);
});
