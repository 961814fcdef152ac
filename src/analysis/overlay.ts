import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, formatShape, InputShapeError } from '../errors';
import { applyColormap, type ColormapName, toRgba } from './colormap';
import { normalizeMaps } from './normalize';
import { type UpsampleMethod, upsampleMaps } from './upsample';

/** Options of {@link heatmapToRgba}. */
export interface HeatmapOptions {
  /** Colormap. Default `'jet'`. */
  colormap?: ColormapName;
  /** Fixed `[low, high]` mapped to the colormap ends; default per-map min-max. */
  range?: [number, number];
  /** Output `[H, W]`; default the map's own size. */
  size?: [number, number];
  /** Resampling to `size`. Default `'nearest'`. */
  upsample?: UpsampleMethod;
}

/** Options of {@link overlayHeatmap}. */
export interface OverlayOptions extends Omit<HeatmapOptions, 'size'> {
  /** Weight of the heatmap: `out = (1 - alpha) * image + alpha * heat`. Default 0.5. */
  alpha?: number;
  /** Value of full intensity in `image`: 255 (default, decoded files, `fromPixels`) or 1. */
  imageMax?: number;
}

function assertMap(owner: string, map: tf.Tensor): void {
  if (!(map instanceof tf.Tensor) || map.rank !== 2) {
    throw new InputShapeError(
      `${owner}: map must be one [h, w] grid, got ${map instanceof tf.Tensor ? formatShape(map.shape) : String(map)}`,
    );
  }
}

/** Normalised, resized map `[H, W]` in [0, 1] coloured to RGB floats `[H, W, 3]`. */
function colouredMap(
  owner: string,
  map: tf.Tensor,
  size: [number, number] | undefined,
  o: HeatmapOptions,
): tf.Tensor3D {
  assertMap(owner, map);
  return tf.tidy(() => {
    const norm = normalizeMaps(map, { range: o.range });
    const resized = size ? upsampleMaps(norm, size, o.upsample ?? 'nearest') : norm;
    // Bilinear stays within [0, 1]; clip anyway so the table lookup never sees rounding noise.
    return applyColormap(tf.clipByValue(resized, 0, 1), o.colormap ?? 'jet') as tf.Tensor3D;
  });
}

/**
 * A map `[h, w]` as a coloured image: normalised (min-max or `range`), optionally resized to
 * `size`, coloured. Returns RGBA `[H, W, 4]` int32 in 0..255 (alpha 255).
 */
export function heatmapToRgba(map: tf.Tensor, options: HeatmapOptions = {}): tf.Tensor3D {
  return tf.tidy(() => toRgba(colouredMap('heatmapToRgba', map, options.size, options)));
}

/**
 * Blends a coloured map over an image: the map `[h, w]` is normalised, resized to the image
 * (`'nearest'` by default), coloured, and mixed `(1 - alpha) * image + alpha * heat` in [0, 1]
 * per RGB channel; the result is RGBA `[H, W, 4]` int32 in 0..255 with alpha 255, rounded.
 *
 * @param image `[H, W, 3]`, `[H, W, 1]` or `[H, W]` (grey is repeated to RGB; a 4th channel is
 * dropped), values 0..`imageMax`.
 * @example
 * const rgba = overlayHeatmap(img, rolloutGrid, { alpha: 0.6, colormap: 'jet' });
 */
export function overlayHeatmap(
  image: tf.Tensor,
  map: tf.Tensor,
  options: OverlayOptions = {},
): tf.Tensor3D {
  const owner = 'overlayHeatmap';
  const s = image instanceof tf.Tensor ? image.shape : null;
  if (s == null || !(s.length === 2 || (s.length === 3 && [1, 3, 4].includes(s[2])))) {
    throw new InputShapeError(
      `${owner}: image must have shape [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got ${s ? formatShape(s) : String(image)}`,
    );
  }
  const alpha = options.alpha ?? 0.5;
  if (typeof alpha !== 'number' || !(alpha >= 0 && alpha <= 1)) {
    throw new ConfigError(`${owner}: alpha must be a number in [0, 1], got ${String(alpha)}`);
  }
  const imageMax = options.imageMax ?? 255;
  if (typeof imageMax !== 'number' || !(imageMax > 0)) {
    throw new ConfigError(
      `${owner}: imageMax must be a number > 0 (255 or 1), got ${String(imageMax)}`,
    );
  }
  return tf.tidy(() => {
    let rgb = tf.div(
      tf.cast(s.length === 2 ? tf.expandDims(image, -1) : image, 'float32'),
      imageMax,
    );
    if (rgb.shape[2] === 4) rgb = tf.slice(rgb, [0, 0, 0], [-1, -1, 3]);
    if (rgb.shape[2] === 1) rgb = tf.tile(rgb, [1, 1, 3]);
    const heat = colouredMap(owner, map, [s[0], s[1]], options);
    return toRgba(tf.add(tf.mul(rgb, 1 - alpha), tf.mul(heat, alpha)));
  });
}
