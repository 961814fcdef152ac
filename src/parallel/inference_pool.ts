import * as tf from '@tensorflow/tfjs-core';
import { InputShapeError } from '../errors';
import type { PredictResult, TensorData } from './protocol';
import {
  checkInputShape,
  PoolClient,
  type StartedPool,
  shardRanges,
  startWorkerPool,
  type WorkerPoolOptions,
} from './worker_pool';

/** Options of {@link createInferencePool}. */
export type InferencePoolOptions = WorkerPoolOptions;

/** A pool of worker threads, each holding the same model, that shares out a batch. */
export interface InferencePool {
  /** Number of worker threads. */
  readonly workers: number;
  /** Backend the workers run on. */
  readonly backend: string;
  /**
   * Splits `input` along its first axis into one contiguous shard per worker, runs the model's
   * `predict` on every shard in parallel and concatenates the outputs in order. The result is a
   * tensor on the calling thread's backend (an array for a multi-output model); `input` is not
   * disposed.
   */
  predict(input: tf.Tensor): Promise<tf.Tensor | tf.Tensor[]>;
  /** Number of live worker threads (0 after {@link InferencePool.destroy}). */
  threadCount(): number;
  /** Stops every worker thread; pending predictions reject. Safe to call twice. */
  destroy(): Promise<void>;
}

const OWNER = 'createInferencePool';

/**
 * Starts `workers` threads (default: one per core), each loading the model saved in `modelDir`
 * (`saveModel`'s format) on its own tfjs backend, and resolves once every thread is ready.
 * Use it for batch inference in Node, where the wasm backend is single-threaded: with 2 workers
 * a batch runs on 2 cores. Outputs equal a single-threaded `model.predict` on the same backend.
 * A worker that throws rejects the call with a {@link ParallelWorkerError}; call `destroy()` when
 * done, or the threads keep the process alive.
 *
 * @example
 * import '@tensorflow/tfjs-backend-cpu'; // the calling thread's backend, for the result tensors
 * import { createInferencePool } from 'vit-ts/node';
 * const pool = await createInferencePool('./my-vit', { workers: 2, backend: 'wasm' });
 * const logits = (await pool.predict(images)) as tf.Tensor; // images: [batch, 224, 224, 3]
 * await pool.destroy();
 */
export async function createInferencePool(
  modelDir: string,
  options: InferencePoolOptions = {},
): Promise<InferencePool> {
  const pool = await startWorkerPool(OWNER, modelDir, options);
  return new PooledInference(pool);
}

class PooledInference extends PoolClient implements InferencePool {
  constructor(pool: StartedPool) {
    super(pool, OWNER);
  }

  async predict(input: tf.Tensor): Promise<tf.Tensor | tf.Tensor[]> {
    this.requireAlive('predict');
    if (!(input instanceof tf.Tensor) || input.rank < 1 || input.shape[0] === 0) {
      throw new InputShapeError(
        `${OWNER}: predict expects a tensor with a batch axis of size >= 1, got ${input instanceof tf.Tensor ? `shape [${input.shape.join(', ')}]` : String(input)}`,
      );
    }
    checkInputShape(this.pool, `${OWNER}: predict`, 'input', input.shape);
    const batch = input.shape[0];
    const itemSize = input.size / batch;
    const all = (await input.data()) as Float32Array;
    const shards = shardRanges(batch, this.pool.workers).map(([start, end]) => {
      // slice copies: each shard owns its buffer, which is then transferred, not copied again.
      const data = Float32Array.from(all.subarray(start * itemSize, end * itemSize));
      const shard: TensorData = { data, shape: [end - start, ...input.shape.slice(1)] };
      return this.run<PredictResult>({ kind: 'predict', input: shard }, [data.buffer]);
    });
    const results = await Promise.all(shards);
    const outputCount = results[0].outputs.length;
    const tensors: tf.Tensor[] = [];
    for (let o = 0; o < outputCount; o++) {
      const parts = results.map((r) => r.outputs[o]);
      const total = parts.reduce((a, p) => a + p.data.length, 0);
      const data = new Float32Array(total);
      let offset = 0;
      for (const p of parts) {
        data.set(p.data, offset);
        offset += p.data.length;
      }
      const rows = parts.reduce((a, p) => a + p.shape[0], 0);
      tensors.push(tf.tensor(data, [rows, ...parts[0].shape.slice(1)], 'float32'));
    }
    return outputCount === 1 ? tensors[0] : tensors;
  }
}
