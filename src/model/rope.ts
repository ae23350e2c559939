/**
 * Rotary position embedding as DeepSeek-V3.2's `inference/model.py` computes
 * it: `precompute_freqs_cis` (inverse frequencies with the YaRN correction,
 * angles position * freq, cos and sin, all float32) and `apply_rotary_emb`
 * (the rotation as a complex product, float32), in both of its layouts:
 *
 *   interleaved      pairs (2i, 2i + 1)            MLA's q_pe and k_pe
 *   non-interleaved  pairs (i, i + ropeDim / 2)    the indexer's q and k
 *                                                  (DeepSeek's 2025-11-17 fix)
 *
 * pair i turning by angle position * freq[i].
 *
 * The indexer inside the decode step rotates its own q and k
 * (src/indexer/projection.ts, non-interleaved, from these frequencies passed
 * as `ropeFreqs`); this file serves the MLA half of the layer.
 *
 * 'model.rope' args: x [n, heads * width] (rewritten in place), positions
 * Int32Array [n], freqs Float32Array [ropeDim / 2], heads, width (floats per
 * head), offset (the first rotated float of each head), ropeDim, interleaved;
 * rows = tokens.
 */
import type { KernelArgs } from '../plan.js';

/** YaRN's settings (Hugging Face `rope_scaling`, DeepSeek's `ModelArgs`). */
export interface YarnSettings {
  /** rope_factor (40). */
  factor: number;
  /** original_seq_len (4096). */
  originalSeqLen: number;
  /** beta_fast (32). */
  betaFast: number;
  /** beta_slow (1). */
  betaSlow: number;
}

const f32 = Math.fround;

/** The dimension (of ropeDim) whose wavelength makes `rotations` turns over `seqLen` positions (YaRN's find_correction_dim). */
function correctionDim(rotations: number, ropeDim: number, theta: number, seqLen: number): number {
  return (ropeDim * Math.log(seqLen / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
}

/**
 * The inverse frequencies [ropeDim / 2] of `precompute_freqs_cis`, in its
 * float32 arithmetic: freq[i] = 1 / theta^(2i / ropeDim); with YaRN, the
 * pairs past the correction range [low, high] (fewer than beta_slow turns
 * over original_seq_len positions) are divided by `factor`, those before it
 * (more than beta_fast turns) are kept, and a linear ramp blends between:
 *
 *   smooth[i] = 1 - clamp((i - low) / (high - low), 0, 1)
 *   freq'[i]  = freq[i] / factor * (1 - smooth[i]) + freq[i] * smooth[i]
 *
 * DeepSeek applies YaRN only when its max_seq_len exceeds original_seq_len;
 * pass `yarn` exactly when it does.
 */
export function ropeFrequencies(ropeDim: number, theta: number, yarn?: YarnSettings): Float32Array {
  if (!Number.isInteger(ropeDim) || ropeDim <= 0 || ropeDim % 2 !== 0) throw new RangeError(`ropeDim: expected a positive even integer, got ${String(ropeDim)}`);
  if (!Number.isFinite(theta) || theta <= 1) throw new RangeError(`ropeTheta: expected a finite number > 1, got ${String(theta)}`);
  const half = ropeDim / 2;
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) freqs[i] = f32(1 / f32(theta ** f32((2 * i) / ropeDim)));
  if (yarn === undefined) return freqs;
  const { factor, originalSeqLen, betaFast, betaSlow } = yarn;
  for (const [name, value] of [['factor', factor], ['originalSeqLen', originalSeqLen], ['betaFast', betaFast], ['betaSlow', betaSlow]] as const) {
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`rope.${name}: expected a finite number > 0, got ${String(value)}`);
  }
  const low = Math.max(Math.floor(correctionDim(betaFast, ropeDim, theta, originalSeqLen)), 0);
  let high = Math.min(Math.ceil(correctionDim(betaSlow, ropeDim, theta, originalSeqLen)), ropeDim - 1);
  if (low === high) high += 0.001; // DeepSeek's guard against a zero-width ramp
  const span = f32(high - low);
  for (let i = 0; i < half; i++) {
    const ramp = Math.min(1, Math.max(0, f32(f32(i - low) / span)));
    const smooth = f32(1 - ramp);
    freqs[i] = f32(f32(f32(freqs[i] / factor) * f32(1 - smooth)) + f32(freqs[i] * smooth));
  }
  return freqs;
}

/**
 * DeepSeek's softmax scale for MLA: (qkNopeHeadDim + qkRopeHeadDim)^-0.5,
 * times mscale^2 with mscale = 0.1 * rope.mscale * ln(factor) + 1 when YaRN
 * is on (the attention temperature of the longer context).
 */
export function mlaSoftmaxScale(qkHeadDim: number, yarn?: { factor: number; mscale: number }): number {
  let scale = qkHeadDim ** -0.5;
  if (yarn !== undefined) {
    const m = 0.1 * yarn.mscale * Math.log(yarn.factor) + 1;
    scale *= m * m;
  }
  return scale;
}

/**
 * Rotates, in place, ropeDim floats of each head of each token row of x,
 * starting at `offset` within the head: pair i (interleaved: floats 2i,
 * 2i + 1; else i, i + ropeDim / 2) as the complex number (re, im) times
 * cos(a) + i sin(a), a = f32(position * freq[i]) (torch.outer in float32),
 * cos and sin rounded to float32, each product and sum rounded to float32.
 */
export function ropeRows(args: KernelArgs, rowStart: number, rowEnd: number): void {
  const x = args.x as Float32Array, positions = args.positions as Int32Array, freqs = args.freqs as Float32Array;
  const heads = args.heads as number, width = args.width as number, offset = args.offset as number;
  const ropeDim = args.ropeDim as number, interleaved = args.interleaved as boolean;
  const half = ropeDim / 2;
  // The pair's second float sits 1 (interleaved) or half (non-interleaved) after its first.
  const step = interleaved ? 2 : 1, apart = interleaved ? 1 : half;
  for (let r = rowStart; r < rowEnd; r++) {
    const position = positions[r];
    for (let i = 0; i < half; i++) {
      const angle = f32(position * freqs[i]);
      const c = f32(Math.cos(angle)), s = f32(Math.sin(angle));
      for (let hh = 0; hh < heads; hh++) {
        const at = (r * heads + hh) * width + offset + i * step;
        const re = x[at], im = x[at + apart];
        x[at] = f32(re * c) - f32(im * s);
        x[at + apart] = f32(re * s) + f32(im * c);
      }
    }
  }
}
