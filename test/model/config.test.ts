import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigError, parseModelConfig } from '../../src/model/config.js';

// deepseek-ai/DeepSeek-V3.2(-Exp) config.json, the keys as published (MoE keys trimmed).
const DEEPSEEK_V32 = {
  architectures: ['DeepseekV32ForCausalLM'],
  attention_bias: false,
  first_k_dense_replace: 3,
  hidden_size: 7168,
  index_head_dim: 128,
  index_n_heads: 64,
  index_topk: 2048,
  kv_lora_rank: 512,
  max_position_embeddings: 163840,
  model_type: 'deepseek_v32',
  num_attention_heads: 128,
  num_hidden_layers: 61,
  num_key_value_heads: 128,
  num_nextn_predict_layers: 1,
  q_lora_rank: 1536,
  qk_nope_head_dim: 128,
  qk_rope_head_dim: 64,
  quantization_config: { activation_scheme: 'dynamic', fmt: 'e4m3', quant_method: 'fp8', scale_fmt: 'ue8m0', weight_block_size: [128, 128] },
  rms_norm_eps: 1e-6,
  rope_scaling: { beta_fast: 32, beta_slow: 1, factor: 40, mscale: 1.0, mscale_all_dim: 1.0, original_max_position_embeddings: 4096, type: 'yarn' },
  rope_theta: 10000,
  torch_dtype: 'bfloat16',
  v_head_dim: 128,
  vocab_size: 129280,
};

// zai-org/GLM-5 config.json (Transformers 5 form: rope_parameters; no indexer_types, so every layer full).
const GLM5 = {
  architectures: ['GlmMoeDsaForCausalLM'],
  dtype: 'bfloat16',
  first_k_dense_replace: 3,
  head_dim: 64,
  hidden_size: 6144,
  index_head_dim: 128,
  index_n_heads: 32,
  index_topk: 2048,
  indexer_rope_interleave: true,
  kv_lora_rank: 512,
  max_position_embeddings: 202752,
  model_type: 'glm_moe_dsa',
  num_attention_heads: 64,
  num_hidden_layers: 78,
  num_key_value_heads: 64,
  num_nextn_predict_layers: 1,
  q_lora_rank: 2048,
  qk_head_dim: 256,
  qk_nope_head_dim: 192,
  qk_rope_head_dim: 64,
  rms_norm_eps: 1e-5,
  rope_interleave: true,
  rope_parameters: { rope_theta: 1000000, rope_type: 'default' },
  v_head_dim: 256,
};

function expectConfigError(key: string, pattern: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.key, key, err.message);
    assert.match(err.message, pattern);
    return true;
  };
}

test('DeepSeek-V3.2: every MlaConfig field, YaRN from rope_scaling, FP8 e4m3 128 x 128 with ue8m0 activation scales', () => {
  const m = parseModelConfig(JSON.stringify(DEEPSEEK_V32));
  assert.equal(m.modelType, 'deepseek_v32');
  assert.equal(m.nextnLayers, 1);
  assert.deepEqual(m.config, {
    dim: 7168,
    nHeads: 128,
    qLoraRank: 1536,
    kvLoraRank: 512,
    qkNopeHeadDim: 128,
    qkRopeHeadDim: 64,
    vHeadDim: 128,
    indexNHeads: 64,
    indexHeadDim: 128,
    indexTopk: 2048,
    normEps: 1e-6,
    ropeTheta: 10000,
    nLayers: 61,
    rope: { factor: 40, originalSeqLen: 4096, betaFast: 32, betaSlow: 1, mscale: 1, mscaleAllDim: 1 },
    indexerRopeInterleaved: false,
  });
  assert.deepEqual(m.fp8, { fmt: 'e4m3', blockSize: [128, 128], scaleFormat: 'ue8m0', activationScheme: 'dynamic' });
  const noScaleFmt = { ...DEEPSEEK_V32, quantization_config: { ...DEEPSEEK_V32.quantization_config, scale_fmt: null } };
  assert.equal(parseModelConfig(noScaleFmt).fp8?.scaleFormat, 'float32', 'V3.2-Exp style: no scale_fmt is float32 scales');
  const { quantization_config: _, ...bf16 } = DEEPSEEK_V32;
  assert.equal(parseModelConfig(bf16).fp8, null);
});

test('YaRN in rope_parameters (Transformers 5 form), rope_type and defaults beta_fast 32, beta_slow 1, mscale 1', () => {
  const { rope_scaling: _, rope_theta: __, ...rest } = DEEPSEEK_V32;
  const m = parseModelConfig({ ...rest, rope_parameters: { rope_type: 'yarn', rope_theta: 10000, factor: 40, original_max_position_embeddings: 4096 } });
  assert.equal(m.config.ropeTheta, 10000);
  assert.deepEqual(m.config.rope, { factor: 40, originalSeqLen: 4096, betaFast: 32, betaSlow: 1, mscale: 1 });
});

