import type { serialization } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable, Shape } from '@tensorflow/tfjs-layers';
import { layers } from '@tensorflow/tfjs-layers';
import { ensureGradientKernels } from '../backends/conv_grad';
import {
  assertInputShape,
  ConfigError,
  NotBuiltError,
  requireNonNegativeInt,
  requirePositiveInt,
} from '../errors';
import { addBatchNormWeights, type BatchNormWeights, batchNorm } from '../layers/batch_norm';
import { CompositeLayer } from '../layers/composite';
import { kaimingNormalFanOut } from '../layers/init';
import { Linear } from '../layers/linear';
import { registerLayer, withDefaultName } from '../layers/register';
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
    super(withDefaultName(args, 'basic_block'));
    this.inChannels = requirePositiveInt('BasicBlock', 'inChannels', args?.inChannels);
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
 * `layer{1-4}/{0,1}/...`, `fc/kernel`, `fc/bias`.
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
  private conv1?: LayerVariable;
  private bn1?: BatchNormWeights;

  constructor(args: ResNet18Args = {}) {
    super(withDefaultName(args, 'resnet18'));
    this.numClasses = requireNonNegativeInt('ResNet18', 'numClasses', args.numClasses ?? 1000);
    const stem = args.stem ?? 'imagenet';
    if (stem !== 'imagenet' && stem !== 'cifar') {
      throw new ConfigError(`ResNet18: stem must be 'imagenet' or 'cifar', got '${String(stem)}'`);
    }
    this.stem = stem;
    this.inChans = requirePositiveInt('ResNet18', 'inChans', args.inChans ?? 3);
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
    STAGES.forEach(([outC, stride], s) => {
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
    if (this.numClasses > 0) {
      this.fc = new Linear({ name: 'fc', inFeatures: 512, outFeatures: this.numClasses });
      this.buildChild(this.fc, [shape[0], 512]);
    }
    this.built = true;
  }

  /** Pooled 512-d features `[B, 512]` (before `fc`). */
  private features(x: tf.Tensor, kwargs: Kwargs): tf.Tensor {
    const training = kwargs?.['training'] === true;
    if (!this.conv1 || !this.bn1) throw new NotBuiltError('ResNet18: call before build');
    let y: tf.Tensor;
    if (this.stem === 'imagenet') {
      y = tf.relu(batchNorm(conv(x, this.conv1, 2, 3), this.bn1, training));
      y = tf.maxPool(y as tf.Tensor4D, 3, 2, 1);
    } else {
      y = tf.relu(batchNorm(conv(x, this.conv1, 1, 1), this.bn1, training));
    }
    for (const block of this.blocks) y = block.call(y, kwargs) as tf.Tensor;
    return tf.mean(y, [1, 2]);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    this.checkShape(x.shape);
    return tf.tidy(() => {
      const f = this.features(x, kwargs);
      return this.fc ? (this.fc.call(f, kwargs) as tf.Tensor) : f;
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = inputShape as Shape;
    this.checkShape(shape);
    return [shape[0], this.numClasses > 0 ? this.numClasses : 512];
  }

  override getConfig(): serialization.ConfigDict {
    return {
      ...super.getConfig(),
      numClasses: this.numClasses,
      stem: this.stem,
      inChans: this.inChans,
    };
  }
}
registerLayer(ResNet18);
