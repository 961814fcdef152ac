/**
 * The lecture's comparison on real data: ViT-Tiny (patch adapted to 28 px) against ResNet18
 * (CIFAR stem) on Fashion-MNIST, trained side by side with the same recipe (vit-ts Trainer,
 * AdamW weight decay 0.05, warm-up + cosine, random crop + flip). Prints and writes the table
 * (parameters, train / test accuracy per epoch, time per epoch, images/s) and the accuracy
 * curves as a PNG.
 *
 *   npm run example:vit-vs-resnet -- --quick          # CI smoke run: 40 / 50 images, 2 steps per model
 *   npm run example:vit-vs-resnet                     # default: 1,000 / 500 images, 2 epochs (~15 min)
 *   npm run example:vit-vs-resnet -- --full           # 60,000 / 10,000 images, 10 epochs (~59 CPU hours on wasm, docs/experiments.md)
 *   options: --out DIR (default examples/output/vit-vs-resnet), --backend, --epochs,
 *            --train-per-class, --test-per-class, --batch-size, --seed
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { Trainer, warmupCosineSchedule } from '../../src/index';
import { loadFashionMnist, terminalProgress } from '../../src/node';
import { matMulGflops } from '../matmul_rate';
import {
  cropFlip,
  MODEL_LABEL,
  makeModel,
  markdownTable,
  modeOf,
  percent,
  renderChart,
  setUp,
  subset,
  testAccuracy,
  trainingExperimentOptions,
  withWorkers,
  workersNote,
  writeResults,
} from './common';

const { values: args } = parseArgs({
  options: {
    ...trainingExperimentOptions('vit-vs-resnet'),
    'train-per-class': { type: 'string' },
    models: { type: 'string', default: 'vit,resnet' },
  },
});

const PRESETS = {
  quick: { trainPerClass: 4, testPerClass: 5, epochs: 1, batchSize: 20 },
  // Sized for about 15 minutes on the 2-core VM (quiet: ~0.42 s per training image for the
  // two models together at 28 px, ~0.14 s per test image).
  default: { trainPerClass: 100, testPerClass: 50, epochs: 2, batchSize: 32 },
  full: { trainPerClass: 6000, testPerClass: 1000, epochs: 10, batchSize: 64 },
} as const;

interface Row {
  model: string;
  params: number;
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  testAccuracy: number;
  /** ResNet18's test accuracy with the running BatchNorm statistics as trained (ViT: null). */
  runningStatsAccuracy: number | null;
  seconds: number;
  imagesPerSecond: number;
}

