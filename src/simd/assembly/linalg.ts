// Generic float32 vector primitives over the module's memory, for any area
// (sparse attention's q.k over gathered rows and p.v accumulation). All
// pointers are byte offsets; `d` is any positive length (a scalar tail
// handles d % 4). Four independent accumulators hide the add latency.

@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** x[d] . y[d] */
export function dot(x: usize, y: usize, d: i32): f32 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  const n16 = <usize>(d & ~15) << 2;
  let o: usize = 0;
  for (; o < n16; o += 64) {
    a0 = f32x4.add(a0, f32x4.mul(v128.load(x + o), v128.load(y + o)));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(x + o, 16), v128.load(y + o, 16)));
    a2 = f32x4.add(a2, f32x4.mul(v128.load(x + o, 32), v128.load(y + o, 32)));
    a3 = f32x4.add(a3, f32x4.mul(v128.load(x + o, 48), v128.load(y + o, 48)));
  }
  const n4 = <usize>(d & ~3) << 2;
  for (; o < n4; o += 16) a0 = f32x4.add(a0, f32x4.mul(v128.load(x + o), v128.load(y + o)));
  let s = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  const n = <usize>d << 2;
  for (; o < n; o += 4) s += load<f32>(x + o) * load<f32>(y + o);
  return s;
}

/** out[i] = x[d] . rows[i * stride .. + d] for i < n; `stride` in elements. */
export function dotRows(x: usize, rows: usize, n: i32, d: i32, stride: i32, out: usize): void {
  const step = <usize>stride << 2;
  for (let i = 0; i < n; i++) store<f32>(out + (<usize>i << 2), dot(x, rows + <usize>i * step, d));
}

/**
 * out[i] = x[d] . rows[idx[i] * stride .. + d] for i < n, idx an Int32 array;
 * the caller guarantees 0 <= idx[i] (invalid slots filtered before).
 */
export function dotRowsGather(x: usize, rows: usize, idx: usize, n: i32, d: i32, stride: i32, out: usize): void {
  const step = <usize>stride << 2;
  for (let i = 0; i < n; i++) {
    const r = <usize>load<i32>(idx + (<usize>i << 2));
    store<f32>(out + (<usize>i << 2), dot(x, rows + r * step, d));
  }
}

/** y[d] += a * x[d] */
export function axpy(a: f32, x: usize, y: usize, d: i32): void {
  const av = f32x4.splat(a);
  const n4 = <usize>(d & ~3) << 2;
  let o: usize = 0;
  for (; o < n4; o += 16) v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.mul(av, v128.load(x + o))));
  const n = <usize>d << 2;
  for (; o < n; o += 4) store<f32>(y + o, load<f32>(y + o) + a * load<f32>(x + o));
}

/** y[d] += sum_i p[i] * rows[i * stride .. + d] for i < n, in order of i. */
export function axpyRows(p: usize, rows: usize, n: i32, d: i32, stride: i32, y: usize): void {
  const step = <usize>stride << 2;
  for (let i = 0; i < n; i++) axpy(load<f32>(p + (<usize>i << 2)), rows + <usize>i * step, y, d);
}

/** y[d] += sum_i p[i] * rows[idx[i] * stride .. + d] for i < n, in order of i. */
export function axpyRowsGather(p: usize, rows: usize, idx: usize, n: i32, d: i32, stride: i32, y: usize): void {
  const step = <usize>stride << 2;
  for (let i = 0; i < n; i++) {
    const r = <usize>load<i32>(idx + (<usize>i << 2));
    axpy(load<f32>(p + (<usize>i << 2)), rows + r * step, y, d);
  }
}
