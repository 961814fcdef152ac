import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import { formatShape, InputShapeError } from '../errors';
import { toRgba } from './colormap';
import { type HeatmapOptions, heatmapToRgba, type OverlayOptions, overlayHeatmap } from './overlay';

/** RGBA pixels in row-major order, 4 bytes per pixel (the layout of ImageData and pngjs). */
export interface RgbaPixels {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

/**
 * Pixels of an image tensor `[H, W, 4]`, `[H, W, 3]`, `[H, W, 1]` or `[H, W]` with values
 * 0..255 (rounded and clipped; a missing alpha becomes 255), as RGBA bytes.
 */
export function tensorToRgbaPixels(image: tf.Tensor): RgbaPixels {
  const s = image instanceof tf.Tensor ? image.shape : null;
  if (s == null || !(s.length === 2 || (s.length === 3 && [1, 3, 4].includes(s[2])))) {
    throw new InputShapeError(
      `tensorToRgbaPixels: image must have shape [H, W, 4], [H, W, 3], [H, W, 1] or [H, W] with values 0..255, got ${s ? formatShape(s) : String(image)}`,
    );
  }
  const values = tf.tidy(() => {
    const rgba =
      s.length === 3 && s[2] === 4
        ? tf.cast(image, 'float32')
        : tf.cast(toRgba(tf.div(tf.cast(image, 'float32'), 255)), 'float32');
    return tf.clipByValue(tf.round(rgba), 0, 255);
  });
  const data = Uint8Array.from(values.dataSync());
  values.dispose();
  return { data, width: s[1], height: s[0] };
}

/** Encodes RGBA pixels or an image tensor (see {@link tensorToRgbaPixels}) as PNG bytes (pngjs). */
export function encodePng(image: tf.Tensor | RgbaPixels): Uint8Array {
  const px = image instanceof tf.Tensor ? tensorToRgbaPixels(image) : image;
  if (px == null || px.data == null || px.data.length !== px.width * px.height * 4) {
    throw new InputShapeError(
      `encodePng: pixels must be { data, width, height } with data.length = width * height * 4, got ${px == null ? String(px) : `data.length ${px.data?.length}, ${px.width}x${px.height}`}`,
    );
  }
  const png = new pngjs.PNG({ width: px.width, height: px.height });
  png.data = Buffer.from(px.data.buffer, px.data.byteOffset, px.data.byteLength);
  return pngjs.PNG.sync.write(png);
}

/**
 * Writes an image tensor (`[H, W, 4]` RGBA int32 0..255 as returned by `overlayHeatmap`, or RGB
 * / grey, see {@link tensorToRgbaPixels}) or RGBA pixels to a PNG file, creating the directory.
 */
export async function writePng(path: string, image: tf.Tensor | RgbaPixels): Promise<void> {
  const bytes = encodePng(image);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
}

/** Options of {@link saveHeatmapPng}. */
export interface SaveHeatmapOptions
  extends HeatmapOptions,
    Omit<OverlayOptions, keyof HeatmapOptions> {
  /** Image `[H, W, C]` to overlay the map on (the map is resized to it); omit for the bare heatmap. */
  image?: tf.Tensor;
}

/**
 * Saves one map `[h, w]` as a PNG: coloured (`heatmapToRgba`, resized to `size` if given) or,
 * with `image`, blended over the image (`overlayHeatmap`).
 */
export async function saveHeatmapPng(
  path: string,
  map: tf.Tensor,
  options: SaveHeatmapOptions = {},
): Promise<void> {
  const { image, ...rest } = options;
  const rgba = image ? overlayHeatmap(image, map, rest) : heatmapToRgba(map, rest);
  try {
    await writePng(path, rgba);
  } finally {
    rgba.dispose();
  }
}

/**
 * Decodes PNG (pngjs) or JPEG (jpeg-js) bytes, recognised by their signature, to an RGB tensor
 * `[H, W, 3]` int32 0..255 (alpha dropped, grey expanded to RGB).
 */
export function decodeImage(bytes: Uint8Array): tf.Tensor3D {
  const isPng =
    bytes.length > 8 &&
    bytes[0] === 0x89 &&
    bytes[1] === 0x50 &&
    bytes[2] === 0x4e &&
    bytes[3] === 0x47;
  const isJpeg = bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  let px: RgbaPixels;
  if (isPng) {
    const png = pngjs.PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    px = { data: png.data, width: png.width, height: png.height };
  } else if (isJpeg) {
    px = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
  } else {
    const head = Array.from(bytes.slice(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new InputShapeError(
      `decodeImage: expected PNG (89 50 4e 47) or JPEG (ff d8 ff) bytes, got a file starting ${head}`,
    );
  }
  return tf.tidy(() => {
    const rgba = tf.tensor3d(Int32Array.from(px.data), [px.height, px.width, 4], 'int32');
    return tf.slice(rgba, [0, 0, 0], [-1, -1, 3]);
  });
}

/** Reads a PNG or JPEG file into an RGB tensor `[H, W, 3]` int32 0..255 (see {@link decodeImage}). */
export async function decodeImageFile(path: string): Promise<tf.Tensor3D> {
  const bytes = await readFile(path);
  try {
    return decodeImage(bytes);
  } catch (e) {
    if (e instanceof InputShapeError)
      throw new InputShapeError(`decodeImageFile(${path}): ${e.message}`);
    throw e;
  }
}
