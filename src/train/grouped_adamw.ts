import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { ConfigError, requirePositive, requireRate } from '../errors';
import { ADAM_DEFAULTS } from './optimizers';
import type { ParamGroup } from './param_groups';

/** Options of {@link GroupedAdamW}. */
export interface GroupedAdamWOptions {
  /** Decay of the first moment. Default 0.9. */
  beta1?: number;
  /** Decay of the second moment. Default 0.999. */
  beta2?: number;
  /** Added to `sqrt(v_hat)`. Default 1e-8 (PyTorch), on every backend. */
  epsilon?: number;
}

/** Adam moments of one weight, as plain arrays (for checkpoints). */
export interface AdamSlotState {
  /** The weight's `originalName` (checked on restore). */
  name: string;
  /** Steps this weight has been updated (PyTorch `state['step']`). */
  step: number;
  /** First moment, same size as the weight. */
  m: Float32Array;
  /** Second moment. */
  v: Float32Array;
}

/** Serializable state of a {@link GroupedAdamW}: one entry per updated weight, keyed by `originalName`. */
export interface GroupedAdamWState {
  slots: AdamSlotState[];
}

interface Slot {
  m: tf.Variable;
  v: tf.Variable;
  step: number;
}

/**
 * AdamW over parameter groups (PyTorch `torch.optim.AdamW` with `param_groups`): each group has
 * its own learning-rate multiplier and weight decay; the base learning rate is passed per step
 * (from a schedule). For a weight with gradient `g` at its step `t`:
 * `w *= 1 - lr * wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`, with `lr = baseLr * lrScale`.
 *
 * Moments are keyed by weight, so freezing or unfreezing parts between steps is safe (a weight
 * without a gradient keeps its moments and is neither updated nor decayed, as in PyTorch).
 * Use it with {@link Trainer} or call {@link GroupedAdamW.applyGradients} from your own loop.
 */
