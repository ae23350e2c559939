// The onnxruntime-node peer of bench/mask.ts, the graph a user would export
// from PyTorch/JAX for the scatter mask, written in code as ONNX protobuf
// bytes (a few messages of the wire format), so no model file is shipped:
//
//   filled  = ConstantOfShape([rows, s], value = DEFAULT_MASK_VALUE)  [rows, s]
//   zeros   = ConstantOfShape(Shape(indices), value = 0)               [rows, k]
//   mask    = ScatterElements(filled, indices, zeros, axis = 1)        [rows, s]

/** Protobuf wire format writer: varint (0), length-delimited (2) and fixed32 (5) fields. */
class Writer {
  private readonly bytes: number[] = [];

  private varint(value: number): void {
    let v = BigInt.asUintN(64, BigInt(value));
    for (; v >= 0x80n; v >>= 7n) this.bytes.push(Number(v & 0x7fn) | 0x80);
    this.bytes.push(Number(v));
  }

  int(field: number, value: number): this {
    this.varint(field << 3);
    this.varint(value);
    return this;
  }

  raw(field: number, value: Uint8Array): this {
    this.varint((field << 3) | 2);
    this.varint(value.length);
    for (const byte of value) this.bytes.push(byte);
    return this;
  }

  string(field: number, value: string): this {
    return this.raw(field, new TextEncoder().encode(value));
  }

  message(field: number, value: Writer): this {
    return this.raw(field, value.done());
  }

  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

// onnx.proto enum values.
const FLOAT = 1, INT32 = 6, INT64 = 7;
const ATTR_INT = 2, ATTR_TENSOR = 4;

/** TensorProto: dims (1), data_type (2), name (8), raw_data (9). */
function tensor(dataType: number, dims: number[], raw: ArrayBufferView, name = ''): Writer {
  const w = new Writer();
  for (const d of dims) w.int(1, d);
  w.int(2, dataType);
  if (name) w.string(8, name);
  return w.raw(9, new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
}

/** ValueInfoProto { name, TypeProto { tensor_type { elem_type, shape { dim { dim_value } } } } }. */
function valueInfo(name: string, elemType: number, dims: number[]): Writer {
  const shape = new Writer();
  for (const d of dims) shape.message(1, new Writer().int(1, d));
  return new Writer().string(1, name).message(2, new Writer().message(1, new Writer().int(1, elemType).message(2, shape)));
}

/** NodeProto: input (1), output (2), name (3), op_type (4), attribute (5: name 1, i 3, t 5, type 20). */
function node(op: string, inputs: string[], outputs: string[], attrs: Writer[] = []): Writer {
  const w = new Writer();
  for (const i of inputs) w.string(1, i);
  for (const o of outputs) w.string(2, o);
  w.string(3, `${op}_${outputs[0]}`).string(4, op);
  for (const a of attrs) w.message(5, a);
  return w;
}

/** The ONNX model bytes for rows x s masks from int32 indices [rows, k]. */
export function scatterMaskModel(rows: number, s: number, k: number, maskValue: number): Uint8Array {
  const graph = new Writer()
    .message(1, node('ConstantOfShape', ['shape'], ['filled'], [
      new Writer().string(1, 'value').message(5, tensor(FLOAT, [1], new Float32Array([maskValue]))).int(20, ATTR_TENSOR),
    ]))
    .message(1, node('Shape', ['indices'], ['indicesShape']))
    .message(1, node('ConstantOfShape', ['indicesShape'], ['zeros'], [
      new Writer().string(1, 'value').message(5, tensor(FLOAT, [1], new Float32Array([0]))).int(20, ATTR_TENSOR),
    ]))
    .message(1, node('ScatterElements', ['filled', 'indices', 'zeros'], ['mask'], [new Writer().string(1, 'axis').int(3, 1).int(20, ATTR_INT)]))
    .string(2, 'scatter_mask')
    .message(5, tensor(INT64, [2], new BigInt64Array([BigInt(rows), BigInt(s)]), 'shape'))
    .message(11, valueInfo('indices', INT32, [rows, k]))
    .message(12, valueInfo('mask', FLOAT, [rows, s]));
  return new Writer()
    .int(1, 8) // ir_version
    .string(2, 'dsa-ts bench')
    .message(7, graph)
    .message(8, new Writer().string(1, '').int(2, 17)) // opset_import: ai.onnx 17
    .done();
}
