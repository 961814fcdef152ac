import type { serialization } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable, Shape } from '@tensorflow/tfjs-layers';
import { layers } from '@tensorflow/tfjs-layers';
import { ensureGradientKernels } from '../backends/conv_grad';
import {
  assertInputShape,
  ConfigError,
  NotBuiltError,
  requireBoolean,
  requireNonNegativeInt,
  requirePositiveInt,
} from '../errors';
import { addBatchNormWeights, type BatchNormWeights, batchNorm } from '../layers/batch_norm';
import { CompositeLayer } from '../layers/composite';
import { kaimingNormalFanOut } from '../layers/init';
import { Linear } from '../layers/linear';
import { type ArgFields, layerArgs, registerLayer } from '../layers/register';
import { conv2d } from '../ops/conv';
import type { Kwargs, LayerArgs } from '../tfjs_types';

/** Kaiming-normal fan-out init of torchvision's ResNet convolutions (seeded by the library RNG). */
function kaimingFanOut() {
  return kaimingNormalFanOut();
}

/** `[[0,0],[p,p],[p,p],[0,0]]`-style symmetric padding as PyTorch's `padding=p`. */
function conv(x: tf.Tensor, kernel: LayerVariable, stride: number, pad: number): tf.Tensor4D {
  // src/ops/conv.ts: each backend's fast gradient forms; supplies Conv2DBackpropFilter where the
  // backend lacks it (wasm), so the model trains there.
  return conv2d(x, kernel.read(), stride, pad);
}

/** Configuration of {@link BasicBlock}. */
export interface BasicBlockArgs extends LayerArgs {
  /** Input channels. Required. */
  inChannels: number;
  /** Output channels. Required. */
  outChannels: number;
  /** Stride of the first 3x3 convolution (and of the shortcut). Default 1. */
  stride?: number;
}

const BASIC_BLOCK_FIELDS = {
  inChannels: true,
  outChannels: true,
  stride: true,
} satisfies ArgFields<BasicBlockArgs>;

/**
 * ResNet basic block, torchvision's `BasicBlock`: conv3x3(stride) - BN - ReLU - conv3x3 - BN,
 * plus the identity, or a 1x1 conv + BN shortcut when the stride or width changes; then ReLU.
 * Convolutions are bias-free and padded symmetrically as PyTorch (`padding=1`), which differs
 * from tfjs' `'same'` at stride 2. Weights: `conv1/kernel`, `bn1/*`, `conv2/kernel`, `bn2/*`,
 * `downsample/0/kernel`, `downsample/1/*` (HWIO kernels).
 */
export class BasicBlock extends layers.Layer {
  /** @nocollapse */
  static readonly className = 'VitTs>BasicBlock';
  readonly inChannels: number;
  readonly outChannels: number;
  readonly stride: number;
  private conv1?: LayerVariable;
  private bn1?: BatchNormWeights;
  private conv2?: LayerVariable;
  private bn2?: BatchNormWeights;
  private downConv?: LayerVariable;
  private downBn?: BatchNormWeights;

  constructor(args: BasicBlockArgs) {
    super(layerArgs('BasicBlock', args, BASIC_BLOCK_FIELDS, 'basic_block'));
    this.inChannels = requirePositiveInt('BasicBlock', 'inChannels', args.inChannels);
    this.outChannels = requirePositiveInt('BasicBlock', 'outChannels', args.outChannels);
    this.stride = requirePositiveInt('BasicBlock', 'stride', args.stride ?? 1);
  }

  /** Whether the shortcut needs a projection (1x1 conv + BN). */
  get hasDownsample(): boolean {
    return this.stride !== 1 || this.inChannels !== this.outChannels;
  }

