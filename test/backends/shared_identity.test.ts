import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { restoreIdentityKernel, shareIdentityStorage } from '../../src/backends/shared_identity';
import { describeBackends } from '../helpers/backends';

describeBackends('shared Identity kernel', (backend) => {
  it('is installed on wasm only, and a clone outlives its source with the same values', async () => {
    const installed = shareIdentityStorage(backend);
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

  it('shares storage on wasm: the clone is the same heap buffer, not a copy', () => {
    if (backend !== 'wasm') return;
    shareIdentityStorage(backend);
    const x = tf.tensor1d([7, 8, 9]);
    const y = tf.clone(x);
    expect(y.dataId).toBe(x.dataId);
    restoreIdentityKernel(backend);
    const z = tf.clone(x);
    expect(z.dataId).not.toBe(x.dataId);
    shareIdentityStorage(backend);
    tf.dispose([x, y, z]);
  });
});
