import * as tf from '@tensorflow/tfjs-core';
import { ensureGradientKernels } from '../backends/conv_grad';
import { InputShapeError } from '../errors';
import { productForm } from './matmul';

/**
 * 2-D convolution (NHWC input, HWIO filter, symmetric zero padding as PyTorch's `padding=p`)
 * whose gradients use each backend's fast kernels.
 *
 * On wasm (tfjs 4.22) the forward `Conv2D` runs on XNNPACK and is fast, but the input gradient
 * `Conv2DBackpropInput` is a plain loop (in a CIFAR ResNet18 training step it took 63% of the
 * time) and the filter gradient does not exist (vit-ts supplies one, src/backends/conv_grad.ts,
 * as a convolution with a huge dilated filter, which XNNPACK runs slowly). So on wasm
 * ({@link productForm} `'fast'`) the gradients are rebuilt from fast forms:
 * - input gradient: a forward convolution of `dy` (zero-dilated by the stride, padded by
 *   `k - 1 - p`) with the filter flipped in space and with channels swapped;
 * - filter gradient: the backend's `Conv2DBackpropFilter` (on wasm vit-ts' registered one).
 * Elsewhere `tf.conv2d` and tfjs' own gradients are used.
 */

function checkConvArgs(x: tf.Tensor, kernel: tf.Tensor, stride: number, pad: number): void {
  if (!(x instanceof tf.Tensor) || x.rank !== 4) {
    throw new InputShapeError(
      `conv2d: x must be a rank-4 NHWC tensor, got ${x instanceof tf.Tensor ? `[${x.shape.join(', ')}]` : String(x)}`,
    );
  }
  if (!(kernel instanceof tf.Tensor) || kernel.rank !== 4 || kernel.shape[2] !== x.shape[3]) {
    throw new InputShapeError(
      `conv2d: kernel must be [kh, kw, ${x.shape[3]}, out] (HWIO), got ${kernel instanceof tf.Tensor ? `[${kernel.shape.join(', ')}]` : String(kernel)}`,
    );
  }
  if (!Number.isInteger(stride) || stride < 1 || !Number.isInteger(pad) || pad < 0) {
    throw new InputShapeError(
      `conv2d: stride must be a positive integer and pad a non-negative integer, got ${stride} and ${pad}`,
    );
  }
}

/** Output size of one spatial axis. */
function outSize(size: number, k: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - k) / stride) + 1;
}

/**
 * Gradient of a convolution with respect to its input, as a forward convolution:
 * `dx = conv(pad(dilate(dy, s), k - 1 - p), flip(W) with in/out swapped)`.
 */
export function convInputGrad(
  dy: tf.Tensor4D,
  kernel: tf.Tensor4D,
  inputShape: [number, number, number, number],
  stride: number,
  pad: number,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, ho, wo, co] = dy.shape;
    const [kh, kw] = kernel.shape;
    const [, h, w] = inputShape;
    let d: tf.Tensor = dy;
    let rows = ho;
    let cols = wo;
    if (stride > 1) {
      // Zero-dilate: [B, Ho, 1, Wo, 1, C] padded to [B, Ho, s, Wo, s, C] -> [B, Ho*s, Wo*s, C].
      const s = stride;
      d = tf.reshape(
        tf.pad(tf.reshape(dy, [b * ho, 1, wo, 1, co]), [
          [0, 0],
          [0, s - 1],
          [0, 0],
          [0, s - 1],
          [0, 0],
        ]),
        [b, ho * s, wo * s, co],
      );
      rows = ho * s;
      cols = wo * s;
    }
    // Rows needed: h + kh - 1, of which kh - 1 - pad come before the data.
    const padTop = kh - 1 - pad;
    const padLeft = kw - 1 - pad;
    const padBottom = h + kh - 1 - padTop - rows;
    const padRight = w + kw - 1 - padLeft - cols;
    if (padBottom < 0 || padRight < 0) {
      d = tf.slice(
        d,
        [0, 0, 0, 0],
        [b, rows + Math.min(0, padBottom), cols + Math.min(0, padRight), co],
      );
    }
    d = tf.pad(d, [
      [0, 0],
      [padTop, Math.max(0, padBottom)],
      [padLeft, Math.max(0, padRight)],
      [0, 0],
    ]);
    // Flip both spatial axes = reverse the flattened (kh, kw) index, done as a product with a
    // 0/1 permutation matrix (exact): wasm's Reverse and GatherV2 kernels are ~10x slower
    // (4.5% of a ResNet18 step). Channels are swapped by a transpose first.
    const ci = kernel.shape[2];
    const taps = kh * kw;
    const swapped = tf.reshape(tf.transpose(tf.reshape(kernel, [taps, ci, co]), [0, 2, 1]), [
      taps,
      co * ci,
    ]) as tf.Tensor2D;
    const perm = new Float32Array(taps * taps);
    for (let i = 0; i < taps; i++) perm[i * taps + (taps - 1 - i)] = 1;
    const flipped = tf.reshape(
      taps === 1 ? swapped : tf.matMul(tf.tensor2d(perm, [taps, taps]), swapped),
      [kh, kw, co, ci],
    ) as tf.Tensor4D;
    return tf.conv2d(d as tf.Tensor4D, flipped, 1, 'valid');
  });
}

