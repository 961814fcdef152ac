import * as tf from '@tensorflow/tfjs-core';
import { serialization } from '@tensorflow/tfjs-core';
import type { LayerVariable, Shape } from '@tensorflow/tfjs-layers';
import { layers, Sequential } from '@tensorflow/tfjs-layers';
import { ensureGradientKernels } from '../backends/conv_grad';
import {
  assertInputShape,
  ConfigError,
  formatShape,
  InputShapeError,
  requireBoolean,
  requirePositiveInt,
} from '../errors';
import { type Size2D, toPair } from '../geometry';
import { linear } from '../ops/matmul';
import type { Kwargs, LayerArgs } from '../tfjs_types';
import { CompositeLayer } from './composite';
import { timmNormal, zeros } from './init';
import { readWeight } from './layer_utils';
import { type ArgFields, layerArgs, registerLayer } from './register';

/** Configuration of {@link HybridEmbed}. */
export interface HybridEmbedArgs extends LayerArgs {
  /**
   * The CNN that turns NHWC images `[B, H, W, inChans]` into ONE NHWC feature map
   * `[B, h, w, C]`: any `tf.layers` layer or `tf.LayersModel` (e.g. a {@link ResNet18} with
   * `featuresOnly` and one `outIndices` entry). Its weights become this layer's weights, under
   * the backbone's name. Required.
   */
  backbone: layers.Layer;
  /** Input image size, square or `[height, width]`. Default 224. */
  imgSize?: Size2D;
  /** Input channels. Default 3. */
  inChans?: number;
  /**
   * Patch size ON THE FEATURE MAP: the projection is a convolution with kernel = stride =
   * patch size (timm's hybrid default 1: one token per feature-map cell). Default 1.
   */
  patchSize?: Size2D;
  /** Token width D. Default 768. */
  embedDim?: number;
  /** Whether the projection has a bias (timm: true). Default true. */
  bias?: boolean;
}

const HYBRID_EMBED_FIELDS = {
  backbone: true,
  imgSize: true,
  inChans: true,
  patchSize: true,
  embedDim: true,
  bias: true,
} satisfies ArgFields<HybridEmbedArgs>;

/** A layer (or model) given as `{ className, config }`, as tfjs serializes nested layers. */
interface SerializedLayer {
  className: string;
  config: serialization.ConfigDict;
}

/** `{ className, config }` of a layer, with its nested layers serialized the same way. */
export function serializeLayer(layer: layers.Layer): serialization.ConfigDict {
  return { className: layer.getClassName(), config: layer.getConfig() };
}

/**
 * Rebuilds a layer (or `tf.LayersModel`) from {@link serializeLayer}'s output through tfjs'
 * class registry; throws a {@link ConfigError} naming an unregistered class.
 */
export function deserializeLayer(value: unknown, owner: string, field: string): layers.Layer {
  const v = value as SerializedLayer;
  if (v == null || typeof v !== 'object' || typeof v.className !== 'string') {
    throw new ConfigError(
      `${owner}: ${field} must be a layer or { className, config }, got ${JSON.stringify(value)}`,
    );
  }
  const registry = serialization.SerializationMap.getMap().classNameMap;
  const entry = Object.hasOwn(registry, v.className) ? registry[v.className] : undefined;
  if (entry == null) {
    throw new ConfigError(
      `${owner}: ${field} has class '${v.className}', which is not registered with tfjs (import the module that defines it, or call serialization.registerClass)`,
    );
  }
  const [cls, fromConfig] = entry;
  return fromConfig(cls, v.config ?? {}) as unknown as layers.Layer;
}

/**
 * The NHWC output shape of `backbone` for images `[null, H, W, C]`, checked to be one rank-4
 * map with known spatial size.
 */
