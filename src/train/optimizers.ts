import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, requirePositive, requireRate } from '../errors';
import { CLASS_PREFIX } from '../layers/register';
import type { NamedTensor, NamedVariableMap } from '../tfjs_types';

/**
 * Optimizers with PyTorch's defaults, pinned so that they do not change with the backend.
 *
 * `tf.train.adam()` takes its default epsilon from `backend.epsilon()`: 1e-7 on cpu and wasm but
 * 1e-4 on webgl whenever it reports 16-bit floats (it does in Chromium even with float32
 * textures), which changes the effective step size of every small-gradient weight. These
 * helpers always pass epsilon explicitly (default 1e-8, PyTorch's).
 */

/** PyTorch's `torch.optim.Adam` / `AdamW` defaults. */
export const ADAM_DEFAULTS = {
  learningRate: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
} as const;

/** PyTorch's `torch.optim.AdamW` default weight decay. */
export const ADAMW_DEFAULT_WEIGHT_DECAY = 1e-2;

/**
 * Name segments of weights that AdamW does not decay by default, besides every weight of rank
 * <= 1 (biases, norm scales and shifts): timm's `no_weight_decay()` of a ViT.
 */
export const DEFAULT_NO_WEIGHT_DECAY: readonly string[] = [
  'cls_token',
  'reg_token',
  'dist_token',
  'pos_embed',
];

/** Options of {@link adam}. */
export interface AdamOptions {
  /** Step size. Default 1e-3. */
  learningRate?: number;
  /** Decay of the first-moment estimate, in [0, 1). Default 0.9. */
  beta1?: number;
  /** Decay of the second-moment estimate, in [0, 1). Default 0.999. */
  beta2?: number;
  /** Added to the square root of the second moment. Default 1e-8 (PyTorch), on every backend. */
  epsilon?: number;
}

/** Options of {@link adamw} and {@link AdamW}. */
export interface AdamWOptions extends AdamOptions {
  /** Decoupled weight decay: each decayed weight is multiplied by `1 - lr * weightDecay` per step. Default 1e-2. */
  weightDecay?: number;
  /**
   * Weights whose name has one of these `/`-separated segments are not decayed (a trailing
   * `_<n>` uniqueness suffix is ignored). Weights of rank <= 1 are never decayed.
   * Default {@link DEFAULT_NO_WEIGHT_DECAY}.
   */
  noWeightDecay?: readonly string[];
}

interface ResolvedAdam {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

function resolveAdam(owner: string, options: AdamOptions): ResolvedAdam {
  if (options == null || typeof options !== 'object') {
    throw new ConfigError(`${owner}: options must be an object, got ${String(options)}`);
  }
  return {
    learningRate: requirePositive(
      owner,
      'learningRate',
      options.learningRate ?? ADAM_DEFAULTS.learningRate,
    ),
    beta1: requireRate(owner, 'beta1', options.beta1 ?? ADAM_DEFAULTS.beta1),
    beta2: requireRate(owner, 'beta2', options.beta2 ?? ADAM_DEFAULTS.beta2),
    epsilon: requirePositive(owner, 'epsilon', options.epsilon ?? ADAM_DEFAULTS.epsilon),
  };
}

function requireNonNegative(owner: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ConfigError(`${owner}: ${name} must be a finite number >= 0, got ${String(value)}`);
  }
  return value;
}

/**
 * Adam with PyTorch's defaults and an explicit epsilon, so it behaves the same on every backend.
 * The update is `torch.optim.Adam`'s: `w -= lr * m_hat / (sqrt(v_hat) + epsilon)`.
 *
 * @example
 * model.compile({ optimizer: adam({ learningRate: 3e-4 }), loss: softmaxCrossEntropy() });
 */
export function adam(options: AdamOptions = {}): tf.AdamOptimizer {
  const o = resolveAdam('adam', options);
  return new tf.AdamOptimizer(o.learningRate, o.beta1, o.beta2, o.epsilon);
}

/** Last `/`-separated segment rules: `blocks/0/attn/qkv/kernel_3` has segments ending `kernel`. */
function nameSegments(name: string): string[] {
  return name.split('/').map((s) => s.replace(/_\d+$/, ''));
}