  override build(inputShape: Shape | Shape[]): void {
    // Once per build, not per forward: supplies Conv2DBackpropFilter where a backend lacks it
    // (wasm), so the convolutions below can train there.
    ensureGradientKernels();
    assertInputShape(
      'BasicBlock',
      inputShape as Shape,
      [null, null, null, this.inChannels],
      'NHWC feature maps',
    );
    const ci = this.inChannels;
    const co = this.outChannels;
    this.conv1 = this.addWeight('conv1/kernel', [3, 3, ci, co], 'float32', kaimingFanOut());
    this.bn1 = addBatchNormWeights(this, 'bn1', co);
    this.conv2 = this.addWeight('conv2/kernel', [3, 3, co, co], 'float32', kaimingFanOut());
    this.bn2 = addBatchNormWeights(this, 'bn2', co);
    if (this.hasDownsample) {
      this.downConv = this.addWeight(
        'downsample/0/kernel',
        [1, 1, ci, co],
        'float32',
        kaimingFanOut(),
      );
      this.downBn = addBatchNormWeights(this, 'downsample/1', co);
    }
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    assertInputShape(
      'BasicBlock',
      x.shape,
      [null, null, null, this.inChannels],
      'NHWC feature maps',
    );
    const training = kwargs?.['training'] === true;
    return tf.tidy(() => {
      if (!this.conv1 || !this.bn1 || !this.conv2 || !this.bn2)
        throw new NotBuiltError('BasicBlock: call before build');
      let y = tf.relu(batchNorm(conv(x, this.conv1, this.stride, 1), this.bn1, training));
      y = batchNorm(conv(y, this.conv2, 1, 1), this.bn2, training);
      const shortcut =
        this.downConv && this.downBn
          ? batchNorm(conv(x, this.downConv, this.stride, 0), this.downBn, training)
          : x;
      return tf.relu(tf.add(y, shortcut));
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = inputShape as Shape;
    assertInputShape('BasicBlock', s, [null, null, null, this.inChannels], 'NHWC feature maps');
    const down = (n: number | null) => (n == null ? null : Math.floor((n - 1) / this.stride) + 1);
    return [s[0], down(s[1]), down(s[2]), this.outChannels];
  }

  override getConfig(): serialization.ConfigDict {
    return {
      ...super.getConfig(),
      inChannels: this.inChannels,
      outChannels: this.outChannels,
      stride: this.stride,
    };
  }
}
registerLayer(BasicBlock);

/** Stem of a ResNet: torchvision's ImageNet stem or the common CIFAR one. */
export type ResNetStem = 'imagenet' | 'cifar';

/** Configuration of {@link ResNet18}. */
export interface ResNet18Args extends LayerArgs {
  /** Classes of the `fc` head; 0 = no head (outputs 512 pooled features). Default 1000. */
  numClasses?: number;
  /**
   * `'imagenet'`: 7x7 stride-2 conv + 3x3 stride-2 max-pool (torchvision `resnet18`).
   * `'cifar'`: 3x3 stride-1 conv, no max-pool (for 32 px inputs). Default `'imagenet'`.
   */
  stem?: ResNetStem;
  /** Input channels. Default 3. */
  inChans?: number;
  /**
   * Feature extractor (timm's `features_only=True`): no pooling and no `fc`; the layer outputs
   * the feature maps chosen by {@link ResNet18Args.outIndices}, and stages after the last chosen
   * one are not built (no weights). Default false.
   */
  featuresOnly?: boolean;
  /**
   * With `featuresOnly`: which feature maps to output, numbered as timm's `feature_info`:
   * 0 = stem (after `bn1` + ReLU, 64 channels, stride 2; stride 1 with the CIFAR stem),
   * 1..4 = `layer1`..`layer4` (64, 128, 256, 512 channels; strides 4, 8, 16, 32 with the
   * ImageNet stem, 1, 2, 4, 8 with the CIFAR stem). One index = one NHWC tensor, several = a
   * list in increasing order. Default `[1, 2, 3, 4]`.
   */
  outIndices?: number[];
}

const RESNET18_FIELDS = {
  numClasses: true,
  stem: true,
  inChans: true,
  featuresOnly: true,
  outIndices: true,
} satisfies ArgFields<ResNet18Args>;

/** One feature map a {@link ResNet18} feature extractor can output (timm's `feature_info`). */
export interface ResNetFeatureInfo {
  /** Index for {@link ResNet18Args.outIndices}. */
  index: number;
  /** torchvision module whose output it is (`act1`, `layer1` .. `layer4`). */
  module: string;
  /** Channels. */
  numChs: number;
  /** Total stride relative to the input image. */
  reduction: number;
}

const STAGES: Array<[number, number]> = [
  [64, 1],
  [128, 2],
  [256, 2],
  [512, 2],
];

/**
 * ResNet-18 as one layer: stem, four stages of two {@link BasicBlock}s (64, 128, 256, 512
 * channels), global average pooling and the `fc` head. Input NHWC images of any size >= 32 px
 * (CIFAR stem: any size). Weight names follow torchvision: `conv1/kernel`, `bn1/*`,
 * `layer{1-4}/{0,1}/...`, `fc/kernel`, `fc/bias`. With `featuresOnly` it is a feature extractor
 * (timm's `features_only`): it outputs the stage maps chosen by `outIndices` (NHWC, strides 4,
 * 8, 16, 32 with the ImageNet stem) and builds no stage after the last one: the backbone of a
 * hybrid ViT (see `HybridEmbed`, `createHybridViT`).
 */
export class ResNet18 extends CompositeLayer {
  /** @nocollapse */
  static readonly className = 'VitTs>ResNet18';
  readonly numClasses: number;
  readonly stem: ResNetStem;
  readonly inChans: number;
  /** The eight basic blocks, `layer1/0` ... `layer4/1`. */
  blocks: BasicBlock[] = [];
  fc: Linear | null = null;
  /** Whether the layer is a feature extractor (see {@link ResNet18Args.featuresOnly}). */
  readonly featuresOnly: boolean;
  /** Feature maps output by a feature extractor, increasing; empty for a classifier. */
  readonly outIndices: number[];
  private conv1?: LayerVariable;
  private bn1?: BatchNormWeights;

  constructor(args: ResNet18Args = {}) {
    super(layerArgs('ResNet18', args, RESNET18_FIELDS, 'resnet18'));
    this.numClasses = requireNonNegativeInt('ResNet18', 'numClasses', args.numClasses ?? 1000);
    const stem = args.stem ?? 'imagenet';
    if (stem !== 'imagenet' && stem !== 'cifar') {
      throw new ConfigError(`ResNet18: stem must be 'imagenet' or 'cifar', got '${String(stem)}'`);
    }
    this.stem = stem;
    this.inChans = requirePositiveInt('ResNet18', 'inChans', args.inChans ?? 3);
    this.featuresOnly = requireBoolean('ResNet18', 'featuresOnly', args.featuresOnly, false);
    this.outIndices = this.featuresOnly ? resolveOutIndices(args.outIndices) : [];
    if (!this.featuresOnly && args.outIndices != null) {
      throw new ConfigError(
        `ResNet18: outIndices [${String(args.outIndices)}] needs featuresOnly: true (a classifier outputs logits)`,
      );
    }
  }

  /**
   * The five feature maps of this ResNet (timm's `feature_info`): stem, `layer1` .. `layer4`,
   * with channels and strides for this stem.
   */
  get featureInfo(): ResNetFeatureInfo[] {
    const stemStride = this.stem === 'imagenet' ? 2 : 1;
    const stageStride = this.stem === 'imagenet' ? 4 : 1;
    return [
      { index: 0, module: 'act1', numChs: 64, reduction: stemStride },
      ...STAGES.map(([numChs], s) => ({
        index: s + 1,
        module: `layer${s + 1}`,
        numChs,
        reduction: stageStride * 2 ** s,
      })),
    ];
  }

  /** Stages (`layer1`..`layer4`) that are built: all for a classifier, up to the last output otherwise. */
  private get numStages(): number {
    return this.featuresOnly ? Math.max(...this.outIndices) : STAGES.length;
  }

  private checkShape(shape: ReadonlyArray<number | null>): void {
    assertInputShape(
      'ResNet18',
      shape,
      [null, null, null, this.inChans],
      'NHWC images [batch, height, width, inChans]',
    );
  }

  override build(inputShape: Shape | Shape[]): void {
    // Once per build, not per forward: supplies Conv2DBackpropFilter where a backend lacks it
    // (wasm), so the convolutions below can train there.
    ensureGradientKernels();
    const shape = inputShape as Array<number | null>;
    this.checkShape(shape);
    const k = this.stem === 'imagenet' ? 7 : 3;
    this.conv1 = this.addWeight(
      'conv1/kernel',
      [k, k, this.inChans, 64],
      'float32',
      kaimingFanOut(),
    );
    this.bn1 = addBatchNormWeights(this, 'bn1', 64);
    let inC = 64;
    this.blocks = [];
    // Track spatial sizes (when known) so that each block reports its real output shape.
    const down = (n: number | null, k: number, st: number, p: number) =>
      n == null ? null : Math.floor((n + 2 * p - k) / st) + 1;
    let h = shape[1];
    let w = shape[2];
    if (this.stem === 'imagenet') {
      h = down(down(h, 7, 2, 3), 3, 2, 1);
      w = down(down(w, 7, 2, 3), 3, 2, 1);
    }
    let featureShape: Array<number | null> = [shape[0], h, w, 64];
    STAGES.slice(0, this.numStages).forEach(([outC, stride], s) => {
      for (let i = 0; i < 2; i++) {
        const block = new BasicBlock({
          name: `layer${s + 1}/${i}`,
          inChannels: inC,
          outChannels: outC,
          stride: i === 0 ? stride : 1,
        });
        featureShape = this.buildChild(block, featureShape);
        this.blocks.push(block);
        inC = outC;
      }
    });
    if (this.numClasses > 0 && !this.featuresOnly) {
      this.fc = new Linear({ name: 'fc', inFeatures: 512, outFeatures: this.numClasses });
      this.buildChild(this.fc, [shape[0], 512]);
    }
    this.built = true;
  }

  /**
   * Runs the stem and the built stages; returns the feature maps whose index (0 = stem after
   * ReLU, 1..4 = `layer1`..`layer4`) is in `wanted`, in order, and the last stage's output.
   */
  private trunk(
    x: tf.Tensor,
    kwargs: Kwargs,
    wanted: ReadonlySet<number>,
  ): { maps: tf.Tensor[]; last: tf.Tensor } {
    const training = kwargs?.['training'] === true;
    if (!this.conv1 || !this.bn1) throw new NotBuiltError('ResNet18: call before build');
    const maps: tf.Tensor[] = [];
    let y: tf.Tensor;
    if (this.stem === 'imagenet') {
      y = tf.relu(batchNorm(conv(x, this.conv1, 2, 3), this.bn1, training));
      if (wanted.has(0)) maps.push(y);
      y = tf.maxPool(y as tf.Tensor4D, 3, 2, 1);
    } else {
      y = tf.relu(batchNorm(conv(x, this.conv1, 1, 1), this.bn1, training));
      if (wanted.has(0)) maps.push(y);
    }
    this.blocks.forEach((block, i) => {
      y = block.call(y, kwargs) as tf.Tensor;
      // Blocks come in pairs: block 2s+1 ends stage s+1.
      if (i % 2 === 1 && wanted.has((i + 1) / 2)) maps.push(y);
    });
    return { maps, last: y };
  }

  /** Pooled 512-d features `[B, 512]` (before `fc`). */
  private features(x: tf.Tensor, kwargs: Kwargs): tf.Tensor {
    return tf.mean(this.trunk(x, kwargs, new Set()).last, [1, 2]);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    this.checkShape(x.shape);
    if (this.featuresOnly) {
      return tf.tidy(() => {
        const { maps } = this.trunk(x, kwargs, new Set(this.outIndices));
        return maps.length === 1 ? (maps[0] as tf.Tensor) : maps;
      });
    }
    return tf.tidy(() => {
      const f = this.features(x, kwargs);
      return this.fc ? (this.fc.call(f, kwargs) as tf.Tensor) : f;
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    const shape = inputShape as Shape;
    this.checkShape(shape);
    if (!this.featuresOnly) return [shape[0], this.numClasses > 0 ? this.numClasses : 512];
    const shapes = this.outIndices.map((i) => {
      const [h, w] = resNetFeatureSize([shape[1], shape[2]], this.stem, i);
      return [shape[0], h, w, (this.featureInfo[i] as ResNetFeatureInfo).numChs];
    });
    return shapes.length === 1 ? (shapes[0] as Shape) : shapes;
  }

  override getConfig(): serialization.ConfigDict {
    return {
      ...super.getConfig(),
      numClasses: this.numClasses,
      stem: this.stem,
      inChans: this.inChans,
      ...(this.featuresOnly ? { featuresOnly: true, outIndices: [...this.outIndices] } : {}),
    };
  }
}
registerLayer(ResNet18);

function resolveOutIndices(value: unknown): number[] {
  const indices = value ?? [1, 2, 3, 4];
  const ok =
    Array.isArray(indices) &&
    indices.length > 0 &&
    indices.every((i) => Number.isInteger(i) && i >= 0 && i <= 4) &&
    new Set(indices).size === indices.length;
  if (!ok) {
    throw new ConfigError(
      `ResNet18: outIndices must be a non-empty list of distinct integers in [0, 4] (0 = stem, 1..4 = layer1..layer4), got ${JSON.stringify(value)}`,
    );
  }
  return [...(indices as number[])].sort((a, b) => a - b);
}

/**
 * Spatial size `[h, w]` of the ResNet18 feature map `index` (0 = stem, 1..4 = `layer1` ..
 * `layer4`) for an input of `[height, width]` (`null` = unknown), with PyTorch's conv arithmetic
 * (`floor((n + 2p - k) / s) + 1`). Pure.
 */
export function resNetFeatureSize(
  size: [number | null, number | null],
  stem: ResNetStem,
  index: number,
): [number | null, number | null] {
  const down = (n: number | null, k: number, st: number, p: number) =>
    n == null ? null : Math.floor((n + 2 * p - k) / st) + 1;
  const one = (n: number | null) => {
    let m = stem === 'imagenet' ? down(n, 7, 2, 3) : n;
    if (index === 0) return m;
    if (stem === 'imagenet') m = down(m, 3, 2, 1);
    for (let s = 2; s <= index; s++) m = down(m, 3, 2, 1);
    return m;
  };
  return [one(size[0]), one(size[1])];
}
