/**
 * vit-ts' replacements for wasm's copying Identity, Slice and SplitV kernels: installed on wasm
 * only, bit-identical to tfjs' own kernels on many layouts and dtypes, no leaked tensors, and
 * `restoreWasmKernels` puts tfjs' kernels back.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { installWasmKernels, restoreWasmKernels } from '../../src/backends/wasm_kernels';
import { Random } from '../../src/random';
import { describeBackends } from '../helpers/backends';

describeBackends('wasm data-movement kernels', (backend) => {
  it('Identity: installed on wasm only; a clone outlives its source with the same values', async () => {
    const installed = installWasmKernels(backend);
    expect(installed).toBe(backend === 'wasm');
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const y = tf.clone(x);
    x.dispose();
    expect(await y.data()).toEqual(new Float32Array([1, 2, 3, 4, 5, 6]));
    // A gradient that saves its input (square saves x) still sees the right values.
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.square(t)))(y);
    expect(Array.from(await g.data())).toEqual([2, 4, 6, 8, 10, 12]);
    tf.dispose([y, g]);
  });

  it('Identity shares storage on wasm: the clone is the same heap buffer, not a copy', () => {
    if (backend !== 'wasm') return;
    installWasmKernels(backend);
    const x = tf.tensor1d([7, 8, 9]);
    const y = tf.clone(x);
    expect(y.dataId).toBe(x.dataId);
    restoreWasmKernels(backend);
    const z = tf.clone(x);
    expect(z.dataId).not.toBe(x.dataId);
    installWasmKernels(backend);
    tf.dispose([x, y, z]);
  });

  it('Slice: a small case by hand (strided rows of a matrix)', async () => {
    installWasmKernels(backend);
    const x = tf.tensor2d([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [3, 4]);
    const y = tf.slice(x, [1, 1], [2, 2]);
    expect(Array.from(await y.data())).toEqual([5, 6, 9, 10]);
    const z = tf.slice(x, [1, 0], [-1, -1]);
    expect(Array.from(await z.data())).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
    tf.dispose([x, y, z]);
  });

  it('Slice and SplitV equal tfjs own kernels bit for bit on random layouts and dtypes', async () => {
    const rng = new Random(7);
    const int = (lo: number, hi: number) => lo + Math.floor(rng.next() * (hi - lo + 1));
    const cases: { shape: number[]; begin: number[]; size: number[]; dtype: tf.DataType }[] = [];
    for (let c = 0; c < 60; c++) {
      const rank = int(1, 5);
      const shape = Array.from({ length: rank }, () => int(1, 6));
      const begin = shape.map((n) => int(0, n - 1));
      // Sizes: whole remaining extent (-1), a random extent, or zero now and then.
      const size = shape.map((n, d) => {
        const r = rng.next();
        if (r < 0.3) return -1;
        if (r < 0.33) return 0;
        return int(1, n - (begin[d] as number));
      });
      const dtype = (['float32', 'int32', 'bool'] as const)[c % 3] as tf.DataType;
      cases.push({ shape, begin, size, dtype });
    }
    const values = (shape: number[], dtype: tf.DataType) => {
      const n = shape.reduce((a, b) => a * b, 1);
      return tf.tensor(
        Array.from({ length: n }, (_, i) =>
          dtype === 'bool' ? Number(i % 3 === 0) : i * 1.25 - 7,
        ),
        shape,
        dtype,
      );
    };
    const run = (own: boolean) => {
      if (own) restoreWasmKernels(backend);
      else installWasmKernels(backend);
      const before = tf.memory().numTensors;
      const out = cases.map(({ shape, begin, size, dtype }) => {
        const x = values(shape, dtype);
        const s = tf.slice(x, begin, size);
        const axis = shape.length - 1 - ((begin[0] as number) % shape.length);
        const extent = shape[axis] as number;
        const first = Math.floor(extent / 2);
        const parts = tf.split(x, extent > 1 ? [first, -1] : 1, axis);
        const r = {
          slice: { shape: s.shape, data: Array.from(s.dataSync()) },
          split: parts.map((p) => ({ shape: p.shape, data: Array.from(p.dataSync()) })),
        };
        tf.dispose([x, s, ...parts]);
        return r;
      });
      expect(tf.memory().numTensors).toBe(before);
      return out;
    };
    const native = run(true);
    const replaced = run(false);
    expect(replaced).toEqual(native);
  });

  it('SplitV: many parts along the middle axis (attention heads out of a fused qkv)', async () => {
    installWasmKernels(backend);
    const x = tf.reshape(tf.range(0, 2 * 5 * 12), [2, 5, 12]);
    const parts = tf.split(x, [4, 4, 2, 2], 2);
    const expected = [0, 4, 8, 10].map((start, i) =>
      tf.slice(x, [0, 0, start], [-1, -1, [4, 4, 2, 2][i] as number]),
    );
    for (const [i, p] of parts.entries()) {
      expect(p.shape).toEqual(expected[i]?.shape);
      expect(Array.from(await p.data())).toEqual(
        Array.from(await (expected[i] as tf.Tensor).data()),
      );
    }
    tf.dispose([x, ...parts, ...expected]);
  });
});
