import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bytesSource, encodeSafetensors, parseSafetensorsHeader, SafetensorsError, type ByteSource, type SafetensorsDtype, type SafetensorsTensor } from '../../src/io/safetensors.js';
import { CheckpointError, layerWeightBytes, openCheckpoint, type CheckpointFile } from '../../src/model/checkpoint.js';
import { ConfigError } from '../../src/model/config.js';
import type { MlaLayerWeights } from '../../src/model/types.js';
import type { Weight } from '../../src/weights/weight.js';
import { scratch } from '../helpers/numpy.js';

// Tiny dims; hidden 136 makes FP8 scale grids of partial 128-blocks ([*, 2]).
const DIMS = { hidden: 136, heads: 2, qLora: 8, kvLora: 8, nope: 4, rope: 4, v: 4, idxHeads: 2, idxDim: 8 };

function tinyConfig(modelType: 'deepseek_v32' | 'glm_moe_dsa', nLayers: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_type: modelType,
    hidden_size: DIMS.hidden,
    num_attention_heads: DIMS.heads,
    q_lora_rank: DIMS.qLora,
    kv_lora_rank: DIMS.kvLora,
    qk_nope_head_dim: DIMS.nope,
    qk_rope_head_dim: DIMS.rope,
    v_head_dim: DIMS.v,
    index_n_heads: DIMS.idxHeads,
    index_head_dim: DIMS.idxDim,
    index_topk: 4,
    num_hidden_layers: nLayers,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    quantization_config: { activation_scheme: 'dynamic', fmt: 'e4m3', quant_method: 'fp8', scale_fmt: 'ue8m0', weight_block_size: [128, 128] },
    ...extra,
  };
}

/** [out, in] of each linear, by its name under self_attn. */
const LINEARS: Record<string, [number, number]> = {
  q_a_proj: [DIMS.qLora, DIMS.hidden],
  q_b_proj: [DIMS.heads * (DIMS.nope + DIMS.rope), DIMS.qLora],
  kv_a_proj_with_mqa: [DIMS.kvLora + DIMS.rope, DIMS.hidden],
  kv_b_proj: [DIMS.heads * (DIMS.nope + DIMS.v), DIMS.kvLora],
  o_proj: [DIMS.hidden, DIMS.heads * DIMS.v],
  'indexer.wq_b': [DIMS.idxHeads * DIMS.idxDim, DIMS.qLora],
  'indexer.wk': [DIMS.idxDim, DIMS.hidden],
  'indexer.weights_proj': [DIMS.idxHeads, DIMS.hidden],
};
const NORMS: Record<string, number> = { 'q_a_layernorm.weight': DIMS.qLora, 'kv_a_layernorm.weight': DIMS.kvLora, 'indexer.k_norm.weight': DIMS.idxDim, 'indexer.k_norm.bias': DIMS.idxDim };

let seed = 1;
function random(): number {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed / 2 ** 32;
}

function randomTensor(dtype: SafetensorsDtype, shape: number[]): SafetensorsTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (dtype === 'F32') return { dtype, shape, data: Float32Array.from({ length: n }, () => random() * 2 - 1) };
  if (dtype === 'F16') return { dtype, shape, data: Uint16Array.from({ length: n }, () => 0x3c00 | Math.floor(random() * 1024)) };
  if (dtype === 'BF16' || dtype === 'I16' || dtype === 'U16') return { dtype, shape, data: Uint16Array.from({ length: n }, () => 0x3f00 | Math.floor(random() * 256)) };
  if (dtype === 'I32') return { dtype, shape, data: Int32Array.from({ length: n }, () => Math.floor(random() * 100)) };
  return { dtype, shape, data: Uint8Array.from({ length: n }, () => Math.floor(random() * 256)) };
}

interface Build {
  nLayers: number;
  /** Layers without indexer tensors (GLM-5 shared). */
  noIndexer?: number[];
  /** dtype of each linear (default: weights_proj BF16, the rest F8_E4M3, as DeepSeek-V3.2 stores them). */
  linearDtype?: (name: string) => 'F8_E4M3' | 'BF16' | 'F32';
  normDtype?: (name: string) => 'F32' | 'BF16' | 'F16';
}

