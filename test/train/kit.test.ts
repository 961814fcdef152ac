import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel, LayerVariable } from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  clipByGlobalNorm,
  createParamGroups,
  createViT,
  freeze,
  GroupedAdamW,
  globalNorm,
  layerIdOf,
  ModelEma,
  mixBatch,
  normalizeImages,
  Random,
  randomCrop,
  randomHorizontalFlip,
  resetClassifier,
  resizeImages,
  sampleBeta,
  smoothOneHot,
  unfreeze,
  warmupCosineSchedule,
} from '../../src/index';
import { describeBackends } from '../helpers/backends';
import torchRef from './fixtures/adamw_torch.json';

type Named = Record<string, { shape: number[]; values: number[] }>;

/** A deterministic uniform source for the augmentation tests (a fixed list, cycled). */
function listRandom(values: number[]): { next(): number } {
  let i = 0;
  return { next: () => values[i++ % values.length] };
}

/** Weight name without the model prefix and tfjs' `_<n>` uniqueness suffix. */
const short = (name: string) => name.split('/').slice(1).join('/').replace(/_\d+$/, '');

const tinyViT = (numClasses = 3): LayersModel =>
  createViT({
    imgSize: 8,
    patchSize: 4,
    inChans: 1,
    embedDim: 8,
    depth: 3,
    numHeads: 2,
    numClasses,
  });

describe('warmupCosineSchedule', () => {
  it('warms up linearly, peaks at the last warm-up step and follows the cosine to minLr', () => {
    const lr = warmupCosineSchedule({
      peakLr: 1e-3,
      warmupSteps: 10,
      totalSteps: 110,
      minLr: 1e-5,
    });
    expect(lr(0)).toBeCloseTo(1e-4, 12);
    expect(lr(4)).toBeCloseTo(5e-4, 12);
    expect(lr(9)).toBeCloseTo(1e-3, 12);
    expect(lr(10)).toBeCloseTo(1e-3, 12);
    expect(lr(60)).toBeCloseTo(1e-5 + (1e-3 - 1e-5) / 2, 12);
    expect(lr(35)).toBeCloseTo(1e-5 + ((1e-3 - 1e-5) * (1 + Math.cos(Math.PI / 4))) / 2, 12);
    expect(lr(110)).toBeCloseTo(1e-5, 12);
    expect(lr(500)).toBeCloseTo(1e-5, 12);
    const init = warmupCosineSchedule({
      peakLr: 1,
      warmupSteps: 4,
      totalSteps: 8,
      warmupInitLr: 0.2,
    });
    expect(init(0)).toBeCloseTo(0.4, 12);
  });

  it('rejects bad settings naming the field', () => {
    expect(() => warmupCosineSchedule({ peakLr: 1, totalSteps: 5, warmupSteps: 6 })).toThrow(
      /warmupSteps \(6\) must be <= totalSteps \(5\)/,
    );
    expect(() => warmupCosineSchedule({ peakLr: -1, totalSteps: 5 })).toThrow(/peakLr/);
    expect(() => warmupCosineSchedule({ peakLr: 1, totalSteps: 5, minLr: 2 })).toThrow(/minLr/);
    expect(() => warmupCosineSchedule({ peakLr: 1, totalSteps: 5 })(-1)).toThrow(ConfigError);
  });
});

describe('parameter groups', () => {
  it('layerIdOf numbers ViT and ResNet weights by depth', () => {
    expect(layerIdOf('vit/patch_embed/proj/kernel', 12)).toBe(0);
    expect(layerIdOf('vit/embed/pos_embed', 12)).toBe(0);
    expect(layerIdOf('vit/blocks/0/attn/qkv/kernel', 12)).toBe(1);
    expect(layerIdOf('vit/blocks/11/mlp/fc2/bias', 12)).toBe(12);
    expect(layerIdOf('vit/norm/gamma', 12)).toBe(13);
    expect(layerIdOf('vit/head/kernel', 12)).toBe(13);
    expect(layerIdOf('resnet18/conv1/kernel', 8)).toBe(0);
    expect(layerIdOf('resnet18/layer1/0/conv1/kernel', 8)).toBe(1);
    expect(layerIdOf('resnet18/layer4/1/bn2/gamma', 8)).toBe(8);
    expect(layerIdOf('resnet18/fc/kernel', 8)).toBe(9);
  });
});

