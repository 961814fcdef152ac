/**
 * Fine-tuning strategies with a ViT pretrained by vit-ts: pretrain on Fashion-MNIST classes
 * 0-4 (T-shirt, trouser, pullover, dress, coat), then adapt to classes 5-9 (sandal, shirt,
 * sneaker, bag, ankle boot) with a new head (`resetClassifier`):
 * - linear probe: `freeze(model, ['patchEmbed', 'embed', 'blocks'])`, only norm + head train;
 * - layer-wise learning rates: `createParamGroups(model, { layerDecay: 0.65 })`;
 * - full fine-tuning: every weight at the same rate;
 * - from scratch: the same ViT without pretraining (the baseline).
 * Accuracies and times in one table and one chart.
 *
 *   npm run example:finetune -- --quick     # CI smoke run
 *   npm run example:finetune                # default: 30,000 pretraining / 1,000 fine-tuning images
 *   npm run example:finetune -- --full      # 30,000 / 30,000 images
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  createParamGroups,
  freeze,
  type ImageDataset,
  resetClassifier,
  Trainer,
  type TrainerOptions,
  warmupCosineSchedule,
} from '../../src/index';
import { loadFashionMnist } from '../../src/node';
import { SMALL_VIT_28_CONFIG } from '../fashion/config';
import { matMulGflops } from '../matmul_rate';
import {
  cropFlip,
  experimentOptions,
  makeModel,
  markdownTable,
  modeOf,
  renderChart,
  setUp,
  subset,
  withWorkers,
  workersNote,
  writeResults,
} from './common';

const { values: args } = parseArgs({
  options: experimentOptions('finetune'),
});

const PRESETS = {
  quick: {
    pretrainPerClass: 20,
    pretrainEpochs: 1,
    finetunePerClass: 10,
    finetuneEpochs: 1,
    testPerClass: 10,
    batchSize: 20,
  },
  // 10.5 minutes with --workers 2 on two quiet cores (measured, docs/experiments.md): every training
  // image of classes 0-4 for the pretraining, a small target set for the fine-tuning.
  default: {
    pretrainPerClass: 6000,
    pretrainEpochs: 3,
    finetunePerClass: 200,
    finetuneEpochs: 5,
    testPerClass: 500,
    batchSize: 32,
  },
  full: {
    pretrainPerClass: 6000,
    pretrainEpochs: 10,
    finetunePerClass: 6000,
    finetuneEpochs: 5,
    testPerClass: 1000,
    batchSize: 64,
  },
} as const;

function schedule(steps: number, peakLr: number): TrainerOptions['schedule'] {
  return warmupCosineSchedule({
    peakLr,
    warmupSteps: Math.ceil(steps / 10),
    totalSteps: steps,
    minLr: peakLr / 100,
  });
}

async function trainFor(
  model: LayersModel,
  data: ImageDataset,
  epochs: number,
  batchSize: number,
  options: Omit<TrainerOptions, 'schedule'>,
  peakLr: number,
  seed: number,
): Promise<{ trainer: Trainer; seconds: number }> {
  const steps = Math.ceil(data.images.shape[0] / batchSize) * epochs;
  const trainer = new Trainer(model, {
    ...options,
    schedule: schedule(steps, peakLr),
    augment: cropFlip,
    seed,
  });
  let seconds = 0;
  await withWorkers(trainer, Number(args.workers), args.backend, async () => {
    for (let e = 0; e < epochs; e++)
      seconds += (await trainer.trainEpoch(data, { batchSize })).seconds;
  });
  return { trainer, seconds };
}

async function main(): Promise<void> {
  const mode = modeOf(args);
  const p = PRESETS[mode];
  const seed = Number(args.seed);
  const rateBefore = await setUp(args.backend);
  console.log(`mode ${mode}, 1024^2 matMul ${rateBefore.toFixed(1)} GFLOP/s (quiet: ~28)`);
  const all = loadFashionMnist({ split: 'train' });
  const allTest = loadFashionMnist({ split: 'test' });
  const A = [0, 1, 2, 3, 4];
  const B = [5, 6, 7, 8, 9];
  const pre = subset(all, p.pretrainPerClass, A);
  const preTest = subset(allTest, p.testPerClass, A);
  const ft = subset(all, p.finetunePerClass, B);
  const ftTest = subset(allTest, p.testPerClass, B);
  tf.dispose([all.images, all.labels, allTest.images, allTest.labels]);

  // 1. Pretraining on task A.
  const base = makeModel('vit', 5, seed, SMALL_VIT_28_CONFIG);
  const preRun = await trainFor(base, pre, p.pretrainEpochs, p.batchSize, {}, 2e-3, seed);
  const preAcc = (await preRun.trainer.evaluate(preTest)).accuracy;
  preRun.trainer.dispose();
  console.log(
    `pretrained on classes 0-4 (${pre.images.shape[0]} images): test ${(100 * preAcc).toFixed(1)}%, ${preRun.seconds.toFixed(0)} s`,
  );

  // 2. The strategies on task B.
  const strategies: Array<{
    name: string;
    make: () => { model: LayersModel; options: Omit<TrainerOptions, 'schedule'>; lr: number };
  }> = [
    {
      name: 'linear probe (frozen blocks)',
      make: () => {
        const model = resetClassifier(base, 5);
        freeze(model, ['patchEmbed', 'embed', 'blocks']);
        return { model, options: {}, lr: 5e-3 };
      },
    },
    {
      name: 'layer-wise lr (decay 0.65)',
      make: () => {
        const model = resetClassifier(base, 5);
        return {
          model,
          options: { groups: createParamGroups(model, { layerDecay: 0.65 }) },
          lr: 2e-3,
        };
      },
    },
    {
      name: 'full fine-tuning',
      make: () => ({ model: resetClassifier(base, 5), options: {}, lr: 1e-3 }),
    },
    {
      name: 'from scratch (no pretraining)',
      make: () => ({
        model: makeModel('vit', 5, seed + 1, SMALL_VIT_28_CONFIG),
        options: {},
        lr: 2e-3,
      }),
    },
  ];
  const rows: Array<{
    strategy: string;
    trainable: number;
    testAccuracy: number;
    seconds: number;
  }> = [];
  for (const s of strategies) {
    const { model, options, lr } = s.make();
    const trainable = model.trainableWeights.reduce(
      (n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1),
      0,
    );
    const run = await trainFor(model, ft, p.finetuneEpochs, p.batchSize, options, lr, seed);
    const acc = (await run.trainer.evaluate(ftTest)).accuracy;
    rows.push({ strategy: s.name, trainable, testAccuracy: acc, seconds: run.seconds });
    console.log(
      `${s.name}: ${trainable} trainable, test ${(100 * acc).toFixed(1)}%, ${run.seconds.toFixed(0)} s`,
    );
    run.trainer.dispose();
    model.dispose();
  }
  base.dispose();
  const rateAfter = await matMulGflops();
  const table = markdownTable(
    ['strategy (classes 5-9)', 'trainable params', 'test acc', 'fine-tune time (s)'],
    rows.map((r) => [
      r.strategy,
      r.trainable.toLocaleString('en'),
      `${(100 * r.testAccuracy).toFixed(1)}%`,
      r.seconds.toFixed(0),
    ]),
  );
  const note = `Pretraining: classes 0-4, ${pre.images.shape[0]} images, ${p.pretrainEpochs} epochs, test ${(100 * preAcc).toFixed(1)}%. Fine-tuning: classes 5-9, ${ft.images.shape[0]} images, ${p.finetuneEpochs} epochs, test ${ftTest.images.shape[0]} images. ${workersNote(args.workers)}1024^2 matMul ${rateBefore.toFixed(1)} / ${rateAfter.toFixed(1)} GFLOP/s before / after (quiet ~28).`;
  writeResults(args.out, table, note, {
    mode,
    preAcc,
    rows,
    matMulGflops: [rateBefore, rateAfter],
  });
  await renderChart(
    {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: 'Fine-tuning a ViT pretrained on Fashion-MNIST classes 0-4 to classes 5-9',
      width: 420,
      height: 220,
      data: { values: rows },
      mark: 'bar',
      encoding: {
        y: {
          field: 'strategy',
          type: 'nominal',
          sort: null,
          title: null,
          axis: { labelLimit: 320 },
        },
        x: {
          field: 'testAccuracy',
          type: 'quantitative',
          axis: { format: '%' },
          title: 'test accuracy',
        },
      },
    },
    join(args.out, 'finetune.png'),
  );
  console.log(`wrote ${join(args.out, 'finetune.png')}`);
  tf.dispose([
    pre.images,
    pre.labels,
    preTest.images,
    preTest.labels,
    ft.images,
    ft.labels,
    ftTest.images,
    ftTest.labels,
  ]);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
