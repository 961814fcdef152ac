import * as tf from '@tensorflow/tfjs-core';
import { installWasmKernels, restoreWasmKernels } from '../backends/wasm_kernels';
import { ConfigError, InputShapeError } from '../errors';

/**
 * Matrix products in the form each backend multiplies fastest, forward and backward.
 *
 * tfjs' wasm backend (4.22) is fast (XNNPACK, 22-31 GFLOP/s on a 2-core AVX2 machine) only for a
 * plain 2-D product without transposes. With `transposeA` / `transposeB` it falls to 0.4-2.2
 * GFLOP/s, and a rank-3 product with batch > 1 (attention's q.k^T and a.v) runs at about 2
 * GFLOP/s. tfjs' own gradients of `matMul` use exactly those slow forms. So on wasm:
 * - a dense product `x W + b` runs as one fused 2-D product, and its custom gradient
 *   ({@link fastLinear}) transposes explicitly and calls plain 2-D products only;
 * - a batched product runs as ONE depthwise convolution (each batch entry is a channel with its
 *   own 1 x K filter, the channel multiplier is the output width), which XNNPACK runs 3-4x faster
 *   than the batched kernel, with a custom gradient built from the same form
 *   ({@link fastBatchMatMul}). Per-entry 2-D products were measured too: slicing on wasm copies
 *   the whole input, so they lose from 6 entries on.
 * Other backends (cpu, webgl, webgpu) keep tfjs' own products and gradients, which are their
 * fast forms; the choice is made at call time from `tf.getBackend()`.
 *
 * The fast forms compute the same sums as tfjs' products (only the order of float additions can
 * differ); their gradients match tfjs' own within float32 rounding (test/ops/matmul.test.ts).
 */

/** How products are formed: tfjs' own ops, or the explicit-transpose / depthwise fast forms. */
export type ProductForm = 'native' | 'fast';

/** Backends on which {@link productForm} picks the fast forms by default. */
const FAST_BACKENDS = new Set(['wasm']);

/** Per-backend overrides set by {@link setProductForm}. */
const overrides = new Map<string, ProductForm>();

/**
 * The product formulation used on `backend` (default: the active backend): `'fast'` on wasm,
 * `'native'` elsewhere, unless changed with {@link setProductForm}.
 */
export function productForm(backend: string = tf.getBackend()): ProductForm {
  return overrides.get(backend) ?? (FAST_BACKENDS.has(backend) ? 'fast' : 'native');
}

/**
 * Whether the active backend uses the fast forms; on the way, installs vit-ts' replacements for
 * wasm's copying `Identity`, `Slice` and `SplitV` kernels (see backends/wasm_kernels.ts).
 * Internal (layers choose their formulation with it); not exported from the package.
 */
export function useFastForm(): boolean {
  const backend = tf.getBackend();
  if (productForm(backend) !== 'fast') return false;
  installWasmKernels(backend);
  return true;
}

/**
 * Chooses the product formulation for one backend (`null` restores the default), e.g. to
 * benchmark both forms. The numbers agree either way within float32 rounding.
 */
export function setProductForm(backend: string, form: ProductForm | null): void {
  if (typeof backend !== 'string' || backend === '') {
    throw new ConfigError(`setProductForm: backend must be a backend name, got ${String(backend)}`);
  }
  if (form === null) overrides.delete(backend);
  else if (form === 'native' || form === 'fast') overrides.set(backend, form);
  else
    throw new ConfigError(
      `setProductForm: form must be 'native', 'fast' or null, got ${String(form)}`,
    );
  // The native form is tfjs as shipped, including its copying Identity / Slice / SplitV kernels.
  if (productForm(backend) === 'native') restoreWasmKernels(backend);
}

/**
 * `op(a) . op(b)` of two 2-D matrices as a plain product: a transpose is done explicitly first
 * (on wasm an explicit transpose plus a plain product is about 10x faster than the flag).
 * Forward only (no custom gradient); used inside the gradients below.
 */
export function plainMatMul2D(
  a: tf.Tensor2D,
  b: tf.Tensor2D,
  transposeA = false,
  transposeB = false,
): tf.Tensor2D {
  return tf.tidy(() =>
    tf.matMul(transposeA ? tf.transpose(a) : a, transposeB ? tf.transpose(b) : b),
  );
}

/**
 * `op(a)[i] . op(b)[i]` for every batch entry i of two rank-3 tensors as one depthwise
 * convolution: the input is `op(a)` laid out `[1, M, K, batch]`, the filter `op(b)` laid out
 * `[1, K, batch, N]` (channel multiplier N), giving `[1, M, 1, batch * N]`. Forward only.
 */
