/**
 * The library's seeded generator: the published mulberry32 sequence, state save/restore,
 * distribution sanity, and seeded model construction giving bit-identical weights on cpu and
 * wasm (and reproducible training on each).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createResNet18, createViT, type ViTConfig } from '../../src/index';
import { dropout } from '../../src/layers/ops';
import {
  createRandom,
  getRandomState,
  getSeed,
  mulberry32,
  Random,
  setRandomState,
  setSeed,
  withSeed,
} from '../../src/random';
import { onBackend, useBackend } from '../helpers/backends';

/** Reference mulberry32 (Tommy Ettinger's published constants), written out independently. */
function referenceMulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TINY: ViTConfig = {
  imgSize: 8,
  patchSize: 4,
  inChans: 1,
  embedDim: 8,
  depth: 2,
  numHeads: 2,
  numClasses: 3,
};

function weightValues(model: LayersModel): Float32Array[] {
  return model.weights.map((w) => w.read().dataSync() as Float32Array);
}

beforeAll(() => useBackend('cpu'));
afterEach(() => setSeed(null));

describe('Random', () => {
  it('follows the mulberry32 sequence', () => {
    for (const seed of [0, 1, 1234, 0xffffffff]) {
      const ref = referenceMulberry32(seed);
      const ours = mulberry32(seed);
      const r = new Random(seed);
      for (let i = 0; i < 1000; i++) {
        const expected = ref();
        expect(ours()).toBe(expected);
        expect(r.next()).toBe(expected);
      }
    }
  });

  it('resumes exactly from a saved state, through JSON', () => {
    const r = createRandom(42);
    for (let i = 0; i < 17; i++) r.next();
    const saved = JSON.parse(JSON.stringify(r.getState()));
    const a = Array.from({ length: 50 }, () => r.nextUint32());
    const resumed = Random.fromState(saved);
    const b = Array.from({ length: 50 }, () => resumed.nextUint32());
    expect(b).toEqual(a);
    expect(new Set(a).size).toBeGreaterThan(45);
  });

  it('draws normals with the asked mean and spread, and uniforms in range', () => {
    const r = new Random(7);
    const n = 200_000;
    const v = r.fillNormal(n, 0.5, 2);
    let sum = 0;
    let sq = 0;
    for (const x of v) sum += x;
    const mean = sum / n;
    for (const x of v) sq += (x - mean) ** 2;
    const std = Math.sqrt(sq / n);
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.02);
    expect(Math.abs(std - 2)).toBeLessThan(0.02);
    const u = r.fillUniform(10_000, -1, 3);
    expect(Math.min(...u)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...u)).toBeLessThan(3);
    const counts = new Array(5).fill(0);
    for (let i = 0; i < 50_000; i++) counts[r.int(5)]++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
  });

  it('shuffles into a permutation and forks independent streams', () => {
    const items = Array.from({ length: 100 }, (_, i) => i);
    const shuffled = new Random(3).shuffle([...items]);
    expect([...shuffled].sort((a, b) => a - b)).toEqual(items);
    expect(shuffled).not.toEqual(items);
    expect(new Random(3).shuffle([...items])).toEqual(shuffled);
    const parent = new Random(9);
    const a = parent.fork();
    const b = parent.fork();
    expect(a.nextUint32()).not.toBe(b.nextUint32());
  });

  it('refuses bad seeds and states with a ConfigError naming the seed', () => {
    for (const bad of [-1, 1.5, 2 ** 32, Number.NaN, '1' as unknown as number]) {
      expect(() => new Random(bad)).toThrow(/seed must be an integer in \[0, 4294967295\]/);
      expect(() => setSeed(bad)).toThrow(/setSeed: seed must be/);
    }
    expect(() => Random.fromState({ algorithm: 'xorshift' as 'mulberry32', state: 1 })).toThrow(
      /algorithm: 'mulberry32'/,
    );
  });

  it('setSeed / getRandomState / setRandomState / withSeed manage the library generator', () => {
    expect(getSeed()).toBeNull();
    expect(getRandomState()).toBeNull();
    setSeed(11);
    expect(getSeed()).toBe(11);
    const state = getRandomState();
    expect(state).toEqual({ algorithm: 'mulberry32', state: 11 });
    const inner = withSeed(99, () => getSeed());
    expect(inner).toBe(99);
    expect(getSeed()).toBe(11);
    expect(() =>
      withSeed(5, () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(getSeed()).toBe(11);
    setRandomState(null);
    expect(getRandomState()).toBeNull();
  });
});

