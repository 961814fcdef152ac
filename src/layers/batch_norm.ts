import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable, layers } from '@tensorflow/tfjs-layers';
import { productForm } from '../ops/matmul';
import { batchNormTrain } from '../ops/norm';
import { addWeightTo } from '../tfjs_types';
import { ones, zeros } from './init';

/** The four variables of one BatchNorm2d: scale, shift and running statistics. */
export interface BatchNormWeights {
  gamma: LayerVariable;
  beta: LayerVariable;
  movingMean: LayerVariable;
  movingVariance: LayerVariable;
}

/** PyTorch BatchNorm2d defaults: epsilon 1e-5, running-stat momentum 0.1. */
export const BN_EPSILON = 1e-5;
export const BN_MOMENTUM = 0.1;

/**
 * Running-stat momentum used instead of {@link BN_MOMENTUM} while set; src/train/batch_norm_stats.ts
 * sets it to 1/k for the k-th batch so the running statistics become the plain average of the
 * batches' statistics (PyTorch's `momentum=None`). Not public: one owner, always reset in `finally`.
 */
let momentumOverride: number | null = null;

/** Sets (or clears with `null`) the running-stat momentum override; returns the previous one. */
export function setBatchNormMomentumOverride(momentum: number | null): number | null {
  const previous = momentumOverride;
  momentumOverride = momentum;
  return previous;
}

/**
 * Adds `prefix/gamma`, `prefix/beta` (trainable) and `prefix/moving_mean`,
 * `prefix/moving_variance` (non-trainable) to a layer, in the order PyTorch stores them.
 */
export function addBatchNormWeights(
  layer: layers.Layer,
  prefix: string,
  channels: number,
): BatchNormWeights {
  const add = addWeightTo(layer);
  return {
    gamma: add(`${prefix}/gamma`, [channels], 'float32', ones()),
    beta: add(`${prefix}/beta`, [channels], 'float32', zeros()),
    movingMean: add(`${prefix}/moving_mean`, [channels], 'float32', zeros(), undefined, false),
    movingVariance: add(
      `${prefix}/moving_variance`,
      [channels],
      'float32',
      ones(),
      undefined,
      false,
    ),
  };
}

/**
 * BatchNorm over the channel (last) axis of NHWC input. Training: normalizes with the batch's
 * statistics and updates the running ones as PyTorch does (momentum 0.1, unbiased variance in
 * the running estimate). Inference: uses the running statistics.
 */
export function batchNorm(x: tf.Tensor, w: BatchNormWeights, training: boolean): tf.Tensor {
  if (!training) {
    return tf.batchNorm(
      x,
      w.movingMean.read(),
      w.movingVariance.read(),
      w.beta.read(),
      w.gamma.read(),
      BN_EPSILON,
    );
  }
  const axes = [...Array(x.rank - 1).keys()];
  const { mean, variance } = tf.moments(x, axes);
  tf.tidy(() => {
    const n = x.size / x.shape[x.rank - 1];
    const unbiased = tf.mul(variance, n > 1 ? n / (n - 1) : 1);
    const m = momentumOverride ?? BN_MOMENTUM;
    w.movingMean.write(tf.add(tf.mul(w.movingMean.read(), 1 - m), tf.mul(mean, m)));
    w.movingVariance.write(tf.add(tf.mul(w.movingVariance.read(), 1 - m), tf.mul(unbiased, m)));
  });
  // On wasm, an analytic gradient instead of tfjs' (whose Tile is slow there); same forward.
  if (productForm() === 'fast') {
    return batchNormTrain(x, mean, variance, w.gamma.read(), w.beta.read(), BN_EPSILON);
  }
  return tf.batchNorm(x, mean, variance, w.beta.read(), w.gamma.read(), BN_EPSILON);
}
