import * as tf from '@tensorflow/tfjs-core';
import { initializers } from '@tensorflow/tfjs-layers';
import { getGlobalRandom } from '../random';

/** The tfjs initializer type (`addWeight` only calls its `apply`). */
export type Initializer = ReturnType<typeof initializers.zeros>;

let zeroInit = false;

/**
 * Runs `fn` (synchronous) with the library's random initializers returning zeros: for building a
 * model whose weights are about to be overwritten by loaded ones (no random draws, the library
 * seed stream untouched). Internal to the loaders.
 */
export function withZeroInit<T>(fn: () => T): T {
  const previous = zeroInit;
  zeroInit = true;
  try {
    return fn();
  } finally {
    zeroInit = previous;
  }
}

/**
 * A normal initializer that draws from the library generator when it is seeded
 * (`setSeed` or a factory's `seed` option) and from tfjs' unseeded `randomNormal` otherwise.
 * Seeded draws are made in JavaScript, so they are identical on every backend.
 */
class LibraryNormal {
  /** @nocollapse */
  static readonly className = 'VitTsLibraryNormal';
  constructor(
    private readonly mean: number,
    private readonly stddev: (shape: number[]) => number,
  ) {}

  apply(shape: number[], dtype?: tf.DataType): tf.Tensor {
    if (zeroInit) return tf.zeros(shape, dtype ?? 'float32');
    const std = this.stddev(shape);
    const rng = getGlobalRandom();
    if (rng == null) return tf.randomNormal(shape, this.mean, std, 'float32');
    const size = shape.reduce((a, b) => a * b, 1);
    const t = tf.tensor(rng.fillNormal(size, this.mean, std), shape, 'float32');
    if (dtype == null || dtype === 'float32') return t;
    const cast = tf.cast(t, dtype);
    t.dispose();
    return cast;
  }

  getConfig(): Record<string, number> {
    return { mean: this.mean };
  }
}

/**
 * timm's default weight init is `trunc_normal_(std=0.02)` with cut-offs at absolute +-2, i.e. at
 * +-100 standard deviations: in practice a plain normal. tfjs' truncatedNormal cuts at +-2
 * standard deviations instead, which shrinks the spread by about 12%, so a normal is the
 * faithful choice here. Seeded by the library generator when it is set.
 */
export function timmNormal(stddev = 0.02): Initializer {
  return new LibraryNormal(0, () => stddev) as unknown as Initializer;
}

/**
 * torchvision's `kaiming_normal_(mode='fan_out', nonlinearity='relu')` for an HWIO convolution
 * kernel: a plain normal with std `sqrt(2 / (kh * kw * outChannels))`. (tfjs' varianceScaling
 * draws a truncated normal instead.) Seeded by the library generator when it is set.
 */
export function kaimingNormalFanOut(): Initializer {
  return new LibraryNormal(0, (shape) => {
    const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
    const fanOut = receptive * (shape[shape.length - 1] ?? 1);
    return Math.sqrt(2 / fanOut);
  }) as unknown as Initializer;
}

/** Zeros, used for every bias as in timm. */
export function zeros(): Initializer {
  return initializers.zeros();
}

/** Ones, used for LayerNorm scales. */
export function ones(): Initializer {
  return initializers.ones();
}
