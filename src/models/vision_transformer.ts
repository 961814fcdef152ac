import type { serialization } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { Shape } from '@tensorflow/tfjs-layers';
import { input } from '@tensorflow/tfjs-layers';
import {
  assertInputShape,
  ConfigError,
  requireNonNegativeInt,
  requirePositive,
  requirePositiveInt,
  requireRate,
} from '../errors';
import { CompositeLayer } from '../layers/composite';
import type { HybridEmbed } from '../layers/hybrid_embed';
import { LayerNorm } from '../layers/layer_norm';
import { Linear } from '../layers/linear';
import { dropout } from '../layers/ops';
import { PatchEmbed, type Size2D, toPair } from '../layers/patch_embed';
import { registerLayer, withDefaultName } from '../layers/register';
import { TransformerBlock } from '../layers/transformer_block';
import { ViTEmbedding } from '../layers/vit_embedding';
import type { Kwargs, LayerArgs } from '../tfjs_types';

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
}

/** Configuration of the {@link VisionTransformer} layer: the architecture plus layer args. */
export interface VisionTransformerArgs extends ViTConfig, LayerArgs {}

/** Fully resolved {@link ViTConfig}, every field set. */
export type ResolvedViTConfig = Required<
  Omit<ViTConfig, 'imgSize' | 'patchSize' | 'initValues'>
> & {
  imgSize: [number, number];
  patchSize: [number, number];
  initValues: number | null;
};

/**
 * Fills defaults and validates a ViT config, throwing a {@link ConfigError} that names the bad
 * field. Pure: allocates no tensors.
 */
export function resolveViTConfig(config: ViTConfig = {}): ResolvedViTConfig {
  const o = 'VisionTransformer';
  if (config == null || typeof config !== 'object') {
    throw new ConfigError(`${o}: config must be an object, got ${String(config)}`);
  }
  const imgSize = toPair(o, 'imgSize', config.imgSize ?? 224);
  const patchSize = toPair(o, 'patchSize', config.patchSize ?? 16);
  if (imgSize[0] % patchSize[0] !== 0 || imgSize[1] % patchSize[1] !== 0) {
    throw new ConfigError(
      `${o}: imgSize [${imgSize.join(', ')}] must be divisible by patchSize [${patchSize.join(', ')}]`,
    );
  }
  const embedDim = requirePositiveInt(o, 'embedDim', config.embedDim ?? 768);
  const numHeads = requirePositiveInt(o, 'numHeads', config.numHeads ?? 12);
  if (embedDim % numHeads !== 0) {
    throw new ConfigError(
      `${o}: embedDim (${embedDim}) must be divisible by numHeads (${numHeads}); got remainder ${embedDim % numHeads}`,
    );
  }
  const globalPool = config.globalPool ?? 'token';
  if (globalPool !== 'token' && globalPool !== 'avg') {
    throw new ConfigError(`${o}: globalPool must be 'token' or 'avg', got '${String(globalPool)}'`);
  }
  const classToken = config.classToken ?? true;
  if (globalPool === 'token' && !classToken) {
    throw new ConfigError(
      `${o}: globalPool 'token' needs classToken: true (got classToken: false); use globalPool 'avg'`,
    );
  }
  return {
    imgSize,
    patchSize,
    inChans: requirePositiveInt(o, 'inChans', config.inChans ?? 3),
    numClasses: requireNonNegativeInt(o, 'numClasses', config.numClasses ?? 1000),
    globalPool,
    embedDim,
    depth: requirePositiveInt(o, 'depth', config.depth ?? 12),
    numHeads,
    mlpRatio: requirePositive(o, 'mlpRatio', config.mlpRatio ?? 4),
    qkvBias: config.qkvBias ?? true,
    classToken,
    numRegTokens: requireNonNegativeInt(o, 'numRegTokens', config.numRegTokens ?? 0),
    dropRate: requireRate(o, 'dropRate', config.dropRate ?? 0),
    projDropRate: requireRate(o, 'projDropRate', config.projDropRate ?? 0),
    attnDropRate: requireRate(o, 'attnDropRate', config.attnDropRate ?? 0),
    dropPathRate: requireRate(o, 'dropPathRate', config.dropPathRate ?? 0),
    initValues:
      config.initValues == null ? null : requirePositive(o, 'initValues', config.initValues),
    normEps: requirePositive(o, 'normEps', config.normEps ?? 1e-6),
  };
}

