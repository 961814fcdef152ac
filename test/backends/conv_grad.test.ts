import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import {
  GAP_KERNEL_NAMES,
  registerMissingGradientKernels,
  SLOW_NATIVE_KERNELS,
  useNativeGradientKernels,
} from '../../src/index';
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
  /** Image width when it differs from `size` (the height). */
  width?: number;
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

// Odd shapes for the cpu replacement against tfjs' own cpu kernel: non-square images, sizes the
// stride does not divide, odd channel counts, 'valid' dropping the last rows.
const ODD_CASES: ConvCase[] = [
  {
    name: "3x3 stride 2 'valid', 11x8",
    size: 11,
    width: 8,
    k: 3,
    stride: 2,
    pad: 'valid',
    inC: 3,
    outC: 5,
  },
  {
    name: "5x5 stride 2 'same', 10x13",
    size: 10,
    width: 13,
    k: 5,
    stride: 2,
    pad: 'same',
    inC: 5,
    outC: 3,
  },
  {
    name: "2x2 stride 3 'valid', 13x13",
    size: 13,
    k: 2,
    stride: 3,
    pad: 'valid',
    inC: 1,
    outC: 7,
  },
  { name: '3x3 stride 1 pad 2, 7x9', size: 7, width: 9, k: 3, stride: 1, pad: 2, inC: 3, outC: 2 },
  { name: "1x1 stride 1 'same', 5x5", size: 5, k: 1, stride: 1, pad: 'same', inC: 6, outC: 4 },
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
    const width = c.width ?? c.size;
    const x = tf.tensor4d(seededValues(2 * c.size * width * c.inC, 1), [2, c.size, width, c.inC]);
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

/** Runs `fn` on cpu with tfjs' own gradient kernels, then restores vit-ts' replacements. */
async function onNativeCpu<T>(fn: () => Promise<T>): Promise<T> {
  useNativeGradientKernels('cpu', true);
  try {
    return await onBackend('cpu', fn);
  } finally {
    useNativeGradientKernels('cpu', false);
  }
}

describeBackends('registerMissingGradientKernels', (backend) => {
  it('registers the kernels the backend lacks, replaces only the slow ones listed, and can go back', () => {
    useNativeGradientKernels(backend, true);
    const existing = new Map(
      GAP_KERNEL_NAMES.filter((n) => tf.getKernel(n, backend) != null).map((n) => [
        n,
        tf.getKernel(n, backend).kernelFunc,
      ]),
    );
    const missing = GAP_KERNEL_NAMES.filter((n) => !existing.has(n));
    const slow = SLOW_NATIVE_KERNELS[backend] ?? [];
    // tensorflow/tfjs#8474: wasm 4.22 has no Conv2DBackpropFilter and no depthwise backprops.
    if (backend === 'wasm') expect(missing).toContain('Conv2DBackpropFilter');
    if (backend === 'cpu') {
      expect(missing).toEqual([]);
      expect(slow).toEqual(['Conv2DBackpropFilter']);
    }
    // With native kernels asked for, only what is missing gets registered.
    expect(registerMissingGradientKernels(backend)).toEqual(missing);
    for (const [n, fn] of existing) expect(tf.getKernel(n, backend).kernelFunc).toBe(fn);

    useNativeGradientKernels(backend, false);
    for (const n of GAP_KERNEL_NAMES) expect(tf.getKernel(n, backend)).toBeDefined();
    for (const [n, fn] of existing) {
      if (slow.includes(n)) expect(tf.getKernel(n, backend).kernelFunc).not.toBe(fn);
      else expect(tf.getKernel(n, backend).kernelFunc).toBe(fn);
    }
    expect(registerMissingGradientKernels(backend)).toEqual([]);

    // Back to tfjs' own: exactly the original functions; the gap fillers stay.
    useNativeGradientKernels(backend, true);
    for (const [n, fn] of existing) expect(tf.getKernel(n, backend).kernelFunc).toBe(fn);
    for (const n of missing) expect(tf.getKernel(n, backend)).toBeDefined();
    useNativeGradientKernels(backend, false);
  });

  it('rejects a missing backend name and a non-boolean choice', () => {
    expect(() => registerMissingGradientKernels('')).toThrow(/backendName must be a backend name/);
    expect(() => useNativeGradientKernels('', true)).toThrow(
      /useNativeGradientKernels: backendName must be a backend name/,
    );
    expect(() => useNativeGradientKernels('cpu', 'yes' as unknown as boolean)).toThrow(
      /useNative must be a boolean, got yes/,
    );
  });
});

/** tfjs' own cpu Conv2DBackpropFilter, read while vit-ts' replacement is switched off. */
function nativeCpuFilterGrad(): unknown {
  useNativeGradientKernels('cpu', true);
  const native = tf.getKernel('Conv2DBackpropFilter', 'cpu')?.kernelFunc;
  useNativeGradientKernels('cpu', false);
  return native;
}

// cpu's Conv2DBackpropFilter is replaced (SLOW_NATIVE_KERNELS): compare it with tfjs' own.
describeBackends("cpu filter gradient (vit-ts' loop) equals tfjs' cpu kernel", () => {
  for (const c of [...CONV_CASES, ...ODD_CASES]) {
    it(`conv2d ${c.name}: dx and dW within 1e-5 relative L2`, async () => {
      registerMissingGradientKernels('cpu');
      expect(tf.getKernel('Conv2DBackpropFilter', 'cpu').kernelFunc).not.toBe(
        nativeCpuFilterGrad(),
      );
      const ref = await onNativeCpu(() => convGrads(c, false));
      const got = await convGrads(c, false);
      expect(relL2Arrays(got[1], ref[1])).toBeLessThan(1e-5);
      // dx does not go through the replaced kernel: the same tfjs kernel both times.
      expect(relL2Arrays(got[0], ref[0])).toBe(0);
    });
  }

  it("dataFormat 'NCHW' is handed to tfjs' own kernel: same values", async () => {
    registerMissingGradientKernels('cpu');
    const x = tf.tensor4d(seededValues(2 * 3 * 7 * 6, 4), [2, 3, 7, 6]);
    const dy = tf.tensor4d(seededValues(2 * 5 * 4 * 3, 5), [2, 5, 4, 3]);
    const attrs = { strides: [2, 2], pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 3, 5] };
    const run = async () => {
      const g = tf
        .engine()
        .runKernel('Conv2DBackpropFilter', { x, dy }, attrs as never) as tf.Tensor;
      const values = Array.from(await g.data());
      g.dispose();
      return values;
    };
    const got = await run();
    const ref = await onNativeCpu(run);
    expect(got.length).toBe(3 * 3 * 3 * 5);
    expect(got).toEqual(ref);
    tf.dispose([x, dy]);
  });
}, ['cpu']);

