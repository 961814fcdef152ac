import * as tf from '@tensorflow/tfjs-core';
import type { Shape } from '@tensorflow/tfjs-layers';
import { type LayerVariable, layers } from '@tensorflow/tfjs-layers';
import { assertInputShape, InputShapeError, requireBoolean, requirePositiveInt } from '../errors';
import { patchGrid, type Size2D, toPair } from '../geometry';
import { linear } from '../ops/matmul';
import type { Kwargs, LayerArgs } from '../tfjs_types';
import { timmNormal, zeros } from './init';
import { readWeight } from './layer_utils';
import { type ArgFields, layerArgs, registerLayer } from './register';

export type { Size2D } from '../geometry';

/** Configuration of {@link PatchEmbed}. */
export interface PatchEmbedArgs extends LayerArgs {
  /** Input image size, one number for square images or `[height, width]`. Default 224. */
  imgSize?: Size2D;
  /** Patch size (kernel = stride of timm's conv projection). Default 16. */
  patchSize?: Size2D;
  /** Input channels. Default 3. */
  inChans?: number;
  /** Token width D. Default 768. */
  embedDim?: number;
  /** Whether the projection has a bias (timm: true). Default true. */
  bias?: boolean;
  /**
   * Accept any image size the patch size divides, not only `imgSize` (timm's
   * `dynamic_img_size`: `strict_img_size=False`). Default false.
   */
  dynamicImgSize?: boolean;
}

const PATCH_EMBED_FIELDS = {
  imgSize: true,
  patchSize: true,
  inChans: true,
  embedDim: true,
  bias: true,
  dynamicImgSize: true,
} satisfies ArgFields<PatchEmbedArgs>;

/**
 * Splits an NHWC image into non-overlapping patches and projects each to `embedDim`:
 * `[B, H, W, C] -> [B, gh * gw, D]`, row-major over the patch grid, like timm's
 * `PatchEmbed` (a Conv2d with kernel = stride = patch size, then flatten).
 *
 * The weights are a conv kernel `proj/kernel` in tfjs' HWIO layout `[ph, pw, C, D]` and
 * `proj/bias` `[D]`. The product is computed as patchify (reshape + transpose) followed by one
 * 2-D matrix product, which equals the strided convolution exactly, is faster on every backend
 * and trains on wasm, which has no Conv2D filter gradient.
 */
export class PatchEmbed extends layers.Layer {
  /** @nocollapse */
  static readonly className = 'VitTs>PatchEmbed';
  readonly imgSize: [number, number];
  readonly patchSize: [number, number];
  readonly inChans: number;
  readonly embedDim: number;
  readonly useBias: boolean;
  /** Whether inputs of other sizes (divisible by the patch size) are accepted. */
  readonly dynamicImgSize: boolean;
  /** Patch grid `[gh, gw]`. */
  readonly gridSize: [number, number];
  /** Number of patches `gh * gw`. */
  readonly numPatches: number;
  private kernel?: LayerVariable;
  private bias?: LayerVariable;

  constructor(args: PatchEmbedArgs = {}) {
    super(layerArgs('PatchEmbed', args, PATCH_EMBED_FIELDS, 'patch_embed'));
    this.imgSize = toPair('PatchEmbed', 'imgSize', args.imgSize ?? 224);
    this.patchSize = toPair('PatchEmbed', 'patchSize', args.patchSize ?? 16);
    this.inChans = requirePositiveInt('PatchEmbed', 'inChans', args.inChans ?? 3);
    this.embedDim = requirePositiveInt('PatchEmbed', 'embedDim', args.embedDim ?? 768);
    this.useBias = requireBoolean('PatchEmbed', 'bias', args.bias, true);
    this.dynamicImgSize = requireBoolean(
      'PatchEmbed',
      'dynamicImgSize',
      args.dynamicImgSize,
      false,
    );
    const grid = patchGrid('PatchEmbed', this.imgSize, this.patchSize);
    this.gridSize = grid.gridSize;
    this.numPatches = grid.numPatches;
  }

  private checkShape(shape: ReadonlyArray<number | null>): void {
    if (this.dynamicImgSize) {
      assertInputShape(
        'PatchEmbed',
        shape,
        [null, null, null, this.inChans],
        'NHWC images [batch, height, width, inChans]',
      );
      this.gridFor(shape[1] ?? null, shape[2] ?? null);
      return;
    }
    assertInputShape(
      'PatchEmbed',
      shape,
      [null, this.imgSize[0], this.imgSize[1], this.inChans],
      'NHWC images [batch, height, width, inChans]',
    );
  }

  /**
   * Patch grid `[rows, cols]` of an image of `height x width` (null = unknown, grid entry null).
   * Throws an {@link InputShapeError} when the patch size does not divide a known side.
   */
  gridFor(
    height: number | null | undefined,
    width: number | null | undefined,
  ): [number | null, number | null] {
    const [ph, pw] = this.patchSize;
    if ((height != null && height % ph !== 0) || (width != null && width % pw !== 0)) {
      throw new InputShapeError(
        `PatchEmbed: image size [${height}, ${width}] must be divisible by patchSize [${ph}, ${pw}]`,
      );
    }
    return [height == null ? null : height / ph, width == null ? null : width / pw];
  }

  override build(inputShape: Shape | Shape[]): void {
    this.checkShape(inputShape as Shape);
    const [ph, pw] = this.patchSize;
    this.kernel = this.addWeight(
      'proj/kernel',
      [ph, pw, this.inChans, this.embedDim],
      'float32',
      timmNormal(),
    );
    if (this.useBias) this.bias = this.addWeight('proj/bias', [this.embedDim], 'float32', zeros());
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    this.checkShape(x.shape);
    return tf.tidy(() => {
      const b = x.shape[0];
      const [gh, gw] = this.gridFor(x.shape[1], x.shape[2]) as [number, number];
      const [ph, pw] = this.patchSize;
      const c = this.inChans;
      // [B, H, W, C] -> [B*gh, ph, gw, pw*C] -> [B*gh, gw, ph, pw*C] -> [B*N, ph*pw*C]; the row
      // order (kh, kw, c) is the order of the HWIO kernel flattened to [ph*pw*C, D].
      const rows = tf.reshape(x, [b * gh, ph, gw, pw * c]);
      const patches = tf.reshape(tf.transpose(rows, [0, 2, 1, 3]), [b * gh * gw, ph * pw * c]);
      const k = tf.reshape(readWeight(this.kernel, 'PatchEmbed', 'proj/kernel'), [
        ph * pw * c,
        this.embedDim,
      ]);
      const y = linear(patches, k, this.bias?.read());
      return tf.reshape(y, [b, gh * gw, this.embedDim]);
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = inputShape as Shape;
    this.checkShape(shape);
    const [gh, gw] = this.gridFor(shape[1] ?? null, shape[2] ?? null);
    return [shape[0], gh != null && gw != null ? gh * gw : null, this.embedDim];
  }

  override getConfig(): import('@tensorflow/tfjs-core').serialization.ConfigDict {
    return {
      ...super.getConfig(),
      imgSize: [...this.imgSize],
      patchSize: [...this.patchSize],
      inChans: this.inChans,
      embedDim: this.embedDim,
      bias: this.useBias,
      dynamicImgSize: this.dynamicImgSize,
    };
  }
}
registerLayer(PatchEmbed);
