/**
 * Tensor layout conversions between PyTorch checkpoints and vit-ts weights.
 *
 * - `linear`: a PyTorch `nn.Linear` weight is `[out, in]`, a vit-ts kernel `[in, out]`.
 * - `conv`: a PyTorch `nn.Conv2d` weight is OIHW `[out, in, kh, kw]`, a vit-ts kernel HWIO
 *   `[kh, kw, in, out]`.
 * - `identity`: biases, norms, tokens and position embeddings have the same layout on both sides.
 *
 * A weight stored in several PyTorch tensors (Hugging Face's separate query / key / value) is
 * the concatenation of those tensors along PyTorch's axis 0 (the output axis), in order:
 * `[q; k; v]` is exactly the row order of timm's fused qkv and torchvision's `in_proj_weight`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, formatShape } from '../errors';

/** How a weight's PyTorch tensor relates to its vit-ts tensor. */
export type TensorLayout = 'identity' | 'linear' | 'conv';

const RANK: Record<TensorLayout, number | null> = { identity: null, linear: 2, conv: 4 };

function checkRank(shape: readonly number[], layout: TensorLayout, what: string): void {
  const rank = RANK[layout];
  if (rank != null && shape.length !== rank) {
    throw new ConfigError(
      `${what}: a ${layout} weight must have rank ${rank}, got shape ${formatShape(shape)}`,
    );
  }
}

/** The PyTorch shape of a vit-ts weight of shape `shape` (pure, no tensors). */
export function torchShapeOf(shape: readonly number[], layout: TensorLayout): number[] {
  checkRank(shape, layout, 'torchShapeOf');
  if (layout === 'linear') return [shape[1], shape[0]];
  if (layout === 'conv') return [shape[3], shape[2], shape[0], shape[1]];
  return [...shape];
}

/** The vit-ts shape of a PyTorch tensor of shape `shape` (pure, no tensors). */
export function vitShapeOf(shape: readonly number[], layout: TensorLayout): number[] {
  checkRank(shape, layout, 'vitShapeOf');
  if (layout === 'linear') return [shape[1], shape[0]];
  if (layout === 'conv') return [shape[2], shape[3], shape[1], shape[0]];
  return [...shape];
}

/** PyTorch layout -> vit-ts layout. Returns a new tensor (or `t` itself for `identity`). */
export function fromTorchLayout(t: tf.Tensor, layout: TensorLayout): tf.Tensor {
  checkRank(t.shape, layout, 'fromTorchLayout');
  if (layout === 'linear') return tf.transpose(t, [1, 0]);
  if (layout === 'conv') return tf.transpose(t, [2, 3, 1, 0]); // OIHW -> HWIO
  return t;
}

/** vit-ts layout -> PyTorch layout. Returns a new tensor (or `t` itself for `identity`). */
export function toTorchLayout(t: tf.Tensor, layout: TensorLayout): tf.Tensor {
  checkRank(t.shape, layout, 'toTorchLayout');
  if (layout === 'linear') return tf.transpose(t, [1, 0]);
  if (layout === 'conv') return tf.transpose(t, [3, 2, 0, 1]); // HWIO -> OIHW
  return t;
}

/** Shape of each of `parts` equal PyTorch tensors whose axis-0 concatenation has `shape`. */
export function splitTorchShape(shape: readonly number[], parts: number): number[] {
  if (parts === 1) return [...shape];
  if (shape.length === 0 || shape[0] % parts !== 0) {
    throw new ConfigError(
      `splitTorchShape: axis 0 of ${formatShape(shape)} does not split into ${parts} equal parts`,
    );
  }
  return [shape[0] / parts, ...shape.slice(1)];
}

/**
 * Joins PyTorch tensors stored separately (q, k, v) into one PyTorch-layout tensor along axis 0,
 * then converts it to the vit-ts layout. A single part is converted as is.
 */
export function joinFromTorch(parts: tf.Tensor[], layout: TensorLayout): tf.Tensor {
  return tf.tidy(() =>
    fromTorchLayout(parts.length === 1 ? parts[0] : tf.concat(parts, 0), layout),
  );
}

