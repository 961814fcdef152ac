/**
 * The Vision Transformer config: its fields (TypeScript interface), their schema (type, range,
 * default; one table that drives validation AND `getConfig` serialization) and resolution.
 *
 * Adding a field: add it to {@link ViTConfig} and to {@link VIT_CONFIG_SCHEMA} (the compiler
 * refuses one without the other), read it where the model is built, and give it a non-default
 * value in the all-fields round-trip test (test/models/vit_config.test.ts).
 */

import { type ConfigSchema, type FieldSpec, LAYER_ARG_KEYS, resolveSchema } from '../config/schema';
import { ConfigError, requireDivisible } from '../errors';
import { patchGrid, type Size2D } from '../geometry';
import { POS_EMBED_KINDS, type PosEmbedKind } from '../layers/pos_embed';

/** How the token sequence is pooled into one vector before the head. */
export type GlobalPool = 'token' | 'avg';

/** Architecture options of a Vision Transformer (timm's `VisionTransformer` arguments). */
export interface ViTConfig {
  /** Input image size, square or `[height, width]`. Default 224. */
  imgSize?: Size2D;
  /** Patch size, square or `[height, width]`. Default 16. */
  patchSize?: Size2D;
  /** Input channels. Default 3. */
  inChans?: number;
  /** Classes of the head; 0 = no head (the layer outputs pooled features). Default 1000. */
  numClasses?: number;
  /** Pooling: `'token'` (class token, timm default) or `'avg'` (mean of patch tokens, then `fc_norm`). */
  globalPool?: GlobalPool;
  /** Token width D. Default 768. */
  embedDim?: number;
  /** Number of transformer blocks. Default 12. */
  depth?: number;
  /** Attention heads per block. Default 12. */
  numHeads?: number;
  /** MLP hidden width as a multiple of D. Default 4. */
  mlpRatio?: number;
  /** Bias on the qkv projections. Default true. */
  qkvBias?: boolean;
  /** Prepend a class token. Default true (required for `globalPool: 'token'`). */
  classToken?: boolean;
  /** Learned register tokens after the class token. Default 0. */
  numRegTokens?: number;
  /** Dropout on embeddings (`pos_drop`) and before the head. Default 0. */
  dropRate?: number;
  /** Dropout after attention / MLP projections. Default 0. */
  projDropRate?: number;
  /** Dropout on attention probabilities. Default 0. */
  attnDropRate?: number;
  /** Stochastic depth, rising linearly from 0 to this rate over the blocks. Default 0. */
  dropPathRate?: number;
  /** LayerScale init value; null = off. Default null. */
  initValues?: number | null;
  /** LayerNorm epsilon everywhere (timm 1e-6, HF 1e-12). Default 1e-6. */
  normEps?: number;
  /**
   * Position embedding: `'learned'` 1-D table (default, timm), `'learned2d'` row + column
   * tables, `'sincos'` MAE's fixed 2-D sin-cos table, `'none'`. See {@link PosEmbedKind}.
   */
  posEmbed?: PosEmbedKind;
  /**
   * DeiT: a distillation token after the class token and a second head `head_dist` on it
   * (timm `VisionTransformerDistilled`). `call` returns the mean of both heads' logits, as timm
   * at inference; `VisionTransformer.forwardDistillation` returns both. Default false.
   */
  distilled?: boolean;
  /** LayerNorm over the head dimension of q and k in every block (timm `qk_norm`). Default false. */
  qkNorm?: boolean;
  /**
   * Accept every image size the patch size divides, resampling the position embedding to the
   * input's patch grid at call time (bicubic, antialiased; timm `dynamic_img_size`). The model
   * is built for `imgSize`; its weights do not change. Default false.
   */
  dynamicImgSize?: boolean;
}

const rate = (doc: string): FieldSpec => ({
  kind: 'number',
  min: 0,
  max: 1,
  maxExclusive: true,
  default: 0,
  doc,
});

/**
 * The schema of {@link ViTConfig}, in the order fields are saved. `satisfies` makes the compiler
 * demand exactly one entry per `ViTConfig` field.
 */
