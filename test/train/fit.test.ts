import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { adamw, createResNet18, createViT } from '../../src/index';
import { describeBackends, seededValues } from '../helpers/backends';

/** A fixed batch: seeded images and one-hot labels. */
function batch(n: number, size: number, classes: number, seed: number): [tf.Tensor4D, tf.Tensor2D] {
  const x = tf.tensor4d(seededValues(n * size * size * 3, seed), [n, size, size, 3]);
  const labels = Array.from({ length: n }, (_, i) => (i * 3 + 1) % classes);
  return [x, tf.oneHot(tf.tensor1d(labels, 'int32'), classes) as tf.Tensor2D];
}

/**
 * Fits `steps` steps on one fixed batch (one step per epoch) and returns the loss of each step,
 * as measured by `fit` before that step's update. Disposes the model and its optimizer.
 */
async function lossesOverSteps(
  model: LayersModel,
  x: tf.Tensor,
  y: tf.Tensor,
  steps: number,
  optimizer: tf.Optimizer,
): Promise<number[]> {
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  const t0 = Date.now();
  const history = await model.fit(x, y, {
    epochs: steps,
    batchSize: x.shape[0],
    shuffle: false,
    verbose: 0,
  });
  console.log(`${model.name} on ${tf.getBackend()}: ${steps} steps in ${Date.now() - t0} ms`);
  model.dispose();
  optimizer.dispose();
  return history.history['loss'] as number[];
}

describeBackends('a few fit steps lower the loss', () => {
  it('small ViT (16 px, patch 4, D 32, depth 2), batch 4, 3 steps', async () => {
    const before = tf.memory().numTensors;
    const [x, y] = batch(4, 16, 4, 11);
    const model = createViT({
      imgSize: 16,
      patchSize: 4,
      embedDim: 32,
      depth: 2,
      numHeads: 2,
      numClasses: 4,
    });
    const losses = await lossesOverSteps(
      model,
      x,
      y,
      3,
      adamw({ learningRate: 1e-3, weightDecay: 0.05 }),
    );
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[2]).toBeLessThan(losses[0]);
    tf.dispose([x, y]);
    expect(tf.memory().numTensors).toBe(before);
  });

  // Plain gradient descent at a small rate: to first order every step lowers the loss. Adam's
  // step moves each of the 11 M weights by about the learning rate whatever its gradient, and
  // with BatchNorm statistics from 4 images that is not a small step for the function: over 3
  // steps the loss was seen to jump up as often as down (lr 1e-3 to 1e-5, batch 2 and 4).
  it('ResNet18 (CIFAR stem, 32 px), batch 4, 3 SGD steps: trains on every backend, wasm included', async () => {
    const before = tf.memory().numTensors;
    const [x, y] = batch(4, 32, 10, 12);
    const model = createResNet18({ numClasses: 10, stem: 'cifar' });
    const losses = await lossesOverSteps(model, x, y, 3, tf.train.sgd(1e-4));
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[2]).toBeLessThan(losses[0]);
    tf.dispose([x, y]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
