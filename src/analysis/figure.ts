import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, formatShape, InputShapeError } from '../errors';
import { GLYPH_HEIGHT, GLYPH_WIDTH, glyph, textWidth } from './bitmap_font';

/** RGBA pixels, row-major, 4 bytes per pixel (ImageData's layout). */
export interface RgbaImage {
  data: Uint8ClampedArray;
  width: number;
  height: number;
}

/** One titled panel of a figure: an RGBA tensor `[H, W, 4]` (0..255) or pixels. */
export interface FigurePanel {
  image: tf.Tensor | RgbaImage;
  title?: string;
}

/** Layout of {@link composeFigure}. */
export interface FigureOptions {
  /** Panels per row. Default: all in one row. */
  columns?: number;
  /** Integer magnification of every panel (nearest neighbour). Default 1. */
  scale?: number;
  /** Integer magnification of the 5x7 font. Default 2. */
  textScale?: number;
  /** Gap between panels and around the figure, in pixels. Default 8. */
  padding?: number;
  /** Background RGB. Default white. */
  background?: [number, number, number];
  /** Text RGB. Default black. */
  color?: [number, number, number];
}

function toImage(p: FigurePanel['image'], i: number): RgbaImage {
  if (!(p instanceof tf.Tensor))
    return { data: new Uint8ClampedArray(p.data), width: p.width, height: p.height };
  if (p.rank !== 3 || p.shape[2] !== 4) {
    throw new InputShapeError(
      `composeFigure: panels[${i}].image must be an RGBA tensor [H, W, 4] (0..255), got ${formatShape(p.shape)}`,
    );
  }
  const [height, width] = p.shape as [number, number, number];
  return { data: new Uint8ClampedArray(p.dataSync() as Int32Array), width, height };
}

/**
 * Draws text with the built-in 5x7 bitmap font into RGBA pixels at (x, y) (top-left), each font
 * pixel a `scale` x `scale` block. Characters outside the image are clipped.
 */
export function drawText(
  img: RgbaImage,
  text: string,
  x: number,
  y: number,
  options: { scale?: number; color?: [number, number, number] } = {},
): void {
  const s = options.scale ?? 2;
  const [r, g, b] = options.color ?? [0, 0, 0];
  [...text].forEach((ch, k) => {
    glyph(ch).forEach((row, gy) => {
      row.forEach((on, gx) => {
        if (!on) return;
        for (let dy = 0; dy < s; dy++) {
          for (let dx = 0; dx < s; dx++) {
            const px = x + (k * (GLYPH_WIDTH + 1) + gx) * s + dx;
            const py = y + gy * s + dy;
            if (px < 0 || py < 0 || px >= img.width || py >= img.height) continue;
            const o = (py * img.width + px) * 4;
            img.data[o] = r;
            img.data[o + 1] = g;
            img.data[o + 2] = b;
            img.data[o + 3] = 255;
          }
        }
      });
    });
  });
}

/**
 * Lays out titled panels in a grid on one RGBA image (for a PNG with `writePng`, or a canvas):
 * each cell is a title line (centred, bitmap font) above the panel magnified by `scale`.
 * Cells are as large as the largest panel (or title). Pure JavaScript apart from reading tensors.
 */
export function composeFigure(
  panels: readonly FigurePanel[],
  options: FigureOptions = {},
): RgbaImage {
  if (!Array.isArray(panels) || panels.length === 0) {
    throw new ConfigError('composeFigure: panels must be a non-empty array of { image, title }');
  }
  const columns = options.columns ?? panels.length;
  const scale = options.scale ?? 1;
  const ts = options.textScale ?? 2;
  const pad = options.padding ?? 8;
  for (const [name, v] of [
    ['columns', columns],
    ['scale', scale],
    ['textScale', ts],
  ] as const) {
    if (!Number.isInteger(v) || v <= 0)
      throw new ConfigError(`composeFigure: ${name} must be a positive integer, got ${String(v)}`);
  }
  const images = panels.map((p, i) => toImage(p.image, i));
  const titleH = panels.some((p) => p.title) ? GLYPH_HEIGHT * ts + pad / 2 : 0;
  const cellW = Math.max(
    ...images.map((im) => im.width * scale),
    ...panels.map((p) => textWidth(p.title ?? '') * ts),
  );
  const cellH = titleH + Math.max(...images.map((im) => im.height * scale));
  const rows = Math.ceil(panels.length / columns);
  const width = pad + columns * (cellW + pad);
  const height = pad + rows * (cellH + pad);
  const out: RgbaImage = { data: new Uint8ClampedArray(width * height * 4), width, height };
  const [br, bg, bb] = options.background ?? [255, 255, 255];
  for (let i = 0; i < width * height; i++) out.data.set([br, bg, bb, 255], i * 4);
  images.forEach((im, i) => {
    const cx = pad + (i % columns) * (cellW + pad);
    const cy = pad + Math.floor(i / columns) * (cellH + pad);
    const title = panels[i].title ?? '';
    drawText(out, title, cx + Math.floor((cellW - textWidth(title) * ts) / 2), cy, {
      scale: ts,
      color: options.color,
    });
    const ox = cx + Math.floor((cellW - im.width * scale) / 2);
    const oy = cy + titleH;
    for (let y = 0; y < im.height * scale; y++) {
      for (let x = 0; x < im.width * scale; x++) {
        const src = (Math.floor(y / scale) * im.width + Math.floor(x / scale)) * 4;
        out.data.set(im.data.subarray(src, src + 4), ((oy + y) * width + ox + x) * 4);
      }
    }
  });
  return out;
}
