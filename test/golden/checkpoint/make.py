#!/usr/bin/python3
"""Writes the tiny checkpoint of test/model/checkpoint.test.ts ("golden fixture").

A two-layer DeepSeek-V3.2-style Hugging Face checkpoint in model/: config.json
(model_type deepseek_v32, FP8 e4m3 with 128 x 128 blocks, scale_fmt ue8m0,
YaRN), model.safetensors.index.json and two shards, with the tensor names and
stored dtypes of DeepSeek-V3.2's own checkpoint: every linear of MLA and the
indexer as F8_E4M3 codes with a float32 weight_scale_inv [ceil(out/128),
ceil(in/128)], except indexer.weights_proj (BF16); q_a_layernorm and
kv_a_layernorm BF16; indexer.k_norm weight and bias F32. hidden_size 136 makes
the scale grids two blocks wide, the second partial. Layer 1 straddles the two
shards (its q_a_proj sits in the first), as layers do in the real index.

The safetensors files are written here by hand (the format: u64 LE header
length, JSON header with data_offsets relative to the data start, padded
with spaces to 8 bytes), not by the library under test, and expected.json
holds sampled values of layer 1 dequantized by the definitions:
e4m3(code) * scale[r // 128, c // 128] in float32, bf16 as the upper half of
a float32.

Run from the repository root: /usr/bin/python3 test/golden/checkpoint/make.py
"""
import json
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "model")
os.makedirs(OUT, exist_ok=True)
rs = np.random.RandomState(7)

HIDDEN, HEADS, Q_LORA, KV_LORA, NOPE, ROPE, V, IDX_HEADS, IDX_DIM, LAYERS = 136, 2, 8, 8, 4, 4, 4, 2, 8, 2
CONFIG = {
    "architectures": ["DeepseekV32ForCausalLM"],
    "model_type": "deepseek_v32",
    "hidden_size": HIDDEN,
    "num_attention_heads": HEADS,
    "num_key_value_heads": HEADS,
    "q_lora_rank": Q_LORA,
    "kv_lora_rank": KV_LORA,
    "qk_nope_head_dim": NOPE,
    "qk_rope_head_dim": ROPE,
    "v_head_dim": V,
    "index_n_heads": IDX_HEADS,
    "index_head_dim": IDX_DIM,
    "index_topk": 4,
    "num_hidden_layers": LAYERS,
    "num_nextn_predict_layers": 0,
    "rms_norm_eps": 1e-06,
    "rope_theta": 10000,
    "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
                     "original_max_position_embeddings": 4096, "type": "yarn"},
    "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                            "scale_fmt": "ue8m0", "weight_block_size": [128, 128]},
    "torch_dtype": "bfloat16",
}

LINEARS = {
    "q_a_proj": (Q_LORA, HIDDEN),
    "q_b_proj": (HEADS * (NOPE + ROPE), Q_LORA),
    "kv_a_proj_with_mqa": (KV_LORA + ROPE, HIDDEN),
    "kv_b_proj": (HEADS * (NOPE + V), KV_LORA),
    "o_proj": (HIDDEN, HEADS * V),
    "indexer.wq_b": (IDX_HEADS * IDX_DIM, Q_LORA),
    "indexer.wk": (IDX_DIM, HIDDEN),
    "indexer.weights_proj": (IDX_HEADS, HIDDEN),
}


def e4m3_value(code):
    """The e4m3 (float8_e4m3fn) value of a code: bias 7, subnormals, 0x7f / 0xff NaN."""
    sign = -1.0 if code & 0x80 else 1.0
    e, m = (code >> 3) & 15, code & 7
    if e == 15 and m == 7:
        return float("nan")
    return sign * (2.0 ** -6 * m / 8 if e == 0 else 2.0 ** (e - 7) * (1 + m / 8))


E4M3 = np.array([e4m3_value(c) for c in range(256)], dtype=np.float32)