/** Inverse of {@link joinFromTorch}: vit-ts tensor -> `parts` PyTorch-layout tensors. */
export function splitToTorch(t: tf.Tensor, layout: TensorLayout, parts: number): tf.Tensor[] {
  return tf.tidy(() => {
    const torch = toTorchLayout(t, layout);
    // `identity` returns `t` itself: clone so the caller may dispose the result freely.
    if (parts === 1) return [torch === t ? tf.clone(t) : torch];
    return tf.split(torch, parts, 0);
  });
}

// ---------------------------------------------------------------------------------------------
// The same conversions on plain typed arrays: a checkpoint's values go straight from the file to
// the model (one copy, no backend kernels), which on the cpu backend is several times faster
// than transposing tensors, and a model's values straight to the file on export.

const TO_VIT_PERM: Record<TensorLayout, number[] | null> = {
  identity: null,
  linear: [1, 0],
  conv: [2, 3, 1, 0],
};
const TO_TORCH_PERM: Record<TensorLayout, number[] | null> = {
  identity: null,
  linear: [1, 0],
  conv: [3, 2, 0, 1],
};

/** Row-major transpose of `data` (shape `shape`) by `perm`, as `tf.transpose`. */
export function transposeArray(
  data: Float32Array,
  shape: readonly number[],
  perm: readonly number[],
): Float32Array {
  const rank = shape.length;
  if (perm.length !== rank)
    throw new ConfigError(
      `transposeArray: perm [${perm}] does not fit shape ${formatShape(shape)}`,
    );
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i];
  }
  if (data.length !== s)
    throw new ConfigError(
      `transposeArray: ${data.length} values do not fill shape ${formatShape(shape)}`,
    );
  const outShape = perm.map((p) => shape[p]);
  const st = perm.map((p) => inStrides[p]); // input stride along each output axis
  const out = new Float32Array(data.length);
  if (rank === 2) {
    let k = 0;
    for (let i = 0; i < outShape[0]; i++)
      for (let j = 0; j < outShape[1]; j++) out[k++] = data[i * st[0] + j * st[1]];
    return out;
  }
  if (rank === 4) {
    let k = 0;
    for (let a = 0; a < outShape[0]; a++) {
      for (let b = 0; b < outShape[1]; b++) {
        for (let c = 0; c < outShape[2]; c++) {
          const base = a * st[0] + b * st[1] + c * st[2];
          for (let d = 0; d < outShape[3]; d++) out[k++] = data[base + d * st[3]];
        }
      }
    }
    return out;
  }
  // Any other rank: odometer over the output index.
  const idx = new Array<number>(rank).fill(0);
  for (let k = 0; k < out.length; k++) {
    let off = 0;
    for (let i = 0; i < rank; i++) off += idx[i] * st[i];
    out[k] = data[off];
    for (let i = rank - 1; i >= 0; i--) {
      if (++idx[i] < outShape[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}

/**
 * PyTorch-layout values (one array, or several to concatenate along axis 0, each of
 * `partShape`) -> vit-ts layout values. Returns a new array, or the only input for `identity`.
 */
export function joinArraysFromTorch(
  parts: Float32Array[],
  partShape: readonly number[],
  layout: TensorLayout,
): Float32Array {
  let joined: Float32Array;
  if (parts.length === 1) {
    joined = parts[0];
  } else {
    joined = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      joined.set(p, off);
      off += p.length;
    }
  }
  const perm = TO_VIT_PERM[layout];
  if (!perm) return joined;
  const torchShape = [partShape[0] * parts.length, ...partShape.slice(1)];
  checkRank(torchShape, layout, 'joinArraysFromTorch');
  return transposeArray(joined, torchShape, perm);
}

/** vit-ts values of shape `shape` -> `parts` PyTorch-layout arrays (views when no transpose is needed). */
export function splitArrayToTorch(
  data: Float32Array,
  shape: readonly number[],
  layout: TensorLayout,
  parts: number,
): Float32Array[] {
  const perm = TO_TORCH_PERM[layout];
  if (perm) checkRank(shape, layout, 'splitArrayToTorch');
  const torch = perm ? transposeArray(data, shape, perm) : data;
  const n = torch.length / parts;
  return Array.from({ length: parts }, (_, i) => torch.subarray(i * n, (i + 1) * n));
}
