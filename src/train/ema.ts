import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { checkKnownKeys } from '../config/schema';
import { ConfigError, requireBoolean, requireRate } from '../errors';
import type { HasWeights } from './param_groups';

/** Options of {@link ModelEma}. */
export interface ModelEmaOptions {
  /** Weight of the old average per update, in [0, 1). Default 0.9998. */
  decay?: number;
  /**
   * Warm the decay up (timm's `ModelEmaV3(use_warmup=True)`, power 2/3): update `n` (1-based)
   * uses `min(decay, 1 - n^(-2/3))`, so the first update copies the weights and the average
   * forgets the initial weights within a few hundred steps instead of ~1 / (1 - decay). Use it
   * when training starts from random weights. Default false (a constant decay).
   */
  warmup?: boolean;
}

/**
 * Exponential moving average of a model's weights (timm's `ModelEmaV2`, `ModelEmaV3` with
 * `warmup`): after each optimizer step, `ema = decay * ema + (1 - decay) * w` for every weight,
 * BatchNorm running statistics included. Evaluate with the averaged weights through
 * {@link ModelEma.withAveraged}, or copy them into the model with {@link ModelEma.copyTo}.
 *
 * @example
 * const ema = new ModelEma(model, { decay: 0.999, warmup: true });
 * // after each step: ema.update();
 * const acc = await ema.withAveraged(() => evaluate(model, test));
 */
export class ModelEma {
  /** Weight of the old average per update, in [0, 1). */
  readonly decay: number;
  /** Whether the decay is warmed up ({@link ModelEmaOptions.warmup}). */
  readonly warmup: boolean;
  private readonly weights: LayerVariable[];
  private readonly shadow: tf.Variable[];
  /** Number of updates so far. */
  updates = 0;

  constructor(model: HasWeights, options: ModelEmaOptions = {}) {
    checkKnownKeys('ModelEma', options, ['decay', 'warmup'], 'option');
    this.decay = requireRate('ModelEma', 'decay', options.decay ?? 0.9998);
    this.warmup = requireBoolean('ModelEma', 'warmup', options.warmup, false);
    if (model == null || !Array.isArray(model.weights)) {
      throw new ConfigError(`ModelEma: model must have weights, got ${String(model)}`);
    }
    this.weights = [...model.weights];
    this.shadow = tf.tidy(() => this.weights.map((w) => tf.variable(tf.clone(w.read()), false)));
  }

  /**
   * The decay update number `n` (1-based) uses: `decay`, or with `warmup`
   * `min(decay, 1 - n^(-2/3))` (0 for the first update: a copy).
   */
  decayAt(n: number): number {
    if (!this.warmup) return this.decay;
    return Math.min(this.decay, 1 - Math.max(1, n) ** (-2 / 3));
  }

  /** Moves the average one step towards the current weights. */
  update(): void {
    const d = this.decayAt(this.updates + 1);
    tf.tidy(() => {
      this.weights.forEach((w, i) => {
        const s = this.shadow[i];
        s.assign(tf.add(tf.mul(s, d), tf.mul(w.read(), 1 - d)));
      });
    });
    this.updates += 1;
  }

  /** The averaged values (the EMA's own variables; do not dispose). */
  get averaged(): readonly tf.Tensor[] {
    return this.shadow;
  }

  /** Writes the averaged weights into the model (overwriting the trained ones). */
  copyTo(): void {
    tf.tidy(() => {
      this.weights.forEach((w, i) => {
        w.write(tf.clone(this.shadow[i]));
      });
    });
  }

  /**
   * Runs `fn` with the averaged weights in the model, then puts the trained weights back (also
   * when `fn` throws).
   */
  async withAveraged<T>(fn: () => T | Promise<T>): Promise<T> {
    const saved = tf.tidy(() => this.weights.map((w) => tf.clone(w.read())));
    this.copyTo();
    try {
      return await fn();
    } finally {
      this.weights.forEach((w, i) => {
        w.write(saved[i]);
      });
      tf.dispose(saved);
    }
  }

  /** The averaged values as arrays keyed by each weight's `originalName` (for checkpoints). */
  async getState(): Promise<{ name: string; values: Float32Array }[]> {
    return Promise.all(
      this.shadow.map(async (s, i) => ({
        name: this.weights[i].originalName,
        values: (await s.data()) as Float32Array,
      })),
    );
  }

  /** Restores values returned by {@link ModelEma.getState} (matched by name). */
  setState(
    entries: readonly { name: string; values: Float32Array }[],
    updates = this.updates,
  ): void {
    const o = 'ModelEma.setState';
    if (!Array.isArray(entries) || entries.length !== this.shadow.length) {
      throw new ConfigError(
        `${o}: expected ${this.shadow.length} entries, got ${Array.isArray(entries) ? entries.length : String(entries)}`,
      );
    }
    const byName = new Map(entries.map((e) => [e.name, e.values]));
    const values = this.weights.map((w, i) => {
      const v = byName.get(w.originalName);
      if (v == null) throw new ConfigError(`${o}: no entry for weight ${w.originalName}`);
      if (v.length !== this.shadow[i].size) {
        throw new ConfigError(
          `${o}: ${w.originalName} needs ${this.shadow[i].size} values, got ${v.length}`,
        );
      }
      return v;
    });
    tf.tidy(() => {
      values.forEach((v, i) => {
        this.shadow[i].assign(tf.tensor(v, this.shadow[i].shape));
      });
    });
    this.updates = updates;
  }

  /** Frees the averaged copies. */
  dispose(): void {
    tf.dispose(this.shadow);
  }
}
