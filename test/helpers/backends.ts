import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe } from 'vitest';

/** Backends every backend-facing suite runs on in Node. A backend that fails to start fails the run. */
export const NODE_BACKENDS = ['cpu', 'wasm'] as const;

/**
 * Repeats a suite once per backend, in the spirit of tfjs' `describeWithFlags(ALL_ENVS)`:
 * the backend is set (and must succeed) before the suite's tests run.
 */
export function describeBackends(name: string, fn: (backend: string) => void, backends: readonly string[] = NODE_BACKENDS): void {
  for (const backend of backends) {
    describe(`${name} [${backend}]`, () => {
      beforeAll(async () => {
        const ok = await tf.setBackend(backend);
        if (!ok || tf.getBackend() !== backend) throw new Error(`backend ${backend} failed to initialize`);
        await tf.ready();
      });
      afterAll(() => {
        tf.disposeVariables();
      });
      fn(backend);
    });
  }
}

/** Max absolute difference between two tensors (or arrays), as a number. */
export function maxAbsDiff(a: tf.Tensor, b: tf.Tensor | number[]): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b instanceof tf.Tensor ? b : tf.tensor(b, a.shape)))).dataSync()[0]);
}

/** Relative L2 error ||a - b|| / ||b||. */
export function relL2(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.div(tf.norm(tf.sub(a, b)), tf.norm(b)).dataSync()[0]);
}
