/**
 * The worker-thread side of {@link createInferencePool} and {@link createDataParallelTrainer}.
 *
 * Built as its own entry (`dist/parallel_worker.js` and `.cjs`) and started by piscina. It
 * imports tfjs-core, tfjs-layers and the backend module named in its setup from the consumer's
 * installation: the library itself imports no backend.
 */
import { threadId } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import { loadModel } from '../io/node_fs';
import { registerVitTsLayers } from '../registry';
import { softmaxCrossEntropy } from '../train/losses';
import type {
  GradientsResult,
  GradientsTask,
  PingResult,
  PredictResult,
  PredictTask,
  TensorData,
  WeightLayout,
  WeightSlot,
  WorkerSetup,
  WorkerTask,
} from './protocol';

interface Replica {
  model: LayersModel;
}

async function start(setup: WorkerSetup): Promise<Replica> {
  // Gradients of tfjs-core ops are registered by tfjs-layers' import.
  await import('@tensorflow/tfjs-layers');
  try {
    await import(setup.backendModule);
  } catch (e) {
    throw new Error(
      `vit-ts worker: cannot import backend module '${setup.backendModule}' for backend '${setup.backend}': ${(e as Error).message}`,
    );
  }
  const ok = await tf.setBackend(setup.backend);
  if (!ok || tf.getBackend() !== setup.backend) {
    throw new Error(`vit-ts worker: backend '${setup.backend}' failed to initialize`);
  }
  await tf.ready();
  registerVitTsLayers();
  const model = await loadModel(setup.modelDir);
  // A model frozen before the pool started comes back frozen: saveModel lists its frozen
  // weights and loadModel freezes them again (src/io/frozen.ts).
  if (setup.layout != null) checkLayout(model, setup.layout);
  return { model };
}

function slotsOf(weights: LayersModel['trainableWeights']): WeightSlot[] {
  return weights.map((w) => ({
    name: w.originalName,
    shape: [...w.shape] as number[],
    size: w.shape.reduce((a: number, d) => a * (d as number), 1),
  }));
}

function checkLayout(model: LayersModel, layout: WeightLayout): void {
  const groups: Array<[string, WeightSlot[], WeightSlot[]]> = [
    ['trainable', slotsOf(model.trainableWeights), layout.trainable],
    ['non-trainable', slotsOf(model.nonTrainableWeights), layout.nonTrainable],
  ];
  for (const [kind, got, expected] of groups) {
    const describe = (s: WeightSlot[]) => s.map((w) => `${w.name}[${w.shape.join(',')}]`).join(' ');
    if (describe(got) !== describe(expected)) {
      throw new Error(
        `vit-ts worker: the model loaded from ${String(workerData?.modelDir)} has ${kind} weights ${describe(got)}, expected ${describe(expected)}`,
      );
    }
  }
}

const setup = workerData as WorkerSetup;
const replica = start(setup);
// The handler awaits `replica` and rethrows a failed start in the caller; this keeps a start
// failure from being an unhandled rejection before the first task arrives.
replica.catch(() => undefined);

/** A result whose ArrayBuffers piscina transfers instead of copying. */
function transferring<T>(value: T, buffers: ArrayBufferLike[]): T {
  const unique = [...new Set(buffers)];
  if (unique.length === 0) return value;
  // piscina's transferable protocol: an object naming the value and the buffers to move.
  return move({
    get [transferableSymbol]() {
      return unique;
    },
    get [valueSymbol]() {
      return value;
    },
  } as never) as T;
}

async function predict(model: LayersModel, task: PredictTask): Promise<PredictResult> {
  const input = tf.tensor(task.input.data, task.input.shape, 'float32');
  try {
    const out = model.predict(input);
    const list = Array.isArray(out) ? out : [out];
    try {
      const outputs: TensorData[] = [];
      for (const t of list) {
        const data = await t.data();
        outputs.push({ data: data as Float32Array, shape: [...t.shape] });
      }
      return transferring(
        { outputs },
        outputs.map((o) => o.data.buffer),
      );
    } finally {
      tf.dispose(list);
    }
  } finally {
    input.dispose();
  }
}

