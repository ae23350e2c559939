/**
 * A Hugging Face `config.json` of a DSA model read into `MlaConfig`: model
 * types `deepseek_v32` (DeepSeek-V3.2, V3.2-Exp) and `glm_moe_dsa` (GLM-5),
 * and what its `quantization_config` says about FP8 weights.
 *
 * Keys read (the names of both models' configs):
 *   hidden_size, num_attention_heads, q_lora_rank, kv_lora_rank,
 *   qk_nope_head_dim, qk_rope_head_dim, v_head_dim, index_n_heads,
 *   index_head_dim, index_topk, rms_norm_eps, num_hidden_layers;
 *   rope_theta at the top or in rope_parameters (Transformers 5 writes the
 *   latter); YaRN from rope_scaling or rope_parameters with type / rope_type
 *   'yarn' (factor, original_max_position_embeddings, beta_fast 32,
 *   beta_slow 1, mscale 1, mscale_all_dim as given); qk_head_dim, when
 *   present, must be qk_nope_head_dim + qk_rope_head_dim;
 *   indexer_rope_interleave (default false for deepseek_v32, true for
 *   glm_moe_dsa, whose Transformers indexer rotates interleaved pairs).
 *   GLM-5's per-layer indexer: indexer_types ['full' | 'shared'] when
 *   given, else index_topk_pattern ('FSS...'), else index_topk_freq and
 *   index_skip_topk_offset (default 2) as Transformers' GlmMoeDsaConfig
 *   derives them: layer i is full when max(i - offset + 1, 0) % freq == 0;
 *   none of these: every layer full (indexerTypes absent).
 *   quantization_config: quant_method 'fp8', fmt 'e4m3', weight_block_size
 *   [128, 128] (the only block the weight format holds), scale_fmt 'ue8m0'
 *   or absent (float32 activation scales: DeepSeek's act_quant rule).
 * Anything else is ignored. An unknown model_type, a missing key, a value
 * of the wrong type or out of range: ConfigError naming the key.
 */
import { WEIGHT_BLOCK } from '../weights/weight.js';
import type { ScaleFormat } from '../indexer/fp8.js';
import type { MlaConfig } from './types.js';

export type DsaModelType = 'deepseek_v32' | 'glm_moe_dsa';
export const DSA_MODEL_TYPES: readonly DsaModelType[] = ['deepseek_v32', 'glm_moe_dsa'];

/** What `quantization_config` says about FP8 weights. */
export interface Fp8QuantConfig {
  /** fmt: the only one read is 'e4m3' (torch.float8_e4m3fn). */
  fmt: 'e4m3';
  /** weight_block_size [rows, cols] of one weight_scale_inv block: [128, 128]. */
  blockSize: [number, number];
  /**
   * scale_fmt: how activations' block scales are rounded before the FP8
   * GEMM (DeepSeek's act_quant): 'ue8m0' rounds up to a power of two,
   * 'float32' (scale_fmt absent or null) keeps amax / 448. Weight scales are
   * stored float32 either way.
   */
  scaleFormat: ScaleFormat;
  /** activation_scheme ('dynamic'), as given; absent when the config has none. */
  activationScheme?: string;
}

export interface ModelConfig {
  modelType: DsaModelType;
  config: MlaConfig;
  /** num_nextn_predict_layers (MTP layers stored after the model's layers; 0 when absent). */
  nextnLayers: number;
  /** null: the config declares no quantization (weights as stored: bf16 or float32). */
  fp8: Fp8QuantConfig | null;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    /** The config file, as the caller named it. */
    readonly file: string,
    /** The key at fault (dotted for nested keys), or '' for the whole file. */
    readonly key: string,
    message: string,
  ) {
    super(`${file}: ${key === '' ? '' : `${key}: `}${message}`);
  }
}

type Json = Record<string, unknown>;