/** Every tensor of a tiny checkpoint, layer by layer, plus two that belong to no layer. */
function tinyTensors(b: Build): Map<string, SafetensorsTensor> {
  const out = new Map<string, SafetensorsTensor>();
  out.set('model.embed_tokens.weight', randomTensor('BF16', [4, DIMS.hidden]));
  for (let i = 0; i < b.nLayers; i++) {
    const p = `model.layers.${i}.self_attn.`;
    const indexer = !(b.noIndexer ?? []).includes(i);
    for (const [name, [rows, cols]] of Object.entries(LINEARS)) {
      if (name.startsWith('indexer.') && !indexer) continue;
      const dtype = b.linearDtype?.(name) ?? (name === 'indexer.weights_proj' ? 'BF16' : 'F8_E4M3');
      out.set(`${p}${name}.weight`, randomTensor(dtype, [rows, cols]));
      if (dtype === 'F8_E4M3') out.set(`${p}${name}.weight_scale_inv`, randomTensor('F32', [Math.ceil(rows / 128), Math.ceil(cols / 128)]));
    }
    for (const [name, n] of Object.entries(NORMS)) {
      if (name.startsWith('indexer.') && !indexer) continue;
      out.set(`${p}${name}`, randomTensor(b.normDtype?.(name) ?? (name.startsWith('indexer.') ? 'F32' : 'BF16'), [n]));
    }
    out.set(`model.layers.${i}.input_layernorm.weight`, randomTensor('BF16', [DIMS.hidden]));
  }
  out.set('model.norm.weight', randomTensor('BF16', [DIMS.hidden]));
  return out;
}

const encoder = new TextEncoder();

/** The files: config.json and one model.safetensors, or shards of `perShard` layers with the index. */
function checkpointFiles(config: Record<string, unknown>, tensors: Map<string, SafetensorsTensor>, layout: 'single' | { perShard: number }): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>([['config.json', encoder.encode(JSON.stringify(config))]]);
  if (layout === 'single') {
    files.set('model.safetensors', encodeSafetensors(tensors, { format: 'pt' }));
    return files;
  }
  const shardOf = (name: string) => {
    const m = /^model\.layers\.(\d+)\./.exec(name);
    return m === null ? 0 : Math.floor(Number(m[1]) / layout.perShard);
  };
  const groups = new Map<number, Map<string, SafetensorsTensor>>();
  for (const [name, t] of tensors) {
    const s = shardOf(name);
    if (!groups.has(s)) groups.set(s, new Map());
    groups.get(s)!.set(name, t);
  }
  const count = groups.size;
  const fileName = (s: number) => `model-${String(s + 1).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.safetensors`;
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (const [s, group] of groups) {
    const bytes = encodeSafetensors(group, { format: 'pt' });
    files.set(fileName(s), bytes);
    total += bytes.length;
    for (const name of group.keys()) weightMap[name] = fileName(s);
  }
  files.set('model.safetensors.index.json', encoder.encode(JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap })));
  return files;
}

function writeFolder(dir: string, files: Map<string, Uint8Array>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of files) writeFileSync(join(dir, name), bytes);
}

const bits = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function widenRef(t: SafetensorsTensor): number[] {
  const d = t.data as Uint16Array | Float32Array;
  if (t.dtype === 'F32') return [...d];
  if (t.dtype === 'BF16') return [...d].map((x) => new Float32Array(Uint32Array.of(x << 16).buffer)[0]);
  // F16 by its definition: (-1)^s 2^(e-15) (1 + m/1024), subnormals 2^-14 m/1024
  return [...d].map((h) => {
    const s = h >> 15 ? -1 : 1;
    const e = (h >> 10) & 31;
    const m = h & 1023;
    return e === 0 ? s * 2 ** -14 * (m / 1024) : s * 2 ** (e - 15) * (1 + m / 1024);
  });
}

