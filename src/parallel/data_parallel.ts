import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { ConfigError, InputShapeError, requireRate } from '../errors';
import { saveModel } from '../io/node_fs';
import { adamw } from '../train/optimizers';
import type { DataParallelLoss, GradientsResult, WeightLayout, WeightSlot } from './protocol';
import {
  checkInputShape,
  PoolClient,
  type StartedPool,
  shardRanges,
  startWorkerPool,
  type WorkerPoolOptions,
} from './worker_pool';

export type { DataParallelLoss } from './protocol';

/** Options of {@link createDataParallelTrainer}. */
export interface DataParallelOptions extends WorkerPoolOptions {
  /**
   * Optimizer applied once per step, on the calling thread, to the averaged gradients.
   * Default `adamw()` (vit-ts' AdamW with PyTorch's defaults).
   */
  optimizer?: tf.Optimizer;
  /** Loss on the model's output: `'softmaxCrossEntropy'` (logits, one-hot targets; default) or `'meanSquaredError'`. */
  loss?: DataParallelLoss;
  /** Label smoothing of `'softmaxCrossEntropy'`, in [0, 1). Default 0. */
  labelSmoothing?: number;
}

/** Result of {@link DataParallelTrainer.gradients}. */
export interface DataParallelGradients {
  /** Mean loss over the whole batch (before any update). */
  loss: number;
  /**
   * Gradients of the batch's mean loss, keyed by variable name (the names of
   * `model.trainableWeights[i].read()`), ready for `optimizer.applyGradients`. Owned by the caller.
   */
  grads: tf.NamedTensorMap;
  /** Argmax of the model's output for every image of the batch, in batch order. */
  predictions: Int32Array;
}

/** Data-parallel training of one model over worker threads. */
export interface DataParallelTrainer {
  /** Number of worker threads. */
  readonly workers: number;
  /** The model whose replicas the workers hold (and which {@link DataParallelTrainer.step} updates). */
  readonly model: LayersModel;
  /** The optimizer that applies the averaged gradients in {@link DataParallelTrainer.step}. */
  readonly optimizer: tf.Optimizer;
  /** The loss the workers differentiate. */
  readonly loss: DataParallelLoss;
  /** Label smoothing the workers apply to `y` (softmax cross-entropy only). */
  readonly labelSmoothing: number;
  /**
   * One optimizer step on the global batch `(x, y)`: the batch is split along its first axis
   * into one contiguous shard per worker, every worker computes the gradients of its shard's
   * mean loss on a replica holding the current weights, the gradients are averaged weighted by
   * shard size (which equals the gradient of the mean loss over the whole batch), and the
   * optimizer updates the model passed to {@link createDataParallelTrainer} in place.
   * Resolves to the mean loss over the batch (before the update). `x` and `y` are not disposed.
   */
  step(x: tf.Tensor, y: tf.Tensor): Promise<number>;
  /**
   * The first half of {@link DataParallelTrainer.step} without the update: the averaged
   * gradients of the batch's mean loss (and the per-image predictions), computed by the workers
   * on the current weights. Non-trainable weights (BatchNorm statistics) are updated from the
   * first shard as in `step`. This is how a `Trainer` runs on all cores (its `parallel`
   * option): it applies its own optimizer, schedule, clipping and EMA to these gradients.
   * The model's trainable weights must be the ones the workers were started with (freezing or
   * unfreezing afterwards is an error: create a new pool).
   */
  gradients(x: tf.Tensor, y: tf.Tensor): Promise<DataParallelGradients>;
  /** Number of live worker threads (0 after {@link DataParallelTrainer.destroy}). */
  threadCount(): number;
  /** Stops every worker thread. Safe to call twice. The model keeps its trained weights. */
  destroy(): Promise<void>;
}

const OWNER = 'createDataParallelTrainer';

function sizeOf(shape: readonly (number | null)[]): number {
  return shape.reduce((a: number, d) => a * (d as number), 1);
}

function slotsOf(weights: LayersModel['trainableWeights']): WeightSlot[] {
  return weights.map((w) => ({
    name: w.originalName,
    shape: [...w.shape] as number[],
    size: sizeOf(w.shape),
  }));
}

/**
 * Starts `workers` threads (default one per core), each holding a replica of `model`, for
 * synchronous data-parallel training, the scheme of PyTorch's DistributedDataParallel: per step
 * every worker computes the gradients of its shard of the batch, the calling thread averages
 * them (weighted by shard size) and applies one optimizer step to `model`, and the next step
 * sends the new weights to every replica. Weights and gradients travel as transferred
 * ArrayBuffers. The result matches single-threaded training on the same global batch up to
 * float rounding, provided the model has no dropout (replicas draw their own random numbers).
 * Non-trainable weights (BatchNorm statistics) are taken from the first shard's replica after
 * each step, as DDP broadcasts rank 0's buffers.
 *
 * The model is handed to the workers through a temporary `saveModel` directory, removed once
 * they have loaded it. Call `destroy()` when done.
 *
 * @example
 * import { adamw, createViT } from 'vit-ts';
 * import { createDataParallelTrainer } from 'vit-ts/node';
 * const trainer = await createDataParallelTrainer(model, { workers: 2, backend: 'wasm', optimizer: adamw({ learningRate: 3e-4 }) });
 * for (const [x, y] of batches) console.log(await trainer.step(x, y));
 * await trainer.destroy();
 */
