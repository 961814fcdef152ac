import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';

/**
 * Overwrites every weight with seeded random values so that biases, norms and running
 * statistics are all non-trivial (a zero bias or a unit scale would hide layout mistakes).
 */
export function randomizeWeights(weights: LayerVariable[], seed = 1, std = 0.2): void {
  weights.forEach((w, i) => {
    tf.tidy(() => {
      const r = tf.randomNormal(w.shape as number[], 0, std, 'float32', seed + i);
      const name = w.originalName;
      let v: tf.Tensor = r;
      if (/gamma$/.test(name)) v = tf.add(r, 1);
      if (/moving_variance$/.test(name)) v = tf.add(tf.abs(r), 0.5);
      w.write(v);
    });
  });
}

/** Reads a weight by the end of its name (e.g. `attn/qkv/kernel`). */
export function weightBySuffix(weights: LayerVariable[], suffix: string): Float32Array {
  const w = weights.find((x) => x.originalName.endsWith(suffix));
  if (!w)
    throw new Error(
      `no weight ending in ${suffix}; have ${weights.map((x) => x.originalName).join(', ')}`,
    );
  return w.read().dataSync() as Float32Array;
}