async function main(): Promise<void> {
  const mode = modeOf(args);
  const p = PRESETS[mode];
  const trainPerClass = Number(args['train-per-class'] ?? p.trainPerClass);
  const testPerClass = Number(args['test-per-class'] ?? p.testPerClass);
  const epochs = Number(args.epochs ?? p.epochs);
  const batchSize = Number(args['batch-size'] ?? p.batchSize);
  const seed = Number(args.seed);
  const rateBefore = await setUp(args.backend);
  console.log(
    `mode ${mode}, backend ${tf.getBackend()}, 1024^2 matMul ${rateBefore.toFixed(1)} GFLOP/s (quiet machine: ~28)`,
  );

  const fullTrain = loadFashionMnist({
    split: 'train',
    limit: Math.min(60000, trainPerClass * 10 * 2 + 1000),
  });
  const fullTest = loadFashionMnist({ split: 'test' });
  const train = subset(fullTrain, trainPerClass);
  const test = subset(fullTest, testPerClass);
  tf.dispose([fullTrain.images, fullTrain.labels, fullTest.images, fullTest.labels]);
  console.log(
    `train ${train.images.shape[0]} images, test ${test.images.shape[0]}, ${epochs} epochs, batch ${batchSize}`,
  );

  const rows: Row[] = [];
  const kinds = args.models.split(',') as Array<'vit' | 'resnet'>;
  for (const kind of kinds) {
    const model = makeModel(kind, 10, seed);
    const steps = Math.ceil(train.images.shape[0] / batchSize) * epochs;
    const progress = terminalProgress({ epochs });
    const trainer = new Trainer(model, {
      schedule: warmupCosineSchedule({
        peakLr: Number(args.lr),
        warmupSteps: Math.ceil(steps / 10),
        totalSteps: steps,
        minLr: Number(args.lr) / 100,
      }),
      augment: cropFlip,
      seed,
      onProgress: progress.onProgress,
    });
    console.log(`${MODEL_LABEL[kind]}: ${model.countParams().toLocaleString('en')} parameters`);
    await withWorkers(trainer, Number(args.workers), args.backend, async () => {
      for (let e = 0; e < epochs; e++) {
        const r = await trainer.trainEpoch(train, { batchSize });
        const ev = await testAccuracy(trainer, train, test);
        rows.push({
          model: MODEL_LABEL[kind],
          params: model.countParams(),
          epoch: e + 1,
          trainLoss: r.loss,
          trainAccuracy: r.accuracy,
          testAccuracy: ev.accuracy,
          runningStatsAccuracy: ev.runningStatsAccuracy,
          seconds: r.seconds,
          imagesPerSecond: r.imagesPerSecond,
        });
        console.log(
          `  epoch ${e + 1}: train acc ${(100 * r.accuracy).toFixed(1)}%, test acc ${percent(ev.accuracy)} (running BN stats ${percent(ev.runningStatsAccuracy)}), ${r.seconds.toFixed(0)} s, ${r.imagesPerSecond.toFixed(1)} img/s`,
        );
      }
    });
    progress.stop();
    trainer.dispose();
    model.dispose();
  }
  const rateAfter = await matMulGflops();
  const table = markdownTable(
    [
      'model',
      'params',
      'epoch',
      'train loss',
      'train acc',
      'test acc',
      'test acc (running BN stats)',
      's / epoch',
      'images/s',
    ],
    rows.map((r) => [
      r.model,
      r.params.toLocaleString('en'),
      r.epoch,
      r.trainLoss.toFixed(3),
      percent(r.trainAccuracy),
      percent(r.testAccuracy),
      percent(r.runningStatsAccuracy),
      r.seconds.toFixed(0),
      r.imagesPerSecond.toFixed(1),
    ]),
  );
  const note = `Fashion-MNIST, ${train.images.shape[0]} training / ${test.images.shape[0]} test images (first per class in file order; ResNet18 tested with BatchNorm statistics re-estimated on up to 500 training images, the running statistics' accuracy beside it), ${epochs} epochs, batch ${batchSize}, backend ${args.backend}; ${workersNote(args.workers)}1024^2 matMul ${rateBefore.toFixed(1)} GFLOP/s before, ${rateAfter.toFixed(1)} after (quiet: ~28).`;
  writeResults(args.out, table, note, { mode, seed, rows, matMulGflops: [rateBefore, rateAfter] });
  const long = rows.flatMap((r) => [
    { model: r.model, epoch: r.epoch, split: 'train', accuracy: r.trainAccuracy },
    { model: r.model, epoch: r.epoch, split: 'test', accuracy: r.testAccuracy },
  ]);
  await renderChart(
    {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: {
        text: `ViT-Tiny vs ResNet18 on Fashion-MNIST (${train.images.shape[0]} training images)`,
        subtitle: 'solid: test accuracy, dashed: train accuracy (augmented, during the epoch)',
      },
      width: 420,
      height: 260,
      data: { values: long },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1, format: 'd' } },
        y: {
          field: 'accuracy',
          type: 'quantitative',
          scale: { zero: false },
          axis: { format: '%' },
        },
        color: { field: 'model', type: 'nominal', legend: { labelLimit: 0 } },
        strokeDash: { field: 'split', type: 'nominal', legend: null },
      },
    },
    join(args.out, 'accuracy.png'),
  );
  console.log(`wrote ${join(args.out, 'results.md')}, results.json, accuracy.png`);
  tf.dispose([train.images, train.labels, test.images, test.labels]);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
