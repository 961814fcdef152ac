import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { ImageDataset } from '../data/datasets';
import {
  assertNonEmptyBatch,
  ConfigError,
  InputShapeError,
  requirePositiveInt,
  requireRate,
} from '../errors';
import { getRandomState, Random, type RandomState, setRandomState } from '../random';
import type { RandomSource } from './augment';
import { clipByGlobalNorm } from './clip';
import { ModelEma, type ModelEmaOptions } from './ema';
import { GroupedAdamW, type GroupedAdamWOptions, type GroupedAdamWState } from './grouped_adamw';
import { type MixOptions, mixBatch, smoothOneHot } from './mixup';
import { createParamGroups, type ParamGroup } from './param_groups';
import type { LrSchedule } from './schedule';

/** Progress of a running epoch, passed to {@link TrainerOptions.onProgress} after each step. */
export interface TrainProgress {
  /** 0-based epoch being trained. */
  epoch: number;
  /** Steps done in this epoch and steps the epoch has. */
  batch: number;
  batches: number;
  /** Global optimizer step count (after this step). */
  step: number;
  /** Mean training loss and accuracy of the epoch so far. */
  loss: number;
  accuracy: number;
  /** Training images per second of the epoch so far (wall clock). */
  imagesPerSecond: number;
  /** Estimated seconds to the end of the epoch. */
  etaSeconds: number;
  /** Base learning rate of the step. */
  learningRate: number;
}

/** Mixup / CutMix settings of a {@link Trainer} (`numClasses`, `random`, smoothing come from it). */
export type TrainerMixOptions = Omit<MixOptions, 'numClasses' | 'random' | 'labelSmoothing'>;

/**
 * Computes a batch's gradients somewhere else than the calling thread: the `parallel` option of
 * {@link Trainer}. `createDataParallelTrainer(model, { workers })` from `vit-ts/node` is one (all
 * cores in Node); any object of this shape works.
 */
export interface TrainerGradientSource {
  /** The model the source differentiates: must be the Trainer's model. */
  readonly model: LayersModel;
  /** Must be `'softmaxCrossEntropy'`: the Trainer's loss on its (smoothed, mixed) targets. */
  readonly loss: string;
  /** Must be 0: the Trainer smooths the targets itself before they are sent. */
  readonly labelSmoothing: number;
  /**
   * Gradients of the mean cross-entropy of `model.apply(x, { training: true })` against the
   * soft `targets` `[B, classes]`, keyed by variable name, the mean loss, and the argmax
   * prediction of every image.
   */
  gradients(
    x: tf.Tensor,
    targets: tf.Tensor,
  ): Promise<{ loss: number; grads: tf.NamedTensorMap; predictions: Int32Array }>;
}

/** Options of {@link Trainer}. */
export interface TrainerOptions {
  /** Base learning rate per optimizer step (e.g. `warmupCosineSchedule`). Required. */
  schedule: LrSchedule;
  /** Parameter groups. Default `createParamGroups(model)` (weight decay 0.05, timm's no-decay set). */
  groups?: ParamGroup[];
  /** Adam betas / epsilon. Defaults: PyTorch's. */
  adam?: GroupedAdamWOptions;
  /** Label smoothing of the cross-entropy targets. Default 0. */
  labelSmoothing?: number;
  /** Clip gradients to this global L2 norm (PyTorch `clip_grad_norm_`). Default: no clipping. */
  clipGradNorm?: number;
  /** Mixup / CutMix of each training batch. Default: off. */
  mix?: TrainerMixOptions;
  /** Keep an EMA of the weights with this decay (timm `model_ema_decay`). Default: off. */
  emaDecay?: number;
  /**
   * Warm the EMA's decay up from 0 (timm's `ModelEmaV3(use_warmup=True)`, see
   * {@link ModelEmaOptions.warmup}); only with `emaDecay`. Default false.
   */
  emaWarmup?: boolean;
  /** Augmentation of each training batch, drawing only from `random`. Return a new tensor. */
  augment?: (images: tf.Tensor4D, random: RandomSource) => tf.Tensor4D;
  /** Classes of the model's output. Default: the model's output width. */
  numClasses?: number;
  /** Seed of data order, augmentation and mixing. Default 0. */
  seed?: number;
  /** Called after every step (browser pages: update a progress element). */
  onProgress?: (progress: TrainProgress) => void;
  /**
   * Compute each step's gradients with this source instead of on the calling thread, e.g. a
   * `createDataParallelTrainer(model, { workers: 2 })` from `vit-ts/node` (created with the
   * default loss and no label smoothing): the batch is split over its worker threads, and the
   * Trainer applies its own schedule, parameter groups, clipping and EMA to the averaged
   * gradients. Same result as one thread up to float rounding for models without dropout, drop
   * path or BatchNorm (replicas draw their own random numbers and normalise each shard with its
   * own batch statistics). Default: none.
   */
  parallel?: TrainerGradientSource;
}

