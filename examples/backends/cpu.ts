import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { createViT } from '../../src/index';

// Pure JavaScript: runs everywhere, slowest. Good for tests and tiny models.
export async function run(): Promise<Float32Array> {
  if (!(await tf.setBackend('cpu'))) throw new Error('cpu backend failed to start');
  await tf.ready();
  const model = createViT('vit_tiny_patch16_224', { imgSize: 32, patchSize: 8, numClasses: 10 });
  const logits = tf.tidy(() => model.predict(tf.zeros([1, 32, 32, 3])) as tf.Tensor);
  const values = (await logits.data()) as Float32Array;
  tf.dispose(logits);
  model.dispose();
  return values;
}
