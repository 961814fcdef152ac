import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import {
  ConfigError,
  countTrainableParams,
  countViTMacs,
  countViTParams,
  createViT,
  getViTPreset,
  VIT_PRESETS,
  VisionTransformer,
} from '../../src/index';
import { describeBackends, maxAbsDiff } from '../helpers/backends';
import { attentionRef, geluRef, layerNormRef, matmulRef, maxDiff } from '../helpers/reference';
import { randomizeWeights } from '../helpers/weights';

const SMALL = {
  imgSize: 16,
  patchSize: 4,
  embedDim: 12,
  depth: 2,
  numHeads: 3,
  numClasses: 5,
} as const;

// The formula of reference-facts.md, written out independently of countViTParams.
const timmFormula = (p: number, d: number, depth: number, n: number, c: number) =>
  d * 3 * p * p + d + d + (n + 1) * d + depth * (12 * d * d + 13 * d) + 2 * d + d * c + c;

it("every preset has timm's exact parameter count, from the config alone", () => {
  const expected: Record<string, number> = {
    vit_tiny_patch16_224: 5_717_416,
    vit_small_patch16_224: 22_050_664,
    vit_base_patch16_224: 86_567_656,
    vit_large_patch16_224: 304_326_632,
    vit_huge_patch14_224: 632_045_800,
    vit_small_patch32_224: 22_878_952,
    vit_base_patch32_224: 88_224_232,
    vit_base_patch8_224: 86_576_872,
    deit_tiny_patch16_224: 5_717_416,
    deit_small_patch16_224: 22_050_664,
    deit_base_patch16_224: 86_567_656,
    deit_tiny_distilled_patch16_224: 5_910_800,
    deit_small_distilled_patch16_224: 22_436_432,
    deit_base_distilled_patch16_224: 87_338_192,
  };
  expect(Object.keys(VIT_PRESETS).sort()).toEqual(Object.keys(expected).sort());
  for (const [name, count] of Object.entries(expected)) {
    const p = getViTPreset(name);
    expect(countViTParams(p.config), name).toBe(count);
    expect(p.params, name).toBe(count);
    const { patchSize: ps, embedDim: d, depth } = p.config;
    // DeiT's distillation token adds a token row, a position row and a second head.
    const dist = p.config.distilled ? 2 * d + d * 1000 + 1000 : 0;
    expect(
      timmFormula(ps as number, d, depth, (224 / (ps as number)) ** 2, 1000) + dist,
      name,
    ).toBe(count);
  }
  expect(countViTParams({ ...VIT_PRESETS.vit_tiny_patch16_224.config, numClasses: 10 })).toBe(
    5_526_346,
  );
});

describeBackends('preset models (built)', () => {
  it('built presets count exactly what the config says (tiny/16, small/32, tiny with 10 classes)', () => {
    for (const [name, over, count] of [
      ['vit_tiny_patch16_224', {}, 5_717_416],
      ['vit_small_patch32_224', {}, 22_878_952],
      ['vit_tiny_patch16_224', { numClasses: 10 }, 5_526_346],
    ] as const) {
      const m = createViT(name, over);
      expect(m.countParams(), name).toBe(count);
      expect(countTrainableParams(m), name).toBe(count);
      expect(m.outputs[0].shape).toEqual([null, over.numClasses ?? 1000]);
      m.dispose();
    }
  });

  it("weight names are unique and follow timm's structure", () => {
    const m = createViT({ ...SMALL });
    const names = m.weights.map((w) => w.originalName);
    expect(new Set(names).size).toBe(names.length);
    expect(names.slice(0, 4)).toEqual([
      'vit/patch_embed/proj/kernel',
      'vit/patch_embed/proj/bias',
      'vit/embed/cls_token',
      'vit/embed/pos_embed',
    ]);
    expect(names).toContain('vit/blocks/1/attn/qkv/kernel');
    expect(names).toContain('vit/blocks/0/mlp/fc2/bias');
    expect(names.slice(-4)).toEqual([
      'vit/norm/gamma',
      'vit/norm/beta',
      'vit/head/kernel',
      'vit/head/bias',
    ]);
    expect(names.length).toBe(4 + 2 * 12 + 4);
    m.dispose();
  });
}, ['cpu']);

