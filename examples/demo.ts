/**
 * `npm run demo`: the main job on built-in defaults, no downloads.
 *
 * 1. Builds a preset ViT (default ViT-B/16, timm's `vit_base_patch16_224`) and a ResNet18,
 *    prints their layer trees with output shapes and parameter counts.
 * 2. Runs a forward pass of each on a built-in 224x224 test image (a synthetic colour pattern)
 *    and prints the output shape, the top-5 classes and the time taken. These weights are
 *    random: the classes show the plumbing, not a prediction.
 * 3. Loads the small ViT the project trained on real MNIST digits (examples/mnist/model, shipped
 *    in the repo) and classifies the held-out sample digits: real predictions.
 *
 *   npm run demo -- --preset vit_tiny_patch16_224 --backend cpu
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  createResNet18,
  createViT,
  formatSummary,
  getViTPreset,
  summarize,
  VIT_PRESETS,
  type ViTPresetName,
} from '../src/index';
import { loadModel } from '../src/node';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};

/** A deterministic 224x224 RGB test picture: smooth gradients and a bright disc, in [0, 1]. */
function testImage(size = 224): tf.Tensor4D {
  return tf.tidy(() => {
    const r = tf.linspace(0, 1, size);
    const yy = tf.reshape(r, [size, 1]);
    const xx = tf.reshape(r, [1, size]);
    const disc = tf.cast(
      tf.less(tf.add(tf.square(tf.sub(xx, 0.6)), tf.square(tf.sub(yy, 0.4))), 0.04),
      'float32',
    );
    const red = tf.add(tf.mul(xx, 0.6), tf.mul(disc, 0.4));
    const green = tf.add(tf.mul(yy, 0.5), tf.mul(disc, 0.5));
    const blue = tf.sub(1, tf.mul(tf.add(xx, yy), 0.4));
    return tf.expandDims(tf.stack([red, green, blue], -1), 0) as tf.Tensor4D;
  });
}

function topK(logits: tf.Tensor, k: number): Array<{ index: number; p: number }> {
  const probs = tf.tidy(() => tf.softmax(tf.reshape(logits, [-1]))).dataSync();
  return Array.from(probs, (p, index) => ({ index, p }))
    .sort((a, b) => b.p - a.p)
    .slice(0, k);
}

async function timedPredict(
  model: LayersModel,
  x: tf.Tensor,
): Promise<{ y: tf.Tensor; ms: number }> {
  tf.dispose(model.predict(x) as tf.Tensor); // warm-up
  const t0 = performance.now();
  const y = model.predict(x) as tf.Tensor;
  await y.data();
  return { y, ms: performance.now() - t0 };
}

async function showModel(
  title: string,
  model: LayersModel,
  x: tf.Tensor,
  norm: { mean: number[]; std: number[] },
) {
  console.log(`\n=== ${title}`);
  console.log(formatSummary(summarize(model, 1)));
  const input = tf.tidy(() => tf.div(tf.sub(x, norm.mean), norm.std));
  const { y, ms } = await timedPredict(model, input);
  const top = topK(y, 5)
    .map((t) => `${t.index} (${(100 * t.p).toFixed(2)}%)`)
    .join(', ');
  console.log(
    `forward on the built-in 224x224 image: output ${JSON.stringify(y.shape)} in ${ms.toFixed(0)} ms on ${tf.getBackend()}`,
  );
  console.log(`top-5 classes (random weights): ${top}`);
  tf.dispose([y, input]);
}

async function showMnist() {
  const dir = join(here, 'mnist', 'model');
  const samplesPath = join(here, 'mnist', 'samples.json');
  if (!existsSync(join(dir, 'model.json')) || !existsSync(samplesPath)) {
    console.log(
      '\n(no trained MNIST model in examples/mnist/model: run `npm run train:mnist` to make one)',
    );
    return;
  }
  console.log('\n=== the shipped ViT trained on MNIST (examples/mnist/model)');
  const model = await loadModel(dir);
  const { samples } = JSON.parse(readFileSync(samplesPath, 'utf8')) as {
    samples: Array<{ label: number; pixels: number[] }>;
  };
  const x = tf.tidy(() =>
    tf.div(
      tf.tensor4d(
        samples.flatMap((s) => s.pixels),
        [samples.length, 28, 28, 1],
      ),
      255,
    ),
  );
  const t0 = performance.now();
  const logits = model.predict(x) as tf.Tensor;
  const pred = tf.tidy(() => tf.argMax(logits, -1)).dataSync();
  const ms = performance.now() - t0;
  const right = samples.filter((s, i) => pred[i] === s.label).length;
  console.log(
    `params ${model.countParams().toLocaleString('en-US')}; ${samples.length} held-out digits in ${ms.toFixed(0)} ms`,
  );
  console.log(`labels:      ${samples.map((s) => s.label).join(' ')}`);
  console.log(`predictions: ${Array.from(pred).join(' ')}`);
  console.log(`accuracy on these samples: ${right}/${samples.length}`);
  tf.dispose([x, logits]);
  model.dispose();
}

async function main() {
  const backend = opt('backend', 'wasm');
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} failed to initialize`);
  await tf.ready();
  const presetName = opt('preset', 'vit_base_patch16_224') as ViTPresetName;
  const preset = getViTPreset(presetName);
  console.log(
    `vit-ts demo on the ${tf.getBackend()} backend; presets: ${Object.keys(VIT_PRESETS).join(', ')}`,
  );
  const x = testImage();
  const t0 = performance.now();
  const vit = createViT(presetName);
  console.log(`built ${presetName} in ${(performance.now() - t0).toFixed(0)} ms`);
  await showModel(
    `${presetName} (timm count ${preset.params.toLocaleString('en-US')})`,
    vit,
    x,
    preset.normalization,
  );
  vit.dispose();
  const resnet = createResNet18({ numClasses: 1000, stem: 'imagenet' });
  await showModel('ResNet18, torchvision ImageNet stem', resnet, x, {
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
  });
  resnet.dispose();
  x.dispose();
  await showMnist();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