def bf16_bits(x):
    """Round-to-nearest-even float32 -> bf16 bit patterns."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_value(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def fp8_codes(shape):
    codes = rs.randint(0, 256, size=shape).astype(np.uint8)
    codes[(codes & 0x7F) == 0x7F] = 0x38  # no NaN codes in a weight
    return codes


def layer_tensors(i):
    p = "model.layers.%d.self_attn." % i
    t = {}
    for name, (rows, cols) in LINEARS.items():
        if name == "indexer.weights_proj":
            t[p + name + ".weight"] = ("BF16", bf16_bits(rs.randn(rows, cols) * 0.05))
        else:
            t[p + name + ".weight"] = ("F8_E4M3", fp8_codes((rows, cols)))
            scale = (2.0 ** rs.randint(-12, -4, size=(-(-rows // 128), -(-cols // 128)))) * (1 + rs.rand(-(-rows // 128), -(-cols // 128)))
            t[p + name + ".weight_scale_inv"] = ("F32", scale.astype(np.float32))
    t[p + "q_a_layernorm.weight"] = ("BF16", bf16_bits(1 + 0.1 * rs.randn(Q_LORA)))
    t[p + "kv_a_layernorm.weight"] = ("BF16", bf16_bits(1 + 0.1 * rs.randn(KV_LORA)))
    t[p + "indexer.k_norm.weight"] = ("F32", (1 + 0.1 * rs.randn(IDX_DIM)).astype(np.float32))
    t[p + "indexer.k_norm.bias"] = ("F32", (0.1 * rs.randn(IDX_DIM)).astype(np.float32))
    return t


def write_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        dtype, array = tensors[name]
        raw = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return os.path.getsize(path)


layers = [layer_tensors(i) for i in range(LAYERS)]
shard1 = dict(layers[0])
shard1["model.norm.weight"] = ("BF16", bf16_bits(np.ones(HIDDEN)))
moved = "model.layers.1.self_attn.q_a_proj.weight"
for name in (moved, moved + "_scale_inv"):
    shard1[name] = layers[1][name]
shard2 = {k: v for k, v in layers[1].items() if k not in shard1}
names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
total = 0
weight_map = {}
for file, tensors in zip(names, [shard1, shard2]):
    total += write_safetensors(os.path.join(OUT, file), tensors)
    weight_map.update({name: file for name in tensors})
with open(os.path.join(OUT, "model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
with open(os.path.join(OUT, "config.json"), "w") as f:
    json.dump(CONFIG, f, indent=2)

# expected values of layer 1, dequantized by the definitions
LAYER = 1
p = "model.layers.%d.self_attn." % LAYER
t = layers[LAYER]
expected = {"layer": LAYER, "tensors": {}, "storedBytes": int(sum(a.nbytes for _, a in t.values()))}
for name, (rows, cols) in LINEARS.items():
    dtype, array = t[p + name + ".weight"]
    positions = {(0, 0), (rows - 1, cols - 1), (rows // 2, cols // 3)} | {(int(rs.randint(rows)), int(rs.randint(cols))) for _ in range(5)}
    if cols > 128:
        positions |= {(0, 128), (rows - 1, 130)}  # the partial second block
    samples = []
    for r, c in sorted(positions):
        if dtype == "BF16":
            value = bf16_value(array[r:r + 1, c])[0]
        else:
            scale = t[p + name + ".weight_scale_inv"][1][r // 128, c // 128]
            value = np.float32(E4M3[array[r, c]]) * np.float32(scale)  # float32 product
        samples.append([r, c, float(np.float32(value))])
    expected["tensors"][name] = {"format": "bf16" if dtype == "BF16" else "fp8", "shape": [rows, cols], "samples": samples}
for key, name in [("q_a_layernorm", "q_a_layernorm.weight"), ("kv_a_layernorm", "kv_a_layernorm.weight"),
                  ("indexer.k_norm", "indexer.k_norm.weight"), ("indexer.k_norm.bias", "indexer.k_norm.bias")]:
    dtype, array = t[p + name]
    values = bf16_value(array) if dtype == "BF16" else array
    expected["tensors"][key] = {"format": "float32", "shape": [len(values)], "samples": [[0, j, float(v)] for j, v in enumerate(values)]}
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
print("wrote", OUT, "shards", total, "bytes; layer", LAYER, "stores", expected["storedBytes"], "bytes")
