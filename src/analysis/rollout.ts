import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../errors';
import {
  assertImages,
  findVisionTransformer,
  fuseHeads,
  getAttention,
  resolveBlockIndices,
  resolveLayout,
  type TokenLayout,
  type ViTLike,
} from './attention';

/** How attention rollout fuses the heads of each layer. */
export type HeadFusion = 'mean' | 'max' | 'min';

/** Options of the rollout math ({@link rolloutMatrix}, {@link rolloutFromAttentions}). */
export interface RolloutOptions extends Partial<TokenLayout> {
  /** Head fusion per layer. Default `'mean'` (Abnar & Zuidema); `'max'` / `'min'` as in vit-explain. */
  headFusion?: HeadFusion;
  /**
   * Fraction in [0, 1) of each fused map's N*N entries to zero before adding the identity:
   * the `floor(discardRatio * N * N)` smallest entries of each image's map, ranked over all
   * entries except the class token's self-attention `[0, 0]`, which is never discarded. Default 0.
   */
  discardRatio?: number;
}

/** Options of {@link attentionRollout}. */
export interface AttentionRolloutOptions {
  /** Head fusion per layer. Default `'mean'`. */
  headFusion?: HeadFusion;
  /** See {@link RolloutOptions.discardRatio}. Default 0. */
  discardRatio?: number;
  /** Blocks to roll out through (0-based, negative from the end; used in ascending order). Default all. */
  layers?: number[];
}

/**
 * Attention rollout (Abnar & Zuidema 2020) as the full token-to-token matrix `[B, N, N]`:
 * for each layer, in the given order (first block first), fuse the heads, optionally discard the
 * lowest entries ({@link RolloutOptions.discardRatio}), add the identity for the residual
 * connection, renormalise each row to sum 1, and accumulate `R = A_l · R` (so the result is
 * `A_L ··· A_1`). Row i of the result is how much each input token flows into output token i.
 */
export function rolloutMatrix(
  attentions: readonly tf.Tensor4D[],
  options: RolloutOptions = {},
): tf.Tensor3D {
  const owner = 'rolloutMatrix';
  const layout = resolveLayout(owner, attentions, options, false);
  const fusion = options.headFusion ?? 'mean';
  if (fusion !== 'mean' && fusion !== 'max' && fusion !== 'min') {
    throw new ConfigError(
      `${owner}: headFusion must be 'mean', 'max' or 'min', got ${String(fusion)}`,
    );
  }
  const ratio = options.discardRatio ?? 0;
  if (typeof ratio !== 'number' || !Number.isFinite(ratio) || ratio < 0 || ratio >= 1) {
    throw new ConfigError(
      `${owner}: discardRatio must be a number in [0, 1), got ${String(ratio)}`,
    );
  }
  const [b, , n] = attentions[0].shape;
  return tf.tidy(() => {
    const eye = tf.eye(n);
    let result: tf.Tensor3D | null = null;
    for (const attention of attentions) {
      let fused = fuseHeads(attention, fusion);
      if (ratio > 0) fused = discardLowest(fused, ratio, layout.classToken);
      const withResidual = tf.add(fused, eye);
      const a = tf.div(withResidual, tf.sum(withResidual, -1, true)) as tf.Tensor3D;
      result = result === null ? a : (tf.matMul(a, result) as tf.Tensor3D);
    }
    return tf.reshape(result!, [b, n, n]) as tf.Tensor3D;
  });
}

/**
 * Attention rollout read out as a patch grid `[B, gh, gw]` from given attention matrices
 * (pure math, testable on any matrices). The grid is the class-token row of
 * {@link rolloutMatrix} over the patch tokens (prefix tokens dropped); without a class token it
 * is the column mean (mean flow each patch gives to all tokens). Values are not normalised for
 * display (see `normalizeMaps`).
 */