/** The loaded layer against the tensors written: stored forms bit for bit, norms widened exactly. */
function assertLayer(layer: MlaLayerWeights, tensors: Map<string, SafetensorsTensor>, i: number, indexer: boolean): void {
  const p = `model.layers.${i}.self_attn.`;
  const checkWeight = (w: Weight, name: string) => {
    const t = tensors.get(`${p}${name}.weight`)!;
    assert.deepEqual(w.shape, t.shape, name);
    const format = { F8_E4M3: 'fp8', BF16: 'bf16', F32: 'float32' }[t.dtype as 'F8_E4M3' | 'BF16' | 'F32'];
    assert.equal(w.format, format, `${name}: ${t.dtype} stays ${format}`);
    assert.equal(w.data.constructor, t.data.constructor, name);
    assert.deepEqual(bits(w.data), bits(t.data), `${name} data`);
    if (w.format === 'fp8') {
      const s = tensors.get(`${p}${name}.weight_scale_inv`)!;
      assert.ok(w.scale instanceof Float32Array);
      assert.deepEqual([...w.scale], [...(s.data as Float32Array)], `${name} scale`);
    }
  };
  const checkNorm = (v: Float32Array, name: string) => {
    assert.ok(v instanceof Float32Array, name);
    assert.deepEqual([...v], widenRef(tensors.get(`${p}${name}`)!), name);
  };
  checkWeight(layer.wqA, 'q_a_proj');
  checkWeight(layer.wqB, 'q_b_proj');
  checkWeight(layer.wkvA, 'kv_a_proj_with_mqa');
  checkWeight(layer.wkvB, 'kv_b_proj');
  checkWeight(layer.wo, 'o_proj');
  checkNorm(layer.qNorm, 'q_a_layernorm.weight');
  checkNorm(layer.kvNorm, 'kv_a_layernorm.weight');
  if (!indexer) {
    assert.equal(layer.indexer, undefined, `layer ${i} has no indexer`);
    return;
  }
  assert.ok(layer.indexer, `layer ${i} has its indexer`);
  checkWeight(layer.indexer.wqB, 'indexer.wq_b');
  checkWeight(layer.indexer.wk, 'indexer.wk');
  checkWeight(layer.indexer.weightsProj, 'indexer.weights_proj');
  checkNorm(layer.indexer.kNormWeight, 'indexer.k_norm.weight');
  checkNorm(layer.indexer.kNormBias, 'indexer.k_norm.bias');
}