// On cpu the comparison would be with itself: the matrix minus cpu, each against tfjs' own cpu
// kernels.
describeBackends(
  'convolution gradients agree with cpu',
  () => {
    for (const c of [...CONV_CASES, ODD_CASES[0], ODD_CASES[1]]) {
      it(`conv2d ${c.name}: dx and dW within 1e-4 relative L2`, async () => {
        registerMissingGradientKernels();
        const ref = await onNativeCpu(() => convGrads(c, false));
        const got = await convGrads(c, false);
        expect(relL2Arrays(got[0], ref[0])).toBeLessThan(1e-4);
        expect(relL2Arrays(got[1], ref[1])).toBeLessThan(1e-4);
      });
    }
    for (const c of [CONV_CASES[0], CONV_CASES[1], CONV_CASES[5]]) {
      it(`depthwiseConv2d ${c.name}, multiplier 2: dx and dW within 1e-4 relative L2`, async () => {
        registerMissingGradientKernels();
        const ref = await onNativeCpu(() => convGrads(c, true));
        const got = await convGrads(c, true);
        expect(relL2Arrays(got[0], ref[0])).toBeLessThan(1e-4);
        expect(relL2Arrays(got[1], ref[1])).toBeLessThan(1e-4);
      });
    }
  },
  activeBackends().filter((b) => b !== 'cpu'),
);
