import * as tf from '@tensorflow/tfjs-core';
import { requirePositive } from '../errors';

/** Result of {@link clipByGlobalNorm}. */
export interface ClippedGradients<T> {
  /** The gradients, scaled by `min(1, maxNorm / (norm + 1e-6))`; new tensors. */
  grads: T;
  /** Global L2 norm of the gradients before clipping. */
  norm: number;
}

/**
 * Gradient clipping by global norm, as PyTorch's `clip_grad_norm_(params, maxNorm)`: the norm is
 * taken over all gradients together, `sqrt(sum_i ||g_i||^2)`; when it exceeds `maxNorm`, every
 * gradient is multiplied by `maxNorm / (norm + 1e-6)`, so the direction is kept.
 *
 * The scale is computed on the backend (a multiplication by exactly 1 when the norm is within
 * `maxNorm`, which leaves every value unchanged), and the norm is read asynchronously: no
 * synchronous read, which webgpu does not support.
 *
 * The caller keeps ownership of the input gradients and disposes the returned ones.
 *
 * @example
 * const { grads, norm } = await clipByGlobalNorm(variableGrads.grads, 1.0);
 */
export async function clipByGlobalNorm(
  grads: Record<string, tf.Tensor>,
  maxNorm: number,
): Promise<ClippedGradients<Record<string, tf.Tensor>>> {
  const limit = requirePositive('clipByGlobalNorm', 'maxNorm', maxNorm);
  const names = Object.keys(grads);
  if (names.length === 0) return { grads: {}, norm: 0 };
  const normT = globalNormTensor(names.map((n) => grads[n]));
  const out: Record<string, tf.Tensor> = {};
  tf.tidy(() => {
    const scale = tf.minimum(1, tf.div(limit, tf.add(normT, 1e-6)));
    for (const n of names) out[n] = tf.keep(tf.mul(grads[n], scale));
  });
  const norm = (await normT.data())[0];
  normT.dispose();
  return { grads: out, norm };
}

/**
 * Sum of a non-empty list of tensors by pairwise `tf.add`. Not `tf.addN`: tfjs 4.22's webgpu
 * AddN adds only the first 5 of more inputs (so clipping never triggered on webgpu).
 */
function sumPairwise(tensors: tf.Tensor[]): tf.Tensor {
  let level = tensors;
  while (level.length > 1) {
    const next: tf.Tensor[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? tf.add(level[i], level[i + 1]) : level[i]);
    }
    level = next;
  }
  return level[0];
}

/** `sqrt(sum_i ||t_i||^2)` of a non-empty list as a scalar tensor (the caller disposes it). */
function globalNormTensor(tensors: readonly tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => tf.sqrt(sumPairwise(tensors.map((t) => tf.sum(tf.square(t))))) as tf.Scalar);
}

/** Global L2 norm `sqrt(sum_i ||t_i||^2)` of a list of tensors, read asynchronously. */
export async function globalNorm(tensors: readonly tf.Tensor[]): Promise<number> {
  if (tensors.length === 0) return 0;
  const normT = globalNormTensor(tensors);
  const norm = (await normT.data())[0];
  normT.dispose();
  return norm;
}
