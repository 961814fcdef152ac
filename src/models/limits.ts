/**
 * Size limits checked before a model allocates anything: a config such as `depth: 1e6` or a
 * model.json edited to `"embed_dim": 1e7` is refused with its parameter count in the message
 * instead of running for minutes into gigabytes.
 */
import { ConfigError } from '../errors';

/** Upper bounds on a model's size, checked from its config alone. */
export interface SizeLimits {
  /** Most parameters a model may have. Default 3e9 (12 GB of float32 weights). */
  maxParams?: number;
  /**
   * Most elements of one activation tensor for one image (the attention probabilities
   * `heads x N x N`, or the MLP's `N x hidden`). Default 2^31 (8 GB of float32).
   */
  maxActivations?: number;
}

/** The defaults of {@link SizeLimits}. */
export const DEFAULT_SIZE_LIMITS: Readonly<Required<SizeLimits>> = Object.freeze({
  maxParams: 3e9,
  maxActivations: 2 ** 31,
});

let current: Required<SizeLimits> = { ...DEFAULT_SIZE_LIMITS };

function checkLimits(owner: string, limits: SizeLimits): void {
  for (const key of Object.keys(limits)) {
    if (key !== 'maxParams' && key !== 'maxActivations') {
      throw new ConfigError(
        `${owner}: unknown size limit '${key}'; known limits: maxParams, maxActivations`,
      );
    }
    const v = (limits as Record<string, unknown>)[key];
    if (v !== undefined && (typeof v !== 'number' || !(v > 0) || Number.isNaN(v))) {
      throw new ConfigError(`${owner}: ${key} must be a number > 0, got ${String(v)}`);
    }
  }
}

/** Changes the library-wide size limits (fields left out keep their value). */
export function setSizeLimits(limits: SizeLimits): void {
  checkLimits('setSizeLimits', limits);
  current = {
    maxParams: limits.maxParams ?? current.maxParams,
    maxActivations: limits.maxActivations ?? current.maxActivations,
  };
}

/** The size limits in force. */
export function getSizeLimits(): Required<SizeLimits> {
  return { ...current };
}

/**
 * Runs `fn` (synchronous) with some limits changed, restoring them afterwards. Used by the
 * factories' and `loadModel`'s `maxParams` / `maxActivations` options.
 */
export function withSizeLimits<T>(owner: string, limits: SizeLimits, fn: () => T): T {
  checkLimits(owner, limits);
  if (limits.maxParams === undefined && limits.maxActivations === undefined) return fn();
  const previous = current;
  current = {
    maxParams: limits.maxParams ?? current.maxParams,
    maxActivations: limits.maxActivations ?? current.maxActivations,
  };
  try {
    return fn();
  } finally {
    current = previous;
  }
}

function formatCount(n: number): string {
  return Number.isSafeInteger(n) ? n.toLocaleString('en-US') : n.toExponential(3);
}

/**
 * Throws a {@link ConfigError} when `params` or `activations` exceed the limits in force,
 * naming the count, the limit and how to raise it.
 */
export function checkModelSize(owner: string, params: number, activations: number): void {
  const { maxParams, maxActivations } = current;
  if (!(params <= maxParams)) {
    throw new ConfigError(
      `${owner}: the config has at least ${formatCount(params)} parameters, above maxParams ${formatCount(maxParams)}; ` +
        'pass { maxParams } (or call setSizeLimits) to allow it',
    );
  }
  if (!(activations <= maxActivations)) {
    throw new ConfigError(
      `${owner}: the config needs an activation of ${formatCount(activations)} elements per image, above maxActivations ${formatCount(maxActivations)}; ` +
        'pass { maxActivations } (or call setSizeLimits) to allow it',
    );
  }
}
