import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import jpeg from 'jpeg-js';
import { expect, it } from 'vitest';
import { decodeImageFile, encodePng, saveHeatmapPng, writePng } from '../../src/node';
import { describeBackends, maxAbsDiff } from '../helpers/backends';

const dir = mkdtempSync(join(tmpdir(), 'vit-ts-png-'));

describeBackends('PNG / JPEG files', (backend) => {
  it('writePng then decodeImageFile gives back the same RGB pixels', async () => {
    const rgb = tf.randomUniform([5, 7, 3], 0, 256, 'int32', 11);
    const alpha = tf.fill([5, 7, 1], 255, 'int32');
    const rgba = tf.concat([rgb, alpha], 2);
    const path = join(dir, `roundtrip-${backend}.png`);
    await writePng(path, rgba);
    expect(Array.from(readFileSync(path).subarray(1, 4))).toEqual([0x50, 0x4e, 0x47]); // "PNG"
    const back = await decodeImageFile(path);
    expect(back.shape).toEqual([5, 7, 3]);
    expect(back.dtype).toBe('int32');
    expect(maxAbsDiff(back, rgb)).toBe(0);
    // RGB and grey tensors are written too (alpha 255, grey repeated).
    const greyPath = join(dir, `grey-${backend}.png`);
    const grey = tf.tensor2d(
      [
        [0, 128],
        [255, 7],
      ],
      [2, 2],
      'int32',
    );
    await writePng(greyPath, grey);
    const g = await decodeImageFile(greyPath);
    expect(Array.from(g.dataSync())).toEqual([0, 0, 0, 128, 128, 128, 255, 255, 255, 7, 7, 7]);
    tf.dispose([rgb, alpha, rgba, back, grey, g]);
  });

  it('decodes JPEG (jpeg-js) to [H, W, 3]', async () => {
    const w = 16;
    const h = 8;
    const data = Buffer.alloc(w * h * 4, 0);
    for (let i = 0; i < w * h; i++) data.set([200, 30, 30, 255], i * 4); // flat red
    const path = join(dir, `red-${backend}.jpg`);
    writeFileSync(path, jpeg.encode({ data, width: w, height: h }, 95).data);
    const img = await decodeImageFile(path);
    expect(img.shape).toEqual([8, 16, 3]);
    const mean = tf.mean(tf.cast(img, 'float32'), [0, 1]);
    // Lossy, but a flat colour survives within a few levels.
    expect(maxAbsDiff(mean, [200, 30, 30])).toBeLessThan(4);
    tf.dispose([img, mean]);
  });

  it('saveHeatmapPng writes a coloured map (resized) and an overlay', async () => {
    const map = tf.tensor2d([
      [0, 1],
      [1, 0],
    ]);
    const p1 = join(dir, `heat-${backend}.png`);
    await saveHeatmapPng(p1, map, { colormap: 'gray', size: [4, 4] });
    const heat = await decodeImageFile(p1);
    expect(heat.shape).toEqual([4, 4, 3]);
    expect(Array.from(heat.dataSync().slice(0, 3))).toEqual([0, 0, 0]);
    expect(Array.from(heat.dataSync().slice(2 * 3, 2 * 3 + 3))).toEqual([255, 255, 255]);
    const img = tf.fill([6, 6, 3], 255, 'int32');
    const p2 = join(dir, `overlay-${backend}.png`);
    await saveHeatmapPng(p2, map, { image: img, alpha: 0.5, colormap: 'gray' });
    const over = await decodeImageFile(p2);
    expect(over.shape).toEqual([6, 6, 3]);
    expect(Array.from(over.dataSync().slice(0, 3))).toEqual([128, 128, 128]); // (255 + 0) / 2 rounded
    tf.dispose([map, heat, img, over]);
  });

  it('rejects bad pixels and unknown file types with clear errors', async () => {
    expect(() => encodePng({ data: new Uint8Array(3), width: 1, height: 1 })).toThrow(
      /data.length = width \* height \* 4/,
    );
    const bad = tf.zeros([2, 2, 2]);
    expect(() => encodePng(bad)).toThrow(/got \[2, 2, 2\]/);
    bad.dispose();
    const path = join(dir, 'not-an-image.bin');
    writeFileSync(path, Buffer.from('GIF89a...'));
    await expect(decodeImageFile(path)).rejects.toThrow(
      /expected PNG \(89 50 4e 47\) or JPEG \(ff d8 ff\) bytes, got a file starting 47 49 46 38/,
    );
  });
});
