/**
 * The Fashion-MNIST hybrid ViT shipped in examples/fashion/model (trained by
 * examples/fashion/train.ts --stem conv) loads with `loadModel`, is the documented architecture
 * (a conv stem making the tokens of a small ViT), and classifies real Fashion-MNIST test
 * images (Debian's dataset-fashion-mnist, never seen in training) about as well as its training
 * record says.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { createFashionHybridViT, FASHION_HYBRID_VIT_CONFIG } from '../../examples/fashion/config';
import { findVisionTransformer, HybridVisionTransformer } from '../../src/index';
import { loadModel, readFashionMnist } from '../../src/node';
import { describeBackends } from '../helpers/backends';

const modelDir = fileURLToPath(new URL('../../examples/fashion/model', import.meta.url));

interface TrainingRecord {
  config: object;
  stem?: string;
  epochs: number;
  history: { epoch: number; testAccuracyFirst2000: number }[];
  testAccuracy: number;
}

/** Test images checked (the first ones of the test file): fewer on cpu, whose kernels are slow. */
const checkedOn = (backend: string) => (backend === 'cpu' ? 100 : 500);
/**
 * Three standard deviations of an accuracy p measured on n images, sqrt(p(1-p)/n): a load that
 * scrambles weights falls to ~10%, far below.
 */
const margin = (p: number, n: number) => 3 * Math.sqrt((p * (1 - p)) / n);

let record: TrainingRecord;
beforeAll(async () => {
  const json = JSON.parse(await readFile(`${modelDir}/model.json`, 'utf8')) as {
    userDefinedMetadata: { training: TrainingRecord };
  };
  record = json.userDefinedMetadata.training;
});

describe('examples/fashion training record', () => {
  it('names the shipped config and one entry per epoch', () => {
    expect(record.config).toEqual(FASHION_HYBRID_VIT_CONFIG);
    expect(record.stem).toMatch(/^fashionConvStem/);
    expect(record.history.map((h) => h.epoch)).toEqual(
      Array.from({ length: record.epochs }, (_, i) => i + 1),
    );
    expect(record.testAccuracy).toBeGreaterThan(0);
    expect(record.testAccuracy).toBeLessThanOrEqual(1);
  });
});

describeBackends('examples/fashion shipped model', (backend) => {
  let model: LayersModel;
  beforeAll(async () => {
    model = await loadModel(modelDir);
  });

  it('is the documented architecture', () => {
    const vit = findVisionTransformer(model);
    expect(vit).toBeInstanceOf(HybridVisionTransformer);
    const c = FASHION_HYBRID_VIT_CONFIG;
    expect(vit.config.imgSize).toEqual([c.imgSize, c.imgSize]);
    expect(vit.config.patchSize).toEqual([c.patchSize, c.patchSize]);
    expect(vit.config.depth).toBe(c.depth);
    expect(vit.config.embedDim).toBe(c.embedDim);
    expect(vit.gridSize).toEqual([7, 7]);
    expect(model.outputs[0]?.shape).toEqual([null, 10]);
    // Weight for weight the model createFashionHybridViT builds (stem, projection, blocks, head).
    const fresh = createFashionHybridViT(1);
    expect(model.weights.map((w) => w.shape)).toEqual(fresh.weights.map((w) => w.shape));
    expect(model.countParams()).toBe(fresh.countParams());
    fresh.dispose();
  });

  const checked = checkedOn(backend);
  it(`reaches the recorded test accuracy (within 3 standard deviations) on the first ${checked} test images`, () => {
    const test = readFashionMnist({ split: 'test' });
    const before = tf.memory().numTensors;
    let correct = 0;
    for (let start = 0; start < checked; start += 100) {
      const x = tf.tensor4d(
        test.images.subarray(start * 784, (start + 100) * 784),
        [100, 28, 28, 1],
      );
      const predicted = tf.tidy(() => tf.argMax(model.predict(x) as tf.Tensor, 1).dataSync());
      x.dispose();
      predicted.forEach((p, k) => {
        if (p === test.labels[start + k]) correct++;
      });
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(correct / checked).toBeGreaterThanOrEqual(
      record.testAccuracy - margin(record.testAccuracy, checked),
    );
  });
});
