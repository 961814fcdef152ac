import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, formatShape, InputShapeError } from '../errors';
import { type Size2D, toPair } from '../geometry';

/** Resampling used to bring a patch grid to the image size. */
export type UpsampleMethod = 'nearest' | 'bilinear';

/**
 * Resizes maps `[..., gh, gw]` (rank 2 to 4) to `[..., H, W]`.
 *
 * - `'nearest'` (default; what the lecture shows: each patch becomes a flat block): source index
 *   `floor(dst * in / out)`, PyTorch's `F.interpolate(mode='nearest')`; for an integer factor
 *   (image size = grid x patch size) every patch value fills exactly its patch.
 * - `'bilinear'`: half-pixel centres, PyTorch's `F.interpolate(mode='bilinear',
 *   align_corners=False)` without antialiasing (tfjs has none; it matters only for downsizing).
 */
export function upsampleMaps<T extends tf.Tensor>(
  maps: T,
  size: Size2D,
  method: UpsampleMethod = 'nearest',
): T {
  const owner = 'upsampleMaps';
  if (!(maps instanceof tf.Tensor) || maps.rank < 2 || maps.rank > 4) {
    throw new InputShapeError(
      `${owner}: maps must be a tensor [gh, gw], [B, gh, gw] or [B, L, gh, gw], got ${maps instanceof tf.Tensor ? formatShape(maps.shape) : String(maps)}`,
    );
  }
  if (method !== 'nearest' && method !== 'bilinear') {
    throw new ConfigError(
      `${owner}: method must be 'nearest' or 'bilinear', got ${String(method)}`,
    );
  }
  const [h, w] = toPair(owner, 'size', size);
  const lead = maps.shape.slice(0, -2);
  const [gh, gw] = maps.shape.slice(-2);
  return tf.tidy(() => {
    const m = lead.reduce((a, b) => a * b, 1);
    const x = tf.reshape(tf.cast(maps, 'float32'), [m, gh, gw, 1]) as tf.Tensor4D;
    const y =
      method === 'nearest'
        ? tf.image.resizeNearestNeighbor(x, [h, w], false, false)
        : tf.image.resizeBilinear(x, [h, w], false, true);
    return tf.reshape(y, [...lead, h, w]);
  }) as T;
}
