/**
 * A small pool of Web Workers for batch inference in the browser: each worker runs its own
 * single-threaded wasm backend and model copy, a batch is split into one contiguous shard per
 * worker, and the outputs come back in order. This is how the page reaches a second core when
 * tfjs' own threaded wasm does not (docs/backends.md, "All cores in the browser").
 */
import type { ViTConfig } from '../../src/index';

interface Pending {
  resolve: (r: { data: Float32Array; shape: number[] }) => void;
  reject: (e: Error) => void;
}

export class BrowserWorkerPool {
  private readonly workers: Worker[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  private constructor(workers: Worker[]) {
    this.workers = workers;
    for (const w of workers) {
      w.onmessage = (event: MessageEvent) => {
        const msg = event.data;
        const p = this.pending.get(msg.id);
        if (p == null) return;
        this.pending.delete(msg.id);
        if (msg.kind === 'error') p.reject(new Error(`worker: ${msg.message}`));
        else p.resolve({ data: msg.data, shape: msg.shape });
      };
    }
  }

  /** Starts `n` workers, each building the model from `config` with the same weight `seed`. */
  static async create(n: number, config: ViTConfig, seed: number): Promise<BrowserWorkerPool> {
    const workers = Array.from(
      { length: n },
      () => new Worker(new URL('./vit_worker.ts', import.meta.url), { type: 'module' }),
    );
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            w.onmessage = (event: MessageEvent) => {
              if (event.data.kind === 'ready') resolve();
              else reject(new Error(`worker start: ${event.data.message}`));
            };
            w.onerror = (e) => reject(new Error(`worker start: ${e.message}`));
            w.postMessage({ kind: 'init', config, seed });
          }),
      ),
    );
    return new BrowserWorkerPool(workers);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Runs a batch `[n, ...]` given as plain data; resolves to the concatenated outputs. */
  async predict(
    data: Float32Array,
    shape: number[],
  ): Promise<{ data: Float32Array; shape: number[] }> {
    const batch = shape[0];
    const item = data.length / batch;
    const count = Math.min(batch, this.workers.length);
    const jobs: Promise<{ data: Float32Array; shape: number[] }>[] = [];
    let start = 0;
    for (let k = 0; k < count; k++) {
      const rows = Math.floor(batch / count) + (k < batch % count ? 1 : 0);
      const shard = data.slice(start * item, (start + rows) * item);
      const id = this.nextId++;
      jobs.push(
        new Promise((resolve, reject) => {
          this.pending.set(id, { resolve, reject });
          this.workers[k].postMessage(
            { kind: 'predict', id, data: shard, shape: [rows, ...shape.slice(1)] },
            [shard.buffer],
          );
        }),
      );
      start += rows;
    }
    const parts = await Promise.all(jobs);
    const out = new Float32Array(parts.reduce((a, p) => a + p.data.length, 0));
    let offset = 0;
    for (const p of parts) {
      out.set(p.data, offset);
      offset += p.data.length;
    }
    return { data: out, shape: [batch, ...parts[0].shape.slice(1)] };
  }

  terminate(): void {
    for (const w of this.workers) w.terminate();
    for (const p of this.pending.values()) p.reject(new Error('pool terminated'));
    this.pending.clear();
  }
}
