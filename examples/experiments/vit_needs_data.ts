/**
 * "ViT needs data": test accuracy of ViT-Tiny/4 and ResNet18 (CIFAR stem) on Fashion-MNIST as
 * the training set grows (full mode 1k / 5k / 20k / 60k images; every size trains the same
 * number of epochs, so larger sets also get more optimizer steps), one chart.
 *
 *   npm run example:vit-needs-data -- --quick     # CI smoke run: 20 / 40 images, 1 epoch
 *   npm run example:vit-needs-data                # default: 100 / 300 / 800 images, 2 epochs (~20 min)
 *   npm run example:vit-needs-data -- --full      # 1k / 5k / 20k / 60k images, 10 epochs (days on wasm)
 *   options: --out DIR, --sizes 1000,5000, --epochs, --test-per-class, --batch-size, --backend
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { Trainer, warmupCosineSchedule } from '../../src/index';
import { loadFashionMnist } from '../../src/node';
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
    ...trainingExperimentOptions('vit-needs-data'),
    sizes: { type: 'string' },
  },
});

const PRESETS = {
  quick: { sizes: [20, 40], epochs: 1, testPerClass: 5, batchSize: 20 },
  // About 20 minutes on the 2-core VM (2 x 1,200 training images for both models + 3 x 300 tests).
  default: { sizes: [100, 300, 800], epochs: 2, testPerClass: 30, batchSize: 32 },
  full: { sizes: [1000, 5000, 20000, 60000], epochs: 10, testPerClass: 1000, batchSize: 64 },
} as const;

async function main(): Promise<void> {
  const mode = modeOf(args);
  const p = PRESETS[mode];
  const sizes = args.sizes ? args.sizes.split(',').map(Number) : [...p.sizes];
  const epochs = Number(args.epochs ?? p.epochs);
  const testPerClass = Number(args['test-per-class'] ?? p.testPerClass);
  const batchSize = Number(args['batch-size'] ?? p.batchSize);
  const seed = Number(args.seed);
  const rateBefore = await setUp(args.backend);
  console.log(`mode ${mode}, 1024^2 matMul ${rateBefore.toFixed(1)} GFLOP/s (quiet: ~28)`);
  const all = loadFashionMnist({ split: 'train' });
  const fullTest = loadFashionMnist({ split: 'test' });
  const test = subset(fullTest, testPerClass);
  tf.dispose([fullTest.images, fullTest.labels]);
  const rows: Array<{
    model: string;
    trainSize: number;
    testAccuracy: number;
    runningStatsAccuracy: number | null;
    trainAccuracy: number;
    seconds: number;
  }> = [];
  for (const size of sizes) {
    const train = subset(all, Math.floor(size / 10));
    for (const kind of ['vit', 'resnet'] as const) {
      const model = makeModel(kind, 10, seed);
      const steps = Math.ceil(train.images.shape[0] / batchSize) * epochs;
      const trainer = new Trainer(model, {
        schedule: warmupCosineSchedule({
          peakLr: Number(args.lr),
          warmupSteps: Math.ceil(steps / 10),
          totalSteps: steps,
          minLr: Number(args.lr) / 100,
        }),
        augment: cropFlip,
        seed,
      });
      let seconds = 0;
      let trainAccuracy = 0;
      await withWorkers(trainer, Number(args.workers), args.backend, async () => {
        for (let e = 0; e < epochs; e++) {
          const r = await trainer.trainEpoch(train, { batchSize });
          seconds += r.seconds;
          trainAccuracy = r.accuracy;
        }
      });
      const ev = await testAccuracy(trainer, train, test);
      rows.push({
        model: MODEL_LABEL[kind],
        trainSize: train.images.shape[0],
        testAccuracy: ev.accuracy,
        runningStatsAccuracy: ev.runningStatsAccuracy,
        trainAccuracy,
        seconds,
      });
      console.log(
        `${MODEL_LABEL[kind]}, ${train.images.shape[0]} images: test ${percent(ev.accuracy)} (running BN stats ${percent(ev.runningStatsAccuracy)}), train ${(100 * trainAccuracy).toFixed(1)}%, ${seconds.toFixed(0)} s`,
      );
      trainer.dispose();
      model.dispose();
    }
    tf.dispose([train.images, train.labels]);
  }
  const rateAfter = await matMulGflops();
  const table = markdownTable(
    [
      'model',
      'training images',
      'train acc (last epoch)',
      'test acc',
      'test acc (running BN stats)',
      'train time (s)',
    ],
    rows.map((r) => [
      r.model,
      r.trainSize,
      percent(r.trainAccuracy),
      percent(r.testAccuracy),
      percent(r.runningStatsAccuracy),
      r.seconds.toFixed(0),
    ]),
  );
  const note = `Fashion-MNIST, ${epochs} epochs per size, batch ${batchSize}, test ${test.images.shape[0]} images (ResNet18: BatchNorm statistics re-estimated on up to 500 training images before testing; the running statistics' accuracy beside it); ${workersNote(args.workers)}1024^2 matMul ${rateBefore.toFixed(1)} / ${rateAfter.toFixed(1)} GFLOP/s before / after (quiet ~28).`;
  writeResults(args.out, table, note, {
    mode,
    epochs,
    rows,
    matMulGflops: [rateBefore, rateAfter],
  });
  await renderChart(
    {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: 'Test accuracy vs training-set size (Fashion-MNIST)',
      width: 420,
      height: 260,
      data: { values: rows },
      mark: { type: 'line', point: true },
      encoding: {
        x: {
          field: 'trainSize',
          type: 'quantitative',
          scale: { type: 'log' },
          title: 'training images (log scale)',
        },
        y: {
          field: 'testAccuracy',
          type: 'quantitative',
          scale: { zero: false },
          axis: { format: '%' },
          title: 'test accuracy',
        },
        color: { field: 'model', type: 'nominal', legend: { labelLimit: 0 } },
      },
    },
    join(args.out, 'accuracy_vs_size.png'),
  );
  console.log(`wrote ${join(args.out, 'accuracy_vs_size.png')}`);
  tf.dispose([all.images, all.labels, test.images, test.labels]);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
