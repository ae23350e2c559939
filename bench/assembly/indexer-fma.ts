// An experiment, compiled by bench/browser.ts (never shipped): the d = 128
// float32 indexer kernel with f32x4.relaxed_madd (a fused multiply-add where
// the engine and CPU have one) in place of f32x4.mul + f32x4.add, beside the
// shipped kernel compiled the same way, to measure what fusing would gain.
// The shipped module does not use it: it changes float32 rounding, and
// whether it fuses depends on the engine and the CPU (docs/indexer.md).
import { sum4f } from '../../src/simd/assembly/indexer-lanes';

export { indexerBlockF32D128 } from '../../src/simd/assembly/indexer';

/** indexerBlockF32D128 with relaxed_madd for every multiply-add of the dots. */
export function indexerBlockF32D128Fma(q: usize, w: usize, keys: usize, n: i32, h: i32, out: usize): void {
  const zero = f32x4.splat(0);
  for (let j = 0; j < n; j += 4) {
    const kj = keys + (<usize>j << 9);
    let s = zero;
    for (let hh = 0; hh < h; hh += 2) {
      const qh = q + (<usize>hh << 9);
      let a0 = zero, a1 = zero, a2 = zero, a3 = zero;
      let b0 = zero, b1 = zero, b2 = zero, b3 = zero;
      for (let o: usize = 0; o < 512; o += 32) {
        const qp = qh + o, kp = kj + o;
        let x = v128.load(qp), y = v128.load(qp, 512);
        let v = v128.load(kp);
        a0 = f32x4.relaxed_madd(x, v, a0);
        b0 = f32x4.relaxed_madd(y, v, b0);
        v = v128.load(kp, 512);
        a1 = f32x4.relaxed_madd(x, v, a1);
        b1 = f32x4.relaxed_madd(y, v, b1);
        v = v128.load(kp, 1024);
        a2 = f32x4.relaxed_madd(x, v, a2);
        b2 = f32x4.relaxed_madd(y, v, b2);
        v = v128.load(kp, 1536);
        a3 = f32x4.relaxed_madd(x, v, a3);
        b3 = f32x4.relaxed_madd(y, v, b3);
        x = v128.load(qp, 16); y = v128.load(qp, 528);
        v = v128.load(kp, 16);
        a0 = f32x4.relaxed_madd(x, v, a0);
        b0 = f32x4.relaxed_madd(y, v, b0);
        v = v128.load(kp, 528);
        a1 = f32x4.relaxed_madd(x, v, a1);
        b1 = f32x4.relaxed_madd(y, v, b1);
        v = v128.load(kp, 1040);
        a2 = f32x4.relaxed_madd(x, v, a2);
        b2 = f32x4.relaxed_madd(y, v, b2);
        v = v128.load(kp, 1552);
        a3 = f32x4.relaxed_madd(x, v, a3);
        b3 = f32x4.relaxed_madd(y, v, b3);
      }
      const wp = w + (<usize>hh << 2);
      s = f32x4.add(s, f32x4.mul(v128.load32_splat(wp), f32x4.pmax(sum4f(a0, a1, a2, a3), zero)));
      s = f32x4.add(s, f32x4.mul(v128.load32_splat(wp, 4), f32x4.pmax(sum4f(b0, b1, b2, b3), zero)));
    }
    v128.store(out + (<usize>j << 2), s);
  }
}