export const VIT_CONFIG_SCHEMA = {
  imgSize: { kind: 'size2d', default: 224, doc: 'input image size' },
  patchSize: { kind: 'size2d', default: 16, doc: 'patch size' },
  inChans: { kind: 'int', min: 1, default: 3, doc: 'input channels' },
  numClasses: { kind: 'int', min: 0, default: 1000, doc: 'classes of the head (0 = no head)' },
  globalPool: { kind: 'enum', values: ['token', 'avg'], default: 'token', doc: 'pooling' },
  embedDim: { kind: 'int', min: 1, default: 768, doc: 'token width' },
  depth: { kind: 'int', min: 1, default: 12, doc: 'transformer blocks' },
  numHeads: { kind: 'int', min: 1, default: 12, doc: 'attention heads' },
  mlpRatio: {
    kind: 'number',
    min: 0,
    minExclusive: true,
    default: 4,
    doc: 'MLP hidden width / embedDim',
  },
  qkvBias: { kind: 'boolean', default: true, doc: 'bias on qkv' },
  classToken: { kind: 'boolean', default: true, doc: 'prepend a class token' },
  numRegTokens: { kind: 'int', min: 0, default: 0, doc: 'register tokens' },
  dropRate: rate('embedding / head dropout'),
  projDropRate: rate('projection dropout'),
  attnDropRate: rate('attention dropout'),
  dropPathRate: rate('stochastic depth'),
  initValues: {
    kind: 'number',
    min: 0,
    minExclusive: true,
    default: null,
    nullable: true,
    doc: 'LayerScale init (null = off)',
  },
  normEps: { kind: 'number', min: 0, minExclusive: true, default: 1e-6, doc: 'LayerNorm epsilon' },
  posEmbed: {
    kind: 'enum',
    values: POS_EMBED_KINDS,
    default: 'learned',
    doc: 'position embedding',
  },
  distilled: { kind: 'boolean', default: false, doc: 'DeiT distillation token and head' },
  qkNorm: { kind: 'boolean', default: false, doc: 'LayerNorm on q and k' },
  dynamicImgSize: { kind: 'boolean', default: false, doc: 'accept any divisible image size' },
} as const satisfies { [K in keyof Required<ViTConfig>]: FieldSpec } & ConfigSchema;

/**
 * Defaults of the ViT options (position embedding kind, DeiT distillation, qk-norm, dynamic image
 * size), read from {@link VIT_CONFIG_SCHEMA}.
 */
export const VIT_OPTION_DEFAULTS = {
  posEmbed: VIT_CONFIG_SCHEMA.posEmbed.default as PosEmbedKind,
  distilled: VIT_CONFIG_SCHEMA.distilled.default as boolean,
  qkNorm: VIT_CONFIG_SCHEMA.qkNorm.default as boolean,
  dynamicImgSize: VIT_CONFIG_SCHEMA.dynamicImgSize.default as boolean,
} as const;

/** The names of every {@link ViTConfig} field, in saved order. */
export const VIT_CONFIG_FIELDS = Object.keys(VIT_CONFIG_SCHEMA) as Array<keyof ViTConfig>;

/** Fully resolved {@link ViTConfig}, every field set. */
export type ResolvedViTConfig = Required<
  Omit<ViTConfig, 'imgSize' | 'patchSize' | 'initValues'>
> & {
  imgSize: [number, number];
  patchSize: [number, number];
  initValues: number | null;
};

/** Options of {@link resolveViTConfig}. */
export interface ResolveViTConfigOptions {
  /** Who is asking, for error messages. Default `'VisionTransformer'`. */
  owner?: string;
  /** Also accept tfjs layer args (`name`, `trainable`, ...), as the layer constructor does. */
  allowLayerArgs?: boolean;
}

/**
 * Fills defaults and validates a ViT config against {@link VIT_CONFIG_SCHEMA}, throwing a
 * {@link ConfigError} that names the bad field (unknown keys, null config, wrong types, ranges,
 * cross-field rules). Pure: allocates no tensors.
 */
export function resolveViTConfig(
  config: ViTConfig = {},
  options: ResolveViTConfigOptions = {},
): ResolvedViTConfig {
  const o = options.owner ?? 'VisionTransformer';
  const c = resolveSchema(
    o,
    VIT_CONFIG_SCHEMA,
    config,
    options.allowLayerArgs ? LAYER_ARG_KEYS : [],
  ) as ResolvedViTConfig;
  const { imgSize, patchSize, embedDim, numHeads } = c;
  patchGrid(o, imgSize, patchSize);
  requireDivisible(o, 'embedDim', embedDim, 'numHeads', numHeads);
  if (c.globalPool === 'token' && !c.classToken) {
    throw new ConfigError(
      `${o}: globalPool 'token' needs classToken: true (got classToken: false); use globalPool 'avg'`,
    );
  }
  if (c.distilled && (!c.classToken || c.globalPool !== 'token' || c.numRegTokens > 0)) {
    throw new ConfigError(
      `${o}: distilled: true needs classToken: true, globalPool: 'token' and numRegTokens: 0 (DeiT), got classToken: ${c.classToken}, globalPool: '${c.globalPool}', numRegTokens: ${c.numRegTokens}`,
    );
  }
  if (c.posEmbed === 'sincos' && embedDim % 4 !== 0) {
    throw new ConfigError(
      `${o}: posEmbed 'sincos' needs embedDim divisible by 4, got embedDim ${embedDim}`,
    );
  }
  if (Math.floor(embedDim * c.mlpRatio) < 1) {
    throw new ConfigError(
      `${o}: mlpRatio must give an MLP hidden width floor(embedDim * mlpRatio) >= 1, got mlpRatio ${c.mlpRatio} (embedDim ${embedDim})`,
    );
  }
  return c;
}
