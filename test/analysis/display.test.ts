import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  applyColormap,
  COLORMAP_NAMES,
  colormapTable,
  heatmapToRgba,
  normalizeMaps,
  overlayHeatmap,
  toRgba,
  upsampleMaps,
} from '../../src/index';
import { describeBackends, maxAbsDiff } from '../helpers/backends';

// The full 256-entry viridis table as published with matplotlib (mpl-colormaps, CC0).
const VIRIDIS_256 = (
  JSON.parse(
    readFileSync(new URL('../fixtures/analysis/viridis_256.json', import.meta.url), 'utf8'),
  ) as {
    viridis: number[][];
  }
).viridis;

describe('colormap tables (plain numbers)', () => {
  it('endpoints match the published matplotlib values', () => {
    const rgb = (name: 'hot' | 'jet' | 'viridis', i: number) =>
      Array.from(colormapTable(name).slice(i * 3, i * 3 + 3));
    const close = (v: number[], e: number[]) => {
      for (let k = 0; k < 3; k++) expect(v[k]).toBeCloseTo(e[k], 5);
    };
    close(rgb('viridis', 0), [0.267004, 0.004874, 0.329415]);
    close(rgb('viridis', 255), [0.993248, 0.906157, 0.143936]);
    close(rgb('hot', 0), [0.0416, 0, 0]);
    close(rgb('hot', 255), [1, 1, 1]);
    close(rgb('jet', 0), [0, 0, 0.5]);
    close(rgb('jet', 255), [0.5, 0, 0]);
  });

  it('viridis stays within 0.002 of the full published table at every entry', () => {
    const t = colormapTable('viridis');
    let worst = 0;
    for (let i = 0; i < 256; i++)
      for (let c = 0; c < 3; c++)
        worst = Math.max(worst, Math.abs(t[i * 3 + c] - VIRIDIS_256[i][c]));
    expect(worst).toBeLessThan(2e-3);
  });

  it('jet is green at the middle and hot is red around 1/3, as the segment data says', () => {
    const jet = colormapTable('jet');
    // x = 128/255 = 0.502: r = (0.502-0.35)/0.31 = 0.490, g = 1, b = 1 - (0.502-0.34)/0.31 = 0.477
    expect(jet[128 * 3]).toBeCloseTo((128 / 255 - 0.35) / 0.31, 5);
    expect(jet[128 * 3 + 1]).toBeCloseTo(1, 5);
    expect(jet[128 * 3 + 2]).toBeCloseTo(1 - (128 / 255 - 0.34) / 0.31, 5);
    const hot = colormapTable('hot');
    // x = 93/255 = 0.3647 < 0.365079: red just below 1, green and blue 0
    expect(hot[93 * 3]).toBeCloseTo(0.0416 + ((1 - 0.0416) * (93 / 255)) / 0.365079, 5);
    expect(hot[93 * 3 + 1]).toBe(0);
  });

  it('rejects unknown names', () => {
    expect(() => colormapTable('plasma' as 'jet')).toThrow(
      /must be one of 'hot', 'jet', 'viridis', 'gray', got plasma/,
    );
    expect(COLORMAP_NAMES).toContain('viridis');
  });
});