export function backboneOutputShape(
  backbone: layers.Layer,
  imgSize: [number, number],
  inChans: number,
  owner = 'HybridEmbed',
): [number, number, number] {
  const inShape = [null, imgSize[0], imgSize[1], inChans];
  let out: Shape | Shape[];
  try {
    // A tf.Sequential wires its inputs on first build; it knows its input shape already.
    if (backbone instanceof Sequential && !backbone.built) backbone.build();
    out = backbone.computeOutputShape(inShape);
  } catch (e) {
    throw new ConfigError(
      `${owner}: backbone '${backbone.name}' does not accept images ${formatShape(inShape)}: ${(e as Error).message}`,
    );
  }
  if (Array.isArray(out[0])) {
    throw new ConfigError(
      `${owner}: backbone '${backbone.name}' must output one feature map, got ${(out as Shape[]).length} (for a ResNet18 give one outIndices entry)`,
    );
  }
  const s = out as Shape;
  if (s.length !== 4 || s[1] == null || s[2] == null || s[3] == null) {
    throw new ConfigError(
      `${owner}: backbone '${backbone.name}' must output an NHWC feature map [batch, h, w, channels] of known size, got ${formatShape(s)}`,
    );
  }
  return [s[1], s[2], s[3]];
}

/**
 * Tokens from a CNN, timm's `HybridEmbed`: NHWC images -> `backbone` -> feature map
 * `[B, h, w, C]` -> projection (a convolution with kernel = stride = `patchSize` on the feature
 * map, default 1) -> tokens `[B, (h / p) * (w / p), D]`, row-major over the grid. It replaces
 * {@link PatchEmbed} at the start of a ViT; class token, position embedding and blocks follow
 * unchanged.
 *
 * Weights: the backbone's (under its name, e.g. `backbone/layer3/1/conv2/kernel`), then
 * `proj/kernel` (HWIO `[p, p, C, D]`, timm's `patch_embed.proj.weight`) and `proj/bias`.
 * Serializable when the backbone's class is registered with tfjs (all built-in layers,
 * `tf.LayersModel`, `tf.Sequential`, vit-ts layers).
 *
 * @example
 * const cnn = new ResNet18({ name: 'backbone', featuresOnly: true, outIndices: [3] });
 * const embed = new HybridEmbed({ backbone: cnn, imgSize: 224, embedDim: 192 });
 * // [B, 224, 224, 3] -> ResNet18 layer3 [B, 14, 14, 256] -> tokens [B, 196, 192]
 */
export class HybridEmbed extends CompositeLayer {
  /** @nocollapse */
  static readonly className = 'VitTs>HybridEmbed';
  /** The CNN. */
  readonly backbone: layers.Layer;
  readonly imgSize: [number, number];
  readonly inChans: number;
  readonly patchSize: [number, number];
  readonly embedDim: number;
  readonly useBias: boolean;
  /** Feature map of the backbone for `imgSize` images: `[h, w, C]`. */
  readonly featureShape: [number, number, number];
  /** Token grid `[h / p, w / p]`. */
  readonly gridSize: [number, number];
  /** Number of tokens. */
  readonly numPatches: number;
  private kernel?: LayerVariable;
  private bias?: LayerVariable;

  constructor(args: HybridEmbedArgs) {
    super(layerArgs('HybridEmbed', args, HYBRID_EMBED_FIELDS, 'hybrid_embed'));
    const o = 'HybridEmbed';
    if (!(args.backbone instanceof layers.Layer)) {
      throw new ConfigError(
        `${o}: backbone must be a tf.layers layer or a tf.LayersModel, got ${describe(args.backbone)}`,
      );
    }
    this.backbone = args.backbone;
    this.imgSize = toPair(o, 'imgSize', args.imgSize ?? 224);
    this.inChans = requirePositiveInt(o, 'inChans', args.inChans ?? 3);
    this.patchSize = toPair(o, 'patchSize', args.patchSize ?? 1);
    this.embedDim = requirePositiveInt(o, 'embedDim', args.embedDim ?? 768);
    this.useBias = requireBoolean(o, 'bias', args.bias, true);
    this.featureShape = backboneOutputShape(this.backbone, this.imgSize, this.inChans, o);
    const [h, w] = this.featureShape;
    const [ph, pw] = this.patchSize;
    if (h % ph !== 0 || w % pw !== 0) {
      throw new ConfigError(
        `${o}: the backbone's feature map [${h}, ${w}] (for imgSize [${this.imgSize.join(', ')}]) must be divisible by patchSize [${ph}, ${pw}]`,
      );
    }
    this.gridSize = [h / ph, w / pw];
    this.numPatches = this.gridSize[0] * this.gridSize[1];
  }

