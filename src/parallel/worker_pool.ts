import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { ConfigError, InputShapeError, ParallelWorkerError, requirePositiveInt } from '../errors';
import type { PingResult, WorkerSetup, WorkerTask } from './protocol';

/** File name of the worker entry that tsup emits next to the library's modules. */
export const WORKER_BASENAME = 'parallel_worker';

/** Options shared by {@link createInferencePool} and {@link createDataParallelTrainer}. */
export interface WorkerPoolOptions {
  /** Number of worker threads. Default: `os.availableParallelism()`. */
  workers?: number;
  /** tfjs backend each worker runs on. Default `'wasm'` (single-threaded in Node: one core per worker). */
  backend?: 'wasm' | 'cpu' | (string & {});
  /**
   * Module the worker imports to register `backend`, resolved from the worker file's location.
   * Default `@tensorflow/tfjs-backend-<backend>`. Pass an absolute path when the package manager
   * does not let vit-ts see the backend package (e.g. pnpm's strict layout).
   */
  backendModule?: string;
  /**
   * Path of the worker script. Default: `parallel_worker.js` (ESM) or `parallel_worker.cjs`
   * (CommonJS) in the directory of the vit-ts module that creates the pool, which is where the
   * published package ships it (`node_modules/vit-ts/dist/`). Set it when a bundler moves the
   * library's files.
   */
  workerFile?: string;
}

/** Option names every pool accepts; an owner adds its own (any other key throws). */
const POOL_OPTION_KEYS = ['workers', 'backend', 'backendModule', 'workerFile'] as const;

/** Directory and format of the module this code was loaded from, in ESM and CommonJS builds. */
function thisModule(): { dir: string; cjs: boolean } {
  // The CommonJS build defines __filename; the ESM build has import.meta.url instead.
  if (typeof __filename === 'string') return { dir: dirname(__filename), cjs: true };
  return { dir: dirname(fileURLToPath(import.meta.url)), cjs: false };
}

/**
 * Path of the worker script shipped with vit-ts: `dist/parallel_worker.js` next to the ESM
 * build, `dist/parallel_worker.cjs` next to the CommonJS build.
 */
export function defaultWorkerFile(): string {
  const { dir, cjs } = thisModule();
  const preferred = join(dir, `${WORKER_BASENAME}${cjs ? '.cjs' : '.js'}`);
  if (existsSync(preferred)) return preferred;
  const other = join(dir, `${WORKER_BASENAME}${cjs ? '.js' : '.cjs'}`);
  return existsSync(other) ? other : preferred;
}

/** A started piscina pool whose workers all loaded the model. */
export interface StartedPool {
  piscina: Piscina<WorkerTask, unknown>;
  workers: number;
  backend: string;
  /** The model's input shapes, as the workers loaded it (checked before a batch is sharded). */
  inputShapes?: Array<Array<number | null>>;
}

/**
 * Refuses a batch whose per-image shape does not fit the model the workers loaded, naming the
 * whole batch: left to the workers, the error would name the shard each one received.
 */
export function checkInputShape(
  pool: StartedPool,
  what: string,
  argument: string,
  shape: readonly number[],
): void {
  const expected = pool.inputShapes?.length === 1 ? pool.inputShapes[0] : undefined;
  if (
    expected != null &&
    (expected.length !== shape.length ||
      expected.some((d, i) => i > 0 && d != null && d !== shape[i]))
  ) {
    throw new InputShapeError(
      `${what} expects ${argument} of shape [${expected.map((d, i) => (i === 0 ? 'batch' : (d ?? '?'))).join(', ')}] (the model's input), got [${shape.join(', ')}]`,
    );
  }
}