/**
 * Gradient of a convolution with respect to its filter through the backend's
 * `Conv2DBackpropFilter` kernel (on wasm the one vit-ts registers, src/backends/conv_grad.ts: a
 * stride-1 convolution of the input by the dilated `dy`). An im2col + 2-D product form was
 * measured slower on wasm (docs/performance.md).
 */
function convFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  kernelShape: [number, number, number, number],
  stride: number,
  pad: number,
): tf.Tensor4D {
  ensureGradientKernels();
  return tf
    .engine()
    .runKernel(
      'Conv2DBackpropFilter',
      { x, dy },
      { strides: [stride, stride], pad, dataFormat: 'NHWC', filterShape: kernelShape },
    ) as tf.Tensor4D;
}

/**
 * `conv2d` of NHWC `x` by an HWIO `kernel` with `stride` and symmetric zero padding `pad` on
 * both spatial axes, as PyTorch's `Conv2d(padding=pad)`. On a backend whose
 * {@link productForm} is `'fast'` (wasm) both gradients run as fast forward kernels
 * (the input gradient by {@link convInputGrad}); elsewhere tfjs' own gradients are used (with
 * the filter gradient vit-ts registers where a backend lacks one).
 */
export function conv2d(x: tf.Tensor, kernel: tf.Tensor, stride: number, pad: number): tf.Tensor4D {
  checkConvArgs(x, kernel, stride, pad);
  if (productForm() !== 'fast') {
    ensureGradientKernels();
    return tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, stride, pad);
  }
  return fastConv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, stride, pad);
}

/**
 * {@link conv2d} with the fast-form gradients on any backend (the forward is `tf.conv2d`).
 * Falls back to `tf.conv2d` with tfjs' gradients when `pad > kernel - 1` (not a ResNet case).
 */
export function fastConv2d(
  x: tf.Tensor4D,
  kernel: tf.Tensor4D,
  stride: number,
  pad: number,
): tf.Tensor4D {
  checkConvArgs(x, kernel, stride, pad);
  const [kh, kw] = kernel.shape;
  if (pad > kh - 1 || pad > kw - 1) {
    ensureGradientKernels();
    return tf.conv2d(x, kernel, stride, pad);
  }
  const xShape = x.shape as [number, number, number, number];
  const kShape = kernel.shape as [number, number, number, number];
  if (outSize(xShape[1], kh, stride, pad) < 1 || outSize(xShape[2], kw, stride, pad) < 1) {
    throw new InputShapeError(
      `conv2d: input [${xShape.join(', ')}] is smaller than the kernel [${kh}, ${kw}] with pad ${pad}`,
    );
  }
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xi, ki] = args as [tf.Tensor4D, tf.Tensor4D];
    const save = args[2] as tf.GradSaveFunc;
    save([xi, ki]);
    return {
      value: tf.conv2d(xi, ki, stride, pad),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, ks] = saved as [tf.Tensor4D, tf.Tensor4D];
        const d = dy as tf.Tensor4D;
        return [
          convInputGrad(d, ks, xShape, stride, pad),
          convFilterGrad(xs, d, kShape, stride, pad),
        ];
      },
    };
  });
  return op(x, kernel) as tf.Tensor4D;
}