describe('seeded models', () => {
  it('the same seed gives bit-identical initial weights on cpu and wasm; another seed differs', async () => {
    const build = (seed: number) => {
      const before = tf.memory().numTensors;
      const m = createViT(TINY, {}, { seed });
      const values = weightValues(m);
      m.dispose();
      expect(tf.memory().numTensors).toBe(before);
      return values;
    };
    const cpu = await onBackend('cpu', () => build(7));
    const wasm = await onBackend('wasm', () => build(7));
    const other = await onBackend('cpu', () => build(8));
    expect(cpu.length).toBe(wasm.length);
    expect(wasm).toEqual(cpu);
    // Random weights (not the zero/one ones) differ under another seed.
    const kernelIndex = 0; // patch_embed/proj/kernel
    expect(other[kernelIndex]).not.toEqual(cpu[kernelIndex]);
    // timm's std 0.02 on the qkv kernel (8 x 24 values)
    const ref = await onBackend('cpu', () => {
      const m = createViT(TINY, {}, { seed: 7 });
      const i = m.weights.findIndex((w) => w.originalName.endsWith('blocks/0/attn/qkv/kernel'));
      const v = m.weights[i].read().dataSync();
      m.dispose();
      return Array.from(v);
    });
    const std = Math.sqrt(ref.reduce((a, x) => a + x * x, 0) / ref.length);
    expect(std).toBeGreaterThan(0.015);
    expect(std).toBeLessThan(0.025);
  });

  it('setSeed makes unseeded factory calls reproducible; without it two builds differ', async () => {
    await onBackend('cpu', () => {
      const a = createViT(TINY);
      const b = createViT(TINY);
      expect(weightValues(a)[0]).not.toEqual(weightValues(b)[0]);
      setSeed(123);
      const c = createViT(TINY);
      setSeed(123);
      const d = createViT(TINY);
      expect(weightValues(d)).toEqual(weightValues(c));
      for (const m of [a, b, c, d]) m.dispose();
    });
  });

  it('createResNet18 seeds its Kaiming-normal convolutions identically on cpu and wasm', async () => {
    const build = () => {
      const m = createResNet18({ stem: 'cifar', numClasses: 10, seed: 5 });
      const conv = m.weights.find((w) => w.originalName.endsWith('layer1/0/conv1/kernel'));
      const v = Array.from(conv?.read().dataSync() ?? []);
      m.dispose();
      return v;
    };
    const cpu = await onBackend('cpu', build);
    const wasm = await onBackend('wasm', build);
    expect(wasm).toEqual(cpu);
    // torchvision kaiming_normal_(fan_out): std sqrt(2 / (3 * 3 * 64))
    const std = Math.sqrt(cpu.reduce((a, x) => a + x * x, 0) / cpu.length);
    expect(Math.abs(std / Math.sqrt(2 / (9 * 64)) - 1)).toBeLessThan(0.02);
    expect(() => createResNet18({ seed: -3 })).toThrow(/createResNet18: seed must be/);
    expect(() => createViT(TINY, {}, { seed: 1, sed: 2 } as never)).toThrow(
      /createViT: unknown option 'sed'; known options: seed/,
    );
  });

  it('seeded training (no dropout) repeats exactly per backend and agrees across cpu and wasm', async () => {
    const train = () => {
      const m = createViT(TINY, {}, { seed: 21 });
      const x = tf.tensor4d(new Random(1).fillUniform(4 * 8 * 8), [4, 8, 8, 1]);
      const y = tf.oneHot(tf.tensor1d([0, 1, 2, 1], 'int32'), 3);
      const opt = tf.train.sgd(0.5);
      for (let step = 0; step < 3; step++) {
        opt.minimize(() => tf.losses.softmaxCrossEntropy(y, m.apply(x) as tf.Tensor) as tf.Scalar);
      }
      const out = weightValues(m).map((w) => Array.from(w));
      m.dispose();
      opt.dispose();
      tf.dispose([x, y]);
      return out;
    };
    const cpu1 = await onBackend('cpu', train);
    const cpu2 = await onBackend('cpu', train);
    const wasm = await onBackend('wasm', train);
    expect(cpu2).toEqual(cpu1);
    let maxDiff = 0;
    let moved = 0;
    const init = await onBackend('cpu', () => {
      const m = createViT(TINY, {}, { seed: 21 });
      const v = weightValues(m).map((w) => Array.from(w));
      m.dispose();
      return v;
    });
    cpu1.forEach((w, i) => {
      w.forEach((v, j) => {
        maxDiff = Math.max(maxDiff, Math.abs(v - wasm[i][j]));
        moved = Math.max(moved, Math.abs(v - init[i][j]));
      });
    });
    expect(moved).toBeGreaterThan(1e-3); // training changed the weights
    expect(maxDiff).toBeLessThan(1e-5);
  });

  it('seeded dropout masks repeat after reseeding and are identical on cpu and wasm', async () => {
    const mask = () => {
      setSeed(77);
      const x = tf.ones([64]);
      const y = dropout(x, 0.5, true);
      const v = Array.from(y.dataSync());
      tf.dispose([x, y]);
      return v;
    };
    const a = await onBackend('cpu', mask);
    const b = await onBackend('cpu', mask);
    const c = await onBackend('wasm', mask);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    expect(a.filter((v) => v === 0).length).toBeGreaterThan(10);
  });
});
