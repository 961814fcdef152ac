import { ConfigError } from './errors';

/**
 * One seeded pseudo-random generator for the whole library (weight init, dropout masks, data
 * shuffles, augmentation), so that a run can be reproduced from a seed and resumed from a
 * checkpoint.
 *
 * The generator is mulberry32: a 32-bit state, one addition and a few multiplies per draw. Its
 * whole state is one unsigned 32-bit integer, so {@link Random.getState} is a small JSON value
 * that a training checkpoint can store. Draws are computed in JavaScript, never on a backend, so
 * the same seed gives bit-identical values on cpu, wasm, webgl and webgpu in one JS engine
 * (normal draws use `Math.log` / `Math.cos`, whose last bit the ECMAScript standard leaves to the
 * engine: Node and Chromium share V8 and agree).
 */

/** Serialisable state of a {@link Random}; store it in a checkpoint and pass it to {@link Random.fromState}. */
export interface RandomState {
  /** Generator algorithm; only `'mulberry32'` exists. */
  algorithm: 'mulberry32';
  /** The 32-bit state, an integer in `[0, 2^32)`. */
  state: number;
}

const TWO_POW_32 = 4294967296;

/** Throws a {@link ConfigError} unless `seed` is an integer in `[0, 2^32)`. */
export function requireSeed(owner: string, seed: unknown): number {
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed >= TWO_POW_32) {
    throw new ConfigError(
      `${owner}: seed must be an integer in [0, 4294967295], got ${typeof seed === 'string' ? `'${seed}'` : String(seed)}`,
    );
  }
  return seed;
}

/** A seeded generator; see the module comment. Not thread-safe across workers (each has its own). */
export class Random {
  private s: number;

  /** Seeds the generator with an integer in `[0, 2^32)`. */
  constructor(seed: number) {
    this.s = requireSeed('Random', seed) >>> 0;
  }

  /** Restores a generator saved with {@link Random.getState}. */
  static fromState(state: RandomState): Random {
    const r = new Random(0);
    r.setState(state);
    return r;
  }

  /** The current state (a copy): draws after `setState(getState())` repeat exactly. */
  getState(): RandomState {
    return { algorithm: 'mulberry32', state: this.s };
  }

  /** Continues from a state returned by {@link Random.getState}. */
  setState(state: RandomState): void {
    if (state == null || typeof state !== 'object' || state.algorithm !== 'mulberry32') {
      throw new ConfigError(
        `Random.setState: expected { algorithm: 'mulberry32', state }, got ${JSON.stringify(state)}`,
      );
    }
    this.s = requireSeed('Random.setState', state.state) >>> 0;
  }

  /** Next unsigned 32-bit integer. */
  nextUint32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Next float in `[0, 1)` (32 random bits). */
  next(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  /** Integer in `[0, n)` for a positive integer `n`. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) {
      throw new ConfigError(`Random.int: n must be a positive integer, got ${String(n)}`);
    }
    return Math.floor(this.next() * n);
  }

  /** Float in `[low, high)`. */
  uniform(low = 0, high = 1): number {
    return low + (high - low) * this.next();
  }

  /** One normal draw (Box-Muller, the cosine branch). */
  normal(mean = 0, std = 1): number {
    const u1 = 1 - this.next(); // (0, 1]: log stays finite
    const u2 = this.next();
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /**
   * `n` normal draws as float32, both Box-Muller branches used (two uniforms per pair). The
   * state afterwards depends only on `n`, so the draws that follow do not depend on the values.
   */
  fillNormal(n: number, mean = 0, std = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(1 - this.next()));
      const theta = 2 * Math.PI * this.next();
      out[i] = mean + std * r * Math.cos(theta);
      if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(theta);
    }
    return out;
  }

  /** `n` uniform draws in `[low, high)` as float32. */
  fillUniform(n: number, low = 0, high = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = low + (high - low) * this.next();
    return out;
  }

  /** Fisher-Yates shuffle of `items` in place; returns `items`. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /**
   * A new, independent generator seeded from this one (one draw, hashed), e.g. one stream for
   * data order and another for augmentation that do not shift each other.
   */
  fork(): Random {
    return new Random(hash32(this.nextUint32()));
  }

  /** An integer seed for tfjs' own seeded ops (`tf.randomUniform(..., seed)`, `tf.dropout`). */
  tfjsSeed(): number {
    return this.nextUint32();
  }
}

/** A 32-bit integer finalizer (murmur3 fmix32): spreads nearby seeds apart. */
export function hash32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A seeded generator, `new Random(seed)`. */
export function createRandom(seed: number): Random {
  return new Random(seed);
}

/**
 * A seeded `() => number` in `[0, 1)` (mulberry32): the same sequence as {@link Random.next}
 * for the same seed.
 */
export function mulberry32(seed: number): () => number {
  const r = new Random(seed >>> 0);
  return () => r.next();
}

// --- the library-wide generator -----------------------------------------------------------

let globalRandom: Random | null = null;
let globalSeed: number | null = null;

/**
 * Seeds the library: from now on weight initializers, dropout and stochastic depth draw from one
 * generator seeded with `seed`, so two models built after `setSeed(s)` have identical weights on
 * every backend. `setSeed(null)` returns to unseeded draws (tfjs' own, different every run).
 */
export function setSeed(seed: number | null): void {
  if (seed === null) {
    globalRandom = null;
    globalSeed = null;
    return;
  }
  globalRandom = new Random(requireSeed('setSeed', seed));
  globalSeed = seed;
}

/** The seed last given to {@link setSeed}, or null when the library is unseeded. */
export function getSeed(): number | null {
  return globalSeed;
}

/** The library-wide generator, or null when unseeded. Layers draw from it when it is set. */
export function getGlobalRandom(): Random | null {
  return globalRandom;
}

/** State of the library-wide generator (null when unseeded), for checkpoints. */
export function getRandomState(): RandomState | null {
  return globalRandom?.getState() ?? null;
}

/** Restores the library-wide generator from {@link getRandomState} (null = unseeded). */
export function setRandomState(state: RandomState | null): void {
  if (state === null) {
    globalRandom = null;
    globalSeed = null;
    return;
  }
  globalRandom = Random.fromState(state);
}

/**
 * Runs `fn` with the library seeded by `seed` and restores the previous generator afterwards (also
 * when `fn` throws). `seed` undefined runs `fn` unchanged. Synchronous work only: the factories'
 * `seed` option uses it around model construction.
 */
export function withSeed<T>(seed: number | undefined, fn: () => T): T {
  if (seed === undefined) return fn();
  const previous = globalRandom;
  const previousSeed = globalSeed;
  globalRandom = new Random(requireSeed('seed', seed));
  globalSeed = seed;
  try {
    return fn();
  } finally {
    globalRandom = previous;
    globalSeed = previousSeed;
  }
}
