import type { serialization } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { Shape } from '@tensorflow/tfjs-layers';
import { input } from '@tensorflow/tfjs-layers';
import { serializeSchema } from '../config/schema';
import { assertInputShape, ConfigError, InputShapeError } from '../errors';
import { type TokenGeometry, tokenGeometry } from '../geometry';
import { CompositeLayer } from '../layers/composite';
import type { HybridEmbed } from '../layers/hybrid_embed';
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
import { checkViTSize } from './vit_size';

export type { GlobalPool, ResolvedViTConfig, ViTConfig } from './vit_config';
export {
  resolveViTConfig,
  VIT_CONFIG_FIELDS,
  VIT_CONFIG_SCHEMA,
  VIT_OPTION_DEFAULTS,
} from './vit_config';

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

/** Options of {@link VisionTransformer.forwardIntermediates}. */
export interface ForwardIntermediatesOptions {
  /**
   * Blocks to return: a list of indices (negative counts from the end, -1 = last block) or a
   * number n = the last n blocks (timm's convention). Default: every block.
   */
  indices?: number | number[];
  /**
   * `'tokens'`: the whole sequence `[B, P + N, D]` (prefix tokens first); `'nhwc'`: the patch
   * tokens as a feature map `[B, gh, gw, D]` (prefix tokens dropped), as timm's NCHW output in
   * tfjs' layout. Default `'nhwc'`.
   */
  output?: 'tokens' | 'nhwc';
  /**
   * Apply the final norm `norm` to each output. Default false. With average pooling the model's
   * norm is `fc_norm`, applied after pooling, so the outputs stay as they are (as in timm, whose
   * `norm` is then an identity).
   */
  norm?: boolean;
}

/** Output of {@link VisionTransformer.forwardIntermediates}. */
export interface ViTIntermediatesOutput {
  /** One tensor per block in `blocks`, in block order; the caller disposes them. */
  intermediates: tf.Tensor[];
  /** Indices (0-based) of the blocks in `intermediates`, ascending. */
  blocks: number[];
  /** Patch grid `[gh, gw]` of the input. */
  grid: [number, number];
}

/** Output of {@link VisionTransformer.forwardDistillation}. */
export interface ViTDistillationOutput {
  /** Class-token head logits `[B, C]` (timm `head`). */
  logits: tf.Tensor2D;
  /** Distillation-token head logits `[B, C]` (timm `head_dist`). */
  distLogits: tf.Tensor2D;
}