function expectCheckpointError(code: string, pattern: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof CheckpointError, `expected a CheckpointError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  };
}

/** Open file descriptors of this process (Linux), to see that nothing stays open. */
function openFds(): number | undefined {
  return existsSync('/proc/self/fd') ? readdirSync('/proc/self/fd').length : undefined;
}

test('deepseek_v32, sharded in a folder: every layer as stored (FP8 codes + float32 scales, BF16 weights_proj, BF16 / F32 norms widened), no handle left open', async () => {
  const tmp = scratch();
  try {
    const tensors = tinyTensors({ nLayers: 3 });
    const files = checkpointFiles(tinyConfig('deepseek_v32', 3), tensors, { perShard: 1 });
    assert.equal([...files.keys()].filter((f) => f.endsWith('.safetensors')).length, 3);
    writeFolder(tmp.dir, files);
    const ckpt = await openCheckpoint(tmp.dir);
    await ckpt.loadLayer(0);
    const before = openFds();
    assert.equal(ckpt.modelType, 'deepseek_v32');
    assert.equal(ckpt.layerCount, 3);
    assert.equal(ckpt.config.dim, DIMS.hidden);
    assert.deepEqual(ckpt.fp8, { fmt: 'e4m3', blockSize: [128, 128], scaleFormat: 'ue8m0', activationScheme: 'dynamic' });
    assert.deepEqual([...ckpt.tensorNames].sort(), [...tensors.keys()].sort());
    for (const i of [2, 0, 1]) {
      const layer = await ckpt.loadLayer(i);
      assertLayer(layer, tensors, i, true);
      assert.equal(layer.wqA.format === 'fp8' && layer.wqA.scale.length, 2, 'q_a_proj [8, 136]: a scale grid [1, 2] (a partial edge block)');
    }
    const noIndexer = await ckpt.loadLayer(1, { indexer: false });
    assertLayer(noIndexer, tensors, 1, false);
    assert.ok((openFds() ?? 0) <= (before ?? 0), `every shard closed after the loads (${openFds()} open fds, ${before} before)`);
    await ckpt.close();
    await assert.rejects(ckpt.loadLayer(0), expectCheckpointError('closed', /closed/));
  } finally {
    tmp.done();
  }
});

test('glm_moe_dsa, one model.safetensors: a shared layer (indexer_types) has no indexer tensors and gets none; F32 linears stay float32', async () => {
  const tensors = tinyTensors({ nLayers: 3, noIndexer: [1], linearDtype: (n) => (n === 'o_proj' ? 'F32' : n.startsWith('indexer.') ? 'BF16' : 'F8_E4M3') });
  assert.ok(![...tensors.keys()].some((n) => n.startsWith('model.layers.1.self_attn.indexer.')));
  const files = checkpointFiles(tinyConfig('glm_moe_dsa', 3, { indexer_types: ['full', 'shared', 'full'], indexer_rope_interleave: true }), tensors, 'single');
  assert.deepEqual([...files.keys()].sort(), ['config.json', 'model.safetensors']);
  const tmp = scratch();
  let ckpt;
  try {
    writeFolder(tmp.dir, files);
    ckpt = await openCheckpoint(tmp.dir);
    for (const i of [0, 1, 2]) assertLayer(await ckpt.loadLayer(i), tensors, i, i !== 1);
  } finally {
    tmp.done();
  }
  ckpt = await openCheckpoint(files);
  assert.equal(ckpt.modelType, 'glm_moe_dsa');
  assert.deepEqual(ckpt.config.indexerTypes, ['full', 'shared', 'full']);
  assert.equal(ckpt.fileOf('model.layers.2.self_attn.o_proj.weight'), 'model.safetensors');
  for (const i of [0, 1, 2]) assertLayer(await ckpt.loadLayer(i), tensors, i, i !== 1);
  assert.equal((await ckpt.loadLayer(0)).wo.format, 'float32');
  // a shared layer's indexer tensors, if a checkpoint has them anyway, are not read
  const withStray = tinyTensors({ nLayers: 3 });
  const strayCkpt = await openCheckpoint(checkpointFiles(tinyConfig('glm_moe_dsa', 3, { index_topk_freq: 2, index_skip_topk_offset: 1 }), withStray, 'single'));
  assert.deepEqual(strayCkpt.config.indexerTypes, ['full', 'shared', 'full']);
  assertLayer(await strayCkpt.loadLayer(1), withStray, 1, false);
  assert.ok(!(await strayCkpt.layerTensors(1)).some((t) => t.name.includes('indexer')));
});

test('files as Blobs (a dropped folder in a browser) and as a plain record', async () => {
  const tensors = tinyTensors({ nLayers: 2, normDtype: (n) => (n === 'kv_a_layernorm.weight' ? 'F16' : 'F32') });
  const files = checkpointFiles(tinyConfig('deepseek_v32', 2), tensors, { perShard: 1 });
  const blobs = new Map<string, CheckpointFile>([...files].map(([k, v]) => [k, new Blob([v as BlobPart])]));
  assertLayer(await (await openCheckpoint(blobs)).loadLayer(1), tensors, 1, true);
  assertLayer(await (await openCheckpoint(Object.fromEntries(files))).loadLayer(0), tensors, 0, true);
});

test("a layer load reads only that layer's byte ranges (and each shard's header once)", async () => {
  const tensors = tinyTensors({ nLayers: 4 });
  for (const layout of ['single', { perShard: 2 }] as const) {
    const files = checkpointFiles(tinyConfig('deepseek_v32', 4), tensors, layout);
    const reads = new Map<string, [number, number][]>();
    const counted = new Map<string, CheckpointFile>();
    for (const [name, bytes] of files) {
      if (!name.endsWith('.safetensors')) {
        counted.set(name, bytes);
        continue;
      }
      const inner = bytesSource(bytes, name);
      reads.set(name, []);
      const src: ByteSource = {
        name,
        size: bytes.length,
        read: async (offset, into) => {
          const n = await inner.read(offset, into);
          reads.get(name)!.push([offset, offset + n]);
          return n;
        },
        close: async () => assert.fail(`${name}: a caller's source is never closed by the checkpoint`),
      };
      counted.set(name, src);
    }
    const ckpt = await openCheckpoint(counted);
    const expected = await ckpt.layerTensors(3);
    assert.ok(expected.length >= 12 && expected.every((t) => t.name.startsWith('model.layers.3.self_attn.')));
    for (const r of reads.values()) r.length = 0;
    await ckpt.loadLayer(3);
    const got = [...reads].flatMap(([file, rs]) => rs.map(([b, e]) => ({ file, b, e })));
    const want = expected.map((t) => ({ file: t.file, b: t.begin, e: t.end }));
    const key = (x: { file: string; b: number; e: number }) => `${x.file}:${x.b}-${x.e}`;
    assert.deepEqual(got.map(key).sort(), want.map(key).sort(), `${JSON.stringify(layout)}: the layer's tensors' ranges and nothing else (headers cached)`);
    const layerBytes = want.reduce((n, x) => n + x.e - x.b, 0);
    assert.equal(await ckpt.storedLayerBytes(3), layerBytes);
    const file = files.get(expected[0].file)!;
    assert.ok(layerBytes < file.length / 1.5, `a layer is a small part of its shard (${layerBytes} of ${file.length} bytes)`);
    // a fresh checkpoint's first load of a shard also reads its header: 8 bytes, then N
    // (the single file's header was read by openCheckpoint already)
    const fresh = await openCheckpoint(counted);
    for (const r of reads.values()) r.length = 0;
    await fresh.loadLayer(3);
    const headers = layout === 'single' ? [] : [...new Set(want.map((x) => x.file))].flatMap((f) => {
      const dataOffset = parseSafetensorsHeader(files.get(f)!).dataOffset;
      return [{ file: f, b: 0, e: 8 }, { file: f, b: 8, e: dataOffset }];
    });
    const gotFresh = [...reads].flatMap(([f, rs]) => rs.map(([b, e]) => ({ file: f, b, e })));
    assert.deepEqual(gotFresh.map(key).sort(), [...headers, ...want].map(key).sort(), `${JSON.stringify(layout)}: a fresh load`);
  }
});

