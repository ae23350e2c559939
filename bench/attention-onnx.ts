// The onnxruntime-node dense attention peer of bench/attention.ts: the model
// is written in code as ONNX protobuf bytes (bench/onnx-model.ts), so the
// benchmark has no model file to ship.
//
// Graph, MLA decode with hkv = 1 (one shared kv head):
//   S = Gemm(Q [n*hq, dqk], K [s, dqk], transB = 1, alpha = smScale)  [n*hq, s]
//   A = Reshape(S, [n, hq, s]) + M [n, 1, s]                           [n, hq, s]
//   P = Softmax(A, axis = -1)                                          [n, hq, s]
//   O = MatMul(Reshape(P, [n*hq, s]), V [s, dV])                       [n*hq, dV]
import { OnnxType, onnxAttr, onnxModel, onnxNode, onnxTensor, onnxValueInfo } from './onnx-model.js';

const int64s = (name: string, values: number[]) => onnxTensor(OnnxType.INT64, [values.length], new BigInt64Array(values.map(BigInt)), name);
const floats = (name: string, dims: number[]) => onnxValueInfo(name, OnnxType.FLOAT, dims);

/** ONNX model bytes (opset 13) of masked dense attention for a block of n queries. */
export function denseAttentionModel(n: number, hq: number, s: number, dqk: number, dV: number, smScale: number): Uint8Array {
  return onnxModel(
    {
      name: 'dense_attention',
      nodes: [
        onnxNode('Gemm', ['q', 'k'], ['scores'], [onnxAttr.int('transB', 1), onnxAttr.float('alpha', smScale)]),
        onnxNode('Reshape', ['scores', 'shape3'], ['scores3']),
        onnxNode('Add', ['scores3', 'mask'], ['masked']),
        onnxNode('Softmax', ['masked'], ['probs'], [onnxAttr.int('axis', -1)]),
        onnxNode('Reshape', ['probs', 'shape2'], ['probs2']),
        onnxNode('MatMul', ['probs2', 'v'], ['out']),
      ],
      initializers: [int64s('shape3', [n, hq, s]), int64s('shape2', [n * hq, s])],
      inputs: [floats('q', [n * hq, dqk]), floats('k', [s, dqk]), floats('v', [s, dV]), floats('mask', [n, 1, s])],
      outputs: [floats('out', [n * hq, dV])],
    },
    13,
  );
}
