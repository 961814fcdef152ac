import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { layerNormFast } from '../../src/ops/layer_norm';
import { describeBackends, seededValues } from '../helpers/backends';

/** The plain formulation, differentiated by tfjs. */
function plain(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), g), b);
}

async function relMax(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const [d, m] = tf.tidy(() => [tf.max(tf.abs(tf.sub(a, b))), tf.max(tf.abs(b))]);
  const r = (await d.data())[0] / (await m.data())[0];
  tf.dispose([d, m]);
  return r;
}

describeBackends('layerNormFast', () => {
  for (const shape of [
    [2, 5, 7],
    [3, 4],
    [1, 1, 6],
  ]) {
    it(`equals the plain formulation, value and gradients (x [${shape}])`, async () => {
      const before = tf.memory().numTensors;
      const d = shape[shape.length - 1];
      const size = shape.reduce((p, v) => p * v, 1);
      const x = tf.tensor(seededValues(size, 3), shape);
      const g = tf.tidy(() => tf.add(tf.tensor1d(seededValues(d, 5)), 1));
      const b = tf.tensor1d(seededValues(d, 9));
      const w = tf.tensor(seededValues(size, 13), shape);
      const eps = 1e-6;
      const loss = (f: typeof plain) => (xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) =>
        tf.sum(tf.mul(f(xi, gi, bi, eps), w));
      const yFast = layerNormFast(x, g, b, eps);
      const yPlain = tf.tidy(() => plain(x, g, b, eps));
      expect(yFast.shape).toEqual(shape);
      expect(await relMax(yFast, yPlain)).toBeLessThan(1e-5);
      const gf = tf.grads(loss(layerNormFast))([x, g, b]);
      const gp = tf.grads(loss(plain))([x, g, b]);
      for (let i = 0; i < 3; i++) {
        expect(gf[i].shape).toEqual(gp[i].shape);
        expect(await relMax(gf[i], gp[i])).toBeLessThan(1e-4);
      }
      tf.dispose([x, g, b, w, yFast, yPlain, ...gf, ...gp]);
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});
