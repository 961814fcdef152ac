import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, formatShape, InputShapeError } from '../errors';

/**
 * Draws an RGBA (or RGB) image `[H, W, 4]` int32 0..255 (as returned by `overlayHeatmap`,
 * `heatmapToRgba`) onto a `<canvas>`, resizing the canvas to W x H. Browser only; a thin wrapper
 * over `tf.browser.toPixels` that checks the shape first.
 */
export async function drawToCanvas(rgba: tf.Tensor, canvas: HTMLCanvasElement): Promise<void> {
  const s = rgba instanceof tf.Tensor ? rgba.shape : null;
  if (s == null || s.length !== 3 || ![1, 3, 4].includes(s[2])) {
    throw new InputShapeError(
      `drawToCanvas: rgba must have shape [H, W, 4] (or [H, W, 3] / [H, W, 1]), got ${s ? formatShape(s) : String(rgba)}`,
    );
  }
  if (canvas == null || typeof (canvas as { getContext?: unknown }).getContext !== 'function') {
    throw new ConfigError(
      'drawToCanvas: canvas must be an HTMLCanvasElement (or OffscreenCanvas-like object with getContext)',
    );
  }
  await tf.browser.toPixels(rgba as tf.Tensor3D, canvas);
}
