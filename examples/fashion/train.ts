/**
 * Trains the small Vision Transformer that ships in examples/fashion/model/ on Fashion-MNIST
 * (Debian's dataset-fashion-mnist: 60,000 training images; the 10,000 test images are only
 * evaluated), with the vit-ts training kit: Trainer, warm-up + cosine schedule, AdamW parameter
 * groups, seeded data order and augmentation, crash-safe checkpoints after every epoch.
 *
 *   npx tsx examples/fashion/train.ts                      # the shipped run (see README.md)
 *   npx tsx examples/fashion/train.ts --epochs 1 --max-steps 20 --out /tmp/f   # timing probe
 *   npx tsx examples/fashion/train.ts --resume             # continue from the checkpoint
 *   npx tsx examples/fashion/train.ts --init DIR --max-shift 2   # a second stage from a saved model
 *
 * `--resume --epochs E` with a larger E than the checkpoint was started with stretches the cosine
 * to E epochs from the saved step on (a warm restart); say so with `--note`, which is stored in
 * the training record.
 *
 * `--init DIR` starts a new run (new optimizer and schedule) from the Fashion-MNIST ViT saved in
 * DIR, every weight kept (same task); its training record is kept as `initializedFrom`.
 * `--max-shift N` adds a random crop with N px of zero padding (a shift of up to N px) to the
 * random horizontal flip. `--ema-decay D` keeps an EMA of the weights (timm's `model_ema_decay`):
 * every epoch records both accuracies, the end both on the 10,000 test images, and the saved
 * model holds the EMA weights (chosen before training, as timm reports its EMA model).
 * `--stem conv` trains the hybrid instead of the plain ViT: `fashionConvStem` (two 3x3 stride-2
 * convolutions) makes the 7 x 7 tokens that the plain ViT cuts as 4 px patches (config.ts).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  createViT,
  evaluateModel,
  findVisionTransformer,
  HybridVisionTransformer,
  randomCrop,
  randomHorizontalFlip,
  type TrainerOptions,
  type ViTConfig,
  warmupCosineSchedule,
} from '../../src/index';
import { loadFashionMnist, loadModel, saveModel, terminalProgress } from '../../src/node';
import { runOptions, trainingOptions } from '../experiments/common';
import { runEpochs, startTrainer } from '../shipped_training';
import { createFashionHybridViT, FASHION_HYBRID_VIT_CONFIG, FASHION_VIT_CONFIG } from './config';

/** What the record says of the hybrid's backbone (`--stem conv`, `fashionConvStem`). */
const CONV_STEM_RECORD =
  'fashionConvStem: conv 3x3 stride 2 (32) + BatchNorm + ReLU, conv 3x3 stride 2 (64) + BatchNorm + ReLU; config is the ViT on its 7 x 7 x 64 map';

const here = dirname(fileURLToPath(import.meta.url));

