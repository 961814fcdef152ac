/**
 * Trains the small Vision Transformer that ships in examples/fashion/model/ on Fashion-MNIST
 * (Debian's dataset-fashion-mnist: 60,000 training images; the 10,000 test images are only
 * evaluated), with the vit-ts training kit: Trainer, warm-up + cosine schedule, AdamW parameter
 * groups, seeded data order and augmentation, crash-safe checkpoints after every epoch.
 *
 *   npx tsx examples/fashion/train.ts                      # the shipped run (see README.md)
 *   npx tsx examples/fashion/train.ts --epochs 1 --max-steps 20 --out /tmp/f   # timing probe
 *   npx tsx examples/fashion/train.ts --resume             # continue from the checkpoint
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
  randomHorizontalFlip,
  type TrainerOptions,
  warmupCosineSchedule,
} from '../../src/index';
import { loadFashionMnist, saveModel, terminalProgress } from '../../src/node';
import { runOptions, trainingOptions } from '../experiments/common';
import { runEpochs, startTrainer } from '../shipped_training';
import { FASHION_VIT_CONFIG } from './config';

const here = dirname(fileURLToPath(import.meta.url));

const { values: args } = parseArgs({
  options: {
    ...runOptions(),
    ...trainingOptions({ epochs: '2', batchSize: '64', lr: '2e-3' }),
    'warmup-steps': { type: 'string', default: '200' },
    'weight-decay': { type: 'string', default: '0.05' },
    'max-steps': { type: 'string' },
    'eval-size': { type: 'string', default: '2000' },
    resume: { type: 'boolean', default: false },
    checkpoint: { type: 'string', default: join(here, 'checkpoint') },
    out: { type: 'string', default: join(here, 'model') },
  },
});

async function main(): Promise<void> {
  await tf.setBackend(args.backend);
  await tf.ready();
  const epochs = Number(args.epochs);
  const batchSize = Number(args['batch-size']);
  const seed = Number(args.seed);
  const train = loadFashionMnist({ split: 'train' });
  const test = loadFashionMnist({ split: 'test' });
  const evalSize = Math.min(Number(args['eval-size']), 10000);
  const testPart = {
    images: tf.slice(test.images, 0, evalSize) as tf.Tensor4D,
    labels: tf.slice(test.labels, 0, evalSize) as tf.Tensor1D,
  };
  const stepsPerEpoch = Math.ceil(train.images.shape[0] / batchSize);
  const progress = terminalProgress({ epochs });
  const options: TrainerOptions = {
    schedule: warmupCosineSchedule({
      peakLr: Number(args.lr),
      warmupSteps: Number(args['warmup-steps']),
      totalSteps: epochs * stepsPerEpoch,
      minLr: Number(args.lr) / 100,
    }),
    augment: (x, random) => randomHorizontalFlip(x, { random }),
    seed,
    onProgress: progress.onProgress,
  };
  const { trainer, history } = await startTrainer(args.resume, args.checkpoint, options, () =>
    createViT(FASHION_VIT_CONFIG, {}, { seed }),
  );
  const model = trainer.model;
  console.log(
    `backend ${tf.getBackend()}, params ${model.countParams()}, ${stepsPerEpoch} steps/epoch, batch ${batchSize}, epochs ${epochs}`,
  );
  await runEpochs(trainer, train, testPart, history, {
    epochs,
    batchSize,
    maxSteps: args['max-steps'] == null ? undefined : Number(args['max-steps']),
    checkpoint: args.checkpoint,
    config: FASHION_VIT_CONFIG,
    evalKey: 'testAccuracyFirst2000',
  });
  const full = await evaluateModel(model, test);
  console.log(`test accuracy (10,000 images): ${(100 * full.accuracy).toFixed(2)}%`);
  model.setUserDefinedMetadata({
    training: {
      data: 'Fashion-MNIST (Debian dataset-fashion-mnist), 60,000 train; 10,000 test evaluated',
      config: FASHION_VIT_CONFIG,
      seed,
      epochs,
      batchSize,
      peakLearningRate: Number(args.lr),
      warmupSteps: Number(args['warmup-steps']),
      optimizer: 'GroupedAdamW (timm decay split, weight decay 0.05), warm-up + cosine to lr/100',
      augmentation: 'random horizontal flip',
      backend: tf.getBackend(),
      history,
      testAccuracy: full.accuracy,
      testLoss: full.loss,
    },
  });
  await saveModel(model, args.out);
  console.log(`saved ${args.out}`);
  progress.stop();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
