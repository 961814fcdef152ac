/**
 * Hybrid CNN + ViT: ResNet18 feature extraction, HybridEmbed, HybridVisionTransformer,
 * createHybridViT and its presets, counts against PyTorch (test/fixtures/hybrid/counts.json from
 * scripts/fixtures/hybrid_counts.py), config validation and save / load round trips.
 * Numerics against PyTorch with timm keys: test/weights/parity.test.ts (timm_hybrid_*).
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import {
  ConfigError,
  countTrainableParams,
  countViTMacs,
  countViTParams,
  createHybridViT,
  createViT,
  exportWeights,
  HYBRID_VIT_PRESETS,
  HybridEmbed,
  HybridVisionTransformer,
  type HybridViTConfig,
  InputShapeError,
  loadPretrained,
  ResNet18,
  resNetFeatureSize,
  vitConfigFromCheckpoint,
} from '../../src/index';
import { describeBackends, maxAbsDiff } from '../helpers/backends';
import { randomizeWeights } from '../helpers/weights';
import { COMMITTED_PARITY_DIR, fixture, fixtureWeights } from '../weights/fixtures';

interface TorchCount {
  name: string;
  config: HybridViTConfig;
  params: number;
  bn_channels: number;
  macs: number;
}
const TORCH: TorchCount[] = JSON.parse(
  readFileSync(new URL('../fixtures/hybrid/counts.json', import.meta.url), 'utf8'),
).models;

async function memoryRoundTrip(model: tfl.LayersModel): Promise<tfl.LayersModel> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!artifacts) throw new Error('nothing saved');
  return tfl.loadLayersModel(tf.io.fromMemory(artifacts));
}

/** A small user CNN: two stride-2 convs, [B, 16, 16, 3] -> [B, 4, 4, 8]. */
function userCnn(): tfl.LayersModel {
  return tfl.sequential({
    name: 'user_cnn',
    layers: [
      tfl.layers.conv2d({
        inputShape: [16, 16, 3],
        filters: 6,
        kernelSize: 3,
        strides: 2,
        padding: 'same',
        activation: 'relu',
        name: 'c1',
      }),
      tfl.layers.batchNormalization({ name: 'bn' }),
      tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', name: 'c2' }),
    ],
  });
}

it("hybrid presets have PyTorch's exact parameter counts and MACs, from the config alone", () => {
  // Literal counts (also in the presets' data) and the same numbers from PyTorch's own build.
  expect(countViTParams(HYBRID_VIT_PRESETS.vit_tiny_r18_s16_224.config)).toBe(8_401_896);
  expect(countViTParams(HYBRID_VIT_PRESETS.vit_small_r18_s16_224.config)).toBe(24_636_840);
  expect(countViTParams(HYBRID_VIT_PRESETS.vit_tiny_r18_cifar_s4_32.config)).toBe(8_177_802);
  for (const p of Object.values(HYBRID_VIT_PRESETS)) {
    const torch = TORCH.find((t) => t.name === p.name);
    expect(torch, p.name).toBeDefined();
    expect(p.params, p.name).toBe(torch?.params);
    expect(torch?.config).toMatchObject(p.config);
  }
  // Every PyTorch-counted model, including stage 1, 2 and 4 trunks, patch 2 on the feature
  // map, no head, register tokens and average pooling on a non-square image.
  expect(TORCH.length).toBe(6);
  for (const t of TORCH) {
    expect(countViTParams(t.config), t.name).toBe(t.params);
    expect(countViTMacs(t.config), t.name).toBe(t.macs);
  }
  // ViT-Ti on ResNet18 to layer3 at 224 px: 2.64 GMACs (the trunk 1.36, the ViT 1.28).
  expect(countViTMacs(HYBRID_VIT_PRESETS.vit_tiny_r18_s16_224.config) / 1e9).toBeCloseTo(2.637, 3);
});

