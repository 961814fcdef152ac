/**
 * vit-ts' WebAssembly SIMD kernels (src/backends/simd/): fused attention, exact GELU and its
 * gradient, LayerNorm. Registered on wasm only (by the fast product form); each equals the tfjs-op
 * formulation it replaces (the same op with the kernel unregistered), forward and gradient, on
 * sizes that exercise every vector tail; no tensors leak; `restoreWasmKernels` removes them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, expect, it } from 'vitest';
import { FUSED_ATTENTION_KERNEL } from '../../src/backends/simd/attention_kernel';
import { GELU_GRAD_KERNEL, GELU_KERNEL } from '../../src/backends/simd/gelu_kernel';
import { LAYER_NORM_KERNEL } from '../../src/backends/simd/layer_norm_kernel';
import {
  forceSimdCopyMode,
  simdRunsOnTfjsHeap,
  type WasmHeapBackend,
} from '../../src/backends/simd/module';
import { simdKernelReady } from '../../src/backends/simd/register';
import { installWasmKernels, restoreWasmKernels } from '../../src/backends/wasm_kernels';
import { gelu } from '../../src/layers/ops';
import { multiHeadAttentionCore } from '../../src/ops/attention_core';
import { layerNormFast } from '../../src/ops/layer_norm';
import { describeBackends } from '../helpers/backends';

const SIMD_KERNELS = [FUSED_ATTENTION_KERNEL, GELU_KERNEL, GELU_GRAD_KERNEL, LAYER_NORM_KERNEL];

/** Runs `fn` with vit-ts' SIMD kernel `names` unregistered (the tfjs-op formulation). */
function withoutKernels<T>(backend: string, names: string[], fn: () => T): T {
  const saved = names.map((n) => tf.getKernel(n, backend));
  for (const n of names) tf.unregisterKernel(n, backend);
  try {
    return fn();
  } finally {
    for (const k of saved) if (k) tf.registerKernel(k);
  }
}

async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  expect(a.shape).toEqual(b.shape);
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))));
  const v = (await d.data())[0] as number;
  d.dispose();
  return v;
}

