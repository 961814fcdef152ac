import { ConfigError, requireNonNegativeInt, requirePositive, requirePositiveInt } from '../errors';

/** A learning rate per optimizer step: `schedule(step)` for step 0, 1, 2, ... */
export type LrSchedule = (step: number) => number;

/** Options of {@link warmupCosineSchedule}. */
export interface WarmupCosineOptions {
  /** Learning rate at the end of the warm-up (the peak). Required. */
  peakLr: number;
  /** Total optimizer steps of the run (warm-up included). Required. */
  totalSteps: number;
  /** Steps of linear warm-up. Default 0. */
  warmupSteps?: number;
  /** Learning rate at the first warm-up step's start (timm `warmup_lr_init`). Default 0. */
  warmupInitLr?: number;
  /** Floor of the cosine (timm `lr_min`). Default 0. */
  minLr?: number;
}

/**
 * Linear warm-up then cosine decay, evaluated per optimizer step (timm's `CosineLRScheduler`
 * with `t_in_epochs=False`, one cycle, no restarts):
 * - step `s < warmupSteps`: `warmupInitLr + (peakLr - warmupInitLr) * (s + 1) / warmupSteps`
 *   (the first step already moves; the last warm-up step reaches the peak);
 * - afterwards: `minLr + (peakLr - minLr) * (1 + cos(pi * t)) / 2` with
 *   `t = (s - warmupSteps) / (totalSteps - warmupSteps)`, clamped to [0, 1] (steps beyond the
 *   end stay at `minLr`).
 *
 * The schedule is a pure function of the step, so a resumed run continues it from the saved
 * step count.
 *
 * @example
 * const lr = warmupCosineSchedule({ peakLr: 1e-3, warmupSteps: 100, totalSteps: 2000, minLr: 1e-5 });
 * lr(0); // 1e-5 (one hundredth of the way up); lr(99) === 1e-3; lr(2000) === 1e-5
 */
export function warmupCosineSchedule(options: WarmupCosineOptions): LrSchedule {
  const o = 'warmupCosineSchedule';
  if (options == null || typeof options !== 'object') {
    throw new ConfigError(`${o}: options must be an object, got ${String(options)}`);
  }
  const peak = requirePositive(o, 'peakLr', options.peakLr);
  const total = requirePositiveInt(o, 'totalSteps', options.totalSteps);
  const warmup = requireNonNegativeInt(o, 'warmupSteps', options.warmupSteps ?? 0);
  if (warmup > total) {
    throw new ConfigError(`${o}: warmupSteps (${warmup}) must be <= totalSteps (${total})`);
  }
  const init = nonNegative(o, 'warmupInitLr', options.warmupInitLr ?? 0);
  const min = nonNegative(o, 'minLr', options.minLr ?? 0);
  if (min > peak) throw new ConfigError(`${o}: minLr (${min}) must be <= peakLr (${peak})`);
  return (step: number): number => {
    if (!Number.isInteger(step) || step < 0) {
      throw new ConfigError(`${o}: step must be an integer >= 0, got ${String(step)}`);
    }
    if (step < warmup) return init + ((peak - init) * (step + 1)) / warmup;
    const span = total - warmup;
    const t = span > 0 ? Math.min(1, (step - warmup) / span) : 1;
    return min + ((peak - min) * (1 + Math.cos(Math.PI * t))) / 2;
  };
}

/** A constant learning rate as an {@link LrSchedule}. */
export function constantSchedule(lr: number): LrSchedule {
  const value = requirePositive('constantSchedule', 'lr', lr);
  return () => value;
}

function nonNegative(owner: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ConfigError(`${owner}: ${name} must be a finite number >= 0, got ${String(value)}`);
  }
  return value;
}