export async function createDataParallelTrainer(
  model: LayersModel,
  options: DataParallelOptions = {},
): Promise<DataParallelTrainer> {
  if (
    model == null ||
    typeof (model as LayersModel).predict !== 'function' ||
    !Array.isArray(model.trainableWeights)
  ) {
    throw new ConfigError(`${OWNER}: model must be a tf.LayersModel, got ${String(model)}`);
  }
  const loss = options.loss ?? 'softmaxCrossEntropy';
  if (loss !== 'softmaxCrossEntropy' && loss !== 'meanSquaredError') {
    throw new ConfigError(
      `${OWNER}: loss must be 'softmaxCrossEntropy' or 'meanSquaredError', got ${typeof loss === 'string' ? `'${loss}'` : String(loss)}`,
    );
  }
  const labelSmoothing = requireRate(OWNER, 'labelSmoothing', options.labelSmoothing ?? 0);
  const optimizer = options.optimizer ?? adamw();
  if (!(optimizer instanceof tf.Optimizer)) {
    throw new ConfigError(
      `${OWNER}: optimizer must be a tf.Optimizer (e.g. adamw()), got ${String(optimizer)}`,
    );
  }
  if (model.trainableWeights.length === 0) {
    throw new ConfigError(`${OWNER}: the model has no trainable weights`);
  }
  const layout: WeightLayout = {
    trainable: slotsOf(model.trainableWeights),
    nonTrainable: slotsOf(model.nonTrainableWeights),
  };
  const dir = await mkdtemp(join(tmpdir(), 'vit-ts-dp-'));
  let pool: StartedPool;
  try {
    await saveModel(model, dir);
    pool = await startWorkerPool(OWNER, dir, options, { layout }, [
      'optimizer',
      'loss',
      'labelSmoothing',
    ]);
  } finally {
    // Every worker has loaded its replica (or the start failed): the files are no longer needed.
    await rm(dir, { recursive: true, force: true });
  }
  return new DataParallel(pool, model, optimizer, layout, loss, labelSmoothing);
}

class DataParallel extends PoolClient implements DataParallelTrainer {
  private readonly trainableSize: number;
  private readonly totalSize: number;

  constructor(
    pool: StartedPool,
    readonly model: LayersModel,
    readonly optimizer: tf.Optimizer,
    private readonly layout: WeightLayout,
    readonly loss: DataParallelLoss,
    readonly labelSmoothing: number,
  ) {
    super(pool, OWNER);
    this.trainableSize = layout.trainable.reduce((a, s) => a + s.size, 0);
    this.totalSize = this.trainableSize + layout.nonTrainable.reduce((a, s) => a + s.size, 0);
  }

  private async packWeights(): Promise<Float32Array> {
    const packed = new Float32Array(this.totalSize);
    let offset = 0;
    for (const w of [...this.model.trainableWeights, ...this.model.nonTrainableWeights]) {
      const data = (await w.read().data()) as Float32Array;
      packed.set(data, offset);
      offset += data.length;
    }
    return packed;
  }

  async step(x: tf.Tensor, y: tf.Tensor): Promise<number> {
    this.requireAlive('step');
    const r = await this.compute('step', x, y, false);
    const variables = this.model.trainableWeights.map((w) => w.read() as tf.Variable);
    tf.tidy(() => this.optimizer.applyGradients(this.gradientTensors(variables, r)));
    return r.loss;
  }

  async gradients(x: tf.Tensor, y: tf.Tensor): Promise<DataParallelGradients> {
    this.requireAlive('gradients');
    const r = await this.compute('gradients', x, y, true);
    const variables = this.model.trainableWeights.map((w) => w.read() as tf.Variable);
    const grads = tf.tidy(() => this.gradientTensors(variables, r));
    return { loss: r.loss, grads, predictions: r.predictions as Int32Array };
  }

  /** Named gradient tensors; a weight no shard's loss reaches is left out, as tf.variableGrads does. */
  private gradientTensors(
    variables: tf.Variable[],
    r: { averaged: Float64Array; reached: Uint8Array },
  ): tf.NamedTensorMap {
    const grads: tf.NamedTensorMap = {};
    let offset = 0;
    variables.forEach((v, i) => {
      const size = this.layout.trainable[i].size;
      if (r.reached[i] === 1) {
        grads[v.name] = tf.tensor(
          Float32Array.from(r.averaged.subarray(offset, offset + size)),
          v.shape,
          'float32',
        );
      }
      offset += size;
    });
    return grads;
  }

