/**
 * One line of the benchmark in its own process (so peak RSS and wasm memory belong to it):
 * the 1024^2 matMul rate, then either forward passes of one model at the given batch sizes or
 * training steps. Prints one JSON object on stdout. Run by bench/run.ts.
 *
 *   npx tsx bench/line.ts --backend wasm --model vit_tiny_patch16_224 --batches 1,8 --runs 7
 *   npx tsx bench/line.ts --backend wasm --model vit_tiny_p4_32 --train 32 --runs 3
 *   options: --logits-input FILE --logits-output FILE --export-weights FILE (safetensors, for the
 *            PyTorch / ONNX Runtime references)
 *            --form native|fast (product formulation), --budget SECONDS (skip what won't fit)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { exportWeights, readSafetensors, setProductForm, writeSafetensors } from '../src/index';
import { buildBenchModel, matMulRate, median, trainStep } from './models';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};

/** One measured (or skipped) entry of a line. */
export interface LineEntry {
  batch: number;
  ms?: number;
  floorMs: number;
  runs?: number;
  skipped?: string;
}

/** What bench/line.ts prints. */
export interface LineResult {
  backend: string;
  model: string;
  mode: 'forward' | 'train';
  form: string;
  gflops: number;
  matMulGflops: number;
  matMulGflopsEnd: number;
  entries: LineEntry[];
  peakRssMb: number;
  liveTensorsWithModel: number;
  leakedTensors: number;
}

async function timeOnce(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function main() {
  const backend = opt('backend', 'wasm');
  const modelName = opt('model', 'vit_tiny_patch16_224');
  const trainBatch = Number(opt('train', '0'));
  const runs = Number(opt('runs', '5'));
  const budgetMs = Number(opt('budget', '1e9')) * 1000;
  const form = opt('form', '');
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} failed to initialize`);
  await tf.ready();
  if (form === 'native' || form === 'fast') setProductForm(backend, form);
  const rate = await matMulRate();
  const tensorsBefore = tf.memory().numTensors;
  const bench = buildBenchModel(modelName);
  const entries: LineEntry[] = [];
  let liveWithModel = 0;
  const batches = trainBatch > 0 ? [trainBatch] : opt('batches', '1,8').split(',').map(Number);
  for (const batch of batches) {
    const flops = bench.flopsPerImage * batch * (trainBatch > 0 ? 3 : 1);
    const floorMs = (flops / rate) * 1000;
    // warm-up + runs at a pessimistic 3x the floor: skip what cannot fit the budget.
    if (floorMs * 3 * (runs + 1) > budgetMs) {
      entries.push({
        batch,
        floorMs,
        skipped: `over the time budget (estimated ${((floorMs * 3 * (runs + 1)) / 1000).toFixed(0)} s > ${budgetMs / 1000} s)`,
      });
      continue;
    }
    const x = tf.randomNormal([batch, ...bench.inputShape]);
    const y = tf.tidy(() =>
      tf.oneHot(
        tf.randomUniform([batch], 0, bench.numClasses, 'int32') as tf.Tensor1D,
        bench.numClasses,
      ),
    );
    const step =
      trainBatch > 0
        ? async () => {
            await trainStep(bench, x, y);
          }
        : async () => {
            const out = bench.model.predict(x) as tf.Tensor;
            await out.data();
            out.dispose();
          };
    await step(); // warm-up: kernel set-up, allocation, optimizer slots
    const times: number[] = [];
    for (let i = 0; i < runs; i++) times.push(await timeOnce(step));
    liveWithModel = Math.max(liveWithModel, tf.memory().numTensors);
    entries.push({ batch, ms: median(times), floorMs, runs });
    tf.dispose([x, y]);
  }
  const logitsInput = opt('logits-input', '');
  if (logitsInput) {
    const file = readSafetensors(new Uint8Array(readFileSync(logitsInput)));
    const entry = file.tensors.get('input_nhwc');
    if (!entry) throw new Error(`${logitsInput}: no input_nhwc`);
    const x = tf.tensor(entry.data as Float32Array, entry.shape);
    const logits = bench.model.predict(x) as tf.Tensor;
    const data = (await logits.data()) as Float32Array;
    writeFileSync(
      opt('logits-output', 'logits.safetensors'),
      writeSafetensors({ logits: { dtype: 'F32', shape: logits.shape, data } }),
    );
    tf.dispose([x, logits]);
    const weightsOut = opt('export-weights', '');
    if (weightsOut) {
      const to = modelName.startsWith('resnet18_cifar')
        ? 'cifar'
        : modelName.startsWith('resnet18')
          ? 'torchvision'
          : 'timm';
      writeFileSync(weightsOut, exportWeights(bench.model, { to }));
    }
  }
  const rateEnd = await matMulRate();
  bench.model.dispose();
  bench.optimizer?.dispose();
  const result: LineResult = {
    backend,
    model: modelName,
    mode: trainBatch > 0 ? 'train' : 'forward',
    form: form || 'default',
    gflops: bench.flopsPerImage / 1e9,
    matMulGflops: rate / 1e9,
    matMulGflopsEnd: rateEnd / 1e9,
    entries,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    liveTensorsWithModel: liveWithModel,
    leakedTensors: tf.memory().numTensors - tensorsBefore,
  };
  console.log(`BENCH_LINE ${JSON.stringify(result)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