test('resident bytes per layer: the stored bytes, norms widened from BF16 to float32 the only growth', async () => {
  const tensors = tinyTensors({ nLayers: 2 });
  const ckpt = await openCheckpoint(checkpointFiles(tinyConfig('deepseek_v32', 2), tensors, 'single'));
  const layer = await ckpt.loadLayer(1);
  const stored = await ckpt.storedLayerBytes(1);
  const normGrowth = 2 * (DIMS.qLora + DIMS.kvLora); // two BF16 norms widened; the indexer's norms are F32
  assert.equal(layerWeightBytes(layer), stored + normGrowth);
  assert.ok(layerWeightBytes(layer) <= 1.1 * stored);
  const noIndexer = await ckpt.loadLayer(1, { indexer: false });
  assert.ok(layerWeightBytes(noIndexer) < layerWeightBytes(layer));
});

/** Files of a tiny two-layer deepseek_v32 checkpoint with `edit` applied to its tensors. */
function edited(edit: (t: Map<string, SafetensorsTensor>) => void, layout: 'single' | { perShard: number } = { perShard: 1 }): Map<string, Uint8Array> {
  return editedWithTensors(edit, layout).files;
}

function editedWithTensors(edit: (t: Map<string, SafetensorsTensor>) => void, layout: 'single' | { perShard: number } = { perShard: 1 }) {
  const tensors = tinyTensors({ nLayers: 2 });
  edit(tensors);
  return { files: checkpointFiles(tinyConfig('deepseek_v32', 2), tensors, layout), tensors };
}