function isObject(x: unknown): x is Json {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function show(x: unknown): string {
  return x === undefined ? 'nothing (missing)' : JSON.stringify(x);
}

/**
 * Parses a config.json's text or parsed JSON. `file` names it in errors.
 */
export function parseModelConfig(json: unknown, file = 'config.json'): ModelConfig {
  if (typeof json === 'string') {
    try {
      json = JSON.parse(json);
    } catch (err) {
      throw new ConfigError(file, '', `not valid JSON (${(err as Error).message})`);
    }
  }
  if (!isObject(json)) throw new ConfigError(file, '', `expected a JSON object, got ${Array.isArray(json) ? 'an array' : show(json)}`);
  const c = json;
  const modelType = c.model_type;
  if (typeof modelType !== 'string' || !(DSA_MODEL_TYPES as readonly string[]).includes(modelType)) {
    throw new ConfigError(file, 'model_type', `expected one of ${DSA_MODEL_TYPES.map((t) => `'${t}'`).join(', ')}, got ${show(modelType)}`);
  }
  const glm = modelType === 'glm_moe_dsa';

  const int = (key: string, value: unknown = c[key], min = 1): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
      throw new ConfigError(file, key, `expected an integer >= ${min}, got ${show(value)}`);
    }
    return value;
  };
  const positive = (key: string, value: unknown): number => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new ConfigError(file, key, `expected a positive number, got ${show(value)}`);
    return value;
  };
  const optional = <T>(key: string, value: unknown, fallback: T, read: (key: string, v: unknown) => T): T => (value === undefined || value === null ? fallback : read(key, value));
  const bool = (key: string, value: unknown): boolean => {
    if (typeof value !== 'boolean') throw new ConfigError(file, key, `expected true or false, got ${show(value)}`);
    return value;
  };

  const nLayers = int('num_hidden_layers');
  // Real models have at most a few hundred; a per-layer pattern is built from it.
  if (nLayers > 65536) throw new ConfigError(file, 'num_hidden_layers', `expected at most 65536 layers, got ${nLayers}`);
  const qkNopeHeadDim = int('qk_nope_head_dim');
  const qkRopeHeadDim = int('qk_rope_head_dim');
  if (c.qk_head_dim !== undefined && c.qk_head_dim !== qkNopeHeadDim + qkRopeHeadDim) {
    throw new ConfigError(file, 'qk_head_dim', `expected qk_nope_head_dim + qk_rope_head_dim = ${qkNopeHeadDim + qkRopeHeadDim}, got ${show(c.qk_head_dim)}`);
  }
  if (qkRopeHeadDim % 2 !== 0) throw new ConfigError(file, 'qk_rope_head_dim', `expected an even number (RoPE rotates pairs), got ${qkRopeHeadDim}`);
  const indexHeadDim = int('index_head_dim');
  if (indexHeadDim < qkRopeHeadDim) {
    throw new ConfigError(file, 'index_head_dim', `expected at least qk_rope_head_dim = ${qkRopeHeadDim} (the indexer rotates its first qk_rope_head_dim dims), got ${indexHeadDim}`);
  }

  const params = isObject(c.rope_parameters) ? c.rope_parameters : undefined;
  if (c.rope_parameters !== undefined && c.rope_parameters !== null && params === undefined) {
    throw new ConfigError(file, 'rope_parameters', `expected an object, got ${show(c.rope_parameters)}`);
  }
  const thetaKey = c.rope_theta === undefined && params?.rope_theta !== undefined ? 'rope_parameters.rope_theta' : 'rope_theta';
  const ropeTheta = positive(thetaKey, c.rope_theta ?? params?.rope_theta);

  const config: MlaConfig = {
    dim: int('hidden_size'),
    nHeads: int('num_attention_heads'),
    qLoraRank: int('q_lora_rank'),
    kvLoraRank: int('kv_lora_rank'),
    qkNopeHeadDim,
    qkRopeHeadDim,
    vHeadDim: int('v_head_dim'),
    indexNHeads: int('index_n_heads'),
    indexHeadDim,
    indexTopk: int('index_topk'),
    normEps: positive('rms_norm_eps', c.rms_norm_eps),
    ropeTheta,
    nLayers,
  };
  const rope = readYarn(file, c, params, int, positive);
  if (rope !== undefined) config.rope = rope;
  const indexerTypes = glm ? readIndexerTypes(file, c, nLayers, int) : readExplicitIndexerTypes(file, c.indexer_types, nLayers);
  if (indexerTypes !== undefined) config.indexerTypes = indexerTypes;
  config.indexerRopeInterleaved = optional('indexer_rope_interleave', c.indexer_rope_interleave, glm, bool);

  return {
    modelType: modelType as DsaModelType,
    config,
    nextnLayers: optional('num_nextn_predict_layers', c.num_nextn_predict_layers, 0, (k, v) => int(k, v, 0)),
    fp8: readFp8(file, c.quantization_config),
  };
}

function readYarn(
  file: string,
  c: Json,
  params: Json | undefined,
  int: (key: string, value: unknown, min?: number) => number,
  positive: (key: string, value: unknown) => number,
): MlaConfig['rope'] {
  const fromScaling = c.rope_scaling !== undefined && c.rope_scaling !== null;
  const where = fromScaling ? 'rope_scaling' : 'rope_parameters';
  const scaling: unknown = fromScaling ? c.rope_scaling : params;
  if (scaling === undefined) return undefined;
  if (!isObject(scaling)) throw new ConfigError(file, where, `expected an object, got ${show(scaling)}`);
  const type = scaling.rope_type ?? scaling.type ?? 'default';
  if (type === 'default') return undefined;
  if (type !== 'yarn') throw new ConfigError(file, `${where}.rope_type`, `expected 'yarn' or 'default' (the RoPE DeepSeek-V3.2 and GLM-5 use), got ${show(type)}`);
  const num = (key: string, fallback: number): number => {
    const v = scaling[key];
    return v === undefined || v === null ? fallback : positive(`${where}.${key}`, v);
  };
  const rope: NonNullable<MlaConfig['rope']> = {
    factor: positive(`${where}.factor`, scaling.factor),
    originalSeqLen: int(`${where}.original_max_position_embeddings`, scaling.original_max_position_embeddings),
    betaFast: num('beta_fast', 32),
    betaSlow: num('beta_slow', 1),
    mscale: num('mscale', 1),
  };
  if (scaling.mscale_all_dim !== undefined && scaling.mscale_all_dim !== null) {
    const v = scaling.mscale_all_dim;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigError(file, `${where}.mscale_all_dim`, `expected a number >= 0, got ${show(v)}`);
    rope.mscaleAllDim = v;
  }
  return rope;
}

