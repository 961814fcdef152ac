/**
 * Browser benchmark page (examples/browser/parallel.html), driven by bench/browser_parallel.ts:
 * ViT-Ti/16 forward on a batch in one of three modes, and the 1024x1024 matMul rate of the
 * page's backend. The result is written as JSON to `document.body.dataset.result`.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-layers';
import { createViT, type ViTConfig } from '../../src/index';
import { matMulGflops, median } from '../matmul_rate';
import {
  configureWasmPaths,
  getThreadsCount,
  liftWasmThreadCap,
  setThreadsCount,
} from './wasm_setup';
import { BrowserWorkerPool } from './worker_pool';

configureWasmPaths();
const params = new URLSearchParams(location.search);
const mode = params.get('mode') ?? 'threads';
const n = Number(params.get('n') ?? '2');
const batch = Number(params.get('batch') ?? '4');
const runs = Number(params.get('runs') ?? '3');
const CONFIG: ViTConfig = {
  imgSize: 224,
  patchSize: 16,
  embedDim: 192,
  depth: 12,
  numHeads: 3,
  numClasses: 1000,
};

const SEED = 7;

async function timeIt(fn: () => Promise<void>): Promise<number[]> {
  await fn(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return times;
}

function input(): Float32Array {
  const data = new Float32Array(batch * 224 * 224 * 3);
  let s = 12345;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 4294967296 - 0.5;
  }
  return data;
}

async function run(): Promise<Record<string, unknown>> {
  const result: Record<string, unknown> = {
    mode,
    n,
    batch,
    crossOriginIsolated: self.crossOriginIsolated,
    hardwareConcurrency: navigator.hardwareConcurrency,
  };
  const shape = [batch, 224, 224, 3];
  const data = input();
  if (mode === 'threads' || mode === 'threads-uncapped') {
    if (mode === 'threads-uncapped') liftWasmThreadCap();
    setThreadsCount(n);
    if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend failed to start');
    await tf.ready();
    result['wasmMultithread'] = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    result['threadsCount'] = getThreadsCount();
  } else if (mode === 'webgl') {
    if (!(await tf.setBackend('webgl'))) throw new Error('webgl backend failed to start');
    await tf.ready();
  } else {
    // The page itself only splits and joins: it measures its matMul rate on single-threaded wasm.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend failed to start');
    await tf.ready();
  }
  result['backend'] = tf.getBackend();
  result['matMulGflops'] = await matMulGflops();
  const model = createViT(CONFIG, {}, { seed: SEED });
  const reference = tf.tidy(() =>
    (model.predict(tf.tensor(data, shape)) as tf.Tensor).dataSync().slice(),
  );
  let times: number[];
  let outputs: Float32Array;
  if (mode === 'workers') {
    const pool = await BrowserWorkerPool.create(n, CONFIG, SEED);
    let last: Float32Array = new Float32Array();
    times = await timeIt(async () => {
      last = (await pool.predict(data, shape)).data;
    });
    outputs = last;
    pool.terminate();
  } else {
    const x = tf.tensor(data, shape);
    let last: Float32Array = new Float32Array();
    times = await timeIt(async () => {
      const y = model.predict(x) as tf.Tensor;
      last = (await y.data()) as Float32Array;
      y.dispose();
    });
    x.dispose();
    outputs = last;
  }
  let maxDiff = 0;
  for (let i = 0; i < reference.length; i++)
    maxDiff = Math.max(maxDiff, Math.abs(outputs[i] - reference[i]));
  result['maxDiffVsPage'] = maxDiff;
  result['times'] = times.map((t) => Math.round(t));
  result['medianMs'] = Math.round(median(times));
  result['imagesPerSecond'] = (batch / median(times)) * 1000;
  model.dispose();
  return result;
}

const out = document.getElementById('out') as HTMLPreElement;
run()
  .then((r) => {
    out.textContent = JSON.stringify(r, null, 2);
    document.body.dataset['result'] = JSON.stringify(r);
    document.body.dataset['state'] = 'ready';
  })
  .catch((e: Error) => {
    out.textContent = `error: ${e.message}`;
    document.body.dataset['result'] = JSON.stringify({ error: e.message });
    document.body.dataset['state'] = 'error';
  });
