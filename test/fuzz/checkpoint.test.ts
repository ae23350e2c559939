// A fuzz of openCheckpoint / loadLayer / layerWeightBytes over tiny
// checkpoints written here (config.json and one model.safetensors or an
// index and shards, each tensor F32, BF16 or F8_E4M3 with its scale), with
// a tensor dropped, reshaped or of the wrong dtype, a shard missing or cut,
// a layer index out of range, or the index broken: each load gives back
// exactly the bytes written, or a CheckpointError / SafetensorsError /
// ConfigError whose message starts with the file at fault.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CheckpointError, layerWeightBytes, openCheckpoint } from '../../src/model/checkpoint.js';
import { ConfigError } from '../../src/model/config.js';
import { SafetensorsError, encodeSafetensors, type SafetensorsTensor } from '../../src/io/safetensors.js';
import { checkAsync, mostly, report, sameBits } from './harness.js';

const CONFIG = {
  model_type: 'deepseek_v32', hidden_size: 4, num_attention_heads: 2, q_lora_rank: 3, kv_lora_rank: 2, qk_nope_head_dim: 2, qk_rope_head_dim: 2,
  v_head_dim: 2, index_n_heads: 2, index_head_dim: 2, index_topk: 4, rms_norm_eps: 1e-6, rope_theta: 10000, num_hidden_layers: 2,
};

/** Each tensor of layer i by its Hugging Face name, with the shape the config gives it, and whether it is a linear weight. */
function layerSpec(i: number): [string, number[], boolean][] {
  const c = CONFIG, p = `model.layers.${i}.self_attn.`;
  return [
    [`${p}q_a_proj.weight`, [c.q_lora_rank, c.hidden_size], true],
    [`${p}q_a_layernorm.weight`, [c.q_lora_rank], false],
    [`${p}q_b_proj.weight`, [c.num_attention_heads * (c.qk_nope_head_dim + c.qk_rope_head_dim), c.q_lora_rank], true],
    [`${p}kv_a_proj_with_mqa.weight`, [c.kv_lora_rank + c.qk_rope_head_dim, c.hidden_size], true],
    [`${p}kv_a_layernorm.weight`, [c.kv_lora_rank], false],
    [`${p}kv_b_proj.weight`, [c.num_attention_heads * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank], true],
    [`${p}o_proj.weight`, [c.hidden_size, c.num_attention_heads * c.v_head_dim], true],
    [`${p}indexer.wq_b.weight`, [c.index_n_heads * c.index_head_dim, c.q_lora_rank], true],
    [`${p}indexer.wk.weight`, [c.index_head_dim, c.hidden_size], true],
    [`${p}indexer.k_norm.weight`, [c.index_head_dim], false],
    [`${p}indexer.k_norm.bias`, [c.index_head_dim], false],
    [`${p}indexer.weights_proj.weight`, [c.index_n_heads, c.hidden_size], true],
  ];
}
const KEYS: Record<string, string> = {
  'q_a_proj.weight': 'wqA', 'q_a_layernorm.weight': 'qNorm', 'q_b_proj.weight': 'wqB', 'kv_a_proj_with_mqa.weight': 'wkvA', 'kv_a_layernorm.weight': 'kvNorm',
  'kv_b_proj.weight': 'wkvB', 'o_proj.weight': 'wo', 'indexer.wq_b.weight': 'indexer.wqB', 'indexer.wk.weight': 'indexer.wk',
  'indexer.k_norm.weight': 'indexer.kNormWeight', 'indexer.k_norm.bias': 'indexer.kNormBias', 'indexer.weights_proj.weight': 'indexer.weightsProj',
};

