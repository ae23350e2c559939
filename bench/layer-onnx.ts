// The onnxruntime-node peers of bench/layer.ts: one DeepSeek-V3.2 DSA
// attention layer's decode step from hidden states, one sequence, as an ONNX
// graph written in code (the weights are initializers, so the CPU provider
// pre-packs them as it does for a model file). The past cache is an input
// with its length s symbolic, so one session serves every length.
//
//   qr     = RMSNorm(x @ wq_a^T; q_norm)                              [1, qRank]
//   q      = qr @ wq_b^T as [H, nope + rope]; interleaved RoPE on q_pe
//   q'     = [q_nope_h @ W_k,h (MatMul over heads), q_pe]              [H, kvRank + rope]
//   kvNew  = x @ wkv_a^T: RMSNorm(kv_norm) on the first kvRank, interleaved RoPE on the rest
//   iq     = qr @ ixwq_b^T as [h, d], non-interleaved RoPE on the first rope dims
//   kNew   = LayerNorm(x @ wk^T), the same RoPE                        [1, d]
//   w      = x @ weights_proj^T * h^-0.5 d^-0.5                         [1, h]
//   scores = [w @ Relu(iq @ keys^T), w @ Relu(iq @ kNew^T)]             [1, s + 1]
//   top    = TopK(scores, topK)                                         int64 [1, topK]
//   g      = Gather(kv, min(top, s - 1)), the row of top = s replaced by kvNew   [topK, kvRank + rope]
//   lat    = Softmax(q' @ g^T * smScale) @ g[:, :kvRank]                [H, kvRank]
//   out    = (lat_h @ W_v,h^T over heads, [1, H * v]) @ wo^T            [1, dim]
//
// so the new token's row takes part without copying the cache (the peer of
// the library's in-place append). Weight forms:
//   'float32'  MatMul(x, W^T) with W^T [in, out] float32 initializers;
//              the absorbed wkv_b halves as float32 [H, nope, kvRank] and
//              [H, kvRank, v], batched MatMul.
//   'int8'     every linear weight 8-bit: MatMulNBits (com.microsoft, bits 8,
//              blocks of 128 along `in`, zero point 128, accuracy_level 4:
//              int8 compute) or DynamicQuantizeMatMul (int8 W^T, one scale
//              per output column), as `linear8` says; the absorbed wkv_b
//              halves int8 with one scale per head and output column
//              through DynamicQuantizeLinear + MatMulInteger (batched) +
//              the scales.
// Cache forms: 'float32' keys [s, d] (Gemm, transB); 'int8' keys as the
// library's int8 cache quantizes them (int8 values, one float32 scale per
// token), laid out transposed [d, s] for DynamicQuantizeMatMul with the
// token scales as its per-column scales. The kv rows are float32 [s, kvDim]
// in both. The new token's own key is scored in float32.
import { OnnxType } from './onnx-model.js';

const INT8 = 3;

/** Protobuf wire format written as a list of byte chunks, so large tensors are referenced, not copied, until `done`. */
export class ChunkWriter {
  private readonly parts: Uint8Array[] = [];
  private small: number[] = [];
  /** Bytes written so far. */
  length = 0;

  private flush(): void {
    if (this.small.length > 0) {
      this.parts.push(Uint8Array.from(this.small));
      this.small = [];
    }
  }

  private varint(value: number): void {
    if (value < 0) {
      // int64 two's complement: ten bytes.
      let v = BigInt.asUintN(64, BigInt(value));
      for (; v >= 0x80n; v >>= 7n, this.length++) this.small.push(Number(v & 0x7fn) | 0x80);
      this.small.push(Number(v));
      this.length++;
      return;
    }
    let v = value;
    for (; v >= 0x80; v = Math.floor(v / 0x80), this.length++) this.small.push((v % 0x80) | 0x80);
    this.small.push(v);
    this.length++;
  }