test('GLM-5: 32 indexer heads, rope_theta in rope_parameters, no YaRN, interleaved indexer RoPE, every layer full, no FP8', () => {
  const m = parseModelConfig(GLM5, 'GLM-5/config.json');
  assert.equal(m.modelType, 'glm_moe_dsa');
  assert.equal(m.config.indexNHeads, 32);
  assert.equal(m.config.dim, 6144);
  assert.equal(m.config.qkNopeHeadDim, 192);
  assert.equal(m.config.vHeadDim, 256);
  assert.equal(m.config.ropeTheta, 1000000);
  assert.equal(m.config.normEps, 1e-5);
  assert.equal(m.config.rope, undefined);
  assert.equal(m.config.indexerTypes, undefined);
  assert.equal(m.config.indexerRopeInterleaved, true);
  assert.equal(m.fp8, null);
  const fp8 = parseModelConfig({ ...GLM5, quantization_config: { activation_scheme: 'dynamic', fmt: 'e4m3', quant_method: 'fp8', weight_block_size: [128, 128], modules_to_not_convert: ['lm_head'] } });
  assert.deepEqual(fp8.fp8, { fmt: 'e4m3', blockSize: [128, 128], scaleFormat: 'float32', activationScheme: 'dynamic' });
  const { indexer_rope_interleave: _, ...noFlag } = GLM5;
  assert.equal(parseModelConfig(noFlag).config.indexerRopeInterleaved, true, "glm_moe_dsa's indexer is interleaved unless the config says otherwise");
});

test('GLM-5 indexer_types: given, from index_topk_pattern, or derived from index_topk_freq / index_skip_topk_offset as Transformers does', () => {
  const given = ['full', 'full', 'full', 'shared', 'shared', 'shared', 'full', ...Array(71).fill('shared')];
  assert.deepEqual(parseModelConfig({ ...GLM5, indexer_types: given }).config.indexerTypes, given);
  const pattern = 'FFS' + 'F'.repeat(75);
  assert.deepEqual(parseModelConfig({ ...GLM5, index_topk_pattern: pattern }).config.indexerTypes?.slice(0, 4), ['full', 'full', 'shared', 'full']);
  // GLM-5.2: index_topk_freq 4, index_skip_topk_offset 3 -> full at 0, 1, 2, then every 4th from 6
  const derived = parseModelConfig({ ...GLM5, index_topk_freq: 4, index_skip_topk_offset: 3 }).config.indexerTypes!;
  const full = derived.flatMap((t, i) => (t === 'full' ? [i] : []));
  assert.deepEqual(full, [0, 1, 2, ...Array.from({ length: 18 }, (_, j) => 6 + 4 * j)]);
  assert.equal(parseModelConfig({ ...GLM5, index_topk_freq: 1 }).config.indexerTypes, undefined, 'freq 1: every layer full');
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 1, max: 40 }), (freq, offset, n) => {
      const json = { ...GLM5, num_hidden_layers: n, index_topk_freq: freq, index_skip_topk_offset: offset };
      const expected = Array.from({ length: n }, (_, i) => (Math.max(i - offset + 1, 0) % freq === 0 ? 'full' : 'shared'));
      if (expected[0] === 'shared') {
        // offset 0 with freq > 1 makes layer 0 shared, with no full layer before it
        assert.throws(() => parseModelConfig(json), expectConfigError('index_skip_topk_offset', /layer 0 is 'shared'/));
      } else {
        assert.deepEqual(parseModelConfig(json).config.indexerTypes ?? Array(n).fill('full'), expected);
      }
    }),
  );
});

test('an unknown model_type is named with the known ones', () => {
  assert.throws(() => parseModelConfig({ ...DEEPSEEK_V32, model_type: 'deepseek_v3' }), expectConfigError('model_type', /expected one of 'deepseek_v32', 'glm_moe_dsa', got "deepseek_v3"/));
  const { model_type: _, ...none } = DEEPSEEK_V32;
  assert.throws(() => parseModelConfig(none, 'x/config.json'), expectConfigError('model_type', /^x\/config\.json: model_type: .*got nothing \(missing\)/));
});

test('every required key, missing or ill-typed, is named', () => {
  const required = ['hidden_size', 'num_attention_heads', 'q_lora_rank', 'kv_lora_rank', 'qk_nope_head_dim', 'qk_rope_head_dim', 'v_head_dim', 'index_n_heads', 'index_head_dim', 'index_topk', 'rms_norm_eps', 'num_hidden_layers', 'rope_theta'];
  for (const key of required) {
    const missing: Record<string, unknown> = { ...DEEPSEEK_V32 };
    delete missing[key];
    assert.throws(() => parseModelConfig(missing), expectConfigError(key, /got nothing \(missing\)/), `missing ${key}`);
    for (const bad of ['7', 0, -3, 1.5, null, [1]]) {
      if (key === 'rms_norm_eps' && bad === 1.5) continue; // a positive number is fine there
      if (key === 'rope_theta' && bad === 1.5) continue;
      assert.throws(() => parseModelConfig({ ...DEEPSEEK_V32, [key]: bad }), expectConfigError(key, /expected/), `${key} = ${JSON.stringify(bad)}`);
    }
  }
});

