import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  assertNonEmptyBatch,
  ConfigError,
  describeValue,
  formatShape,
  InputShapeError,
} from '../errors';
import { findArchitectureLayer } from '../models/find_layer';
import { VisionTransformer } from '../models/vision_transformer';

/** A model built by `createViT` (or any `LayersModel` holding one {@link VisionTransformer}), or the layer itself. */
export type ViTLike = LayersModel | VisionTransformer;

/** Attention of chosen blocks, as returned by {@link getAttention}. The caller disposes the tensors. */
export interface AttentionResult {
  /** Attention probabilities `[B, heads, N, N]` per block, in the order of {@link AttentionResult.blocks}. */
  attentions: tf.Tensor4D[];
  /** 0-based block indices of `attentions`, ascending, without duplicates. */
  blocks: number[];
  /** Model output for the same images `[B, C]` (handy to show the prediction next to the maps). */
  logits: tf.Tensor2D;
}

/** Token layout of a ViT needed to turn an `N x N` attention matrix into a patch grid. */
export interface TokenLayout {
  /** Prefix tokens before the patches (class token + register tokens). */
  numPrefixTokens: number;
  /** Whether token 0 is a class token. */
  classToken: boolean;
  /** Patch grid `[gh, gw]` (rows, columns). */
  gridSize: [number, number];
}

/**
 * Finds the {@link VisionTransformer} inside a model from `createViT` (or a model loaded with
 * `loadLayersModel` / `loadModel`), or returns the layer itself. Throws a {@link ConfigError}
 * when there is none or more than one.
 */
export function findVisionTransformer(
  modelOrLayer: ViTLike,
  owner = 'findVisionTransformer',
): VisionTransformer {
  return findArchitectureLayer(modelOrLayer, [VisionTransformer], owner, 'VisionTransformer layer');
}

/** Token layout (prefix tokens, class token, patch grid) of a ViT model or layer. */
export function tokenLayout(modelOrLayer: ViTLike): TokenLayout {
  const vit = findVisionTransformer(modelOrLayer, 'tokenLayout');
  return {
    numPrefixTokens: vit.numPrefixTokens,
    classToken: vit.config.classToken,
    gridSize: vit.gridSize,
  };
}

/**
 * Resolves 0-based block indices (negative ones count from the end, `-1` = last block) against
 * a depth, throwing a {@link ConfigError} naming the bad entry.
 */
export function resolveBlockIndices(
  owner: string,
  name: string,
  indices: readonly number[] | undefined,
  depth: number,
): number[] {
  if (indices === undefined) return Array.from({ length: depth }, (_, i) => i);
  if (!Array.isArray(indices) || indices.length === 0) {
    throw new ConfigError(
      `${owner}: ${name} must be a non-empty array of block indices, got ${describeValue(indices)}`,
    );
  }
  return indices.map((b) => {
    if (!Number.isInteger(b) || b < -depth || b >= depth) {
      throw new ConfigError(
        `${owner}: ${name} entries must be integers in [${-depth}, ${depth - 1}] (the model has ${depth} block${depth === 1 ? '' : 's'}), got ${String(b)}`,
      );
    }
    return b < 0 ? depth + b : b;
  });
}

/** Checks a batch of images against the model's input `[B, H, W, C]`. */
export function assertImages(owner: string, vit: VisionTransformer, images: tf.Tensor): void {
  if (!(images instanceof tf.Tensor)) {
    throw new InputShapeError(
      `${owner}: images must be a tf.Tensor of shape [B, H, W, C], got ${describeValue(images)}`,
    );
  }
  const [h, w] = vit.config.imgSize;
  const c = vit.config.inChans;
  const s = images.shape;
  const pattern = vit.config.dynamicImgSize ? [null, null, null, c] : [null, h, w, c];
  assertNonEmptyBatch(owner, s, pattern, 'images, a batch of NHWC images for this model');
  if (vit.config.dynamicImgSize) {
    // Any size the patch divides (the model resamples its position embedding).
    const [ph, pw] = vit.config.patchSize;
    if (s.length !== 4 || s[1] % ph !== 0 || s[2] % pw !== 0 || s[3] !== c) {
      throw new InputShapeError(
        `${owner}: images must have shape [B, H, W, ${c}] with H divisible by ${ph} and W by ${pw} (a batch of NHWC images for this model), got ${formatShape(s)}`,
      );
    }
    return;
  }
  if (s.length !== 4 || s[1] !== h || s[2] !== w || s[3] !== c) {
    throw new InputShapeError(
      `${owner}: images must have shape ${formatShape([null, h, w, c])} (a batch of NHWC images for this model), got ${formatShape(s)}`,
    );
  }
}

