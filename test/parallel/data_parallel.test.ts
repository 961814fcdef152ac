import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { InputShapeError, ParallelWorkerError } from '../../src/errors';
import {
  adamw,
  createViT,
  freeze,
  randomHorizontalFlip,
  softmaxCrossEntropy,
  Trainer,
  type TrainerOptions,
  warmupCosineSchedule,
} from '../../src/index';
import {
  createDataParallelTrainer,
  type DataParallelTrainer,
  resumeTrainer,
  saveCheckpoint,
} from '../../src/node';
import { describeBackends, seededValues } from '../helpers/backends';
import { buildWorkerBundle } from '../helpers/parallel_worker';

// No qkv bias: the key bias has a gradient that is exactly zero in exact arithmetic (softmax
// ignores a constant added to a row of scores), so its computed gradient is rounding noise,
// which Adam's normalisation turns into lr-sized steps that differ between any two summation
// orders, single-threaded or not (docs/parallel.md).
const CONFIG = {
  imgSize: 8,
  patchSize: 4,
  embedDim: 32,
  depth: 2,
  numHeads: 2,
  numClasses: 5,
  qkvBias: false,
};
// A fixed initialisation, so a failure reproduces.
const SEED = { seed: 1 };
const STEPS = 20;
const BATCH = 7; // shards of 4 and 3: the weighting by shard size matters

let workerFile = '';
beforeAll(async () => {
  workerFile = await buildWorkerBundle();
}, 60_000);

function fixedBatch(): [tf.Tensor4D, tf.Tensor2D] {
  const x = tf.tensor4d(seededValues(BATCH * 8 * 8 * 3, 21), [BATCH, 8, 8, 3]);
  const labels = Array.from({ length: BATCH }, (_, i) => (i * 2 + 1) % CONFIG.numClasses);
  return [x, tf.oneHot(tf.tensor1d(labels, 'int32'), CONFIG.numClasses) as tf.Tensor2D];
}

/** `n` seeded 8 x 8 x 3 images with labels cycling through `step * i` mod the classes. */
function labelledImages(n: number, seed: number, step: number) {
  return {
    images: tf.tensor4d(seededValues(n * 8 * 8 * 3, seed), [n, 8, 8, 3]),
    labels: tf.tensor1d(
      Array.from({ length: n }, (_, i) => (i * step) % CONFIG.numClasses),
      'int32',
    ),
  };
}

/**
 * Largest difference between two models' weights, and the largest move of `b`'s weights from
 * `initial` (to show that training happened at all).
 */
async function weightDifference(
  a: LayersModel,
  b: LayersModel,
  initial: Float32Array[] | ArrayLike<number>[],
): Promise<{ maxDiff: number; maxMove: number }> {
  const got = a.getWeights();
  const want = b.getWeights();
  expect(got.length).toBe(want.length);
  let maxDiff = 0;
  let maxMove = 0;
  for (let i = 0; i < got.length; i++) {
    const x = await got[i].data();
    const y = await want[i].data();
    for (let j = 0; j < x.length; j++) {
      maxDiff = Math.max(maxDiff, Math.abs(x[j] - y[j]));
      maxMove = Math.max(maxMove, Math.abs(y[j] - initial[i][j]));
    }
  }
  return { maxDiff, maxMove };
}

