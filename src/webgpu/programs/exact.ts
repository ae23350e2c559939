/**
 * WGSL for float arithmetic that must give the CPU's bits, where WGSL's own
 * rules do not promise them:
 *
 * - `keep(x)`: WGSL lets a compiler fuse `a * b + c` into one rounding (an
 *   FMA; drivers of real GPUs do). `keep` passes a value through an integer
 *   XOR with a uniform that is always 0, which no compiler can see through,
 *   so the product is rounded before the add. Needs the uniform `zero`.
 * - `divRn(a, b)`: WGSL allows `a / b` an error of 2.5 ULP; this is IEEE
 *   division (round to nearest, ties to even) by a long division of the
 *   significands in integers, subnormals and specials included.
 * - `mulF64(x, c)`: `Math.fround(x * c)` for a float32 x and a double c (a
 *   JavaScript number such as `weightScale` or `1 / Math.sqrt(d)`), exactly as
 *   the CPU rounds it: the exact product rounded to 53 bits, then to 24.
 *   `c` comes as the two 32-bit words of the double (`f64Words`); it must be
 *   finite.
 * - `e4m3Decode` / `e4m3Encode`: the FP8 codec of src/indexer/fp8.ts on the
 *   float bits.
 *
 * Addition and multiplication of two float32 values are correctly rounded
 * in WGSL, and a float32 operation done in float64 and rounded (as
 * JavaScript does) gives the same bits, so the rest of the CPU's float32
 * arithmetic maps onto plain WGSL. NaN results are the canonical quiet NaN.
 */

/** The little-endian words [low, high] of a double, for `mulF64`'s `vec2u`. */
export function f64Words(x: number): [number, number] {
  const words = new Uint32Array(new Float64Array([x]).buffer);
  return [words[0], words[1]];
}

export const keepWgsl = `
fn keep(x: f32) -> f32 { return bitcast<f32>(bitcast<u32>(x) ^ u.zero); }
`;

