import * as tf from '@tensorflow/tfjs-core';
import { afterEach, expect, it } from 'vitest';
import { composeFigure, drawText, drawToCanvas } from '../../src/index';
import { describeBackends } from '../helpers/backends';

const white = (w: number, h: number) => ({
  data: new Uint8ClampedArray(w * h * 4).fill(255),
  width: w,
  height: h,
});

describeBackends('figure helpers', () => {
  afterEach(() => {
    delete (globalThis as { ImageData?: unknown }).ImageData;
  });

  it('drawText renders the 5x7 glyph of "1" pixel by pixel', () => {
    const img = white(5, 7);
    drawText(img, '1', 0, 0, { scale: 1 });
    const rows = [];
    for (let y = 0; y < 7; y++) {
      let r = '';
      for (let x = 0; x < 5; x++) r += img.data[(y * 5 + x) * 4] === 0 ? '1' : '0';
      rows.push(r);
    }
    expect(rows).toEqual(['00100', '01100', '00100', '00100', '00100', '00100', '01110']);
  });

  it('composeFigure lays panels out in a grid with titles above, magnified', () => {
    const red = tf.tensor3d(new Array(2 * 3).fill([255, 0, 0, 255]).flat(), [2, 3, 4], 'int32');
    const blue = {
      data: new Uint8ClampedArray(new Array(2 * 3).fill([0, 0, 255, 255]).flat()),
      width: 3,
      height: 2,
    };
    const fig = composeFigure(
      [
        { image: red, title: 'A' },
        { image: blue, title: 'B' },
      ],
      { columns: 1, scale: 2, textScale: 1, padding: 2 },
    );
    // title 7 + padding/2 = 8 rows, cell 6 x (8 + 4), two rows of cells with padding 2.
    expect([fig.width, fig.height]).toEqual([2 + 6 + 2, 2 + 2 * (12 + 2)]);
    const px = (x: number, y: number) =>
      Array.from(fig.data.slice((y * fig.width + x) * 4, (y * fig.width + x) * 4 + 4));
    expect(px(2, 2 + 8)).toEqual([255, 0, 0, 255]); // first panel's top-left
    expect(px(7, 2 + 8 + 3)).toEqual([255, 0, 0, 255]); // its bottom-right (3x2 scaled to 6x4)
    expect(px(2, 2 + 14 + 8)).toEqual([0, 0, 255, 255]); // second row
    expect(px(0, 0)).toEqual([255, 255, 255, 255]); // background
    expect(() => composeFigure([])).toThrow(/non-empty array/);
    expect(() => composeFigure([{ image: tf.zeros([2, 2, 3]) }])).toThrow(
      /RGBA tensor \[H, W, 4\].*got \[2, 2, 3\]/,
    );
    red.dispose();
  });

  it('drawToCanvas sizes the canvas and puts the RGBA bytes (tf.browser.toPixels)', async () => {
    // Node has no canvas: a minimal stand-in records what toPixels draws.
    class FakeImageData {
      constructor(
        public data: Uint8ClampedArray,
        public width: number,
        public height: number,
      ) {}
    }
    (globalThis as { ImageData?: unknown }).ImageData = FakeImageData;
    let drawn: FakeImageData | null = null;
    const canvas = {
      width: 0,
      height: 0,
      getContext: () => ({ putImageData: (d: FakeImageData) => (drawn = d) }),
    } as unknown as HTMLCanvasElement;
    const rgba = tf.tensor3d(
      [
        [
          [10, 20, 30, 255],
          [40, 50, 60, 255],
        ],
      ],
      [1, 2, 4],
      'int32',
    );
    await drawToCanvas(rgba, canvas);
    expect([canvas.width, canvas.height]).toEqual([2, 1]);
    expect(Array.from((drawn as unknown as FakeImageData).data)).toEqual([
      10, 20, 30, 255, 40, 50, 60, 255,
    ]);
    await expect(drawToCanvas(tf.zeros([2, 2]), canvas)).rejects.toThrow(
      /rgba must have shape \[H, W, 4\]/,
    );
    rgba.dispose();
  });
});
