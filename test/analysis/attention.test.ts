import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  attentionMaps,
  createViT,
  findVisionTransformer,
  getAttention,
  mapsFromAttentions,
  VisionTransformer,
} from '../../src/index';
import { describeBackends, maxAbsDiff } from '../helpers/backends';

/** Reads A[b, h, i, j] from a downloaded [B, H, N, N] array. */
function at(a: Float32Array, shape: number[], b: number, h: number, i: number, j: number): number {
  const [, H, N] = shape;
  return a[((b * H + h) * N + i) * N + j];
}

describeBackends('attention maps', () => {
  // Tiny non-square ViT: 16x24 images, 8 px patches -> 2x3 grid, class token + 2 registers.
  let model: LayersModel;
  let images: tf.Tensor4D;
  beforeAll(() => {
    model = createViT({
      imgSize: [16, 24],
      patchSize: 8,
      embedDim: 16,
      depth: 3,
      numHeads: 2,
      numClasses: 5,
      numRegTokens: 2,
    });
    images = tf.randomUniform([2, 16, 24, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
  });
  afterAll(() => {
    images.dispose();
    model.dispose();
  });

  it('getAttention returns [B, heads, N, N] per block from a model or the layer', () => {
    const before = tf.memory().numTensors;
    const r = getAttention(model, images, { blocks: [2, 0, -1] });
    expect(r.blocks).toEqual([0, 2]);
    expect(r.attentions.map((a) => a.shape)).toEqual([
      [2, 2, 9, 9],
      [2, 2, 9, 9],
    ]);
    expect(r.logits.shape).toEqual([2, 5]);
    // Softmax rows sum to 1.
    const sums = tf.sum(r.attentions[1], -1);
    expect(maxAbsDiff(sums, new Array(sums.size).fill(1))).toBeLessThan(1e-5);
    sums.dispose();
    const vit = findVisionTransformer(model);
    expect(vit).toBeInstanceOf(VisionTransformer);
    const again = getAttention(vit, images);
    expect(again.blocks).toEqual([0, 1, 2]);
    // Same weights, same path: the layer and the model give the same maps and logits.
    expect(maxAbsDiff(again.attentions[2], r.attentions[1])).toBe(0);
    const predicted = model.predict(images) as tf.Tensor;
    expect(maxAbsDiff(again.logits, predicted)).toBeLessThan(1e-5);
    tf.dispose([...r.attentions, r.logits, ...again.attentions, again.logits, predicted]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('class-token maps equal the raw attention row 0 over the patch tokens (hand slice)', () => {
    const r = getAttention(model, images, { blocks: [1] });
    const raw = r.attentions[0].dataSync() as Float32Array;
    const shape = r.attentions[0].shape;
    const before = tf.memory().numTensors;
    const mean = attentionMaps(model, images, { layers: [1] });
    const max = attentionMaps(model, images, { layers: [1], heads: 'max' });
    const head1 = attentionMaps(model, images, { layers: [1], heads: 1 });
    expect(mean.shape).toEqual([2, 1, 2, 3]);
    const P = 3; // class token + 2 registers
    const exp = { mean: [] as number[], max: [] as number[], head1: [] as number[] };
    for (let b = 0; b < 2; b++) {
      for (let p = 0; p < 6; p++) {
        const h0 = at(raw, shape, b, 0, 0, P + p);
        const h1 = at(raw, shape, b, 1, 0, P + p);
        exp.mean.push((h0 + h1) / 2);
        exp.max.push(Math.max(h0, h1));
        exp.head1.push(h1);
      }
    }
    expect(maxAbsDiff(mean, exp.mean)).toBeLessThan(1e-6);
    expect(maxAbsDiff(max, exp.max)).toBeLessThan(1e-6);
    expect(maxAbsDiff(head1, exp.head1)).toBeLessThan(1e-6);
    tf.dispose([mean, max, head1]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([...r.attentions, r.logits]);
  });

  it('layers come back in the requested order, negative indices from the end', () => {
    const all = attentionMaps(model, images); // [B, 3, 2, 3]
    const picked = attentionMaps(model, images, { layers: [-1, 0] });
    expect(all.shape).toEqual([2, 3, 2, 3]);
    expect(picked.shape).toEqual([2, 2, 2, 3]);
    const last = tf.slice(all, [0, 2, 0, 0], [-1, 1, -1, -1]);
    const first = tf.slice(all, [0, 0, 0, 0], [-1, 1, -1, -1]);
    const p0 = tf.slice(picked, [0, 0, 0, 0], [-1, 1, -1, -1]);
    const p1 = tf.slice(picked, [0, 1, 0, 0], [-1, 1, -1, -1]);
    expect(maxAbsDiff(p0, last)).toBe(0);
    expect(maxAbsDiff(p1, first)).toBe(0);
    tf.dispose([all, picked, last, first, p0, p1]);
  });

  it('throws clear errors on bad inputs', () => {
    expect(() => attentionMaps(model, images, { layers: [3] })).toThrow(
      /attentionMaps: layers entries must be integers in \[-3, 2\] \(the model has 3 blocks\), got 3/,
    );
    expect(() => attentionMaps(model, images, { layers: [] })).toThrow(/non-empty array/);
    expect(() => attentionMaps(model, images, { heads: 2 })).toThrow(
      /heads must be 'mean', 'max' or a head index in \[0, 1\], got 2/,
    );
    const rank3 = tf.zeros([16, 24, 3]);
    expect(() => attentionMaps(model, rank3)).toThrow(
      /images must have shape \[null, 16, 24, 3\].*got \[16, 24, 3\]/,
    );
    const transposed = tf.zeros([1, 24, 16, 3]);
    expect(() => getAttention(model, transposed)).toThrow(/got \[1, 24, 16, 3\]/);
    transposed.dispose();
    expect(() => getAttention({} as LayersModel, images)).toThrow(
      /LayersModel holding one VisionTransformer layer, or that layer itself, got an object/,
    );
    expect(() => attentionMaps(model, images, { reduce: 'sum' as 'cls' })).toThrow(
      /reduce must be 'cls' or 'mean'/,
    );
    rank3.dispose();
  });

  it('mapsFromAttentions on given matrices: cls row vs column mean', () => {
    // B=1, H=1, N=5 (class token + 2x2 grid). Row 0 and the column means computed by hand.
    const a = [
      [0.1, 0.2, 0.3, 0.4, 0.0],
      [0.2, 0.2, 0.2, 0.2, 0.2],
      [0.5, 0.0, 0.0, 0.5, 0.0],
      [0.0, 1.0, 0.0, 0.0, 0.0],
      [0.25, 0.25, 0.25, 0.25, 0.0],
    ];
    const t = tf.tensor4d([[a]]);
    const cls = mapsFromAttentions([t]);
    expect(cls.shape).toEqual([1, 1, 2, 2]);
    expect(maxAbsDiff(cls, [0.2, 0.3, 0.4, 0.0])).toBeLessThan(1e-7);
    const colMean = mapsFromAttentions([t], { reduce: 'mean' });
    const expected = [1, 2, 3, 4].map((j) => a.reduce((s, row) => s + row[j], 0) / 5);
    expect(maxAbsDiff(colMean, expected)).toBeLessThan(1e-7);
    expect(() =>
      mapsFromAttentions([t], { classToken: false, numPrefixTokens: 1, reduce: 'cls' }),
    ).toThrow(/needs a class token/);
    tf.dispose([t, cls, colMean]);
  });
});

describeBackends('attention maps without a class token', () => {
  it("uses the mean attention each patch receives (global pool 'avg')", () => {
    const model = createViT({
      imgSize: [8, 16],
      patchSize: 4,
      embedDim: 8,
      depth: 2,
      numHeads: 2,
      numClasses: 3,
      classToken: false,
      globalPool: 'avg',
    });
    const x = tf.randomUniform([1, 8, 16, 3], 0, 1, 'float32', 3);
    const r = getAttention(model, x, { blocks: [1] });
    expect(r.attentions[0].shape).toEqual([1, 2, 8, 8]); // no prefix tokens: N = 2 x 4 patches
    const raw = r.attentions[0].dataSync() as Float32Array;
    const maps = attentionMaps(model, x, { layers: [1] });
    expect(maps.shape).toEqual([1, 1, 2, 4]);
    const expected: number[] = [];
    for (let j = 0; j < 8; j++) {
      let s = 0;
      for (let h = 0; h < 2; h++)
        for (let i = 0; i < 8; i++) s += at(raw, r.attentions[0].shape, 0, h, i, j);
      expected.push(s / 16);
    }
    expect(maxAbsDiff(maps, expected)).toBeLessThan(1e-6);
    expect(() => attentionMaps(model, x, { reduce: 'cls' })).toThrow(/needs a class token/);
    tf.dispose([x, maps, ...r.attentions, r.logits]);
    model.dispose();
  });
});
