// ONNX model bytes written in code (a few messages of the protobuf wire
// format), so benchmarks ship no model files. Enough of onnx.proto for small
// graphs: tensors, value infos, nodes with int/ints/float/tensor attributes.

/** Protobuf wire format writer: varint (0), length-delimited (2) and fixed32 (5) fields. */
export class ProtoWriter {
  private readonly bytes: number[] = [];

  private varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    for (; v >= 0x80n; v >>= 7n) this.bytes.push(Number(v & 0x7fn) | 0x80);
    this.bytes.push(Number(v));
  }

  int(field: number, value: number | bigint): this {
    this.varint(field << 3);
    this.varint(value);
    return this;
  }

  /** A float32, little-endian, as a fixed32 field. */
  float(field: number, value: number): this {
    this.varint((field << 3) | 5);
    const b = new Uint8Array(new Float32Array([value]).buffer);
    for (const byte of b) this.bytes.push(byte);
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

  message(field: number, value: ProtoWriter): this {
    return this.raw(field, value.done());
  }

  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** onnx.proto TensorProto.DataType values. */
export const OnnxType = { FLOAT: 1, UINT8: 2, INT32: 6, INT64: 7, BOOL: 9 } as const;

/** TensorProto: dims (1), data_type (2), name (8), raw_data (9, little-endian). */
export function onnxTensor(dataType: number, dims: number[], raw: ArrayBufferView, name = ''): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of dims) w.int(1, d);
  w.int(2, dataType);
  if (name) w.string(8, name);
  return w.raw(9, new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
}

/** ValueInfoProto { name, TypeProto { tensor_type { elem_type, shape { dim { dim_value | dim_param } } } } }; a string dim is symbolic. */
export function onnxValueInfo(name: string, elemType: number, dims: (number | string)[]): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of dims) shape.message(1, typeof d === 'string' ? new ProtoWriter().string(2, d) : new ProtoWriter().int(1, d));
  return new ProtoWriter().string(1, name).message(2, new ProtoWriter().message(1, new ProtoWriter().int(1, elemType).message(2, shape)));
}

/** AttributeProto: name (1), f (2), i (3), t (5), ints (8), type (20: FLOAT 1, INT 2, TENSOR 4, INTS 7). */
export const onnxAttr = {
  float: (name: string, value: number) => new ProtoWriter().string(1, name).float(2, value).int(20, 1),
  int: (name: string, value: number) => new ProtoWriter().string(1, name).int(3, value).int(20, 2),
  ints: (name: string, values: number[]) => {
    const w = new ProtoWriter().string(1, name);
    for (const v of values) w.int(8, v);
    return w.int(20, 7);
  },
  tensor: (name: string, value: ProtoWriter) => new ProtoWriter().string(1, name).message(5, value).int(20, 4),
};

/** NodeProto: input (1), output (2), name (3), op_type (4), attribute (5). */
export function onnxNode(op: string, inputs: string[], outputs: string[], attrs: ProtoWriter[] = []): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of inputs) w.string(1, i);
  for (const o of outputs) w.string(2, o);
  w.string(3, `${op}_${outputs[0]}`).string(4, op);
  for (const a of attrs) w.message(5, a);
  return w;
}

/** ModelProto (ir_version 8, ai.onnx opset `opset`) around one graph of nodes, initializers, inputs and outputs. */
export function onnxModel(graph: { name: string; nodes: ProtoWriter[]; initializers?: ProtoWriter[]; inputs: ProtoWriter[]; outputs: ProtoWriter[] }, opset = 17): Uint8Array {
  const g = new ProtoWriter();
  for (const n of graph.nodes) g.message(1, n);
  g.string(2, graph.name);
  for (const t of graph.initializers ?? []) g.message(5, t);
  for (const i of graph.inputs) g.message(11, i);
  for (const o of graph.outputs) g.message(12, o);
  return new ProtoWriter()
    .int(1, 8) // ir_version
    .string(2, 'dsa-ts bench')
    .message(7, g)
    .message(8, new ProtoWriter().string(1, '').int(2, opset))
    .done();
}
