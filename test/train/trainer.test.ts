import { copyFileSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import {
  createResNet18,
  createViT,
  freeze,
  type ImageDataset,
  randomCrop,
  setSeed,
  Trainer,
  type TrainerOptions,
  type TrainProgress,
  warmupCosineSchedule,
} from '../../src/index';
import { loadCheckpoint, resumeTrainer, saveCheckpoint, terminalProgress } from '../../src/node';
import { describeBackends } from '../helpers/backends';

const tmp = () => mkdtempSync(join(tmpdir(), 'vit-ts-trainer-'));

/** 3 classes of 8x8 grey images: a bright bar in the top, middle or bottom rows, plus noise. */
function toyData(n: number, seed: number): ImageDataset {
  let s = seed;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const px = new Float32Array(n * 64);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    labels[i] = c;
    for (let y = 0; y < 8; y++)
      for (let x = 0; x < 8; x++) {
        const inBar = Math.floor(y / 3) === c || (c === 2 && y === 7);
        px[i * 64 + y * 8 + x] = (inBar ? 0.8 : 0.1) + 0.2 * rand();
      }
  }
  return { images: tf.tensor4d(px, [n, 8, 8, 1]), labels: tf.tensor1d(labels, 'int32') };
}

const vitConfig = {
  imgSize: 8,
  patchSize: 4,
  inChans: 1,
  embedDim: 16,
  depth: 2,
  numHeads: 2,
  numClasses: 3,
};

async function weightsOf(model: LayersModel): Promise<Float32Array[]> {
  return Promise.all(model.weights.map(async (w) => (await w.read().data()) as Float32Array));
}

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

  it('resuming from a checkpoint continues the loss curve of an uninterrupted run exactly', async () => {
    const data = toyData(30, 9);
    const options = (): TrainerOptions => ({
      schedule: warmupCosineSchedule({ peakLr: 2e-3, warmupSteps: 3, totalSteps: 24 }),
      seed: 4,
      emaDecay: 0.8,
      clipGradNorm: 2,
      labelSmoothing: 0.1,
      mix: { mixupAlpha: 0.3 },
      augment: (x, random) => randomCrop(x, { padding: 1, random }),
    });
    setSeed(3);
    const straightModel = createViT({ ...vitConfig, dropRate: 0.1 }, {}, { seed: 13 });
    const straight = new Trainer(straightModel, options());
    const curve: number[] = [];
    for (let e = 0; e < 4; e++)
      curve.push(...(await straight.trainEpoch(data, { batchSize: 5 })).stepLosses);
    const straightWeights = await weightsOf(straightModel);

    setSeed(3);
    const firstModel = createViT({ ...vitConfig, dropRate: 0.1 }, {}, { seed: 13 });
    const first = new Trainer(firstModel, options());
    const resumed: number[] = [];
    for (let e = 0; e < 2; e++)
      resumed.push(...(await first.trainEpoch(data, { batchSize: 5 })).stepLosses);
    const dir = tmp();
    await saveCheckpoint(dir, first, { note: 'half way' });
    // Disturb everything a resume must restore.
    first.dispose();
    firstModel.dispose();
    setSeed(999);

    const { trainer, metadata } = await resumeTrainer(dir, options());
    expect(metadata).toEqual({ note: 'half way' });
    expect(trainer.step).toBe(12);
    expect(trainer.epoch).toBe(2);
    for (let e = 0; e < 2; e++)
      resumed.push(...(await trainer.trainEpoch(data, { batchSize: 5 })).stepLosses);
    expect(resumed).toEqual(curve);
    const resumedWeights = await weightsOf(trainer.model);
    resumedWeights.forEach((w, i) => {
      expect(Array.from(w)).toEqual(Array.from(straightWeights[i]));
    });
    setSeed(null);
    trainer.dispose();
    trainer.model.dispose();
    straight.dispose();
    straightModel.dispose();
    tf.dispose([data.images, data.labels]);
  });

  it('a checkpoint save never destroys the previous good one: an interrupted save still loads the old state', async () => {
    const data = toyData(12, 4);
    const model = createViT(vitConfig, {}, { seed: 1 });
    const trainer = new Trainer(model, { schedule: () => 1e-3, seed: 1 });
    await trainer.trainEpoch(data, { batchSize: 4 });
    const dir = tmp();
    await saveCheckpoint(dir, trainer);
    const good = await weightsOf(model);
    // A second save killed after its data files but before the manifest rename: new versioned
    // files and a temp manifest lie next to the old, complete checkpoint.
    await trainer.trainEpoch(data, { batchSize: 4 });
    const other = tmp();
    await saveCheckpoint(other, trainer);
    for (const f of readdirSync(other))
      if (f !== 'checkpoint.json') copyFileSync(join(other, f), join(dir, f));
    writeFileSync(join(dir, '.checkpoint.json.tmp-1234-half'), '{"format": "vit-ts-ch');
    const loaded = await loadCheckpoint(dir);
    expect(loaded.state.step).toBe(3);
    const got = await weightsOf(loaded.model);
    got.forEach((w, i) => {
      expect(Array.from(w)).toEqual(Array.from(good[i]));
    });
    loaded.model.dispose();
    // The next complete save commits and removes the superseded and orphaned files.
    await saveCheckpoint(dir, trainer);
    const again = await loadCheckpoint(dir);
    expect(again.state.step).toBe(6);
    expect(readdirSync(dir).sort().length).toBe(3);
    again.model.dispose();
    await expect(loadCheckpoint(tmp())).rejects.toThrow(/cannot read .*checkpoint\.json/);
    trainer.dispose();
    model.dispose();
    tf.dispose([data.images, data.labels]);
  });

  it('trains a ResNet18 (BatchNorm statistics move) and only the unfrozen part of a ViT', async () => {
    const data = toyData(8, 6);
    // tfjs' cpu convolution gradients take minutes for ResNet18's 11 M weights even on 8 px
    // images; the cpu path of ResNet18 training is covered by test/train/fit.test.ts.
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

it('terminalProgress prints one line per epoch when the stream is not a terminal', () => {
  let out = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      out += String(chunk);
      done();
    },
  });
  const bar = terminalProgress({ stream, epochs: 2 });
  const base = {
    epoch: 0,
    batches: 2,
    step: 1,
    loss: 0.5,
    accuracy: 0.75,
    imagesPerSecond: 12.34,
    etaSeconds: 3,
    learningRate: 1e-3,
  };
  bar.onProgress({ ...base, batch: 1 });
  bar.onProgress({ ...base, batch: 2, step: 2, loss: 0.25 });
  bar.stop();
  expect(out).toBe('epoch 1/2: 2 steps, loss 0.2500, acc 75.00%, 12.3 img/s\n');
});
