import type {
  Conv2DBackpropFilterAttrs,
  DepthwiseConv2dNativeBackpropFilterAttrs,
  DepthwiseConv2dNativeBackpropInputAttrs,
  KernelBackend,
  KernelConfig,
  NamedAttrMap,
  NamedTensorInfoMap,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { BackendError, ConfigError } from '../errors';

/**
 * Gradient kernels some tfjs backends lack or run far slower than their forward kernels.
 *
 * The wasm backend (4.22) has no `Conv2DBackpropFilter` (tensorflow/tfjs#8474) and no depthwise
 * backprops, so `tf.grad` / `model.fit` through a convolution fails there. These are rebuilt from
 * forward kernels the backend has: each runs the backend's own kernels directly
 * (`getKernel(name, backend).kernelFunc`) on `TensorInfo`s: no tensors are created, nothing is
 * recorded on the gradient tape, and every intermediate is released with `backend.disposeData`
 * before the kernel returns.
 *
 * The cpu backend has a `Conv2DBackpropFilter`, but it reads every element through
 * `TensorBuffer.get` and runs about 45x slower than its forward `Conv2D` (67 s of a 75 s ResNet18
 * training step at 16 px), so it is replaced by one loop over the backend's own arrays
 * ({@link SLOW_NATIVE_KERNELS}). No backend package is imported.
 */

/** Names of the gradient kernels vit-ts can supply when a backend lacks them (or is slow at them). */
export const GAP_KERNEL_NAMES = [
  'Conv2DBackpropFilter',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
] as const;

/** One of {@link GAP_KERNEL_NAMES}. */
export type GapKernelName = (typeof GAP_KERNEL_NAMES)[number];

/**
 * Kernels a backend has but that vit-ts replaces because tfjs' version is far slower than the
 * forward kernel: on cpu, `Conv2DBackpropFilter` (about 45x its forward convolution in tfjs
 * 4.22), replaced by a direct loop over the cpu backend's arrays. The replacements agree with
 * tfjs' kernels within float32 rounding (test/backends/conv_grad.test.ts);
 * {@link useNativeGradientKernels} switches back.
 */
export const SLOW_NATIVE_KERNELS: Readonly<Record<string, readonly GapKernelName[]>> = {
  cpu: ['Conv2DBackpropFilter'],
};

/** Forward kernels each replacement is built from; it is registered only if all exist. */
const BUILDING_BLOCKS: Record<GapKernelName, string[]> = {
  Conv2DBackpropFilter: ['Conv2D', 'Transpose', 'Slice', 'Reshape'],
  DepthwiseConv2dNativeBackpropFilter: [
    'DepthwiseConv2dNative',
    'Transpose',
    'Reshape',
    'Slice',
    'Sum',
  ],
  DepthwiseConv2dNativeBackpropInput: ['Conv2DBackpropInput', 'Reshape', 'Multiply'],
};

type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

/** Runs kernels of one backend on TensorInfos and frees the intermediates it made. */
class KernelRunner {
  private readonly temps: TensorInfo[] = [];

  constructor(
    private readonly backendName: string,
    private readonly backend: KernelBackend,
  ) {}

  run(kernelName: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
    const kernel = tf.getKernel(kernelName, this.backendName);
    if (kernel == null) {
      throw new BackendError(
        `vit-ts gradient kernels: backend '${this.backendName}' has no '${kernelName}' kernel`,
      );
    }
    const out = kernel.kernelFunc({ inputs, attrs, backend: this.backend });
    const info = (Array.isArray(out) ? out[0] : out) as TensorInfo;
    this.temps.push(info);
    return info;
  }

  /** A constant written straight into the backend's storage. */
  constant(values: Float32Array, shape: number[]): TensorInfo {
    const info: TensorInfo = {
      dataId: this.backend.write(values, shape, 'float32'),
      shape,
      dtype: 'float32',
    };
    this.temps.push(info);
    return info;
  }

  /** Releases every intermediate except `result`, which the engine takes over. */
  finish(result: TensorInfo): TensorInfo {
    for (const t of this.temps) if (t !== result) this.backend.disposeData(t.dataId);
    this.temps.length = 0;
    return result;
  }
}

function pair(v: number | [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

function assertNoDilation(
  kernelName: string,
  dilations: number | [number, number] | undefined,
): void {
  const [dh, dw] = pair(dilations ?? 1);
  if (dh !== 1 || dw !== 1) {
    throw new BackendError(
      `vit-ts ${kernelName}: dilations must be 1 (as in tfjs' own gradient), got [${dh}, ${dw}]`,
    );
  }
}

/**
 * Padding of the input so that a stride-1 correlation with the dilated `dy` yields at least
 * `k` rows: the forward pad before, and after enough to cover `(out - 1) * stride + k` rows.
 */
function gradPadding(
  size: number,
  before: number,
  out: number,
  stride: number,
  k: number,
): [number, number] {
  return [before, Math.max(0, (out - 1) * stride + k - size - before)];
}

/**
 * Runs tfjs' own kernel that vit-ts replaced on `backendName` (for a case the replacement does
 * not handle), or throws when there is none (the backend lacked the kernel).
 */
function nativeOrThrow(
  kernelName: GapKernelName,
  backendName: string,
  backend: KernelBackend,
  inputs: NamedTensorInfoMap,
  attrs: object,
  why: string,
): TensorInfo {
  const native = replacedNativeKernels.get(kernelKey(kernelName, backendName));
  if (native == null) throw new BackendError(`vit-ts ${kernelName}: ${why}`);
  return native.kernelFunc({
    inputs,
    attrs: attrs as NamedAttrMap,
    backend,
  }) as TensorInfo;
}

/** The NHWC part of a filter-gradient kernel, given the convolution's geometry. */
type FilterGradBody = (
  backendName: string,
  backend: KernelBackend,
  x: TensorInfo,
  dy: TensorInfo,
  attrs: Conv2DBackpropFilterAttrs,
  info: tf.backend_util.Conv2DInfo,
) => TensorInfo;

/**
 * A `Conv2DBackpropFilter` kernel from an NHWC body: `'NCHW'` goes to tfjs' own kernel where vit-ts
 * replaced one (and is refused where the backend has none), the geometry is computed once.
 */
function filterGradKernel(body: FilterGradBody): GapKernel {
  return ((
    backendName: string,
    backend: KernelBackend,
    inputs: NamedTensorInfoMap,
    attrs: Conv2DBackpropFilterAttrs,
  ) => {
    if (attrs.dataFormat === 'NCHW') {
      return nativeOrThrow(
        'Conv2DBackpropFilter',
        backendName,
        backend,
        inputs,
        attrs,
        "only dataFormat 'NHWC' is supported, got 'NCHW'",
      );
    }
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterShape,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    return body(backendName, backend, x, dy, attrs, info);
  }) as GapKernel;
}

/**
 * Filter gradient of a 2-D convolution (NHWC input `x`, HWIO filter) as one pass over a
 * JavaScript-memory backend's arrays (cpu):
 * for every batch entry, output position `(i, j)` and tap `(a, b)` inside the input,
 * `dW[a, b, :, :] += outer(x[n, i*s + a - pad, j*s + b - pad, :], dy[n, i, j, :])`.
 * The innermost loop runs over contiguous output channels, with no per-element index arithmetic
 * (tfjs' cpu kernel reads each element through `TensorBuffer.get`) and no transposes (the
 * forward-convolution form used on wasm transposes a weight-sized result, which on cpu costs more
 * than the convolution itself on small maps). Sums in float64, as tfjs' kernel does.
 */
const conv2DBackpropFilterLoop: FilterGradBody = (_backendName, backend, x, dy, attrs, info) => {
  const { batchSize, inHeight: h, inWidth: w, inChannels: ci, outChannels: co } = info;
  const { outHeight: ho, outWidth: wo, strideHeight: sh, strideWidth: sw, padInfo } = info;
  const [kh, kw] = attrs.filterShape;
  const xv = backend.readSync(x.dataId) as ArrayLike<number>;
  const dyv = backend.readSync(dy.dataId) as ArrayLike<number>;
  const sum = new Float64Array(kh * kw * ci * co);
  for (let n = 0; n < batchSize; n++) {
    for (let i = 0; i < ho; i++) {
      for (let j = 0; j < wo; j++) {
        const dyOff = ((n * ho + i) * wo + j) * co;
        for (let a = 0; a < kh; a++) {
          const row = i * sh + a - padInfo.top;
          if (row < 0 || row >= h) continue;
          for (let b = 0; b < kw; b++) {
            const col = j * sw + b - padInfo.left;
            if (col < 0 || col >= w) continue;
            const xOff = ((n * h + row) * w + col) * ci;
            const tapOff = (a * kw + b) * ci * co;
            for (let c = 0; c < ci; c++) {
              const xValue = xv[xOff + c];
              if (xValue === 0) continue; // ReLU outputs are often zero
              const base = tapOff + c * co;
              for (let o = 0; o < co; o++) sum[base + o] += xValue * dyv[dyOff + o];
            }
          }
        }
      }
    }
  }
  const shape = [kh, kw, ci, co];
  return {
    dataId: backend.write(Float32Array.from(sum), shape, 'float32'),
    shape,
    dtype: 'float32',
  };
};

/**
 * Filter gradient of a 2-D convolution (NHWC input `x`, HWIO filter):
 * `dW[kh, kw, ci, co] = sum_{b,i,j} xpad[b, i*s + kh, j*s + kw, ci] * dy[b, i, j, co]`.
 * That is a stride-1 convolution with dilation `s` of the padded input with batch and channels
 * swapped (`[Ci, H, W, B]`) by `dy` as a filter (`[Ho, Wo, B, Co]`), giving `[Ci, kh, kw, Co]`.
 */
const conv2DBackpropFilterConv: FilterGradBody = (backendName, backend, x, dy, attrs, info) => {
  const [kh, kw, ci, co] = attrs.filterShape;
  const { strideHeight: sh, strideWidth: sw, outHeight, outWidth, padInfo } = info;
  const r = new KernelRunner(backendName, backend);
  const xT = r.run('Transpose', { x }, { perm: [3, 1, 2, 0] });
  const dyT = r.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
  const pad: Pad4 = [
    [0, 0],
    gradPadding(x.shape[1] as number, padInfo.top, outHeight, sh, kh),
    gradPadding(x.shape[2] as number, padInfo.left, outWidth, sw, kw),
    [0, 0],
  ];
  let g = r.run(
    'Conv2D',
    { x: xT, filter: dyT },
    { strides: 1, pad, dataFormat: 'NHWC', dilations: [sh, sw] },
  );
  if (g.shape[1] !== kh || g.shape[2] !== kw) {
    g = r.run('Slice', { x: g }, { begin: [0, 0, 0, 0], size: [ci, kh, kw, co] });
  }
  // [Ci, kh, kw, Co] -> [kh, kw, Ci, Co]; for a 1x1 filter the layout is already the same.
  if (kh === 1 && kw === 1)
    return r.finish(r.run('Reshape', { x: g }, { shape: [kh, kw, ci, co] }));
  return r.finish(r.run('Transpose', { x: g }, { perm: [1, 2, 0, 3] }));
};

/**
 * Filter gradient of a depthwise convolution (filter `[kh, kw, C, M]`): the input becomes one
 * image with `B*C` channels, `dy` a depthwise filter `[Ho, Wo, B*C, M]` dilated by the stride;
 * the result `[kh, kw, B*C*M]` is summed over the batch.
 */
function depthwiseBackpropFilter(
  backendName: string,
  backend: KernelBackend,
  inputs: NamedTensorInfoMap,
  attrs: DepthwiseConv2dNativeBackpropFilterAttrs,
): TensorInfo {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  assertNoDilation('DepthwiseConv2dNativeBackpropFilter', attrs.dilations);
  const [kh, kw, c, m] = attrs.filterShape;
  const [b, h, w] = x.shape as number[];
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
  const { strideHeight: sh, strideWidth: sw, outHeight: ho, outWidth: wo, padInfo } = info;
  const r = new KernelRunner(backendName, backend);
  const xT = r.run('Transpose', { x }, { perm: [1, 2, 0, 3] });
  const xr = r.run('Reshape', { x: xT }, { shape: [1, h, w, b * c] });
  const dyT = r.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
  const dyr = r.run('Reshape', { x: dyT }, { shape: [ho, wo, b * c, m] });
  const pad: Pad4 = [
    [0, 0],
    gradPadding(h as number, padInfo.top, ho, sh, kh),
    gradPadding(w as number, padInfo.left, wo, sw, kw),
    [0, 0],
  ];
  let g = r.run(
    'DepthwiseConv2dNative',
    { x: xr, filter: dyr },
    { strides: 1, pad, dilations: [sh, sw] },
  );
  if (g.shape[1] !== kh || g.shape[2] !== kw) {
    g = r.run('Slice', { x: g }, { begin: [0, 0, 0, 0], size: [1, kh, kw, b * c * m] });
  }
  const perBatch = r.run('Reshape', { x: g }, { shape: [kh, kw, b, c * m] });
  const summed = r.run('Sum', { x: perBatch }, { axis: [2], keepDims: false });
  return r.finish(r.run('Reshape', { x: summed }, { shape: [kh, kw, c, m] }));
}

/**
 * Input gradient of a depthwise convolution: the transposed convolution by the equivalent full
 * filter `[kh, kw, C, C*M]`, block-diagonal over channels (`W[.., ci, co*M + m] = w[.., ci, m]`
 * when `ci = co`), through the backend's `Conv2DBackpropInput`. It costs C times the depthwise
 * work, which is acceptable for the few depthwise layers a ViT hybrid might have.
 */
function depthwiseBackpropInput(
  backendName: string,
  backend: KernelBackend,
  inputs: NamedTensorInfoMap,
  attrs: DepthwiseConv2dNativeBackpropInputAttrs,
): TensorInfo {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  assertNoDilation('DepthwiseConv2dNativeBackpropInput', attrs.dilations);
  const [kh, kw, c, m] = filter.shape as number[];
  const r = new KernelRunner(backendName, backend);
  const eye = new Float32Array(c * c);
  for (let i = 0; i < c; i++) eye[i * c + i] = 1;
  const eyeT = r.constant(eye, [1, 1, c, c, 1]);
  const w5 = r.run('Reshape', { x: filter }, { shape: [kh, kw, c, 1, m] });
  const blocks = r.run('Multiply', { a: w5, b: eyeT });
  const full = r.run('Reshape', { x: blocks }, { shape: [kh, kw, c, c * m] });
  return r.finish(
    r.run(
      'Conv2DBackpropInput',
      { dy, filter: full },
      {
        strides: attrs.strides,
        pad: attrs.pad,
        dataFormat: 'NHWC',
        inputShape: attrs.inputShape,
        ...(attrs.dimRoundingMode != null ? { dimRoundingMode: attrs.dimRoundingMode } : {}),
      },
    ),
  );
}

type GapKernel = (
  backendName: string,
  backend: KernelBackend,
  inputs: NamedTensorInfoMap,
  attrs: never,
) => TensorInfo;

const IMPLEMENTATIONS: Record<GapKernelName, GapKernel> = {
  Conv2DBackpropFilter: filterGradKernel(conv2DBackpropFilterConv),
  DepthwiseConv2dNativeBackpropFilter: depthwiseBackpropFilter as GapKernel,
  DepthwiseConv2dNativeBackpropInput: depthwiseBackpropInput as GapKernel,
};

/** Backends already checked by {@link ensureGradientKernels}. */
const checkedBackends = new Set<string>();

/** Backends on which {@link useNativeGradientKernels} asked for tfjs' own (slow) kernels. */
const nativeBackends = new Set<string>();

/** tfjs' own kernels that vit-ts replaced (key: kernel and backend), kept to restore them. */
const replacedNativeKernels = new Map<string, KernelConfig>();

/** The kernel functions vit-ts registered, to tell them from the backend's own. */
const ownKernelFuncs = new Set<KernelConfig['kernelFunc']>();

function kernelKey(kernelName: string, backendName: string): string {
  return `${backendName}_${kernelName}`;
}

function checkBackendName(fn: string, backendName: unknown): void {
  if (typeof backendName !== 'string' || backendName === '') {
    throw new ConfigError(`${fn}: backendName must be a backend name, got ${String(backendName)}`);
  }
}

/** Replacements of {@link SLOW_NATIVE_KERNELS} that differ from the gap fillers, per backend. */
const FASTER_IMPLEMENTATIONS: Record<string, Partial<Record<GapKernelName, GapKernel>>> = {
  cpu: { Conv2DBackpropFilter: filterGradKernel(conv2DBackpropFilterLoop) },
};

function registerOwn(name: GapKernelName, backendName: string): void {
  const impl = FASTER_IMPLEMENTATIONS[backendName]?.[name] ?? IMPLEMENTATIONS[name];
  const kernelFunc: KernelConfig['kernelFunc'] = ({ inputs, backend, attrs }) =>
    impl(backendName, backend as KernelBackend, inputs, attrs as never);
  ownKernelFuncs.add(kernelFunc);
  tf.registerKernel({ kernelName: name, backendName, kernelFunc });
}

/**
 * Registers, for `backendName` (default: the active backend), each gradient kernel of
 * {@link GAP_KERNEL_NAMES} that the backend lacks and can be built from its forward kernels, and
 * replaces the backend's own kernels listed in {@link SLOW_NATIVE_KERNELS} (cpu's filter
 * gradient) unless {@link useNativeGradientKernels} asked for them. No other kernel is ever
 * replaced. Returns the names registered by this call.
 *
 * vit-ts calls this itself when a convolutional model (ResNet18) runs; call it yourself before
 * training your own convolution layers on wasm (or to speed them up on cpu).
 *
 * @example
 * await tf.setBackend('wasm');
 * registerMissingGradientKernels(); // ['Conv2DBackpropFilter', 'DepthwiseConv2dNative...']
 */
export function registerMissingGradientKernels(
  backendName: string = tf.getBackend(),
): GapKernelName[] {
  checkBackendName('registerMissingGradientKernels', backendName);
  const registered: GapKernelName[] = [];
  const slow = nativeBackends.has(backendName) ? [] : (SLOW_NATIVE_KERNELS[backendName] ?? []);
  for (const name of GAP_KERNEL_NAMES) {
    if (!BUILDING_BLOCKS[name].every((k) => tf.getKernel(k, backendName) != null)) continue;
    const existing = tf.getKernel(name, backendName);
    if (existing != null) {
      if (!slow.includes(name) || ownKernelFuncs.has(existing.kernelFunc)) continue;
      replacedNativeKernels.set(kernelKey(name, backendName), existing);
      // Unregister first: registering over a kernel makes tfjs print a warning.
      tf.unregisterKernel(name, backendName);
    }
    registerOwn(name, backendName);
    registered.push(name);
  }
  checkedBackends.add(backendName);
  return registered;
}

/**
 * Chooses, for one backend, between tfjs' own gradient kernels (`true`) and vit-ts' faster
 * replacements of {@link SLOW_NATIVE_KERNELS} (`false`, the default), e.g. to compare the two or
 * to time them. Kernels a backend lacks (wasm's filter gradients) stay registered either way:
 * there is nothing to go back to. The choice holds for later {@link ensureGradientKernels} calls.
 *
 * @example
 * useNativeGradientKernels('cpu', true);  // tfjs' cpu Conv2DBackpropFilter
 * useNativeGradientKernels('cpu', false); // vit-ts' forward-convolution form again
 */
export function useNativeGradientKernels(backendName: string, useNative: boolean): void {
  checkBackendName('useNativeGradientKernels', backendName);
  if (typeof useNative !== 'boolean') {
    throw new ConfigError(
      `useNativeGradientKernels: useNative must be a boolean, got ${String(useNative)}`,
    );
  }
  if (!useNative) {
    nativeBackends.delete(backendName);
    registerMissingGradientKernels(backendName);
    return;
  }
  nativeBackends.add(backendName);
  for (const name of GAP_KERNEL_NAMES) {
    const key = kernelKey(name, backendName);
    const native = replacedNativeKernels.get(key);
    if (native == null) continue;
    tf.unregisterKernel(name, backendName);
    tf.registerKernel(native);
    replacedNativeKernels.delete(key);
  }
}

/**
 * Makes sure every backend registered so far (cpu, wasm, webgl, ... whichever the application
 * imported) has the gradient kernels convolutional layers need, and the faster replacements of
 * {@link SLOW_NATIVE_KERNELS} (cpu's filter gradient). Each backend is checked once;
 * later calls cost a set lookup per backend. vit-ts' convolutional layers (ResNet18, BasicBlock)
 * call it once, when they are built, never per forward pass. A backend imported only after the
 * model was built is not covered: call this (or {@link registerMissingGradientKernels}) again.
 */
export function ensureGradientKernels(): void {
  for (const name of Object.keys(tf.engine().registryFactory)) {
    if (!checkedBackends.has(name)) registerMissingGradientKernels(name);
  }
}