test('a missing tensor: not in the index, not in its shard, or an FP8 weight without its weight_scale_inv', async () => {
  const p = 'model.layers.1.self_attn.';
  const single = edited((t) => t.delete(`${p}kv_b_proj.weight`), 'single');
  await assert.rejects((await openCheckpoint(single)).loadLayer(1), expectCheckpointError('missing-tensor', /model\.safetensors: no tensor 'model\.layers\.1\.self_attn\.kv_b_proj\.weight'/));
  const sharded = editedWithTensors((t) => t.delete(`${p}indexer.wk.weight_scale_inv`));
  const ckpt = await openCheckpoint(sharded.files);
  await assert.rejects(ckpt.loadLayer(1), (err) => {
    assert.ok(err instanceof CheckpointError && err.code === 'missing-tensor');
    assert.equal(err.tensor, `${p}indexer.wk.weight_scale_inv`);
    assert.equal(err.file, 'model.safetensors.index.json');
    return true;
  });
  assertLayer(await ckpt.loadLayer(0), sharded.tensors, 0, true);
  // the index names a tensor its shard does not hold
  const files = edited(() => {});
  const index = JSON.parse(new TextDecoder().decode(files.get('model.safetensors.index.json')));
  index.weight_map[`${p}o_proj.weight`] = 'model-00001-of-00002.safetensors';
  files.set('model.safetensors.index.json', encoder.encode(JSON.stringify(index)));
  await assert.rejects((await openCheckpoint(files)).loadLayer(1), expectCheckpointError('missing-tensor', /^model-00001-of-00002\.safetensors: no tensor 'model\.layers\.1\.self_attn\.o_proj\.weight' \(the index puts it in this file\)/));
});

