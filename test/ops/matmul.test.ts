import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { InputShapeError } from '../../src/errors';
import { MultiHeadAttention } from '../../src/layers/attention';
import { MLP } from '../../src/layers/mlp';
import {
  batchMatMul,
  depthwiseBatchMatMul,
  fastBatchMatMul,
  fastLinear2D,
  linear,
  productForm,
  setProductForm,
} from '../../src/ops/matmul';
import { describeBackends, seededValues } from '../helpers/backends';

/** max |a - b| / max |b|: a relative error that does not blow up on entries near zero. */
function relMax(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(
    () => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / tf.max(tf.abs(b)).dataSync()[0],
  );
}

function seeded(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(
    seededValues(
      shape.reduce((p, d) => p * d, 1),
      seed,
    ),
    shape,
  );
}

/** Runs `fn` and checks it left no tensor behind. */
function noLeak(fn: () => void): void {
  const before = tf.memory().numTensors;
  fn();
  expect(tf.memory().numTensors).toBe(before);
}

describe('productForm', () => {
  afterEach(() => {
    setProductForm('cpu', null);
  });
  it('is fast on wasm and native elsewhere by default, and can be overridden', () => {
    expect(productForm('wasm')).toBe('fast');
    expect(productForm('cpu')).toBe('native');
    expect(productForm('webgl')).toBe('native');
    setProductForm('cpu', 'fast');
    expect(productForm('cpu')).toBe('fast');
    setProductForm('cpu', null);
    expect(productForm('cpu')).toBe('native');
    expect(() => setProductForm('cpu', 'quick' as never)).toThrow(/form must be/);
  });
});

