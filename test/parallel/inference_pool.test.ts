import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ParallelWorkerError } from '../../src/errors';
import { createViT } from '../../src/index';
import { createInferencePool, type InferencePool, saveModel } from '../../src/node';
import { shardRanges } from '../../src/parallel/worker_pool';
import { describeBackends, seededValues } from '../helpers/backends';
import { buildWorkerBundle } from '../helpers/parallel_worker';

const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const CONFIG = { imgSize: 16, patchSize: 4, embedDim: 32, depth: 2, numHeads: 2, numClasses: 5 };

let workerFile = '';
let modelDir = '';

beforeAll(async () => {
  workerFile = await buildWorkerBundle();
  modelDir = mkdtempSync(join(tmpdir(), 'vit-ts-pool-test-'));
}, 60_000);

afterAll(() => {
  rmSync(modelDir, { recursive: true, force: true });
  rmSync(workerFile, { force: true });
});

it('shardRanges splits a batch into contiguous near-equal shards, larger first', () => {
  expect(shardRanges(5, 2)).toEqual([
    [0, 3],
    [3, 5],
  ]);
  expect(shardRanges(8, 3)).toEqual([
    [0, 3],
    [3, 6],
    [6, 8],
  ]);
  expect(shardRanges(1, 2)).toEqual([[0, 1]]);
});

describeBackends('createInferencePool', (backend) => {
  let model: LayersModel;
  let pool: InferencePool;
  let dir: string;

  beforeAll(async () => {
    model = createViT(CONFIG);
    dir = join(modelDir, backend);
    await saveModel(model, dir);
    pool = await createInferencePool(dir, { workers: 2, backend, workerFile });
  }, 120_000);

  afterAll(async () => {
    await pool?.destroy();
    await pool?.destroy(); // a second call is a no-op
    expect(pool.threadCount()).toBe(0);
    const x = tf.zeros([1, 16, 16, 3]);
    await expect(pool.predict(x)).rejects.toThrow(
      /createInferencePool: predict called after destroy\(\)/,
    );
    x.dispose();
    model?.dispose();
  });

  it('reports its workers and backend', () => {
    expect(pool.workers).toBe(2);
    expect(pool.backend).toBe(backend);
    expect(pool.threadCount()).toBe(2);
  });

  it('outputs equal one-thread predict, in order, for an odd batch (shards 3 + 2)', async () => {
    const x = tf.tensor4d(seededValues(5 * 16 * 16 * 3, 7), [5, 16, 16, 3]);
    const before = tf.memory().numTensors;
    const out = (await pool.predict(x)) as tf.Tensor;
    expect(out.shape).toEqual([5, 5]);
    expect(tf.memory().numTensors).toBe(before + 1);
    const ref = model.predict(x) as tf.Tensor;
    const got = await out.data();
    const want = await ref.data();
    let maxDiff = 0;
    for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
    expect(maxDiff).toBeLessThan(1e-6);
    // Rows of different samples differ, so a swapped shard order would be caught.
    expect(Math.abs(want[0] - want[5])).toBeGreaterThan(1e-4);
    tf.dispose([x, out, ref]);
  });

  it('a batch of 1 runs on one worker', async () => {
    const x = tf.tensor4d(seededValues(16 * 16 * 3, 3), [1, 16, 16, 3]);
    const out = (await pool.predict(x)) as tf.Tensor;
    const ref = model.predict(x) as tf.Tensor;
    expect(out.shape).toEqual([1, 5]);
    expect(Math.max(...(await tf.abs(tf.sub(out, ref)).data()))).toBeLessThan(1e-6);
    tf.dispose([x, out, ref]);
  });

  it('refuses input that does not fit the model, naming the whole batch (not a shard)', async () => {
    const wrong = tf.zeros([2, 8, 8, 3]);
    await expect(pool.predict(wrong)).rejects.toThrow(
      /predict expects input of shape \[batch, 16, 16, 3\] \(the model's input\), got \[2, 8, 8, 3\]/,
    );
    wrong.dispose();
  });

  it("a worker's error reaches the caller as ParallelWorkerError, and the pool keeps working", async () => {
    // A model with an open image size: the shape passes the pool's check, the worker's
    // PatchEmbed refuses 9 px (not divisible by the 4 px patches).
    const dynamicDir = join(modelDir, `${backend}-dynamic`);
    const dynamic = createViT({ ...CONFIG, dynamicImgSize: true });
    await saveModel(dynamic, dynamicDir);
    dynamic.dispose();
    const open = await createInferencePool(dynamicDir, { workers: 1, backend, workerFile });
    try {
      const wrong = tf.zeros([2, 9, 9, 3]);
      const error = await open.predict(wrong).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ParallelWorkerError);
      expect((error as Error).message).toMatch(/a worker thread failed \(predict\)/);
      // The worker's own message (a shape error from the model) is kept.
      expect((error as Error & { cause: Error }).cause.message).toMatch(/divisible by patchSize/);
      wrong.dispose();
      const x = tf.zeros([2, 16, 16, 3]);
      const out = (await open.predict(x)) as tf.Tensor;
      expect(out.shape).toEqual([2, 5]);
      tf.dispose([x, out]);
    } finally {
      await open.destroy();
    }
  }, 60_000);

  it('rejects input without a batch axis or with an empty batch', async () => {
    const scalar = tf.scalar(1);
    await expect(pool.predict(scalar)).rejects.toThrow(/batch axis of size >= 1, got shape \[\]/);
    scalar.dispose();
    const empty = tf.zeros([0, 16, 16, 3]);
    await expect(pool.predict(empty)).rejects.toThrow(
      /batch axis of size >= 1, got shape \[0, 16, 16, 3\]/,
    );
    empty.dispose();
  });
});