/** Validates the options, starts the threads and waits until each has loaded the model. */
export async function startWorkerPool(
  owner: string,
  modelDir: string,
  options: WorkerPoolOptions,
  extra: Pick<WorkerSetup, 'layout'> = {},
  ownerKeys: readonly string[] = [],
): Promise<StartedPool> {
  if (typeof modelDir !== 'string' || modelDir.length === 0) {
    throw new ConfigError(`${owner}: modelDir must be a non-empty path, got ${String(modelDir)}`);
  }
  if (options == null || typeof options !== 'object') {
    throw new ConfigError(`${owner}: options must be an object, got ${String(options)}`);
  }
  const known = new Set([...POOL_OPTION_KEYS, ...ownerKeys]);
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new ConfigError(`${owner}: unknown option '${key}'`);
  }
  const workers = requirePositiveInt(owner, 'workers', options.workers ?? availableParallelism());
  const backend = options.backend ?? 'wasm';
  if (typeof backend !== 'string' || backend.length === 0) {
    throw new ConfigError(
      `${owner}: backend must be a backend name such as 'wasm', got ${String(backend)}`,
    );
  }
  const backendModule = options.backendModule ?? `@tensorflow/tfjs-backend-${backend}`;
  const workerFile = options.workerFile ?? defaultWorkerFile();
  if (!existsSync(workerFile)) {
    throw new ConfigError(
      `${owner}: worker script not found at ${workerFile}; the published package ships it as dist/${WORKER_BASENAME}.js, pass workerFile when a bundler moved it (docs/parallel.md)`,
    );
  }
  const setup: WorkerSetup = { modelDir, backend, backendModule, ...extra };
  const piscina = new Piscina<WorkerTask, unknown>({
    filename: workerFile,
    minThreads: workers,
    maxThreads: workers,
    // Threads stay up for the pool's lifetime: each holds a loaded model.
    idleTimeout: Number.POSITIVE_INFINITY,
    // Workers load the model in the background before their first task; a blocking
    // Atomics.wait between tasks would stall that.
    atomics: 'disabled',
    workerData: setup,
  });
  const pool: StartedPool = { piscina, workers, backend };
  try {
    // One ping per thread; each waits for its worker's model to load and surfaces a failure.
    const pings = await Promise.all(
      Array.from({ length: workers }, () => runTask<PingResult>(pool, owner, { kind: 'ping' })),
    );
    pool.inputShapes = pings[0]?.inputShapes;
  } catch (e) {
    await piscina.destroy();
    throw e;
  }
  return pool;
}

/** Runs one task, turning a worker's failure into a {@link ParallelWorkerError}. */
export async function runTask<R>(
  pool: StartedPool,
  owner: string,
  task: WorkerTask,
  transferList: ArrayBufferLike[] = [],
): Promise<R> {
  try {
    return (await pool.piscina.run(task, { transferList: transferList as ArrayBuffer[] })) as R;
  } catch (e) {
    const cause = e instanceof Error ? e : new Error(String(e));
    throw new ParallelWorkerError(
      `${owner}: a worker thread failed (${task.kind}): ${cause.message}`,
      cause,
    );
  }
}

/**
 * What every object that owns a started pool shares: its size and backend, the live thread
 * count, a `destroy()` that is safe to call twice, the after-destroy check and task running with
 * the owner's name in every error ({@link runTask}).
 */
export abstract class PoolClient {
  private destroyed = false;

  constructor(
    protected readonly pool: StartedPool,
    protected readonly owner: string,
  ) {}

  /** Number of worker threads. */
  get workers(): number {
    return this.pool.workers;
  }

  /** Backend the workers run on. */
  get backend(): string {
    return this.pool.backend;
  }

  /** Number of live worker threads (0 after {@link PoolClient.destroy}). */
  threadCount(): number {
    return this.pool.piscina.threads.length;
  }

  /** Stops every worker thread; pending tasks reject. Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await this.pool.piscina.destroy();
  }

  /** Throws a {@link ParallelWorkerError} when `method` is called after {@link PoolClient.destroy}. */
  protected requireAlive(method: string): void {
    if (this.destroyed) {
      throw new ParallelWorkerError(`${this.owner}: ${method} called after destroy()`);
    }
  }

  /** {@link runTask} on this pool, errors named after the owner. */
  protected run<R>(task: WorkerTask, transferList: ArrayBufferLike[] = []): Promise<R> {
    return runTask<R>(this.pool, this.owner, task, transferList);
  }
}

/**
 * Splits `batch` items into at most `parts` contiguous shards whose sizes differ by at most one,
 * larger shards first; returns `[start, end)` pairs.
 */
export function shardRanges(batch: number, parts: number): Array<[number, number]> {
  const count = Math.min(batch, parts);
  const ranges: Array<[number, number]> = [];
  let start = 0;
  for (let i = 0; i < count; i++) {
    const size = Math.floor(batch / count) + (i < batch % count ? 1 : 0);
    ranges.push([start, start + size]);
    start += size;
  }
  return ranges;
}