describeBackends('fast matrix products', () => {
  it('fastLinear2D: value and gradients equal tf.grads of x.W + b (odd shapes, with and without bias)', () => {
    noLeak(() => {
      for (const [m, k, n] of [
        [7, 5, 3],
        [1, 13, 9],
        [33, 17, 1],
      ]) {
        const x = seeded([m, k], 1);
        const w = seeded([k, n], 2);
        const b = seeded([n], 3);
        const dy = seeded([m, n], 4);
        const plain = (xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) =>
          tf.mul(tf.add(tf.matMul(xi as tf.Tensor2D, wi as tf.Tensor2D), bi), dy);
        const fast = (xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) =>
          tf.mul(fastLinear2D(xi as tf.Tensor2D, wi as tf.Tensor2D, bi as tf.Tensor1D), dy);
        const ref = tf.grads(plain)([x, w, b]);
        const got = tf.grads(fast)([x, w, b]);
        for (let i = 0; i < 3; i++) {
          expect(got[i].shape).toEqual(ref[i].shape);
          expect(relMax(got[i], ref[i])).toBeLessThan(1e-5);
        }
        const refNoBias = tf.grads((xi: tf.Tensor, wi: tf.Tensor) =>
          tf.mul(tf.matMul(xi as tf.Tensor2D, wi as tf.Tensor2D), dy),
        )([x, w]);
        const gotNoBias = tf.grads((xi: tf.Tensor, wi: tf.Tensor) =>
          tf.mul(fastLinear2D(xi as tf.Tensor2D, wi as tf.Tensor2D), dy),
        )([x, w]);
        for (let i = 0; i < 2; i++) expect(relMax(gotNoBias[i], refNoBias[i])).toBeLessThan(1e-5);
        const yRef = tf.tidy(() => tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b));
        const y = fastLinear2D(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D);
        expect(relMax(y, yRef)).toBeLessThan(1e-6);
        tf.dispose([x, w, b, dy, ...ref, ...got, ...refNoBias, ...gotNoBias, yRef, y]);
      }
    });
  });

  it('fastBatchMatMul: value and gradients equal tf.matMul for every transpose combination', () => {
    noLeak(() => {
      for (const [batch, m, k, n] of [
        [3, 5, 7, 4],
        [1, 6, 3, 5],
        [4, 1, 9, 2],
      ]) {
        for (const ta of [false, true]) {
          for (const tb of [false, true]) {
            const a = seeded(ta ? [batch, k, m] : [batch, m, k], 10 + batch);
            const b = seeded(tb ? [batch, n, k] : [batch, k, n], 20 + m);
            const dy = seeded([batch, m, n], 30 + n);
            const plain = (ai: tf.Tensor, bi: tf.Tensor) =>
              tf.mul(tf.matMul(ai as tf.Tensor3D, bi as tf.Tensor3D, ta, tb), dy);
            const fast = (ai: tf.Tensor, bi: tf.Tensor) =>
              tf.mul(fastBatchMatMul(ai as tf.Tensor3D, bi as tf.Tensor3D, ta, tb), dy);
            const yRef = tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D, ta, tb);
            const y = fastBatchMatMul(a as tf.Tensor3D, b as tf.Tensor3D, ta, tb);
            expect(y.shape).toEqual([batch, m, n]);
            expect(relMax(y, yRef)).toBeLessThan(1e-6);
            const ref = tf.grads(plain)([a, b]);
            const got = tf.grads(fast)([a, b]);
            for (let i = 0; i < 2; i++) {
              expect(got[i].shape).toEqual(ref[i].shape);
              expect(relMax(got[i], ref[i])).toBeLessThan(1e-5);
            }
            tf.dispose([a, b, dy, yRef, y, ...ref, ...got]);
          }
        }
      }
    });
  });

  it('depthwiseBatchMatMul equals tf.matMul on attention-like shapes', () => {
    noLeak(() => {
      const q = seeded([6, 17, 8], 5) as tf.Tensor3D;
      const k = seeded([6, 17, 8], 6) as tf.Tensor3D;
      const yRef = tf.matMul(q, k, false, true);
      const y = depthwiseBatchMatMul(q, k, false, true);
      expect(relMax(y, yRef)).toBeLessThan(1e-6);
      tf.dispose([q, k, yRef, y]);
    });
  });

  it('linear and batchMatMul: the fast and native forms agree, on rank-3 input too', () => {
    const backend = tf.getBackend();
    const previous = productForm(backend);
    try {
      noLeak(() => {
        const x = seeded([2, 5, 6], 7);
        const w = seeded([6, 3], 8);
        const b = seeded([3], 9);
        const run = (form: 'fast' | 'native') => {
          setProductForm(backend, form);
          return tf.tidy(() => {
            const f = (xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) =>
              tf.sum(tf.square(linear(xi, wi, bi)));
            const g = tf.grads(f)([x, w, b]);
            return [linear(x, w, b), ...g];
          });
        };
        const fast = run('fast');
        const native = run('native');
        expect(fast[0].shape).toEqual([2, 5, 3]);
        for (let i = 0; i < 4; i++) expect(relMax(fast[i], native[i])).toBeLessThan(1e-5);
        tf.dispose([x, w, b, ...fast, ...native]);
      });
    } finally {
      setProductForm(backend, previous);
    }
  });

  it('MultiHeadAttention and MLP: weight gradients in the fast form equal the native ones', () => {
    const backend = tf.getBackend();
    const previous = productForm(backend);
    const attn = new MultiHeadAttention({ dim: 12, numHeads: 3 });
    const mlp = new MLP({ inFeatures: 12, hiddenFeatures: 20 });
    const x = seeded([2, 7, 12], 11);
    attn.apply(tf.zeros([1, 7, 12]));
    mlp.apply(tf.zeros([1, 7, 12]));
    const vars = [...attn.trainableWeights, ...mlp.trainableWeights].map(
      (v) => (v as unknown as { val: tf.Variable }).val,
    );
    const run = (form: 'fast' | 'native') => {
      setProductForm(backend, form);
      const { value, grads } = tf.variableGrads(
        () =>
          tf.sum(
            tf.square(mlp.apply(attn.apply(x, { training: true }) as tf.Tensor) as tf.Tensor),
          ) as tf.Scalar,
        vars,
      );
      return [value, ...vars.map((v) => grads[v.name])];
    };
    try {
      const native = run('native');
      const before = tf.memory().numTensors;
      const fast = run('fast');
      expect(tf.memory().numTensors - before).toBe(fast.length);
      expect(fast.length).toBe(1 + 8);
      for (let i = 0; i < fast.length; i++) expect(relMax(fast[i], native[i])).toBeLessThan(1e-5);
      tf.dispose([...fast, ...native, x]);
    } finally {
      setProductForm(backend, previous);
      attn.dispose();
      mlp.dispose();
    }
  });

  it('rejects bad shapes with InputShapeError naming the argument', () => {
    const a = tf.zeros([2, 3, 4]) as tf.Tensor3D;
    const b = tf.zeros([2, 5, 6]) as tf.Tensor3D;
    expect(() => batchMatMul(a, b)).toThrow(InputShapeError);
    expect(() => batchMatMul(a, b)).toThrow(/inner dimensions must agree.*got 4 and 5/);
    expect(() => fastBatchMatMul(a, tf.zeros([3, 4, 2]) as tf.Tensor3D)).toThrow(
      /batch sizes must agree/,
    );
    expect(() => linear(tf.zeros([4]), tf.zeros([4, 2]))).toThrow(/x must have rank >= 2/);
    expect(() => fastLinear2D(a as never, tf.zeros([4, 2]) as tf.Tensor2D)).toThrow(
      /x must be a rank-2 tensor, got rank 3/,
    );
    tf.dispose([a, b]);
  });
});
