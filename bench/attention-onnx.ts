// The onnxruntime-node dense attention peer of bench/attention.ts: the model
// is written in code as ONNX protobuf bytes (a minimal writer for the few
// messages needed), so the benchmark has no model file to ship.
//
// Graph, MLA decode with hkv = 1 (one shared kv head):
//   S = Gemm(Q [n*hq, dqk], K [s, dqk], transB = 1, alpha = smScale)  [n*hq, s]
//   A = Reshape(S, [n, hq, s]) + M [n, 1, s]                           [n, hq, s]
//   P = Softmax(A, axis = -1)                                          [n, hq, s]
//   O = MatMul(Reshape(P, [n*hq, s]), V [s, dV])                       [n*hq, dV]

/** Protobuf wire format: varints, length-delimited fields, fixed32 floats. */
class Proto {
  private bytes: number[] = [];

  private varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.bytes.push(Number(v));
  }

  int(field: number, value: number): this {
    this.varint((field << 3) | 0);
    this.varint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.varint((field << 3) | 5);
    const b = new Uint8Array(new Float32Array([value]).buffer);
    this.bytes.push(...b);
    return this;
  }

  bytesField(field: number, value: Uint8Array): this {
    this.varint((field << 3) | 2);
    this.varint(value.length);
    for (const b of value) this.bytes.push(b);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytesField(field, new TextEncoder().encode(value));
  }

  message(field: number, value: Proto): this {
    return this.bytesField(field, value.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

const FLOAT = 1;
const INT64 = 7;
const ATTR_FLOAT = 1;
const ATTR_INT = 2;

function valueInfo(name: string, dims: number[]): Proto {
  const shape = new Proto();
  for (const d of dims) shape.message(1, new Proto().int(1, d));
  const tensorType = new Proto().int(1, FLOAT).message(2, shape);
  return new Proto().string(1, name).message(2, new Proto().message(1, tensorType));
}

function int64Initializer(name: string, values: number[]): Proto {
  const raw = new Uint8Array(new BigInt64Array(values.map(BigInt)).buffer);
  return new Proto().int(1, values.length).int(2, INT64).string(8, name).bytesField(9, raw);
}

type Attr = { name: string; int?: number; float?: number };

function node(op: string, inputs: string[], outputs: string[], attrs: Attr[] = []): Proto {
  const p = new Proto();
  for (const i of inputs) p.string(1, i);
  for (const o of outputs) p.string(2, o);
  p.string(3, `${op}_${outputs[0]}`).string(4, op);
  for (const a of attrs) {
    const attr = new Proto().string(1, a.name);
    if (a.float !== undefined) attr.float(2, a.float).int(20, ATTR_FLOAT);
    else attr.int(3, a.int ?? 0).int(20, ATTR_INT);
    p.message(5, attr);
  }
  return p;
}

/** ONNX model bytes (opset 13) of masked dense attention for a block of n queries. */
export function denseAttentionModel(n: number, hq: number, s: number, dqk: number, dV: number, smScale: number): Uint8Array {
  const graph = new Proto()
    .message(1, node('Gemm', ['q', 'k'], ['scores'], [{ name: 'transB', int: 1 }, { name: 'alpha', float: smScale }]))
    .message(1, node('Reshape', ['scores', 'shape3'], ['scores3']))
    .message(1, node('Add', ['scores3', 'mask'], ['masked']))
    .message(1, node('Softmax', ['masked'], ['probs'], [{ name: 'axis', int: -1 }]))
    .message(1, node('Reshape', ['probs', 'shape2'], ['probs2']))
    .message(1, node('MatMul', ['probs2', 'v'], ['out']))
    .string(2, 'dense_attention')
    .message(5, int64Initializer('shape3', [n, hq, s]))
    .message(5, int64Initializer('shape2', [n * hq, s]))
    .message(11, valueInfo('q', [n * hq, dqk]))
    .message(11, valueInfo('k', [s, dqk]))
    .message(11, valueInfo('v', [s, dV]))
    .message(11, valueInfo('mask', [n, 1, s]))
    .message(12, valueInfo('out', [n * hq, dV]));
  return new Proto()
    .int(1, 8) // ir_version
    .string(2, 'dsa-ts-bench')
    .message(7, graph)
    .message(8, new Proto().string(1, '').int(2, 13))
    .finish();
}