export function depthwiseBatchMatMul(
  a: tf.Tensor3D,
  b: tf.Tensor3D,
  transposeA = false,
  transposeB = false,
): tf.Tensor3D {
  return tf.tidy(() => {
    const batch = a.shape[0];
    const [m, k] = transposeA ? [a.shape[2], a.shape[1]] : [a.shape[1], a.shape[2]];
    const n = transposeB ? b.shape[1] : b.shape[2];
    if (batch === 1) {
      const a2 = tf.reshape(a, [a.shape[1], a.shape[2]]) as tf.Tensor2D;
      const b2 = tf.reshape(b, [b.shape[1], b.shape[2]]) as tf.Tensor2D;
      return tf.reshape(plainMatMul2D(a2, b2, transposeA, transposeB), [1, m, n]) as tf.Tensor3D;
    }
    const x = tf.reshape(tf.transpose(a, transposeA ? [2, 1, 0] : [1, 2, 0]), [1, m, k, batch]);
    const f = tf.reshape(tf.transpose(b, transposeB ? [2, 0, 1] : [1, 0, 2]), [1, k, batch, n]);
    const y = tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'valid');
    return tf.transpose(tf.reshape(y, [m, batch, n]), [1, 0, 2]) as tf.Tensor3D;
  });
}

function checkRank(owner: string, name: string, t: tf.Tensor, rank: number): void {
  if (!(t instanceof tf.Tensor) || t.rank !== rank) {
    const got = t instanceof tf.Tensor ? `rank ${t.rank} [${t.shape.join(', ')}]` : String(t);
    throw new InputShapeError(`${owner}: ${name} must be a rank-${rank} tensor, got ${got}`);
  }
}

function checkInner(owner: string, a: number, b: number, what: string): void {
  if (a !== b) {
    throw new InputShapeError(`${owner}: inner dimensions must agree (${what}), got ${a} and ${b}`);
  }
}

/**
 * `x . kernel + bias` for 2-D `x [M, in]`, `kernel [in, out]`, optional `bias [out]`, with a
 * gradient that uses plain 2-D products only: `dx = dy . kernel^T`, `dkernel = x^T . dy`
 * (explicit transposes), `dbias = sum(dy, 0)`. The forward is tfjs' fused product, so its
 * numbers are exactly those of `tf.fused.matMul`. Works on every backend.
 */
export function fastLinear2D(
  x: tf.Tensor2D,
  kernel: tf.Tensor2D,
  bias?: tf.Tensor1D | null,
): tf.Tensor2D {
  checkRank('fastLinear2D', 'x', x, 2);
  checkRank('fastLinear2D', 'kernel', kernel, 2);
  checkInner('fastLinear2D', x.shape[1], kernel.shape[0], 'x [M, in] . kernel [in, out]');
  const linearGrad = (dy: tf.Tensor, [xs, ws]: tf.Tensor[]): tf.Tensor[] => {
    const dy2 = dy as tf.Tensor2D;
    const grads = [
      plainMatMul2D(dy2, ws as tf.Tensor2D, false, true),
      plainMatMul2D(xs as tf.Tensor2D, dy2, true, false),
    ];
    return bias != null ? [...grads, tf.sum(dy2, 0)] : grads;
  };
  const op = withGradient(
    ([xi, wi, bi]) =>
      tf.fused.matMul({ a: xi as tf.Tensor2D, b: wi as tf.Tensor2D, bias: bi ?? undefined }),
    linearGrad,
  );
  return (bias != null ? op(x, kernel, bias) : op(x, kernel)) as tf.Tensor2D;
}

/**
 * `tf.customGrad` over a plain forward and backward: `forward(inputs)` gives the value,
 * `backward(dy, inputs)` one gradient per input. Intermediates of both are tidied.
 */
function withGradient(
  forward: (inputs: tf.Tensor[]) => tf.Tensor,
  backward: (dy: tf.Tensor, inputs: tf.Tensor[]) => tf.Tensor[],
): (...inputs: tf.Tensor[]) => tf.Tensor {
  return tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const inputs = args.slice(0, -1) as tf.Tensor[];
    save(inputs);
    return {
      value: tf.tidy(() => forward(inputs)),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => backward(dy as tf.Tensor, saved)),
    };
  });
}

/**
 * `x . kernel + bias` over the last axis of `x` (any rank >= 2; leading axes are flattened into
 * one 2-D product). On a backend whose {@link productForm} is `'fast'` (wasm) it runs
 * {@link fastLinear2D}; elsewhere tfjs' fused product with tfjs' own gradient.
 */
export function linear(x: tf.Tensor, kernel: tf.Tensor, bias?: tf.Tensor | null): tf.Tensor {
  if (!(x instanceof tf.Tensor) || x.rank < 2) {
    const got = x instanceof tf.Tensor ? `rank ${x.rank} [${x.shape.join(', ')}]` : String(x);
    throw new InputShapeError(
      `linear: x must have rank >= 2 (features on the last axis), got ${got}`,
    );
  }
  checkRank('linear', 'kernel', kernel, 2);
  const inDim = x.shape[x.rank - 1] as number;
  checkInner('linear', inDim, kernel.shape[0] as number, 'x [..., in] . kernel [in, out]');
  const outDim = kernel.shape[1] as number;
  return tf.tidy(() => {
    const x2 = (x.rank === 2 ? x : tf.reshape(x, [-1, inDim])) as tf.Tensor2D;
    const k2 = kernel as tf.Tensor2D;
    const y = useFastForm()
      ? fastLinear2D(x2, k2, (bias ?? null) as tf.Tensor1D | null)
      : tf.fused.matMul({ a: x2, b: k2, bias: bias ?? undefined });
    return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), outDim]);
  });
}