describeBackends('WebAssembly SIMD kernels', (backend) => {
  afterAll(() => forceSimdCopyMode(false));

  it('registered on wasm only (fast product form, on first use), removed by restoreWasmKernels', () => {
    installWasmKernels(backend);
    expect(simdKernelReady(FUSED_ATTENTION_KERNEL, backend)).toBe(backend === 'wasm');
    for (const name of SIMD_KERNELS)
      expect(tf.getKernel(name, backend) != null, name).toBe(backend === 'wasm');
    if (backend !== 'wasm') return;
    restoreWasmKernels(backend);
    expect(simdKernelReady(FUSED_ATTENTION_KERNEL, backend)).toBe(false);
    for (const name of SIMD_KERNELS) expect(tf.getKernel(name, backend), name).toBeUndefined();
    installWasmKernels(backend);
    // A forward pass through an op that uses them registers them again.
    const y = gelu(tf.ones([2]));
    y.dispose();
    for (const name of SIMD_KERNELS) expect(tf.getKernel(name, backend), name).toBeDefined();
    // Node's wasm build is single-threaded: the kernels run in place on its heap (no copies).
    forceSimdCopyMode(false);
    expect(simdRunsOnTfjsHeap(tf.backend() as unknown as WasmHeapBackend)).toBe(true);
  });

  // In place on tfjs' heap (Node's wasm build) and on the module's own memory (tfjs' threaded
  // build in browsers, whose memory is shared): both paths, same results.
  for (const mode of ['in place', 'copying'] as const) {
    it(`fused attention equals the depthwise formulation, forward and gradients (${mode})`, async () => {
      if (backend !== 'wasm') return; // the kernels exist only there (first test)
      forceSimdCopyMode(mode === 'copying');
      installWasmKernels(backend);
      expect(simdKernelReady(FUSED_ATTENTION_KERNEL, backend)).toBe(true);
      // [batch, tokens, heads, headDim]: ViT-Ti/16's block, a small ViT, and every tail (tokens
      // not a multiple of 4 or 8, head dims 12 (a 4-wide block), 3 (scalar), a single token).
      const cases = [
        [1, 197, 3, 64],
        [2, 50, 4, 16],
        [3, 5, 2, 12],
        [2, 7, 3, 3],
        [1, 1, 1, 4],
        [2, 33, 2, 8],
      ] as const;
      for (const [b, n, h, hd] of cases) {
        const d = h * hd;
        const before = tf.memory().numTensors;
        const [q, k, v, dy] = [1, 2, 3, 4].map(
          (s) => tf.randomNormal([b * n, d], 0, 1.5, 'float32', s) as tf.Tensor2D,
        ) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        const scale = hd ** -0.5;
        const run = () =>
          tf.tidy(() => {
            const value = multiHeadAttentionCore(q, k, v, b, n, h, scale);
            const grads = tf.grads((a: tf.Tensor, c: tf.Tensor, e: tf.Tensor) =>
              tf.sum(
                tf.mul(
                  multiHeadAttentionCore(
                    a as tf.Tensor2D,
                    c as tf.Tensor2D,
                    e as tf.Tensor2D,
                    b,
                    n,
                    h,
                    scale,
                  ),
                  dy,
                ),
              ),
            )([q, k, v]);
            return [value, ...grads];
          });
        const got = run();
        const want = withoutKernels(backend, [FUSED_ATTENTION_KERNEL], run);
        for (let i = 0; i < 4; i++) {
          const diff = await maxAbsDiff(got[i] as tf.Tensor, want[i] as tf.Tensor);
          expect(diff, `case ${[b, n, h, hd]} output ${i}`).toBeLessThan(5e-6);
        }
        // The probabilities reach the gradient: a wrong layout would not match above; the
        // outputs also differ from zero (a kernel writing nothing would fail here).
        const zero = tf.zerosLike(got[0] as tf.Tensor);
        expect(await maxAbsDiff(got[0] as tf.Tensor, zero)).toBeGreaterThan(0.01);
        zero.dispose();
        tf.dispose([q, k, v, dy, ...got, ...want]);
        expect(tf.memory().numTensors, `leak in case ${[b, n, h, hd]}`).toBe(before);
      }
    });

    it(`GELU equals the erf formulation (forward and gradient), tails and extremes (${mode})`, async () => {
      if (backend !== 'wasm') return; // the kernels exist only there (first test)
      forceSimdCopyMode(mode === 'copying');
      installWasmKernels(backend);
      expect(simdKernelReady(FUSED_ATTENTION_KERNEL, backend)).toBe(true);
      const before = tf.memory().numTensors;
      for (const shape of [[3, 7], [197, 768], [1], [2, 3, 5], [3]]) {
        const x = tf.tidy(() => tf.mul(tf.randomNormal(shape, 0, 1, 'float32', 9), 4));
        const dy = tf.randomNormal(shape, 0, 1, 'float32', 10);
        const run = () =>
          tf.tidy(() => [gelu(x), tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gelu(t), dy)))(x)]);
        const got = run();
        const want = withoutKernels(backend, [GELU_KERNEL, GELU_GRAD_KERNEL], run);
        expect(
          await maxAbsDiff(got[0] as tf.Tensor, want[0] as tf.Tensor),
          `forward ${shape}`,
        ).toBeLessThan(2e-6);
        expect(
          await maxAbsDiff(got[1] as tf.Tensor, want[1] as tf.Tensor),
          `gradient ${shape}`,
        ).toBeLessThan(2e-6);
        tf.dispose([x, dy, ...got, ...want]);
      }
      // Known values: gelu(0) = 0, gelu(1) = 0.8413447, gelu(-3) = -0.0040499, gelu(+-40) = 40, 0;
      // gelu'(0) = 0.5, gelu'(1) = 1.0833155.
      const x = tf.tensor1d([0, 1, -3, 40, -40]);
      const y = gelu(x);
      const x01 = tf.tensor1d([0, 1]);
      const g = tf.grad((t: tf.Tensor) => tf.sum(gelu(t)))(x01);
      const want = [0, 0.8413447, -0.0040499, 40, 0];
      const yv = Array.from(await y.data());
      for (let i = 0; i < want.length; i++) expect(yv[i]).toBeCloseTo(want[i] as number, 6);
      const gv = Array.from(await g.data());
      expect(gv[0]).toBeCloseTo(0.5, 6);
      expect(gv[1]).toBeCloseTo(1.0833155, 6);
      tf.dispose([x, x01, y, g]);
      expect(tf.memory().numTensors).toBe(before);
    });

    it(`LayerNorm equals the op formulation (forward and gradients), odd widths (${mode})`, async () => {
      if (backend !== 'wasm') return; // the kernels exist only there (first test)
      forceSimdCopyMode(mode === 'copying');
      installWasmKernels(backend);
      expect(simdKernelReady(FUSED_ATTENTION_KERNEL, backend)).toBe(true);
      for (const [rows, d, offset] of [
        [197, 192, 0],
        [5, 7, 0],
        [3, 1, 0],
      ] as const) {
        const before = tf.memory().numTensors;
        const x = tf.tidy(() => tf.add(tf.randomNormal([rows, d], 0, 2, 'float32', 11), offset));
        const gamma = tf.randomNormal([d], 1, 0.3, 'float32', 12);
        const beta = tf.randomNormal([d], 0, 0.3, 'float32', 13);
        const dy = tf.randomNormal([rows, d], 0, 1, 'float32', 14);
        const run = () =>
          tf.tidy(() => [
            layerNormFast(x, gamma, beta, 1e-6),
            ...tf.grads((a: tf.Tensor, g: tf.Tensor, c: tf.Tensor) =>
              tf.sum(tf.mul(layerNormFast(a, g, c, 1e-6), dy)),
            )([x, gamma, beta]),
          ]);
        const got = run();
        const want = withoutKernels(backend, [LAYER_NORM_KERNEL], run);
        for (let i = 0; i < 4; i++) {
          const diff = await maxAbsDiff(got[i] as tf.Tensor, want[i] as tf.Tensor);
          // Gradients of gamma and beta sum over rows: tolerance relative to their size.
          const tol = i < 2 ? 2e-5 : 2e-6 * rows * 4;
          expect(diff, `rows ${rows} d ${d} offset ${offset} output ${i}`).toBeLessThan(tol);
        }
        tf.dispose([x, gamma, beta, dy, ...got, ...want]);
        expect(tf.memory().numTensors).toBe(before);
      }
    });
  }

  it('LayerNorm of rows with a large mean: centred variance, error no worse than the op form', async () => {
    if (backend !== 'wasm') return; // the kernels exist only there (first test)
    installWasmKernels(backend);
    expect(simdKernelReady(FUSED_ATTENTION_KERNEL, backend)).toBe(true);
    const [rows, d] = [16, 64];
    const x = tf.tidy(() => tf.add(tf.randomNormal([rows, d], 0, 2, 'float32', 21), 1000));
    const gamma = tf.ones([d]);
    const beta = tf.zeros([d]);
    const xs = await x.data();
    // float64 reference on the same float32 inputs.
    const ref = new Float64Array(rows * d);
    for (let r = 0; r < rows; r++) {
      let mean = 0;
      for (let i = 0; i < d; i++) mean += xs[r * d + i] as number;
      mean /= d;
      let v = 0;
      for (let i = 0; i < d; i++) v += ((xs[r * d + i] as number) - mean) ** 2;
      const rs = 1 / Math.sqrt(v / d + 1e-6);
      for (let i = 0; i < d; i++) ref[r * d + i] = ((xs[r * d + i] as number) - mean) * rs;
    }
    const errorOf = async (y: tf.Tensor) => {
      const ys = await y.data();
      let e = 0;
      for (let i = 0; i < ys.length; i++)
        e = Math.max(e, Math.abs((ys[i] as number) - (ref[i] as number)));
      y.dispose();
      return e;
    };
    const kernelError = await errorOf(layerNormFast(x, gamma, beta, 1e-6));
    const opError = await errorOf(
      withoutKernels(backend, [LAYER_NORM_KERNEL], () => layerNormFast(x, gamma, beta, 1e-6)),
    );
    // The inputs' own float32 spacing at 1000 is 6.1e-5, i.e. 3e-5 after dividing by std 2.
    expect(kernelError).toBeLessThan(1e-4);
    expect(kernelError).toBeLessThanOrEqual(opError * 1.5 + 1e-5);
    tf.dispose([x, gamma, beta]);
  });
});
