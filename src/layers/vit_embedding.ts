import type { serialization } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { Shape } from '@tensorflow/tfjs-layers';
import { type LayerVariable, layers } from '@tensorflow/tfjs-layers';
import {
  assertInputShape,
  ConfigError,
  InputShapeError,
  requireBoolean,
  requireNonNegativeInt,
  requirePositiveInt,
  requireRate,
} from '../errors';
import { numPrefixTokens } from '../geometry';
import type { Kwargs, LayerArgs } from '../tfjs_types';
import { resamplePosEmbed, resize2d } from '../weights/resample';
import { timmNormal, zeros } from './init';
import { readWeight } from './layer_utils';
import { dropout } from './ops';
import { type PosEmbedKind, requirePosEmbedKind, sincos2dPosEmbed } from './pos_embed';
import { type ArgFields, layerArgs, registerLayer } from './register';

/** Configuration of {@link ViTEmbedding}. */
export interface ViTEmbeddingArgs extends LayerArgs {
  /** Number of patch tokens N coming in. Required. */
  numPatches: number;
  /** Token width D. Required. */
  embedDim: number;
  /** Prepend a learned class token (timm `class_token=True`). Default true. */
  classToken?: boolean;
  /** DeiT's distillation token, placed right after the class token (timm `dist_token`). Default false. */
  distToken?: boolean;
  /** Number of learned register tokens placed after the class (and distillation) token. Default 0. */
  numRegTokens?: number;
  /** Dropout on the embedded tokens (timm `pos_drop_rate`). Default 0. */
  dropRate?: number;
  /** Kind of position embedding (see {@link PosEmbedKind}). Default `'learned'`. */
  posEmbed?: PosEmbedKind;
  /**
   * Patch grid `[rows, cols]` with `rows * cols = numPatches`. Needed by `'learned2d'` and
   * `'sincos'` and for resampling; default: the square grid of `numPatches`.
   */
  gridSize?: [number, number];
}

const VIT_EMBEDDING_FIELDS = {
  numPatches: true,
  embedDim: true,
  classToken: true,
  distToken: true,
  numRegTokens: true,
  dropRate: true,
  posEmbed: true,
  gridSize: true,
} satisfies ArgFields<ViTEmbeddingArgs>;

/**
 * Prepends the class token (and optional distillation and register tokens) to the patch tokens
 * and adds a position embedding, as timm's `VisionTransformer._pos_embed`:
 * `[B, N, D] -> [B, P + N, D]` with P prefix tokens. Weights: `cls_token [1, 1, D]` (init
 * normal, std 1e-6 as timm), `dist_token [1, 1, D]`, `reg_token [1, R, D]` and, by
 * {@link PosEmbedKind}: `pos_embed [1, P + N, D]` (`'learned'`, init normal std 0.02; `'sincos'`,
 * fixed and not trainable), `pos_embed_row [1, gh, D]` + `pos_embed_col [1, gw, D]`
 * (`'learned2d'`), nothing (`'none'`).
 *
 * {@link ViTEmbedding.embedGrid} takes another patch grid than the one built for and resamples
 * the position embedding to it (bicubic, antialiased, as timm's `dynamic_img_size`).
 */
export class ViTEmbedding extends layers.Layer {
  /** @nocollapse */
  static readonly className = 'VitTs>ViTEmbedding';
  readonly numPatches: number;
  readonly embedDim: number;
  readonly classToken: boolean;
  readonly distToken: boolean;
  readonly numRegTokens: number;
  readonly dropRate: number;
  readonly posEmbedKind: PosEmbedKind;
  /** Patch grid `[rows, cols]` the position embedding was built for. */
  readonly gridSize: [number, number];
  private clsToken?: LayerVariable;
  private distTokenW?: LayerVariable;
  private regToken?: LayerVariable;
  private posEmbed?: LayerVariable;
  private posRow?: LayerVariable;
  private posCol?: LayerVariable;

  constructor(args: ViTEmbeddingArgs) {
    super(layerArgs('ViTEmbedding', args, VIT_EMBEDDING_FIELDS, 'vit_embedding'));
    const o = 'ViTEmbedding';
    this.numPatches = requirePositiveInt(o, 'numPatches', args.numPatches);
    this.embedDim = requirePositiveInt(o, 'embedDim', args.embedDim);
    this.classToken = requireBoolean(o, 'classToken', args.classToken, true);
    this.distToken = requireBoolean(o, 'distToken', args.distToken, false);
    if (this.distToken && !this.classToken) {
      throw new ConfigError(`${o}: distToken: true needs classToken: true (got classToken: false)`);
    }
    this.numRegTokens = requireNonNegativeInt(o, 'numRegTokens', args.numRegTokens ?? 0);
    this.dropRate = requireRate(o, 'dropRate', args.dropRate ?? 0);
    this.posEmbedKind = requirePosEmbedKind(o, args.posEmbed ?? 'learned');
    if (args.gridSize != null) {
      const g = args.gridSize;
      if (!Array.isArray(g) || g.length !== 2) {
        throw new ConfigError(`${o}: gridSize must be [rows, cols], got ${JSON.stringify(g)}`);
      }
      requirePositiveInt(o, 'gridSize[0]', g[0]);
      requirePositiveInt(o, 'gridSize[1]', g[1]);
      if (g[0] * g[1] !== this.numPatches) {
        throw new ConfigError(
          `${o}: gridSize [${g.join(', ')}] has ${g[0] * g[1]} cells, numPatches is ${this.numPatches}`,
        );
      }
      this.gridSize = [g[0], g[1]];
    } else {
      const side = Math.round(Math.sqrt(this.numPatches));
      if (side * side !== this.numPatches && this.posEmbedKind !== 'learned') {
        throw new ConfigError(
          `${o}: posEmbed '${this.posEmbedKind}' needs gridSize [rows, cols]: ${this.numPatches} patches are not a square grid`,
        );
      }
      this.gridSize = side * side === this.numPatches ? [side, side] : [1, this.numPatches];
    }
    if (this.posEmbedKind === 'sincos' && this.embedDim % 4 !== 0) {
      throw new ConfigError(
        `${o}: posEmbed 'sincos' needs embedDim divisible by 4, got ${this.embedDim}`,
      );
    }
  }

