import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { ensureGradientKernels } from '../../src/backends/conv_grad';
import { InputShapeError } from '../../src/errors';
import { conv2d, convInputGrad, fastConv2d } from '../../src/ops/conv';
import { batchNormTrain } from '../../src/ops/norm';
import { describeBackends, seededValues } from '../helpers/backends';

function relMax(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(
    () => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / tf.max(tf.abs(b)).dataSync()[0],
  );
}

function seeded(shape: number[], seed: number): tf.Tensor4D {
  return tf.tensor(
    seededValues(
      shape.reduce((p, d) => p * d, 1),
      seed,
    ),
    shape,
  ) as tf.Tensor as tf.Tensor4D;
}

describeBackends('conv2d with fast-form gradients', () => {
  it('value and both gradients equal tf.grads of tf.conv2d (odd sizes, strides 1 and 2, 1x1, 7x7)', () => {
    ensureGradientKernels();
    const before = tf.memory().numTensors;
    // [height, width, inChannels, outChannels, kernel, stride, pad]
    const cases: Array<[number, number, number, number, number, number, number]> = [
      [7, 8, 3, 4, 3, 1, 1],
      [9, 7, 2, 3, 3, 2, 1],
      [8, 8, 4, 6, 1, 2, 0],
      [11, 10, 3, 4, 7, 2, 3],
      [6, 5, 2, 3, 3, 1, 0],
      [5, 5, 3, 2, 2, 2, 1],
    ];
    for (const [h, w, ci, co, k, s, p] of cases) {
      const x = seeded([2, h, w, ci], h * 7 + ci);
      const kernel = seeded([k, k, ci, co], co * 3 + k);
      const yRef = tf.conv2d(x, kernel, s, p);
      const dy = seeded(yRef.shape, 99);
      const ref = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, p), dy),
      )([x, kernel]);
      const got = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.mul(fastConv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, p), dy),
      )([x, kernel]);
      const y = fastConv2d(x, kernel, s, p);
      expect(y.shape).toEqual(yRef.shape);
      expect(relMax(y, yRef)).toBe(0);
      for (let i = 0; i < 2; i++) {
        expect(got[i].shape).toEqual(ref[i].shape);
        expect(relMax(got[i], ref[i])).toBeLessThan(1e-5);
      }
      tf.dispose([x, kernel, yRef, dy, y, ...ref, ...got]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('convInputGrad equals the input gradient of tf.conv2d (stride 2, PyTorch padding)', () => {
    const dy = seeded([2, 4, 5, 6], 3);
    const kernel = seeded([3, 3, 4, 6], 4);
    const got = convInputGrad(dy, kernel, [2, 8, 9, 4], 2, 1);
    expect(got.shape).toEqual([2, 8, 9, 4]);
    const viaGrad = tf.grad((a: tf.Tensor) =>
      tf.mul(tf.conv2d(a as tf.Tensor4D, kernel, 2, 1), dy),
    )(tf.zeros([2, 8, 9, 4]));
    expect(relMax(got, viaGrad)).toBeLessThan(1e-5);
    tf.dispose([dy, kernel, got, viaGrad]);
  });

  it('conv2d dispatches per backend and rejects bad arguments with InputShapeError', () => {
    const x = tf.zeros([1, 4, 4, 3]);
    const kernel = tf.zeros([3, 3, 3, 2]);
    expect(conv2d(x, kernel, 1, 1).shape).toEqual([1, 4, 4, 2]);
    expect(() => conv2d(tf.zeros([4, 4, 3]), kernel, 1, 1)).toThrow(InputShapeError);
    expect(() => conv2d(x, tf.zeros([3, 3, 2, 2]), 1, 1)).toThrow(
      /kernel must be \[kh, kw, 3, out\]/,
    );
    expect(() => conv2d(x, kernel, 0, 1)).toThrow(/stride must be a positive integer/);
    tf.dispose([x, kernel]);
  });
});

describeBackends('batchNormTrain', () => {
  it('value and gradients equal tf.grads of tf.batchNorm with tf.moments (odd shape), no leaks', () => {
    const before = tf.memory().numTensors;
    const x = seeded([3, 5, 7, 6], 41);
    const gamma = tf.tensor1d(Array.from(seededValues(6, 42)).map((v) => v + 1));
    const beta = tf.tensor1d(seededValues(6, 43));
    const dy = seeded([3, 5, 7, 6], 44);
    const plain = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = tf.moments(a, [0, 1, 2]);
      return tf.mul(tf.batchNorm(a, mean, variance, b, g, 1e-5), dy);
    };
    const fast = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = tf.moments(a, [0, 1, 2]);
      return tf.mul(batchNormTrain(a, mean, variance, g, b, 1e-5), dy);
    };
    const ref = tf.grads(plain)([x, gamma, beta]);
    const got = tf.grads(fast)([x, gamma, beta]);
    for (let i = 0; i < 3; i++) {
      expect(got[i].shape).toEqual(ref[i].shape);
      expect(relMax(got[i], ref[i])).toBeLessThan(1e-5);
    }
    const yRef = tf.tidy(() => plain(x, gamma, beta));
    const y = tf.tidy(() => fast(x, gamma, beta));
    expect(relMax(y, yRef)).toBe(0);
    tf.dispose([x, gamma, beta, dy, ...ref, ...got, y, yRef]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
