// The onnxruntime-node peer of bench/decode.ts: one DSA decode step of one
// sequence as an ONNX graph written in code (bench/onnx-model.ts), with the
// float32 key cache and kv rows as inputs and the sequence length s symbolic,
// so one session serves every length.
//
//   qIdx   = Reshape(Gemm(qr [1, qRank], wqB [h*d, qRank], transB), [h, d])
//   w      = Gemm(x [1, dim], weightsProj [h, dim], transB, alpha = h^-0.5 d^-0.5)   [1, h]
//   scores = MatMul(w, Relu(Gemm(qIdx, keys [s, d], transB)))                          [1, s]
//   top    = TopK(scores, k)                                                           [1, k] int64
//   g      = Gather(kv [s, dqk], Reshape(top, [k]))                                    [k, dqk]
//   out    = MatMul(Softmax(Gemm(q [hq, dqk], g, transB, alpha = smScale)), Slice(g, dV)) [hq, dV]
//
// The step's other work (x @ wk^T, LayerNorm, RoPE, the append) is a few
// thousand flops and is left out; the outputs `scores` and `top` let the
// benchmark check the result against the library on the same inputs.
import { OnnxType, onnxAttr, onnxModel, onnxNode, onnxTensor, onnxValueInfo } from './onnx-model.js';

const int64s = (name: string, values: number[]) => onnxTensor(OnnxType.INT64, [values.length], new BigInt64Array(values.map(BigInt)), name);
const floats = (name: string, dims: (number | string)[]) => onnxValueInfo(name, OnnxType.FLOAT, dims);

export interface DecodeShape {
  dim: number;
  qRank: number;
  h: number;
  d: number;
  hq: number;
  dqk: number;
  dV: number;
  topK: number;
}

export function decodeStepModel(c: DecodeShape): Uint8Array {
  const smScale = 1 / Math.sqrt(c.dqk);
  return onnxModel(
    {
      name: 'dsa_decode_step',
      nodes: [
        onnxNode('Gemm', ['qr', 'wqB'], ['qFlat'], [onnxAttr.int('transB', 1)]),
        onnxNode('Reshape', ['qFlat', 'headsShape'], ['qIdx']),
        onnxNode('Gemm', ['x', 'weightsProj'], ['w'], [onnxAttr.int('transB', 1), onnxAttr.float('alpha', c.h ** -0.5 * c.d ** -0.5)]),
        onnxNode('Gemm', ['qIdx', 'keys'], ['logits'], [onnxAttr.int('transB', 1)]),
        onnxNode('Relu', ['logits'], ['relu']),
        onnxNode('MatMul', ['w', 'relu'], ['scores']),
        onnxNode('TopK', ['scores', 'k'], ['topValues', 'top'], [onnxAttr.int('axis', -1), onnxAttr.int('largest', 1), onnxAttr.int('sorted', 1)]),
        onnxNode('Reshape', ['top', 'kShape'], ['topFlat']),
        onnxNode('Gather', ['kv', 'topFlat'], ['g'], [onnxAttr.int('axis', 0)]),
        onnxNode('Gemm', ['q', 'g'], ['att'], [onnxAttr.int('transB', 1), onnxAttr.float('alpha', smScale)]),
        onnxNode('Softmax', ['att'], ['p'], [onnxAttr.int('axis', -1)]),
        onnxNode('Slice', ['g', 'vStart', 'vEnd', 'vAxes'], ['v']),
        onnxNode('MatMul', ['p', 'v'], ['out']),
      ],
      initializers: [
        int64s('headsShape', [c.h, c.d]),
        int64s('k', [c.topK]),
        int64s('kShape', [c.topK]),
        int64s('vStart', [0]),
        int64s('vEnd', [c.dV]),
        int64s('vAxes', [1]),
      ],
      inputs: [
        floats('x', [1, c.dim]),
        floats('qr', [1, c.qRank]),
        floats('wqB', [c.h * c.d, c.qRank]),
        floats('weightsProj', [c.h, c.dim]),
        floats('keys', ['s', c.d]),
        floats('kv', ['s', c.dqk]),
        floats('q', [c.hq, c.dqk]),
      ],
      outputs: [floats('out', [c.hq, c.dV]), floats('scores', [1, 's']), onnxValueInfo('top', OnnxType.INT64, [1, c.topK])],
    },
    13,
  );
}