  int(field: number, value: number): this {
    this.varint(field << 3);
    this.varint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.varint((field << 3) | 5);
    for (const b of new Uint8Array(new Float32Array([value]).buffer)) this.small.push(b);
    this.length += 4;
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.varint((field << 3) | 2);
    this.varint(value.length);
    this.flush();
    this.parts.push(value);
    this.length += value.length;
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, value: ChunkWriter): this {
    this.varint((field << 3) | 2);
    this.varint(value.length);
    this.flush();
    this.parts.push(...value.chunks());
    this.length += value.length;
    return this;
  }

  chunks(): Uint8Array[] {
    this.flush();
    return this.parts;
  }

  done(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.chunks()) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

type Attr = ChunkWriter;
const attr = {
  float: (name: string, value: number): Attr => new ChunkWriter().string(1, name).float(2, value).int(20, 1),
  int: (name: string, value: number): Attr => new ChunkWriter().string(1, name).int(3, value).int(20, 2),
  ints: (name: string, values: number[]): Attr => {
    const w = new ChunkWriter().string(1, name);
    for (const v of values) w.int(8, v);
    return w.int(20, 7);
  },
};

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** A graph under construction: nodes, initializers, inputs, outputs; each node's outputs named by a counter. */
class Graph {
  readonly nodes: ChunkWriter[] = [];
  readonly initializers: ChunkWriter[] = [];
  readonly inputs: ChunkWriter[] = [];
  readonly outputs: ChunkWriter[] = [];
  private count = 0;
  private readonly consts = new Map<string, string>();

  /** Adds a node; returns its output names (`outputs` of them, or the given names). */
  op(type: string, inputs: string[], attrs: Attr[] = [], outputs: number | string[] = 1, domain = ''): string[] {
    const names = typeof outputs === 'number' ? Array.from({ length: outputs }, () => `${type}_${this.count++}`) : outputs;
    const w = new ChunkWriter();
    for (const i of inputs) w.string(1, i);
    for (const o of names) w.string(2, o);
    w.string(3, `n_${names[0]}`).string(4, type);
    for (const a of attrs) w.message(5, a);
    if (domain) w.string(7, domain);
    this.nodes.push(w);
    return names;
  }

  /** One-output node. */
  one(type: string, inputs: string[], attrs: Attr[] = [], domain = ''): string {
    return this.op(type, inputs, attrs, 1, domain)[0];
  }

  tensor(name: string, type: number, dims: number[], data: ArrayBufferView): string {
    const t = new ChunkWriter();
    for (const d of dims) t.int(1, d);
    t.int(2, type).string(8, name).bytes(9, bytesOf(data));
    this.initializers.push(t);
    return name;
  }

  /** An int64 constant (shared by value). */
  int64s(values: number[]): string {
    const key = `i64:${values.join(',')}`;
    let name = this.consts.get(key);
    if (name === undefined) {
      name = this.tensor(`c_${this.consts.size}`, OnnxType.INT64, [values.length], new BigInt64Array(values.map(BigInt)));
      this.consts.set(key, name);
    }
    return name;
  }

  /** A float32 scalar constant. */
  scalar(value: number): string {
    const key = `f32:${value}`;
    let name = this.consts.get(key);
    if (name === undefined) {
      name = this.tensor(`c_${this.consts.size}`, OnnxType.FLOAT, [], new Float32Array([value]));
      this.consts.set(key, name);
    }
    return name;
  }

  private valueInfo(name: string, type: number, dims: (number | string)[]): ChunkWriter {
    const shape = new ChunkWriter();
    for (const d of dims) shape.message(1, typeof d === 'string' ? new ChunkWriter().string(2, d) : new ChunkWriter().int(1, d));
    return new ChunkWriter().string(1, name).message(2, new ChunkWriter().message(1, new ChunkWriter().int(1, type).message(2, shape)));
  }

