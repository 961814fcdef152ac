import type { serialization } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { Shape } from '@tensorflow/tfjs-layers';
import { type LayerVariable, layers } from '@tensorflow/tfjs-layers';
import { assertInputShape, requirePositiveInt, requireRate } from '../errors';
import type { Kwargs, LayerArgs } from '../tfjs_types';
import { timmNormal, zeros } from './init';
import { readWeight } from './layer_utils';
import { dropout, gelu, linear } from './ops';
import { type ArgFields, layerArgs, registerLayer } from './register';

/** Configuration of {@link MLP}. */
export interface MLPArgs extends LayerArgs {
  /** Input width D. Required. */
  inFeatures: number;
  /** Hidden width (timm: `mlp_ratio * D`). Default `4 * inFeatures`. */
  hiddenFeatures?: number;
  /** Output width. Default `inFeatures`. */
  outFeatures?: number;
  /** Dropout after the activation and after fc2 while training. Default 0. */
  drop?: number;
}

const MLP_FIELDS = {
  inFeatures: true,
  hiddenFeatures: true,
  outFeatures: true,
  drop: true,
} satisfies ArgFields<MLPArgs>;

/**
 * The transformer feed-forward network, timm's `Mlp`: `fc2(drop(gelu(fc1(x))))` with exact
 * (erf) GELU. Works on any rank >= 2 (last axis = features). Weights: `fc1/kernel [D, hidden]`,
 * `fc1/bias`, `fc2/kernel [hidden, out]`, `fc2/bias`.
 */
export class MLP extends layers.Layer {
  /** @nocollapse */
  static readonly className = 'VitTs>MLP';
  readonly inFeatures: number;
  readonly hiddenFeatures: number;
  readonly outFeatures: number;
  readonly drop: number;
  private fc1Kernel?: LayerVariable;
  private fc1Bias?: LayerVariable;
  private fc2Kernel?: LayerVariable;
  private fc2Bias?: LayerVariable;

  constructor(args: MLPArgs) {
    super(layerArgs('MLP', args, MLP_FIELDS, 'mlp'));
    this.inFeatures = requirePositiveInt('MLP', 'inFeatures', args.inFeatures);
    this.hiddenFeatures = requirePositiveInt(
      'MLP',
      'hiddenFeatures',
      args.hiddenFeatures ?? 4 * this.inFeatures,
    );
    this.outFeatures = requirePositiveInt(
      'MLP',
      'outFeatures',
      args.outFeatures ?? this.inFeatures,
    );
    this.drop = requireRate('MLP', 'drop', args.drop ?? 0);
  }

  private checkShape(shape: ReadonlyArray<number | null>): void {
    if (shape.length < 2) {
      assertInputShape(
        'MLP',
        shape,
        [null, this.inFeatures],
        'features on the last axis, rank >= 2',
      );
    }
    assertInputShape(
      'MLP',
      shape,
      [...shape.slice(0, -1).map(() => null), this.inFeatures],
      'features on the last axis',
    );
  }

  override build(inputShape: Shape | Shape[]): void {
    this.checkShape(inputShape as Shape);
    this.fc1Kernel = this.addWeight(
      'fc1/kernel',
      [this.inFeatures, this.hiddenFeatures],
      'float32',
      timmNormal(),
    );
    this.fc1Bias = this.addWeight('fc1/bias', [this.hiddenFeatures], 'float32', zeros());
    this.fc2Kernel = this.addWeight(
      'fc2/kernel',
      [this.hiddenFeatures, this.outFeatures],
      'float32',
      timmNormal(),
    );
    this.fc2Bias = this.addWeight('fc2/bias', [this.outFeatures], 'float32', zeros());
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    this.checkShape(x.shape);
    const training = kwargs?.['training'] === true;
    return tf.tidy(() => {
      const h = gelu(
        linear(x, readWeight(this.fc1Kernel, 'MLP', 'fc1/kernel'), this.fc1Bias?.read()),
      );
      const y = linear(
        dropout(h, this.drop, training),
        readWeight(this.fc2Kernel, 'MLP', 'fc2/kernel'),
        this.fc2Bias?.read(),
      );
      return dropout(y, this.drop, training);
    });
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
      hiddenFeatures: this.hiddenFeatures,
      outFeatures: this.outFeatures,
      drop: this.drop,
    };
  }
}
registerLayer(MLP);
