import * as tf from '@tensorflow/tfjs-core';
import { GELU_GRAD_KERNEL, GELU_KERNEL } from '../backends/simd/gelu_kernel';
import { recordingGradients } from '../backends/simd/module';
import { simdKernelReady } from '../backends/simd/register';
import { layerNormFast } from '../ops/layer_norm';
import { useFastForm } from '../ops/matmul';
import { getGlobalRandom } from '../random';

/**
 * Small pure helpers shared by the layers. Each keeps to ops whose gradients exist on every
 * backend: dense products are reshaped to 2-D first (tfjs' broadcasting matMul gradient is
 * broken, tensorflow/tfjs#8548), and no einsum is used.
 */

/**
 * `x @ kernel + bias` over the last axis of `x` (any rank >= 2), as one fused 2-D product; on
 * wasm with a gradient that uses only wasm's fast product form (see src/ops/matmul.ts).
 */
export { linear } from '../ops/matmul';

const SQRT1_2 = Math.SQRT1_2;

/**
 * Exact GELU, `0.5 * x * (1 + erf(x / sqrt(2)))`, as in PyTorch's default `nn.GELU()`. On wasm
 * with vit-ts' SIMD kernels installed (the fast product form), one kernel forward and one
 * backward instead of `Erf` and three elementwise ops each way.
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (x.dtype === 'float32' && simdKernelReady(GELU_KERNEL)) {
    if (!recordingGradients()) return tf.engine().runKernel(GELU_KERNEL, { x }) as tf.Tensor;
    const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const xi = args[0] as tf.Tensor;
      (args[1] as tf.GradSaveFunc)([xi]);
      return {
        value: tf.engine().runKernel(GELU_KERNEL, { x: xi }) as tf.Tensor,
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
          tf.engine().runKernel(GELU_GRAD_KERNEL, {
            x: saved[0] as tf.Tensor,
            dy: dy as tf.Tensor,
          }) as tf.Tensor,
      };
    });
    return op(x);
  }
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, SQRT1_2)))));
}

/**
 * Inverted dropout, active only when `training` is true and `rate > 0`. When the library is
 * seeded (`setSeed`), each mask's seed is drawn from the library generator: reproducible runs.
 */
export function dropout(x: tf.Tensor, rate: number, training: boolean): tf.Tensor {
  if (!training || rate <= 0) return x;
  return tf.dropout(x, rate, undefined, getGlobalRandom()?.tfjsSeed());
}

/**
 * Stochastic depth (DropPath): drops the whole residual branch per sample with probability
 * `rate` and scales the kept samples by `1 / (1 - rate)`. Identity unless training.
 */
export function dropPath(x: tf.Tensor, rate: number, training: boolean): tf.Tensor {
  if (!training || rate <= 0) return x;
  return tf.tidy(() => {
    const keep = 1 - rate;
    const maskShape = [x.shape[0], ...new Array<number>(x.rank - 1).fill(1)];
    const seed = getGlobalRandom()?.tfjsSeed();
    const mask = tf.floor(tf.add(tf.randomUniform(maskShape, 0, 1, 'float32', seed), keep));
    return tf.mul(x, tf.div(mask, keep));
  });
}

/**
 * Layer normalization over the last axis with learned scale and shift. Matches
 * `torch.nn.LayerNorm` (biased variance, epsilon inside the square root).
 */
export function layerNorm(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
): tf.Tensor {
  // wasm: a hand-written gradient (src/ops/layer_norm.ts) for a 1-D scale and shift over the last
  // axis (LayerNorm layers and qk-norm alike).
  if (useFastForm() && gamma.rank === 1 && beta.rank === 1) {
    return layerNormFast(x, gamma, beta, epsilon);
  }
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon)));
    return tf.add(tf.mul(normed, gamma), beta);
  });
}