describeBackends('hybrid config validation', () => {
  it('config validation names the bad field', () => {
    const base: HybridViTConfig = {
      imgSize: 32,
      stem: 'cifar',
      embedDim: 16,
      depth: 1,
      numHeads: 2,
    };
    const bad = (extra: Record<string, unknown>) => () =>
      createHybridViT({ ...base, ...extra } as HybridViTConfig);
    expect(bad({ backboneStage: 2 })).toThrow(ConfigError);
    expect(bad({ backboneStage: 2 })).toThrow(
      /unknown config field 'backboneStage'; known config fields: .*backboneStages/,
    );
    expect(bad({ pachSize: 2, hybrid: {} })).toThrow(/unknown config field 'pachSize'/);
    expect(bad({ backboneStages: 5 })).toThrow(
      /backboneStages must be an integer >= 1 and <= 4, got 5/,
    );
    // A plain ViT never silently ignores hybrid fields.
    expect(() => createViT({ imgSize: 32, patchSize: 4, backbone: 'resnet18' } as never)).toThrow(
      /unknown config field 'backbone'/,
    );
    expect(bad({ dynamicImgSize: true })).toThrow(
      /dynamicImgSize is not supported by hybrid models/,
    );
    expect(bad({ stem: 'tiny' })).toThrow(/stem must be one of 'imagenet', 'cifar', got "tiny"/);
    expect(bad({ backbone: 'resnet50' })).toThrow(
      /backbone must be 'resnet18' or a tf.layers layer.*got 'resnet50'/,
    );
    expect(bad({ patchSize: 3 })).toThrow(
      /feature map \[8, 8\].*must be divisible by patchSize \[3, 3\]/,
    );
    expect(bad({ embedDim: 15 })).toThrow(/embedDim \(15\) must be divisible by numHeads \(2\)/);
    const cnn = userCnn();
    expect(() =>
      createHybridViT({
        backbone: cnn,
        stem: 'cifar',
        imgSize: 16,
        embedDim: 8,
        depth: 1,
        numHeads: 2,
      }),
    ).toThrow(/stem applies to backbone 'resnet18' only; the backbone is the layer 'user_cnn'/);
    const twoMaps = new ResNet18({ featuresOnly: true, outIndices: [1, 2] });
    expect(() => new HybridEmbed({ backbone: twoMaps, imgSize: 64 })).toThrow(
      /must output one feature map, got 2/,
    );
    expect(() => new HybridEmbed({ backbone: 'resnet18' as never })).toThrow(
      /backbone must be a tf.layers layer or a tf.LayersModel, got string "resnet18"/,
    );
    expect(() => createHybridViT('vit_huge_r18')).toThrow(
      /unknown hybrid ViT preset 'vit_huge_r18'; known presets: vit_tiny_r18_s16_224/,
    );
    expect(() => countViTMacs({ ...base, backbone: cnn, stem: undefined, imgSize: 16 })).toThrow(
      /user layer 'user_cnn'.*pass options.backboneMacs/,
    );
    expect(() => new ResNet18({ outIndices: [3] })).toThrow(
      /outIndices \[3\] needs featuresOnly: true/,
    );
    expect(() => new ResNet18({ featuresOnly: true, outIndices: [5] })).toThrow(
      /outIndices must be a non-empty list of distinct integers in \[0, 4\].*got \[5\]/,
    );
    cnn.dispose();
  });
}, ['cpu']);

