/**
 * The work bench:parallel times, shared by the main thread (bench/parallel.ts) and the ceiling
 * workers (bench/ceiling_worker.ts) so that both time exactly the same thing.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { getViTPreset, softmaxCrossEntropy, type ViTConfig } from '../src/index';

/** What one ceiling worker (bench/ceiling_worker.ts) repeats, sent as its workerData. */
export interface CeilingTask {
  task: 'matmul' | 'infer' | 'train';
  /** Images per iteration (ignored by 'matmul': one 1024^2 product). */
  batch: number;
  iterations: number;
  /** Blocks of the training ViT. */
  trainDepth: number;
}

/** Inference: ViT-Ti/16 at 224 px, 1000 classes (timm's `vit_tiny_patch16_224`). */
export const INFER_CONFIG: ViTConfig = getViTPreset('vit_tiny_patch16_224').config;

/** Training: ViT-Ti with 4 px patches at 32 px, `depth` blocks, 10 classes. */
export function trainConfig(depth: number): ViTConfig {
  return { imgSize: 32, patchSize: 4, embedDim: 192, depth, numHeads: 3, numClasses: 10 };
}

/**
 * One single-thread training step: the gradient of the mean softmax cross-entropy over the whole
 * batch, one optimizer update; resolves when the loss has been read.
 */
export async function singleThreadStep(
  model: LayersModel,
  optimizer: tf.Optimizer,
  x: tf.Tensor,
  y: tf.Tensor,
): Promise<void> {
  const loss = softmaxCrossEntropy();
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const value = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(
      () => loss(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
      vars,
    );
    optimizer.applyGradients(grads);
    return value;
  });
  await value.data();
  value.dispose();
}