function readExplicitIndexerTypes(file: string, value: unknown, nLayers: number): MlaConfig['indexerTypes'] {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.length !== nLayers || !value.every((v) => v === 'full' || v === 'shared')) {
    const got = Array.isArray(value) ? `${value.length} entries, ${show(value.find((v) => v !== 'full' && v !== 'shared') ?? value.slice(0, 4))}` : show(value);
    throw new ConfigError(file, 'indexer_types', `expected num_hidden_layers = ${nLayers} entries, each 'full' or 'shared', got ${got}`);
  }
  return checkFirstFull(file, 'indexer_types', value.slice());
}

function checkFirstFull(file: string, key: string, types: ('full' | 'shared')[]): ('full' | 'shared')[] {
  if (types[0] === 'shared') throw new ConfigError(file, key, `layer 0 is 'shared', but a shared layer reuses the previous full layer's top-k and there is none`);
  return types;
}

function readIndexerTypes(file: string, c: Json, nLayers: number, int: (key: string, value: unknown, min?: number) => number): MlaConfig['indexerTypes'] {
  const explicit = readExplicitIndexerTypes(file, c.indexer_types, nLayers);
  if (explicit !== undefined) return explicit;
  const pattern = c.index_topk_pattern;
  if (pattern !== undefined && pattern !== null) {
    const letters = typeof pattern === 'string' ? [...pattern] : pattern;
    const map: Record<string, 'full' | 'shared'> = { F: 'full', S: 'shared', full: 'full', shared: 'shared' };
    if (!Array.isArray(letters) || letters.length !== nLayers || !letters.every((l) => typeof l === 'string' && l in map)) {
      throw new ConfigError(file, 'index_topk_pattern', `expected ${nLayers} letters F (full) or S (shared), got ${show(pattern)}`);
    }
    return checkFirstFull(file, 'index_topk_pattern', letters.map((l) => map[l as string]));
  }
  if (c.index_topk_freq === undefined || c.index_topk_freq === null) return undefined;
  const freq = int('index_topk_freq', c.index_topk_freq);
  const offset = c.index_skip_topk_offset === undefined || c.index_skip_topk_offset === null ? 2 : int('index_skip_topk_offset', c.index_skip_topk_offset, 0);
  if (freq === 1) return undefined;
  const derived = Array.from({ length: nLayers }, (_, i): 'full' | 'shared' => (Math.max(i - offset + 1, 0) % freq === 0 ? 'full' : 'shared'));
  return checkFirstFull(file, 'index_skip_topk_offset', derived);
}

function readFp8(file: string, q: unknown): Fp8QuantConfig | null {
  if (q === undefined || q === null) return null;
  if (!isObject(q)) throw new ConfigError(file, 'quantization_config', `expected an object, got ${show(q)}`);
  if (q.quant_method !== 'fp8') {
    throw new ConfigError(file, 'quantization_config.quant_method', `expected 'fp8' (block-scaled e4m3 weights), got ${show(q.quant_method)}`);
  }
  if (q.fmt !== undefined && q.fmt !== 'e4m3') throw new ConfigError(file, 'quantization_config.fmt', `expected 'e4m3', got ${show(q.fmt)}`);
  const block = q.weight_block_size;
  if (!Array.isArray(block) || block.length !== 2 || block[0] !== WEIGHT_BLOCK || block[1] !== WEIGHT_BLOCK) {
    throw new ConfigError(file, 'quantization_config.weight_block_size', `expected [${WEIGHT_BLOCK}, ${WEIGHT_BLOCK}] (the block of weight_scale_inv this library reads), got ${show(block)}`);
  }
  const fmt = q.scale_fmt;
  if (fmt !== undefined && fmt !== null && fmt !== 'ue8m0') {
    throw new ConfigError(file, 'quantization_config.scale_fmt', `expected 'ue8m0' or null (float32 scales), got ${show(fmt)}`);
  }
  const out: Fp8QuantConfig = { fmt: 'e4m3', blockSize: [WEIGHT_BLOCK, WEIGHT_BLOCK], scaleFormat: fmt === 'ue8m0' ? 'ue8m0' : 'float32' };
  if (typeof q.activation_scheme === 'string') out.activationScheme = q.activation_scheme;
  return out;
}
