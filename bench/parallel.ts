/**
 * Multi-core benchmark (docs/parallel.md): in one run, one thread vs N worker threads for
 *   1. batch inference: ViT-Ti/16 at 224 px, batch 8 (createInferencePool), and
 *   2. a data-parallel training step: ViT-Ti with patch 4 at 32 px, batch 32, AdamW, softmax
 *      cross-entropy (createDataParallelTrainer),
 * on wasm (the backend in the main thread and in every worker). The single-thread figure is the
 * same work in the main thread (model.predict; tf.variableGrads + one AdamW step). Runs of the
 * two are interleaved so that both see the same machine load, and the 1024x1024 matMul rate is
 * measured before and after: on a loaded machine the ratio is what counts (quiet: ~27-31 GFLOP/s).
 *
 *   npm run bench:parallel
 *   npm run bench:parallel -- --workers 2 --runs 3 --batch 8 --train-batch 32 --train-depth 12
 *   npm run bench:parallel -- --skip-train     # inference only
 *
 * It also measures the machine's ceiling for each: the same single-thread work run by N
 * independent worker threads at once (bench/ceiling_worker.ts; each on its own shard-sized batch,
 * nothing shared), against one such thread on the whole batch. No pool can beat that ratio: it
 * holds what the cores give (shared caches, memory bandwidth, clock, virtual CPUs) and what a
 * smaller batch per thread costs; the gap between it and the pool's speed-up is the pool's own
 * overhead (messages, copies, gradient averaging).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-layers';
import { adamw, countViTMacs, createViT } from '../src/index';
import { createDataParallelTrainer, createInferencePool, saveModel } from '../src/node';
import { buildWorkerBundle } from '../test/helpers/parallel_worker';
import { seededValues } from '../test/helpers/seeded';
import { matMulRate, median } from './models';
import { type CeilingTask, INFER_CONFIG, singleThreadStep, trainConfig } from './parallel_work';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const workers = Number(opt('workers', '2'));
const runs = Number(opt('runs', '3'));
const batch = Number(opt('batch', '8'));
const trainBatch = Number(opt('train-batch', '32'));
const trainDepth = Number(opt('train-depth', '12'));
const skipTrain = args.includes('--skip-train');
const skipInfer = args.includes('--skip-infer');

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** The 1024x1024 wasm matMul rate in GFLOP/s (bench/models.ts measures it in FLOP/s). */
async function matMulGflops(): Promise<number> {
  return (await matMulRate()) / 1e9;
}

interface Pair {
  name: string;
  unit: string;
  items: number;
  single: number[];
  parallel: number[];
}

function report(p: Pair): string {
  const s = median(p.single);
  const m = median(p.parallel);
  const rate = (ms: number) => ((p.items / ms) * 1000).toFixed(2);
  return [
    `${p.name}`,
    `  1 thread : median ${s.toFixed(0)} ms (${rate(s)} ${p.unit}/s)  runs ${p.single.map((t) => t.toFixed(0)).join(', ')}`,
    `  ${workers} workers: median ${m.toFixed(0)} ms (${rate(m)} ${p.unit}/s)  runs ${p.parallel.map((t) => t.toFixed(0)).join(', ')}`,
    `  speed-up ${(s / m).toFixed(2)}x`,
  ].join('\n');
}

/**
 * Times `single` (one thread) and `parallel` (the workers) alternately, `runs` times each after
 * one warm-up call of both, on `items` images per call.
 */
async function timePair(
  name: string,
  items: number,
  single: () => Promise<void>,
  parallel: () => Promise<void>,
): Promise<Pair> {
  const pair: Pair = { name, unit: 'img', items, single: [], parallel: [] };
  await single();
  await parallel();
  for (let r = 0; r < runs; r++) {
    pair.single.push(await timed(single));
    pair.parallel.push(await timed(parallel));
  }
  return pair;
}

/** Runs `n` ceiling workers on `task` together; returns the slowest worker's milliseconds. */
async function runTogether(file: string, n: number, task: CeilingTask): Promise<number> {
  const threads = Array.from({ length: n }, () => new Worker(file, { workerData: task }));
  const next = (w: Worker) =>
    new Promise<{ ready?: boolean; ms?: number }>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
  try {
    await Promise.all(threads.map(next));
    const done = threads.map(next);
    for (const w of threads) w.postMessage('go');
    const times = await Promise.all(done);
    return Math.max(...times.map((t) => t.ms as number));
  } finally {
    await Promise.all(threads.map((w) => w.terminate()));
  }
}

/**
 * Throughput of `workers` independent threads, each doing `task` on `ceil(batch / workers)`
 * items, over that of one thread doing it on `batch` items (medians of `runs` alternated runs).
 * A matMul iteration is one 1024^2 product in every thread (`batch` is ignored).
 */
