import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-wasm';
import { createViT } from '../../src/index';

// WebAssembly (XNNPACK, SIMD). In Node the .wasm files load from the package; in a browser,
// call setWasmPaths() first (see docs/backends.md).
export async function run(): Promise<Float32Array> {
  if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend failed to start');
  await tf.ready();
  const model = createViT('vit_tiny_patch16_224', { imgSize: 32, patchSize: 8, numClasses: 10 });
  const logits = tf.tidy(() => model.predict(tf.zeros([1, 32, 32, 3])) as tf.Tensor);
  const values = (await logits.data()) as Float32Array;
  tf.dispose(logits);
  model.dispose();
  return values;
}