export function rolloutFromAttentions(
  attentions: readonly tf.Tensor4D[],
  options: RolloutOptions = {},
): tf.Tensor3D {
  const layout = resolveLayout('rolloutFromAttentions', attentions, options);
  const [gh, gw] = layout.gridSize;
  return tf.tidy(() => {
    const r = rolloutMatrix(attentions, { ...options, ...layout });
    const b = r.shape[0];
    const row = layout.classToken ? tf.slice(r, [0, 0, 0], [-1, 1, -1]) : tf.mean(r, 1, true);
    return tf.reshape(tf.slice(row, [0, 0, layout.numPrefixTokens], [-1, -1, -1]), [
      b,
      gh,
      gw,
    ]) as tf.Tensor3D;
  });
}

/**
 * Attention rollout of a ViT for a batch of images: one `[gh, gw]` grid per image, `[B, gh, gw]`.
 * See {@link rolloutMatrix} for the algorithm and {@link RolloutOptions.discardRatio} for the
 * exact discard rule.
 *
 * @example
 * const grid = attentionRollout(model, x, { headFusion: 'max', discardRatio: 0.9 }); // [B, 14, 14]
 */
export function attentionRollout(
  modelOrLayer: ViTLike,
  images: tf.Tensor,
  options: AttentionRolloutOptions = {},
): tf.Tensor3D {
  const owner = 'attentionRollout';
  const vit = findVisionTransformer(modelOrLayer, owner);
  assertImages(owner, vit, images);
  const layers = resolveBlockIndices(owner, 'layers', options.layers, vit.config.depth);
  const ratio = options.discardRatio ?? 0;
  if (typeof ratio !== 'number' || !Number.isFinite(ratio) || ratio < 0 || ratio >= 1) {
    throw new ConfigError(
      `${owner}: discardRatio must be a number in [0, 1), got ${String(ratio)}`,
    );
  }
  const res = getAttention(vit, images, { blocks: layers });
  try {
    return rolloutFromAttentions(res.attentions, {
      headFusion: options.headFusion,
      discardRatio: ratio,
      numPrefixTokens: vit.numPrefixTokens,
      classToken: vit.config.classToken,
      gridSize: vit.inputGrid(images),
    });
  } finally {
    tf.dispose([...res.attentions, res.logits]);
  }
}

/**
 * Zeroes the `floor(ratio * N * N)` smallest entries of each `[N, N]` map in `[B, N, N]`.
 * With a class token, entry `[0, 0]` is left out of the ranking (it is never zeroed), as
 * vit-explain intends; unlike vit-explain this is done for every image of the batch and always
 * zeroes exactly k entries.
 */
function discardLowest(fused: tf.Tensor3D, ratio: number, protectClassToken: boolean): tf.Tensor3D {
  const [b, n] = fused.shape;
  const k = Math.floor(ratio * n * n);
  if (k === 0) return fused;
  return tf.tidy(() => {
    const flat = tf.reshape(fused, [b, n * n]);
    let ranked: tf.Tensor = flat;
    if (protectClassToken) {
      // Push [0, 0] above every other entry so the k lowest never include it. (Not via
      // tf.oneHot(..., 'bool'): wasm's OneHot writes 4-byte values into the 1-byte bool buffer
      // and corrupts its heap in tfjs 4.22.)
      const isFirst = tf.broadcastTo(tf.equal(tf.range(0, n * n, 1, 'int32'), 0), [b, n * n]);
      const above = tf.add(tf.max(flat, 1, true), 1);
      ranked = tf.where(isFirst, tf.broadcastTo(above, [b, n * n]), flat);
    }
    const { indices } = tf.topk(tf.neg(ranked), k); // [B, k] lowest entries of each image
    // Offsets of each image's entries in the flattened batch, then one 1-D scatter.
    const offsets = tf.mul(tf.range(0, b, 1, 'int32'), tf.scalar(n * n, 'int32'));
    const coords = tf.reshape(tf.add(indices, tf.reshape(offsets, [b, 1])), [b * k, 1]);
    const dropped = tf.reshape(tf.scatterND(coords, tf.ones([b * k]), [b * n * n]), [b, n * n]);
    return tf.reshape(tf.mul(flat, tf.sub(1, dropped)), [b, n, n]) as tf.Tensor3D;
  });
}
