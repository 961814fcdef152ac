/**
 * Shared pieces of the experiments (vit-vs-resnet, vit-needs-data, finetune): backend set-up,
 * the matMul rate that goes next to every timing, data subsets, the two models, markdown tables
 * and charts rendered with vega-lite + @resvg/resvg-js.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import {
  createResNet18,
  createViT,
  type ImageDataset,
  type RandomSource,
  randomCrop,
  randomHorizontalFlip,
  recomputeBatchNormStatistics,
  type Trainer,
  type ViTConfig,
} from '../../src/index';
import { createDataParallelTrainer } from '../../src/node';
import { buildWorkerBundle } from '../../test/helpers/parallel_worker';
import { matMulGflops } from '../matmul_rate';

/** ViT-Tiny (D 192, 12 blocks, 3 heads, MLP 768) with the patch adapted to 28 px images: 4 px patches, 7 x 7 tokens. */
export const VIT_TINY_28: ViTConfig = {
  imgSize: 28,
  patchSize: 4,
  inChans: 1,
  embedDim: 192,
  depth: 12,
  numHeads: 3,
  mlpRatio: 4,
  numClasses: 10,
};

/** The two models of the lecture's comparison, for 28 x 28 grey images. */
export function makeModel(
  kind: 'vit' | 'resnet',
  numClasses: number,
  seed: number,
  vit: ViTConfig = VIT_TINY_28,
): LayersModel {
  return kind === 'vit'
    ? createViT({ ...vit, numClasses }, {}, { seed })
    : createResNet18({ stem: 'cifar', imgSize: 28, inChans: 1, numClasses, seed });
}

/** Model names in tables and charts. */
export const MODEL_LABEL = { vit: 'ViT-Tiny/4 (28 px)', resnet: 'ResNet18 (CIFAR stem)' } as const;

/** Random crop (2 px zero padding) + horizontal flip: the light augmentation of the runs. */
export function cropFlip(x: tf.Tensor4D, random: RandomSource): tf.Tensor4D {
  const c = randomCrop(x, { padding: 2, random });
  const f = randomHorizontalFlip(c, { random });
  c.dispose();
  return f;
}

/**
 * `--backend` (default wasm), `--seed` (default 1) and `--workers` (default 1: the calling thread
 * only), for `node:util` `parseArgs`: the options every training script takes (the experiments
 * and examples/fashion/train.ts).
 */
export function runOptions() {
  return {
    backend: { type: 'string', default: 'wasm' },
    seed: { type: 'string', default: '1' },
    workers: { type: 'string', default: '1' },
  } as const;
}

/** The results' note on threads: empty for one, "gradients on N worker threads; " otherwise. */
export function workersNote(workers: string): string {
  return Number(workers) > 1 ? `gradients on ${workers} worker threads; ` : '';
}

/**
 * Runs `run` with the trainer's gradients computed by `workers` worker threads (data-parallel:
 * the same training up to float rounding, except that BatchNorm normalises each worker's shard
 * with the shard's own statistics, as PyTorch's DistributedDataParallel without SyncBatchNorm
 * does), then stops them. With 1 worker, `run` runs in the calling thread alone.
 */
export async function withWorkers<T>(
  trainer: Trainer,
  workers: number,
  backend: string,
  run: () => Promise<T>,
): Promise<T> {
  if (!Number.isInteger(workers) || workers < 1) {
    throw new Error(`--workers must be a whole number >= 1, got ${String(workers)}`);
  }
  if (workers === 1) return run();
  // Running from the TypeScript sources: the worker is bundled first, as tsup does for the package.
  const source = await createDataParallelTrainer(trainer.model, {
    workers,
    backend,
    workerFile: await buildWorkerBundle(),
  });
  trainer.setParallel(source);
  console.log(`gradients on ${workers} worker threads`);
  try {
    return await run();
  } finally {
    trainer.setParallel(null);
    await source.destroy();
  }
}

/**
 * `--quick`, `--full` (see {@link modeOf}), `--out DIR` (default `examples/output/<name>`) plus
 * {@link runOptions}: the options of every experiment.
 */
export function experimentOptions(name: string) {
  return {
    quick: { type: 'boolean', default: false },
    full: { type: 'boolean', default: false },
    out: { type: 'string', default: join('examples', 'output', name) },
    ...runOptions(),
  } as const;
}

/** A string option, with a default when one is given. */
function stringOption<D extends string | undefined>(
  defaultValue: D,
): D extends string ? { type: 'string'; default: string } : { type: 'string' } {
  return (
    defaultValue === undefined ? { type: 'string' } : { type: 'string', default: defaultValue }
  ) as never;
}

/**
 * `--epochs`, `--batch-size` and `--lr`. An experiment leaves epochs and batch size to its mode
 * preset (no default: `args.epochs ?? preset.epochs`); a plain training script gives defaults.
 */
