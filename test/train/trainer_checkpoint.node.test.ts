import { copyFileSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import {
  createParamGroups,
  createViT,
  freeze,
  randomCrop,
  setSeed,
  Trainer,
  type TrainerOptions,
  warmupCosineSchedule,
} from '../../src/index';
import { loadCheckpoint, resumeTrainer, saveCheckpoint, terminalProgress } from '../../src/node';
import { describeBackends } from '../helpers/backends';
import { toyData, toyViTConfig as vitConfig, weightsOf } from '../helpers/toy_training';

// The Node-only half of the Trainer suite: checkpoints on disk (vit-ts/node) and the terminal
// progress bar. The rest runs in Node and in the browser (test/train/trainer.test.ts).

const tmp = () => mkdtempSync(join(tmpdir(), 'vit-ts-trainer-'));

describeBackends('Trainer checkpoints', () => {
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

  it('a resumed checkpoint keeps the frozen parts frozen (a linear probe stays a linear probe)', async () => {
    const data = toyData(20, 5);
    const options = (): TrainerOptions => ({
      schedule: warmupCosineSchedule({ peakLr: 1e-2, warmupSteps: 1, totalSteps: 12 }),
      seed: 2,
    });
    const model = createViT(vitConfig, {}, { seed: 5 });
    freeze(model, ['patchEmbed', 'embed', 'blocks']);
    const trainable = model.trainableWeights.map((w) => w.originalName);
    const first = new Trainer(model, options());
    await first.trainEpoch(data, { batchSize: 5 });
    const dir = tmp();
    await saveCheckpoint(dir, first);
    first.dispose();
    model.dispose();

    const { trainer } = await resumeTrainer(dir, options());
    expect(trainer.model.trainableWeights.map((w) => w.originalName)).toEqual(trainable);
    const before = await weightsOf(trainer.model);
    await trainer.trainEpoch(data, { batchSize: 5 });
    const after = await weightsOf(trainer.model);
    trainer.model.weights.forEach((w, i) => {
      const moved = after[i].some((v, j) => v !== before[i][j]);
      expect([w.originalName, moved]).toEqual([w.originalName, trainable.includes(w.originalName)]);
    });
    trainer.dispose();
    trainer.model.dispose();
    tf.dispose([data.images, data.labels]);
  });

  it('a run with layer-wise learning rates resumes with groups built from the loaded model', async () => {
    const data = toyData(20, 6);
    const schedule = warmupCosineSchedule({ peakLr: 5e-3, warmupSteps: 1, totalSteps: 16 });
    const groups = (m: LayersModel) => createParamGroups(m, { layerDecay: 0.5 });
    const straightModel = createViT(vitConfig, {}, { seed: 8 });
    const straight = new Trainer(straightModel, {
      schedule,
      seed: 1,
      groups: groups(straightModel),
    });
    const curve: number[] = [];
    for (let e = 0; e < 4; e++)
      curve.push(...(await straight.trainEpoch(data, { batchSize: 5 })).stepLosses);

    const firstModel = createViT(vitConfig, {}, { seed: 8 });
    const firstGroups = groups(firstModel);
    const first = new Trainer(firstModel, { schedule, seed: 1, groups: firstGroups });
    const resumed: number[] = [];
    for (let e = 0; e < 2; e++)
      resumed.push(...(await first.trainEpoch(data, { batchSize: 5 })).stepLosses);
    const dir = tmp();
    await saveCheckpoint(dir, first);
    // The original run's groups hold the original model's variables: refused, saying why.
    await expect(resumeTrainer(dir, { schedule, seed: 1, groups: firstGroups })).rejects.toThrow(
      /is in no parameter group: groups hold variables, so groups built from another model instance/,
    );
    first.dispose();
    firstModel.dispose();
    const { trainer } = await resumeTrainer(dir, (model) => ({
      schedule,
      seed: 1,
      groups: groups(model),
    }));
    for (let e = 0; e < 2; e++)
      resumed.push(...(await trainer.trainEpoch(data, { batchSize: 5 })).stepLosses);
    expect(resumed).toEqual(curve);
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
});

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
