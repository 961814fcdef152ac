import type { serialization } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { Shape } from '@tensorflow/tfjs-layers';
import { type LayerVariable, layers } from '@tensorflow/tfjs-layers';
import {
  assertInputShape,
  ConfigError,
  requireBoolean,
  requirePositiveInt,
  showValue,
} from '../errors';
import type { Kwargs, LayerArgs } from '../tfjs_types';
import { timmNormal, zeros } from './init';
import { readWeight } from './layer_utils';
import { linear } from './ops';
import { type ArgFields, layerArgs, registerLayer } from './register';

/** Configuration of {@link Linear}. */
export interface LinearArgs extends LayerArgs {
  /** Input features (last axis). Required. */
  inFeatures: number;
  /** Output features. Required. */
  outFeatures: number;
  /** Add a bias. Default true. */
  bias?: boolean;
  /** Standard deviation of the normal kernel init (timm 0.02). Default 0.02. */
  initStd?: number;
}

const LINEAR_FIELDS = {
  inFeatures: true,
  outFeatures: true,
  bias: true,
  initStd: true,
} satisfies ArgFields<LinearArgs>;

/**
 * `torch.nn.Linear` with timm's init, on the last axis of any rank >= 2 input. Used for
 * classifier heads. Weights: `kernel [in, out]` (transpose of PyTorch's `[out, in]`), `bias [out]`.
 */
export class Linear extends layers.Layer {
  /** @nocollapse */
  static readonly className = 'VitTs>Linear';
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly useBias: boolean;
  readonly initStd: number;
  private kernel?: LayerVariable;
  private bias?: LayerVariable;

  constructor(args: LinearArgs) {
    super(layerArgs('Linear', args, LINEAR_FIELDS, 'linear'));
    this.inFeatures = requirePositiveInt('Linear', 'inFeatures', args.inFeatures);
    this.outFeatures = requirePositiveInt('Linear', 'outFeatures', args.outFeatures);
    this.useBias = requireBoolean('Linear', 'bias', args.bias, true);
    const initStd = args.initStd ?? 0.02;
    if (typeof initStd !== 'number' || !Number.isFinite(initStd) || initStd < 0) {
      throw new ConfigError(
        `Linear: initStd must be a finite number >= 0, got ${showValue(initStd)}`,
      );
    }
    this.initStd = initStd;
  }

  private checkShape(shape: ReadonlyArray<number | null>): void {
    const expected =
      shape.length >= 2
        ? [...shape.slice(0, -1).map(() => null), this.inFeatures]
        : [null, this.inFeatures];
    assertInputShape('Linear', shape, expected, 'features on the last axis');
  }

  override build(inputShape: Shape | Shape[]): void {
    this.checkShape(inputShape as Shape);
    this.kernel = this.addWeight(
      'kernel',
      [this.inFeatures, this.outFeatures],
      'float32',
      timmNormal(this.initStd),
    );
    if (this.useBias) this.bias = this.addWeight('bias', [this.outFeatures], 'float32', zeros());
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    this.checkShape(x.shape);
    return tf.tidy(() => linear(x, readWeight(this.kernel, 'Linear', 'kernel'), this.bias?.read()));
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = inputShape as Shape;
    this.checkShape(shape);
    return [...shape.slice(0, -1), this.outFeatures];
  }

  override getConfig(): serialization.ConfigDict {
    return {
      ...super.getConfig(),
      inFeatures: this.inFeatures,
      outFeatures: this.outFeatures,
      bias: this.useBias,
      initStd: this.initStd,
    };
  }
}
registerLayer(Linear);
