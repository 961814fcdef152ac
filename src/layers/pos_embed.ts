/**
 * Position-embedding kinds of a Vision Transformer and the fixed 2-D sin-cos table of MAE.
 * The tables themselves live in {@link ViTEmbedding}; this file holds what is pure.
 */
import { ConfigError, requirePositiveInt } from '../errors';

/**
 * How patch tokens learn where they are:
 * - `'learned'`: one learned row per token (timm's `pos_embed [1, P + N, D]`, the default);
 * - `'learned2d'`: a learned row table `[1, gh, D]` and column table `[1, gw, D]`; patch
 *   (i, j) gets `row[i] + col[j]`, prefix tokens get nothing (`gh + gw` rows instead of
 *   `gh * gw`);
 * - `'sincos'`: MAE's fixed 2-D sin-cos table (not trained), the class token's row is zeros;
 * - `'none'`: no position information at all.
 */
export type PosEmbedKind = 'learned' | 'learned2d' | 'sincos' | 'none';

/** Every {@link PosEmbedKind}, for validation and docs. */
export const POS_EMBED_KINDS: readonly PosEmbedKind[] = ['learned', 'learned2d', 'sincos', 'none'];

/** Throws a {@link ConfigError} unless `value` is a {@link PosEmbedKind}. */
export function requirePosEmbedKind(owner: string, value: unknown): PosEmbedKind {
  if (!POS_EMBED_KINDS.includes(value as PosEmbedKind)) {
    throw new ConfigError(
      `${owner}: posEmbed must be one of ${POS_EMBED_KINDS.map((k) => `'${k}'`).join(', ')}, got ${JSON.stringify(value)}`,
    );
  }
  return value as PosEmbedKind;
}

/** 1-D sin-cos embedding of `pos` in `dim` channels: `[sin(pos * omega), cos(pos * omega)]`. */
function sincos1d(dim: number, pos: number, out: Float64Array, offset: number): void {
  const half = dim / 2;
  for (let i = 0; i < half; i++) {
    const omega = 1 / 10000 ** (i / half);
    out[offset + i] = Math.sin(pos * omega);
    out[offset + half + i] = Math.cos(pos * omega);
  }
}

/**
 * MAE's `get_2d_sincos_pos_embed` for a `[gh, gw]` patch grid: a `[numPrefixTokens + gh * gw,
 * embedDim]` table, row-major over the grid, prefix rows zero. As in MAE's code (`meshgrid(w,
 * h)`), the first half of the channels encodes the column index and the second half the row
 * index, each as `[sin(p * omega_i), cos(p * omega_i)]` with `omega_i = 10000^(-i / (D / 4))`,
 * `i = 0 .. D/4 - 1`. Computed in float64 like numpy, returned as float32. `embedDim` must be
 * divisible by 4.
 */
export function sincos2dPosEmbed(
  embedDim: number,
  grid: [number, number],
  numPrefixTokens = 0,
): Float32Array {
  const owner = 'sincos2dPosEmbed';
  requirePositiveInt(owner, 'embedDim', embedDim);
  if (embedDim % 4 !== 0) {
    throw new ConfigError(
      `${owner}: embedDim must be divisible by 4 for a 2-D sin-cos embedding, got ${embedDim}`,
    );
  }
  if (!Array.isArray(grid) || grid.length !== 2) {
    throw new ConfigError(`${owner}: grid must be [rows, cols], got ${JSON.stringify(grid)}`);
  }
  const [gh, gw] = grid;
  requirePositiveInt(owner, 'grid[0] (rows)', gh);
  requirePositiveInt(owner, 'grid[1] (cols)', gw);
  if (!Number.isInteger(numPrefixTokens) || numPrefixTokens < 0) {
    throw new ConfigError(
      `${owner}: numPrefixTokens must be an integer >= 0, got ${String(numPrefixTokens)}`,
    );
  }
  const half = embedDim / 2;
  const table = new Float64Array((numPrefixTokens + gh * gw) * embedDim);
  for (let r = 0; r < gh; r++) {
    for (let c = 0; c < gw; c++) {
      const base = (numPrefixTokens + r * gw + c) * embedDim;
      sincos1d(half, c, table, base);
      sincos1d(half, r, table, base + half);
    }
  }
  return Float32Array.from(table);
}