function writeWeights(model: LayersModel, packed: Float32Array): void {
  let offset = 0;
  for (const w of [...model.trainableWeights, ...model.nonTrainableWeights]) {
    const size = w.shape.reduce((a: number, d) => a * (d as number), 1);
    const value = tf.tensor(packed.subarray(offset, offset + size), w.shape as number[], 'float32');
    w.write(value);
    value.dispose();
    offset += size;
  }
  if (offset !== packed.length) {
    throw new Error(
      `vit-ts worker: weights buffer has ${packed.length} values, the model has ${offset}`,
    );
  }
}

function lossFunction(task: GradientsTask): (y: tf.Tensor, logits: tf.Tensor) => tf.Tensor {
  if (task.loss === 'softmaxCrossEntropy') {
    return softmaxCrossEntropy({ labelSmoothing: task.labelSmoothing });
  }
  return (y, pred) => tf.mean(tf.squaredDifference(pred, y));
}

async function gradients(model: LayersModel, task: GradientsTask): Promise<GradientsResult> {
  writeWeights(model, task.weights);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const loss = lossFunction(task);
  const x = tf.tensor(task.x.data, task.x.shape, 'float32');
  const y = tf.tensor(task.y.data, task.y.shape, 'float32');
  // Kept out of variableGrads' scope; disposed below even when the backward pass throws.
  let argmax: tf.Tensor | null = null;
  try {
    const { value, grads } = tf.variableGrads(() => {
      const out = model.apply(x, { training: true }) as tf.Tensor;
      // One class per image only for [batch, classes] outputs; the caller checks the count.
      if (task.returnPredictions && out.rank === 2) argmax = tf.keep(tf.argMax(out, -1));
      return loss(y, out) as tf.Scalar;
    }, variables);
    try {
      const total = variables.reduce((a, v) => a + v.size, 0);
      const packed = new Float32Array(total);
      // A weight the loss does not reach (e.g. an unused head) has no gradient, as in
      // tf.variableGrads: marked 0 here so the caller leaves it out (a zero would still decay it).
      const reached = new Uint8Array(variables.length);
      let offset = 0;
      for (const [i, v] of variables.entries()) {
        const g = grads[v.name];
        if (g != null) {
          packed.set((await g.data()) as Float32Array, offset);
          reached[i] = 1;
        }
        offset += v.size;
      }
      const lossValue = (await value.data())[0];
      let state: Float32Array | null = null;
      if (task.returnState && model.nonTrainableWeights.length > 0) {
        const stateSize = model.nonTrainableWeights.reduce(
          (a, w) => a + w.shape.reduce((b: number, d) => b * (d as number), 1),
          0,
        );
        state = new Float32Array(stateSize);
        let at = 0;
        for (const w of model.nonTrainableWeights) {
          const data = (await w.read().data()) as Float32Array;
          state.set(data, at);
          at += data.length;
        }
      }
      const predictions =
        argmax == null ? null : Int32Array.from((await (argmax as tf.Tensor).data()) as Int32Array);
      const buffers: ArrayBufferLike[] = [packed.buffer, reached.buffer];
      if (state != null) buffers.push(state.buffer);
      if (predictions != null) buffers.push(predictions.buffer);
      return transferring(
        { gradients: packed, reached, loss: lossValue, state, predictions },
        buffers,
      );
    } finally {
      value.dispose();
      tf.dispose(Object.values(grads));
    }
  } finally {
    if (argmax != null) (argmax as tf.Tensor).dispose();
    x.dispose();
    y.dispose();
  }
}

/** piscina's task handler. */
export default async function handle(
  task: WorkerTask,
): Promise<PingResult | PredictResult | GradientsResult> {
  const { model } = await replica;
  switch (task.kind) {
    case 'ping':
      return {
        backend: tf.getBackend(),
        threadId,
        inputShapes: model.inputs.map((i) => [...i.shape] as Array<number | null>),
      };
    case 'predict':
      return predict(model, task);
    case 'gradients':
      return gradients(model, task);
    default:
      throw new Error(
        `vit-ts worker: unknown task kind ${String((task as { kind: unknown }).kind)}`,
      );
  }
}
