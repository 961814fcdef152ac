import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { beforeAll, expect, it } from 'vitest';
import {
  ConfigError,
  createResNet18,
  createViT,
  InputShapeError,
  recomputeBatchNormStatistics,
} from '../../src/index';
import { describeBackends } from '../helpers/backends';

const byName = (m: LayersModel, suffix: string) => {
  const w = m.weights.find((v) => v.name.replace(/_\d+$/, '').endsWith(suffix));
  if (!w) throw new Error(`no weight ${suffix}`);
  return w;
};

/** Mean and unbiased variance per channel of the CIFAR stem's convolution output for `x`. */
async function stemMoments(
  m: LayersModel,
  images: tf.Tensor4D,
  start: number,
  size: number,
): Promise<{ mean: number[]; variance: number[] }> {
  const [mean, variance] = tf.tidy(() => {
    const x = tf.slice(images, start, size);
    const y = tf.conv2d(x, byName(m, 'resnet18/conv1/kernel').read() as tf.Tensor4D, 1, 'same');
    const moments = tf.moments(y, [0, 1, 2]);
    const n = y.size / y.shape[3];
    return [moments.mean, tf.mul(moments.variance, n / (n - 1))];
  });
  const out = { mean: await values(mean), variance: await values(variance) };
  tf.dispose([mean, variance]);
  return out;
}

/** Values of a tensor, read asynchronously (webgpu has no reliable synchronous read). */
const values = async (t: tf.Tensor): Promise<number[]> => Array.from(await t.data());

const average = (a: number[], b: number[]) => a.map((v, i) => (v + b[i]) / 2);

function expectClose(got: number[], want: number[], tol: number): void {
  expect(got.length).toBe(want.length);
  const worst = Math.max(...got.map((v, i) => Math.abs(v - want[i]) / (1 + Math.abs(want[i]))));
  expect(worst).toBeLessThan(tol);
}

describeBackends('recomputeBatchNormStatistics', () => {
  let model: LayersModel;
  let images: tf.Tensor4D;
  beforeAll(() => {
    model = createResNet18({ stem: 'cifar', imgSize: 8, inChans: 1, numClasses: 3, seed: 4 });
    // Shifted and scaled away from the initial running statistics (mean 0, variance 1).
    images = tf.tidy(() =>
      tf.add(tf.mul(tf.randomUniform([5, 8, 8, 1], 0, 1, 'float32', 7), 3), 2),
    );
  });

  it('makes each running statistic the average of the batches (first BatchNorm, exact)', async () => {
    const trainable = await Promise.all(model.trainableWeights.map((w) => values(w.read())));
    const before = tf.memory().numTensors;
    const r = recomputeBatchNormStatistics(model, images, { batchSize: 3 });
    expect(tf.memory().numTensors).toBe(before);
    expect(r).toEqual({ statistics: 40, batches: 2, images: 5 });
    const a = await stemMoments(model, images, 0, 3);
    const b = await stemMoments(model, images, 3, 2);
    expectClose(
      await values(byName(model, 'bn1/moving_mean').read()),
      average(a.mean, b.mean),
      1e-5,
    );
    expectClose(
      await values(byName(model, 'resnet18/bn1/moving_variance').read()),
      average(a.variance, b.variance),
      1e-5,
    );
    // Trainable weights untouched, nothing left behind.
    for (const [i, w] of model.trainableWeights.entries()) {
      expect(await values(w.read())).toEqual(trainable[i]);
    }
  });

  it('stops after maxBatches and replaces the old statistics completely', async () => {
    const r = recomputeBatchNormStatistics(model, images, { batchSize: 2, maxBatches: 1 });
    expect(r).toEqual({ statistics: 40, batches: 1, images: 2 });
    const first = await stemMoments(model, images, 0, 2);
    expectClose(await values(byName(model, 'resnet18/bn1/moving_mean').read()), first.mean, 1e-5);
  });

  it('restores the training momentum (0.1) afterwards', async () => {
    recomputeBatchNormStatistics(model, images, { batchSize: 5 });
    const old = await values(byName(model, 'resnet18/bn1/moving_mean').read());
    tf.tidy(() => {
      model.apply(tf.slice(images, 0, 4), { training: true });
    });
    const batch = (await stemMoments(model, images, 0, 4)).mean;
    expectClose(
      await values(byName(model, 'resnet18/bn1/moving_mean').read()),
      old.map((v, i) => 0.9 * v + 0.1 * batch[i]),
      1e-5,
    );
  });

  it('leaves a model without BatchNorm alone', async () => {
    const vit = createViT(
      { imgSize: 8, patchSize: 4, inChans: 1, embedDim: 8, depth: 1, numHeads: 2, numClasses: 3 },
      {},
      { seed: 1 },
    );
    const before = await Promise.all(vit.weights.map((w) => values(w.read())));
    expect(recomputeBatchNormStatistics(vit, images)).toEqual({
      statistics: 0,
      batches: 0,
      images: 0,
    });
    for (const [i, w] of vit.weights.entries()) {
      expect(await values(w.read())).toEqual(before[i]);
    }
    vit.dispose();
  });

  it('names the argument on bad input', () => {
    expect(() => recomputeBatchNormStatistics(model, tf.zeros([8, 8, 1]))).toThrow(InputShapeError);
    expect(() => recomputeBatchNormStatistics(model, tf.zeros([0, 8, 8, 1]))).toThrow(
      /images must be a rank-4 NHWC tensor \[batch >= 1, height, width, channels\], got \[0, 8, 8, 1\]/,
    );
    expect(() => recomputeBatchNormStatistics(model, images, { batchSize: 0 })).toThrow(
      /recomputeBatchNormStatistics: batchSize/,
    );
    expect(() => recomputeBatchNormStatistics(model, images, { maxBatches: 1.5 })).toThrow(
      /maxBatches/,
    );
    expect(() => recomputeBatchNormStatistics(null as never, images)).toThrow(ConfigError);
  });
});
