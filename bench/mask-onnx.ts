// The onnxruntime-node peer of bench/mask.ts, the graph a user would export
// from PyTorch/JAX for the scatter mask, written in code as ONNX protobuf
// bytes (bench/onnx-model.ts), so no model file is shipped:
//
//   filled  = ConstantOfShape([rows, s], value = DEFAULT_MASK_VALUE)  [rows, s]
//   zeros   = ConstantOfShape(Shape(indices), value = 0)               [rows, k]
//   mask    = ScatterElements(filled, indices, zeros, axis = 1)        [rows, s]
import { OnnxType, onnxAttr, onnxModel, onnxNode, onnxTensor, onnxValueInfo } from './onnx-model.js';

/** The ONNX model bytes for rows x s masks from int32 indices [rows, k]. */
export function scatterMaskModel(rows: number, s: number, k: number, maskValue: number): Uint8Array {
  const fill = (value: number) => onnxAttr.tensor('value', onnxTensor(OnnxType.FLOAT, [1], new Float32Array([value])));
  return onnxModel({
    name: 'scatter_mask',
    nodes: [
      onnxNode('ConstantOfShape', ['shape'], ['filled'], [fill(maskValue)]),
      onnxNode('Shape', ['indices'], ['indicesShape']),
      onnxNode('ConstantOfShape', ['indicesShape'], ['zeros'], [fill(0)]),
      onnxNode('ScatterElements', ['filled', 'indices', 'zeros'], ['mask'], [onnxAttr.int('axis', 1)]),
    ],
    initializers: [onnxTensor(OnnxType.INT64, [2], new BigInt64Array([BigInt(rows), BigInt(s)]), 'shape')],
    inputs: [onnxValueInfo('indices', OnnxType.INT32, [rows, k])],
    outputs: [onnxValueInfo('mask', OnnxType.FLOAT, [rows, s])],
  });
}