async function ceiling(
  file: string,
  task: CeilingTask['task'],
  batchSize: number,
  iterations: number,
): Promise<string> {
  const one: number[] = [];
  const many: number[] = [];
  const whole = task === 'matmul' ? 1 : batchSize;
  const shard = task === 'matmul' ? 1 : Math.ceil(batchSize / workers);
  for (let r = 0; r < runs; r++) {
    one.push(await runTogether(file, 1, { task, batch: whole, iterations, trainDepth }));
    many.push(await runTogether(file, workers, { task, batch: shard, iterations, trainDepth }));
  }
  const ratio = (workers * shard) / median(many) / (whole / median(one));
  const what =
    task === 'matmul'
      ? `${workers} independent threads vs 1, each its own products`
      : `${workers} independent threads on ${shard} each vs 1 on ${whole}`;
  return `  machine ceiling (${what}): ${ratio.toFixed(2)}x  (1 thread ${one.map((t) => t.toFixed(0)).join(', ')} ms; ${workers} threads ${many.map((t) => t.toFixed(0)).join(', ')} ms; ${iterations} iterations)`;
}

async function inference(workerFile: string, dir: string): Promise<Pair> {
  const config = INFER_CONFIG;
  const model = createViT(config);
  await saveModel(model, join(dir, 'infer'));
  const x = tf.tensor4d(seededValues(batch * 224 * 224 * 3, 1), [batch, 224, 224, 3]);
  const pool = await createInferencePool(join(dir, 'infer'), {
    workers,
    backend: 'wasm',
    workerFile,
  });
  const single = async () => {
    const y = model.predict(x) as tf.Tensor;
    await y.data();
    y.dispose();
  };
  const parallel = async () => {
    const y = (await pool.predict(x)) as tf.Tensor;
    y.dispose();
  };
  try {
    return await timePair(
      `inference: ViT-Ti/16, 224 px, batch ${batch} (${((countViTMacs(config) * 2 * batch) / 1e9).toFixed(1)} GFLOP)`,
      batch,
      single,
      parallel,
    );
  } finally {
    await pool.destroy();
    x.dispose();
    model.dispose();
  }
}

async function training(workerFile: string): Promise<Pair> {
  const config = trainConfig(trainDepth);
  const reference = createViT(config, {}, { seed: 3 });
  const parallelModel = createViT(config);
  parallelModel.setWeights(reference.getWeights());
  const x = tf.tensor4d(seededValues(trainBatch * 32 * 32 * 3, 2), [trainBatch, 32, 32, 3]);
  const y = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: trainBatch }, (_, i) => i % 10),
      'int32',
    ),
    10,
  );
  const refOpt: tf.Optimizer = adamw({ learningRate: 1e-4 });
  const trainer = await createDataParallelTrainer(parallelModel, {
    workers,
    backend: 'wasm',
    workerFile,
    optimizer: adamw({ learningRate: 1e-4 }),
  });
  const single = () => singleThreadStep(reference, refOpt, x, y);
  const parallel = async () => {
    await trainer.step(x, y);
  };
  try {
    return await timePair(
      `training step: ViT-Ti/4 (depth ${trainDepth}), 32 px, batch ${trainBatch}, AdamW`,
      trainBatch,
      single,
      parallel,
    );
  } finally {
    await trainer.destroy();
    tf.dispose([x, y]);
    refOpt.dispose();
    reference.dispose();
    parallelModel.dispose();
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend failed to initialize');
  await tf.ready();
  console.log(
    `${cpus()[0]?.model ?? 'cpu'}, ${availableParallelism()} cores; tfjs ${tf.version_core}, wasm in every thread; ${workers} workers, ${runs} runs (median)`,
  );
  const rateBefore = await matMulGflops();
  console.log(`1024x1024 wasm matMul (main thread, before): ${rateBefore.toFixed(1)} GFLOP/s`);
  const workerFile = await buildWorkerBundle();
  const ceilingFile = await buildWorkerBundle('bench/ceiling_worker.ts');
  const dir = await mkdtemp(join(tmpdir(), 'vit-ts-bench-parallel-'));
  const pairs: Pair[] = [];
  try {
    // The compute-bound kernel alone: 1024^2 products, the same count in every thread.
    console.log(`1024x1024 matMul:\n${await ceiling(ceilingFile, 'matmul', 1, 20)}`);
    if (!skipInfer) {
      const p = await inference(workerFile, dir);
      console.log(report(p));
      console.log(await ceiling(ceilingFile, 'infer', batch, 2));
      pairs.push(p);
    }
    if (!skipTrain) {
      const p = await training(workerFile);
      console.log(report(p));
      console.log(await ceiling(ceilingFile, 'train', trainBatch, 2));
      pairs.push(p);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(workerFile, { force: true });
    await rm(ceilingFile, { force: true });
  }
  const rateAfter = await matMulGflops();
  console.log(`1024x1024 wasm matMul (main thread, after): ${rateAfter.toFixed(1)} GFLOP/s`);
  console.log(
    `summary: ${pairs.map((p) => `${p.name.split(':')[0]} ${(median(p.single) / median(p.parallel)).toFixed(2)}x`).join(', ')} with ${workers} workers; matMul ${rateBefore.toFixed(1)} / ${rateAfter.toFixed(1)} GFLOP/s; total ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