it('a model directory that does not load fails the start with ParallelWorkerError', async () => {
  const error = await createInferencePool(join(modelDir, 'missing'), {
    workers: 1,
    backend: 'cpu',
    workerFile,
  }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ParallelWorkerError);
  expect((error as Error).message).toMatch(/cannot read .*missing.*model\.json/);
}, 60_000);

it('rejects bad options with the name of the option', async () => {
  await expect(createInferencePool(modelDir, { workers: 0, workerFile })).rejects.toThrow(
    /workers must be a positive integer, got 0/,
  );
  await expect(createInferencePool(modelDir, { workerFile, threads: 2 } as never)).rejects.toThrow(
    /unknown option 'threads'/,
  );
  await expect(
    createInferencePool(modelDir, { workerFile: join(modelDir, 'nope.js') }),
  ).rejects.toThrow(/worker script not found at .*nope\.js/);
});

it('destroy() stops every thread: the process exits by itself', async () => {
  await tf.ready();
  const dir = join(modelDir, 'exit');
  const model = createViT(CONFIG);
  await saveModel(model, dir);
  model.dispose();
  const script = `
    import * as tf from '@tensorflow/tfjs-core';
    import '@tensorflow/tfjs-backend-cpu';
    import { createInferencePool } from ${JSON.stringify(join(repo, 'src/node.ts'))};
    const pool = await createInferencePool(${JSON.stringify(dir)}, { workers: 2, backend: 'cpu', workerFile: ${JSON.stringify(workerFile)} });
    const out = await pool.predict(tf.zeros([2, 16, 16, 3]));
    await pool.destroy();
    console.log('threads after destroy', pool.threadCount(), 'output', out.shape.join('x'));
  `;
  // No process.exit in the script: it ends only if no worker thread is left alive.
  const scriptFile = join(repo, 'test-artifacts', 'parallel', `exit_check.${process.pid}.mts`);
  writeFileSync(scriptFile, script);
  const child = spawnSync(process.execPath, ['--import', 'tsx', scriptFile], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 90_000,
  });
  rmSync(scriptFile, { force: true });
  expect(child.stderr).not.toMatch(/Error/);
  expect(child.signal).toBeNull();
  expect(child.status).toBe(0);
  expect(child.stdout).toContain('threads after destroy 0 output 2x5');
}, 120_000);