describeBackends('ResNet18 feature extraction', () => {
  it('outputs stem and stage maps with timm strides; the last map pools to the classifier features', () => {
    const full = new ResNet18({ numClasses: 0, stem: 'imagenet' });
    const feats = new ResNet18({ featuresOnly: true, outIndices: [4, 0, 2] });
    const x = tf.randomNormal([2, 64, 48, 3], 0, 1, 'float32', 5);
    full.apply(x);
    feats.setFastWeightInitDuringBuild(true); // its weights are copied from `full` below
    feats.apply(x);
    expect(feats.outIndices).toEqual([0, 2, 4]);
    expect(feats.featureInfo.map((f) => [f.module, f.numChs, f.reduction])).toEqual([
      ['act1', 64, 2],
      ['layer1', 64, 4],
      ['layer2', 128, 8],
      ['layer3', 256, 16],
      ['layer4', 512, 32],
    ]);
    // Same weights in the feature extractor (identical names and order).
    expect(feats.weights.map((w) => w.originalName.replace(/^[^/]+/, ''))).toEqual(
      full.weights.map((w) => w.originalName.replace(/^[^/]+/, '')),
    );
    feats.weights.forEach((w, i) => {
      w.write(full.weights[i]?.read() as tf.Tensor);
    });
    const maps = feats.apply(x) as tf.Tensor[];
    expect(maps.map((m) => m.shape)).toEqual([
      [2, 32, 24, 64],
      [2, 8, 6, 128],
      [2, 2, 2, 512],
    ]);
    expect(feats.computeOutputShape([null, 64, 48, 3])).toEqual(
      maps.map((m) => [null, ...m.shape.slice(1)]),
    );
    expect(resNetFeatureSize([64, 48], 'imagenet', 3)).toEqual([4, 3]);
    expect(resNetFeatureSize([32, 32], 'cifar', 3)).toEqual([8, 8]);
    const pooled = full.apply(x) as tf.Tensor;
    const fromMap = tf.mean(maps[2] as tf.Tensor, [1, 2]);
    expect(maxAbsDiff(fromMap, pooled)).toBeLessThan(1e-5);
    // A trunk to layer3 has no layer4 (and no fc) weights.
    const trunk = new ResNet18({ featuresOnly: true, outIndices: [3], stem: 'cifar' });
    const y = trunk.apply(tf.zeros([1, 32, 32, 3])) as tf.Tensor;
    expect(y.shape).toEqual([1, 8, 8, 256]);
    expect(trunk.weights.some((w) => /layer4|fc/.test(w.originalName))).toBe(false);
    expect(trunk.getConfig()).toMatchObject({ featuresOnly: true, outIndices: [3], stem: 'cifar' });
    tf.dispose([x, pooled, fromMap, y, ...maps]);
    for (const l of [full, feats, trunk]) l.dispose();
  });
});

