import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { ImageDataset } from '../../src/index';

/**
 * The toy task of the Trainer suites (test/train/trainer.test.ts in Node and the browser,
 * test/train/trainer_checkpoint.node.test.ts in Node): 3 classes of 8x8 grey images, a bright
 * bar in the top, middle or bottom rows, plus seeded noise.
 */
export function toyData(n: number, seed: number): ImageDataset {
  let s = seed;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const px = new Float32Array(n * 64);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    labels[i] = c;
    for (let y = 0; y < 8; y++)
      for (let x = 0; x < 8; x++) {
        const inBar = Math.floor(y / 3) === c || (c === 2 && y === 7);
        px[i * 64 + y * 8 + x] = (inBar ? 0.8 : 0.1) + 0.2 * rand();
      }
  }
  return { images: tf.tensor4d(px, [n, 8, 8, 1]), labels: tf.tensor1d(labels, 'int32') };
}

/** A tiny ViT for the toy task (8 px, patch 4, one channel, 3 classes). */
export const toyViTConfig = {
  imgSize: 8,
  patchSize: 4,
  inChans: 1,
  embedDim: 16,
  depth: 2,
  numHeads: 2,
  numClasses: 3,
};

/** Every weight of `model` read asynchronously (webgpu has no synchronous reads). */
export async function weightsOf(model: LayersModel): Promise<Float32Array[]> {
  return Promise.all(model.weights.map(async (w) => (await w.read().data()) as Float32Array));
}