/** Output of {@link VisionTransformer.forwardWithAttention}. */
export interface ViTAttentionOutput {
  /** Head output (logits, or pooled features when `numClasses` is 0), `[B, C]`. */
  logits: tf.Tensor2D;
  /** Attention probabilities `[B, H, N, N]` of each requested block, in block order. */
  attentions: tf.Tensor4D[];
  /** Indices of the blocks in `attentions`. */
  blocks: number[];
}

const LAYER_KEYS = [
  'imgSize',
  'patchSize',
  'inChans',
  'numClasses',
  'globalPool',
  'embedDim',
  'depth',
  'numHeads',
  'mlpRatio',
  'qkvBias',
  'classToken',
  'numRegTokens',
  'dropRate',
  'projDropRate',
  'attnDropRate',
  'dropPathRate',
  'initValues',
  'normEps',
] as const;

/**
 * A whole Vision Transformer as one layer, timm's `VisionTransformer`:
 * `[B, H, W, C]` images -> patch embedding -> class token + position embedding -> `depth`
 * pre-norm blocks -> final norm -> pooling -> head `[B, numClasses]`.
 *
 * Children (and weight name prefixes): `patch_embed`, `embed` (`cls_token`, `pos_embed`),
 * `blocks/{i}`, `norm` (or `fc_norm` with average pooling), `head`. Use it directly, inside
 * `tf.sequential` / `tf.model`, or build a ready model with `createViT`.
 */
export class VisionTransformer extends CompositeLayer {
  /** @nocollapse */
  static readonly className: string = 'VitTs>VisionTransformer';
  /** The resolved architecture. */
  readonly config: ResolvedViTConfig;
  /** The token maker: a {@link PatchEmbed}, or a {@link HybridEmbed} in a hybrid ViT. */
  patchEmbed!: PatchEmbed | HybridEmbed;
  embed!: ViTEmbedding;
  blocks: TransformerBlock[] = [];
  norm!: LayerNorm;
  head: Linear | null = null;

  constructor(args: VisionTransformerArgs = {}) {
    super(withDefaultName(args, 'vision_transformer'));
    this.config = resolveViTConfig(args);
  }

  /** Patch grid `[gh, gw]`. */
  get gridSize(): [number, number] {
    return [
      this.config.imgSize[0] / this.config.patchSize[0],
      this.config.imgSize[1] / this.config.patchSize[1],
    ];
  }

  /** Prefix tokens (class + registers) before the patch tokens. */
  get numPrefixTokens(): number {
    return (this.config.classToken ? 1 : 0) + this.config.numRegTokens;
  }

  override build(inputShape: Shape | Shape[]): void {
    const c = this.config;
    const shape = inputShape as Array<number | null>;
    this.patchEmbed = this.createPatchEmbed();
    let tokens = this.buildChild(this.patchEmbed, shape);
    this.embed = new ViTEmbedding({
      name: 'embed',
      numPatches: this.patchEmbed.numPatches,
      embedDim: c.embedDim,
      classToken: c.classToken,
      numRegTokens: c.numRegTokens,
      dropRate: c.dropRate,
    });
    tokens = this.buildChild(this.embed, tokens);
    this.blocks = [];
    for (let i = 0; i < c.depth; i++) {
      // Stochastic depth rises linearly over depth, as timm's `dpr`.
      const dpr = c.depth > 1 ? (c.dropPathRate * i) / (c.depth - 1) : 0;
      const block = new TransformerBlock({
        name: `blocks/${i}`,
        dim: c.embedDim,
        numHeads: c.numHeads,
        mlpRatio: c.mlpRatio,
        qkvBias: c.qkvBias,
        projDrop: c.projDropRate,
        attnDrop: c.attnDropRate,
        dropPath: dpr,
        initValues: c.initValues,
        normEps: c.normEps,
      });
      this.buildChild(block, tokens);
      this.blocks.push(block);
    }
    this.norm = new LayerNorm({
      name: c.globalPool === 'avg' ? 'fc_norm' : 'norm',
      epsilon: c.normEps,
    });
    if (c.globalPool === 'avg') this.buildChild(this.norm, [shape[0], c.embedDim]);
    else this.buildChild(this.norm, tokens);
    if (c.numClasses > 0) {
      this.head = new Linear({ name: 'head', inFeatures: c.embedDim, outFeatures: c.numClasses });
      this.buildChild(this.head, [shape[0], c.embedDim]);
    }
    this.built = true;
  }

