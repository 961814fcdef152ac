import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { GAP_KERNEL_NAMES, registerMissingGradientKernels } from '../../src/index';
import {
  activeBackends,
  describeBackends,
  onBackend,
  relL2Arrays,
  seededValues,
} from '../helpers/backends';

interface ConvCase {
  name: string;
  size: number;
  k: number;
  stride: number;
  pad: number | 'same' | 'valid';
  inC: number;
  outC: number;
}

// The convolutions of ResNet18 (both stems) and of a conv PatchEmbed, plus an odd-size 'same'.
const CONV_CASES: ConvCase[] = [
  { name: '3x3 stride 1 pad 1', size: 8, k: 3, stride: 1, pad: 1, inC: 4, outC: 6 },
  { name: '3x3 stride 2 pad 1', size: 8, k: 3, stride: 2, pad: 1, inC: 4, outC: 6 },
  { name: '1x1 stride 2 (shortcut)', size: 8, k: 1, stride: 2, pad: 0, inC: 4, outC: 6 },
  {
    name: '7x7 stride 2 pad 3 (ImageNet stem)',
    size: 16,
    k: 7,
    stride: 2,
    pad: 3,
    inC: 3,
    outC: 4,
  },
  {
    name: '16x16 stride 16 (patch embedding)',
    size: 32,
    k: 16,
    stride: 16,
    pad: 0,
    inC: 3,
    outC: 4,
  },
  { name: "3x3 stride 2 'same', odd size", size: 9, k: 3, stride: 2, pad: 'same', inC: 2, outC: 3 },
];

function padding(
  c: ConvCase,
): 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]] {
  if (typeof c.pad === 'string') return c.pad;
  return [
    [0, 0],
    [c.pad, c.pad],
    [c.pad, c.pad],
    [0, 0],
  ];
}

/**
 * Gradients of `sum(conv(x, w) * r)` with respect to x and w on the active backend, as plain
 * arrays (read with `data()`); `r` makes dy a non-trivial seeded tensor.
 */
async function convGrads(c: ConvCase, depthwise: boolean): Promise<number[][]> {
  const before = tf.memory().numTensors;
  const grads = tf.tidy(() => {
    const x = tf.tensor4d(seededValues(2 * c.size * c.size * c.inC, 1), [2, c.size, c.size, c.inC]);
    const wShape: [number, number, number, number] = [c.k, c.k, c.inC, depthwise ? 2 : c.outC];
    const w = tf.tensor4d(
      seededValues(
        wShape.reduce((a, b) => a * b, 1),
        2,
      ),
      wShape,
    );
    const conv = (a: tf.Tensor4D, b: tf.Tensor4D) =>
      depthwise
        ? tf.depthwiseConv2d(a, b, c.stride, padding(c))
        : tf.conv2d(a, b, c.stride, padding(c));
    const outShape = conv(x, w).shape;
    const r = tf.tensor(
      seededValues(
        outShape.reduce((a, b) => a * b, 1),
        3,
      ),
      outShape,
    );
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(conv(a as tf.Tensor4D, b as tf.Tensor4D), r)),
    )([x, w]);
    return [dx, dw];
  });
  // Read asynchronously: webgpu's dataSync() returns zeros on SwiftShader.
  const result = await Promise.all(grads.map(async (g) => Array.from(await g.data())));
  tf.dispose(grads);
  expect(tf.memory().numTensors).toBe(before);
  return result;
}

describeBackends('registerMissingGradientKernels', (backend) => {
  it('registers exactly the kernels the backend lacks and never replaces one it has', () => {
    const existing = new Map(
      GAP_KERNEL_NAMES.filter((n) => tf.getKernel(n, backend) != null).map((n) => [
        n,
        tf.getKernel(n, backend).kernelFunc,
      ]),
    );
    const missing = GAP_KERNEL_NAMES.filter((n) => !existing.has(n));
    // tensorflow/tfjs#8474: wasm 4.22 has no Conv2DBackpropFilter and no depthwise backprops.
    if (backend === 'wasm') expect(missing).toContain('Conv2DBackpropFilter');
    if (backend === 'cpu') expect(missing).toEqual([]);
    expect(registerMissingGradientKernels(backend)).toEqual(missing);
    for (const n of GAP_KERNEL_NAMES) expect(tf.getKernel(n, backend)).toBeDefined();
    for (const [n, fn] of existing) expect(tf.getKernel(n, backend).kernelFunc).toBe(fn);
    expect(registerMissingGradientKernels(backend)).toEqual([]);
  });

  it('rejects a missing backend name', () => {
    expect(() => registerMissingGradientKernels('')).toThrow(/backendName must be a backend name/);
  });
});

// On cpu the comparison would be with itself: the matrix minus cpu, each against cpu.
describeBackends(
  'convolution gradients agree with cpu',
  () => {
    for (const c of CONV_CASES) {
      it(`conv2d ${c.name}: dx and dW within 1e-4 relative L2`, async () => {
        registerMissingGradientKernels();
        const ref = await onBackend('cpu', () => convGrads(c, false));
        const got = await convGrads(c, false);
        expect(relL2Arrays(got[0], ref[0])).toBeLessThan(1e-4);
        expect(relL2Arrays(got[1], ref[1])).toBeLessThan(1e-4);
      });
    }
    for (const c of [CONV_CASES[0], CONV_CASES[1], CONV_CASES[5]]) {
      it(`depthwiseConv2d ${c.name}, multiplier 2: dx and dW within 1e-4 relative L2`, async () => {
        registerMissingGradientKernels();
        const ref = await onBackend('cpu', () => convGrads(c, true));
        const got = await convGrads(c, true);
        expect(relL2Arrays(got[0], ref[0])).toBeLessThan(1e-4);
        expect(relL2Arrays(got[1], ref[1])).toBeLessThan(1e-4);
      });
    }
  },
  activeBackends().filter((b) => b !== 'cpu'),
);
