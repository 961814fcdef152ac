/**
 * ViT options (issue 9): position-embedding kinds, DeiT distillation token and head, qk-norm,
 * dynamic image size, intermediate features, their parameter counts, serialization and timm
 * key maps. Numbers against PyTorch are in vit_options_parity.test.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import {
  adamw,
  attentionMaps,
  attentionRollout,
  ConfigError,
  countTrainableParams,
  countViTMacs,
  countViTParams,
  createViT,
  exportWeights,
  freeze,
  getViTPreset,
  hardDistillationLoss,
  InputShapeError,
  loadPretrained,
  readSafetensors,
  resetClassifier,
  sincos2dPosEmbed,
  VisionTransformer,
  ViTEmbedding,
  vitConfigFromCheckpoint,
} from '../../src/index';
import { describeBackends, maxAbsDiff } from '../helpers/backends';
import { randomizeWeights } from '../helpers/weights';

const SMALL = {
  imgSize: 16,
  patchSize: 4,
  embedDim: 12,
  depth: 2,
  numHeads: 3,
  numClasses: 5,
} as const;

const vitOf = (m: tfl.LayersModel) => m.layers[1] as VisionTransformer;

it('parameter counts of every option, from the config alone (hand-computed)', () => {
  // Plain SMALL: conv 12*48+12, cls 12, pos 17*12, 2 blocks of 12*144+13*12, norm 24, head 65.
  expect(countViTParams(SMALL)).toBe(4661);
  // learned2d: (4 + 4) rows of 12 instead of 17.
  expect(countViTParams({ ...SMALL, posEmbed: 'learned2d' })).toBe(4661 - 204 + 96);
  // sincos: the fixed table is stored (not trainable): same count as learned.
  expect(countViTParams({ ...SMALL, posEmbed: 'sincos' })).toBe(4661);
  expect(countViTParams({ ...SMALL, posEmbed: 'none' })).toBe(4661 - 204);
  // DeiT: dist token 12, one more position row 12, head_dist 12*5+5.
  expect(countViTParams({ ...SMALL, distilled: true })).toBe(4661 + 12 + 12 + 65);
  // qk-norm: two LayerNorms over the head dim (4) per block.
  expect(countViTParams({ ...SMALL, qkNorm: true })).toBe(4661 + 2 * 4 * 4);
  expect(countViTParams({ ...SMALL, dynamicImgSize: true })).toBe(4661);
  // MACs: DeiT has 18 tokens and a second head.
  const n = 18;
  const block = n * 12 * 36 + 2 * n * n * 12 + n * 144 + 2 * n * 12 * 48;
  expect(countViTMacs({ ...SMALL, distilled: true })).toBe(16 * 48 * 12 + 2 * block + 2 * 60);
  expect(countViTMacs({ ...SMALL, qkNorm: true, posEmbed: 'none' })).toBe(countViTMacs(SMALL));
});

it('DeiT presets: exact timm counts (distilled and plain), ImageNet normalization', () => {
  const counts: Array<[string, number]> = [
    ['deit_tiny_distilled_patch16_224', 5_910_800],
    ['deit_small_distilled_patch16_224', 22_436_432],
    ['deit_base_distilled_patch16_224', 87_338_192],
    ['deit_tiny_patch16_224', 5_717_416],
    ['deit_small_patch16_224', 22_050_664],
    ['deit_base_patch16_224', 86_567_656],
  ];
  for (const [name, count] of counts) {
    const p = getViTPreset(name);
    expect(countViTParams(p.config), name).toBe(count);
    expect(p.config.distilled === true, name).toBe(name.includes('distilled'));
    expect(p.normalization.mean).toEqual([0.485, 0.456, 0.406]);
  }
});

it('option config errors name the field, the expectation and what came', () => {
  expect(() => createViT({ ...SMALL, posEmbed: 'rope' as never })).toThrow(
    /posEmbed must be one of 'learned', 'learned2d', 'sincos', 'none', got "rope"/,
  );
  expect(() => createViT({ ...SMALL, embedDim: 6, posEmbed: 'sincos' })).toThrow(
    /posEmbed 'sincos' needs embedDim divisible by 4, got embedDim 6/,
  );
  expect(() => createViT({ ...SMALL, distilled: true, globalPool: 'avg' })).toThrow(
    /distilled: true needs classToken: true, globalPool: 'token' and numRegTokens: 0.*globalPool: 'avg'/,
  );
  expect(() => createViT({ ...SMALL, distilled: true, numRegTokens: 2 })).toThrow(ConfigError);
  expect(() => createViT({ ...SMALL, qkNorm: 'yes' as never })).toThrow(
    /qkNorm must be true or false, got "yes"/,
  );
  expect(() => createViT({ ...SMALL, dynamicImgSize: 1 as never })).toThrow(
    /dynamicImgSize must be true or false, got 1/,
  );
  expect(() => sincos2dPosEmbed(10, [2, 2])).toThrow(/embedDim must be divisible by 4 .*got 10/);
});

it("sincos2dPosEmbed follows MAE's formula (column half, then row half; class row zeros)", () => {
  const d = 8;
  const t = sincos2dPosEmbed(d, [2, 3], 1);
  expect(t.length).toBe(7 * d);
  expect([...t.subarray(0, d)]).toEqual(new Array(d).fill(0));
  // Patch (row 1, col 2) is token 1 + 1 * 3 + 2 = 6; omega_i = 10000^(-i / 2), i = 0, 1.
  const row = t.subarray(6 * d, 7 * d);
  const om = [1, 1 / 100];
  const expected = [
    Math.sin(2 * om[0]),
    Math.sin(2 * om[1]),
    Math.cos(2 * om[0]),
    Math.cos(2 * om[1]),
    Math.sin(1 * om[0]),
    Math.sin(1 * om[1]),
    Math.cos(1 * om[0]),
    Math.cos(1 * om[1]),
  ];
  for (let i = 0; i < d; i++) expect(row[i]).toBeCloseTo(expected[i], 6);
});

describeBackends('ViT options', () => {
  it('built models count exactly what countViTParams says, for every option', () => {
    for (const extra of [
      { posEmbed: 'learned2d' },
      { posEmbed: 'sincos' },
      { posEmbed: 'none', globalPool: 'avg' },
      { distilled: true, qkNorm: true },
      { dynamicImgSize: true },
    ] as const) {
      const cfg = { ...SMALL, ...extra };
      const m = createViT(cfg);
      expect(m.countParams(), JSON.stringify(extra)).toBe(countViTParams(cfg));
      m.dispose();
    }
  });

  it('sincos: the stored table is MAE’s and is not trained', () => {
    const m = createViT({ ...SMALL, posEmbed: 'sincos' });
    const pos = m.weights.find((w) => w.originalName === 'vit/embed/pos_embed');
    expect(pos?.trainable).toBe(false);
    expect(countTrainableParams(m)).toBe(countViTParams(SMALL) - 17 * 12);
    const expected = sincos2dPosEmbed(12, [4, 4], 1);
    expect(maxAbsDiff(pos?.read() as tf.Tensor, [...expected])).toBe(0);
    m.dispose();
  });

  it('learned2d: patch (i, j) gets row[i] + col[j], the class token nothing', () => {
    const e = new ViTEmbedding({
      numPatches: 6,
      embedDim: 4,
      posEmbed: 'learned2d',
      gridSize: [2, 3],
    });
    const zeros = tf.zeros([1, 6, 4]);
    e.apply(zeros);
    randomizeWeights(e.weights, 3);
    const w = new Map(
      e.weights.map((v) => [v.originalName.split('/').pop(), v.read().arraySync()]),
    );
    const out = (e.apply(zeros) as tf.Tensor).arraySync() as number[][][];
    const cls = (w.get('cls_token') as number[][][])[0][0];
    const row = (w.get('pos_embed_row') as number[][][])[0];
    const col = (w.get('pos_embed_col') as number[][][])[0];
    expect(out[0][0].map((v, k) => v - cls[k]).every((v) => Math.abs(v) < 1e-6)).toBe(true);
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 3; j++)
        for (let k = 0; k < 4; k++)
          expect(out[0][1 + i * 3 + j][k]).toBeCloseTo(row[i][k] + col[j][k], 5);
    tf.dispose(zeros);
  });

  it('DeiT: call averages the two heads; forwardDistillation returns both; names are timm’s', () => {
    const m = createViT({ ...SMALL, distilled: true });
    randomizeWeights(m.weights, 11);
    const vit = vitOf(m);
    const names = m.weights.map((w) => w.originalName);
    expect(names.slice(2, 5)).toEqual([
      'vit/embed/cls_token',
      'vit/embed/dist_token',
      'vit/embed/pos_embed',
    ]);
    expect(names.slice(-2)).toEqual(['vit/head_dist/kernel', 'vit/head_dist/bias']);
    const x = tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 4);
    const y = m.predict(x) as tf.Tensor;
    const { logits, distLogits } = vit.forwardDistillation(x);
    expect(logits.shape).toEqual([2, 5]);
    expect(maxAbsDiff(logits, distLogits)).toBeGreaterThan(1e-3);
    const mean = tf.div(tf.add(logits, distLogits), 2);
    expect(maxAbsDiff(y, mean)).toBeLessThan(1e-5);
    expect(() => vitOf(createViT(SMALL)).forwardDistillation(x)).toThrow(/needs distilled: true/);
    // Without classes: the pooled features are the mean of the two normed tokens.
    const f = new VisionTransformer({ ...SMALL, numClasses: 0, distilled: true });
    const pooled = f.apply(x) as tf.Tensor;
    const toks = f.forwardFeatures(x);
    const ref = tf.div(
      tf.add(tf.slice(toks, [0, 0, 0], [-1, 1, -1]), tf.slice(toks, [0, 1, 0], [-1, 1, -1])),
      2,
    );
    expect(maxAbsDiff(pooled, tf.reshape(ref, [2, 12]))).toBeLessThan(1e-6);
    tf.dispose([x, y, logits, distLogits, mean, pooled, toks, ref]);
    m.dispose();
  });

  it('forwardIntermediates: tokens or NHWC maps of chosen blocks, consistent with forwardFeatures', () => {
    const m = createViT({ ...SMALL, depth: 3, distilled: true });
    randomizeWeights(m.weights, 12);
    const vit = vitOf(m);
    const x = tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 5);
    const before = tf.memory().numTensors;
    const feats = vit.forwardFeatures(x);
    const last = vit.forwardIntermediates(x, { indices: [-1], output: 'tokens', norm: true });
    expect(last.blocks).toEqual([2]);
    expect(maxAbsDiff(last.intermediates[0], feats)).toBe(0);
    const maps = vit.forwardIntermediates(x, { indices: 2 });
    expect(maps.blocks).toEqual([1, 2]);
    expect(maps.grid).toEqual([4, 4]);
    expect(maps.intermediates.map((t) => t.shape)).toEqual([
      [2, 4, 4, 12],
      [2, 4, 4, 12],
    ]);
    const toks = vit.forwardIntermediates(x, { indices: [1], output: 'tokens' });
    // NHWC = the patch tokens (after cls and dist) laid out row-major on the grid.
    const patches = tf.tidy(() =>
      tf.reshape(tf.slice(toks.intermediates[0], [0, 2, 0], [-1, -1, -1]), [2, 4, 4, 12]),
    );
    expect(maxAbsDiff(maps.intermediates[0], patches)).toBe(0);
    expect(maxAbsDiff(maps.intermediates[1], maps.intermediates[0])).toBeGreaterThan(1e-3);
    tf.dispose([
      feats,
      patches,
      ...last.intermediates,
      ...maps.intermediates,
      ...toks.intermediates,
    ]);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => vit.forwardIntermediates(x, { indices: [3] })).toThrow(
      /block indices must be integers in \[-3, 2\], got 3/,
    );
    expect(() => vit.forwardIntermediates(x, { indices: 0 })).toThrow(
      /last n blocks, n in \[1, 3\]/,
    );
    expect(() => vit.forwardIntermediates(x, { output: 'nchw' as never })).toThrow(
      /output must be 'tokens' or 'nhwc', got "nchw"/,
    );
    x.dispose();
    m.dispose();
  });

  it('dynamicImgSize: same numbers at the built size, other sizes the patch divides, clear errors', () => {
    const m = createViT({ ...SMALL, dynamicImgSize: true });
    const s = createViT(SMALL);
    randomizeWeights(m.weights, 13);
    s.setWeights(m.getWeights());
    const x = tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 6);
    const [a, b] = [m.predict(x) as tf.Tensor, s.predict(x) as tf.Tensor];
    expect(maxAbsDiff(a, b)).toBe(0);
    const big = tf.randomNormal([1, 24, 32, 3], 0, 1, 'float32', 7);
    const yb = m.predict(big) as tf.Tensor;
    expect(yb.shape).toEqual([1, 5]);
    const maps = vitOf(m).forwardIntermediates(big, { indices: [0] });
    expect(maps.grid).toEqual([6, 8]);
    expect(maps.intermediates[0].shape).toEqual([1, 6, 8, 12]);
    const bad = tf.zeros([1, 18, 16, 3]);
    expect(() => m.predict(bad)).toThrow(InputShapeError);
    expect(() => m.predict(bad)).toThrow(
      /image size \[18, 16\] must be divisible by patchSize \[4, 4\]/,
    );
    expect(() => s.predict(big)).toThrow(/expected image to have shape \[null,16,16,3\]/);
    tf.dispose([x, a, b, big, yb, bad, ...maps.intermediates]);
    m.dispose();
    s.dispose();
  });

  it('every option survives a save / load round trip (config and outputs)', async () => {
    const cfg = {
      ...SMALL,
      posEmbed: 'learned2d',
      distilled: true,
      qkNorm: true,
      dynamicImgSize: true,
    } as const;
    const m = createViT(cfg);
    randomizeWeights(m.weights, 14);
    let artifacts: tf.io.ModelArtifacts | undefined;
    await m.save(
      tf.io.withSaveHandler(async (art) => {
        artifacts = art;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const m2 = await tfl.loadLayersModel(tf.io.fromMemory(artifacts as tf.io.ModelArtifacts));
    const c = m2.layers[1].getConfig();
    expect([c.posEmbed, c.distilled, c.qkNorm, c.dynamicImgSize]).toEqual([
      'learned2d',
      true,
      true,
      true,
    ]);
    const x = tf.randomNormal([1, 20, 12, 3], 0, 1, 'float32', 8);
    const [y1, y2] = [m.predict(x) as tf.Tensor, m2.predict(x) as tf.Tensor];
    expect(maxAbsDiff(y1, y2)).toBe(0);
    tf.dispose([x, y1, y2]);
    m.dispose();
    m2.dispose();
  });

  it('timm keys: dist_token, head_dist, attn.q_norm / k_norm; export -> config -> load round trip', () => {
    const cfg = { ...SMALL, distilled: true, qkNorm: true } as const;
    const m = createViT(cfg);
    randomizeWeights(m.weights, 15);
    const bytes = exportWeights(m, { to: 'timm' });
    const file = readSafetensors(bytes);
    const keys = [...file.tensors.keys()];
    for (const k of [
      'dist_token',
      'head_dist.weight',
      'head_dist.bias',
      'blocks.1.attn.q_norm.weight',
      'blocks.0.attn.k_norm.bias',
    ])
      expect(keys).toContain(k);
    expect(file.tensors.get('blocks.0.attn.q_norm.weight')?.shape).toEqual([4]);
    expect(file.tensors.get('pos_embed')?.shape).toEqual([1, 18, 12]);
    const inferred = vitConfigFromCheckpoint(file, { from: 'timm', numHeads: 3 });
    expect(inferred).toMatchObject({ distilled: true, qkNorm: true, imgSize: 16, embedDim: 12 });
    const m2 = createViT(inferred);
    loadPretrained(m2, file, { from: 'timm' });
    const x = tf.randomNormal([1, 16, 16, 3], 0, 1, 'float32', 9);
    const [y1, y2] = [m.predict(x) as tf.Tensor, m2.predict(x) as tf.Tensor];
    expect(maxAbsDiff(y1, y2)).toBe(0);
    expect(() => exportWeights(m, { to: 'torchvision' })).toThrow(
      /no distillation token.*no qk-norm/,
    );
    const m3 = createViT({ ...SMALL, posEmbed: 'learned2d' });
    const f3 = readSafetensors(exportWeights(m3, { to: 'timm' }));
    expect(f3.tensors.get('pos_embed_row')?.shape).toEqual([1, 4, 12]);
    expect(vitConfigFromCheckpoint(f3, { from: 'timm', numHeads: 3 }).posEmbed).toBe('learned2d');
    tf.dispose([x, y1, y2]);
    for (const mm of [m, m2, m3]) mm.dispose();
  });

  it("DeiT with the training kit: freeze 'head' covers head_dist, resetClassifier resets both", () => {
    const m = createViT({ ...SMALL, distilled: true });
    freeze(m, ['patchEmbed', 'embed', 'blocks', 'norm']);
    expect(countTrainableParams(m)).toBe(2 * 65);
    freeze(m, 'head');
    expect(countTrainableParams(m)).toBe(0);
    const r = resetClassifier(m, 3);
    expect(r.countParams()).toBe(countViTParams({ ...SMALL, distilled: true, numClasses: 3 }));
    const names = r.weights.map((w) => w.originalName);
    expect(names).toContain('vit/head_dist/kernel');
    m.dispose();
    r.dispose();
  });

  it('DeiT recipe (docs/vit-options.md): AdamW steps on hardDistillationLoss train the student only', () => {
    const teacher = createViT(SMALL, {}, { seed: 1 });
    const student = createViT({ ...SMALL, distilled: true }, {}, { seed: 2 });
    const vit = vitOf(student);
    const x = tf.randomNormal([8, 16, 16, 3], 0, 1, 'float32', 3);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 0, 1, 2], 'int32'), 5);
    const teacherLogits = teacher.predict(x) as tf.Tensor;
    const teacherBefore = teacher.weights.map((w) => w.read().dataSync().slice());
    const optimizer = adamw({ learningRate: 1e-2 });
    const vars = student.trainableWeights.map((w) => w.read() as tf.Variable);
    const losses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const loss = optimizer.minimize(
        () => {
          const { logits, distLogits } = vit.forwardDistillation(x, { training: true });
          return hardDistillationLoss(y, logits, distLogits, teacherLogits, {
            labelSmoothing: 0.1,
          });
        },
        true,
        vars,
      ) as tf.Scalar;
      losses.push(loss.dataSync()[0]);
      loss.dispose();
    }
    expect(losses[7]).toBeLessThan(0.7 * losses[0]);
    teacher.weights.forEach((w, i) => {
      expect(
        Buffer.from(w.read().dataSync().buffer).equals(Buffer.from(teacherBefore[i].buffer)),
      ).toBe(true);
    });
    // The distillation head now follows the teacher's argmax on this batch.
    const { distLogits } = vit.forwardDistillation(x);
    const agree = tf.tidy(() =>
      tf.sum(tf.cast(tf.equal(tf.argMax(distLogits, -1), tf.argMax(teacherLogits, -1)), 'int32')),
    );
    expect(agree.dataSync()[0]).toBeGreaterThanOrEqual(7);
    tf.dispose([x, y, teacherLogits, distLogits, agree]);
    optimizer.dispose();
    teacher.dispose();
    student.dispose();
  });

  it('gradients reach every option weight (qk-norm, 2-D tables resized at another size, dist token)', () => {
    for (const posEmbed of ['learned2d', 'learned'] as const) {
      const m = createViT({
        ...SMALL,
        posEmbed,
        qkNorm: true,
        distilled: true,
        dynamicImgSize: true,
      });
      randomizeWeights(m.weights, 16);
      const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
      const x = tf.randomNormal([2, 20, 12, 3], 0, 1, 'float32', 10);
      const { value, grads } = tf.variableGrads(
        () => tf.sum(tf.square(m.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar,
        vars,
      );
      for (const w of m.trainableWeights) {
        const g = grads[(w.read() as tf.Variable).name];
        expect(g, w.originalName).toBeDefined();
        const size = tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]);
        expect(Number.isFinite(size) && size > 0, `${posEmbed} ${w.originalName}`).toBe(true);
      }
      tf.dispose([x, value, ...Object.values(grads)]);
      m.dispose();
    }
  });

  it('attention maps and rollout follow the input grid with dynamicImgSize (DeiT: 2 prefix tokens)', () => {
    const m = createViT({ ...SMALL, dynamicImgSize: true, distilled: true });
    const x = tf.randomNormal([1, 24, 12, 3], 0, 1, 'float32', 11);
    const maps = attentionMaps(m, x, { layers: [-1] });
    expect(maps.shape).toEqual([1, 1, 6, 3]);
    // Class-token attention over the 18 patches (prefix tokens skipped): a part of the row's mass.
    const total = tf.tidy(() => tf.sum(maps).dataSync()[0]);
    expect(total).toBeGreaterThan(0.05);
    expect(total).toBeLessThan(1);
    const rollout = attentionRollout(m, x);
    expect(rollout.shape).toEqual([1, 6, 3]);
    expect(() => attentionMaps(m, tf.zeros([1, 22, 12, 3]))).toThrow(
      /attentionMaps: images must have shape \[B, H, W, 3\] with H divisible by 4 and W by 4.*got \[1, 22, 12, 3\]/,
    );
    tf.dispose([x, maps, rollout]);
    m.dispose();
  });
});
