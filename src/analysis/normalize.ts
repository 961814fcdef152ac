import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, formatShape, InputShapeError } from '../errors';

/** Options of {@link normalizeMaps}. */
export interface NormalizeOptions {
  /**
   * Fixed `[low, high]` mapped to `[0, 1]` (values outside are clipped), the same for every map,
   * so maps stay comparable. Default: per map min-max.
   */
  range?: [number, number];
}

/**
 * Scales maps `[..., H, W]` (rank 2 or more) to `[0, 1]` for display: by default each `[H, W]`
 * map separately, `(x - min) / (max - min)` (a constant map becomes all 0); with `range`, one
 * fixed linear mapping clipped to `[0, 1]`.
 */
export function normalizeMaps<T extends tf.Tensor>(maps: T, options: NormalizeOptions = {}): T {
  const owner = 'normalizeMaps';
  if (!(maps instanceof tf.Tensor) || maps.rank < 2) {
    throw new InputShapeError(
      `${owner}: maps must be a tensor of rank >= 2 ([..., H, W]), got ${maps instanceof tf.Tensor ? formatShape(maps.shape) : String(maps)}`,
    );
  }
  const range = options.range;
  if (range !== undefined) {
    if (
      !Array.isArray(range) ||
      range.length !== 2 ||
      !Number.isFinite(range[0]) ||
      !Number.isFinite(range[1]) ||
      range[1] <= range[0]
    ) {
      throw new ConfigError(
        `${owner}: range must be [low, high] with finite low < high, got ${JSON.stringify(range)}`,
      );
    }
    const [lo, hi] = range;
    return tf.tidy(() => tf.clipByValue(tf.div(tf.sub(maps, lo), hi - lo), 0, 1)) as T;
  }
  return tf.tidy(() => {
    const axes = [maps.rank - 2, maps.rank - 1];
    const x = tf.cast(maps, 'float32');
    const lo = tf.min(x, axes, true);
    const span = tf.sub(tf.max(x, axes, true), lo);
    // A constant map has span 0: divide by 1 there so it maps to 0 instead of NaN.
    const safe = tf.where(tf.greater(span, 0), span, tf.onesLike(span));
    return tf.div(tf.sub(x, lo), safe);
  }) as T;
}
