/**
 * The epoch loop the two shipped-model trainers share (examples/mnist/train.ts,
 * examples/fashion/train.ts): start or resume a Trainer, then per epoch train, evaluate, print
 * and keep a record, and write a crash-safe checkpoint.
 */

import type * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { Trainer, type TrainerOptions, type ViTConfig } from '../src/index';
import { resumeTrainer, saveCheckpoint } from '../src/node';
import { withWorkers } from './experiments/common';

/** A new Trainer on `create()`, or the one saved in `checkpoint` when `resume` is set. */
export async function startTrainer(
  resume: boolean,
  checkpoint: string,
  options: TrainerOptions,
  create: () => LayersModel,
): Promise<{ trainer: Trainer; history: object[]; metadata: Record<string, unknown> }> {
  if (!resume) return { trainer: new Trainer(create(), options), history: [], metadata: {} };
  const r = await resumeTrainer(checkpoint, options);
  console.log(`resumed at epoch ${r.trainer.epoch}, step ${r.trainer.step}`);
  return {
    trainer: r.trainer,
    history: (r.metadata['history'] as object[]) ?? [],
    metadata: r.metadata,
  };
}

/** Options of {@link runEpochs}. */
export interface RunEpochsOptions {
  epochs: number;
  batchSize: number;
  maxSteps?: number;
  /** Checkpoint directory, written after every epoch. */
  checkpoint: string;
  /** The model's config, stored with the checkpoint. */
  config: ViTConfig;
  /** Record key of the evaluation accuracy, e.g. `heldOutAccuracy`. */
  evalKey: string;
  /** Worker threads computing the gradients (started here, stopped at the end; recorded per epoch when > 1). */
  workers?: number;
  /** Backend of the worker threads. Default `'wasm'`. */
  backend?: string;
  /** More JSON fields stored with every checkpoint (a resumed run reads them back). */
  metadata?: Record<string, unknown>;
}

/** Trains from the trainer's epoch to `epochs`, appending one record per epoch to `history`. */
export async function runEpochs(
  trainer: Trainer,
  train: { images: tf.Tensor4D; labels: tf.Tensor1D },
  evalSet: { images: tf.Tensor4D; labels: tf.Tensor1D },
  history: object[],
  o: RunEpochsOptions,
): Promise<void> {
  await withWorkers(trainer, o.workers ?? 1, o.backend ?? 'wasm', () =>
    trainEpochs(trainer, train, evalSet, history, o),
  );
}

async function trainEpochs(
  trainer: Trainer,
  train: { images: tf.Tensor4D; labels: tf.Tensor1D },
  evalSet: { images: tf.Tensor4D; labels: tf.Tensor1D },
  history: object[],
  o: RunEpochsOptions,
): Promise<void> {
  const cpu0 = process.cpuUsage();
  for (let e = trainer.epoch; e < o.epochs; e++) {
    const r = await trainer.trainEpoch(train, { batchSize: o.batchSize, maxSteps: o.maxSteps });
    const ev = await trainer.evaluate(evalSet);
    // With an EMA of the weights, its accuracy too (under `<evalKey>Ema`).
    const evEma = trainer.ema == null ? null : await trainer.evaluate(evalSet, { useEma: true });
    const u = process.cpuUsage(cpu0);
    const record = {
      epoch: e + 1,
      trainLoss: r.loss,
      trainAccuracy: r.accuracy,
      [o.evalKey]: ev.accuracy,
      ...(evEma == null ? {} : { [`${o.evalKey}Ema`]: evEma.accuracy }),
      seconds: Math.round(r.seconds),
      imagesPerSecond: r.imagesPerSecond,
      cpuSeconds: Math.round((u.user + u.system) / 1e6),
      ...((o.workers ?? 1) > 1 ? { workers: o.workers } : {}),
    };
    history.push(record);
    console.log(JSON.stringify(record));
    await saveCheckpoint(o.checkpoint, trainer, { ...o.metadata, history, config: o.config });
  }
}
