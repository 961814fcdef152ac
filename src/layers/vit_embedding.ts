import type { serialization } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { Shape } from '@tensorflow/tfjs-layers';
import { type LayerVariable, layers } from '@tensorflow/tfjs-layers';
import {
  assertInputShape,
  requireNonNegativeInt,
  requirePositiveInt,
  requireRate,
} from '../errors';
import { numPrefixTokens } from '../geometry';
import type { Kwargs, LayerArgs } from '../tfjs_types';
import { timmNormal } from './init';
import { readWeight } from './layer_utils';
import { dropout } from './ops';
import { registerLayer, withDefaultName } from './register';

/** Configuration of {@link ViTEmbedding}. */
export interface ViTEmbeddingArgs extends LayerArgs {
  /** Number of patch tokens N coming in. Required. */
  numPatches: number;
  /** Token width D. Required. */
  embedDim: number;
  /** Prepend a learned class token (timm `class_token=True`). Default true. */
  classToken?: boolean;
  /** Number of learned register tokens placed after the class token. Default 0. */
  numRegTokens?: number;
  /** Dropout on the embedded tokens (timm `pos_drop_rate`). Default 0. */
  dropRate?: number;
}

/**
 * Prepends the class token (and optional register tokens) to the patch tokens and adds a learned
 * 1-D position embedding, as timm's `VisionTransformer._pos_embed`: `[B, N, D] -> [B, P + N, D]`
 * with P prefix tokens. Weights: `cls_token [1, 1, D]` (init normal, std 1e-6 as timm),
 * `reg_token [1, R, D]`, `pos_embed [1, P + N, D]` (init normal, std 0.02).
 */
export class ViTEmbedding extends layers.Layer {
  /** @nocollapse */
  static readonly className = 'VitTs>ViTEmbedding';
  readonly numPatches: number;
  readonly embedDim: number;
  readonly classToken: boolean;
  readonly numRegTokens: number;
  readonly dropRate: number;
  private clsToken?: LayerVariable;
  private regToken?: LayerVariable;
  private posEmbed?: LayerVariable;

  constructor(args: ViTEmbeddingArgs) {
    super(withDefaultName(args, 'vit_embedding'));
    this.numPatches = requirePositiveInt('ViTEmbedding', 'numPatches', args?.numPatches);
    this.embedDim = requirePositiveInt('ViTEmbedding', 'embedDim', args.embedDim);
    this.classToken = args.classToken ?? true;
    this.numRegTokens = requireNonNegativeInt(
      'ViTEmbedding',
      'numRegTokens',
      args.numRegTokens ?? 0,
    );
    this.dropRate = requireRate('ViTEmbedding', 'dropRate', args.dropRate ?? 0);
  }

  /** Number of prefix tokens (class + register) placed before the patch tokens. */
  get numPrefixTokens(): number {
    return numPrefixTokens(this);
  }

  private checkShape(shape: ReadonlyArray<number | null>): void {
    assertInputShape(
      'ViTEmbedding',
      shape,
      [null, this.numPatches, this.embedDim],
      'patch tokens [batch, numPatches, embedDim]',
    );
  }

  override build(inputShape: Shape | Shape[]): void {
    this.checkShape(inputShape as Shape);
    const d = this.embedDim;
    if (this.classToken)
      this.clsToken = this.addWeight('cls_token', [1, 1, d], 'float32', timmNormal(1e-6));
    if (this.numRegTokens > 0) {
      this.regToken = this.addWeight(
        'reg_token',
        [1, this.numRegTokens, d],
        'float32',
        timmNormal(1e-6),
      );
    }
    this.posEmbed = this.addWeight(
      'pos_embed',
      [1, this.numPrefixTokens + this.numPatches, d],
      'float32',
      timmNormal(),
    );
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    this.checkShape(x.shape);
    return tf.tidy(() => {
      const b = x.shape[0];
      const parts: tf.Tensor[] = [];
      if (this.clsToken) parts.push(tf.tile(this.clsToken.read(), [b, 1, 1]));
      if (this.regToken) parts.push(tf.tile(this.regToken.read(), [b, 1, 1]));
      parts.push(x);
      const tokens = parts.length > 1 ? tf.concat(parts, 1) : x;
      const y = tf.add(tokens, readWeight(this.posEmbed, 'ViTEmbedding', 'pos_embed'));
      return dropout(y, this.dropRate, kwargs?.['training'] === true);
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = inputShape as Shape;
    this.checkShape(shape);
    return [shape[0], this.numPrefixTokens + this.numPatches, this.embedDim];
  }

  override getConfig(): serialization.ConfigDict {
    return {
      ...super.getConfig(),
      numPatches: this.numPatches,
      embedDim: this.embedDim,
      classToken: this.classToken,
      numRegTokens: this.numRegTokens,
      dropRate: this.dropRate,
    };
  }
}
registerLayer(ViTEmbedding);
