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
    throw new ConfigError(`${what}: a ${layout} weight must have rank ${rank}, got shape ${formatShape(shape)}`);
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
    throw new ConfigError(`splitTorchShape: axis 0 of ${formatShape(shape)} does not split into ${parts} equal parts`);
  }
  return [shape[0] / parts, ...shape.slice(1)];
}

/**
 * Joins PyTorch tensors stored separately (q, k, v) into one PyTorch-layout tensor along axis 0,
 * then converts it to the vit-ts layout. A single part is converted as is.
 */
export function joinFromTorch(parts: tf.Tensor[], layout: TensorLayout): tf.Tensor {
  return tf.tidy(() => fromTorchLayout(parts.length === 1 ? parts[0] : tf.concat(parts, 0), layout));
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