/** Single-threaded reference: the gradient of the mean loss over the whole batch, one AdamW step. */
function referenceStep(model: LayersModel, opt: tf.Optimizer, x: tf.Tensor, y: tf.Tensor): number {
  const loss = softmaxCrossEntropy();
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  return tf.tidy(() => {
    const { value, grads } = tf.variableGrads(
      () => loss(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
      vars,
    );
    opt.applyGradients(grads);
    return value.dataSync()[0];
  });
}

describeBackends('createDataParallelTrainer', (backend) => {
  let parallelModel: LayersModel;
  let trainer: DataParallelTrainer;

  beforeAll(async () => {
    parallelModel = createViT(CONFIG, {}, SEED);
    trainer = await createDataParallelTrainer(parallelModel, {
      workers: 2,
      backend,
      workerFile,
      optimizer: adamw({ learningRate: 1e-3, weightDecay: 0.05 }),
    });
  }, 120_000);

  afterAll(async () => {
    await trainer?.destroy();
    expect(trainer.threadCount()).toBe(0);
    expect(trainer.workers).toBe(2);
    const one = tf.zeros([1]);
    await expect(trainer.step(one, one)).rejects.toThrow(
      /createDataParallelTrainer: step called after destroy\(\)/,
    );
    one.dispose();
    parallelModel?.dispose();
  });

  it(`weights after ${STEPS} AdamW steps equal single-thread training within 1e-5`, async () => {
    const reference = createViT(CONFIG);
    reference.setWeights(parallelModel.getWeights());
    const initial = parallelModel.getWeights().map((w) => w.dataSync().slice());
    const refOpt = adamw({ learningRate: 1e-3, weightDecay: 0.05 });
    const [x, y] = fixedBatch();
    const parallelLosses: number[] = [];
    const referenceLosses: number[] = [];
    let tensorsAfterFirst = 0;
    for (let s = 0; s < STEPS; s++) {
      parallelLosses.push(await trainer.step(x, y));
      referenceLosses.push(referenceStep(reference, refOpt, x, y));
      // The first step creates the optimizer's moment slots; later steps must leak nothing.
      if (s === 0) tensorsAfterFirst = tf.memory().numTensors;
    }
    expect(tf.memory().numTensors).toBe(tensorsAfterFirst);
    // Training happened: the loss fell.
    expect(parallelLosses[STEPS - 1]).toBeLessThan(parallelLosses[0] - 0.1);
    for (let s = 0; s < STEPS; s++) {
      expect(Math.abs(parallelLosses[s] - referenceLosses[s])).toBeLessThan(1e-5);
    }
    const { maxDiff, maxMove } = await weightDifference(parallelModel, reference, initial);
    expect(maxMove).toBeGreaterThan(1e-3);
    expect(maxDiff).toBeLessThan(1e-5);
    console.log(
      `data-parallel vs single thread on ${backend}: max weight difference ${maxDiff.toExponential(2)} after ${STEPS} steps`,
    );
    tf.dispose([x, y]);
    refOpt.dispose();
    reference.dispose();
  }, 120_000);

  it('a model frozen before the workers start trains only its trainable part, as on one thread', async () => {
    // tfjs saves `trainable` only for top-level layers; the workers' copies come back frozen
    // through saveModel's frozenWeights list (without it, the layout check at start failed).
    const frozen = createViT(CONFIG, {}, SEED);
    freeze(frozen, ['patchEmbed', 'embed', 'blocks']);
    const reference = createViT(CONFIG);
    // Frozen first: model.weights lists trainable weights before frozen ones (as Keras does).
    freeze(reference, ['patchEmbed', 'embed', 'blocks']);
    reference.setWeights(frozen.getWeights());
    expect(frozen.trainableWeights).toHaveLength(4); // final norm gamma/beta, head kernel/bias
    const initial = frozen.getWeights().map((w) => w.dataSync().slice());
    const source = await createDataParallelTrainer(frozen, {
      workers: 2,
      backend,
      workerFile,
      optimizer: adamw({ learningRate: 1e-2, weightDecay: 0.05 }),
    });
    const refOpt = adamw({ learningRate: 1e-2, weightDecay: 0.05 });
    const [x, y] = fixedBatch();
    try {
      for (let s = 0; s < 5; s++) {
        const got = await source.step(x, y);
        const want = referenceStep(reference, refOpt, x, y);
        expect(Math.abs(got - want)).toBeLessThan(1e-5);
      }
    } finally {
      await source.destroy();
    }
    const { maxDiff, maxMove } = await weightDifference(frozen, reference, initial);
    expect(maxMove).toBeGreaterThan(1e-3);
    expect(maxDiff).toBeLessThan(1e-5);
    // Frozen weights did not move at all; the trainable ones did.
    const trainable = new Set(frozen.trainableWeights.map((w) => w.originalName));
    const weights = frozen.weights;
    const values = frozen.getWeights();
    for (let i = 0; i < weights.length; i++) {
      const now = values[i].dataSync();
      const moved = now.some((v, j) => v !== initial[i][j]);
      expect([weights[i].originalName, moved]).toEqual([
        weights[i].originalName,
        trainable.has(weights[i].originalName),
      ]);
    }
    tf.dispose([x, y]);
    refOpt.dispose();
    reference.dispose();
    frozen.dispose();
  }, 120_000);

  it('a Trainer with `parallel` trains as on one thread: weights, losses and accuracies', async () => {
    const data = labelledImages(21, 5, 3);
    // Everything the Trainer adds on top of the gradient: augmentation, smoothing, clipping,
    // parameter groups, schedule, EMA, seeded order.
    const options = (): TrainerOptions => ({
      schedule: warmupCosineSchedule({ peakLr: 2e-3, warmupSteps: 2, totalSteps: 9 }),
      augment: (x, random) => randomHorizontalFlip(x, { random }),
      labelSmoothing: 0.1,
      clipGradNorm: 1,
      emaDecay: 0.9,
      mix: { mixupAlpha: 0.4, cutmixAlpha: 1, prob: 0.7 },
      seed: 3,
    });
    const local = new Trainer(createViT(CONFIG, {}, SEED), options());
    const model = createViT(CONFIG, {}, SEED);
    const source = await createDataParallelTrainer(model, { workers: 2, backend, workerFile });
    try {
      const parallel = new Trainer(model, { ...options(), parallel: source });
      const initial = model.getWeights().map((w) => w.dataSync().slice());
      let tensorsAfterFirst = 0;
      for (let epoch = 0; epoch < 3; epoch++) {
        const a = await local.trainEpoch(data, { batchSize: BATCH });
        const b = await parallel.trainEpoch(data, { batchSize: BATCH });
        expect(b.accuracy).toBe(a.accuracy);
        for (let s = 0; s < a.stepLosses.length; s++) {
          expect(Math.abs(b.stepLosses[s] - a.stepLosses[s])).toBeLessThan(1e-5);
        }
        // The first epoch creates optimizer and EMA slots; later epochs must leak nothing.
        if (epoch === 0) tensorsAfterFirst = tf.memory().numTensors;
        else expect(tf.memory().numTensors).toBe(tensorsAfterFirst);
      }
      // The EMA weights (updated in the calling thread from the parallel steps) agree too.
      const emaLocal = await local.evaluate(data, { useEma: true });
      const emaParallel = await parallel.evaluate(data, { useEma: true });
      expect(Math.abs(emaParallel.loss - emaLocal.loss)).toBeLessThan(1e-5);
      // maxMove is measured on the parallel model here (`initial` is its starting point).
      const { maxDiff, maxMove } = await weightDifference(local.model, model, initial);
      expect(maxMove).toBeGreaterThan(1e-3);
      expect(maxDiff).toBeLessThan(1e-5);
      console.log(
        `Trainer with parallel vs one thread on ${backend}: max weight difference ${maxDiff.toExponential(2)} after 9 steps`,
      );
      // Freezing after the workers started changes the weights they differentiate: refused.
      freeze(model, ['head']);
      await expect(parallel.trainStep(data.images, data.labels)).rejects.toThrow(
        /trainable weights changed since the workers started/,
      );
      parallel.dispose();
    } finally {
      await source.destroy();
      local.dispose();
      model.dispose();
      tf.dispose([data.images, data.labels]);
    }
  }, 120_000);

  it('a resumed run goes parallel with setParallel and continues like a one-thread resume', async () => {
    const data = labelledImages(14, 9, 1);
    const options = (): TrainerOptions => ({
      schedule: warmupCosineSchedule({ peakLr: 2e-3, warmupSteps: 1, totalSteps: 10 }),
      labelSmoothing: 0.1,
      seed: 5,
    });
    const first = new Trainer(createViT(CONFIG, {}, SEED), options());
    await first.trainEpoch(data, { batchSize: BATCH });
    const dir = mkdtempSync(join(tmpdir(), 'vit-ts-dp-resume-'));
    await saveCheckpoint(dir, first);
    first.dispose();
    first.model.dispose();
    await expect(resumeTrainer(dir, { ...options(), parallel: trainer })).rejects.toThrow(
      /resumeTrainer: options.parallel cannot be given here .* trainer.setParallel/,
    );
    const local = await resumeTrainer(dir, options());
    const resumed = await resumeTrainer(dir, options());
    const source = await createDataParallelTrainer(resumed.trainer.model, {
      workers: 2,
      backend,
      workerFile,
    });
    try {
      resumed.trainer.setParallel(source);
      const a = await local.trainer.trainEpoch(data, { batchSize: BATCH });
      const b = await resumed.trainer.trainEpoch(data, { batchSize: BATCH });
      expect(b.accuracy).toBe(a.accuracy);
      expect(b.stepLosses).toHaveLength(2);
      for (let s = 0; s < 2; s++) {
        expect(Math.abs(b.stepLosses[s] - a.stepLosses[s])).toBeLessThan(1e-5);
      }
      // Back to one thread.
      resumed.trainer.setParallel(null);
      const c = await resumed.trainer.trainEpoch(data, { batchSize: BATCH });
      const d = await local.trainer.trainEpoch(data, { batchSize: BATCH });
      expect(Math.abs(c.loss - d.loss)).toBeLessThan(1e-5);
    } finally {
      await source.destroy();
      for (const r of [local, resumed]) {
        r.trainer.dispose();
        r.trainer.model.dispose();
      }
      tf.dispose([data.images, data.labels]);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('a Trainer refuses a parallel source for another model or with its own smoothing', async () => {
    const model = createViT(CONFIG, {}, SEED);
    const schedule = () => 1e-3;
    expect(() => new Trainer(model, { schedule, parallel: trainer })).toThrow(
      /options.parallel was created for a different model \(.+\) than the Trainer's \(.+\)/,
    );
    const smoothing = {
      model,
      loss: 'softmaxCrossEntropy',
      labelSmoothing: 0.1,
      gradients: () => Promise.reject(new Error('not called')),
    };
    expect(() => new Trainer(model, { schedule, parallel: smoothing })).toThrow(
      /labelSmoothing 0 \(the Trainer smooths its targets itself\), got loss 'softmaxCrossEntropy', labelSmoothing 0.1/,
    );
    const t = new Trainer(model, { schedule });
    expect(() => t.setParallel({} as never)).toThrow(
      /Trainer.setParallel: .*gradients\(x, targets\)/,
    );
    t.dispose();
    model.dispose();
  });

  it('a worker that throws rejects step() with ParallelWorkerError', async () => {
    const [x] = fixedBatch();
    const wrongLabels = tf.zeros([BATCH, CONFIG.numClasses + 1]);
    const error = await trainer.step(x, wrongLabels).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ParallelWorkerError);
    expect((error as Error).message).toMatch(/a worker thread failed \(gradients\)/);
    tf.dispose([x, wrongLabels]);
  });

  it('x and y with different batch sizes are rejected before any work', async () => {
    const [x, y] = fixedBatch();
    const y2 = tf.slice(y, 0, 3);
    await expect(trainer.step(x, y2)).rejects.toThrow(InputShapeError);
    await expect(trainer.step(x, y2)).rejects.toThrow(/x has batch 7 but y has batch 3/);
    tf.dispose([x, y, y2]);
  });
});

it('rejects a loss it cannot send to a worker, naming it', async () => {
  const model = createViT(CONFIG);
  await expect(
    createDataParallelTrainer(model, { workerFile, loss: 'hinge' as never }),
  ).rejects.toThrow(/loss must be 'softmaxCrossEntropy' or 'meanSquaredError', got 'hinge'/);
  model.dispose();
});
