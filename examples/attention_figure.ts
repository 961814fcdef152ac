/**
 * The lecture figure: what a Vision Transformer looks at. For a few MNIST digits, one row each:
 * the input, the class-token attention (heads averaged) of a spread of blocks, and the attention
 * rollout, every map overlaid on the digit. Writes one PNG.
 *
 *   npx tsx examples/attention_figure.ts [--model examples/mnist/model] [--out examples/output]
 *     [--digits 4] [--layers 0,2,5] [--colormap jet] [--backend wasm]
 *
 * Uses the trained MNIST ViT shipped in examples/mnist/model/ when it is there; otherwise a
 * randomly initialised ViT of the same shape (the maps are then not meaningful, only the plumbing).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  attentionMaps,
  attentionRollout,
  type ColormapName,
  composeFigure,
  createViT,
  type FigurePanel,
  findVisionTransformer,
  overlayHeatmap,
  toRgba,
} from '../src/index';
import { loadModel, writePng } from '../src/node';
import { MNIST_VIT_CONFIG } from './mnist/data';

const here = dirname(fileURLToPath(import.meta.url));

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: join(here, 'mnist', 'model') },
    out: { type: 'string', default: join(here, 'output') },
    digits: { type: 'string', default: '4' },
    layers: { type: 'string' },
    colormap: { type: 'string', default: 'jet' },
    alpha: { type: 'string', default: '0.6' },
    scale: { type: 'string', default: '5' },
    backend: { type: 'string', default: 'wasm' },
  },
});

/** Up to `count` block indices spread evenly from the first to the last block. */
function spreadLayers(depth: number, count = 5): number[] {
  if (depth <= count) return Array.from({ length: depth }, (_, i) => i);
  return [
    ...new Set(
      Array.from({ length: count }, (_, i) => Math.round((i * (depth - 1)) / (count - 1))),
    ),
  ];
}

/**
 * Held-out digits (never seen in training) from examples/mnist/samples.json, in a varied fixed
 * order of classes (7, 0, 3, 6, ...): [28 * 28] grey levels scaled to [0, 1].
 */
function mnistDigits(count: number): { label: number; pixels: number[] }[] {
  const file = JSON.parse(readFileSync(join(here, 'mnist', 'samples.json'), 'utf8')) as {
    samples: { label: number; pixels: number[] }[];
  };
  return Array.from({ length: count }, (_, i) => {
    const label = (i * 3 + 7) % 10;
    const sample = file.samples.find((s) => s.label === label);
    if (!sample) throw new Error(`samples.json has no digit ${label}`);
    return { label, pixels: sample.pixels.map((v) => v / 255) };
  });
}

async function loadOrCreate(dir: string): Promise<{ model: LayersModel; trained: boolean }> {
  if (existsSync(join(dir, 'model.json'))) return { model: await loadModel(dir), trained: true };
  console.warn(
    `no model at ${dir}/model.json: using a randomly initialised ViT (maps are not meaningful)`,
  );
  const model = createViT(MNIST_VIT_CONFIG);
  return { model, trained: false };
}

async function main(): Promise<void> {
  await tf.setBackend(args.backend ?? 'wasm');
  await tf.ready();
  const { model, trained } = await loadOrCreate(resolve(args.model ?? ''));
  const vit = findVisionTransformer(model);
  const [h, w] = vit.config.imgSize;
  if (h !== 28 || w !== 28 || vit.config.inChans !== 1) {
    throw new Error(
      `expected an MNIST model with 28x28x1 inputs, got [${h}, ${w}, ${vit.config.inChans}]`,
    );
  }
  const layers = args.layers ? args.layers.split(',').map(Number) : spreadLayers(vit.config.depth);
  const digits = mnistDigits(Number(args.digits));
  const colormap = (args.colormap ?? 'jet') as ColormapName;
  const alpha = Number(args.alpha);

  const images = tf.tensor4d(
    digits.flatMap((d) => d.pixels),
    [digits.length, 28, 28, 1],
  );
  const logits = model.predict(images) as tf.Tensor2D;
  const probs = tf.softmax(logits);
  const predicted = Array.from(tf.argMax(probs, 1).dataSync());
  const confidence = Array.from(tf.max(probs, 1).dataSync());
  const maps = attentionMaps(model, images, { layers, heads: 'mean' }); // [B, L, 7, 7]
  const rollout = attentionRollout(model, images, { headFusion: 'mean' }); // [B, 7, 7]

  const panels: FigurePanel[] = [];
  const created: tf.Tensor[] = [];
  digits.forEach((d, b) => {
    const digit = tf.reshape(tf.slice(images, [b, 0, 0, 0], [1, -1, -1, -1]), [28, 28, 1]);
    created.push(digit);
    const input = toRgba(digit);
    created.push(input);
    panels.push({
      image: input,
      title: `${d.label} > ${predicted[b]} ${Math.round(confidence[b] * 100)}%`,
    });
    layers.forEach((l, k) => {
      const grid = tf.reshape(
        tf.slice(maps, [b, k, 0, 0], [1, 1, -1, -1]),
        maps.shape.slice(2) as [number, number],
      );
      const rgba = overlayHeatmap(digit, grid, {
        alpha,
        colormap,
        imageMax: 1,
        upsample: 'nearest',
      });
      created.push(grid, rgba);
      panels.push({ image: rgba, title: `layer ${l + 1}` });
    });
    const rgrid = tf.reshape(
      tf.slice(rollout, [b, 0, 0], [1, -1, -1]),
      rollout.shape.slice(1) as [number, number],
    );
    const rrgba = overlayHeatmap(digit, rgrid, {
      alpha,
      colormap,
      imageMax: 1,
      upsample: 'nearest',
    });
    created.push(rgrid, rrgba);
    panels.push({ image: rrgba, title: 'rollout' });
  });

  const figure = composeFigure(panels, {
    columns: layers.length + 2,
    scale: Number(args.scale),
    textScale: 2,
  });
  const out = join(
    resolve(args.out ?? ''),
    trained ? 'attention_mnist.png' : 'attention_random_init.png',
  );
  await writePng(out, figure);
  console.log(
    `${trained ? `model from ${args.model}` : 'random-init model'}, blocks ${layers.map((l) => l + 1).join(', ')} of ${vit.config.depth}: wrote ${out} (${figure.width}x${figure.height})`,
  );
  tf.dispose([images, logits, probs, maps, rollout, ...created]);
  model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
