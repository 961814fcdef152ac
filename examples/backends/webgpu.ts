import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-webgpu';
import { createViT } from '../../src/index';

// WebGPU in browsers that expose navigator.gpu (Chrome, Edge).
export async function run(): Promise<Float32Array> {
  if (!(await tf.setBackend('webgpu'))) throw new Error('webgpu backend failed to start');
  await tf.ready();
  const model = createViT('vit_tiny_patch16_224', { imgSize: 32, patchSize: 8, numClasses: 10 });
  const logits = tf.tidy(() => model.predict(tf.zeros([1, 32, 32, 3])) as tf.Tensor);
  const values = (await logits.data()) as Float32Array;
  tf.dispose(logits);
  model.dispose();
  return values;
}
