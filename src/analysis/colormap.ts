import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, formatShape, InputShapeError } from '../errors';
import { HOT_SEGMENTS, JET_SEGMENTS, type Segments, VIRIDIS_ANCHORS } from './colormap_data';

/** Names of the built-in colormaps. */
export const COLORMAP_NAMES = ['hot', 'jet', 'viridis', 'gray'] as const;

/** A built-in colormap name. */
export type ColormapName = (typeof COLORMAP_NAMES)[number];

/** Entries of every colormap table (as matplotlib's default N). */
export const COLORMAP_SIZE = 256;

const cache = new Map<ColormapName, Float32Array>();

/** Value of a piecewise-linear channel at x. */
function evalSegments(seg: Segments, x: number): number {
  for (let i = 1; i < seg.length; i++) {
    const [x1, y1] = seg[i];
    if (x <= x1) {
      const [x0, y0] = seg[i - 1];
      return x1 === x0 ? y1 : y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
    }
  }
  return seg[seg.length - 1][1];
}

function buildTable(name: ColormapName): Float32Array {
  const t = new Float32Array(COLORMAP_SIZE * 3);
  if (name === 'viridis') {
    for (let a = 1; a < VIRIDIS_ANCHORS.length; a++) {
      const [i0, ...c0] = VIRIDIS_ANCHORS[a - 1];
      const [i1, ...c1] = VIRIDIS_ANCHORS[a];
      for (let i = i0; i <= i1; i++) {
        const f = (i - i0) / (i1 - i0);
        for (let ch = 0; ch < 3; ch++) t[i * 3 + ch] = c0[ch] + f * (c1[ch] - c0[ch]);
      }
    }
    return t;
  }
  for (let i = 0; i < COLORMAP_SIZE; i++) {
    // matplotlib samples a segmented map at x = i / (N - 1).
    const x = i / (COLORMAP_SIZE - 1);
    if (name === 'gray') {
      t.fill(x, i * 3, i * 3 + 3);
      continue;
    }
    const seg = name === 'hot' ? HOT_SEGMENTS : JET_SEGMENTS;
    t[i * 3] = evalSegments(seg.r, x);
    t[i * 3 + 1] = evalSegments(seg.g, x);
    t[i * 3 + 2] = evalSegments(seg.b, x);
  }
  return t;
}

/**
 * The 256 x 3 RGB table (values 0..1, row-major) of a colormap: `'hot'`, `'jet'` (matplotlib's
 * segment data), `'viridis'` (the published matplotlib table, sampled every 4 entries and
 * interpolated linearly) or `'gray'`. Plain numbers, no tensors.
 */
export function colormapTable(name: ColormapName): Float32Array {
  if (!(COLORMAP_NAMES as readonly string[]).includes(name)) {
    throw new ConfigError(
      `colormap: name must be one of ${COLORMAP_NAMES.map((n) => `'${n}'`).join(', ')}, got ${String(name)}`,
    );
  }
  let t = cache.get(name);
  if (!t) {
    t = buildTable(name);
    cache.set(name, t);
  }
  return t.slice();
}

/**
 * Maps values in `[0, 1]` (any shape `[...]`) to RGB `[..., 3]` floats in `[0, 1]` by table
 * lookup (`tf.gather`, so it runs on any backend). The entry is `floor(v * 256)` clipped to
 * 0..255, matplotlib's lookup rule; values outside [0, 1] take the end colours.
 */
export function applyColormap(values: tf.Tensor, name: ColormapName = 'jet'): tf.Tensor {
  if (!(values instanceof tf.Tensor)) {
    throw new InputShapeError(
      `applyColormap: values must be a tf.Tensor with values in [0, 1], got ${String(values)}`,
    );
  }
  const table = colormapTable(name);
  return tf.tidy(() => {
    const idx = tf.cast(
      tf.clipByValue(tf.floor(tf.mul(values, COLORMAP_SIZE)), 0, COLORMAP_SIZE - 1),
      'int32',
    );
    const flat = tf.gather(tf.tensor2d(table, [COLORMAP_SIZE, 3]), tf.reshape(idx, [-1]));
    return tf.reshape(flat, [...values.shape, 3]);
  });
}

/**
 * Converts an RGB or grey image with values in `[0, 1]` (`[H, W, 3]` or `[H, W, 1]` / `[H, W]`)
 * to RGBA `[H, W, 4]` int32 in 0..255 (alpha 255), the pixel format of `writePng` and
 * `drawToCanvas` (`tf.browser.toPixels`). Values are clipped, then rounded.
 */
export function toRgba(image01: tf.Tensor): tf.Tensor3D {
  const s = image01.shape;
  const okRank = s.length === 2 || (s.length === 3 && (s[2] === 1 || s[2] === 3 || s[2] === 4));
  if (!okRank) {
    throw new InputShapeError(
      `toRgba: image must have shape [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got ${formatShape(s)}`,
    );
  }
  return tf.tidy(() => {
    let rgb = s.length === 2 ? tf.expandDims(image01, -1) : image01;
    if (rgb.shape[2] === 4) rgb = tf.slice(rgb, [0, 0, 0], [-1, -1, 3]);
    if (rgb.shape[2] === 1) rgb = tf.tile(rgb, [1, 1, 3]);
    const bytes = tf.round(tf.mul(tf.clipByValue(rgb, 0, 1), 255));
    const alpha = tf.fill([s[0], s[1], 1], 255);
    return tf.cast(tf.concat([bytes, alpha], 2), 'int32') as tf.Tensor3D;
  });
}