/**
 * Batched product `op(a)[i] . op(b)[i]` of rank-3 tensors (`op` = transpose of the last two axes
 * when the flag is set), forward and gradient in the depthwise-convolution form of
 * {@link depthwiseBatchMatMul}:
 * for `C = op(A) op(B)`, `dA` and `dB` are again batched products of `dC` with `A` or `B`
 * (e.g. without transposes `dA = dC B^T`, `dB = A^T dC`). Works on every backend.
 */
export function fastBatchMatMul(
  a: tf.Tensor3D,
  b: tf.Tensor3D,
  transposeA = false,
  transposeB = false,
): tf.Tensor3D {
  checkBatched('fastBatchMatMul', a, b, transposeA, transposeB);
  const bmm = depthwiseBatchMatMul;
  const product = withGradient(
    ([ai, bi]) => bmm(ai as tf.Tensor3D, bi as tf.Tensor3D, transposeA, transposeB),
    (dy, [ai, bi]) => {
      const [as, bs, dc] = [ai as tf.Tensor3D, bi as tf.Tensor3D, dy as tf.Tensor3D];
      if (!transposeA && !transposeB) return [bmm(dc, bs, false, true), bmm(as, dc, true, false)];
      if (!transposeA && transposeB) return [bmm(dc, bs, false, false), bmm(dc, as, true, false)];
      if (transposeA && !transposeB) return [bmm(bs, dc, false, true), bmm(as, dc, false, false)];
      return [bmm(bs, dc, true, true), bmm(dc, as, true, true)];
    },
  );
  return product(a, b) as tf.Tensor3D;
}

function checkBatched(
  owner: string,
  a: tf.Tensor,
  b: tf.Tensor,
  transposeA: boolean,
  transposeB: boolean,
): void {
  checkRank(owner, 'a', a, 3);
  checkRank(owner, 'b', b, 3);
  if (a.shape[0] !== b.shape[0]) {
    throw new InputShapeError(
      `${owner}: batch sizes must agree, got a [${a.shape.join(', ')}] and b [${b.shape.join(', ')}]`,
    );
  }
  const ka = transposeA ? a.shape[1] : a.shape[2];
  const kb = transposeB ? b.shape[2] : b.shape[1];
  checkInner(owner, ka as number, kb as number, `op(a) [batch, M, K] . op(b) [batch, K, N]`);
}

/**
 * Batched product of rank-3 tensors, `op(a)[i] . op(b)[i]`: {@link fastBatchMatMul} on a backend
 * whose {@link productForm} is `'fast'` (wasm), `tf.matMul` elsewhere. Attention uses it for
 * `q . k^T` (`transposeB = true`) and `a . v`.
 */
export function batchMatMul(
  a: tf.Tensor3D,
  b: tf.Tensor3D,
  transposeA = false,
  transposeB = false,
): tf.Tensor3D {
  checkBatched('batchMatMul', a, b, transposeA, transposeB);
  if (useFastForm()) return fastBatchMatMul(a, b, transposeA, transposeB);
  return tf.matMul(a, b, transposeA, transposeB);
}

/**
 * Splits the last axis of `x` into `parts` equal slices. Same values and gradient as
 * `tf.split(x, parts, -1)`, but through `tf.stridedSlice`: wasm's `SplitV` / `Slice` copy the
 * whole input out of the heap once per part (measured 2.5% of a ViT-Ti training step).
 */
export function splitLastAxis(x: tf.Tensor, parts: number): tf.Tensor[] {
  const last = x.shape[x.rank - 1] as number;
  if (!Number.isInteger(parts) || parts < 1 || last % parts !== 0) {
    throw new InputShapeError(
      `splitLastAxis: the last axis (${last}) must split into ${parts} equal parts`,
    );
  }
  if (!useFastForm()) return tf.split(x, parts, -1);
  const width = last / parts;
  const lead = x.shape.slice(0, -1);
  const strides = new Array<number>(x.rank).fill(1);
  return Array.from({ length: parts }, (_, i) => {
    // tfjs 4.22 has no StridedSlice gradient: the gradient of a part is dy zero-padded back.
    const part = withGradient(
      ([xi]) =>
        tf.stridedSlice(xi, [...lead.map(() => 0), i * width], [...lead, (i + 1) * width], strides),
      (dy) => [
        tf.pad(dy, [
          ...lead.map((): [number, number] => [0, 0]),
          [i * width, last - (i + 1) * width],
        ]),
      ],
    );
    return part(x);
  });
}