describeBackends('HybridEmbed and HybridVisionTransformer', () => {
  it('HybridEmbed projects the feature map as a conv with kernel = stride = patch, row-major', () => {
    const cnn = userCnn();
    for (const patchSize of [1, 2]) {
      const embed = new HybridEmbed({ backbone: cnn, imgSize: 16, patchSize, embedDim: 5 });
      const x = tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 9);
      const tokens = embed.apply(x) as tf.Tensor;
      expect(embed.featureShape).toEqual([4, 4, 8]);
      expect(tokens.shape).toEqual([2, (4 / patchSize) ** 2, 5]);
      randomizeWeights(embed.weights.slice(0, 2), 3, 0.5); // proj kernel and bias
      const y = embed.apply(x) as tf.Tensor;
      const [kernel, bias] = embed.weights.map((w) => w.read());
      const ref = tf.tidy(() => {
        const fmap = cnn.predict(x) as tf.Tensor4D;
        const conv = tf.conv2d(fmap, kernel as tf.Tensor4D, patchSize, 'valid');
        return tf.reshape(tf.add(conv, bias as tf.Tensor), [2, -1, 5]);
      });
      expect(maxAbsDiff(y, ref)).toBeLessThan(1e-5);
      expect(embed.weights.length).toBe(2 + cnn.weights.length);
      tf.dispose([x, tokens, y, ref]);
    }
    // A single tf.layers layer as the backbone, rebuilt from its config.
    const single = new HybridEmbed({
      backbone: tfl.layers.conv2d({ filters: 4, kernelSize: 4, strides: 4 }),
      imgSize: 16,
      embedDim: 3,
    });
    const img = tf.randomNormal([1, 16, 16, 3], 0, 1, 'float32', 12);
    const t1 = single.apply(img) as tf.Tensor;
    expect(t1.shape).toEqual([1, 16, 3]);
    const copy = HybridEmbed.fromConfig(HybridEmbed, single.getConfig()) as HybridEmbed;
    copy.apply(img);
    copy.setWeights(single.getWeights());
    const t2 = copy.apply(img) as tf.Tensor;
    expect(maxAbsDiff(t1, t2)).toBe(0);
    expect(copy.backbone.getClassName()).toBe('Conv2D');
    tf.dispose([img, t1, t2]);
    expect(() => new HybridEmbed({ backbone: cnn, imgSize: 16, patchSize: 3 })).toThrow(
      /feature map \[4, 4\].*divisible by patchSize \[3, 3\]/,
    );
    cnn.dispose();
  });

  it('a ResNet18 hybrid builds, names its weights as timm, trains the trunk and leaks nothing', () => {
    const model = createHybridViT({
      backbone: 'resnet18',
      backboneStages: 2,
      stem: 'cifar',
      imgSize: 8,
      patchSize: 2,
      embedDim: 16,
      depth: 1,
      numHeads: 2,
      numClasses: 3,
    });
    const vit = model.layers[1] as HybridVisionTransformer;
    expect(vit).toBeInstanceOf(HybridVisionTransformer);
    expect(vit.gridSize).toEqual([2, 2]);
    expect(vit.patchEmbed).toBeInstanceOf(HybridEmbed);
    const names = model.weights.map((w) => w.originalName);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain('vit/patch_embed/proj/kernel');
    expect(names).toContain('vit/patch_embed/backbone/layer2/0/downsample/1/moving_variance');
    expect(names.some((n) => n.includes('layer3'))).toBe(false);
    const params = countViTParams({
      backbone: 'resnet18',
      backboneStages: 2,
      stem: 'cifar',
      imgSize: 8,
      patchSize: 2,
      embedDim: 16,
      depth: 1,
      numHeads: 2,
      numClasses: 3,
    });
    expect(countTrainableParams(model)).toBe(params);
    expect(model.countParams()).toBe(params + 2 * (64 + 4 * 64 + 5 * 128)); // + BN running stats
    const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 4);
    const labels = tf.oneHot(tf.tensor1d([0, 2], 'int32'), 3);
    const before = tf.memory().numTensors;
    const { grads, value } = tf.variableGrads(() =>
      tf.losses.softmaxCrossEntropy(labels, vit.apply(x, { training: true }) as tf.Tensor),
    );
    const conv1Var = model.weights.find(
      (w) => w.originalName === 'vit/patch_embed/backbone/conv1/kernel',
    );
    const conv1 = grads[conv1Var?.name ?? ''];
    expect(conv1?.shape).toEqual([3, 3, 3, 64]);
    expect(tf.tidy(() => tf.max(tf.abs(conv1 as tf.Tensor)).dataSync()[0])).toBeGreaterThan(0);
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    const y = model.predict(x) as tf.Tensor;
    y.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const wrongSize = tf.zeros([1, 16, 16, 3]);
    expect(() => vit.apply(wrongSize)).toThrow(InputShapeError);
    tf.dispose([x, labels, wrongSize]);
    model.dispose();
  });

  it('config round trip: getConfig / save / load give identical outputs (ResNet18 and user CNN backbones)', async () => {
    const resnetHybrid = createHybridViT('vit_tiny_r18_cifar_s4_32', {
      imgSize: 8,
      backboneStages: 1,
      depth: 1,
      embedDim: 24,
    });
    const cnn = userCnn();
    const userHybrid = createHybridViT({
      backbone: cnn,
      imgSize: 16,
      embedDim: 12,
      depth: 1,
      numHeads: 3,
      numClasses: 4,
      globalPool: 'avg',
    });
    for (const [m, size] of [
      [resnetHybrid, 8],
      [userHybrid, 16],
    ] as const) {
      randomizeWeights(m.weights, 21, 0.1);
      const x = tf.randomNormal([2, size, size, 3], 0, 1, 'float32', 8);
      const y1 = m.predict(x) as tf.Tensor;
      const m2 = await memoryRoundTrip(m);
      const vit2 = m2.layers[1] as HybridVisionTransformer;
      expect(vit2).toBeInstanceOf(HybridVisionTransformer);
      expect(vit2.getConfig()).toEqual(m.layers[1]?.getConfig());
      expect(m2.weights.map((w) => w.originalName)).toEqual(m.weights.map((w) => w.originalName));
      const y2 = m2.predict(x) as tf.Tensor;
      expect(maxAbsDiff(y1, y2)).toBe(0);
      tf.dispose([x, y1, y2]);
      m2.dispose();
    }
    const cfg = resnetHybrid.layers[1]?.getConfig() ?? {};
    expect(cfg).toMatchObject({
      backbone: 'resnet18',
      backboneStages: 1,
      stem: 'cifar',
      patchSize: [1, 1],
    });
    expect(userHybrid.layers[1]?.getConfig()['backbone']).toMatchObject({
      className: 'Sequential',
    });
    resnetHybrid.dispose();
    userHybrid.dispose();
  });

  it('timm weights: export -> strict load restores every weight; a user backbone has no timm keys', () => {
    const m = createHybridViT({
      stem: 'cifar',
      backboneStages: 1,
      imgSize: 8,
      embedDim: 8,
      depth: 1,
      numHeads: 2,
      numClasses: 2,
    });
    randomizeWeights(m.weights, 5, 0.1);
    const bytes = exportWeights(m, { to: 'timm' });
    const snapshot = m.weights.map((w) => w.read().dataSync().slice());
    randomizeWeights(m.weights, 6, 0.1);
    const report = loadPretrained(m, bytes, { from: 'timm' });
    expect(report.loaded.length).toBe(m.weights.length);
    expect(report.ignored).toEqual([
      'patch_embed.backbone.bn1.num_batches_tracked',
      'patch_embed.backbone.layer1.0.bn1.num_batches_tracked',
      'patch_embed.backbone.layer1.0.bn2.num_batches_tracked',
      'patch_embed.backbone.layer1.1.bn1.num_batches_tracked',
      'patch_embed.backbone.layer1.1.bn2.num_batches_tracked',
    ]);
    m.weights.forEach((w, i) => {
      expect(Array.from(w.read().dataSync()), w.originalName).toEqual(
        Array.from(snapshot[i] as Float32Array),
      );
    });
    // The architecture read back from the checkpoint builds the same model.
    expect(vitConfigFromCheckpoint(bytes, { from: 'timm' })).toEqual({
      backbone: 'resnet18',
      backboneStages: 1,
      stem: 'cifar',
      imgSize: 8,
      patchSize: 1,
      inChans: 3,
      embedDim: 8,
      depth: 1,
      numHeads: 2,
      mlpRatio: 4,
      qkvBias: true,
      classToken: true,
      numRegTokens: 0,
      numClasses: 2,
      globalPool: 'token',
      normEps: 1e-6,
    });
    for (const name of ['timm_hybrid_r18', 'timm_hybrid_r18_cifar']) {
      const e = fixture(name, COMMITTED_PARITY_DIR);
      const cfg = vitConfigFromCheckpoint(fixtureWeights(e, COMMITTED_PARITY_DIR), {
        from: 'timm',
        numHeads: e.config.numHeads,
      });
      expect(cfg, name).toMatchObject(e.config);
      expect(countViTParams(cfg), name).toBe(countViTParams(e.config));
    }
    expect(() => exportWeights(m, { to: 'torchvision' })).toThrow(
      /cannot be written in the 'torchvision' layout.*patch_embed\/backbone\/conv1\/kernel/,
    );
    m.dispose();
  });
});
