import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import {
  createResNet18,
  createViT,
  evaluateModel,
  freeze,
  type ImageDataset,
  randomCrop,
  setSeed,
  Trainer,
  type TrainProgress,
  warmupCosineSchedule,
} from '../../src/index';
import { describeBackends } from '../helpers/backends';
import { toyData, toyViTConfig as vitConfig, weightsOf } from '../helpers/toy_training';

describeBackends('Trainer', (backend) => {
  it('learns the toy task: loss falls and test accuracy rises (warm-up + cosine, clipping, smoothing)', async () => {
    const train = toyData(72, 1);
    const test = toyData(48, 2);
    const model = createViT(vitConfig, {}, { seed: 7 });
    const seen: TrainProgress[] = [];
    const trainer = new Trainer(model, {
      schedule: warmupCosineSchedule({ peakLr: 3e-3, warmupSteps: 3, totalSteps: 27 }),
      labelSmoothing: 0.1,
      clipGradNorm: 1,
      seed: 3,
      onProgress: (p) => seen.push(p),
    });
    const before = await trainer.evaluate(test);
    const tensors = tf.memory().numTensors;
    let last = null;
    for (let e = 0; e < 3; e++) last = await trainer.trainEpoch(train, { batchSize: 8 });
    // Adam moments of every trainable weight exist now; nothing else may stay behind.
    const moments = 2 * model.trainableWeights.length;
    expect(tf.memory().numTensors - tensors).toBe(moments);
    const after = await trainer.evaluate(test);
    expect(trainer.step).toBe(27);
    expect(trainer.epoch).toBe(3);
    expect(last!.stepLosses.length).toBe(9);
    expect(after.loss).toBeLessThan(before.loss * 0.7);
    expect(after.accuracy).toBeGreaterThanOrEqual(0.9);
    expect(seen.length).toBe(27);
    expect(seen[8]).toMatchObject({ epoch: 0, batch: 9, batches: 9, step: 9 });
    expect(seen[0].learningRate).toBeCloseTo(1e-3, 10);
    expect(seen[11].imagesPerSecond).toBeGreaterThan(0);
    expect(seen[26].etaSeconds).toBe(0);
    trainer.dispose();
    model.dispose();
    tf.dispose([train.images, train.labels, test.images, test.labels]);
  });

  it('is deterministic: same seeds give the same weights after 6 steps (augmentation, mixup, EMA, dropout)', async () => {
    const data = toyData(24, 5);
    const run = async () => {
      setSeed(11); // seeded dropout / drop path
      const model = createViT({ ...vitConfig, dropRate: 0.1, dropPathRate: 0.1 }, {}, { seed: 21 });
      const trainer = new Trainer(model, {
        schedule: warmupCosineSchedule({ peakLr: 2e-3, warmupSteps: 2, totalSteps: 6 }),
        seed: 5,
        emaDecay: 0.9,
        mix: { mixupAlpha: 0.4, cutmixAlpha: 1 },
        augment: (x, random) => randomCrop(x, { padding: 1, random }),
      });
      await trainer.trainEpoch(data, { batchSize: 4 });
      const w = await weightsOf(model);
      const ema = await trainer.ema!.getState();
      trainer.dispose();
      model.dispose();
      setSeed(null);
      return { w, ema };
    };
    const a = await run();
    const b = await run();
    expect(a.w.length).toBe(b.w.length);
    a.w.forEach((arr, i) => {
      expect(Array.from(b.w[i])).toEqual(Array.from(arr));
    });
    a.ema.forEach((e, i) => {
      expect(Array.from(b.ema[i].values)).toEqual(Array.from(e.values));
    });
    // And the seed matters: another trainer seed gives other weights.
    tf.dispose([data.images, data.labels]);
  });

  it('emaWarmup: the first step copies the trained weights into the EMA; it needs emaDecay', async () => {
    const data = toyData(8, 3);
    const model = createViT(vitConfig, {}, { seed: 4 });
    const schedule = warmupCosineSchedule({ peakLr: 2e-3, warmupSteps: 1, totalSteps: 2 });
    const trainer = new Trainer(model, { schedule, seed: 1, emaDecay: 0.999, emaWarmup: true });
    expect(trainer.ema!.warmup).toBe(true);
    await trainer.trainEpoch(data, { batchSize: 8 });
    const w = await weightsOf(model);
    const ema = await trainer.ema!.getState();
    // One step, decay 0 at update 1: the average is the weights after that step, exactly.
    ema.forEach((e, i) => {
      expect(Array.from(e.values)).toEqual(Array.from(w[i]));
    });
    trainer.dispose();
    expect(() => new Trainer(model, { schedule, emaWarmup: true })).toThrow(
      /Trainer: emaWarmup needs emaDecay/,
    );
    model.dispose();
    tf.dispose([data.images, data.labels]);
  });

  it('refuses labels that are not class indices, naming what came, before any step', async () => {
    const model = createViT(vitConfig, {}, { seed: 2 });
    const trainer = new Trainer(model, {
      schedule: warmupCosineSchedule({ peakLr: 1e-3, warmupSteps: 1, totalSteps: 4 }),
      seed: 1,
    });
    const classes = trainer.numClasses;
    const images = tf.zeros([
      4,
      vitConfig.imgSize,
      vitConfig.imgSize,
      vitConfig.inChans,
    ]) as tf.Tensor4D;
    const before = await weightsOf(model);
    const cases: Array<[tf.Tensor, RegExp]> = [
      [
        tf.tensor1d([0, 1, 2, classes], 'int32'),
        new RegExp(
          `integers in \\[0, ${classes - 1}\\] for ${classes} classes, got ${classes} at index 3`,
        ),
      ],
      [tf.tensor1d([0, -1, 0, 0], 'int32'), /got -1 at index 1/],
      [tf.tensor1d([0, 1.5, 0, 0]), /got 1.5 at index 1/],
      [
        tf.oneHot(tf.tensor1d([0, 1, 0, 1], 'int32'), classes),
        /got shape \[4, \d+\] \(one-hot labels\? pass tf.argMax\(labels, -1\)\)/,
      ],
      [tf.tensor1d([0, 1, 0], 'int32'), /4 images but 3 labels/],
    ];
    for (const [labels, message] of cases) {
      await expect(
        trainer.trainEpoch({ images, labels: labels as tf.Tensor1D }, { batchSize: 2 }),
      ).rejects.toThrow(message);
      await expect(trainer.trainStep(images, labels as tf.Tensor1D)).rejects.toThrow(message);
      await expect(evaluateModel(model, { images, labels: labels as tf.Tensor1D })).rejects.toThrow(
        message,
      );
    }
    expect(trainer.step).toBe(0);
    const after = await weightsOf(model);
    after.forEach((w, i) => {
      expect(Array.from(w)).toEqual(Array.from(before[i]));
    });
    tf.dispose([images, ...cases.map((c) => c[0])]);
    trainer.dispose();
    model.dispose();
  });

  it('trains a ResNet18 (BatchNorm statistics move) and only the unfrozen part of a ViT', async () => {
    const data = toyData(8, 6);
    // One backend is enough for the Trainer's BatchNorm path: ResNet18 training on cpu is covered
    // by test/train/fit.test.ts, and on SwiftShader (webgl, webgpu) it would take minutes.
    if (backend === 'wasm') await trainResNet(data);
    await trainFrozenViT(data);
    tf.dispose([data.images, data.labels]);
  });
});