const { values: args } = parseArgs({
  options: {
    ...runOptions(),
    ...trainingOptions({ epochs: '10', batchSize: '128', lr: '2e-3' }),
    'warmup-steps': { type: 'string', default: '469' },
    'label-smoothing': { type: 'string', default: '0.1' },
    'max-steps': { type: 'string' },
    'eval-size': { type: 'string', default: '2000' },
    resume: { type: 'boolean', default: false },
    init: { type: 'string' },
    'max-shift': { type: 'string', default: '0' },
    'ema-decay': { type: 'string' },
    // Warm the EMA's decay up (timm's ModelEmaV3 use_warmup), for runs from random weights.
    'ema-warmup': { type: 'boolean', default: false },
    // 'patch': the plain ViT (4 px patches); 'conv': the hybrid, a conv stem making the tokens.
    stem: { type: 'string', default: 'patch' },
    // Free text kept in the training record, e.g. why a resumed run changed its schedule.
    note: { type: 'string' },
    // JSON merged over the --stem's config (FASHION_VIT_CONFIG or FASHION_HYBRID_VIT_CONFIG) for
    // a new run, e.g. '{"embedDim":96}'; the factories reject unknown fields. Ignored by
    // --resume (the checkpoint carries its model).
    config: { type: 'string' },
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
  const stem = args.stem;
  if (stem !== 'patch' && stem !== 'conv') {
    throw new Error(`--stem: expected 'patch' or 'conv', got ${stem}`);
  }
  const overrides = parseConfig(args.config);
  const requested: ViTConfig = {
    ...(stem === 'conv' ? FASHION_HYBRID_VIT_CONFIG : FASHION_VIT_CONFIG),
    ...overrides,
  };
  const progress = terminalProgress({ epochs });
  const maxShift = Number(args['max-shift']);
  if (!Number.isInteger(maxShift) || maxShift < 0) {
    throw new Error(
      `--max-shift: expected a whole number of pixels >= 0, got ${args['max-shift']}`,
    );
  }
  const augmentation =
    maxShift > 0
      ? `random horizontal flip, then random crop with ${maxShift} px zero padding`
      : 'random horizontal flip';
  const options: TrainerOptions = {
    schedule: warmupCosineSchedule({
      peakLr: Number(args.lr),
      warmupSteps: Number(args['warmup-steps']),
      totalSteps: epochs * stepsPerEpoch,
      minLr: Number(args.lr) / 100,
    }),
    augment:
      maxShift > 0
        ? (x, random) =>
            tf.tidy(() =>
              randomCrop(randomHorizontalFlip(x, { random }), { padding: maxShift, random }),
            )
        : (x, random) => randomHorizontalFlip(x, { random }),
    labelSmoothing: Number(args['label-smoothing']),
    ...(args['ema-decay'] == null ? {} : { emaDecay: Number(args['ema-decay']) }),
    ...(args['ema-warmup'] ? { emaWarmup: true } : {}),
    seed,
    onProgress: progress.onProgress,
  };
  if (args.resume && args.init != null) {
    console.log(`--resume: the checkpoint's own start is used, --init ${args.init} is ignored`);
  }
  const init = args.init == null || args.resume ? null : await savedStart(args.init);
  const started = await startTrainer(args.resume, args.checkpoint, options, () =>
    init != null
      ? init.model
      : stem === 'conv'
        ? createFashionHybridViT(seed, overrides)
        : createViT(requested, {}, { seed }),
  );
  const initializedFrom = (init?.record ?? started.metadata['initializedFrom']) as
    | object
    | undefined;
  const { trainer, history } = started;
  const model = trainer.model;
  // What is trained decides (a resumed checkpoint or an --init model may be a hybrid whatever
  // today's --stem says).
  const hybrid = findVisionTransformer(model) instanceof HybridVisionTransformer;
  // A resumed run trains the checkpoint's model: record its config, not today's --config.
  const config =
    (started.metadata['config'] as ViTConfig | undefined) ??
    (init == null ? requested : init.config);
  console.log(
    `backend ${tf.getBackend()}, params ${model.countParams()}, ${stepsPerEpoch} steps/epoch, batch ${batchSize}, epochs ${epochs}`,
  );
  await runEpochs(trainer, train, testPart, history, {
    epochs,
    batchSize,
    maxSteps: args['max-steps'] == null ? undefined : Number(args['max-steps']),
    checkpoint: args.checkpoint,
    config,
    metadata: {
      ...(initializedFrom == null ? {} : { initializedFrom }),
      ...(hybrid ? { stem: CONV_STEM_RECORD } : {}),
    },
    evalKey: 'testAccuracyFirst2000',
    workers: Number(args.workers),
    backend: args.backend,
  });
  const trained = await evaluateModel(model, test);
  console.log(`test accuracy (10,000 images): ${(100 * trained.accuracy).toFixed(2)}%`);
  let full = trained;
  if (trainer.ema != null) {
    trainer.ema.copyTo();
    full = await evaluateModel(model, test);
    console.log(`EMA weights, saved: ${(100 * full.accuracy).toFixed(2)}%`);
  }
  model.setUserDefinedMetadata({
    training: {
      data: 'Fashion-MNIST (Debian dataset-fashion-mnist), 60,000 train; 10,000 test evaluated',
      config,
      ...(hybrid ? { stem: CONV_STEM_RECORD } : {}),
      trainSize: train.images.shape[0],
      testSize: test.images.shape[0],
      seed,
      epochs,
      batchSize,
      peakLearningRate: Number(args.lr),
      warmupSteps: Number(args['warmup-steps']),
      optimizer: 'GroupedAdamW (timm decay split, weight decay 0.05), warm-up + cosine to lr/100',
      augmentation,
      labelSmoothing: Number(args['label-smoothing']),
      ...(trainer.ema == null
        ? {}
        : {
            emaDecay: trainer.ema.decay,
            ...(trainer.ema.warmup ? { emaWarmup: true } : {}),
            savedWeights: 'the EMA (testAccuracy); the trained weights: trainedTestAccuracy',
            trainedTestAccuracy: trained.accuracy,
          }),
      backend: tf.getBackend(),
      ...(args.note == null ? {} : { note: args.note }),
      ...(initializedFrom == null ? {} : { initializedFrom }),
      history,
      testAccuracy: full.accuracy,
      testLoss: full.loss,
    },
  });
  await saveModel(model, args.out);
  console.log(`saved ${args.out}`);
  progress.stop();
}

/** The Fashion-MNIST ViT saved in `dir`, every weight kept, and what it was trained with. */
async function savedStart(
  dir: string,
): Promise<{ model: LayersModel; record: object; config: ViTConfig }> {
  const model = await loadModel(dir);
  const { imgSize, inChans, numClasses } = findVisionTransformer(model).config;
  if (imgSize[0] !== 28 || imgSize[1] !== 28 || inChans !== 1 || numClasses !== 10) {
    model.dispose();
    throw new Error(
      `--init ${dir}: expected a ViT with 28 x 28 x 1 inputs and 10 classes, got [${imgSize.join(', ')}, ${inChans}] and ${numClasses}`,
    );
  }
  const t =
    (model.getUserDefinedMetadata() as { training?: Record<string, unknown> } | undefined)
      ?.training ?? {};
  // A JSON round trip drops the fields the source's record lacks (tfjs refuses `undefined`).
  const record = JSON.parse(
    JSON.stringify({
      dir,
      epochs: t['epochs'],
      peakLearningRate: t['peakLearningRate'],
      augmentation: t['augmentation'],
      note: t['note'],
      history: t['history'],
      testAccuracy: t['testAccuracy'],
    }),
  ) as object;
  // The config the source was created with (its record), else the one read from the model.
  const config = (t['config'] as ViTConfig | undefined) ?? findVisionTransformer(model).config;
  return { model, record, config: config as ViTConfig };
}

function parseConfig(text: string | undefined): Partial<ViTConfig> {
  if (text == null) return {};
  const parsed: unknown = JSON.parse(text);
  if (parsed == null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error(`--config: expected a JSON object of ViTConfig fields, got ${text}`);
  }
  return parsed as Partial<ViTConfig>;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