/** Result of {@link Trainer.trainEpoch}. */
export interface EpochResult {
  epoch: number;
  /** Mean training loss over the epoch's batches. */
  loss: number;
  /** Training accuracy (argmax vs the un-mixed labels). */
  accuracy: number;
  /** Loss of every step, in order. */
  stepLosses: number[];
  seconds: number;
  imagesPerSecond: number;
}

/** Result of {@link Trainer.evaluate}. */
export interface EvalResult {
  /** Mean cross-entropy (no smoothing). */
  loss: number;
  accuracy: number;
  count: number;
}

/** Everything a {@link Trainer} needs to continue a run exactly (weights are saved separately). */
export interface TrainerState {
  /** Optimizer steps done. */
  step: number;
  /** Completed epochs. */
  epoch: number;
  /** The trainer's generator (data order, augmentation, mixing). */
  random: RandomState;
  /** The library-wide generator (seeded dropout / drop path), null when unseeded. */
  globalRandom: RandomState | null;
  optimizer: GroupedAdamWState;
  ema: { values: { name: string; values: Float32Array }[]; updates: number } | null;
}

function checkGradientSource(
  owner: string,
  what: string,
  source: TrainerGradientSource,
  model: LayersModel,
): void {
  if (source == null || typeof source.gradients !== 'function') {
    throw new ConfigError(
      `${owner}: ${what} must have a gradients(x, targets) method (e.g. createDataParallelTrainer from vit-ts/node), got ${String(source)}`,
    );
  }
  if (source.model !== model) {
    throw new ConfigError(
      `${owner}: ${what} was created for a different model (${String(source.model?.name)}) than the Trainer's (${model.name}): another model object, even if the names match; create the pool with createDataParallelTrainer(trainer.model, ...)`,
    );
  }
  if (source.loss !== 'softmaxCrossEntropy' || source.labelSmoothing !== 0) {
    throw new ConfigError(
      `${owner}: ${what} must use loss 'softmaxCrossEntropy' with labelSmoothing 0 (the Trainer smooths its targets itself), got loss '${String(source.loss)}', labelSmoothing ${String(source.labelSmoothing)}`,
    );
  }
}

/**
 * A training loop for vit-ts models where `model.fit` cannot go: parameter groups with their
 * own learning rate and weight decay (layer-wise decay), a per-step schedule, gradient clipping,
 * label smoothing, mixup / CutMix, EMA of the weights, seeded data order and augmentation, and
 * a complete state for checkpoints. Runs on any backend.
 *
 * @example
 * const trainer = new Trainer(model, {
 *   schedule: warmupCosineSchedule({ peakLr: 1e-3, warmupSteps: 200, totalSteps: 10 * stepsPerEpoch }),
 *   labelSmoothing: 0.1, clipGradNorm: 1, seed: 42,
 * });
 * for (let e = 0; e < 10; e++) {
 *   await trainer.trainEpoch(train, { batchSize: 64 });
 *   console.log(await trainer.evaluate(test));
 * }
 */
export class Trainer {
  readonly model: LayersModel;
  readonly optimizer: GroupedAdamW;
  readonly ema: ModelEma | null;
  readonly numClasses: number;
  /** The run's random generator (data order, augmentation, mixing). */
  readonly random: Random;
  /** Optimizer steps done. */
  step = 0;
  /** Completed epochs. */
  epoch = 0;
  private readonly options: TrainerOptions;
  private readonly labelSmoothing: number;
  private parallel: TrainerGradientSource | null;