  /** Sends the shards out, averages what comes back and takes the state from shard 0. */
  private async compute(
    method: string,
    x: tf.Tensor,
    y: tf.Tensor,
    wantPredictions: boolean,
  ): Promise<{
    loss: number;
    averaged: Float64Array;
    reached: Uint8Array;
    predictions: Int32Array | null;
  }> {
    // The workers hold replicas with the weights the pool started with: gradients are matched to
    // the model's weights by position, so a freeze / unfreeze since then would misassign them.
    const layout = slotsOf(this.model.trainableWeights);
    const describe = (slots: WeightSlot[]) => slots.map((w) => w.name).join(' ');
    if (describe(layout) !== describe(this.layout.trainable)) {
      throw new ConfigError(
        `${OWNER}: ${method}: the model's trainable weights changed since the workers started (${layout.length} now, ${this.layout.trainable.length} then; freezing or unfreezing after createDataParallelTrainer): destroy this pool and create a new one with createDataParallelTrainer(model, ...)`,
      );
    }
    for (const [name, t] of [
      ['x', x],
      ['y', y],
    ] as const) {
      if (!(t instanceof tf.Tensor) || t.rank < 1 || t.shape[0] === 0) {
        throw new InputShapeError(
          `${OWNER}: ${method} expects ${name} with a batch axis of size >= 1, got ${t instanceof tf.Tensor ? `shape [${t.shape.join(', ')}]` : String(t)}`,
        );
      }
    }
    checkInputShape(this.pool, `${OWNER}: ${method}`, 'x', x.shape);
    const batch = x.shape[0];
    if (y.shape[0] !== batch) {
      throw new InputShapeError(
        `${OWNER}: x has batch ${batch} but y has batch ${y.shape[0]} (shapes [${x.shape.join(', ')}] and [${y.shape.join(', ')}])`,
      );
    }
    const weights = await this.packWeights();
    const xData = (await x.data()) as Float32Array;
    const yData = (await y.data()) as Float32Array;
    const xItem = x.size / batch;
    const yItem = y.size / batch;
    const ranges = shardRanges(batch, this.pool.workers);
    const results = await Promise.all(
      ranges.map(([start, end], k) => {
        // Each task owns its buffers and transfers them; the last shard takes `weights` itself.
        const w = k === ranges.length - 1 ? weights : weights.slice();
        const xs = xData.slice(start * xItem, end * xItem);
        const ys = yData.slice(start * yItem, end * yItem);
        return this.run<GradientsResult>(
          {
            kind: 'gradients',
            weights: w,
            x: { data: xs, shape: [end - start, ...x.shape.slice(1)] },
            y: { data: ys, shape: [end - start, ...y.shape.slice(1)] },
            loss: this.loss,
            labelSmoothing: this.labelSmoothing,
            returnState: k === 0 && this.layout.nonTrainable.length > 0,
            returnPredictions: wantPredictions,
          },
          [w.buffer, xs.buffer, ys.buffer],
        );
      }),
    );
    // mean over the batch = sum over shards of (shard size / batch) * shard mean.
    const averaged = new Float64Array(this.trainableSize);
    const reached = new Uint8Array(this.layout.trainable.length);
    let loss = 0;
    const predictions = wantPredictions ? new Int32Array(batch) : null;
    results.forEach((r, k) => {
      const [start, end] = ranges[k];
      const share = (end - start) / batch;
      const g = r.gradients;
      for (let i = 0; i < g.length; i++) averaged[i] += share * g[i];
      // A worker script from before the mask existed: every weight counts as reached.
      for (let i = 0; i < reached.length; i++) reached[i] |= r.reached?.[i] ?? 1;
      loss += share * r.loss;
      if (predictions != null) {
        if (r.predictions == null || r.predictions.length !== end - start) {
          throw new InputShapeError(
            `${OWNER}: ${method}: predictions need a model output of shape [batch, classes]; shard ${k} of ${end - start} images returned ${r.predictions == null ? 'none' : `${r.predictions.length} values`}`,
          );
        }
        predictions.set(r.predictions, start);
      }
    });
    const state = results[0].state;
    if (state != null) {
      let offset = 0;
      for (const w of this.model.nonTrainableWeights) {
        const size = sizeOf(w.shape);
        const value = tf.tensor(
          state.subarray(offset, offset + size),
          w.shape as number[],
          'float32',
        );
        w.write(value);
        value.dispose();
        offset += size;
      }
    }
    return { loss, averaged, reached, predictions };
  }
}