test('ill-typed nested and derived keys: rope, qk_head_dim, indexer_types, quantization_config', () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ rope_scaling: { type: 'linear', factor: 2 } }, 'rope_scaling.rope_type', /expected 'yarn' or 'default'/],
    [{ rope_scaling: { type: 'yarn', original_max_position_embeddings: 4096 } }, 'rope_scaling.factor', /got nothing/],
    [{ rope_scaling: { type: 'yarn', factor: 40 } }, 'rope_scaling.original_max_position_embeddings', /got nothing/],
    [{ rope_scaling: { type: 'yarn', factor: 40, original_max_position_embeddings: 4096, beta_fast: 'x' } }, 'rope_scaling.beta_fast', /positive number/],
    [{ rope_scaling: { type: 'yarn', factor: 40, original_max_position_embeddings: 4096, mscale_all_dim: -1 } }, 'rope_scaling.mscale_all_dim', />= 0/],
    [{ rope_scaling: 'yarn' }, 'rope_scaling', /expected an object/],
    [{ rope_parameters: 3 }, 'rope_parameters', /expected an object/],
    [{ qk_head_dim: 200 }, 'qk_head_dim', /expected qk_nope_head_dim \+ qk_rope_head_dim = 192, got 200/],
    [{ qk_rope_head_dim: 63 }, 'qk_rope_head_dim', /even/],
    [{ index_head_dim: 32 }, 'index_head_dim', /at least qk_rope_head_dim = 64/],
    [{ indexer_types: ['full'] }, 'indexer_types', /expected num_hidden_layers = 61 entries/],
    [{ indexer_types: Array(61).fill('dense') }, 'indexer_types', /"dense"/],
    [{ indexer_types: ['shared', ...Array(60).fill('full')] }, 'indexer_types', /layer 0 is 'shared'/],
    [{ indexer_rope_interleave: 'yes' }, 'indexer_rope_interleave', /true or false/],
    [{ num_nextn_predict_layers: -1 }, 'num_nextn_predict_layers', /integer >= 0/],
    [{ quantization_config: { quant_method: 'awq' } }, 'quantization_config.quant_method', /expected 'fp8'.*"awq"/],
    [{ quantization_config: { quant_method: 'fp8', fmt: 'e5m2', weight_block_size: [128, 128] } }, 'quantization_config.fmt', /'e4m3', got "e5m2"/],
    [{ quantization_config: { quant_method: 'fp8', fmt: 'e4m3', weight_block_size: [64, 64] } }, 'quantization_config.weight_block_size', /\[128, 128\].*\[64,64\]/],
    [{ quantization_config: { quant_method: 'fp8', fmt: 'e4m3' } }, 'quantization_config.weight_block_size', /got nothing/],
    [{ quantization_config: { quant_method: 'fp8', fmt: 'e4m3', weight_block_size: [128, 128], scale_fmt: 'e8m0' } }, 'quantization_config.scale_fmt', /'ue8m0' or null/],
    [{ quantization_config: [] }, 'quantization_config', /expected an object/],
  ];
  for (const [patch, key, pattern] of cases) assert.throws(() => parseModelConfig({ ...DEEPSEEK_V32, ...patch }), expectConfigError(key, pattern), JSON.stringify(patch));
  const glmCases: [Record<string, unknown>, string, RegExp][] = [
    [{ index_topk_pattern: 'FS' }, 'index_topk_pattern', /expected 78 letters/],
    [{ index_topk_pattern: 'S'.repeat(78) }, 'index_topk_pattern', /layer 0 is 'shared'/],
    [{ index_topk_freq: 0 }, 'index_topk_freq', /integer >= 1/],
    [{ index_topk_freq: 4, index_skip_topk_offset: -1 }, 'index_skip_topk_offset', /integer >= 0/],
  ];
  for (const [patch, key, pattern] of glmCases) assert.throws(() => parseModelConfig({ ...GLM5, ...patch }), expectConfigError(key, pattern), JSON.stringify(patch));
});

test('not JSON, or not an object', () => {
  assert.throws(() => parseModelConfig('{"model_type": ', 'c.json'), expectConfigError('', /^c\.json: not valid JSON/));
  assert.throws(() => parseModelConfig('[1]'), expectConfigError('', /expected a JSON object, got an array/));
  assert.throws(() => parseModelConfig(null), expectConfigError('', /got null/));
});