export class GroupedAdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  /** The groups, as given. */
  readonly groups: readonly ParamGroup[];
  private readonly groupOf = new Map<string, ParamGroup>();
  private readonly slots = new Map<string, Slot>();

  constructor(groups: readonly ParamGroup[], options: GroupedAdamWOptions = {}) {
    const o = 'GroupedAdamW';
    if (!Array.isArray(groups) || groups.length === 0) {
      throw new ConfigError(
        `${o}: groups must be a non-empty array of ParamGroup, got ${String(groups)}`,
      );
    }
    this.beta1 = requireRate(o, 'beta1', options.beta1 ?? ADAM_DEFAULTS.beta1);
    this.beta2 = requireRate(o, 'beta2', options.beta2 ?? ADAM_DEFAULTS.beta2);
    this.epsilon = requirePositive(o, 'epsilon', options.epsilon ?? ADAM_DEFAULTS.epsilon);
    this.groups = groups;
    for (const g of groups) {
      for (const w of g.weights) {
        if (this.groupOf.has(w.name)) {
          throw new ConfigError(
            `${o}: weight ${w.name} is in two groups ('${this.groupOf.get(w.name)?.name}' and '${g.name}')`,
          );
        }
        this.groupOf.set(w.name, g);
      }
    }
  }

  /** The group of a weight (by runtime variable name), or undefined. */
  groupFor(name: string): ParamGroup | undefined {
    return this.groupOf.get(name);
  }

  /**
   * One AdamW step. `grads` maps runtime variable names (`LayerVariable.name`, the key
   * `tf.variableGrads` returns) to gradients; weights not in any group throw. The caller keeps
   * ownership of `grads`.
   */
  applyGradients(grads: Record<string, tf.Tensor>, baseLr: number): void {
    requirePositive('GroupedAdamW.applyGradients', 'baseLr', baseLr);
    const { beta1: b1, beta2: b2, epsilon: eps } = this;
    for (const [name, grad] of Object.entries(grads)) {
      if (grad == null) continue;
      const group = this.groupOf.get(name);
      if (group == null) {
        throw new ConfigError(`GroupedAdamW: gradient for ${name}, which is in no parameter group`);
      }
      const variable = tf.engine().registeredVariables[name];
      if (variable == null) throw new ConfigError(`GroupedAdamW: no variable named ${name}`);
      let slot = this.slots.get(name);
      if (slot == null) {
        // tidy frees the zeros; a variable keeps its own reference to the data.
        slot = tf.tidy(() => ({
          m: tf.variable(tf.zerosLike(variable), false),
          v: tf.variable(tf.zerosLike(variable), false),
          step: 0,
        }));
        this.slots.set(name, slot);
      }
      slot.step += 1;
      const lr = baseLr * group.lrScale;
      const c1 = 1 - b1 ** slot.step;
      const c2 = 1 - b2 ** slot.step;
      const s = slot;
      tf.tidy(() => {
        const m = tf.add(tf.mul(s.m, b1), tf.mul(grad, 1 - b1));
        const v = tf.add(tf.mul(s.v, b2), tf.mul(tf.square(grad), 1 - b2));
        s.m.assign(m);
        s.v.assign(v);
        const decayed =
          group.weightDecay > 0 ? tf.mul(variable, 1 - lr * group.weightDecay) : variable;
        const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(c2)), eps);
        variable.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), lr / c1)));
      });
    }
  }

  /** Steps taken by a weight (0 if never updated). */
  stepOf(name: string): number {
    return this.slots.get(name)?.step ?? 0;
  }

  /**
   * The moments as plain arrays, for a checkpoint: one entry per weight of `weights` (normally
   * `model.weights`) that has been updated, keyed by the weight's `originalName` (stable across
   * processes, unlike runtime names). Reads the backend (async).
   */
  async getState(weights: readonly LayerVariable[]): Promise<GroupedAdamWState> {
    const slots: AdamSlotState[] = [];
    for (const w of weights) {
      const slot = this.slots.get(w.name);
      if (slot == null) continue;
      slots.push({
        name: w.originalName,
        step: slot.step,
        m: (await slot.m.data()) as Float32Array,
        v: (await slot.v.data()) as Float32Array,
      });
    }
    return { slots };
  }

  /**
   * Restores moments saved by {@link GroupedAdamW.getState}, matching weights of `weights` by
   * `originalName`. Throws (and keeps the current state) when a saved weight is missing or has
   * another size.
   */
  setState(weights: readonly LayerVariable[], state: GroupedAdamWState): void {
    const o = 'GroupedAdamW.setState';
    if (state == null || !Array.isArray(state.slots)) {
      throw new ConfigError(`${o}: state must be { slots: [...] }, got ${String(state)}`);
    }
    const byName = new Map(weights.map((w) => [w.originalName, w]));
    const checked = state.slots.map((saved) => {
      const w = byName.get(saved.name);
      if (w == null)
        throw new ConfigError(
          `${o}: the state has moments for ${saved.name}, which the model does not have`,
        );
      if (!this.groupOf.has(w.name))
        throw new ConfigError(
          `${o}: weight ${saved.name} (variable ${w.name}) is in no parameter group: groups hold variables, so groups built from another model instance (e.g. the original run's, before a resume) do not match; build them from this model (resumeTrainer(dir, (model) => ({ ..., groups: createParamGroups(model, ...) })))`,
        );
      const size = tf.util.sizeFromShape(w.shape as number[]);
      if (
        saved.m.length !== size ||
        saved.v.length !== size ||
        !Number.isInteger(saved.step) ||
        saved.step < 1
      ) {
        throw new ConfigError(
          `${o}: moments of ${saved.name} need ${size} values and a step >= 1, got ${saved.m.length}, ${saved.v.length} values and step ${saved.step}`,
        );
      }
      return { w, saved };
    });
    this.disposeSlots();
    for (const { w, saved } of checked) {
      const shape = w.shape as number[];
      this.slots.set(
        w.name,
        tf.tidy(() => ({
          m: tf.variable(tf.tensor(saved.m, shape), false),
          v: tf.variable(tf.tensor(saved.v, shape), false),
          step: saved.step,
        })),
      );
    }
  }

  private disposeSlots(): void {
    for (const s of this.slots.values()) tf.dispose([s.m, s.v]);
    this.slots.clear();
  }

  /** Frees the moment tensors. */
  dispose(): void {
    this.disposeSlots();
  }
}
