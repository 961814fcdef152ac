import type * as tf from '@tensorflow/tfjs-core';
import type { serialization } from '@tensorflow/tfjs-core';
import type { Shape } from '@tensorflow/tfjs-layers';
import { type LayerVariable, layers } from '@tensorflow/tfjs-layers';
import { assertInputShape, assertNonEmptyBatch, requirePositive } from '../errors';
import type { Kwargs, LayerArgs } from '../tfjs_types';
import { ones, zeros } from './init';
import { readWeight } from './layer_utils';
import { layerNorm } from './ops';
import { type ArgFields, layerArgs, registerLayer } from './register';

/** Configuration of {@link LayerNorm}. */
export interface LayerNormArgs extends LayerArgs {
  /** Added to the variance before the square root. timm uses 1e-6, HF ViT 1e-12. Default 1e-6. */
  epsilon?: number;
}

const LAYER_NORM_FIELDS = { epsilon: true } satisfies ArgFields<LayerNormArgs>;

/**
 * Layer normalization over the last axis, as `torch.nn.LayerNorm(dim, eps)`. Unlike
 * `tf.layers.layerNormalization` (epsilon 1e-3 by default), the default epsilon is timm's 1e-6.
 * Weights: `gamma` (scale, init 1) and `beta` (shift, init 0).
 */
export class LayerNorm extends layers.Layer {
  /** @nocollapse */
  static readonly className = 'VitTs>LayerNorm';
  readonly epsilon: number;
  private gamma?: LayerVariable;
  private beta?: LayerVariable;

  constructor(args: LayerNormArgs = {}) {
    super(layerArgs('LayerNorm', args, LAYER_NORM_FIELDS, 'layer_norm'));
    this.epsilon = requirePositive('LayerNorm', 'epsilon', args.epsilon ?? 1e-6);
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = inputShape as Array<number | null>;
    const dim = shape[shape.length - 1];
    if (dim == null) {
      assertInputShape(
        'LayerNorm',
        shape,
        [...shape.slice(0, -1).map(() => null), 1],
        'last axis known',
      );
    }
    this.gamma = this.addWeight('gamma', [dim as number], 'float32', ones());
    this.beta = this.addWeight('beta', [dim as number], 'float32', zeros());
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (x.rank >= 2) {
      assertNonEmptyBatch(
        'LayerNorm',
        x.shape,
        [null, ...x.shape.slice(1)],
        'features on the last axis',
      );
    }
    return layerNorm(
      x,
      readWeight(this.gamma, 'LayerNorm', 'gamma'),
      readWeight(this.beta, 'LayerNorm', 'beta'),
      this.epsilon,
    );
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    return inputShape;
  }

  override getConfig(): serialization.ConfigDict {
    return { ...super.getConfig(), epsilon: this.epsilon };
  }
}
registerLayer(LayerNorm);