describeBackends('display helpers', () => {
  it('normalizeMaps: per-map min-max, fixed range, constant map', () => {
    const m = tf.tensor3d([
      [
        [1, 3],
        [5, 9],
      ],
      [
        [2, 2],
        [2, 2],
      ],
    ]); // two maps, the second constant
    const n = normalizeMaps(m);
    expect(Array.from(n.dataSync())).toEqual([0, 0.25, 0.5, 1, 0, 0, 0, 0]);
    const r = normalizeMaps(m, { range: [2, 6] });
    expect(Array.from(r.dataSync())).toEqual([0, 0.25, 0.75, 1, 0, 0, 0, 0]);
    expect(() => normalizeMaps(m, { range: [3, 3] })).toThrow(
      /range must be \[low, high\] with finite low < high/,
    );
    const v = tf.tensor1d([1, 2]);
    expect(() => normalizeMaps(v)).toThrow(/rank >= 2/);
    tf.dispose([m, n, r, v]);
  });

  it('upsampleMaps nearest: every patch value fills its patch (hand-computed)', () => {
    const g = tf.tensor2d([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const up = upsampleMaps(g, [4, 6], 'nearest');
    expect(up.shape).toEqual([4, 6]);
    expect(Array.from(up.dataSync())).toEqual([
      1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6,
    ]);
    tf.dispose([g, up]);
  });

  it('upsampleMaps bilinear: half-pixel centres, as PyTorch align_corners=False (hand-computed)', () => {
    // 1-D row [0, 4] -> 4 samples at src x = (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25,
    // clamped to [0, 1]: 0, 1, 3, 4.
    const g = tf.tensor2d([[0, 4]]);
    const up = upsampleMaps(g, [1, 4], 'bilinear');
    expect(maxAbsDiff(up, [0, 1, 3, 4])).toBeLessThan(1e-6);
    // Batched [B, L, gh, gw] keeps the leading axes.
    const b = tf.ones([2, 3, 2, 2]);
    const ub = upsampleMaps(b, 8, 'bilinear');
    expect(ub.shape).toEqual([2, 3, 8, 8]);
    expect(() => upsampleMaps(g, 4, 'cubic' as 'nearest')).toThrow(
      /method must be 'nearest' or 'bilinear'/,
    );
    tf.dispose([g, up, b, ub]);
  });

  it('applyColormap looks up floor(v * 256) like matplotlib, via gather', () => {
    const v = tf.tensor1d([0, 0.5, 1, 1.5, -1]);
    const c = applyColormap(v, 'viridis');
    expect(c.shape).toEqual([5, 3]);
    const t = colormapTable('viridis');
    const want = [0, 128, 255, 255, 0].flatMap((i) => Array.from(t.slice(i * 3, i * 3 + 3)));
    expect(maxAbsDiff(c, want)).toBeLessThan(1e-6);
    tf.dispose([v, c]);
  });

  it('overlayHeatmap: out = round(255 * ((1 - alpha) * img / 255 + alpha * colour)), alpha 255', () => {
    const before = tf.memory().numTensors;
    const img = tf.tensor3d(
      [
        [
          [255, 0, 0],
          [0, 0, 255],
        ],
        [
          [100, 100, 100],
          [0, 0, 0],
        ],
      ],
      [2, 2, 3],
      'int32',
    );
    const map = tf.tensor2d([[0, 1]]); // 1x2 grid: left column low, right column high
    const out = overlayHeatmap(img, map, { alpha: 0.25, colormap: 'hot', upsample: 'nearest' });
    expect(out.shape).toEqual([2, 2, 4]);
    expect(out.dtype).toBe('int32');
    const hot = colormapTable('hot');
    const low = Array.from(hot.slice(0, 3));
    const high = Array.from(hot.slice(255 * 3, 256 * 3));
    const px = [
      [255, 0, 0],
      [0, 0, 255],
      [100, 100, 100],
      [0, 0, 0],
    ];
    const colours = [low, high, low, high];
    const want = px.flatMap((p, i) => [
      ...p.map((v, c) => Math.round(255 * (0.75 * (v / 255) + 0.25 * colours[i][c]))),
      255,
    ]);
    expect(Array.from(out.dataSync())).toEqual(want);
    // Grey [H, W, 1] images and imageMax 1.
    const grey = tf.fill([2, 2, 1], 1);
    const g = overlayHeatmap(grey, map, { alpha: 0, imageMax: 1 });
    expect(Array.from(g.dataSync())).toEqual(new Array(4).fill([255, 255, 255, 255]).flat());
    expect(() => overlayHeatmap(img, map, { alpha: 2 })).toThrow(
      /alpha must be a number in \[0, 1\], got 2/,
    );
    expect(() => overlayHeatmap(img, tf.zeros([1, 1, 2]))).toThrow(
      /map must be one \[h, w\] grid, got \[1, 1, 2\]/,
    );
    tf.dispose([img, map, out, grey, g]);
    expect(tf.memory().numTensors).toBe(before + 1); // the zeros tensor created inline above
  });

  it('heatmapToRgba and toRgba give int32 RGBA 0..255', () => {
    const map = tf.tensor2d([
      [0, 0.5],
      [0.25, 1],
    ]);
    const h = heatmapToRgba(map, { colormap: 'gray', size: [4, 4] });
    expect(h.shape).toEqual([4, 4, 4]);
    expect(h.dtype).toBe('int32');
    const d = h.dataSync();
    expect([d[0], d[3]]).toEqual([0, 255]); // top-left: black, opaque
    expect(d[(3 * 4 + 3) * 4]).toBe(255); // bottom-right: white
    const rgba = toRgba(tf.tensor3d([[[0.5]]]));
    expect(Array.from(rgba.dataSync())).toEqual([128, 128, 128, 255]);
    tf.dispose([map, h, rgba]);
  });
});