describeBackends('training kit', () => {
  it('createParamGroups: timm decay split, layer-wise decay scales and the lecture setting', () => {
    const model = tinyViT();
    const groups = createParamGroups(model, { weightDecay: 0.05 });
    expect(groups.length).toBe(2);
    const decayed = groups.find((g) => g.weightDecay === 0.05)!;
    // Kernels only: patch proj, 4 per block (qkv, proj, fc1, fc2) x 3 blocks, head.
    expect(decayed.weights.map((w) => short(w.name)).sort()).toEqual(
      [
        'patch_embed/proj/kernel',
        'head/kernel',
        ...[0, 1, 2].flatMap((i) =>
          ['attn/qkv', 'attn/proj', 'mlp/fc1', 'mlp/fc2'].map((n) => `blocks/${i}/${n}/kernel`),
        ),
      ].sort(),
    );
    const total = groups.reduce((s, g) => s + g.weights.length, 0);
    expect(total).toBe(model.weights.length);

    const layered = createParamGroups(model, { layerDecay: 0.5 });
    const scaleOf = (name: string) =>
      layered.find((g) => g.weights.some((w) => short(w.name) === name))!.lrScale;
    expect(scaleOf('head/kernel')).toBe(1);
    expect(scaleOf('norm/gamma')).toBe(1);
    expect(scaleOf('blocks/2/attn/qkv/kernel')).toBe(0.5);
    expect(scaleOf('blocks/0/attn/qkv/kernel')).toBe(0.125);
    expect(scaleOf('patch_embed/proj/kernel')).toBe(0.0625);
    expect(scaleOf('embed/cls_token')).toBe(0.0625);

    // Lecture: 1e-5 for everything but the head at 1e-3 = base 1e-3, scale 0.01 except the head.
    const lecture = createParamGroups(model, {
      rules: [
        { match: /./, lrScale: 0.01 },
        { match: '/head/', lrScale: 1 },
      ],
    });
    const headGroups = lecture.filter((g) => g.weights.some((w) => w.name.includes('/head/')));
    expect(
      headGroups.every((g) => g.lrScale === 1 && g.weights.every((w) => w.name.includes('/head/'))),
    ).toBe(true);
    expect(
      lecture.filter((g) => g.lrScale === 0.01).reduce((s, g) => s + g.weights.length, 0),
    ).toBe(model.weights.length - 2);
    expect(() => createParamGroups(model, { layerDecay: 2 })).toThrow(
      /layerDecay must be in \(0, 1\]/,
    );
    model.dispose();
  });

  it(`GroupedAdamW equals torch.optim.AdamW ${torchRef.torch} over two steps; lrScale scales the step`, async () => {
    const make = (tag: string) => {
      const out: Record<string, tf.Variable> = {};
      for (const [name, { shape, values }] of Object.entries(torchRef.initial as Named)) {
        out[name] = tf.variable(tf.tensor(values, shape), true, `${tag}/${name}`);
      }
      return out;
    };
    const asLayerVar = (v: tf.Variable) =>
      ({ name: v.name, originalName: v.name, shape: v.shape }) as unknown as LayerVariable;
    for (const [tag, scale] of [
      ['ga', 1],
      ['gb', 0.5],
    ] as const) {
      const vars = make(`${tag}${Math.random()}`);
      const kernel = vars['blocks/0/fc1/kernel'];
      const rest = [vars['blocks/0/fc1/bias'], vars['embed/cls_token']];
      const opt = new GroupedAdamW(
        [
          {
            name: 'decay',
            weights: [asLayerVar(kernel)],
            lrScale: scale,
            weightDecay: torchRef.weightDecay,
          },
          { name: 'no decay', weights: rest.map(asLayerVar), lrScale: scale, weightDecay: 0 },
        ],
        { beta1: torchRef.beta1, beta2: torchRef.beta2, epsilon: torchRef.epsilon },
      );
      for (const [step, g] of torchRef.grads.entries()) {
        const grads: Record<string, tf.Tensor> = {};
        for (const [name, v] of Object.entries(vars)) {
          const gg = (g as Named)[name];
          grads[v.name] = tf.tensor(gg.values, gg.shape);
        }
        opt.applyGradients(grads, torchRef.lr / scale);
        tf.dispose(Object.values(grads));
        for (const [name, v] of Object.entries(vars)) {
          const expected = (torchRef.after[step] as Record<string, number[]>)[name];
          const got = await v.data();
          for (let i = 0; i < got.length; i++)
            expect(Math.abs(got[i] - expected[i])).toBeLessThan(2e-6);
        }
      }
      expect(opt.stepOf(kernel.name)).toBe(2);
      // State round trip through plain arrays.
      const weights = [kernel, ...rest].map(asLayerVar);
      const state = await opt.getState(weights);
      expect(state.slots.map((sl) => sl.name)).toEqual(weights.map((w) => w.originalName));
      expect(state.slots[0].step).toBe(2);
      const before = tf.memory().numTensors;
      opt.setState(weights, state);
      expect(tf.memory().numTensors).toBe(before);
      const again = await opt.getState(weights);
      expect(Array.from(again.slots[0].v)).toEqual(Array.from(state.slots[0].v));
      opt.dispose();
      tf.dispose(Object.values(vars));
    }
  });

  it('clipByGlobalNorm scales all gradients by maxNorm / norm when the norm is larger', async () => {
    const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor2d([[0, 4]]) };
    const before = tf.memory().numTensors;
    const { grads: out, norm } = await clipByGlobalNorm(grads, 1);
    expect(norm).toBeCloseTo(5, 5);
    expect(Array.from(await out['a'].data())[0]).toBeCloseTo(0.6, 5);
    expect(Array.from(await out['b'].data())[1]).toBeCloseTo(0.8, 5);
    const loose = await clipByGlobalNorm(grads, 10);
    expect(loose.norm).toBeCloseTo(5, 5);
    expect(Array.from(await loose.grads['b'].data())).toEqual([0, 4]);
    expect(await globalNorm([grads.a, grads.b])).toBeCloseTo(5, 5);
    expect(await globalNorm([])).toBe(0);
    // Many gradients (a model has hundreds): tfjs 4.22's webgpu AddN summed only the first 5.
    const many = Array.from({ length: 9 }, (_, i) => tf.tensor1d([i + 1]));
    expect(await globalNorm(many)).toBeCloseTo(Math.sqrt(285), 4);
    const manyClipped = await clipByGlobalNorm(
      Object.fromEntries(many.map((t, i) => [`g${i}`, t])),
      1,
    );
    expect(manyClipped.norm).toBeCloseTo(Math.sqrt(285), 4);
    expect((await manyClipped.grads['g8'].data())[0]).toBeCloseTo(9 / Math.sqrt(285), 5);
    tf.dispose([...many, ...Object.values(manyClipped.grads)]);
    tf.dispose([...Object.values(out), ...Object.values(loose.grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(Object.values(grads));
  });

  it('ModelEma averages every weight and withAveraged restores the trained ones', async () => {
    const model = tinyViT();
    const w = model.weights.find((v) => v.name.includes('head/bias'))!;
    w.write(tf.tensor1d([1, 2, 3]));
    const ema = new ModelEma(model, { decay: 0.9 });
    w.write(tf.tensor1d([11, 12, 13]));
    ema.update();
    const idx = model.weights.indexOf(w);
    expect(Array.from(await ema.averaged[idx].data()).map((v) => +v.toFixed(4))).toEqual([2, 3, 4]);
    const seen = await ema.withAveraged(async () => Array.from(await w.read().data()));
    expect(seen.map((v) => +v.toFixed(4))).toEqual([2, 3, 4]);
    expect(Array.from(await w.read().data())).toEqual([11, 12, 13]);
    ema.dispose();
    model.dispose();
  });

  it('ModelEma with warmup uses min(decay, 1 - n^(-2/3)) at update n: a copy first', async () => {
    const model = tinyViT();
    const w = model.weights.find((v) => v.name.includes('head/bias'))!;
    const idx = model.weights.indexOf(w);
    w.write(tf.tensor1d([0, 0, 0]));
    const ema = new ModelEma(model, { decay: 0.9, warmup: true });
    expect(ema.decayAt(1)).toBe(0); // the first update copies the weights
    expect(ema.decayAt(8)).toBeCloseTo(0.75, 12); // 1 - 8^(-2/3) = 1 - 1/4
    expect(ema.decayAt(27)).toBeCloseTo(8 / 9, 12); // 1 - 27^(-2/3) = 1 - 1/9, still under 0.9
    expect(ema.decayAt(1000)).toBe(0.9); // 1 - 1000^(-2/3) = 0.99, capped at decay
    // Three updates towards 10, 20, 40: a copy, then decays 1 - 2^(-2/3) and 1 - 3^(-2/3).
    let expected = 0;
    for (const [n, target] of [
      [1, 10],
      [2, 20],
      [3, 40],
    ] as const) {
      w.write(tf.fill([3], target));
      ema.update();
      const d = Math.min(0.9, 1 - n ** (-2 / 3));
      expected = d * expected + (1 - d) * target;
      expect((await ema.averaged[idx].data())[0]).toBeCloseTo(expected, 4);
    }
    expect(ema.updates).toBe(3);
    // Without warmup the decay is constant; bad options name themselves.
    const constant = new ModelEma(model, { decay: 0.9 });
    expect(constant.decayAt(1)).toBe(0.9);
    constant.dispose();
    expect(() => new ModelEma(model, { decay: 0.9, warmup: 'yes' as never })).toThrow(
      /ModelEma: warmup must be true or false, got "yes"/,
    );
    expect(() => new ModelEma(model, { decay: 0.9, warmUp: true } as never)).toThrow(
      /ModelEma: unknown option 'warmUp'; known options: decay, warmup/,
    );
    ema.dispose();
    model.dispose();
  });

  it('freeze / unfreeze by part go through the sublayers and change trainableWeights', () => {
    const model = tinyViT();
    const all = model.trainableWeights.length;
    expect(all).toBe(2 + 2 + 3 * 12 + 2 + 2);
    freeze(model, ['patchEmbed', 'embed', 'blocks']);
    expect(model.trainableWeights.map((w) => short(w.name))).toEqual([
      'norm/gamma',
      'norm/beta',
      'head/kernel',
      'head/bias',
    ]);
    unfreeze(model, { blocks: [-1] });
    expect(model.trainableWeights.length).toBe(4 + 12);
    expect(model.trainableWeights.every((w) => !w.name.includes('blocks/0/'))).toBe(true);
    unfreeze(model);
    expect(model.trainableWeights.length).toBe(all);
    freeze(model, 'head');
    expect(model.trainableWeights.length).toBe(all - 2);
    expect(() => freeze(model, { blocks: [3] })).toThrow(
      /block index must be an integer in \[-3, 2\], got 3/,
    );
    expect(() => freeze(model, 'neck' as never)).toThrow(/part must be one of 'patchEmbed'/);
    model.dispose();
  });

  it('resetClassifier keeps every other weight, makes a new head and keeps frozen parts frozen', async () => {
    const model = tinyViT(3);
    freeze(model, 'blocks');
    const fresh = resetClassifier(model, 5);
    expect(fresh.outputs[0].shape).toEqual([null, 5]);
    const byName = (m: LayersModel) => new Map(m.weights.map((w) => [short(w.originalName), w]));
    const a = byName(model);
    const b = byName(fresh);
    expect(b.get('head/kernel')!.shape).toEqual([8, 5]);
    for (const [name, w] of a) {
      if (name.startsWith('head/')) continue;
      expect(Array.from(await b.get(name)!.read().data())).toEqual(
        Array.from(await w.read().data()),
      );
    }
    expect(fresh.trainableWeights.map((w) => w.name.split('/').slice(1, 2)[0])).not.toContain(
      'blocks',
    );
    const x = tf.ones([2, 8, 8, 1]);
    const y = fresh.predict(x) as tf.Tensor;
    expect(y.shape).toEqual([2, 5]);
    tf.dispose([x, y]);
    model.dispose();
    fresh.dispose();
  });

  it('randomCrop with padding shifts each image by its drawn offset; flip, resize, normalise', async () => {
    const img = tf.tensor4d(
      Array.from({ length: 2 * 16 }, (_, i) => i + 1),
      [2, 4, 4, 1],
    );
    const before = tf.memory().numTensors;
    // Offsets (padding 1, 6 positions... 3 per axis): image 0 dy=0 dx=2, image 1 dy=1 dx=1 (no shift).
    const crop = randomCrop(img, { padding: 1, random: listRandom([0.1, 0.9, 0.5, 0.5]) });
    const c = await crop.array();
    // Image 0 moved down by 1 (top row zero) and left by 1.
    expect(c[0].map((r) => r.map((p) => p[0]))).toEqual([
      [0, 0, 0, 0],
      [2, 3, 4, 0],
      [6, 7, 8, 0],
      [10, 11, 12, 0],
    ]);
    const [c1, i1] = [tf.slice(crop, [1], [1]), tf.slice(img, [1], [1])];
    expect(Array.from(await c1.data())).toEqual(Array.from(await i1.data()));
    tf.dispose([c1, i1]);
    const flip = randomHorizontalFlip(img, { random: listRandom([0.2, 0.7]) });
    const f = await flip.array();
    expect(f[0][0].map((p) => p[0])).toEqual([4, 3, 2, 1]);
    expect(f[1][0].map((p) => p[0])).toEqual([17, 18, 19, 20]);
    const up = resizeImages(img, 8);
    expect(up.shape).toEqual([2, 8, 8, 1]);
    // Half-pixel bilinear (PyTorch align_corners=False): out(0,0) = in(0,0); out(1,1) = mean of the 2x2 corner, weighted 0.75/0.25.
    const u = await up.array();
    expect(u[0][0][0][0]).toBeCloseTo(1, 5);
    expect(u[0][1][1][0]).toBeCloseTo(1 + 0.25 * 1 + 0.25 * 4, 5);
    const norm = normalizeImages(img, [1], [2]);
    expect((await norm.data())[3]).toBeCloseTo(1.5, 6);
    tf.dispose([crop, flip, up, norm]);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => normalizeImages(img, [0, 0], [1])).toThrow(/mean must be 1 or 1 finite numbers/);
    img.dispose();
  });

  it('mixBatch: mixup mixes images and targets with one lambda, CutMix pastes a box and corrects lambda', async () => {
    const images = tf.stack([tf.zeros([4, 4, 1]), tf.ones([4, 4, 1])]) as tf.Tensor4D;
    const labels = tf.tensor1d([0, 2], 'int32');
    const before = tf.memory().numTensors;
    const m = mixBatch(images, labels, {
      mixupAlpha: 0.4,
      numClasses: 3,
      labelSmoothing: 0.3,
      random: listRandom([0.37, 0.81, 0.12, 0.55, 0.66, 0.2]),
    });
    expect(m.mode).toBe('mixup');
    expect(m.lambda).toBeGreaterThan(0);
    expect(m.lambda).toBeLessThan(1);
    const px = await m.images.data();
    expect(px[0]).toBeCloseTo(1 - m.lambda, 5);
    expect(px[16]).toBeCloseTo(m.lambda, 5);
    const t = await m.targets.array();
    // Smoothed one-hots: [0.8, 0.1, 0.1] and [0.1, 0.1, 0.8], mixed with the reversed batch.
    expect(t[0][0]).toBeCloseTo(0.8 * m.lambda + 0.1 * (1 - m.lambda), 5);
    expect(t[0].reduce((a, b) => a + b)).toBeCloseTo(1, 5);
    const c = mixBatch(images, labels, {
      cutmixAlpha: 1,
      numClasses: 3,
      random: listRandom([0.3, 0.4, 0.5, 0.6, 0.7, 0.2, 0.1, 0.9]),
    });
    expect(c.mode).toBe('cutmix');
    const cp = await c.images.data();
    const pasted = Array.from(cp.slice(0, 16)).filter((v) => v === 1).length;
    expect(c.lambda).toBeCloseTo(1 - pasted / 16, 6);
    const ct = await c.targets.array();
    expect(ct[0][2]).toBeCloseTo(1 - c.lambda, 6);
    tf.dispose([m.images, m.targets, c.images, c.targets]);
    expect(tf.memory().numTensors).toBe(before);
    const smooth = smoothOneHot(labels, 3, 0.3);
    expect((await smooth.array())[1].map((v) => +v.toFixed(5))).toEqual([0.1, 0.1, 0.8]);
    tf.dispose([smooth, images, labels]);
  });
});

describe('sampleBeta', () => {
  it('has the mean a / (a + b) over many seeded draws', () => {
    const random = new Random(12345);
    let sum = 0;
    for (let i = 0; i < 4000; i++) sum += sampleBeta(0.4, 1.2, random);
    expect(sum / 4000).toBeCloseTo(0.25, 1);
  });
});
