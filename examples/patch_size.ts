/**
 * The patch-size study (the lecture's homework): what the patch size does to a Vision
 * Transformer.
 *
 * Part 1, at 224 px for patch 8, 16 and 32 (ViT-Ti by default): tokens, parameters, forward
 * multiply-accumulates, attention-matrix size, and the measured forward time on the current
 * backend, next to the 1024 x 1024 matMul rate of the same run (a time from a loaded machine is
 * no figure).
 * Part 2, a short training run on real data at a small image size: Fashion-MNIST (Debian's
 * dataset-fashion-mnist) padded to 32 x 32, one small ViT per patch size 4, 8 and 16 (grids
 * 8 x 8, 4 x 4, 2 x 2: each step quarters the tokens, as 8 -> 16 -> 32 does at 224 px), same
 * data, seed, optimizer and epochs; held-out accuracy on the official test images. (Patch 2,
 * 257 tokens, trains about 10x slower than patch 4 on wasm: too slow for a short run.)
 *
 *   npm run example:patch-size               # the run recorded in docs/patch-size.md
 *   npm run example:patch-size -- --quick    # a fast smoke run (small subsets, one epoch)
 *   npm run example:patch-size -- --model small --backend cpu --train 4000 --epochs 5
 *   npm run example:patch-size -- --skip-timing --lr 3e-4    # part 2 only, another rate
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { adam, countViTMacs, countViTParams, createViT, softmaxCrossEntropy } from '../src/index';
import type { ViTConfig } from '../src/models/vision_transformer';
import { loadFashionMnist } from '../src/node';
import { matMulGflops, median } from './matmul_rate';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    backend: { type: 'string', default: 'wasm' },
    model: { type: 'string', default: 'tiny' },
    train: { type: 'string' },
    test: { type: 'string' },
    epochs: { type: 'string' },
    'batch-size': { type: 'string', default: '64' },
    lr: { type: 'string', default: '1e-3' },
    seed: { type: 'string', default: '7' },
    'skip-training': { type: 'boolean', default: false },
    'skip-timing': { type: 'boolean', default: false },
  },
});

const quick = args.quick === true;
const WIDTHS: Record<string, { embedDim: number; numHeads: number }> = {
  tiny: { embedDim: 192, numHeads: 3 },
  small: { embedDim: 384, numHeads: 6 },
  base: { embedDim: 768, numHeads: 12 },
};
const width = WIDTHS[args.model as string];
if (!width) throw new Error(`--model must be one of ${Object.keys(WIDTHS).join(', ')}`);
const trainSize = Number(args.train ?? (quick ? 256 : 2000));
const testSize = Number(args.test ?? (quick ? 250 : 2000));
const epochs = Number(args.epochs ?? (quick ? 1 : 3));
const batchSize = Number(args['batch-size']);
const learningRate = Number(args.lr);
const seed = Number(args.seed);

const fmt = (n: number) => n.toLocaleString('en-US');

async function timeMs(fn: () => tf.Tensor): Promise<number> {
  const t0 = performance.now();
  const y = fn();
  await y.data();
  const ms = performance.now() - t0;
  y.dispose();
  return ms;
}

async function part1(rate: number): Promise<void> {
  const runs = quick ? 1 : 3;
  console.log(
    `\n## Part 1: ViT-${args.model} at 224 px, batch 1, ${tf.getBackend()} backend (1024^2 matMul ${rate.toFixed(1)} GFLOP/s in this run)\n`,
  );
  console.log(
    '| patch | grid | tokens | parameters | GMACs | attention matrix per head | attention floats per block | forward ms (median) | GFLOP/s |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const patchSize of [8, 16, 32]) {
    const config: ViTConfig = { imgSize: 224, patchSize, depth: 12, ...width, numClasses: 1000 };
    const grid = 224 / patchSize;
    const tokens = grid * grid + 1;
    const macs = countViTMacs(config);
    const model = createViT(config, {}, { seed });
    const x = tf.randomNormal([1, 224, 224, 3]);
    await timeMs(() => model.predict(x) as tf.Tensor); // warm-up: kernels, weights upload
    const times: number[] = [];
    for (let i = 0; i < runs; i++) times.push(await timeMs(() => model.predict(x) as tf.Tensor));
    const ms = median(times);
    console.log(
      `| ${patchSize} | ${grid} x ${grid} | ${fmt(tokens)} | ${fmt(countViTParams(config))} | ${(macs / 1e9).toFixed(2)} | ${fmt(tokens)} x ${fmt(tokens)} = ${fmt(tokens * tokens)} | ${fmt(width.numHeads * tokens * tokens)} | ${ms.toFixed(0)} | ${((2 * macs) / (ms / 1e3) / 1e9).toFixed(1)} |`,
    );
    x.dispose();
    model.dispose();
  }
}

/** Fashion-MNIST images padded to 32 x 32 and standardized (train mean 0.2860, std 0.3530). */
function prepare(split: 'train' | 'test', limit: number): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const { images, labels } = loadFashionMnist({ split, limit });
  const out = tf.tidy(() => {
    const padded = tf.pad(images, [
      [0, 0],
      [2, 2],
      [2, 2],
      [0, 0],
    ]);
    return {
      x: tf.div(tf.sub(padded, 0.286), 0.353) as tf.Tensor4D,
      y: tf.oneHot(labels, 10) as tf.Tensor2D,
    };
  });
  tf.dispose([images, labels]);
  return out;
}

