import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import {
  ConfigError,
  formatShape,
  InputShapeError,
  requirePositiveInt,
  showValue,
} from '../errors';
import { setBatchNormMomentumOverride } from '../layers/batch_norm';
import { isRunningStatistic } from './param_groups';

/** Options of {@link recomputeBatchNormStatistics}. */
export interface RecomputeBatchNormOptions {
  /** Images per forward pass. Default 64. */
  batchSize?: number;
  /** Stop after this many batches (default: all of `images`). */
  maxBatches?: number;
}

/** What {@link recomputeBatchNormStatistics} did. */
export interface RecomputeBatchNormResult {
  /** Running-statistic variables rewritten (two per BatchNorm: mean and variance). */
  statistics: number;
  /** Forward passes run. */
  batches: number;
  /** Images seen. */
  images: number;
}

/** The model surface this needs: a tfjs LayersModel (or any layer) with its weights. */
interface AppliesWithWeights {
  apply(inputs: tf.Tensor, kwargs?: { training?: boolean }): unknown;
  readonly weights: LayerVariable[];
}

/**
 * Re-estimates every BatchNorm's running mean and variance from `images` with the current
 * weights ("precise BN", Wu & Johnson 2021): forward passes in training mode, each batch weighted
 * equally (PyTorch's `momentum=None`), so the statistics used at inference describe the weights
 * as they are now rather than an average over the last few optimizer steps.
 *
 * Why: with PyTorch's momentum 0.1 the running statistics trail the weights by ~10 steps. After a
 * short or fast-moving training run (tens of steps, a warm restart, an EMA of the weights) they
 * can describe a different network, and inference-mode accuracy drops to chance while
 * training-mode accuracy is fine. Run this on training images (no augmentation needed) before
 * evaluating. Only the running statistics change; trainable weights and the optimizer do not.
 * A model without BatchNorm (a plain ViT) is left alone: `statistics` is 0 and nothing runs.
 *
 * @example
 * recomputeBatchNormStatistics(model, train.images, { batchSize: 100 });
 * const { accuracy } = await evaluateModel(model, test);
 */
export function recomputeBatchNormStatistics(
  model: AppliesWithWeights,
  images: tf.Tensor,
  options: RecomputeBatchNormOptions = {},
): RecomputeBatchNormResult {
  const o = 'recomputeBatchNormStatistics';
  if (model == null || typeof model.apply !== 'function' || !Array.isArray(model.weights)) {
    throw new ConfigError(`${o}: model must be a tfjs LayersModel, got ${showValue(model)}`);
  }
  if (!(images instanceof tf.Tensor) || images.rank !== 4 || images.shape[0] === 0) {
    throw new InputShapeError(
      `${o}: images must be a rank-4 NHWC tensor [batch >= 1, height, width, channels], got ${images instanceof tf.Tensor ? formatShape(images.shape) : showValue(images)}`,
    );
  }
  const batchSize = requirePositiveInt(o, 'batchSize', options.batchSize ?? 64);
  const n = images.shape[0];
  const available = Math.ceil(n / batchSize);
  const batches =
    options.maxBatches == null
      ? available
      : Math.min(available, requirePositiveInt(o, 'maxBatches', options.maxBatches));
  const statistics = model.weights.filter(isRunningStatistic).length;
  if (statistics === 0) return { statistics: 0, batches: 0, images: 0 };
  const previous = setBatchNormMomentumOverride(null);
  let seen = 0;
  try {
    for (let k = 1; k <= batches; k++) {
      const start = (k - 1) * batchSize;
      const size = Math.min(batchSize, n - start);
      // Momentum 1/k: after k batches each running statistic is the mean of the k batches' own.
      setBatchNormMomentumOverride(1 / k);
      tf.tidy(() => {
        model.apply(tf.slice(images, [start, 0, 0, 0], [size, -1, -1, -1]), { training: true });
      });
      seen += size;
    }
  } finally {
    setBatchNormMomentumOverride(previous);
  }
  return { statistics, batches, images: seen };
}