it('config errors are clear and name the field', () => {
  expect(() => createViT('vit_gigantic')).toThrow(
    /unknown ViT preset 'vit_gigantic'; known presets: vit_tiny_patch16_224, .*vit_base_patch8_224, deit_tiny_patch16_224/,
  );
  expect(() => createViT({ embedDim: 100, numHeads: 3 })).toThrow(
    /embedDim \(100\) must be divisible by numHeads \(3\)/,
  );
  expect(() => createViT({ imgSize: 100, patchSize: 16 })).toThrow(
    /imgSize \[100, 100\] must be divisible by patchSize \[16, 16\]/,
  );
  expect(() => createViT({ depth: 0 })).toThrow(/depth must be a positive integer, got 0/);
  expect(() => createViT({ numClasses: -1 })).toThrow(ConfigError);
  expect(() => createViT({ globalPool: 'token', classToken: false })).toThrow(/needs classToken/);
  expect(() => createViT({ dropPathRate: 1 })).toThrow(/dropPathRate must be a number in \[0, 1\)/);
});

describeBackends('VisionTransformer', () => {
  it("computes timm's forward pass (checked against a plain-JS ViT)", () => {
    const vit = new VisionTransformer({
      imgSize: [8, 12],
      patchSize: 4,
      inChans: 2,
      embedDim: 6,
      depth: 1,
      numHeads: 2,
      numClasses: 3,
      mlpRatio: 2,
    });
    const x = tf.randomNormal([1, 8, 12, 2], 0, 1, 'float32', 3);
    vit.apply(x);
    randomizeWeights(vit.weights, 21);
    const y = vit.apply(x) as tf.Tensor;
    const W = new Map(
      vit.weights.map((w) => [w.originalName.replace(/^[^/]+\//, ''), w.read().dataSync()]),
    );
    const w = (k: string) => {
      const v = W.get(k);
      if (!v) throw new Error(`missing ${k}`);
      return v;
    };
    // Patchify by hand: token t = (gi, gj), features ordered (kh, kw, c).
    const xs = x.dataSync();
    const patches = new Float64Array(6 * 32);
    for (let gi = 0; gi < 2; gi++)
      for (let gj = 0; gj < 3; gj++)
        for (let kh = 0; kh < 4; kh++)
          for (let kw = 0; kw < 4; kw++)
            for (let c = 0; c < 2; c++) {
              patches[(gi * 3 + gj) * 32 + (kh * 4 + kw) * 2 + c] =
                xs[((gi * 4 + kh) * 12 + gj * 4 + kw) * 2 + c];
            }
    const tok = matmulRef(
      patches,
      6,
      32,
      w('patch_embed/proj/kernel'),
      6,
      w('patch_embed/proj/bias'),
    );
    const cls = w('embed/cls_token');
    const pos = w('embed/pos_embed');
    const t0 = new Float64Array(7 * 6);
    for (let i = 0; i < 7; i++)
      for (let c = 0; c < 6; c++)
        t0[i * 6 + c] = (i === 0 ? cls[c] : tok[(i - 1) * 6 + c]) + pos[i * 6 + c];
    const a = attentionRef(
      layerNormRef(t0, 7, 6, w('blocks/0/norm1/gamma'), w('blocks/0/norm1/beta'), 1e-6),
      7,
      6,
      2,
      w('blocks/0/attn/qkv/kernel'),
      w('blocks/0/attn/qkv/bias'),
      w('blocks/0/attn/proj/kernel'),
      w('blocks/0/attn/proj/bias'),
    );
    const t1 = t0.map((v, i) => v + a.out[i]);
    const h = matmulRef(
      layerNormRef(t1, 7, 6, w('blocks/0/norm2/gamma'), w('blocks/0/norm2/beta'), 1e-6),
      7,
      6,
      w('blocks/0/mlp/fc1/kernel'),
      12,
      w('blocks/0/mlp/fc1/bias'),
    );
    const gel = h.map(geluRef);
    const m = matmulRef(gel, 7, 12, w('blocks/0/mlp/fc2/kernel'), 6, w('blocks/0/mlp/fc2/bias'));
    const t2 = t1.map((v, i) => v + m[i]);
    const clsOut = layerNormRef(t2.subarray(0, 6), 1, 6, w('norm/gamma'), w('norm/beta'), 1e-6);
    const logits = matmulRef(clsOut, 1, 6, w('head/kernel'), 3, w('head/bias'));
    expect(y.shape).toEqual([1, 3]);
    expect(maxDiff(y.dataSync(), logits)).toBeLessThan(1e-4);
    tf.dispose([x, y]);
  });

  it('forwardWithAttention gives the same logits and [B, H, N, N] maps whose rows sum to 1', () => {
    const vit = new VisionTransformer({ ...SMALL });
    const x = tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 5);
    const y = vit.apply(x) as tf.Tensor;
    const { logits, attentions, blocks } = vit.forwardWithAttention(x, { blocks: [1] });
    expect(blocks).toEqual([1]);
    expect(attentions.length).toBe(1);
    expect(attentions[0].shape).toEqual([2, 3, 17, 17]);
    expect(maxAbsDiff(logits, y)).toBeLessThan(1e-5);
    const rowSums = tf.sum(attentions[0], -1);
    expect(maxAbsDiff(rowSums, tf.onesLike(rowSums))).toBeLessThan(1e-5);
    expect(() => vit.forwardWithAttention(x, { blocks: [2] })).toThrow(
      /blocks must be integers in \[0, 1\], got 2/,
    );
    tf.dispose([x, y, logits, rowSums, ...attentions]);
  });

  it('dropout and drop path act only when training', () => {
    const vit = new VisionTransformer({
      ...SMALL,
      dropRate: 0.3,
      attnDropRate: 0.3,
      projDropRate: 0.3,
      dropPathRate: 0.3,
    });
    const x = tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 6);
    const a = vit.apply(x) as tf.Tensor;
    const b = vit.apply(x) as tf.Tensor;
    const c = vit.apply(x, { training: true }) as tf.Tensor;
    expect(maxAbsDiff(a, b)).toBe(0);
    expect(maxAbsDiff(a, c)).toBeGreaterThan(1e-3);
    tf.dispose([x, a, b, c]);
  });

  it('average pooling, no class token and LayerScale are config options with exact counts', () => {
    const cfg = {
      ...SMALL,
      globalPool: 'avg' as const,
      classToken: false,
      initValues: 1e-5,
      numRegTokens: 2,
    };
    const m = createViT(cfg);
    expect(m.countParams()).toBe(countViTParams(cfg));
    expect(m.weights.map((w) => w.originalName)).toContain('vit/fc_norm/gamma');
    const x = tf.randomNormal([1, 16, 16, 3]);
    const y = m.predict(x) as tf.Tensor;
    expect(y.shape).toEqual([1, 5]);
    tf.dispose([x, y]);
    m.dispose();
  });

  it('rejects images of the wrong size at call and at model build', () => {
    const m = createViT({ ...SMALL });
    const bad = tf.zeros([1, 20, 16, 3]);
    expect(() => m.predict(bad)).toThrow(
      /expected image to have shape \[null,16,16,3\] but got array with shape \[1,20,16,3\]/,
    );
    expect(() => (m.layers[1] as VisionTransformer).apply(bad)).toThrow(
      /VisionTransformer: expected input of shape \[null, 16, 16, 3\].*got \[1, 20, 16, 3\]/,
    );
    const inp = tfl.input({ shape: [16, 16, 1] });
    expect(() => new VisionTransformer({ ...SMALL }).apply(inp)).toThrow(
      /\[null, 16, 16, 3\].*got \[null, 16, 16, 1\]/,
    );
    bad.dispose();
    m.dispose();
  });

  it('repeated predict leaks no tensors', () => {
    const m = createViT({ ...SMALL });
    const x = tf.randomNormal([2, 16, 16, 3]);
    tf.dispose(m.predict(x) as tf.Tensor);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose(m.predict(x) as tf.Tensor);
    const r = (m.layers[1] as VisionTransformer).forwardWithAttention(x);
    tf.dispose([r.logits, ...r.attentions]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    m.dispose();
  });
});

it('forward cost (MACs) matches the reference figures', () => {
  const g = (name: keyof typeof VIT_PRESETS) => countViTMacs(VIT_PRESETS[name].config) / 1e9;
  expect(g('vit_tiny_patch16_224')).toBeCloseTo(1.25, 2);
  expect(g('vit_small_patch16_224')).toBeCloseTo(4.6, 1);
  expect(g('vit_base_patch16_224')).toBeCloseTo(17.56, 2);
  expect(g('vit_large_patch16_224')).toBeCloseTo(61.6, 1);
  expect(g('vit_huge_patch14_224')).toBeCloseTo(167.3, 1);
});
