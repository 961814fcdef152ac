import * as tf from '@tensorflow/tfjs-core';

/**
 * Batch normalization with the batch's own statistics (training mode), over every axis but the
 * last, with an analytic gradient: for `xhat = (x - mean) * rstd`,
 * `dx = rstd * (g - mean(g) - xhat * mean(g * xhat))` with `g = dy * gamma`,
 * `dgamma = sum(dy * xhat)`, `dbeta = sum(dy)` (sums and means per channel).
 *
 * tfjs' own gradient of `tf.batchNorm` with batch statistics tiles the per-channel tensors to
 * the input's shape, and wasm's `Tile` is slow: in a CIFAR ResNet18 training step it took 13% of
 * the time. The forward is `tf.batchNorm`, so the values are unchanged. `mean` and `variance`
 * must be `tf.moments(x, axes)` of this `x`; they are treated as functions of `x` inside the
 * gradient (not as separate inputs).
 */
export function batchNormTrain(
  x: tf.Tensor,
  mean: tf.Tensor,
  variance: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
): tf.Tensor {
  const axes = [...Array(x.rank - 1).keys()];
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xi, gi, bi] = args as [tf.Tensor, tf.Tensor, tf.Tensor];
    const save = args[3] as tf.GradSaveFunc;
    // Saved tensors outlive the caller's tidy (the gradient runs later).
    save([xi, gi, mean, variance]);
    return {
      value: tf.batchNorm(xi, mean, variance, bi, gi, epsilon),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [xs, gs, mu, v] = saved;
          const d = dy as tf.Tensor;
          const rstd = tf.rsqrt(tf.add(v, epsilon));
          const xhat = tf.mul(tf.sub(xs, mu), rstd);
          const dbeta = tf.sum(d, axes);
          const dgamma = tf.sum(tf.mul(d, xhat), axes);
          const count = xs.size / (xs.shape[xs.rank - 1] as number);
          // mean(g) = gamma * dbeta / n, mean(g * xhat) = gamma * dgamma / n.
          const scale = tf.mul(gs, rstd);
          const dx = tf.mul(
            scale,
            tf.sub(tf.sub(d, tf.div(dbeta, count)), tf.mul(xhat, tf.div(dgamma, count))),
          );
          return [dx, dgamma, dbeta];
        }),
    };
  });
  return op(x, gamma, beta);
}