  /**
   * The layer that turns images into patch tokens, named `patch_embed`. Called once from
   * `build`; a hybrid ViT overrides it to put a CNN in front (see `HybridVisionTransformer`).
   */
  protected createPatchEmbed(): PatchEmbed | HybridEmbed {
    const c = this.config;
    return new PatchEmbed({
      name: 'patch_embed',
      imgSize: c.imgSize,
      patchSize: c.patchSize,
      inChans: c.inChans,
      embedDim: c.embedDim,
    });
  }

  /** Tokens after the last block and (for token pooling) the final norm, `[B, P + N, D]`. */
  private features(x: tf.Tensor, kwargs: Kwargs): tf.Tensor {
    let t = this.patchEmbed.call(x, kwargs) as tf.Tensor;
    t = this.embed.call(t, kwargs) as tf.Tensor;
    for (const block of this.blocks) t = block.call(t, kwargs) as tf.Tensor;
    return t;
  }

  /** Pooling, final norm, dropout and head on the block output. */
  private pooledHead(tokens: tf.Tensor, training: boolean): tf.Tensor {
    const c = this.config;
    let pooled: tf.Tensor;
    if (c.globalPool === 'avg') {
      const patches = tf.slice(tokens, [0, this.numPrefixTokens, 0], [-1, -1, -1]);
      pooled = this.norm.call(tf.mean(patches, 1), {}) as tf.Tensor;
    } else {
      const normed = this.norm.call(tokens, {}) as tf.Tensor;
      pooled = tf.reshape(tf.slice(normed, [0, 0, 0], [-1, 1, -1]), [tokens.shape[0], c.embedDim]);
    }
    pooled = dropout(pooled, c.dropRate, training);
    return this.head ? (this.head.call(pooled, {}) as tf.Tensor) : pooled;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => this.pooledHead(this.features(x, kwargs), kwargs?.['training'] === true));
  }

  /**
   * Inference: the token sequence after the final norm, `[B, P + N, D]` (prefix tokens first).
   * With average pooling the final norm applies after pooling, so the raw block output is returned.
   */
  forwardFeatures(x: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      const t = this.features(x, {});
      return (this.config.globalPool === 'avg' ? t : this.norm.call(t, {})) as tf.Tensor3D;
    });
  }

  /**
   * Inference pass that also returns the attention probabilities of the chosen blocks (all by
   * default). It runs the same weights through a separate path, so the training graph
   * (`call`) never computes or keeps attention maps. The caller disposes the returned tensors.
   */
  forwardWithAttention(x: tf.Tensor, options: { blocks?: number[] } = {}): ViTAttentionOutput {
    const depth = this.config.depth;
    const wanted = options.blocks ?? Array.from({ length: depth }, (_, i) => i);
    for (const b of wanted) {
      if (!Number.isInteger(b) || b < 0 || b >= depth) {
        throw new ConfigError(
          `VisionTransformer.forwardWithAttention: blocks must be integers in [0, ${depth - 1}], got ${b}`,
        );
      }
    }
    // Build symbolically: no tensors are created (an eager warm-up pass would leak its output).
    if (!this.built)
      this.apply(input({ batchShape: [null, ...this.config.imgSize, this.config.inChans] }));
    const keep = new Set(wanted);
    const out = tf.tidy(() => {
      let t = this.embed.call(this.patchEmbed.call(x, {}), {}) as tf.Tensor;
      const attentions: tf.Tensor4D[] = [];
      this.blocks.forEach((block, i) => {
        if (keep.has(i)) {
          const r = block.callWithAttention(t);
          t = r.output;
          attentions.push(r.attention);
        } else {
          t = block.call(t, {}) as tf.Tensor;
        }
      });
      return { logits: this.pooledHead(t, false) as tf.Tensor2D, attentions };
    });
    return { ...out, blocks: [...keep].sort((a, b) => a - b) };
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = inputShape as Shape;
    const c = this.config;
    assertInputShape(
      'VisionTransformer',
      shape,
      [null, c.imgSize[0], c.imgSize[1], c.inChans],
      'NHWC images',
    );
    return [shape[0], this.config.numClasses > 0 ? this.config.numClasses : this.config.embedDim];
  }

  override getConfig(): serialization.ConfigDict {
    const out: serialization.ConfigDict = { ...super.getConfig() };
    for (const key of LAYER_KEYS) {
      const v = this.config[key];
      out[key] = Array.isArray(v) ? [...v] : v;
    }
    return out;
  }
}
registerLayer(VisionTransformer);
