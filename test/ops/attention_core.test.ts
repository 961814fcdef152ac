import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { InputShapeError } from '../../src/errors';
import { multiHeadAttentionCore } from '../../src/ops/attention_core';
import { describeBackends, seededValues } from '../helpers/backends';

/** The core on a fused qkv `[B * N, 3D]`, split the way the layer splits its weights. */
function fusedQkvAttention(qkv: tf.Tensor2D, b: number, n: number, h: number, scale: number) {
  return tf.tidy(() => {
    const [q, k, v] = tf.split(qkv, 3, 1) as tf.Tensor2D[];
    return multiHeadAttentionCore(q, k, v, b, n, h, scale);
  });
}

/** max |a - b| / max |b|. */
function relMax(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(
    () => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / tf.max(tf.abs(b)).dataSync()[0],
  );
}

/**
 * The textbook formulation with tfjs' own ops and autodiff: split qkv, heads forward,
 * softmax(q k^T * scale) v per head, heads merged back. Rank-4 products are broadcast-free
 * (equal batch shapes), so tfjs' matMul gradient is correct for them.
 */
function reference(qkv: tf.Tensor2D, b: number, n: number, h: number, scale: number): tf.Tensor2D {
  const dim = qkv.shape[1] / 3;
  const hd = dim / h;
  const [q, k, v] = tf
    .split(qkv, 3, 1)
    .map((t) => tf.transpose(tf.reshape(t, [b, n, h, hd]), [0, 2, 1, 3]));
  const probs = tf.softmax(tf.mul(tf.matMul(q, k, false, true), scale));
  const ctx = tf.matMul(probs, v);
  return tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [b * n, dim]);
}

const CASES: Array<[number, number, number, number]> = [
  // batch, tokens, heads, head dim: odd sizes, B = 1 (no batch transposes), one head
  [2, 5, 3, 4],
  [1, 7, 2, 3],
  [3, 4, 1, 6],
];

describeBackends('multiHeadAttentionCore', () => {
  for (const [b, n, h, hd] of CASES) {
    it(`equals the plain formulation, forward and gradient (B ${b}, N ${n}, H ${h}, hd ${hd})`, () => {
      const before = tf.memory().numTensors;
      const rows = b * n;
      const width = 3 * h * hd;
      const qkv = tf.tensor2d(seededValues(rows * width, 7 + b + n), [rows, width]);
      // A weighting of the output, so the gradient is not the same for every entry.
      const w = tf.tensor2d(seededValues(rows * h * hd, 11), [rows, h * hd]);
      const scale = 1 / Math.sqrt(hd);
      const fast = fusedQkvAttention(qkv, b, n, h, scale);
      const ref = tf.tidy(() => reference(qkv, b, n, h, scale));
      expect(fast.shape).toEqual([rows, h * hd]);
      expect(relMax(fast, ref)).toBeLessThan(1e-5);
      const loss = (f: (x: tf.Tensor2D) => tf.Tensor2D) => (x: tf.Tensor) =>
        tf.sum(tf.mul(f(x as tf.Tensor2D), w));
      const gFast = tf.grad(loss((x) => fusedQkvAttention(x, b, n, h, scale)))(qkv);
      const gRef = tf.grad(loss((x) => reference(x, b, n, h, scale)))(qkv);
      expect(gFast.shape).toEqual([rows, width]);
      // Every part (q, k, v columns) gets a non-zero gradient, and it is the reference's.
      const parts = tf.tidy(() =>
        tf.split(gFast, 3, 1).map((t) => tf.max(tf.abs(t)).dataSync()[0]),
      );
      for (const m of parts) expect(m).toBeGreaterThan(1e-4);
      expect(relMax(gFast, gRef)).toBeLessThan(1e-5);
      tf.dispose([qkv, w, fast, ref, gFast, gRef]);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('names the expected layout when q, k, v do not fit batch, tokens and heads', () => {
    const q = tf.zeros([10, 6]) as tf.Tensor2D;
    const k5 = tf.zeros([5, 6]) as tf.Tensor2D;
    expect(() => multiHeadAttentionCore(q, q, q, 2, 4, 3, 1)).toThrow(InputShapeError);
    expect(() => multiHeadAttentionCore(q, q, q, 2, 5, 4, 1)).toThrow(/q \[10, 6\]/);
    expect(() => multiHeadAttentionCore(q, k5, q, 2, 5, 3, 1)).toThrow(/k \[5, 6\]/);
    tf.dispose([q, k5]);
  });
});
