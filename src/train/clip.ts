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
 * The caller keeps ownership of the input gradients and disposes the returned ones.
 *
 * @example
 * const { grads, norm } = clipByGlobalNorm(variableGrads.grads, 1.0);
 */
export function clipByGlobalNorm(
  grads: Record<string, tf.Tensor>,
  maxNorm: number,
): ClippedGradients<Record<string, tf.Tensor>> {
  const limit = requirePositive('clipByGlobalNorm', 'maxNorm', maxNorm);
  const names = Object.keys(grads);
  const norm = globalNorm(names.map((n) => grads[n]));
  const scale = Math.min(1, limit / (norm + 1e-6));
  const out: Record<string, tf.Tensor> = {};
  for (const n of names) out[n] = scale < 1 ? tf.mul(grads[n], scale) : tf.clone(grads[n]);
  return { grads: out, norm };
}

/** Global L2 norm `sqrt(sum_i ||t_i||^2)` of a list of tensors, as a number. */
export function globalNorm(tensors: readonly tf.Tensor[]): number {
  if (tensors.length === 0) return 0;
  return tf.tidy(() => {
    const squares = tensors.map((t) => tf.sum(tf.square(t)));
    return tf.sqrt(tf.addN(squares)).dataSync()[0];
  });
}