test('a wrong shape or dtype is named with the file, the tensor, the expected and the actual', async () => {
  const p = 'model.layers.1.self_attn.';
  const cases: [string, (t: Map<string, SafetensorsTensor>) => void, string, RegExp][] = [
    ['shape', (t) => t.set(`${p}q_b_proj.weight`, randomTensor('F8_E4M3', [16, 9])), 'shape', /'model\.layers\.1\.self_attn\.q_b_proj\.weight' has shape \[16, 9\], expected \[16, 8\] from config\.json/],
    ['scale shape', (t) => t.set(`${p}q_a_proj.weight_scale_inv`, randomTensor('F32', [1, 1])), 'shape', /q_a_proj\.weight_scale_inv' has shape \[1, 1\], expected \[1, 2\]/],
    ['norm shape', (t) => t.set(`${p}kv_a_layernorm.weight`, randomTensor('BF16', [9])), 'shape', /kv_a_layernorm\.weight' has shape \[9\], expected \[8\]/],
    ['linear F16', (t) => t.set(`${p}o_proj.weight`, randomTensor('F16', [136, 8])), 'dtype', /o_proj\.weight' is F16, expected F8_E4M3 or BF16 or F32/],
    ['norm I32', (t) => t.set(`${p}indexer.k_norm.bias`, randomTensor('I32', [8])), 'dtype', /k_norm\.bias' is I32, expected F32 or BF16 or F16/],
    ['scale BF16', (t) => t.set(`${p}indexer.wq_b.weight_scale_inv`, randomTensor('BF16', [1, 1])), 'dtype', /wq_b\.weight_scale_inv' is BF16, expected F32/],
  ];
  for (const [what, edit, code, pattern] of cases) {
    const ckpt = await openCheckpoint(edited(edit));
    await assert.rejects(ckpt.loadLayer(1), expectCheckpointError(code, new RegExp(`^model-00002-of-00002\\.safetensors: .*${pattern.source}`)), what);
    await ckpt.loadLayer(0);
  }
});

test('a truncated shard, a bad header, a missing shard or config, a bad index: named errors, nothing loaded, nothing left open', async () => {
  const tmp = scratch();
  try {
    const files = edited(() => {});
    const shard2 = 'model-00002-of-00002.safetensors';
    const cases: [string, (f: Map<string, Uint8Array>) => void, (err: unknown) => boolean][] = [
      ['truncated', (f) => f.set(shard2, f.get(shard2)!.subarray(0, f.get(shard2)!.length - 5)), (err) => err instanceof SafetensorsError && err.code === 'truncated' && err.file.endsWith(shard2)],
      ['bad header length', (f) => { const b = f.get(shard2)!.slice(); new DataView(b.buffer).setBigUint64(0, 1n << 40n, true); f.set(shard2, b); }, (err) => err instanceof SafetensorsError && err.code === 'header-length'],
      ['header not JSON', (f) => { const b = f.get(shard2)!.slice(); b[8] = 0x5b; f.set(shard2, b); }, (err) => err instanceof SafetensorsError && err.code === 'header-json'],
      ['wrong dtype', (f) => f.set(shard2, edited((t) => t.set('model.layers.1.self_attn.o_proj.weight', randomTensor('F16', [136, 8]))).get(shard2)!), (err) => err instanceof CheckpointError && err.code === 'dtype'],
      ['missing shard', (f) => f.delete(shard2), (err) => err instanceof CheckpointError && err.code === 'missing-file' && /no file 'model-00002-of-00002\.safetensors' \(model\.safetensors\.index\.json puts/.test(err.message)],
    ];
    for (const [what, edit, check] of cases) {
      const f = new Map(files);
      edit(f);
      const dir = join(tmp.dir, what.replace(/ /g, '-'));
      writeFolder(dir, f);
      const ckpt = await openCheckpoint(dir);
      await assert.rejects(ckpt.loadLayer(1), check, what);
      const before = openFds();
      for (let k = 0; k < 4; k++) await assert.rejects(ckpt.loadLayer(1), check, what);
      assert.ok((openFds() ?? 0) <= (before ?? 0), `${what}: no handle left open (${openFds()} open fds, ${before} before)`);
      assert.ok((await ckpt.loadLayer(0)).wqA, `${what}: the other shard still loads`);
      await assert.rejects((await openCheckpoint(f)).loadLayer(1), check, `${what} (in memory)`);
    }
    const noConfig = new Map(files);
    noConfig.delete('config.json');
    await assert.rejects(openCheckpoint(noConfig), expectCheckpointError('missing-file', /no config\.json/));
    const badConfig = new Map(files).set('config.json', encoder.encode(JSON.stringify({ ...tinyConfig('deepseek_v32', 2), model_type: 'llama' })));
    await assert.rejects(openCheckpoint(badConfig), (err) => err instanceof ConfigError && err.key === 'model_type');
    const noWeights = new Map([['config.json', files.get('config.json')!]]);
    await assert.rejects(openCheckpoint(noWeights), expectCheckpointError('missing-file', /neither model\.safetensors\.index\.json nor model\.safetensors/));
    for (const [index, pattern] of [
      ['{"weight_map": ', /not valid JSON/],
      ['{"metadata": {}}', /expected an object with weight_map/],
      ['{"weight_map": {"a": "../x.safetensors"}}', /weight_map\['a'\] must be a file name in the checkpoint folder/],
      ['{"weight_map": {"a": 3}}', /weight_map\['a'\] must be a file name/],
    ] as const) {
      await assert.rejects(openCheckpoint(new Map(files).set('model.safetensors.index.json', encoder.encode(index))), expectCheckpointError('index', pattern));
    }
    await assert.rejects(openCheckpoint(join(tmp.dir, 'nowhere')), expectCheckpointError('missing-file', /nowhere: no config\.json/));
  } finally {
    tmp.done();
  }
});

test('a shard cut short after its header was read (cached): truncated, named with the file', async () => {
  const tmp = scratch();
  try {
    const files = edited(() => {});
    writeFolder(tmp.dir, files);
    const ckpt = await openCheckpoint(tmp.dir);
    await ckpt.loadLayer(1);
    const shard2 = 'model-00002-of-00002.safetensors';
    writeFileSync(join(tmp.dir, shard2), files.get(shard2)!.subarray(0, files.get(shard2)!.length - 100));
    await assert.rejects(ckpt.loadLayer(1), (err) => err instanceof SafetensorsError && err.code === 'truncated' && err.file.endsWith(shard2) && /truncated/.test(err.message));
    assert.ok(await ckpt.loadLayer(0));
  } finally {
    tmp.done();
  }
});

test("a caller's byte source is not closed by the checkpoint, not even after its bad header", async () => {
  const files = edited(() => {});
  const shard2 = 'model-00002-of-00002.safetensors';
  const bad = files.get(shard2)!.slice();
  bad[8] = 0x5b; // '[': not an object
  let closes = 0;
  const inner = bytesSource(bad, 'inner');
  const src: ByteSource = { name: 'inner', size: bad.length, read: (o, i) => inner.read(o, i), close: async () => void closes++ };
  const ckpt = await openCheckpoint(new Map<string, CheckpointFile>([...files]).set(shard2, src));
  await assert.rejects(ckpt.loadLayer(1), (err) => err instanceof SafetensorsError && err.code === 'header-json' && err.file === shard2);
  assert.equal(closes, 0);
});

test('layer numbers past num_hidden_layers and unknown options are refused before anything is read', async () => {
  const ckpt = await openCheckpoint(edited(() => {}));
  for (const bad of [-1, 2, 1.5, NaN, '0']) await assert.rejects(ckpt.loadLayer(bad as number), expectCheckpointError('layer', /expected an integer in \[0, 2\)/));
  await assert.rejects(ckpt.loadLayer(0, { indexr: false } as never), /options: unknown option 'indexr' \(known: indexer\)/);
  await assert.rejects(ckpt.loadLayer(0, { indexer: 1 } as never), /options\.indexer: expected true or false/);
});

// test/golden/checkpoint: written by make.py (NumPy, its own safetensors writer and e4m3 decoder)
test('golden fixture: the shipped tiny DeepSeek-V3.2-style checkpoint, dequantized, equals make.py\'s values', async () => {
  const dir = new URL('../golden/checkpoint/', import.meta.url).pathname;
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as {
    layer: number;
    tensors: Record<string, { format: string; shape: [number, number]; samples: [number, number, number][] }>;
    storedBytes: number;
  };
  const ckpt = await openCheckpoint(join(dir, 'model'));
  const layer = await ckpt.loadLayer(expected.layer);
  assert.equal(await ckpt.storedLayerBytes(expected.layer), expected.storedBytes);
  const weights: Record<string, Weight | Float32Array> = {
    q_a_proj: layer.wqA, q_b_proj: layer.wqB, kv_a_proj_with_mqa: layer.wkvA, kv_b_proj: layer.wkvB, o_proj: layer.wo,
    q_a_layernorm: layer.qNorm, kv_a_layernorm: layer.kvNorm,
    'indexer.wq_b': layer.indexer!.wqB, 'indexer.wk': layer.indexer!.wk, 'indexer.weights_proj': layer.indexer!.weightsProj,
    'indexer.k_norm': layer.indexer!.kNormWeight, 'indexer.k_norm.bias': layer.indexer!.kNormBias,
  };
  assert.deepEqual(Object.keys(weights).sort(), Object.keys(expected.tensors).sort());
  for (const [name, want] of Object.entries(expected.tensors)) {
    const w = weights[name];
    if (w instanceof Float32Array) {
      assert.equal(want.format, 'float32');
      for (const [, j, value] of want.samples) assert.equal(w[j], value, `${name}[${j}]`);
      continue;
    }
    assert.equal(w.format, want.format, name);
    assert.deepEqual(w.shape, want.shape, name);
    for (const [r, c, value] of want.samples) assert.equal(dequantized(w, r, c), value, `${name}[${r}, ${c}]`);
  }
});

/** W[r, c] by the definitions: e4m3 (bias 7, subnormals, no infinities) times the block's scale, bf16 as the upper half of a float32. */
function dequantized(w: Weight, r: number, c: number): number {
  const at = r * w.shape[1] + c;
  if (w.format === 'float32') return w.data[at];
  if (w.format === 'bf16') return new Float32Array(Uint32Array.of(w.data[at] << 16).buffer)[0];
  const code = w.data[at];
  const e = (code >> 3) & 15;
  const m = code & 7;
  const magnitude = e === 0 ? 2 ** -6 * (m / 8) : 2 ** (e - 7) * (1 + m / 8);
  const value = (code & 0x80 ? -1 : 1) * magnitude;
  return Math.fround(value * w.scale[(r >> 7) * Math.ceil(w.shape[1] / 128) + (c >> 7)]);
}
