/**
 * The data behind the browser page's model switch (examples/browser): the training summary it
 * shows for each shipped model is the record in that model's model.json, every weights file the
 * manifest names is in the model folder (the page resolves them by name, not a fixed
 * `weights.bin`), and examples/fashion/samples.json holds Fashion-MNIST test images exactly as the
 * IDX files store them. The page itself runs in test/e2e/browser_page.e2e.ts.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  recordedAccuracy,
  type ShippedModelJson,
  summariseTraining,
} from '../../examples/browser/model_files';
import { FASHION_MNIST_CLASSES } from '../../src/index';
import { FASHION_MNIST_DEBIAN_DIR, readIdxFile } from '../../src/node';

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));

async function readModelJson(folder: string): Promise<ShippedModelJson> {
  return JSON.parse(await readFile(join(examples, folder, 'model/model.json'), 'utf8'));
}

describe('browser page: shipped model files', () => {
  it.each(['mnist', 'fashion'])(
    '%s: every weights file named by model.json is there',
    async (folder) => {
      const json = await readModelJson(folder);
      const paths = json.weightsManifest.flatMap((g) => g.paths);
      expect(paths.length).toBeGreaterThan(0);
      for (const p of paths) {
        expect(p).toMatch(/^(\.\/)?[\w.-]+\.bin$/); // a file in the model folder itself
        expect(existsSync(join(examples, folder, 'model', p)), p).toBe(true);
      }
    },
  );

  it('MNIST: the summary shows the accuracy of the record', async () => {
    const training = (await readModelJson('mnist')).userDefinedMetadata?.training as Record<
      string,
      number
    >;
    // The shipped record has a held-out split; a retrained model may record a test accuracy.
    const kind = 'testAccuracy' in training ? 'test' : 'held-out';
    const value = kind === 'test' ? training['testAccuracy'] : training['heldOutAccuracy'];
    const images = (kind === 'test' ? training['testSize'] : training['heldOutSize']) ?? null;
    const summary = summariseTraining(training);
    expect(summary.accuracy).toEqual({ value, kind, images });
    expect(typeof value).toBe('number');
    const on = images == null ? '' : ` on ${images.toLocaleString('en')} images`;
    expect(summary.items[0]).toEqual([`${kind} accuracy`, `${(value * 100).toFixed(1)}%${on}`]);
  });

  it('Fashion-MNIST: the summary shows the test accuracy of the record', async () => {
    const training = (await readModelJson('fashion')).userDefinedMetadata?.training as Record<
      string,
      unknown
    >;
    const summary = summariseTraining(training);
    expect(summary.accuracy?.kind).toBe('test');
    expect(summary.accuracy?.value).toBe(training['testAccuracy']);
    expect(summary.items[0][1]).toMatch(
      new RegExp(`^${((training['testAccuracy'] as number) * 100).toFixed(1)}%`),
    );
    expect(new Map(summary.items).get('data')).toBe(training['data']);
    // The record's note, when it has one (the shipped one does), is shown on the page.
    expect(new Map(summary.items).get('note')).toBe(training['note']);
  });

  it('summaries leave out absent and mistyped fields and prefer the test accuracy', () => {
    expect(summariseTraining(undefined)).toEqual({
      accuracy: null,
      items: [['training record', 'none in model.json']],
    });
    expect(recordedAccuracy({ testAccuracy: 0.9, heldOutAccuracy: 0.8 })?.value).toBe(0.9);
    expect(recordedAccuracy({ heldOutAccuracy: '0.8' })).toBeNull();
    expect(recordedAccuracy({ testAccuracy: Number.NaN })).toBeNull();
    const summary = summariseTraining({
      testAccuracy: 0.9012,
      testSize: 10000,
      epochs: 1,
      batchSize: '64',
      backend: 'wasm',
      note: 'resumed',
      initializedFrom: { dir: 'examples/fashion/model', epochs: 18 },
    });
    expect(summary.items).toEqual([
      ['test accuracy', '90.1% on 10,000 images'],
      ['schedule', '1 epoch'],
      ['started from', 'examples/fashion/model'],
      ['trained on', 'tfjs wasm backend'],
      ['note', 'resumed'],
    ]);
  });
});

describe('examples/fashion/samples.json', () => {
  it('holds the first two test images of every class, byte for byte', async () => {
    const doc = JSON.parse(await readFile(join(examples, 'fashion/samples.json'), 'utf8')) as {
      width: number;
      height: number;
      samples: Array<{
        label: number;
        className: string;
        source: { split: string; index: number };
        pixels: number[];
      }>;
    };
    const images = readIdxFile(join(FASHION_MNIST_DEBIAN_DIR, 't10k-images-idx3-ubyte.gz'));
    const labels = readIdxFile(join(FASHION_MNIST_DEBIAN_DIR, 't10k-labels-idx1-ubyte.gz'));
    expect([doc.width, doc.height]).toEqual([28, 28]);
    expect(doc.samples.map((s) => s.label)).toEqual([
      0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9,
    ]);
    for (const s of doc.samples) {
      expect(s.source.split).toBe('test');
      expect(labels.data[s.source.index]).toBe(s.label);
      expect(s.className).toBe(FASHION_MNIST_CLASSES[s.label]);
      expect(s.pixels).toEqual(
        Array.from(images.data.subarray(s.source.index * 784, (s.source.index + 1) * 784)),
      );
    }
    // The first two of each class: no earlier test image of that class was skipped.
    for (let c = 0; c < 10; c++) {
      const indices = doc.samples.filter((s) => s.label === c).map((s) => s.source.index);
      const firstTwo = Array.from(labels.data.entries())
        .filter(([, l]) => l === c)
        .slice(0, 2)
        .map(([i]) => i);
      expect(indices).toEqual(firstTwo);
    }
  });
});
