import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, formatShape, InputShapeError } from '../errors';
import { type Size2D, toPair } from '../geometry';
import { getViTPreset, IMAGENET_NORMALIZATION, type Normalization } from '../models/presets';

/** Options of {@link preprocess}. */
export interface PreprocessOptions {
  /** Output (crop) size, square or `[height, width]`. Default 224. */
  size?: Size2D;
  /**
   * Fraction of the resized image kept by the center crop, timm's `crop_pct`. Default 0.875:
   * a square `size` s resizes the shorter side to `floor(s / 0.875)` (256 for 224), then crops.
   */
  cropPct?: number;
  /** Resize the shorter side to exactly this many pixels instead (overrides `cropPct`). */
  resizeShorter?: number;
  /**
   * Per-channel mean/std applied after scaling to [0, 1]: an object, a preset name from
   * `VIT_PRESETS` (its `normalization`), or `null` for none (models trained on plain [0, 1]
   * inputs, like the MNIST example). Default `IMAGENET_NORMALIZATION`.
   */
  normalization?: Normalization | string | null;
  /** Output channels: 3 (RGB, default; grey input is repeated) or 1 (RGB is averaged). */
  channels?: 1 | 3;
}

/** Python's `round` (half to even), as torchvision's CenterCrop uses for the offsets. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Size after resizing, following timm's eval transform (see {@link PreprocessOptions}). */
function resizedSize(
  owner: string,
  h: number,
  w: number,
  crop: [number, number],
  o: PreprocessOptions,
): [number, number] {
  // The shorter side goes to `short`, the longer one to int(short * long / short), as torchvision's Resize(int).
  const byShorter = (short: number): [number, number] =>
    h <= w ? [short, Math.floor((short * w) / h)] : [Math.floor((short * h) / w), short];
  if (o.resizeShorter !== undefined) {
    if (!Number.isInteger(o.resizeShorter) || o.resizeShorter <= 0) {
      throw new ConfigError(
        `${owner}: resizeShorter must be a positive integer, got ${String(o.resizeShorter)}`,
      );
    }
    return byShorter(o.resizeShorter);
  }
  const pct = o.cropPct ?? 0.875;
  if (typeof pct !== 'number' || !(pct > 0 && pct <= 1)) {
    throw new ConfigError(`${owner}: cropPct must be a number in (0, 1], got ${String(pct)}`);
  }
  const scaled: [number, number] = [Math.floor(crop[0] / pct), Math.floor(crop[1] / pct)];
  // timm: one number -> shorter side; a non-square size -> resize to exactly that size.
  return scaled[0] === scaled[1] ? byShorter(scaled[0]) : scaled;
}

function resolveNormalization(
  owner: string,
  n: PreprocessOptions['normalization'],
): Normalization | null {
  if (n === null) return null;
  if (n === undefined) return IMAGENET_NORMALIZATION;
  if (typeof n === 'string') return getViTPreset(n).normalization;
  const ok = (a: unknown) =>
    Array.isArray(a) && a.length === 3 && a.every((v) => Number.isFinite(v));
  if (!ok(n.mean) || !ok(n.std) || n.std.some((v) => v <= 0)) {
    throw new ConfigError(
      `${owner}: normalization must be { mean: [r, g, b], std: [r, g, b] } with std > 0, got ${JSON.stringify(n)}`,
    );
  }
  return n;
}

/**
 * Prepares images as timm's evaluation transform does for pretrained ViTs: resize (bilinear,
 * half-pixel centres; tfjs has no bicubic and no antialiasing, so downsizing is a little sharper
 * than PIL's), center crop to `size`, scale 0..255 to 0..1, normalise with mean/std.
 *
 * @param image `[H, W, C]` or `[B, H, W, C]` with values 0..255 (`decodeImageFile`,
 * `tf.browser.fromPixels`), C = 1, 3 or 4 (alpha dropped).
 * @returns `[B, h, w, channels]` float32, ready for the model.
 * @example
 * const x = preprocess(img, { size: 224, normalization: 'vit_base_patch16_224' }); // [1, 224, 224, 3]
 */
export function preprocess(image: tf.Tensor, options: PreprocessOptions = {}): tf.Tensor4D {
  const owner = 'preprocess';
  const s = image instanceof tf.Tensor ? image.shape : null;
  const c = s?.[s.length - 1];
  if (s == null || (s.length !== 3 && s.length !== 4) || ![1, 3, 4].includes(c as number)) {
    throw new InputShapeError(
      `${owner}: image must have shape [H, W, C] or [B, H, W, C] with C in {1, 3, 4} and values 0..255, got ${s ? formatShape(s) : String(image)}`,
    );
  }
  const channels = options.channels ?? 3;
  if (channels !== 1 && channels !== 3)
    throw new ConfigError(`${owner}: channels must be 1 or 3, got ${String(channels)}`);
  const crop = toPair(owner, 'size', options.size ?? 224);
  const [h, w] = s.length === 3 ? [s[0], s[1]] : [s[1], s[2]];
  const [rh, rw] = resizedSize(owner, h, w, crop, options);
  if (rh < crop[0] || rw < crop[1]) {
    throw new ConfigError(
      `${owner}: the image resized to [${rh}, ${rw}] is smaller than the crop [${crop.join(', ')}]; increase resizeShorter`,
    );
  }
  const norm = resolveNormalization(owner, options.normalization);
  return tf.tidy(() => {
    let x = tf.cast(s.length === 3 ? tf.expandDims(image, 0) : image, 'float32') as tf.Tensor4D;
    if (c === 4) x = tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, 3]);
    if (channels === 3 && c === 1) x = tf.tile(x, [1, 1, 1, 3]);
    if (channels === 1 && c !== 1) x = tf.mean(x, 3, true);
    if (rh !== h || rw !== w) x = tf.image.resizeBilinear(x, [rh, rw], false, true);
    // torchvision's CenterCrop offsets: int(round((size - crop) / 2)) with Python's rounding.
    const top = roundHalfEven((rh - crop[0]) / 2);
    const left = roundHalfEven((rw - crop[1]) / 2);
    x = tf.slice(x, [0, top, left, 0], [-1, crop[0], crop[1], -1]);
    let y: tf.Tensor = tf.div(x, 255);
    if (norm) {
      const mean = channels === 3 ? norm.mean : [norm.mean.reduce((a, b) => a + b) / 3];
      const std = channels === 3 ? norm.std : [norm.std.reduce((a, b) => a + b) / 3];
      y = tf.div(tf.sub(y, tf.tensor1d(mean)), tf.tensor1d(std));
    }
    return y as tf.Tensor4D;
  });
}

/** Anything `tf.browser.fromPixels` reads: `<img>`, `<canvas>`, `<video>`, ImageData, ImageBitmap or `{data, width, height}`. */
export type PixelSource = Parameters<typeof tf.browser.fromPixels>[0];

/**
 * {@link preprocess} for a browser image source (`<img>`, `<canvas>`, ImageData, ...): reads RGB
 * pixels with `tf.browser.fromPixels`, then preprocesses. Returns `[1, h, w, channels]`.
 */
export function preprocessPixels(
  pixels: PixelSource,
  options: PreprocessOptions = {},
): tf.Tensor4D {
  return tf.tidy(() => preprocess(tf.browser.fromPixels(pixels, 3), options));
}
