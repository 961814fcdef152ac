/**
 * Token geometry of a Vision Transformer in one place: image and patch sizes as pairs, the patch
 * grid, the prefix tokens (class + register tokens) and the sequence length. PatchEmbed,
 * ViTEmbedding, VisionTransformer, countViTParams and countViTMacs all read it from here, so a new
 * kind of prefix token is added once.
 */
import { ConfigError, requirePositiveInt } from './errors';

/** A size given as one number (square) or as `[height, width]`. */
export type Size2D = number | [number, number];

/** Normalizes a {@link Size2D} to `[height, width]`, validating both entries. */
export function toPair(owner: string, name: string, size: Size2D): [number, number] {
  if (Array.isArray(size) && size.length !== 2) {
    throw new ConfigError(
      `${owner}: ${name} must be a number or [height, width], got [${size.join(', ')}]`,
    );
  }
  const pair: [number, number] = Array.isArray(size) ? [size[0], size[1]] : [size, size];
  requirePositiveInt(owner, `${name} (height)`, pair[0]);
  requirePositiveInt(owner, `${name} (width)`, pair[1]);
  return pair;
}

/** The patch grid of an image: `gridSize = imgSize / patchSize` per axis. */
export interface PatchGrid {
  /** Patch grid `[gh, gw]` (rows, columns). */
  gridSize: [number, number];
  /** Number of patch tokens `gh * gw`. */
  numPatches: number;
}

/**
 * The patch grid of `imgSize` cut into `patchSize` patches. Throws a {@link ConfigError} naming
 * `owner` when a side is not divisible by the patch size.
 */
export function patchGrid(
  owner: string,
  imgSize: readonly [number, number],
  patchSize: readonly [number, number],
): PatchGrid {
  const [h, w] = imgSize;
  const [ph, pw] = patchSize;
  if (h % ph !== 0 || w % pw !== 0) {
    throw new ConfigError(
      `${owner}: imgSize [${h}, ${w}] must be divisible by patchSize [${ph}, ${pw}]; ` +
        `got remainders [${h % ph}, ${w % pw}]`,
    );
  }
  const gridSize: [number, number] = [h / ph, w / pw];
  return { gridSize, numPatches: gridSize[0] * gridSize[1] };
}

/** Which learned tokens precede the patch tokens. */
export interface PrefixTokens {
  /** A class token (timm `class_token`). */
  classToken: boolean;
  /** Number of register tokens after the class token (timm `reg_tokens`). */
  numRegTokens: number;
  /** DeiT's distillation token after the class token (timm `dist_token`; ViTConfig `distilled`). */
  distToken?: boolean;
}

/** Number of prefix tokens (class, distillation, register tokens) placed before the patch tokens. */
export function numPrefixTokens(prefix: PrefixTokens): number {
  return (prefix.classToken ? 1 : 0) + (prefix.distToken ? 1 : 0) + prefix.numRegTokens;
}

/** Everything a ViT's shapes follow from. */
export interface TokenGeometry extends PatchGrid {
  /** Prefix tokens (class + registers) before the patch tokens. */
  numPrefixTokens: number;
  /** Sequence length through the blocks: prefix tokens + patch tokens. */
  numTokens: number;
}

/**
 * Grid, prefix and sequence length of a ViT with the given sizes and prefix tokens, e.g.
 * ViT-B/16 at 224 px: grid `[14, 14]`, 196 patches, 1 prefix token, 197 tokens.
 */
export function tokenGeometry(
  owner: string,
  config: {
    imgSize: readonly [number, number];
    patchSize: readonly [number, number];
  } & PrefixTokens,
): TokenGeometry {
  const grid = patchGrid(owner, config.imgSize, config.patchSize);
  const prefix = numPrefixTokens(config);
  return { ...grid, numPrefixTokens: prefix, numTokens: prefix + grid.numPatches };
}