  private checkShape(shape: ReadonlyArray<number | null>): void {
    assertInputShape(
      'HybridEmbed',
      shape,
      [null, this.imgSize[0], this.imgSize[1], this.inChans],
      'NHWC images [batch, height, width, inChans]',
    );
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = inputShape as Shape;
    this.checkShape(shape);
    const [ph, pw] = this.patchSize;
    const c = this.featureShape[2];
    this.kernel = this.addWeight(
      'proj/kernel',
      [ph, pw, c, this.embedDim],
      'float32',
      timmNormal(),
    );
    if (this.useBias) this.bias = this.addWeight('proj/bias', [this.embedDim], 'float32', zeros());
    this.buildChild(this.backbone, shape);
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    this.checkShape(x.shape);
    // A user CNN built from tf.layers convolutions trains on wasm only with these kernels.
    ensureGradientKernels();
    return tf.tidy(() => {
      const out = this.backbone.apply(x, kwargs ?? {});
      const fmap = (Array.isArray(out) ? out[0] : out) as tf.Tensor;
      const [h, w, c] = this.featureShape;
      assertInputShape(
        'HybridEmbed',
        fmap.shape,
        [x.shape[0], h, w, c],
        `the backbone's feature map for imgSize [${this.imgSize.join(', ')}]`,
      );
      return this.project(fmap as tf.Tensor4D);
    });
  }

  /** `[B, h, w, C]` feature map -> `[B, N, D]` tokens: the strided conv as patchify + one 2-D product. */
  private project(fmap: tf.Tensor4D): tf.Tensor3D {
    const b = fmap.shape[0];
    const [gh, gw] = this.gridSize;
    const [ph, pw] = this.patchSize;
    const c = this.featureShape[2];
    const d = this.embedDim;
    // Rows in (kh, kw, c) order, the order of the HWIO kernel flattened to [ph*pw*C, D].
    const rows = tf.reshape(fmap, [b * gh, ph, gw, pw * c]);
    const patches =
      ph === 1
        ? tf.reshape(rows, [b * gh * gw, pw * c])
        : tf.reshape(tf.transpose(rows, [0, 2, 1, 3]), [b * gh * gw, ph * pw * c]);
    const k = tf.reshape(readWeight(this.kernel, 'HybridEmbed', 'proj/kernel'), [ph * pw * c, d]);
    const y = linear(patches, k, this.bias?.read());
    return tf.reshape(y, [b, gh * gw, d]);
  }

  /**
   * Token grid for an image of `height x width`: the grid at `imgSize` (the backbone's feature
   * map is sized for it); other sizes throw an {@link InputShapeError}. `null` = unknown.
   */
  gridFor(
    height: number | null | undefined,
    width: number | null | undefined,
  ): [number | null, number | null] {
    if (
      (height != null && height !== this.imgSize[0]) ||
      (width != null && width !== this.imgSize[1])
    ) {
      throw new InputShapeError(
        `HybridEmbed: expected images of [${this.imgSize.join(', ')}] (the size the backbone's feature map is built for), got [${height}, ${width}]`,
      );
    }
    return [height == null ? null : this.gridSize[0], width == null ? null : this.gridSize[1]];
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = inputShape as Shape;
    this.checkShape(shape);
    return [shape[0], this.numPatches, this.embedDim];
  }

  override getConfig(): serialization.ConfigDict {
    return {
      ...super.getConfig(),
      backbone: serializeLayer(this.backbone),
      imgSize: [...this.imgSize],
      inChans: this.inChans,
      patchSize: [...this.patchSize],
      embedDim: this.embedDim,
      bias: this.useBias,
    };
  }

  /** Rebuilds the backbone from its `{ className, config }` first. */
  static override fromConfig<T extends serialization.Serializable>(
    cls: serialization.SerializableConstructor<T>,
    config: serialization.ConfigDict,
  ): T {
    const { customObjects: _ignored, ...rest } = config;
    const backbone = deserializeLayer(rest['backbone'], 'HybridEmbed', 'backbone');
    return new cls({ ...rest, backbone } as unknown as serialization.ConfigDict);
  }
}
registerLayer(HybridEmbed);

function describe(v: unknown): string {
  if (v == null) return String(v);
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return `${typeof v} ${JSON.stringify(v)}`;
}