export function trainingOptions<
  E extends string | undefined,
  B extends string | undefined,
>(defaults: { epochs: E; batchSize: B; lr: string }) {
  return {
    epochs: stringOption(defaults.epochs),
    'batch-size': stringOption(defaults.batchSize),
    lr: { type: 'string', default: defaults.lr },
  } as const;
}

/**
 * The options of an experiment that trains from scratch under a mode preset:
 * {@link experimentOptions}, `--epochs` / `--batch-size` (default: the preset's), `--lr` (default
 * 1e-3) and `--test-per-class`.
 */
export function trainingExperimentOptions(name: string) {
  return {
    ...experimentOptions(name),
    ...trainingOptions({ epochs: undefined, batchSize: undefined, lr: '1e-3' }),
    'test-per-class': { type: 'string' },
  } as const;
}

/** Sets the backend and returns the 1024x1024 matMul rate (GFLOP/s) measured now. */
export async function setUp(backend: string): Promise<number> {
  await tf.setBackend(backend);
  await tf.ready();
  if (tf.getBackend() !== backend) throw new Error(`backend ${backend} did not start`);
  return matMulGflops();
}

/**
 * The first `perClass` images of each class in file order (classes in `classes`), labels
 * remapped to 0..classes.length-1. A new dataset (owned by the caller).
 */
export function subset(
  data: ImageDataset,
  perClass: number,
  classes: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
): ImageDataset {
  const labels = data.labels.dataSync();
  const taken = new Map(classes.map((c) => [c, 0]));
  const idx: number[] = [];
  const mapped: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    const n = taken.get(c);
    if (n == null || n >= perClass) continue;
    taken.set(c, n + 1);
    idx.push(i);
    mapped.push(classes.indexOf(c));
  }
  return tf.tidy(() => ({
    images: tf.gather(data.images, tf.tensor1d(idx, 'int32')) as tf.Tensor4D,
    labels: tf.tensor1d(mapped, 'int32'),
  }));
}

/** Test accuracy of a trained model, twice for a model with BatchNorm (see below). */
export interface TestAccuracy {
  /** With BatchNorm statistics re-estimated on up to 500 training images ("precise BN"). */
  accuracy: number;
  /** With the running statistics as training left them; null for a model without BatchNorm. */
  runningStatsAccuracy: number | null;
}

/**
 * Evaluates on `test` with the running BatchNorm statistics as trained, then re-estimates them
 * on the training images and evaluates again. After a few dozen steps the running statistics
 * (momentum 0.1) still describe earlier weights and ResNet18's inference-mode accuracy can sit at
 * chance while its training accuracy climbs; the re-estimated one measures the weights. A ViT has
 * no BatchNorm: one evaluation, `runningStatsAccuracy` null.
 */
export async function testAccuracy(
  trainer: Trainer,
  train: ImageDataset,
  test: ImageDataset,
): Promise<TestAccuracy> {
  const asTrained = (await trainer.evaluate(test, { batchSize: 100 })).accuracy;
  const r = recomputeBatchNormStatistics(trainer.model, train.images, {
    batchSize: 100,
    maxBatches: 5,
  });
  if (r.statistics === 0) return { accuracy: asTrained, runningStatsAccuracy: null };
  const precise = (await trainer.evaluate(test, { batchSize: 100 })).accuracy;
  return { accuracy: precise, runningStatsAccuracy: asTrained };
}

/** A percentage with one decimal, or a dash for a missing value. */
export const percent = (v: number | null): string => (v == null ? '-' : `${(100 * v).toFixed(1)}%`);

/** A markdown table from a header and rows. */
export function markdownTable(header: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Renders a vega-lite spec to a PNG file (no browser: vega's SVG renderer, then resvg). */
export async function renderChart(spec: vegaLite.TopLevelSpec, path: string): Promise<void> {
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  })
    .render()
    .asPng();
  writeFileSync(path, png);
}

/** Creates `dir` and writes `name` into it. */
export function writeOut(dir: string, name: string, content: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/**
 * Prints the results table and its note, and writes them to `out` as `results.md`, with `data`
 * as `results.json`.
 */
export function writeResults(out: string, table: string, note: string, data: unknown): void {
  console.log(`\n${table}\n\n${note}`);
  writeOut(out, 'results.md', `${table}\n\n${note}\n`);
  writeOut(out, 'results.json', JSON.stringify(data, null, 2));
}

/** Mode presets: `--quick` for CI, the default (~15 min on 2 quiet cores), `--full`. */
export type Mode = 'quick' | 'default' | 'full';

export function modeOf(args: { quick?: boolean; full?: boolean }): Mode {
  if (args.quick && args.full) throw new Error('choose one of --quick and --full');
  return args.quick ? 'quick' : args.full ? 'full' : 'default';
}
