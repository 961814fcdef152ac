import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import {
  experimentOptions,
  markdownTable,
  modeOf,
  renderChart,
  runOptions,
  subset,
  trainingExperimentOptions,
  trainingOptions,
  writeResults,
} from '../../examples/experiments/common';
import { describeBackends } from '../helpers/backends';

describeBackends('experiment helpers', () => {
  it('subset keeps the first images per chosen class in file order and remaps labels', async () => {
    const images = tf.tensor4d([0, 1, 2, 3, 4, 5, 6], [7, 1, 1, 1]);
    const labels = tf.tensor1d([5, 7, 5, 9, 7, 5, 7], 'int32');
    const before = tf.memory().numTensors;
    const s = subset({ images, labels }, 2, [7, 5]);
    expect(Array.from(await s.images.data())).toEqual([0, 1, 2, 4]);
    expect(Array.from(await s.labels.data())).toEqual([1, 0, 1, 0]);
    tf.dispose([s.images, s.labels]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([images, labels]);
  });
});

it('markdownTable and modeOf', () => {
  expect(markdownTable(['a', 'b'], [[1, 'x']])).toBe('| a | b |\n| --- | --- |\n| 1 | x |');
  expect(modeOf({ quick: true })).toBe('quick');
  expect(modeOf({})).toBe('default');
  expect(() => modeOf({ quick: true, full: true })).toThrow(/one of --quick and --full/);
});

it('the shared option tables parse with their defaults and refuse unknown options', () => {
  const options = trainingExperimentOptions('demo');
  const { values } = parseArgs({
    args: ['--quick', '--epochs', '3', '--test-per-class', '5'],
    options,
  });
  expect(values).toEqual({
    quick: true,
    full: false,
    out: join('examples', 'output', 'demo'),
    backend: 'wasm',
    seed: '1',
    workers: '1',
    epochs: '3',
    lr: '1e-3',
    'test-per-class': '5',
  });
  expect(parseArgs({ args: [], options: experimentOptions('x') }).values).toEqual({
    quick: false,
    full: false,
    out: join('examples', 'output', 'x'),
    backend: 'wasm',
    seed: '1',
    workers: '1',
  });
  const script = {
    ...runOptions(),
    ...trainingOptions({ epochs: '2', batchSize: '64', lr: '2e-3' }),
  };
  expect(parseArgs({ args: ['--seed', '7'], options: script }).values).toEqual({
    backend: 'wasm',
    seed: '7',
    workers: '1',
    epochs: '2',
    'batch-size': '64',
    lr: '2e-3',
  });
  expect(() => parseArgs({ args: ['--epoch', '3'], options })).toThrow(/Unknown option '--epoch'/);
});

it('writeResults writes results.md (table + note) and results.json', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'vit-ts-results-')), 'out');
  writeResults(dir, '| a |\n| --- |\n| 1 |', 'note', { rows: [1] });
  expect(readFileSync(join(dir, 'results.md'), 'utf8')).toBe('| a |\n| --- |\n| 1 |\n\nnote\n');
  expect(JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'))).toEqual({ rows: [1] });
});

it('renderChart writes a PNG of the vega-lite chart (vega SVG -> resvg)', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'vit-ts-chart-')), 'c.png');
  await renderChart(
    {
      width: 200,
      height: 100,
      data: {
        values: [
          { x: 1, y: 0.5 },
          { x: 2, y: 0.8 },
        ],
      },
      mark: 'line',
      encoding: {
        x: { field: 'x', type: 'quantitative' },
        y: { field: 'y', type: 'quantitative' },
      },
    },
    path,
  );
  const png = readFileSync(path);
  expect(Array.from(png.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  // IHDR width / height at zoom 2: the plot plus axes, so larger than 2 x the plot size.
  expect(png.readUInt32BE(16)).toBeGreaterThan(400);
  expect(png.readUInt32BE(20)).toBeGreaterThan(200);
});