/**
 * Runs the model once in inference mode and returns the attention probabilities
 * `[B, heads, N, N]` of the chosen blocks (all by default), with N = prefix tokens + patches.
 * Uses {@link VisionTransformer.forwardWithAttention}, a separate inference path: training
 * (`fit`, `predict`) never computes the maps.
 *
 * @param modelOrLayer a model from `createViT` or the `VisionTransformer` layer.
 * @param images `[B, H, W, C]` already preprocessed (see `preprocess`).
 * @param options.blocks 0-based block indices (negative from the end), default all.
 * @example
 * const { attentions, blocks, logits } = getAttention(model, x, { blocks: [0, -1] });
 * tf.dispose([...attentions, logits]);
 */
export function getAttention(
  modelOrLayer: ViTLike,
  images: tf.Tensor,
  options: { blocks?: number[] } = {},
): AttentionResult {
  const owner = 'getAttention';
  const vit = findVisionTransformer(modelOrLayer, owner);
  assertImages(owner, vit, images);
  const blocks = [
    ...new Set(resolveBlockIndices(owner, 'blocks', options.blocks, vit.config.depth)),
  ].sort((a, b) => a - b);
  const out = vit.forwardWithAttention(images, { blocks });
  return { attentions: out.attentions, blocks: out.blocks, logits: out.logits };
}

/** How the heads of one attention map are combined. */
export type HeadReduction = 'mean' | 'max' | number;

/** Which query tokens a patch map is read from. */
export type QueryReduction = 'cls' | 'mean';

/** Options of {@link attentionMaps}. */
export interface AttentionMapsOptions {
  /** 0-based block indices (negative from the end). Default all blocks, in order. */
  layers?: number[];
  /** Head fusion: `'mean'` (default), `'max'` over heads, or one head's 0-based index. */
  heads?: HeadReduction;
  /**
   * `'cls'`: the class token's attention to each patch (row 0), the default when the model has a
   * class token. `'mean'`: the mean attention each patch receives, averaged over all N query
   * tokens (column mean); the default (and only choice) without a class token.
   */
  reduce?: QueryReduction;
}

/** Layout plus head / query reductions for {@link mapsFromAttentions}. */
export interface MapsFromAttentionsOptions extends Partial<TokenLayout> {
  /** Head fusion, as in {@link AttentionMapsOptions.heads}. Default `'mean'`. */
  heads?: HeadReduction;
  /** Query reduction, as in {@link AttentionMapsOptions.reduce}. */
  reduce?: QueryReduction;
}

/**
 * Patch-attention grids from given attention matrices (pure math, no model): for each
 * `[B, heads, N, N]` matrix, fuse the heads, read the class-token row (or the column mean),
 * drop the prefix tokens and reshape to the patch grid. Returns `[B, L, gh, gw]`.
 *
 * Layout defaults: one class token (`numPrefixTokens: 1`, `classToken: true`) and a square grid.
 */
export function mapsFromAttentions(
  attentions: readonly tf.Tensor4D[],
  options: MapsFromAttentionsOptions = {},
): tf.Tensor4D {
  const owner = 'mapsFromAttentions';
  const layout = resolveLayout(owner, attentions, options);
  const heads = attentions[0].shape[1];
  const headSel = options.heads ?? 'mean';
  if (
    headSel !== 'mean' &&
    headSel !== 'max' &&
    !(Number.isInteger(headSel) && headSel >= 0 && headSel < heads)
  ) {
    throw new ConfigError(
      `${owner}: heads must be 'mean', 'max' or a head index in [0, ${heads - 1}], got ${describeValue(headSel)}`,
    );
  }
  const reduce = options.reduce ?? (layout.classToken ? 'cls' : 'mean');
  if (reduce !== 'cls' && reduce !== 'mean') {
    throw new ConfigError(`${owner}: reduce must be 'cls' or 'mean', got ${describeValue(reduce)}`);
  }
  if (reduce === 'cls' && !layout.classToken) {
    throw new ConfigError(
      `${owner}: reduce 'cls' needs a class token, but the model has classToken: false; use reduce 'mean'`,
    );
  }
  const [gh, gw] = layout.gridSize;
  const p = layout.numPrefixTokens;
  return tf.tidy(() => {
    const maps = attentions.map((a) => {
      const b = a.shape[0];
      const fused = fuseHeads(a, headSel); // [B, N, N]
      const rows =
        reduce === 'cls' ? tf.slice(fused, [0, 0, 0], [-1, 1, -1]) : tf.mean(fused, 1, true); // [B, 1, N]
      return tf.reshape(tf.slice(rows, [0, 0, p], [-1, -1, -1]), [b, 1, gh, gw]);
    });
    return tf.concat(maps, 1) as tf.Tensor4D;
  });
}

