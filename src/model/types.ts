/**
 * The DSA attention layer's shapes and weights (DeepSeek-V3.2's `MLA` with
 * its `Indexer`, GLM-5's `glm_moe_dsa`), shared by the layer
 * (src/model/mla.ts) and the checkpoint reader (src/model/checkpoint.ts).
 * Field names follow DeepSeek's `ModelArgs`; the Hugging Face names are
 * in the comments.
 */
import type { Weight } from '../weights/weight.js';

export interface MlaConfig {
  /** hidden_size (DeepSeek-V3.2: 7168). */
  dim: number;
  /** num_attention_heads (128). */
  nHeads: number;
  /** q_lora_rank (1536). */
  qLoraRank: number;
  /** kv_lora_rank (512). */
  kvLoraRank: number;
  /** qk_nope_head_dim (128). */
  qkNopeHeadDim: number;
  /** qk_rope_head_dim (64). */
  qkRopeHeadDim: number;
  /** v_head_dim (128). */
  vHeadDim: number;
  /** index_n_heads (DeepSeek-V3.2: 64; GLM-5: 32). */
  indexNHeads: number;
  /** index_head_dim (128). */
  indexHeadDim: number;
  /** index_topk (2048). */
  indexTopk: number;
  /** rms_norm_eps (1e-6). */
  normEps: number;
  /** rope_theta (10000). */
  ropeTheta: number;
  /** rope_scaling (YaRN), absent when the model has none. */
  rope?: {
    /** factor (40). */
    factor: number;
    /** original_max_position_embeddings (4096). */
    originalSeqLen: number;
    /** beta_fast (32). */
    betaFast: number;
    /** beta_slow (1). */
    betaSlow: number;
    /** mscale (1.0); DeepSeek's softmax scale is multiplied by (0.1 * mscale * ln(factor) + 1)^2. */
    mscale: number;
    /**
     * mscale_all_dim (DeepSeek-V3.2: 1.0), absent when the config has none;
     * Hugging Face's DeepSeek-V3 attention scales the softmax by this one
     * instead of mscale (the two are equal in DeepSeek's configs).
     */
    mscaleAllDim?: number;
  };
  /** num_hidden_layers. */
  nLayers: number;
  /**
   * GLM-5's indexer_types: per layer, 'full' (its own indexer) or 'shared'
   * (the previous full layer's top-k). Absent: every layer 'full'.
   */
  indexerTypes?: ('full' | 'shared')[];
  /**
   * indexer_rope_interleave: the indexer's RoPE on interleaved pairs.
   * DeepSeek-V3.2: false (its 2025-11-17 fix); GLM-5: true (Hugging Face's
   * GlmMoeDsaIndexer). Absent: false. MLA's own RoPE is interleaved in both.
   */
  indexerRopeInterleaved?: boolean;
}

/** One layer's indexer (`self_attn.indexer.*`). */
export interface IndexerLayerWeights {
  /** indexer.wq_b [indexNHeads * indexHeadDim, qLoraRank]. */
  wqB: Weight;
  /** indexer.wk [indexHeadDim, dim]. */
  wk: Weight;
  /** indexer.k_norm.weight [indexHeadDim] (LayerNorm). */
  kNormWeight: Float32Array;
  /** indexer.k_norm.bias [indexHeadDim]. */
  kNormBias: Float32Array;
  /** indexer.weights_proj [indexNHeads, dim]. */
  weightsProj: Weight;
}

/** One layer's attention (`model.layers.{i}.self_attn.*`). */
export interface MlaLayerWeights {
  /** q_a_proj [qLoraRank, dim]. */
  wqA: Weight;
  /** q_a_layernorm.weight [qLoraRank] (RMSNorm). */
  qNorm: Float32Array;
  /** q_b_proj [nHeads * (qkNopeHeadDim + qkRopeHeadDim), qLoraRank]. */
  wqB: Weight;
  /** kv_a_proj_with_mqa [kvLoraRank + qkRopeHeadDim, dim]. */
  wkvA: Weight;
  /** kv_a_layernorm.weight [kvLoraRank] (RMSNorm). */
  kvNorm: Float32Array;
  /** kv_b_proj [nHeads * (qkNopeHeadDim + vHeadDim), kvLoraRank]. */
  wkvB: Weight;
  /** o_proj [dim, nHeads * vHeadDim]. */
  wo: Weight;
  /** The layer's own indexer; absent for a GLM-5 'shared' layer. */
  indexer?: IndexerLayerWeights;
}
