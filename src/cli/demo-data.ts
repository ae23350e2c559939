/**
 * Seeded synthetic inputs for `dsa demo`. Pure noise would make the
 * selected-keys picture look like static, so the keys carry two planted
 * structures along one shared direction u that every query also leans on:
 * "sink" spans of 64 keys (at 0 and every 4096 keys) that every query picks,
 * and a recency bias that grows with the key's position. The causal edge
 * (query block at the end of the cache) shows as the triangle at the right.
 */

/** mulberry32: a small, fast, well-mixed 32-bit generator; same seed, same data, every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal float32 values (Box-Muller). */
export function normals(random: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - random())) * scale;
    const phi = 2 * Math.PI * random();
    out[i] = r * Math.cos(phi);
    if (i + 1 < n) out[i + 1] = r * Math.sin(phi);
  }
  return out;
}

export interface DemoShape {
  b: number;
  t: number;
  s: number;
  h: number;
  d: number;
}

export interface IndexerInputs {
  /** [b, t, h, d] */
  q: Float32Array;
  /** [b, s, d] */
  k: Float32Array;
  /** [b, t, h] */
  w: Float32Array;
}

/** Whether key j is in one of the planted sink spans. */
export function isSink(j: number): boolean {
  return j % 4096 < 64;
}

export function indexerInputs({ b, t, s, h, d }: DemoShape, seed: number): IndexerInputs {
  const random = rng(seed);
  const u = normals(random, d);
  let norm = 0;
  for (const x of u) norm += x * x;
  for (let i = 0; i < d; i++) u[i] /= Math.sqrt(norm);
  const q = normals(random, b * t * h * d);
  for (let i = 0; i < b * t * h; i++) for (let c = 0; c < d; c++) q[i * d + c] += 4 * u[c];
  const k = normals(random, b * s * d);
  for (let bi = 0; bi < b; bi++) {
    for (let j = 0; j < s; j++) {
      const lean = 6 * (j / s) + (isSink(j) ? 12 : 0);
      const base = (bi * s + j) * d;
      for (let c = 0; c < d; c++) k[base + c] += lean * u[c];
    }
  }
  // Head weights in [0, 1): mostly agreeing heads keep the picture readable.
  const w = new Float32Array(b * t * h);
  for (let i = 0; i < w.length; i++) w[i] = random();
  return { q, k, w };
}

/** Attention inputs, MLA-style: one shared kv head. q [t, hq, dqk], kv [s, 1, dqk]. */
export function attentionInputs(t: number, s: number, hq: number, dqk: number, seed: number): { q: Float32Array; kv: Float32Array } {
  const random = rng(seed ^ 0x5bd1e995);
  return { q: normals(random, t * hq * dqk), kv: normals(random, s * dqk) };
}
