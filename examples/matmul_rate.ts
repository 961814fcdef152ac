/**
 * The load indicator every timing in bench/ and examples/ is printed next to: the rate of one
 * square tf.matMul on the active backend. One copy for Node and the browser (it only needs
 * tfjs-core), so the bench, the experiments and the pages measure it the same way.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Median of a list of numbers (the upper middle for an even count). */
export const median = (xs: readonly number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/**
 * GFLOP/s of an `n x n` tf.matMul on the active backend: wall-clock median of 5 after one
 * warm-up, read with `await data()` (webgpu has no synchronous read). `n` defaults to 1024, 512 on
 * cpu (about 0.3 GFLOP/s there; the same rate in 1/8 of the time). No `tf.tidy` around the read:
 * tidy walks a returned TypedArray element by element looking for tensors (~2 s for 1M floats),
 * which once made this indicator read ~20x too low.
 */
export async function matMulGflops(n = tf.getBackend() === 'cpu' ? 512 : 1024): Promise<number> {
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  const once = async () => {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
    return performance.now() - t0;
  };
  try {
    await once();
    const times: number[] = [];
    for (let i = 0; i < 5; i++) times.push(await once());
    return (2 * n ** 3) / (median(times) / 1000) / 1e9;
  } finally {
    tf.dispose([a, b]);
  }
}
