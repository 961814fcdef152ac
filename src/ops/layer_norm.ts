import * as tf from '@tensorflow/tfjs-core';
import { LAYER_NORM_KERNEL, type LayerNormAttrs } from '../backends/simd/layer_norm_kernel';
import { recordingGradients } from '../backends/simd/module';
import { simdKernelReady } from '../backends/simd/register';

/**
 * Layer normalization over the last axis with a hand-written gradient, for the wasm backend.
 *
 * Written with tfjs ops, LayerNorm's gradient goes through every broadcast of the forward pass:
 * each one sums over the broadcast axes, and on wasm a sum over leading axes is a transpose plus
 * a reduction. The gradient written out needs eleven ops on `[rows, D]`:
 * `dgamma = sum_rows(dy * xhat)`, `dbeta = sum_rows(dy)`, and with `g = dy * gamma`,
 * `dx = rstd * (g - mean(g) - xhat * mean(g * xhat))` (means over the last axis).
 * Same numbers as the plain formulation within float32 rounding (test/ops/layer_norm.test.ts).
 */
export function layerNormFast(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
): tf.Tensor {
  const d = x.shape[x.rank - 1] as number;
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xi, gi, bi] = args.slice(0, 3) as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const x2 = tf.reshape(xi, [-1, d]);
    let y: tf.Tensor;
    if (simd) {
      // One pass of vit-ts' WebAssembly SIMD kernel, with the same saved tensors.
      const attrs: LayerNormAttrs = { epsilon, stats: true };
      const [out, xhat, rstd] = tf
        .engine()
        .runKernel(
          LAYER_NORM_KERNEL,
          { x: x2, gamma: gi, beta: bi },
          attrs as unknown as tf.NamedAttrMap,
        ) as tf.Tensor[];
      save([xhat as tf.Tensor, rstd as tf.Tensor, gi]);
      y = out as tf.Tensor;
    } else {
      const centred = tf.sub(x2, tf.mean(x2, -1, true));
      const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centred), -1, true), epsilon));
      const xhat = tf.mul(centred, rstd);
      save([xhat, rstd, gi]);
      y = tf.add(tf.mul(xhat, gi), bi);
    }
    return {
      value: tf.reshape(y, xi.shape),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [xh, rs, g0] = saved;
          const dy2 = tf.reshape(dy as tf.Tensor, [-1, d]);
          const g = tf.mul(dy2, g0);
          const dx = tf.mul(
            rs,
            tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xh, tf.mean(tf.mul(g, xh), -1, true))),
          );
          return [
            tf.reshape(dx, (dy as tf.Tensor).shape),
            tf.reshape(tf.sum(tf.mul(dy2, xh), 0), g0.shape),
            tf.reshape(tf.sum(dy2, 0), g0.shape),
          ];
        }),
    };
  });
  const simd = simdKernelReady(LAYER_NORM_KERNEL);
  if (simd && !recordingGradients()) {
    // Inference: one pass of the kernel, without the statistics a gradient would need.
    const attrs: LayerNormAttrs = { epsilon, stats: false };
    return tf.tidy(() => {
      const y = tf
        .engine()
        .runKernel(
          LAYER_NORM_KERNEL,
          { x: tf.reshape(x, [-1, d]), gamma, beta },
          attrs as unknown as tf.NamedAttrMap,
        ) as tf.Tensor;
      return tf.reshape(y, x.shape);
    });
  }
  return tf.tidy(() => op(x, gamma, beta));
}