  input(name: string, type: number, dims: (number | string)[]): string {
    this.inputs.push(this.valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: number, dims: (number | string)[]): void {
    this.outputs.push(this.valueInfo(name, type, dims));
  }

  /** ModelProto (ir 8, ai.onnx 17 and com.microsoft 1) bytes. */
  model(name: string): Uint8Array {
    const g = new ChunkWriter();
    for (const n of this.nodes) g.message(1, n);
    g.string(2, name);
    for (const t of this.initializers) g.message(5, t);
    for (const i of this.inputs) g.message(11, i);
    for (const o of this.outputs) g.message(12, o);
    return new ChunkWriter()
      .int(1, 8)
      .string(2, 'dsa-ts bench')
      .message(7, g)
      .message(8, new ChunkWriter().string(1, '').int(2, 17))
      .message(8, new ChunkWriter().string(1, 'com.microsoft').int(2, 1))
      .done();
  }
}

export interface LayerShape {
  /** hidden size (7168) */
  dim: number;
  /** q_lora_rank (1536) */
  qRank: number;
  /** kv_lora_rank (512) */
  kvRank: number;
  /** attention heads (128) */
  heads: number;
  /** qk_nope_head_dim (128) */
  nope: number;
  /** qk_rope_head_dim (64) */
  rope: number;
  /** v_head_dim (128) */
  v: number;
  /** indexer heads (64) */
  h: number;
  /** indexer head dim (128) */
  d: number;
  topK: number;
  /** MLA's softmax scale (YaRN's mscale^2 included). */
  smScale: number;
  /** RMSNorm eps. */
  eps: number;
}

/**
 * A layer's weights as float32 values, W [out, in] (nn.Linear layout):
 * a function, so a graph asks for each weight once and the caller need not
 * hold all of them widened at once.
 */
export type WeightValues = (name: 'wqA' | 'wqB' | 'wkvA' | 'wkvB' | 'wo' | 'ixWqB' | 'ixWk' | 'ixWp') => Float32Array;

export interface LayerVectors {
  qNorm: Float32Array;
  kvNorm: Float32Array;
  kNormWeight: Float32Array;
  kNormBias: Float32Array;
}

/** How the 8-bit graph multiplies a 2-D linear weight. */
export type Linear8 = 'MatMulNBits' | 'DynamicQuantizeMatMul';

export interface LayerModelOptions {
  weights: 'float32' | 'int8';
  cache: 'float32' | 'int8';
  /** The 8-bit linear op (default MatMulNBits). */
  linear8?: Linear8;
}

/** W^T [in, out] of W [out, in], in blocks (the cache-friendly order). */
function transpose(w: Float32Array, out: number, inDim: number): Float32Array {
  const t = new Float32Array(out * inDim);
  const B = 64;
  for (let o0 = 0; o0 < out; o0 += B) {
    for (let j0 = 0; j0 < inDim; j0 += B) {
      const o1 = Math.min(out, o0 + B), j1 = Math.min(inDim, j0 + B);
      for (let o = o0; o < o1; o++) for (let j = j0; j < j1; j++) t[j * out + o] = w[o * inDim + j];
    }
  }
  return t;
}

/** Quantized bytes of each 8-bit form, per weight, for the floor. */
export function int8WeightBytes(out: number, inDim: number, linear8: Linear8): number {
  const blocks = Math.ceil(inDim / 128);
  return linear8 === 'MatMulNBits' ? out * blocks * (128 + 4 + 1) : out * inDim + out * 4;
}

/** The ONNX model bytes of one layer's decode step (see the file header). */
export function layerModel(c: LayerShape, weights: WeightValues, vectors: LayerVectors, opts: LayerModelOptions): Uint8Array {
  const g = new Graph();
  const linear8 = opts.linear8 ?? 'MatMulNBits';
  const { dim, qRank, kvRank, heads: H, nope, rope, v, h, d, topK } = c;
  const half = rope / 2, dqk = kvRank + rope;

  const x = g.input('x', OnnxType.FLOAT, [1, dim]);
  const cos = g.input('cos', OnnxType.FLOAT, [half]);
  const sin = g.input('sin', OnnxType.FLOAT, [half]);
  const kv = g.input('kv', OnnxType.FLOAT, ['s', dqk]);
  let keys = '', keysT = '', keyScales = '';
  if (opts.cache === 'float32') keys = g.input('keys', OnnxType.FLOAT, ['s', d]);
  else {
    keysT = g.input('keysT', INT8, [d, 's']);
    keyScales = g.input('keyScales', OnnxType.FLOAT, ['s']);
  }

  let nth = 0;
  /** y [1, out] = input [1, in] @ W^T in the graph's weight form. */
  const linear = (input: string, name: Parameters<WeightValues>[0], out: number, inDim: number): string => {
    const w = weights(name);
    const id = `${name}_${nth++}`;
    if (opts.weights === 'float32') return g.one('MatMul', [input, g.tensor(id, OnnxType.FLOAT, [inDim, out], transpose(w, out, inDim))]);
    const blocks = Math.ceil(inDim / 128);
    if (linear8 === 'MatMulNBits') {
      const q = new Uint8Array(out * blocks * 128), scales = new Float32Array(out * blocks), zeros = new Uint8Array(out * blocks).fill(128);
      for (let o = 0; o < out; o++) {
        for (let b = 0; b < blocks; b++) {
          const j0 = b * 128, j1 = Math.min(inDim, j0 + 128);
          let amax = 0;
          for (let j = j0; j < j1; j++) amax = Math.max(amax, Math.abs(w[o * inDim + j]));
          const s = amax === 0 ? 1 : amax / 127;
          scales[o * blocks + b] = s;
          const at = (o * blocks + b) * 128;
          q.fill(128, at, at + 128);
          for (let j = j0; j < j1; j++) q[at + j - j0] = Math.max(1, Math.min(255, Math.round(w[o * inDim + j] / s) + 128));
        }
      }
      return g.one('MatMulNBits', [input, g.tensor(`${id}_q`, OnnxType.UINT8, [out, blocks, 128], q), g.tensor(`${id}_s`, OnnxType.FLOAT, [out * blocks], scales), g.tensor(`${id}_z`, OnnxType.UINT8, [out * blocks], zeros)], [
        attr.int('K', inDim), attr.int('N', out), attr.int('bits', 8), attr.int('block_size', 128), attr.int('accuracy_level', 4),
      ], 'com.microsoft');
    }
    const q = new Int8Array(inDim * out), scales = new Float32Array(out);
    for (let o = 0; o < out; o++) {
      let amax = 0;
      for (let j = 0; j < inDim; j++) amax = Math.max(amax, Math.abs(w[o * inDim + j]));
      const s = amax === 0 ? 1 : amax / 127;
      scales[o] = s;
      for (let j = 0; j < inDim; j++) q[j * out + o] = Math.round(w[o * inDim + j] / s);
    }
    return g.one('DynamicQuantizeMatMul', [input, g.tensor(`${id}_q`, INT8, [inDim, out], q), g.tensor(`${id}_s`, OnnxType.FLOAT, [out], scales)], [], 'com.microsoft');
  };

  /** Batched [H, 1, K] @ B [H, K, N] per head, B given as float32 [H, K, N]. */
  const headMatMul = (input: string, b: Float32Array, K: number, N: number, name: string): string => {
    if (opts.weights === 'float32') return g.one('MatMul', [input, g.tensor(name, OnnxType.FLOAT, [H, K, N], b)]);
    // int8 B, one scale per head and column; A quantized per tensor (uint8, zero point) by DynamicQuantizeLinear.
    const q = new Int8Array(H * K * N), scales = new Float32Array(H * N);
    for (let hh = 0; hh < H; hh++) {
      for (let n = 0; n < N; n++) {
        let amax = 0;
        for (let k = 0; k < K; k++) amax = Math.max(amax, Math.abs(b[(hh * K + k) * N + n]));
        const s = amax === 0 ? 1 : amax / 127;
        scales[hh * N + n] = s;
        for (let k = 0; k < K; k++) q[(hh * K + k) * N + n] = Math.round(b[(hh * K + k) * N + n] / s);
      }
    }
    const [aq, as, az] = g.op('DynamicQuantizeLinear', [input], [], 3);
    const acc = g.one('MatMulInteger', [aq, g.tensor(`${name}_q`, INT8, [H, K, N], q), az]);
    const scaled = g.one('Mul', [g.one('Cast', [acc], [attr.int('to', OnnxType.FLOAT)]), as]);
    return g.one('Mul', [scaled, g.tensor(`${name}_s`, OnnxType.FLOAT, [H, 1, N], scales)]);
  };

  const rmsNorm = (input: string, weight: Float32Array, name: string): string => {
    const ms = g.one('ReduceMean', [g.one('Mul', [input, input])], [attr.ints('axes', [-1]), attr.int('keepdims', 1)]);
    const inv = g.one('Reciprocal', [g.one('Sqrt', [g.one('Add', [ms, g.scalar(c.eps)])])]);
    return g.one('Mul', [g.one('Mul', [input, inv]), g.tensor(name, OnnxType.FLOAT, [weight.length], weight)]);
  };

  /** Interleaved RoPE of [rows, rope]: pairs (2i, 2i + 1). */
  const ropeInterleaved = (input: string, rows: number): string => {
    const pairs = g.one('Reshape', [input, g.int64s([rows, half, 2])]);
    const [re, im] = g.op('Split', [pairs, g.int64s([1, 1])], [attr.int('axis', 2)], 2);
    const c2 = g.one('Reshape', [cos, g.int64s([half, 1])]), s2 = g.one('Reshape', [sin, g.int64s([half, 1])]);
    const a = g.one('Sub', [g.one('Mul', [re, c2]), g.one('Mul', [im, s2])]);
    const b = g.one('Add', [g.one('Mul', [re, s2]), g.one('Mul', [im, c2])]);
    return g.one('Reshape', [g.one('Concat', [a, b], [attr.int('axis', 2)]), g.int64s([rows, rope])]);
  };

  /** Non-interleaved RoPE on the first `rope` dims of [rows, d]: pairs (i, i + rope/2). */
  const ropeHalf = (input: string): string => {
    const [x1, x2, rest] = g.op('Split', [input, g.int64s([half, half, d - rope])], [attr.int('axis', 1)], 3);
    const a = g.one('Sub', [g.one('Mul', [x1, cos]), g.one('Mul', [x2, sin])]);
    const b = g.one('Add', [g.one('Mul', [x1, sin]), g.one('Mul', [x2, cos])]);
    return g.one('Concat', [a, b, rest], [attr.int('axis', 1)]);
  };

  // MLA query.
  const qr = rmsNorm(linear(x, 'wqA', qRank, dim), vectors.qNorm, 'q_norm');
  const q = g.one('Reshape', [linear(qr, 'wqB', H * (nope + rope), qRank), g.int64s([H, nope + rope])]);
  const [qNope, qPe] = g.op('Split', [q, g.int64s([nope, rope])], [attr.int('axis', 1)], 2);
  // The absorbed wkv_b: W_k,h [nope, kvRank] (the head's key rows) and W_v,h^T [kvRank, v].
  const wkvB = weights('wkvB');
  const wk = new Float32Array(H * nope * kvRank), wvT = new Float32Array(H * kvRank * v);
  for (let hh = 0; hh < H; hh++) {
    const row0 = hh * (nope + v);
    wk.set(wkvB.subarray(row0 * kvRank, (row0 + nope) * kvRank), hh * nope * kvRank);
    for (let j = 0; j < v; j++) for (let cc = 0; cc < kvRank; cc++) wvT[(hh * kvRank + cc) * v + j] = wkvB[(row0 + nope + j) * kvRank + cc];
  }
  const qAbs = headMatMul(g.one('Reshape', [qNope, g.int64s([H, 1, nope])]), wk, nope, kvRank, 'wkv_b_k');
  const qAttn = g.one('Concat', [g.one('Reshape', [qAbs, g.int64s([H, kvRank])]), ropeInterleaved(qPe, H)], [attr.int('axis', 1)]);
  // The new latent row.
  const [kvC, kPe] = g.op('Split', [linear(x, 'wkvA', dqk, dim), g.int64s([kvRank, rope])], [attr.int('axis', 1)], 2);
  const kvNew = g.one('Concat', [rmsNorm(kvC, vectors.kvNorm, 'kv_norm'), ropeInterleaved(kPe, 1)], [attr.int('axis', 1)]);
  // The indexer.
  const iq = ropeHalf(g.one('Reshape', [linear(qr, 'ixWqB', h * d, qRank), g.int64s([h, d])]));
  const kNorm = g.one('LayerNormalization', [linear(x, 'ixWk', d, dim), g.tensor('k_norm_w', OnnxType.FLOAT, [d], vectors.kNormWeight), g.tensor('k_norm_b', OnnxType.FLOAT, [d], vectors.kNormBias)], [
    attr.int('axis', -1), attr.float('epsilon', 1e-6),
  ]);
  const kNew = ropeHalf(kNorm);
  const w = g.one('Mul', [linear(x, 'ixWp', h, dim), g.scalar(h ** -0.5 * d ** -0.5)]);
  const logits = opts.cache === 'float32'
    ? g.one('Gemm', [iq, keys], [attr.int('transB', 1)])
    : g.one('DynamicQuantizeMatMul', [iq, keysT, keyScales], [], 'com.microsoft');
  const past = g.one('MatMul', [w, g.one('Relu', [logits])]);
  const own = g.one('MatMul', [w, g.one('Relu', [g.one('Gemm', [iq, kNew], [attr.int('transB', 1)])])]);
  const scores = g.one('Concat', [past, own], [attr.int('axis', 1)]);
  g.op('TopK', [scores, g.int64s([topK])], [attr.int('axis', -1), attr.int('largest', 1), attr.int('sorted', 1)], ['topValues', 'top']);
  g.op('Identity', [scores], [], ['scores']);
  // Gather the selected rows; the slot that chose position s (the new token) takes kvNew.
  const top = g.one('Reshape', ['top', g.int64s([topK])]);
  const s = g.one('Shape', [kv], [attr.int('start', 0), attr.int('end', 1)]);
  const rows = g.one('Gather', [kv, g.one('Min', [top, g.one('Sub', [s, g.int64s([1])])])], [attr.int('axis', 0)]);
  const isNew = g.one('Unsqueeze', [g.one('Equal', [top, s]), g.int64s([1])]);
  const sel = g.one('Where', [isNew, kvNew, rows]);
  const p = g.one('Softmax', [g.one('Gemm', [qAttn, sel], [attr.int('transB', 1), attr.float('alpha', c.smScale)])], [attr.int('axis', -1)]);
  const lat = g.one('MatMul', [p, g.one('Slice', [sel, g.int64s([0]), g.int64s([kvRank]), g.int64s([1])])]);
  const o = headMatMul(g.one('Reshape', [lat, g.int64s([H, 1, kvRank])]), wvT, kvRank, v, 'wkv_b_v');
  g.op('Identity', [linear(g.one('Reshape', [o, g.int64s([1, H * v])]), 'wo', dim, H * v)], [], ['out']);
  g.output('out', OnnxType.FLOAT, [1, dim]);
  g.output('top', OnnxType.INT64, [1, topK]);
  g.output('scores', OnnxType.FLOAT, [1, 's1']);
  return g.model('dsa_layer_decode_step');
}
