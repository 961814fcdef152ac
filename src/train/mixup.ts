import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, requirePositive, requirePositiveInt, requireRate } from '../errors';
import type { RandomSource } from './augment';

/** Options of {@link mixBatch}. */
export interface MixOptions {
  /** Mixup alpha (Beta(alpha, alpha) mixing weight); 0 = off. Default 0. */
  mixupAlpha?: number;
  /** CutMix alpha; 0 = off. Default 0. */
  cutmixAlpha?: number;
  /** Probability of mixing a batch at all. Default 1. */
  prob?: number;
  /** When both are on: probability of CutMix instead of mixup. Default 0.5. */
  switchProb?: number;
  /** Label smoothing folded into the targets (timm `Mixup(label_smoothing=...)`). Default 0. */
  labelSmoothing?: number;
  /** Classes of the one-hot targets. Required. */
  numClasses: number;
  /** Uniform random source (seeded `Random`). Required. */
  random: RandomSource;
}

/** A mixed batch: new images and soft targets (rows sum to 1). */
export interface MixedBatch {
  images: tf.Tensor4D;
  targets: tf.Tensor2D;
  /** Weight of each image's own label (1 when the batch was not mixed). */
  lambda: number;
  /** What was applied. */
  mode: 'none' | 'mixup' | 'cutmix';
}

/** Smoothed one-hot targets: `onehot * (1 - s) + s / numClasses` (timm / PyTorch convention). */
export function smoothOneHot(labels: tf.Tensor1D, numClasses: number, smoothing = 0): tf.Tensor2D {
  requirePositiveInt('smoothOneHot', 'numClasses', numClasses);
  requireRate('smoothOneHot', 'smoothing', smoothing);
  return tf.tidy(() => {
    const oneHot = tf.cast(tf.oneHot(tf.cast(labels, 'int32'), numClasses), 'float32');
    return (
      smoothing > 0 ? tf.add(tf.mul(oneHot, 1 - smoothing), smoothing / numClasses) : oneHot
    ) as tf.Tensor2D;
  });
}

/** Gamma(shape, 1) draw from uniforms (Marsaglia-Tsang; shape < 1 by the boost u^(1/shape)). */
function gamma(shape: number, random: RandomSource): number {
  if (shape < 1) return gamma(shape + 1, random) * random.next() ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      const u1 = 1 - random.next();
      const u2 = random.next();
      x = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - random.next();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

/** A Beta(a, b) draw from the random source. */
export function sampleBeta(a: number, b: number, random: RandomSource): number {
  requirePositive('sampleBeta', 'a', a);
  requirePositive('sampleBeta', 'b', b);
  const x = gamma(a, random);
  const y = gamma(b, random);
  return x / (x + y);
}

/**
 * Mixup / CutMix on a batch, as timm's `Mixup` in 'batch' mode: each image is mixed with the
 * batch in reverse order (`x.flip(0)`). Mixup: `lam * x + (1 - lam) * x_flip`, lam ~
 * Beta(alpha, alpha). CutMix: a box of area `(1 - lam)` of the image is pasted from `x_flip`, the
 * box is clipped at the border and lam is corrected to the pasted area. Targets mix the
 * (smoothed) one-hot labels with the same lam.
 */
export function mixBatch(
  images: tf.Tensor4D,
  labels: tf.Tensor1D,
  options: MixOptions,
): MixedBatch {
  const o = 'mixBatch';
  if (options == null || typeof options.random?.next !== 'function') {
    throw new ConfigError(`${o}: options.random must have a next() method`);
  }
  const numClasses = requirePositiveInt(o, 'numClasses', options.numClasses);
  const mixAlpha = options.mixupAlpha ?? 0;
  const cutAlpha = options.cutmixAlpha ?? 0;
  for (const [n, v] of [
    ['mixupAlpha', mixAlpha],
    ['cutmixAlpha', cutAlpha],
  ] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new ConfigError(`${o}: ${n} must be a finite number >= 0, got ${String(v)}`);
    }
  }
  const prob = options.prob ?? 1;
  const switchProb = options.switchProb ?? 0.5;
  const smoothing = options.labelSmoothing ?? 0;
  const { random } = options;
  const targets = smoothOneHot(labels, numClasses, smoothing);
  if ((mixAlpha === 0 && cutAlpha === 0) || random.next() >= prob) {
    return { images: tf.clone(images), targets, lambda: 1, mode: 'none' };
  }
  const useCutmix = cutAlpha > 0 && (mixAlpha === 0 || random.next() < switchProb);
  let lam = sampleBeta(useCutmix ? cutAlpha : mixAlpha, useCutmix ? cutAlpha : mixAlpha, random);
  const [, h, w] = images.shape;
  let box: [number, number, number, number] | null = null;
  if (useCutmix) {
    const ratio = Math.sqrt(1 - lam);
    const ch = Math.floor(h * ratio);
    const cw = Math.floor(w * ratio);
    const cy = Math.floor(random.next() * h);
    const cx = Math.floor(random.next() * w);
    const y0 = Math.max(0, cy - Math.floor(ch / 2));
    const y1 = Math.min(h, cy + Math.floor(ch / 2));
    const x0 = Math.max(0, cx - Math.floor(cw / 2));
    const x1 = Math.min(w, cx + Math.floor(cw / 2));
    box = [y0, y1, x0, x1];
    lam = 1 - ((y1 - y0) * (x1 - x0)) / (h * w);
  }
  const out = tf.tidy(() => {
    const flipped = tf.reverse(images, 0);
    let mixed: tf.Tensor4D;
    if (box == null) {
      mixed = tf.add(tf.mul(images, lam), tf.mul(flipped, 1 - lam)) as tf.Tensor4D;
    } else {
      const [y0, y1, x0, x1] = box;
      const rows = tf.logicalAnd(tf.greaterEqual(tf.range(0, h), y0), tf.less(tf.range(0, h), y1));
      const cols = tf.logicalAnd(tf.greaterEqual(tf.range(0, w), x0), tf.less(tf.range(0, w), x1));
      const inBox = tf.logicalAnd(tf.reshape(rows, [1, h, 1, 1]), tf.reshape(cols, [1, 1, w, 1]));
      mixed = tf.where(tf.broadcastTo(inBox, images.shape), flipped, images) as tf.Tensor4D;
    }
    const mixedTargets = tf.add(
      tf.mul(targets, lam),
      tf.mul(tf.reverse(targets, 0), 1 - lam),
    ) as tf.Tensor2D;
    return { mixed, mixedTargets };
  });
  targets.dispose();
  return {
    images: out.mixed,
    targets: out.mixedTargets,
    lambda: lam,
    mode: useCutmix ? 'cutmix' : 'mixup',
  };
}
