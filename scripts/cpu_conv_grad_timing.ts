/**
 * Times one ResNet18 training step (CIFAR stem, batch 2) on tfjs' cpu backend with tfjs' own
 * Conv2DBackpropFilter and with vit-ts' forward-convolution replacement (src/backends/conv_grad.ts),
 * next to the 1024x1024 wasm matMul rate of the same run (a figure from a loaded machine is no
 * figure: compare the ratio). Usage: `tsx scripts/cpu_conv_grad_timing.ts [--size 16] [--skip-native]`.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-layers';
import { matMulRate } from '../bench/models';
import { createResNet18, softmaxCrossEntropy, useNativeGradientKernels } from '../src/index';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '16' },
    'skip-native': { type: 'boolean', default: false },
  },
});
const size = Number(values.size);

/** Seconds of one `trainOnBatch` after one warm-up step (the first step also builds and compiles). */
async function stepSeconds(native: boolean): Promise<{ seconds: number; filterShare: number }> {
  useNativeGradientKernels('cpu', native);
  const model = createResNet18({ numClasses: 10, stem: 'cifar', imgSize: size, seed: 1 });
  model.compile({ optimizer: tf.train.sgd(1e-2), loss: softmaxCrossEntropy() });
  const x = tf.randomUniform([2, size, size, 3], 0, 1, 'float32', 1);
  const y = tf.oneHot(tf.tensor1d([1, 7], 'int32'), 10);
  await model.trainOnBatch(x, y);
  let seconds = 0;
  const profile = await tf.profile(async () => {
    const t0 = performance.now();
    await model.trainOnBatch(x, y);
    seconds = (performance.now() - t0) / 1000;
  });
  const filterMs = profile.kernels
    .filter((k) => k.name === 'Conv2DBackpropFilter')
    .reduce((sum, k) => sum + (k.kernelTimeMs as number), 0);
  tf.dispose([x, y]);
  model.dispose();
  return { seconds, filterShare: filterMs / 1000 / seconds };
}

async function wasmRate(): Promise<number> {
  await tf.setBackend('wasm');
  const rate = await matMulRate();
  await tf.setBackend('cpu');
  return rate / 1e9;
}

const rateBefore = await wasmRate();
console.log(`1024x1024 wasm matMul: ${rateBefore.toFixed(1)} GFLOP/s (quiet: ~27-31)`);
const fast = await stepSeconds(false);
console.log(
  `ResNet18 (CIFAR stem, ${size} px, batch 2) one SGD step on cpu, vit-ts filter gradient: ${fast.seconds.toFixed(2)} s (Conv2DBackpropFilter ${(100 * fast.filterShare).toFixed(0)}%)`,
);
if (!values['skip-native']) {
  const native = await stepSeconds(true);
  console.log(
    `same step, tfjs' cpu filter gradient: ${native.seconds.toFixed(2)} s (Conv2DBackpropFilter ${(100 * native.filterShare).toFixed(0)}%); speed-up ${(native.seconds / fast.seconds).toFixed(1)}x`,
  );
  useNativeGradientKernels('cpu', false);
}
const rateAfter = await wasmRate();
console.log(`1024x1024 wasm matMul (after): ${rateAfter.toFixed(1)} GFLOP/s`);
