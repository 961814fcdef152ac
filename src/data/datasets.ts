import * as tf from '@tensorflow/tfjs-core';
import { DataError } from '../errors';

/** An image classification dataset as tensors. The caller owns (and disposes) both tensors. */
export interface ImageDataset {
  /** `[N, H, W, C]` float32 images in [0, 1], NHWC. */
  images: tf.Tensor4D;
  /** `[N]` int32 class indices. */
  labels: tf.Tensor1D;
}

/** The ten Fashion-MNIST classes, by label index (from the dataset's README). */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** The ten CIFAR-10 classes, by label index (`batches.meta.txt`). */
export const CIFAR10_CLASSES: readonly string[] = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

/** Side of a CIFAR-10 image in pixels. */
export const CIFAR10_SIZE = 32;
/** Bytes of one CIFAR-10 binary record: 1 label byte + 3 x 32 x 32 channel-major pixel bytes. */
export const CIFAR10_RECORD_BYTES = 1 + 3 * CIFAR10_SIZE * CIFAR10_SIZE;

/** Images and labels decoded from a data file, as plain arrays (no tensors). */
export interface DecodedImages {
  /** NHWC float32 values in [0, 1], `count * height * width * channels` of them. */
  images: Float32Array;
  /** Class index per image. */
  labels: Int32Array;
  count: number;
  height: number;
  width: number;
  channels: number;
}

/**
 * Decodes a CIFAR-10 binary batch (`data_batch_1.bin` ... `data_batch_5.bin`, `test_batch.bin`
 * of "CIFAR-10 binary version"): records of one label byte (0-9) followed by 3,072 bytes, the
 * 1,024 red, then green, then blue values of a 32 x 32 image in row-major order. The images
 * come out NHWC in [0, 1].
 *
 * @param bytes the whole file.
 * @param source a name for error messages, e.g. the file path.
 * @throws {@link DataError} when the size is not a whole number of records or a label is > 9.
 */
export function parseCifar10Batch(bytes: Uint8Array, source = 'CIFAR-10 batch'): DecodedImages {
  if (!(bytes instanceof Uint8Array)) {
    throw new DataError(`parseCifar10Batch: bytes must be a Uint8Array, got ${typeof bytes}`);
  }
  const count = Math.floor(bytes.byteLength / CIFAR10_RECORD_BYTES);
  if (count === 0 || bytes.byteLength % CIFAR10_RECORD_BYTES !== 0) {
    const next = Math.max(1, count + 1) * CIFAR10_RECORD_BYTES;
    throw new DataError(
      `${source}: a CIFAR-10 binary batch is a whole number of ${CIFAR10_RECORD_BYTES}-byte records: expected ${count > 0 ? `${count * CIFAR10_RECORD_BYTES} or ` : ''}${next} bytes, got ${bytes.byteLength}`,
    );
  }
  const plane = CIFAR10_SIZE * CIFAR10_SIZE;
  const images = new Float32Array(count * plane * 3);
  const labels = new Int32Array(count);
  for (let r = 0; r < count; r++) {
    const base = r * CIFAR10_RECORD_BYTES;
    const label = bytes[base];
    if (label > 9) {
      throw new DataError(
        `${source}: record ${r} (byte ${base}) has label ${label}; expected 0-9 (is this the binary version of CIFAR-10, not CIFAR-100?)`,
      );
    }
    labels[r] = label;
    const out = r * plane * 3;
    for (let p = 0; p < plane; p++) {
      images[out + 3 * p] = bytes[base + 1 + p] / 255;
      images[out + 3 * p + 1] = bytes[base + 1 + plane + p] / 255;
      images[out + 3 * p + 2] = bytes[base + 1 + 2 * plane + p] / 255;
    }
  }
  return { images, labels, count, height: CIFAR10_SIZE, width: CIFAR10_SIZE, channels: 3 };
}

/** Concatenates decoded parts (e.g. the five CIFAR-10 training batches) into one. */
export function concatDecoded(parts: readonly DecodedImages[]): DecodedImages {
  if (parts.length === 0) throw new DataError('concatDecoded: expected at least one part, got 0');
  const [h, w, c] = [parts[0].height, parts[0].width, parts[0].channels];
  for (const p of parts) {
    if (p.height !== h || p.width !== w || p.channels !== c) {
      throw new DataError(
        `concatDecoded: every part must hold ${h}x${w}x${c} images, got ${p.height}x${p.width}x${p.channels}`,
      );
    }
  }
  const count = parts.reduce((s, p) => s + p.count, 0);
  const images = new Float32Array(count * h * w * c);
  const labels = new Int32Array(count);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * h * w * c);
    labels.set(p.labels, at);
    at += p.count;
  }
  return { images, labels, count, height: h, width: w, channels: c };
}

/** Turns decoded arrays into an {@link ImageDataset} (two new tensors, owned by the caller). */
export function toImageDataset(decoded: DecodedImages): ImageDataset {
  const { count, height, width, channels } = decoded;
  return {
    images: tf.tensor4d(decoded.images, [count, height, width, channels], 'float32'),
    labels: tf.tensor1d(decoded.labels, 'int32'),
  };
}