async function trainResNet(data: ImageDataset): Promise<void> {
  {
    const resnet = createResNet18({
      numClasses: 3,
      stem: 'cifar',
      imgSize: 8,
      inChans: 1,
      seed: 2,
    });
    const stat = resnet.weights.find((w) => w.name.includes('bn1/moving_mean'))!;
    const statBefore = Array.from(await stat.read().data());
    const rt = new Trainer(resnet, { schedule: () => 1e-3, seed: 1 });
    const r = await rt.trainEpoch(data, { batchSize: 8 });
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(Array.from(await stat.read().data())).not.toEqual(statBefore);
    rt.dispose();
    resnet.dispose();
  }
}

async function trainFrozenViT(data: ImageDataset): Promise<void> {
  {
    const vit = createViT(vitConfig, {}, { seed: 3 });
    freeze(vit, ['patchEmbed', 'embed', 'blocks']);
    const frozen = vit.weights.filter((w) => w.name.includes('blocks/'));
    const frozenBefore = await Promise.all(
      frozen.map(async (w) => Array.from(await w.read().data())),
    );
    const head = vit.weights.find((w) => w.name.includes('head/kernel'))!;
    const headBefore = Array.from(await head.read().data());
    const vt = new Trainer(vit, { schedule: () => 1e-2, seed: 1 });
    await vt.trainEpoch(data, { batchSize: 4 });
    for (const [i, w] of frozen.entries())
      expect(Array.from(await w.read().data())).toEqual(frozenBefore[i]);
    expect(Array.from(await head.read().data())).not.toEqual(headBefore);
    vt.dispose();
    vit.dispose();
  }
}
