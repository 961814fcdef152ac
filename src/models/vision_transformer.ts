import type { serialization } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { Shape } from '@tensorflow/tfjs-layers';
import { input } from '@tensorflow/tfjs-layers';
import { serializeSchema } from '../config/schema';
import { assertInputShape, ConfigError } from '../errors';
import { type TokenGeometry, tokenGeometry } from '../geometry';
import { CompositeLayer } from '../layers/composite';
import { LayerNorm } from '../layers/layer_norm';
import { Linear } from '../layers/linear';
import { dropout } from '../layers/ops';
import { PatchEmbed } from '../layers/patch_embed';
import { registerLayer, withDefaultName } from '../layers/register';
import { TransformerBlock } from '../layers/transformer_block';
import { ViTEmbedding } from '../layers/vit_embedding';
import type { Kwargs, LayerArgs } from '../tfjs_types';
import {
  type ResolvedViTConfig,
  resolveViTConfig,
  VIT_CONFIG_SCHEMA,
  type ViTConfig,
} from './vit_config';

export type { GlobalPool, ResolvedViTConfig, ViTConfig } from './vit_config';
export { resolveViTConfig, VIT_CONFIG_FIELDS, VIT_CONFIG_SCHEMA } from './vit_config';

/** Configuration of the {@link VisionTransformer} layer: the architecture plus layer args. */
export interface VisionTransformerArgs extends ViTConfig, LayerArgs {}

/** Output of {@link VisionTransformer.forwardWithAttention}. */
export interface ViTAttentionOutput {
  /** Head output (logits, or pooled features when `numClasses` is 0), `[B, C]`. */
  logits: tf.Tensor2D;
  /** Attention probabilities `[B, H, N, N]` of each requested block, in block order. */
  attentions: tf.Tensor4D[];
  /** Indices of the blocks in `attentions`. */
  blocks: number[];
}

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
  static readonly className = 'VitTs>VisionTransformer';
  /** The resolved architecture. */
  readonly config: ResolvedViTConfig;
  patchEmbed!: PatchEmbed;
  embed!: ViTEmbedding;
  blocks: TransformerBlock[] = [];
  norm!: LayerNorm;
  head: Linear | null = null;

  constructor(args: VisionTransformerArgs = {}) {
    super(withDefaultName(args, 'vision_transformer'));
    this.config = resolveViTConfig(args, { allowLayerArgs: true });
  }

  /** Grid, prefix tokens and sequence length of this ViT (see {@link tokenGeometry}). */
  get geometry(): TokenGeometry {
    return tokenGeometry('VisionTransformer', this.config);
  }

  /** Patch grid `[gh, gw]`. */
  get gridSize(): [number, number] {
    return this.geometry.gridSize;
  }

  /** Prefix tokens (class + registers) before the patch tokens. */
  get numPrefixTokens(): number {
    return this.geometry.numPrefixTokens;
  }

  override build(inputShape: Shape | Shape[]): void {
    const c = this.config;
    const shape = inputShape as Array<number | null>;
    this.patchEmbed = new PatchEmbed({
      name: 'patch_embed',
      imgSize: c.imgSize,
      patchSize: c.patchSize,
      inChans: c.inChans,
      embedDim: c.embedDim,
    });
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
        dropPathRate: dpr,
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
    // Every schema field, so a new field cannot be left out of saved JSON.
    return {
      ...super.getConfig(),
      ...(serializeSchema(VIT_CONFIG_SCHEMA, this.config) as serialization.ConfigDict),
    };
  }
}
registerLayer(VisionTransformer);
