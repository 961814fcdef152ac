/**
 * Worker thread of bench:parallel's "machine ceiling" measurement: repeats one piece of
 * single-thread work on its own, with nothing shared with the other workers (no sharding, no
 * messages, no averaging). N such workers started together show what N threads of this machine
 * give to independent copies of the work, the most any pool or data-parallel trainer can reach.
 *
 * workerData: `{ task: 'matmul' | 'infer' | 'train', batch, iterations, trainDepth }`. Posts
 * `{ ready: true }` after its warm-up, waits for `'go'`, then posts `{ ms }` for the iterations.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-layers';
import { adamw, createViT } from '../src/index';
import { type CeilingTask, INFER_CONFIG, singleThreadStep, trainConfig } from './parallel_work';

/** Builds the task's inputs and returns one iteration of it. */
function makeWork(t: CeilingTask): () => Promise<void> {
  if (t.task === 'matmul') {
    const a = tf.randomNormal([1024, 1024]);
    const b = tf.randomNormal([1024, 1024]);
    return async () => {
      const c = tf.matMul(a, b);
      await c.data();
      c.dispose();
    };
  }
  if (t.task === 'infer') {
    const model = createViT(INFER_CONFIG);
    const x = tf.randomNormal([t.batch, 224, 224, 3]);
    return async () => {
      const y = model.predict(x) as tf.Tensor;
      await y.data();
      y.dispose();
    };
  }
  const model = createViT(trainConfig(t.trainDepth));
  const x = tf.randomNormal([t.batch, 32, 32, 3]);
  const y = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: t.batch }, (_, i) => i % 10),
      'int32',
    ),
    10,
  );
  const optimizer: tf.Optimizer = adamw({ learningRate: 1e-4 });
  return () => singleThreadStep(model, optimizer, x, y);
}

async function main(): Promise<void> {
  const port = parentPort;
  if (port == null) throw new Error('ceiling_worker runs only as a worker thread');
  await tf.setBackend('wasm');
  await tf.ready();
  const work = makeWork(workerData as CeilingTask);
  await work();
  const go = new Promise<void>((resolve) => port.once('message', () => resolve()));
  port.postMessage({ ready: true });
  await go;
  const t0 = performance.now();
  for (let i = 0; i < (workerData as CeilingTask).iterations; i++) await work();
  port.postMessage({ ms: performance.now() - t0 });
}

// A rejection ends the thread with an 'error' event, which bench/parallel.ts turns into a failure.
void main();