  constructor(model: LayersModel, options: TrainerOptions) {
    const o = 'Trainer';
    if (model == null || typeof (model as LayersModel).apply !== 'function') {
      throw new ConfigError(`${o}: model must be a tf.LayersModel, got ${String(model)}`);
    }
    if (options == null || typeof options.schedule !== 'function') {
      throw new ConfigError(`${o}: options.schedule must be a function step -> learning rate`);
    }
    const known = new Set([
      'schedule',
      'groups',
      'adam',
      'labelSmoothing',
      'clipGradNorm',
      'mix',
      'emaDecay',
      'emaWarmup',
      'augment',
      'numClasses',
      'seed',
      'onProgress',
      'parallel',
    ]);
    for (const key of Object.keys(options)) {
      if (!known.has(key)) {
        throw new ConfigError(
          `${o}: unknown option '${key}' (known: ${[...known].join(', ')}; the learning rate comes from 'schedule')`,
        );
      }
    }
    this.model = model;
    this.options = options;
    const outWidth = (model.outputs[0]?.shape ?? []).at(-1);
    this.numClasses = requirePositiveInt(o, 'numClasses', options.numClasses ?? outWidth);
    this.labelSmoothing = requireRate(o, 'labelSmoothing', options.labelSmoothing ?? 0);
    if (options.clipGradNorm != null && !(options.clipGradNorm > 0)) {
      throw new ConfigError(`${o}: clipGradNorm must be > 0, got ${String(options.clipGradNorm)}`);
    }
    if (options.parallel != null)
      checkGradientSource(o, 'options.parallel', options.parallel, model);
    this.parallel = options.parallel ?? null;
    this.optimizer = new GroupedAdamW(options.groups ?? createParamGroups(model), options.adam);
    if (options.emaWarmup != null && options.emaDecay == null) {
      throw new ConfigError(`${o}: emaWarmup needs emaDecay (an EMA to warm up)`);
    }
    this.ema =
      options.emaDecay == null
        ? null
        : new ModelEma(model, {
            decay: options.emaDecay,
            ...(options.emaWarmup == null ? {} : { warmup: options.emaWarmup }),
          });
    this.random = new Random(options.seed ?? 0);
  }

  /** Targets and (possibly mixed / augmented) images of one training batch. Owned by the caller. */
  private prepareBatch(
    images: tf.Tensor4D,
    labels: tf.Tensor1D,
  ): { x: tf.Tensor4D; targets: tf.Tensor2D } {
    let x = images;
    if (this.options.augment != null) x = this.options.augment(images, this.random);
    if (this.options.mix != null) {
      const mixed = mixBatch(x, labels, {
        ...this.options.mix,
        numClasses: this.numClasses,
        labelSmoothing: this.labelSmoothing,
        random: this.random,
      });
      if (x !== images) x.dispose();
      return { x: mixed.images, targets: mixed.targets };
    }
    return {
      x: x === images ? tf.clone(images) : x,
      targets: smoothOneHot(labels, this.numClasses, this.labelSmoothing),
    };
  }

  /**
   * One optimizer step on a batch: forward in training mode, cross-entropy on the (smoothed,
   * mixed) targets, gradients of the currently trainable weights, optional clipping, the grouped
   * AdamW update at `schedule(step)`, EMA update. Returns the batch loss and correct count.
   */
  async trainStep(
    images: tf.Tensor4D,
    labels: tf.Tensor1D,
  ): Promise<{ loss: number; correct: number; gradNorm: number | null }> {
    await checkLabels('Trainer.trainStep', labels, images.shape[0], this.numClasses);
    return this.stepOnCheckedLabels(images, labels);
  }

