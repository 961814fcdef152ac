/**
 * One member of the page's Web Worker pool: its own tfjs wasm backend (single-threaded), its
 * own copy of the model, built from the same config and seed as every other copy, so that all
 * workers and the page hold identical weights. Messages: {kind:'init', config} -> {kind:'ready'};
 * {kind:'predict', id, data, shape} -> {kind:'result', id, data, shape} (buffers transferred).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { createViT, type ViTConfig } from '../../src/index';
import { configureWasmPaths } from './wasm_setup';

configureWasmPaths();
let model: LayersModel | null = null;

type Request =
  | { kind: 'init'; config: ViTConfig; seed: number }
  | { kind: 'predict'; id: number; data: Float32Array; shape: number[] };

self.onmessage = async (event: MessageEvent<Request>) => {
  const msg = event.data;
  try {
    if (msg.kind === 'init') {
      // One thread per worker: the pool is the parallelism (a nested pthread pool would
      // compete with the other workers for the same cores).
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
      if (!(await tf.setBackend('wasm')))
        throw new Error('wasm backend failed to start in a worker');
      await tf.ready();
      model = createViT(msg.config, {}, { seed: msg.seed });
      tf.dispose(
        model.predict(
          tf.zeros([1, msg.config.imgSize as number, msg.config.imgSize as number, 3]),
        ) as tf.Tensor,
      );
      self.postMessage({ kind: 'ready', backend: tf.getBackend() });
      return;
    }
    if (model == null) throw new Error('predict before init');
    const x = tf.tensor(msg.data, msg.shape, 'float32');
    const y = model.predict(x) as tf.Tensor;
    const data = (await y.data()) as Float32Array;
    const shape = [...y.shape];
    tf.dispose([x, y]);
    (self as unknown as Worker).postMessage({ kind: 'result', id: msg.id, data, shape }, [
      data.buffer,
    ]);
  } catch (e) {
    self.postMessage({
      kind: 'error',
      id: (msg as { id?: number }).id ?? -1,
      message: (e as Error).message,
    });
  }
};
