/**
 * Key maps and layout conversions. The reference key sets are the state dicts PyTorch wrote for
 * the parity fixtures (timm / torchvision / HF ViTs, torchvision and CIFAR ResNet18).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors';
import { createHybridViT, createResNet18, createViT } from '../../src/index';
import {
  buildKeyMap,
  IGNORED_KEYS,
  isIgnoredKey,
  mapWeightName,
  relativeWeightName,
  rulesFor,
  TIMM_VIT_RULES,
} from '../../src/weights/keymaps';
import {
  joinArraysFromTorch,
  joinFromTorch,
  splitArrayToTorch,
  splitToTorch,
  torchShapeOf,
  transposeArray,
  vitShapeOf,
} from '../../src/weights/layouts';
import { COMMITTED_PARITY_DIR, fixtureWeights, readManifest } from './fixtures';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function names(model: { weights: Array<{ originalName: string }> }, layer: string): string[] {
  return model.weights.map((w) => relativeWeightName(w.originalName, layer));
}

describe('key maps against the state dicts PyTorch wrote', () => {
  for (const e of readManifest(COMMITTED_PARITY_DIR).fixtures) {
    it(`${e.name}: every vit-ts weight maps to a key of the ${e.from} state dict, and every key is used`, () => {
      const model =
        e.family === 'vit'
          ? e.config.backbone != null
            ? createHybridViT(e.config)
            : createViT(e.config)
          : createResNet18({ numClasses: e.config.numClasses, stem: e.config.stem, imgSize: 32 });
      const layerName = e.family === 'vit' ? 'vit' : 'resnet18';
      const torchKeys = [...fixtureWeights(e, COMMITTED_PARITY_DIR).tensors.keys()].filter(
        (k) => !isIgnoredKey(e.from, k),
      );
      const hfPrefix = e.from === 'hf' ? 'vit.' : '';
      const { entries, unmapped } = buildKeyMap(e.family, e.from, names(model, layerName), {
        hfPrefix,
      });
      expect(unmapped).toEqual([]);
      const mapped = entries.flatMap((x) => x.keys);
      expect(new Set(mapped).size).toBe(mapped.length);
      expect([...mapped].sort()).toEqual([...torchKeys].sort());
      model.dispose();
    });
  }

  it('maps Hugging Face keys with and without the vit. prefix (ViTForImageClassification / ViTModel)', () => {
    const rules = rulesFor('vit', 'hf');
    expect(mapWeightName(rules, 'blocks/4/attn/qkv/kernel', { hfPrefix: 'vit.' })?.keys).toEqual([
      'vit.encoder.layer.4.attention.attention.query.weight',
      'vit.encoder.layer.4.attention.attention.key.weight',
      'vit.encoder.layer.4.attention.attention.value.weight',
    ]);
    expect(mapWeightName(rules, 'norm/gamma')?.keys).toEqual(['layernorm.weight']);
    expect(mapWeightName(rules, 'head/kernel', { hfPrefix: 'vit.' })).toEqual({
      name: 'head/kernel',
      keys: ['classifier.weight'],
      layout: 'linear',
    });
    expect(isIgnoredKey('hf', 'pooler.dense.weight')).toBe(true);
    expect(isIgnoredKey('hf', 'vit.embeddings.mask_token')).toBe(true);
    expect(isIgnoredKey('timm', 'blocks.0.norm1.weight')).toBe(false);
    expect(IGNORED_KEYS.torchvision.some((r) => r.test('layer1.0.bn1.num_batches_tracked'))).toBe(
      true,
    );
  });

  it('marks the position embedding and lists weights a layout cannot hold', () => {
    expect(mapWeightName(TIMM_VIT_RULES, 'embed/pos_embed')?.role).toBe('posEmbed');
    expect(mapWeightName(rulesFor('vit', 'torchvision'), 'embed/pos_embed')).toMatchObject({
      keys: ['encoder.pos_embedding'],
      role: 'posEmbed',
    });
    const { unmapped } = buildKeyMap('vit', 'torchvision', [
      'blocks/0/ls1/gamma',
      'embed/reg_token',
      'fc_norm/gamma',
      'norm/gamma',
    ]);
    expect(unmapped).toEqual(['blocks/0/ls1/gamma', 'embed/reg_token', 'fc_norm/gamma']);
    expect(() => rulesFor('resnet', 'hf')).toThrow(ConfigError);
    expect(() => rulesFor('vit', 'cifar')).toThrow(/'timm', 'torchvision', 'hf'/);
  });

  it('strips the top layer name whatever the user called it', () => {
    expect(relativeWeightName('vit/blocks/3/attn/qkv/kernel', 'vit')).toBe(
      'blocks/3/attn/qkv/kernel',
    );
    expect(relativeWeightName('my_backbone/norm/gamma', 'my_backbone')).toBe('norm/gamma');
    expect(relativeWeightName('other/head/bias', 'renamed')).toBe('head/bias');
    const model = createViT({
      imgSize: 16,
      patchSize: 8,
      embedDim: 8,
      depth: 1,
      numHeads: 2,
      numClasses: 2,
    });
    expect(names(model, 'vit')).toContain('blocks/0/attn/qkv/kernel');
    model.dispose();
  });
});

describe('layout conversions', () => {
  it('Conv2d OIHW -> HWIO puts element [o, i, h, w] at [h, w, i, o] (tensor and array paths)', () => {
    const [o, i, h, w] = [5, 3, 2, 4];
    const data = Float32Array.from({ length: o * i * h * w }, (_, k) => k);
    const at = (oo: number, ii: number, hh: number, ww: number) =>
      ((oo * i + ii) * h + hh) * w + ww;
    const hwio = joinArraysFromTorch([data], [o, i, h, w], 'conv');
    expect(vitShapeOf([o, i, h, w], 'conv')).toEqual([h, w, i, o]);
    for (const [oo, ii, hh, ww] of [
      [0, 0, 0, 0],
      [4, 2, 1, 3],
      [2, 1, 0, 2],
      [3, 0, 1, 1],
    ]) {
      expect(hwio[((hh * w + ww) * i + ii) * o + oo]).toBe(data[at(oo, ii, hh, ww)]);
    }
    const t = tf.tensor(data, [o, i, h, w]);
    const viaTf = joinFromTorch([t], 'conv');
    expect(Array.from(viaTf.dataSync())).toEqual(Array.from(hwio));
    const back = splitArrayToTorch(hwio, [h, w, i, o], 'conv', 1)[0];
    expect(Array.from(back)).toEqual(Array.from(data));
    const backTf = splitToTorch(viaTf, 'conv', 1)[0];
    expect(Array.from(backTf.dataSync())).toEqual(Array.from(data));
    tf.dispose([t, viaTf, backTf]);
  });

  it('Linear [out, in] -> [in, out], and q/k/v join to the fused [q | k | v] kernel and split back', () => {
    const d = 4;
    const parts = [0, 1, 2].map((p) => Float32Array.from({ length: d * d }, (_, k) => 100 * p + k));
    const fused = joinArraysFromTorch(parts, [d, d], 'linear'); // [D, 3D]
    expect(fused.length).toBe(3 * d * d);
    // Column j of the fused kernel is output j: q outputs 0..D-1, then k, then v.
    for (let p = 0; p < 3; p++) {
      for (let out = 0; out < d; out++) {
        for (let inp = 0; inp < d; inp++)
          expect(fused[inp * 3 * d + p * d + out]).toBe(parts[p][out * d + inp]);
      }
    }
    const tensors = parts.map((a) => tf.tensor(a, [d, d]));
    const viaTf = joinFromTorch(tensors, 'linear');
    expect(viaTf.shape).toEqual([d, 3 * d]);
    expect(Array.from(viaTf.dataSync())).toEqual(Array.from(fused));
    const split = splitArrayToTorch(fused, [d, 3 * d], 'linear', 3);
    split.forEach((s, p) => {
      expect(Array.from(s)).toEqual(Array.from(parts[p]));
    });
    expect(torchShapeOf([d, 3 * d], 'linear')).toEqual([3 * d, d]);
    tf.dispose([...tensors, viaTf]);
  });

  it('transposeArray equals tf.transpose for ranks 2 to 5', () => {
    const cases: Array<[number[], number[]]> = [
      [
        [3, 7],
        [1, 0],
      ],
      [
        [2, 3, 4],
        [2, 0, 1],
      ],
      [
        [2, 3, 4, 5],
        [3, 2, 0, 1],
      ],
      [
        [2, 1, 3, 2, 2],
        [4, 0, 3, 1, 2],
      ],
    ];
    for (const [shape, perm] of cases) {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = Float32Array.from({ length: n }, () => Math.random());
      const ref = tf.tidy(() => tf.transpose(tf.tensor(data, shape), perm).dataSync());
      expect(Array.from(transposeArray(data, shape, perm))).toEqual(Array.from(ref));
    }
    expect(() => transposeArray(new Float32Array(6), [2, 3], [0])).toThrow(/perm/);
    expect(() => torchShapeOf([3, 3, 3], 'conv')).toThrow(/rank 4/);
  });
});