/**
 * A whole Vision Transformer as one layer, timm's `VisionTransformer`:
 * `[B, H, W, C]` images -> patch embedding -> class token + position embedding -> `depth`
 * pre-norm blocks -> final norm -> pooling -> head `[B, numClasses]`.
 *
 * Children (and weight name prefixes): `patch_embed`, `embed` (`cls_token`, `dist_token`,
 * `pos_embed`), `blocks/{i}`, `norm` (or `fc_norm` with average pooling), `head`, `head_dist`
 * (DeiT). Use it directly, inside `tf.sequential` / `tf.model`, or build a ready model with
 * `createViT`. Options: position embedding kinds, DeiT distillation, qk-norm, dynamic image size
 * and intermediate features (see docs/vit-options.md).
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
  /** DeiT's distillation head (`distilled: true` with classes), else null. */
  headDist: Linear | null = null;

  constructor(args: VisionTransformerArgs = {}) {
    super(withDefaultName(args, 'vision_transformer'));
    this.config = resolveViTConfig(args, { allowLayerArgs: true });
    // Before any weight exists: a config (or a model.json) asking for 1e21 parameters is refused.
    checkViTSize('VisionTransformer', this.config);
  }

  /** Grid, prefix tokens and sequence length of this ViT (see {@link tokenGeometry}). */
  get geometry(): TokenGeometry {
    return tokenGeometry('VisionTransformer', { ...this.config, distToken: this.config.distilled });
  }

  /** Patch grid `[gh, gw]` at `imgSize` (the grid the position embedding is stored for). */
  get gridSize(): [number, number] {
    return this.geometry.gridSize;
  }

  /** Prefix tokens (class, distillation, registers) before the patch tokens. */
  get numPrefixTokens(): number {
    return this.geometry.numPrefixTokens;
  }

  /** The input shape this layer accepts: `[null, H, W, C]`, H and W null with `dynamicImgSize`. */
  private inputPattern(): Array<number | null> {
    const c = this.config;
    return c.dynamicImgSize
      ? [null, null, null, c.inChans]
      : [null, c.imgSize[0], c.imgSize[1], c.inChans];
  }

  override build(inputShape: Shape | Shape[]): void {
    const c = this.config;
    const shape = inputShape as Array<number | null>;
    this.patchEmbed = this.createPatchEmbed();
    this.buildChild(this.patchEmbed, shape);
    this.embed = new ViTEmbedding({
      name: 'embed',
      numPatches: this.patchEmbed.numPatches,
      embedDim: c.embedDim,
      classToken: c.classToken,
      distToken: c.distilled,
      numRegTokens: c.numRegTokens,
      dropRate: c.dropRate,
      posEmbed: c.posEmbed,
      gridSize: this.gridSize,
    });
    // Built for the stored grid; other grids go through embedGrid at call time.
    this.buildChild(this.embed, [shape[0], this.patchEmbed.numPatches, c.embedDim]);
    const tokens: Array<number | null> = [shape[0], null, c.embedDim];
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
        qkNorm: c.qkNorm,
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
      if (c.distilled) {
        this.headDist = new Linear({
          name: 'head_dist',
          inFeatures: c.embedDim,
          outFeatures: c.numClasses,
        });
        this.buildChild(this.headDist, [shape[0], c.embedDim]);
      }
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
      dynamicImgSize: c.dynamicImgSize,
    });
  }

  /** Builds symbolically if needed: no tensors are created (an eager warm-up would leak). */
  private ensureBuilt(): void {
    if (!this.built) this.apply(input({ batchShape: this.inputPattern() }));
  }

  /**
   * Patch grid `[gh, gw]` of a batch of images `[B, H, W, C]`: {@link VisionTransformer.gridSize},
   * or with `dynamicImgSize` the grid of the images' own size. Throws an `InputShapeError` for a
   * shape this model does not accept (wrong size, channels, or a side the patch does not divide).
   */
  inputGrid(images: tf.Tensor): [number, number] {
    this.ensureBuilt();
    return this.gridOf(images);
  }

  /** Patch grid of an input, validating its shape against what this layer accepts. */
  private gridOf(x: tf.Tensor): [number, number] {
    assertInputShape('VisionTransformer', x.shape, this.inputPattern(), 'NHWC images');
    return this.patchEmbed.gridFor(x.shape[1], x.shape[2]) as [number, number];
  }

  /** Patch embedding, prefix tokens and position embedding: `[B, P + N, D]`. */
  private embedTokens(x: tf.Tensor, training: boolean): tf.Tensor {
    const grid = this.gridOf(x);
    const patches = this.patchEmbed.call(x, {}) as tf.Tensor;
    return this.embed.embedGrid(patches, grid, training);
  }

  /** Tokens after the last block (before the final norm), `[B, P + N, D]`. */
  private features(x: tf.Tensor, kwargs: Kwargs): tf.Tensor {
    let t = this.embedTokens(x, kwargs?.['training'] === true);
    for (const block of this.blocks) t = block.call(t, kwargs) as tf.Tensor;
    return t;
  }

  /** The pooled vector(s) before the head: `[B, D]` each (two for DeiT: class, distillation). */
  private pooled(tokens: tf.Tensor, training: boolean): tf.Tensor[] {
    const c = this.config;
    const b = tokens.shape[0];
    if (c.globalPool === 'avg') {
      const patches = tf.slice(tokens, [0, this.numPrefixTokens, 0], [-1, -1, -1]);
      return [dropout(this.norm.call(tf.mean(patches, 1), {}) as tf.Tensor, c.dropRate, training)];
    }
    const normed = this.norm.call(tokens, {}) as tf.Tensor;
    const take = (i: number) =>
      tf.reshape(tf.slice(normed, [0, i, 0], [-1, 1, -1]), [b, c.embedDim]);
    if (c.distilled) return [take(0), take(1)];
    return [dropout(take(0), c.dropRate, training)];
  }

  /** Pooling, final norm, dropout and head(s) on the block output. */
  private pooledHead(tokens: tf.Tensor, training: boolean): tf.Tensor {
    const [cls, dist] = this.pooled(tokens, training);
    if (dist == null) return this.head ? (this.head.call(cls, {}) as tf.Tensor) : cls;
    // DeiT at inference (timm): the mean of the two heads; without heads, of the two tokens.
    if (!this.head || !this.headDist) return tf.div(tf.add(cls, dist), 2);
    const a = this.head.call(cls, {}) as tf.Tensor;
    const d = this.headDist.call(dist, {}) as tf.Tensor;
    return tf.div(tf.add(a, d), 2);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => this.pooledHead(this.features(x, kwargs), kwargs?.['training'] === true));
  }

  /**
   * DeiT (`distilled: true`): both heads' logits, class head and distillation head, as timm's
   * `VisionTransformerDistilled` returns them in training (`set_distilled_training`). Use it in
   * a custom training loop with `hardDistillationLoss`; `call` (predict, fit) returns
   * their mean. Differentiable; pass `training: true` for dropout and stochastic depth.
   */
  forwardDistillation(x: tf.Tensor, options: { training?: boolean } = {}): ViTDistillationOutput {
    if (!this.config.distilled || this.config.numClasses === 0) {
      throw new ConfigError(
        `VisionTransformer.forwardDistillation: needs distilled: true and numClasses > 0, got distilled: ${this.config.distilled}, numClasses: ${this.config.numClasses}`,
      );
    }
    this.ensureBuilt();
    const training = options.training === true;
    return tf.tidy(() => {
      const [cls, dist] = this.pooled(this.features(x, { training }), training);
      return {
        logits: (this.head as Linear).call(cls, {}) as tf.Tensor2D,
        distLogits: (this.headDist as Linear).call(dist, {}) as tf.Tensor2D,
      };
    });
  }

  /**
   * Inference: the token sequence after the final norm, `[B, P + N, D]` (prefix tokens first).
   * With average pooling the final norm applies after pooling, so the raw block output is returned.
   */
  forwardFeatures(x: tf.Tensor): tf.Tensor3D {
    this.ensureBuilt();
    return tf.tidy(() => {
      const t = this.features(x, {});
      return (this.config.globalPool === 'avg' ? t : this.norm.call(t, {})) as tf.Tensor3D;
    });
  }

  /** Block indices of `indices` (see {@link ForwardIntermediatesOptions}), ascending, validated. */
  private blockIndices(caller: string, indices: number | number[] | undefined): number[] {
    const depth = this.config.depth;
    if (indices == null) return Array.from({ length: depth }, (_, i) => i);
    if (typeof indices === 'number') {
      if (!Number.isInteger(indices) || indices < 1 || indices > depth) {
        throw new ConfigError(
          `${caller}: indices as a number means the last n blocks, n in [1, ${depth}], got ${indices}`,
        );
      }
      return Array.from({ length: indices }, (_, i) => depth - indices + i);
    }
    if (!Array.isArray(indices) || indices.length === 0) {
      throw new ConfigError(
        `${caller}: indices must be a non-empty list of block indices or a number, got ${JSON.stringify(indices)}`,
      );
    }
    const out = new Set<number>();
    for (const i of indices) {
      if (!Number.isInteger(i) || i < -depth || i >= depth) {
        throw new ConfigError(
          `${caller}: block indices must be integers in [${-depth}, ${depth - 1}], got ${i}`,
        );
      }
      out.add(i < 0 ? depth + i : i);
    }
    return [...out].sort((a, b) => a - b);
  }

  /**
   * Inference: the outputs of chosen blocks, as token sequences or NHWC feature maps (timm's
   * `forward_intermediates`), for detection and segmentation heads. Blocks after the last one
   * asked for are not run. With `dynamicImgSize` the maps follow the input's patch grid. The
   * caller disposes the returned tensors.
   *
   * @example
   * const { intermediates } = vit.forwardIntermediates(images, { indices: [3, 7, 11] });
   * // three [B, 14, 14, D] maps for a 224 px ViT-B/16
   */
  forwardIntermediates(
    x: tf.Tensor,
    options: ForwardIntermediatesOptions = {},
  ): ViTIntermediatesOutput {
    const caller = 'VisionTransformer.forwardIntermediates';
    const wanted = this.blockIndices(caller, options.indices);
    const output = options.output ?? 'nhwc';
    if (output !== 'tokens' && output !== 'nhwc') {
      throw new ConfigError(
        `${caller}: output must be 'tokens' or 'nhwc', got ${JSON.stringify(output)}`,
      );
    }
    this.ensureBuilt();
    const grid = this.gridOf(x);
    const keep = new Set(wanted);
    const last = wanted[wanted.length - 1];
    const applyNorm = options.norm === true && this.config.globalPool !== 'avg';
    const intermediates = tf.tidy(() => {
      const out: tf.Tensor[] = [];
      let t = this.embedTokens(x, false);
      for (let i = 0; i <= last; i++) {
        t = this.blocks[i].call(t, {}) as tf.Tensor;
        if (!keep.has(i)) continue;
        let y = applyNorm ? (this.norm.call(t, {}) as tf.Tensor) : t;
        if (output === 'nhwc') {
          const [b, , d] = y.shape;
          const patches = tf.slice(y, [0, this.numPrefixTokens, 0], [-1, -1, -1]);
          y = tf.reshape(patches, [b, grid[0], grid[1], d]);
        }
        out.push(y);
      }
      return out;
    });
    return { intermediates, blocks: wanted, grid };
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
    this.ensureBuilt();
    const keep = new Set(wanted);
    const out = tf.tidy(() => {
      let t = this.embedTokens(x, false);
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
    assertInputShape('VisionTransformer', shape, this.inputPattern(), 'NHWC images');
    if (c.dynamicImgSize) {
      const [ph, pw] = c.patchSize;
      const [h, w] = [shape[1], shape[2]];
      if ((h != null && h % ph !== 0) || (w != null && w % pw !== 0)) {
        throw new InputShapeError(
          `VisionTransformer: image size [${h}, ${w}] must be divisible by patchSize [${ph}, ${pw}]`,
        );
      }
    }
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