async function accuracy(model: LayersModel, x: tf.Tensor4D, y: tf.Tensor2D): Promise<number> {
  const logits = model.predict(x, { batchSize: 250 }) as tf.Tensor;
  const hits = tf.tidy(() =>
    tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), tf.argMax(y, -1)), 'float32')),
  );
  const n = (await hits.data())[0];
  tf.dispose([logits, hits]);
  return n / x.shape[0];
}

async function part2(rate: number): Promise<void> {
  const train = prepare('train', trainSize);
  const test = prepare('test', testSize);
  console.log(
    `\n## Part 2: Fashion-MNIST at 32 px, ${fmt(trainSize)} training images, ${epochs} epoch(s), batch ${batchSize}, Adam lr ${learningRate}, held out: the first ${fmt(testSize)} official test images (${tf.getBackend()}, matMul ${rate.toFixed(1)} GFLOP/s)\n`,
  );
  console.log(
    '| patch | grid | tokens | parameters | MMACs / image | train s | s / epoch | held-out accuracy |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const patchSize of [4, 8, 16]) {
    const config: ViTConfig = {
      imgSize: 32,
      patchSize,
      inChans: 1,
      embedDim: 64,
      depth: 4,
      numHeads: 4,
      mlpRatio: 2,
      numClasses: 10,
    };
    const model = createViT(config, {}, { seed });
    model.compile({ optimizer: adam({ learningRate }), loss: softmaxCrossEntropy() });
    const t0 = performance.now();
    // Same order for every patch size: tfjs shuffles with Math.random, so shuffle off and the
    // IDX files' order (already mixed across classes) is kept.
    await model.fit(train.x, train.y, { epochs, batchSize, shuffle: false, verbose: 0 });
    const seconds = (performance.now() - t0) / 1e3;
    const acc = await accuracy(model, test.x, test.y);
    const grid = 32 / patchSize;
    console.log(
      `| ${patchSize} | ${grid} x ${grid} | ${grid * grid + 1} | ${fmt(countViTParams(config))} | ${(countViTMacs(config) / 1e6).toFixed(1)} | ${seconds.toFixed(0)} | ${(seconds / epochs).toFixed(0)} | ${(100 * acc).toFixed(1)}% |`,
    );
    model.dispose();
  }
  tf.dispose([train.x, train.y, test.x, test.y]);
}

async function main(): Promise<void> {
  await tf.setBackend(args.backend as string);
  await tf.ready();
  const rate = await matMulGflops();
  if (!args['skip-timing']) await part1(rate);
  if (!args['skip-training']) await part2(rate);
  console.log(
    `\n(1024^2 matMul at the end of the run: ${(await matMulGflops()).toFixed(1)} GFLOP/s)`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
