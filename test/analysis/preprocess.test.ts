import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { IMAGENET_NORMALIZATION, preprocess, preprocessPixels } from '../../src/index';
import { describeBackends, maxAbsDiff } from '../helpers/backends';

describeBackends('preprocess', () => {
  it('resizes the shorter side to floor(size / 0.875), center-crops, normalises', () => {
    const before = tf.memory().numTensors;
    const img = tf.randomUniform([300, 400, 3], 0, 255, 'int32', 1);
    const x = preprocess(img, { size: 224 });
    expect(x.shape).toEqual([1, 224, 224, 3]);
    // Same steps by hand: 300x400 -> 256x341 (torchvision int(256 * 400 / 300)),
    // crop offsets round((256-224)/2) = 16 and round((341-224)/2) = round(58.5) = 58 (half to even).
    const ref = tf.tidy(() => {
      const r = tf.image.resizeBilinear(
        tf.cast(tf.expandDims(img, 0), 'float32') as tf.Tensor4D,
        [256, 341],
        false,
        true,
      );
      const c = tf.slice(r, [0, 16, 58, 0], [1, 224, 224, 3]);
      return tf.div(
        tf.sub(tf.div(c, 255), IMAGENET_NORMALIZATION.mean),
        IMAGENET_NORMALIZATION.std,
      );
    });
    expect(maxAbsDiff(x, ref)).toBeLessThan(1e-5);
    tf.dispose([img, x, ref]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a preset name picks its normalization; null keeps [0, 1]; resizeShorter overrides', () => {
    const img = tf.fill([32, 32, 3], 255, 'int32');
    const augreg = preprocess(img, { size: 16, normalization: 'vit_base_patch16_224' }); // (1 - 0.5) / 0.5
    expect(maxAbsDiff(augreg, new Array(16 * 16 * 3).fill(1))).toBeLessThan(1e-6);
    const plain = preprocess(img, {
      size: 16,
      resizeShorter: 16,
      normalization: null,
      channels: 1,
    });
    expect(plain.shape).toEqual([1, 16, 16, 1]);
    expect(maxAbsDiff(plain, new Array(16 * 16).fill(1))).toBeLessThan(1e-6);
    tf.dispose([img, augreg, plain]);
  });

  it('exact pixel values for a tiny center crop without resizing', () => {
    // 1x4 grey ramp, crop width 2 from resizeShorter 1 (no resize): offset round((4-2)/2) = 1.
    const img = tf.tensor3d([[[0], [51], [102], [255]]], [1, 4, 1], 'int32');
    const x = preprocess(img, { size: [1, 2], resizeShorter: 1, normalization: null, channels: 1 });
    expect(maxAbsDiff(x, [51 / 255, 102 / 255])).toBeLessThan(1e-6);
    tf.dispose([img, x]);
  });

  it('preprocessPixels reads {data, width, height} through tf.browser.fromPixels', () => {
    const data = new Uint8Array(8 * 8 * 4).fill(255);
    const x = preprocessPixels(
      { data, width: 8, height: 8 },
      { size: 8, resizeShorter: 8, normalization: null },
    );
    expect(x.shape).toEqual([1, 8, 8, 3]);
    expect(maxAbsDiff(x, new Array(8 * 8 * 3).fill(1))).toBeLessThan(1e-6);
    x.dispose();
  });

  it('throws clear errors', () => {
    const bad = tf.zeros([10, 10]);
    expect(() => preprocess(bad)).toThrow(
      /image must have shape \[H, W, C\] or \[B, H, W, C\].*got \[10, 10\]/,
    );
    const img = tf.zeros([10, 10, 3]);
    expect(() => preprocess(img, { size: 16, resizeShorter: 8 })).toThrow(/smaller than the crop/);
    expect(() => preprocess(img, { normalization: 'vit_nonexistent' })).toThrow(/vit_nonexistent/);
    expect(() => preprocess(img, { cropPct: 0 })).toThrow(/cropPct must be a number in \(0, 1\]/);
    tf.dispose([bad, img]);
  });
});