  /** Number of prefix tokens (class, distillation, register) placed before the patch tokens. */
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
    if (this.distToken)
      this.distTokenW = this.addWeight('dist_token', [1, 1, d], 'float32', timmNormal());
    if (this.numRegTokens > 0) {
      this.regToken = this.addWeight(
        'reg_token',
        [1, this.numRegTokens, d],
        'float32',
        timmNormal(1e-6),
      );
    }
    const rows = this.numPrefixTokens + this.numPatches;
    if (this.posEmbedKind === 'learned') {
      this.posEmbed = this.addWeight('pos_embed', [1, rows, d], 'float32', timmNormal());
    } else if (this.posEmbedKind === 'sincos') {
      // Fixed, as MAE's `requires_grad=False` parameter; stored so checkpoints carry it.
      this.posEmbed = this.addWeight(
        'pos_embed',
        [1, rows, d],
        'float32',
        zeros(),
        undefined,
        false,
      );
      const table = sincos2dPosEmbed(d, this.gridSize, this.numPrefixTokens);
      const t = tf.tensor3d(table, [1, rows, d]);
      this.posEmbed.write(t);
      t.dispose();
    } else if (this.posEmbedKind === 'learned2d') {
      const [gh, gw] = this.gridSize;
      this.posRow = this.addWeight('pos_embed_row', [1, gh, d], 'float32', timmNormal());
      this.posCol = this.addWeight('pos_embed_col', [1, gw, d], 'float32', timmNormal());
    }
    this.built = true;
  }

  /** The position embedding for a `[rows, cols]` grid, `[1, P + rows * cols, D]`, or null. */
  private positions(grid: [number, number]): tf.Tensor | null {
    const [gh, gw] = grid;
    const same = gh === this.gridSize[0] && gw === this.gridSize[1];
    const d = this.embedDim;
    if (this.posEmbedKind === 'none') return null;
    if (this.posEmbedKind === 'learned2d') {
      let row = readWeight(this.posRow, 'ViTEmbedding', 'pos_embed_row');
      let col = readWeight(this.posCol, 'ViTEmbedding', 'pos_embed_col');
      // Each table is a 1-D signal: resized along its own axis like a [1, n, 1, D] image.
      const opts = { method: 'bicubic', antialias: true } as const;
      if (gh !== this.gridSize[0])
        row = resize2d(tf.reshape(row, [1, this.gridSize[0], 1, d]), [gh, 1], opts);
      if (gw !== this.gridSize[1])
        col = resize2d(tf.reshape(col, [1, 1, this.gridSize[1], d]), [1, gw], opts);
      const grid2d = tf.add(tf.reshape(row, [gh, 1, d]), tf.reshape(col, [1, gw, d]));
      const patches = tf.reshape(grid2d, [1, gh * gw, d]);
      const p = this.numPrefixTokens;
      return p === 0 ? patches : tf.concat([tf.zeros([1, p, d]), patches], 1);
    }
    const table = readWeight(this.posEmbed, 'ViTEmbedding', 'pos_embed');
    if (same) return table;
    return resamplePosEmbed(table, {
      newGrid: [gh, gw],
      oldGrid: this.gridSize,
      numPrefixTokens: this.numPrefixTokens,
      method: 'bicubic',
      antialias: true,
    });
  }

  /**
   * Embeds patch tokens `[B, rows * cols, D]` of a `[rows, cols]` patch grid, which may differ
   * from the grid the layer was built for: the position embedding is then resampled (bicubic,
   * antialiased, prefix rows kept), as timm's `_pos_embed` with `dynamic_img_size`.
   */
  embedGrid(x: tf.Tensor, grid: [number, number], training = false): tf.Tensor {
    const n = grid[0] * grid[1];
    if (x.rank !== 3 || x.shape[1] !== n || x.shape[2] !== this.embedDim) {
      throw new InputShapeError(
        `ViTEmbedding: expected patch tokens [batch, ${n}, ${this.embedDim}] for grid [${grid.join(', ')}], got [${x.shape.join(', ')}]`,
      );
    }
    return tf.tidy(() => {
      const b = x.shape[0];
      const parts: tf.Tensor[] = [];
      if (this.clsToken) parts.push(tf.tile(this.clsToken.read(), [b, 1, 1]));
      if (this.distTokenW) parts.push(tf.tile(this.distTokenW.read(), [b, 1, 1]));
      if (this.regToken) parts.push(tf.tile(this.regToken.read(), [b, 1, 1]));
      parts.push(x);
      const tokens = parts.length > 1 ? tf.concat(parts, 1) : x;
      const pos = this.positions(grid);
      const y = pos ? tf.add(tokens, pos) : tokens;
      return dropout(y, this.dropRate, training);
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    this.checkShape(x.shape);
    return this.embedGrid(x, this.gridSize, kwargs?.['training'] === true);
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
      distToken: this.distToken,
      numRegTokens: this.numRegTokens,
      dropRate: this.dropRate,
      posEmbed: this.posEmbedKind,
      gridSize: [...this.gridSize],
    };
  }
}
registerLayer(ViTEmbedding);