  /** {@link Trainer.trainStep} on labels already checked (trainEpoch checks the whole set once). */
  private async stepOnCheckedLabels(
    images: tf.Tensor4D,
    labels: tf.Tensor1D,
  ): Promise<{ loss: number; correct: number; gradNorm: number | null }> {
    const lr = this.options.schedule(this.step);
    const { x, targets } = this.prepareBatch(images, labels);
    const variables = this.model.trainableWeights.map((w) => w.read() as tf.Variable);
    if (variables.length === 0) {
      tf.dispose([x, targets]);
      throw new ConfigError(
        'Trainer.trainStep: the model has no trainable weights (everything is frozen)',
      );
    }
    if (this.parallel != null) return this.parallelStep(this.parallel, x, targets, labels, lr);
    let correctT: tf.Tensor | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const logits = this.model.apply(x, { training: true }) as tf.Tensor2D;
      correctT = tf.keep(
        tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(labels, 'int32')), 'float32')),
      );
      return tf.mean(tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(logits, -1)), -1))) as tf.Scalar;
    }, variables);
    const gradNorm = await this.applyStep(grads as Record<string, tf.Tensor>, lr);
    const loss = (await value.data())[0];
    const correct = correctT == null ? 0 : (await (correctT as tf.Tensor).data())[0];
    tf.dispose([x, targets, value, ...(correctT ? [correctT] : [])]);
    this.step += 1;
    return { loss, correct, gradNorm };
  }

  /**
   * Computes the following steps' gradients with `source` (see {@link TrainerOptions.parallel}),
   * or on the calling thread again with `null`. For a trainer made by `resumeTrainer`, whose
   * model exists only afterwards: `trainer.setParallel(await createDataParallelTrainer(trainer.model, { workers: 2 }))`.
   * The source is not destroyed by the Trainer.
   */
  setParallel(source: TrainerGradientSource | null): void {
    if (source != null) checkGradientSource('Trainer.setParallel', 'source', source, this.model);
    this.parallel = source;
  }

  /** {@link Trainer.trainStep} with the gradients from the parallel source. */
  private async parallelStep(
    source: TrainerGradientSource,
    x: tf.Tensor4D,
    targets: tf.Tensor2D,
    labels: tf.Tensor1D,
    lr: number,
  ): Promise<{ loss: number; correct: number; gradNorm: number | null }> {
    let result: Awaited<ReturnType<TrainerGradientSource['gradients']>>;
    try {
      result = await source.gradients(x, targets);
    } finally {
      tf.dispose([x, targets]);
    }
    const gradNorm = await this.applyStep(result.grads, lr);
    const truth = await labels.data();
    let correct = 0;
    for (let i = 0; i < truth.length; i++) if (result.predictions[i] === truth[i]) correct += 1;
    this.step += 1;
    return { loss: result.loss, correct, gradNorm };
  }

  /** Clipping, the optimizer update and EMA; disposes `grads`. Returns the norm when clipping. */
  private async applyStep(grads: Record<string, tf.Tensor>, lr: number): Promise<number | null> {
    let used = grads;
    let gradNorm: number | null = null;
    try {
      if (this.options.clipGradNorm != null) {
        const clipped = await clipByGlobalNorm(used, this.options.clipGradNorm);
        gradNorm = clipped.norm;
        tf.dispose(Object.values(used));
        used = clipped.grads;
      }
      this.optimizer.applyGradients(used, lr);
      this.ema?.update();
    } finally {
      tf.dispose(Object.values(used));
    }
    return gradNorm;
  }

  /**
   * One pass over `data` in a seeded random order (the last, smaller batch is kept). Calls
   * `onProgress` after each step. `maxSteps` cuts the epoch short (for tests and timing).
   */
  async trainEpoch(
    data: ImageDataset,
    options: { batchSize: number; maxSteps?: number },
  ): Promise<EpochResult> {
    const batchSize = requirePositiveInt('Trainer.trainEpoch', 'batchSize', options?.batchSize);
    const n = data.images.shape[0];
    await checkLabels('Trainer.trainEpoch', data.labels, n, this.numClasses);
    assertNonEmptyBatch(
      'Trainer.trainEpoch',
      data.images.shape,
      [null, null, null, null],
      'data.images',
    );
    const order = this.random.shuffle(Array.from({ length: n }, (_, i) => i));
    const batches = Math.min(
      Math.ceil(n / batchSize),
      options.maxSteps ?? Number.POSITIVE_INFINITY,
    );
    const t0 = performance.now();
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    const stepLosses: number[] = [];
    for (let b = 0; b < batches; b++) {
      const idx = order.slice(b * batchSize, (b + 1) * batchSize);
      const [x, y] = tf.tidy(() => {
        const i = tf.tensor1d(idx, 'int32');
        return [tf.gather(data.images, i) as tf.Tensor4D, tf.gather(data.labels, i) as tf.Tensor1D];
      });
      const lr = this.options.schedule(this.step);
      const r = await this.stepOnCheckedLabels(x, y);
      tf.dispose([x, y]);
      stepLosses.push(r.loss);
      lossSum += r.loss * idx.length;
      correct += r.correct;
      seen += idx.length;
      if (this.options.onProgress) {
        const elapsed = (performance.now() - t0) / 1000;
        this.options.onProgress({
          epoch: this.epoch,
          batch: b + 1,
          batches,
          step: this.step,
          loss: lossSum / seen,
          accuracy: correct / seen,
          imagesPerSecond: seen / Math.max(elapsed, 1e-9),
          etaSeconds: (elapsed / (b + 1)) * (batches - b - 1),
          learningRate: lr,
        });
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    const result: EpochResult = {
      epoch: this.epoch,
      loss: lossSum / seen,
      accuracy: correct / seen,
      stepLosses,
      seconds,
      imagesPerSecond: seen / seconds,
    };
    this.epoch += 1;
    return result;
  }

  /** Loss and accuracy on `data` in inference mode; with `useEma`, on the EMA weights. */
  async evaluate(
    data: ImageDataset,
    options: { batchSize?: number; useEma?: boolean } = {},
  ): Promise<EvalResult> {
    if (options.useEma) {
      if (this.ema == null)
        throw new ConfigError('Trainer.evaluate: useEma needs the emaDecay option');
      return this.ema.withAveraged(() => evaluateModel(this.model, data, options));
    }
    return evaluateModel(this.model, data, options);
  }

  /** The loop's state for a checkpoint (weights are saved with the model). */
  async getState(): Promise<TrainerState> {
    return {
      step: this.step,
      epoch: this.epoch,
      random: this.random.getState(),
      globalRandom: getRandomState(),
      optimizer: await this.optimizer.getState(this.model.weights),
      ema: this.ema ? { values: await this.ema.getState(), updates: this.ema.updates } : null,
    };
  }

  /** Continues from a state returned by {@link Trainer.getState} (weights loaded separately). */
  setState(state: TrainerState): void {
    if (state == null || !Number.isInteger(state.step) || !Number.isInteger(state.epoch)) {
      throw new ConfigError('Trainer.setState: state must have integer step and epoch');
    }
    this.optimizer.setState(this.model.weights, state.optimizer);
    if (this.ema != null) {
      if (state.ema == null)
        throw new ConfigError('Trainer.setState: the state has no EMA but the trainer uses one');
      this.ema.setState(state.ema.values, state.ema.updates);
    }
    this.random.setState(state.random);
    setRandomState(state.globalRandom ?? null);
    this.step = state.step;
    this.epoch = state.epoch;
  }

  /** Frees the optimizer moments and EMA copies (not the model). */
  dispose(): void {
    this.optimizer.dispose();
    this.ema?.dispose();
  }
}

/**
 * Labels are class indices: a rank-1 tensor of `count` integers in [0, numClasses). Checked
 * before training, as a wrong label does not fail in tfjs: an index past the classes one-hot
 * encodes to a row of zeros and trains silently, and one-hot labels fail deep inside a broadcast.
 */
async function checkLabels(
  owner: string,
  labels: tf.Tensor,
  count: number,
  numClasses: number,
): Promise<void> {
  if (!(labels instanceof tf.Tensor) || labels.rank !== 1) {
    const got =
      labels instanceof tf.Tensor
        ? `shape [${labels.shape.join(', ')}]${labels.rank === 2 ? ' (one-hot labels? pass tf.argMax(labels, -1))' : ''}`
        : String(labels);
    throw new InputShapeError(
      `${owner}: labels must be a rank-1 tensor of class indices [N], got ${got}`,
    );
  }
  if (labels.shape[0] !== count) {
    throw new InputShapeError(
      `${owner}: ${count} images but ${labels.shape[0]} labels (shape [${labels.shape.join(', ')}])`,
    );
  }
  const values = await labels.data();
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (!Number.isInteger(v) || v < 0 || v >= numClasses) {
      throw new InputShapeError(
        `${owner}: labels must be class indices, integers in [0, ${numClasses - 1}] for ${numClasses} classes, got ${v} at index ${i}`,
      );
    }
  }
}