export const exactWgsl = `
// A runtime value: WGSL constant expressions may not hold NaN.
var<private> QNAN_BITS: u32 = 0x7fc00000u;
fn qnan() -> f32 { return bitcast<f32>(QNAN_BITS); }

// The significand of a nonzero finite float's magnitude bits as m in [2^23, 2^24) and e with |x| = m * 2^(e - 150).
fn unpack(a: u32) -> vec2i {
  var m = a & 0x7fffffu;
  var e = i32(a >> 23u);
  if (e == 0) {
    let z = countLeadingZeros(m) - 8u;
    m <<= z;
    e = 1 - i32(z);
  } else {
    m |= 0x800000u;
  }
  return vec2i(i32(m), e);
}

// The float nearest (ties to even) to (q + f) * 2^(e - 24), where q in [2^24, 2^25) holds 24 significant bits and a
// round bit, and f in [0, 1) is nonzero iff sticky; subnormal and infinite results included.
fn packRn(sign: u32, e: i32, q: u32, sticky: bool) -> f32 {
  let be = e + 127;
  if (be >= 255) { return bitcast<f32>(sign | 0x7f800000u); }
  let sh = u32(clamp(2 - be, 1, 26));
  var m = q >> sh;
  let half = (q >> (sh - 1u)) & 1u;
  let rest = sticky || (q & ((1u << (sh - 1u)) - 1u)) != 0u;
  if (half == 1u && (rest || (m & 1u) == 1u)) { m += 1u; }
  // A carry out of the significand moves into the exponent by itself (and a subnormal one into the smallest normal).
  var bits = m;
  if (be >= 1) { bits = min((u32(be - 1) << 23u) + m, 0x7f800000u); }
  return bitcast<f32>(sign | bits);
}

fn divRn(a: f32, b: f32) -> f32 {
  let ab = bitcast<u32>(a);
  let bb = bitcast<u32>(b);
  let sign = (ab ^ bb) & 0x80000000u;
  let x = ab & 0x7fffffffu;
  let y = bb & 0x7fffffffu;
  if (x > 0x7f800000u || y > 0x7f800000u || (x == y && (x == 0u || x == 0x7f800000u))) { return qnan(); }
  if (x == 0x7f800000u || y == 0u) { return bitcast<f32>(sign | 0x7f800000u); }
  if (x == 0u || y == 0x7f800000u) { return bitcast<f32>(sign); }
  let pa = unpack(x);
  let pb = unpack(y);
  let mb = u32(pb.x);
  var rem = u32(pa.x);
  var e = pa.y - pb.y;
  if (rem < mb) {
    rem <<= 1u;
    e -= 1;
  }
  var q = 0u;
  for (var i = 0u; i < 25u; i++) {
    q <<= 1u;
    if (rem >= mb) {
      rem -= mb;
      q |= 1u;
    }
    rem <<= 1u;
  }
  return packRn(sign, e, q, rem != 0u);
}

// Bits [start, start + n) (n <= 28) of a number held in 12-bit limbs.
fn limbField(l: ptr<function, array<u32, 10>>, start: u32, n: u32) -> u32 {
  var i = start / 12u;
  var v = (*l)[i] >> (start % 12u);
  var have = 12u - start % 12u;
  while (have < n) {
    i++;
    v |= (*l)[i] << have;
    have += 12u;
  }
  return v & ((1u << n) - 1u);
}

// Whether any of bits [0, n) of a number held in 12-bit limbs is set.
fn limbAny(l: ptr<function, array<u32, 10>>, n: u32) -> bool {
  var any = ((*l)[n / 12u] & ((1u << (n % 12u)) - 1u)) != 0u;
  for (var i = 0u; i < n / 12u; i++) { any = any || (*l)[i] != 0u; }
  return any;
}

fn mulF64(x: f32, c: vec2u) -> f32 {
  let xb = bitcast<u32>(x);
  let sign = (xb ^ c.y) & 0x80000000u;
  let xa = xb & 0x7fffffffu;
  let ec = i32((c.y >> 20u) & 0x7ffu);
  if (xa > 0x7f800000u || (xa == 0x7f800000u && ec == 0)) { return qnan(); }
  if (xa == 0x7f800000u) { return bitcast<f32>(sign | 0x7f800000u); }
  // A zero or subnormal double times any float32 is below half the smallest float32: a signed zero.
  if (xa == 0u || ec == 0) { return bitcast<f32>(sign); }
  let px = unpack(xa);
  let mx = u32(px.x);
  // The exact product of the 24-bit and the 53-bit significands, in 12-bit limbs (each column sum stays below 2^26).
  let hi = (c.y & 0xfffffu) | 0x100000u;
  let cl = array<u32, 5>(c.x & 0xfffu, (c.x >> 12u) & 0xfffu, (c.x >> 24u) | ((hi & 0xfu) << 8u), (hi >> 4u) & 0xfffu, hi >> 16u);
  let x0 = mx & 0xfffu;
  let x1 = mx >> 12u;
  var p: array<u32, 10>;
  var carry = 0u;
  for (var k = 0u; k < 10u; k++) {
    var col = carry;
    if (k < 5u) { col += x0 * cl[k]; }
    if (k >= 1u && k <= 5u) { col += x1 * cl[k - 1u]; }
    p[k] = col & 0xfffu;
    carry = col >> 12u;
  }
  // p in [2^75, 2^77): its top bit t, then JavaScript's two roundings: to the 53 bits of a double, to the 24 of a float.
  let t = select(75u, 76u, ((p[6] >> 4u) & 1u) == 1u);
  var e = i32(t) + px.y + ec - 1225;
  let s1 = t - 52u;
  var q = limbField(&p, s1 + 28u, 25u);
  var low = limbField(&p, s1, 28u);
  let half = limbField(&p, s1 - 1u, 1u) == 1u;
  if (half && (limbAny(&p, s1 - 1u) || (low & 1u) == 1u)) {
    low += 1u;
    if (low == 0x10000000u) {
      low = 0u;
      q += 1u;
      if (q == 0x2000000u) {
        q = 0x1000000u;
        e += 1;
      }
    }
  }
  return packRn(sign, e, q, low != 0u);
}

// The value of an e4m3 code (0x7f and 0xff: NaN; subnormals m * 2^-9).
fn e4m3Decode(code: u32) -> f32 {
  let e = (code >> 3u) & 15u;
  let m = code & 7u;
  let sign = (code & 0x80u) << 24u;
  if (e == 15u && m == 7u) { return qnan(); }
  if (e == 0u) { return bitcast<f32>(sign | bitcast<u32>(f32(m) * 0.001953125)); }
  return bitcast<f32>(sign | ((e + 120u) << 23u) | (m << 20u));
}

// The e4m3 code nearest to x, ties to the even code, saturating at 448; NaN gives 0x7f (src/indexer/fp8.ts e4m3Encode).
fn e4m3Encode(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  let sign = (bits >> 24u) & 0x80u;
  let a = bits & 0x7fffffffu;
  if (a > 0x7f800000u) { return 0x7fu; }
  if (a >= 0x43e00000u) { return sign | 0x7eu; }
  if (a < 0x3c800000u) { return sign | u32(round(bitcast<f32>(a) * 512.0)); }
  let rounded = (a + 0x7ffffu + ((a >> 20u) & 1u)) >> 20u;
  return sign | (rounded - (120u << 3u));
}
`;
