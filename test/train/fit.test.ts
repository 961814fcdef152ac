import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { createResNet18, createViT } from '../../src/index';
import { describeBackends } from '../helpers/backends';

/** Fits a fixed batch for a few steps and returns the per-epoch losses. */
async function fitLosses(model: tfl.LayersModel, x: tf.Tensor, y: tf.Tensor, epochs: number, lr: number): Promise<number[]> {
  // Epsilon pinned: Adam's default differs per backend (1e-7 cpu, 1e-4 on 16-bit webgl).
  model.compile({ optimizer: tf.train.adam(lr, 0.9, 0.999, 1e-7), loss: 'categoricalCrossentropy' });
  const h = await model.fit(x, y, { epochs, batchSize: x.shape[0], shuffle: false, verbose: 0 });
  return (h.history.loss as number[]).map(Number);
}

const labels = (n: number, classes: number) => tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => i % classes), 'int32'), classes);

describeBackends('fit lowers the loss', () => {
  it('small ViT', async () => {
    const m = createViT({ imgSize: 16, patchSize: 4, embedDim: 16, depth: 2, numHeads: 2, numClasses: 4 });
    const x = tf.randomNormal([8, 16, 16, 3], 0, 1, 'float32', 1);
    const y = labels(8, 4);
    const losses = await fitLosses(m, x, y, 8, 3e-3);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.8);
    tf.dispose([x, y]);
    m.dispose();
  });

  it('ResNet18 with the CIFAR stem at 32 px', async () => {
    const m = createResNet18({ numClasses: 4, stem: 'cifar' });
    const x = tf.randomNormal([4, 32, 32, 3], 0, 1, 'float32', 2);
    const y = labels(4, 4);
    const losses = await fitLosses(m, x, y, 3, 1e-3);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    tf.dispose([x, y]);
    m.dispose();
  });
}, ['cpu']);
