import * as tf from '@tensorflow/tfjs-core';
import {
  ConfigError,
  formatShape,
  InputShapeError,
  requireNonNegativeInt,
  requirePositiveInt,
} from '../errors';

/**
 * A source of uniform numbers in [0, 1): the library's seeded `Random` (src/random.ts) or
 * anything with the same `next()`. Augmentations draw only from it, so a seeded run repeats.
 */
export interface RandomSource {
  /** A uniform random number in [0, 1). */
  next(): number;
}

function requireImages(owner: string, images: tf.Tensor): tf.Tensor4D {
  if (!(images instanceof tf.Tensor) || images.rank !== 4) {
    throw new InputShapeError(
      `${owner}: images must be a rank-4 NHWC tensor [batch, height, width, channels], got ${images instanceof tf.Tensor ? formatShape(images.shape) : typeof images}`,
    );
  }
  return images as tf.Tensor4D;
}

function requireRandom(owner: string, random: RandomSource): RandomSource {
  if (random == null || typeof random.next !== 'function') {
    throw new ConfigError(
      `${owner}: random must have a next() method returning [0, 1), got ${String(random)}`,
    );
  }
  return random;
}

/** Options of {@link randomCrop}. */
export interface RandomCropOptions {
  /** Zero padding added on each side before cropping (torchvision `padding`). Default 4. */
  padding?: number;
  /** Crop size, square or `[height, width]`. Default: the input size. */
  size?: number | [number, number];
  /** Uniform random source (seeded `Random`). Required. */
  random: RandomSource;
}

/**
 * Random crop with zero padding per image (torchvision `RandomCrop(size, padding)`): each image
 * is padded by `padding` pixels, then a window of `size` is cut at an offset drawn uniformly
 * over all valid positions. Returns a new tensor.
 *
 * @example
 * const x = randomCrop(batch, { padding: 2, random });   // 28 px -> 28 px, shifted by up to 2
 */
export function randomCrop(images: tf.Tensor4D, options: RandomCropOptions): tf.Tensor4D {
  const o = 'randomCrop';
  const x = requireImages(o, images);
  const random = requireRandom(o, options?.random);
  const padding = requireNonNegativeInt(o, 'padding', options.padding ?? 4);
  const [b, h, w] = x.shape;
  const [ch, cw] = Array.isArray(options.size)
    ? options.size
    : [options.size ?? h, options.size ?? w];
  requirePositiveInt(o, 'size', ch);
  requirePositiveInt(o, 'size', cw);
  if (ch > h + 2 * padding || cw > w + 2 * padding) {
    throw new ConfigError(
      `${o}: crop ${ch}x${cw} is larger than the padded image ${h + 2 * padding}x${w + 2 * padding}`,
    );
  }
  // Offsets are drawn before any tensor work, in a fixed order: two draws per image.
  const offsets: Array<[number, number]> = [];
  for (let i = 0; i < b; i++) {
    offsets.push([
      Math.floor(random.next() * (h + 2 * padding - ch + 1)),
      Math.floor(random.next() * (w + 2 * padding - cw + 1)),
    ]);
  }
  return tf.tidy(() => {
    const padded =
      padding > 0
        ? tf.pad(x, [
            [0, 0],
            [padding, padding],
            [padding, padding],
            [0, 0],
          ])
        : x;
    const crops = offsets.map(([dy, dx], i) =>
      tf.slice(padded, [i, dy, dx, 0], [1, ch, cw, x.shape[3]]),
    );
    return tf.concat(crops, 0) as tf.Tensor4D;
  });
}

/**
 * Flips each image left-right with probability `p` (torchvision `RandomHorizontalFlip`). One
 * draw per image. Returns a new tensor.
 */
export function randomHorizontalFlip(
  images: tf.Tensor4D,
  options: { p?: number; random: RandomSource },
): tf.Tensor4D {
  const o = 'randomHorizontalFlip';
  const x = requireImages(o, images);
  const random = requireRandom(o, options?.random);
  const p = options.p ?? 0.5;
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) {
    throw new ConfigError(`${o}: p must be a number in [0, 1], got ${String(p)}`);
  }
  const flags = Array.from({ length: x.shape[0] }, () => (random.next() < p ? 1 : 0));
  return tf.tidy(() => {
    const mask = tf.reshape(tf.tensor1d(flags, 'bool'), [x.shape[0], 1, 1, 1]);
    return tf.where(tf.broadcastTo(mask, x.shape), tf.reverse(x, 2), x) as tf.Tensor4D;
  });
}

/**
 * Resizes images bilinearly to `size` (PyTorch `F.interpolate(mode='bilinear',
 * align_corners=False)` sampling: half-pixel centres). Returns a new tensor.
 */
export function resizeImages(images: tf.Tensor4D, size: number | [number, number]): tf.Tensor4D {
  const o = 'resizeImages';
  const x = requireImages(o, images);
  const [h, w] = Array.isArray(size) ? size : [size, size];
  requirePositiveInt(o, 'size', h);
  requirePositiveInt(o, 'size', w);
  return tf.image.resizeBilinear(x, [h, w], false, true);
}

/**
 * Per-channel normalisation `(x - mean) / std` (torchvision `Normalize`). `mean` and `std` have
 * one value per channel (or one for all). Returns a new tensor.
 *
 * @example
 * normalizeImages(x, [0.286], [0.353]); // Fashion-MNIST training statistics
 */
export function normalizeImages(
  images: tf.Tensor4D,
  mean: readonly number[],
  std: readonly number[],
): tf.Tensor4D {
  const o = 'normalizeImages';
  const x = requireImages(o, images);
  const c = x.shape[3];
  const check = (name: string, v: readonly number[]) => {
    if (
      !Array.isArray(v) ||
      (v.length !== c && v.length !== 1) ||
      v.some((n) => !Number.isFinite(n))
    ) {
      throw new ConfigError(
        `${o}: ${name} must be 1 or ${c} finite numbers, got ${JSON.stringify(v)}`,
      );
    }
  };
  check('mean', mean);
  check('std', std);
  if (std.some((s) => s <= 0))
    throw new ConfigError(`${o}: std must be > 0, got ${JSON.stringify(std)}`);
  return tf.tidy(
    () => tf.div(tf.sub(x, tf.tensor1d([...mean])), tf.tensor1d([...std])) as tf.Tensor4D,
  );
}