/**
 * Class-token-to-patch attention of chosen blocks as patch grids, `[B, L, gh, gw]` (one grid per
 * image and requested layer, in the order of `layers`). Models without a class token use the
 * mean attention each patch receives; register tokens are skipped. Values are attention
 * probabilities (not normalised for display: see `normalizeMaps`).
 *
 * @example
 * const maps = attentionMaps(model, x, { layers: [0, 5, 11], heads: 'mean' }); // [B, 3, 14, 14]
 */
export function attentionMaps(
  modelOrLayer: ViTLike,
  images: tf.Tensor,
  options: AttentionMapsOptions = {},
): tf.Tensor4D {
  const owner = 'attentionMaps';
  const vit = findVisionTransformer(modelOrLayer, owner);
  assertImages(owner, vit, images);
  const layers = resolveBlockIndices(owner, 'layers', options.layers, vit.config.depth);
  const res = getAttention(vit, images, { blocks: layers });
  try {
    const ordered = layers.map((l) => res.attentions[res.blocks.indexOf(l)]);
    return mapsFromAttentions(ordered, {
      numPrefixTokens: vit.numPrefixTokens,
      classToken: vit.config.classToken,
      gridSize: vit.inputGrid(images),
      heads: options.heads,
      reduce: options.reduce,
    });
  } finally {
    tf.dispose([...res.attentions, res.logits]);
  }
}

/** Fuses the heads of `[B, H, N, N]` into `[B, N, N]`. */
export function fuseHeads(attention: tf.Tensor4D, fusion: HeadReduction | 'min'): tf.Tensor3D {
  return tf.tidy(() => {
    if (fusion === 'mean') return tf.mean(attention, 1) as tf.Tensor3D;
    if (fusion === 'max') return tf.max(attention, 1) as tf.Tensor3D;
    if (fusion === 'min') return tf.min(attention, 1) as tf.Tensor3D;
    const [b, , n] = attention.shape;
    return tf.reshape(tf.slice(attention, [0, fusion, 0, 0], [-1, 1, -1, -1]), [
      b,
      n,
      n,
    ]) as tf.Tensor3D;
  });
}

/**
 * Validates a list of attention matrices (rank 4, square, same shape) and fills the token layout
 * defaults. Exported for the rollout.
 */
export function resolveLayout(
  owner: string,
  attentions: readonly tf.Tensor[],
  layout: Partial<TokenLayout>,
  requireGrid = true,
): TokenLayout {
  if (!Array.isArray(attentions) || attentions.length === 0) {
    throw new ConfigError(
      `${owner}: attentions must be a non-empty array of [B, heads, N, N] tensors, got ${describeValue(attentions)}`,
    );
  }
  const first = attentions[0].shape;
  attentions.forEach((a, i) => {
    const s = a?.shape;
    if (s == null || s.length !== 4 || s[2] !== s[3]) {
      throw new InputShapeError(
        `${owner}: attentions[${i}] must have shape [B, heads, N, N], got ${s ? formatShape(s) : describeValue(a)}`,
      );
    }
    if (s.some((d: number, k: number) => d !== first[k])) {
      throw new InputShapeError(
        `${owner}: attentions[${i}] has shape ${formatShape(s)}, but attentions[0] has ${formatShape(first)}`,
      );
    }
  });
  const n = first[2];
  const classToken = layout.classToken ?? true;
  const p = layout.numPrefixTokens ?? (classToken ? 1 : 0);
  if (!Number.isInteger(p) || p < (classToken ? 1 : 0) || p >= n) {
    throw new ConfigError(
      `${owner}: numPrefixTokens must be an integer in [${classToken ? 1 : 0}, ${n - 1}], got ${String(p)}`,
    );
  }
  let grid = layout.gridSize;
  if (grid == null) {
    const side = Math.round(Math.sqrt(n - p));
    if (side * side !== n - p) {
      // Callers that never reshape to a grid (the full rollout matrix) accept any patch count.
      if (!requireGrid) return { numPrefixTokens: p, classToken, gridSize: [1, n - p] };
      throw new ConfigError(
        `${owner}: ${n - p} patch tokens do not form a square grid; pass gridSize [gh, gw]`,
      );
    }
    grid = [side, side];
  }
  if (grid[0] * grid[1] !== n - p) {
    throw new ConfigError(
      `${owner}: gridSize [${grid.join(', ')}] has ${grid[0] * grid[1]} patches, but the attention has ${n - p} patch tokens (N = ${n}, ${p} prefix)`,
    );
  }
  return { numPrefixTokens: p, classToken, gridSize: [grid[0], grid[1]] };
}