/** Mean cross-entropy and top-1 accuracy of `model` on `data` (inference mode, in batches). */
export async function evaluateModel(
  model: LayersModel,
  data: ImageDataset,
  options: { batchSize?: number } = {},
): Promise<EvalResult> {
  const batchSize = requirePositiveInt('evaluateModel', 'batchSize', options.batchSize ?? 256);
  const n = data.images.shape[0];
  assertNonEmptyBatch('evaluateModel', data.images.shape, [null, null, null, null], 'data.images');
  const classes = model.outputs[0]?.shape[1];
  if (typeof classes === 'number') await checkLabels('evaluateModel', data.labels, n, classes);
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const [l, c] = tf.tidy(() => {
      const x = tf.slice(data.images, [start, 0, 0, 0], [size, -1, -1, -1]);
      const y = tf.cast(tf.slice(data.labels, [start], [size]), 'int32');
      const logits = model.apply(x) as tf.Tensor2D;
      const classes = logits.shape[1];
      const ce = tf.neg(tf.sum(tf.mul(tf.oneHot(y, classes), tf.logSoftmax(logits, -1))));
      const ok = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'float32'));
      return [ce, ok];
    });
    lossSum += (await l.data())[0];
    correct += (await c.data())[0];
    tf.dispose([l, c]);
  }
  return { loss: lossSum / n, accuracy: correct / n, count: n };
}