/**
 * AdamW, as `torch.optim.AdamW`: before each Adam step, every decayed weight is shrunk by
 * `w -= lr * weightDecay * w` (decoupled weight decay), then the Adam update is applied with an
 * explicit epsilon. Weights of rank <= 1 (biases, LayerNorm / BatchNorm parameters) and the
 * class / register / position embeddings are not decayed, as timm's
 * `param_groups_weight_decay` sets up the groups for a ViT.
 *
 * Serializable (`VitTs>AdamW`): a model saved with `includeOptimizer: true` restores it.
 */
export class AdamW extends tf.AdamOptimizer {
  /** @nocollapse */
  static override get className(): string {
    return `${CLASS_PREFIX}>AdamW`;
  }
  /** Decoupled weight-decay factor. */
  readonly weightDecay: number;
  /** Name segments excluded from decay. */
  readonly noWeightDecay: readonly string[];

  constructor(options: AdamWOptions = {}) {
    const o = resolveAdam('AdamW', options);
    super(o.learningRate, o.beta1, o.beta2, o.epsilon);
    this.weightDecay = requireNonNegative(
      'AdamW',
      'weightDecay',
      options.weightDecay ?? ADAMW_DEFAULT_WEIGHT_DECAY,
    );
    const noDecay = options.noWeightDecay ?? DEFAULT_NO_WEIGHT_DECAY;
    if (!Array.isArray(noDecay) || noDecay.some((s) => typeof s !== 'string')) {
      throw new ConfigError(
        `AdamW: noWeightDecay must be an array of strings, got ${String(noDecay)}`,
      );
    }
    this.noWeightDecay = [...noDecay];
  }

  /** Whether the weight-decay term applies to a variable (see the class description). */
  decays(name: string, variable: tf.Variable): boolean {
    if (variable.rank <= 1) return false;
    const excluded = new Set(this.noWeightDecay);
    return !nameSegments(name).some((s) => excluded.has(s));
  }

  /** Applies decoupled weight decay to the decayed variables, then the Adam update. */
  override applyGradients(variableGradients: NamedVariableMap | NamedTensor[]): void {
    if (this.weightDecay > 0) {
      const entries: Array<[string, tf.Tensor | undefined]> = Array.isArray(variableGradients)
        ? variableGradients.map((v) => [v.name, v.tensor])
        : Object.entries(variableGradients);
      const shrink = 1 - this.learningRate * this.weightDecay;
      tf.tidy(() => {
        for (const [name, grad] of entries) {
          const variable = tf.engine().registeredVariables[name];
          // As PyTorch: a weight without a gradient this step is not decayed either.
          if (grad == null || variable == null || !this.decays(name, variable)) continue;
          variable.assign(tf.mul(variable, shrink));
        }
      });
    }
    super.applyGradients(variableGradients);
  }

  /** Adam's config plus `weightDecay` and the names excluded from decay, for saving. */
  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      weightDecay: this.weightDecay,
      noWeightDecay: [...this.noWeightDecay],
    };
  }

  /**
   * Rebuilds an AdamW from its {@link AdamW.getConfig} output (tfjs' deserialization hook).
   * @nocollapse
   */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const Ctor = cls as unknown as new (o: AdamWOptions) => T;
    return new Ctor({
      learningRate: config['learningRate'] as number,
      beta1: config['beta1'] as number,
      beta2: config['beta2'] as number,
      epsilon: config['epsilon'] as number,
      weightDecay: config['weightDecay'] as number,
      noWeightDecay: config['noWeightDecay'] as string[] | undefined,
    });
  }
}
tf.serialization.registerClass(AdamW, CLASS_PREFIX, 'AdamW');

/**
 * AdamW with PyTorch's defaults (lr 1e-3, betas 0.9 / 0.999, epsilon 1e-8, weight decay 1e-2)
 * and timm's choice of decayed weights. See {@link AdamW}.
 *
 * @example
 * model.compile({ optimizer: adamw({ learningRate: 5e-4, weightDecay: 0.05 }), loss: softmaxCrossEntropy() });
 */
export function adamw(options: AdamWOptions = {}): AdamW {
  return new AdamW(options);
}