test('openCheckpoint and loadLayer: tiny single-file and sharded checkpoints in F32, BF16 and FP8, tensors dropped, reshaped or mistyped, shards missing or cut, bad layers', async () => {
  const started = performance.now();
  const arb = fc.record({
    dtypes: fc.array(fc.constantFrom('F32', 'BF16', 'F8_E4M3'), { minLength: 12, maxLength: 12 }),
    sharded: fc.boolean(),
    layer: mostly(fc.constantFrom<unknown>(0, 1), fc.constantFrom<unknown>(2, -1, 0.5, '0', NaN), 10),
    indexer: fc.option(mostly(fc.boolean(), fc.constant<unknown>('yes'), 10), { nil: undefined }),
    fault: mostly(fc.constant('none'), fc.constantFrom('drop', 'reshape', 'dtype', 'dropScale', 'cut', 'missingShard', 'brokenIndex', 'configKey', 'noConfig'), 2),
    at: fc.nat(),
    seed: fc.nat(),
  });
  await fc.assert(
    fc.asyncProperty(arb, async ({ dtypes, sharded, layer, indexer, fault, at, seed }) => {
      const tensors = new Map<string, SafetensorsTensor>();
      const written = new Map<string, { dtype: string; data: ArrayBufferView; scale?: Float32Array }>();
      for (const i of [0, 1]) {
        layerSpec(i).forEach(([name, shape, linear], j) => {
          const n = shape.reduce((a, b) => a * b, 1);
          const dtype = linear ? dtypes[j] : dtypes[j] === 'F8_E4M3' ? 'F32' : dtypes[j];
          const data = dtype === 'F32' ? Float32Array.from({ length: n }, (_, e) => Math.sin(seed + e + j)) : dtype === 'BF16' ? Uint16Array.from({ length: n }, (_, e) => 0x3f80 + ((seed + e) % 64)) : Uint8Array.from({ length: n }, (_, e) => (seed + e * 3) % 0x7e);
          tensors.set(name, { dtype: dtype as 'F32', shape, data: data as Float32Array });
          let scale: Float32Array | undefined;
          if (dtype === 'F8_E4M3') {
            scale = Float32Array.from({ length: Math.ceil(shape[0] / 128) * Math.ceil(shape[1] / 128) }, () => 0.5 + (seed % 7));
            tensors.set(name.replace(/weight$/, 'weight_scale_inv'), { dtype: 'F32', shape: [Math.ceil(shape[0] / 128), Math.ceil(shape[1] / 128)], data: scale });
          }
          written.set(name, { dtype, data, scale });
        });
      }
      // The fault, on one tensor of the layer asked for (or the files).
      const target = typeof layer === 'number' && Number.isInteger(layer) && layer >= 0 && layer < 2 ? layer : 0;
      const names = layerSpec(target).map(([name]) => name);
      const victim = names[at % names.length];
      const loadsIndexer = indexer !== false;
      const victimRead = loadsIndexer || !victim.includes('.indexer.');
      const bad: string[] = [];
      const shard = (name: string) => (sharded ? (name.includes('.indexer.') ? 'model-00002-of-00002.safetensors' : 'model-00001-of-00002.safetensors') : 'model.safetensors');
      if (fault === 'drop') { tensors.delete(victim); if (victimRead) bad.push(sharded ? 'model.safetensors.index.json' : 'model.safetensors'); }
      if (fault === 'reshape') { const t = tensors.get(victim)!; tensors.set(victim, { ...t, shape: [...t.shape, 1] }); if (victimRead) bad.push(shard(victim)); }
      if (fault === 'dtype') { const t = tensors.get(victim)!; tensors.set(victim, { dtype: 'I32', shape: t.shape, data: new Int32Array(t.shape.reduce((a, b) => a * b, 1)) }); if (victimRead) bad.push(shard(victim)); }
      const scaleName = victim.replace(/weight$/, 'weight_scale_inv');
      if (fault === 'dropScale' && tensors.has(scaleName)) { tensors.delete(scaleName); if (victimRead) bad.push(sharded ? 'model.safetensors.index.json' : 'model.safetensors', shard(victim)); }
      // The files: one model.safetensors, or two shards and their index.
      const files = new Map<string, Uint8Array>();
      let config: Record<string, unknown> = CONFIG;
      if (fault === 'configKey') { config = { ...CONFIG, kv_lora_rank: 'two' }; bad.push('config.json'); }
      if (fault !== 'noConfig') files.set('config.json', new TextEncoder().encode(JSON.stringify(config)));
      else bad.push('config.json', 'the checkpoint');
      if (!sharded) files.set('model.safetensors', encodeSafetensors(tensors));
      else {
        const parts = new Map<string, Map<string, SafetensorsTensor>>();
        for (const [name, t] of tensors) {
          const f = shard(name);
          if (!parts.has(f)) parts.set(f, new Map());
          parts.get(f)!.set(name, t);
        }
        for (const [f, m] of parts) files.set(f, encodeSafetensors(m));
        const weightMap = Object.fromEntries([...tensors.keys()].map((name) => [name, shard(name)]));
        files.set('model.safetensors.index.json', new TextEncoder().encode(fault === 'brokenIndex' ? '{"weight_map": [1, 2]}' : JSON.stringify({ metadata: {}, weight_map: weightMap })));
        if (fault === 'brokenIndex') bad.push('model.safetensors.index.json');
      }
      if (fault === 'cut') {
        const f = shard(victim);
        const bytes = files.get(f)!;
        files.set(f, bytes.subarray(0, bytes.length - 1));
        // One file's header is read at open; a shard's only when a load reads one of its tensors.
        if (!sharded || victimRead) bad.push(f);
      }
      if (fault === 'missingShard' && sharded) { files.delete(shard(victim)); if (victimRead) bad.push('the checkpoint'); }
      const layerOk = typeof layer === 'number' && Number.isInteger(layer) && layer >= 0 && layer < 2;
      const indexerOk = indexer === undefined || typeof indexer === 'boolean';
      if (!layerOk) bad.push('layer');
      if (!indexerOk) bad.push('options.indexer');
      const what = `openCheckpoint ${sharded ? 'sharded' : 'single'} ${fault} ${victim} layer=${String(layer)} indexer=${String(indexer)} dtypes=${dtypes}`;
      const classes = [CheckpointError, SafetensorsError, ConfigError, TypeError, RangeError];
      await checkAsync(what, async () => {
        const checkpoint = await openCheckpoint(files);
        try {
          return await checkpoint.loadLayer(layer as number, indexer === undefined ? undefined : { indexer: indexer as boolean });
        } finally {
          await checkpoint.close();
        }
      }, bad.length > 0 ? { bad } : { value: written }, (got, want) => {
        const flat = got as unknown as Record<string, unknown> & { indexer?: Record<string, unknown> };
        assert.equal(flat.indexer === undefined, !loadsIndexer, `${what}: indexer read iff asked`);
        let bytes = 0;
        for (const [name] of layerSpec(layer as number)) {
          const key = KEYS[name.slice(`model.layers.${layer}.self_attn.`.length)];
          if (key.startsWith('indexer.') && !loadsIndexer) continue;
          const value = (key.startsWith('indexer.') ? flat.indexer![key.slice(8)] : flat[key]) as { format?: string; data: ArrayBufferView; scale?: Float32Array } | Float32Array;
          const w = want.get(name)!;
          if (value instanceof Float32Array) {
            // Norm vectors are widened to float32 (BF16 bits << 16).
            const f = w.dtype === 'BF16' ? Float32Array.from(w.data as Uint16Array, (b) => new Float32Array(new Uint32Array([b << 16]).buffer)[0]) : (w.data as Float32Array);
            sameBits(`${what}: ${name}`, value, f);
            bytes += value.byteLength;
          } else {
            assert.equal(value.format, w.dtype === 'F32' ? 'float32' : w.dtype === 'BF16' ? 'bf16' : 'fp8', `${what}: ${name} format`);
            sameBits(`${what}: ${name}`, value.data as unknown as ArrayLike<number>, w.data as unknown as ArrayLike<number>);
            if (w.scale) sameBits(`${what}: ${name} scale`, value.scale!, w.scale);
            bytes += value.data.byteLength + (value.scale?.byteLength ?? 0);
          }
        }
        assert.equal(layerWeightBytes(got), bytes, `${what}: layerWeightBytes`);
      }, classes);
    }),
    { numRuns: 2000 },
  );
  report('openCheckpoint', started);
});

// Sources and layers of the wrong kind: named errors (they once reached the engine).
test('openCheckpoint and layerWeightBytes: sources and layers of the wrong kind are named errors', async () => {
  const config = new TextEncoder().encode(JSON.stringify(CONFIG));
  const sources: [string, unknown][] = [['null', null], ['a string file', { 'config.json': JSON.stringify(CONFIG) }], ['a number file', { 'config.json': 7 }], ['a null Map entry', new Map([['config.json', null]])], ['a config and a number shard', { 'config.json': config, 'model.safetensors': 7 }]];
  for (const [name, source] of sources) {
    await checkAsync(`openCheckpoint(${name})`, () => openCheckpoint(source as never), { bad: ['source', 'config.json', 'model.safetensors', 'the checkpoint'] }, () => {}, [TypeError, CheckpointError]);
  }
  for (const layer of [null, 7, {}, { wqA: 1 }]) {
    await checkAsync(`layerWeightBytes(${JSON.stringify(layer)})`, async () => layerWeightBytes(layer as never), { bad: ['layer'] }, () => {});
  }
});
