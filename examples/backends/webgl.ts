import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-webgl';
import { createViT } from '../../src/index';

// WebGL2 in browsers. The GPU backend with the widest support.
export async function run(): Promise<Float32Array> {
  if (!(await tf.setBackend('webgl'))) throw new Error('webgl backend failed to start');
  await tf.ready();
  const model = createViT('vit_tiny_patch16_224', { imgSize: 32, patchSize: 8, numClasses: 10 });
  const logits = tf.tidy(() => model.predict(tf.zeros([1, 32, 32, 3])) as tf.Tensor);
  const values = (await logits.data()) as Float32Array;
  tf.dispose(logits);
  model.dispose();
  return values;
}
