/**
 * Messages between the main thread and a vit-ts worker thread (src/parallel/worker.ts). Plain
 * data only: typed arrays travel as transferred ArrayBuffers, never as copies.
 */

/** What every worker receives once, as piscina's `workerData`. */
export interface WorkerSetup {
  /** Directory of a model saved with `saveModel` (model.json + weights). */
  modelDir: string;
  /** tfjs backend name the worker activates, e.g. 'wasm' or 'cpu'. */
  backend: string;
  /** Module that registers the backend, imported by the worker. */
  backendModule: string;
  /**
   * Expected weight layout (trainable weights, then non-trainable), checked against the loaded
   * replica so that packed weight and gradient buffers mean the same thing on both sides.
   * Absent for inference.
   */
  layout?: WeightLayout;
}

/** One weight of a packed buffer: its name, shape and element count. */
export interface WeightSlot {
  name: string;
  shape: number[];
  size: number;
}

/** Order of the weights in a packed Float32Array: trainable first, then non-trainable. */
export interface WeightLayout {
  trainable: WeightSlot[];
  nonTrainable: WeightSlot[];
}

/** A tensor as plain data. */
export interface TensorData {
  data: Float32Array;
  shape: number[];
}

/** Asks a worker to finish loading and report itself. */
export interface PingTask {
  kind: 'ping';
}

/** Runs `model.predict` on one shard of a batch. */
export interface PredictTask {
  kind: 'predict';
  input: TensorData;
}

/** Names of the losses a data-parallel worker can compute (functions cannot cross threads). */
export type DataParallelLoss = 'softmaxCrossEntropy' | 'meanSquaredError';

/**
 * Sets the replica's weights, then computes the mean loss over one shard and its gradients with
 * respect to every trainable weight (no optimizer step).
 */
export interface GradientsTask {
  kind: 'gradients';
  /** All weights packed in the layout order (trainable, then non-trainable). */
  weights: Float32Array;
  x: TensorData;
  y: TensorData;
  loss: DataParallelLoss;
  labelSmoothing: number;
  /** Return the non-trainable weights after the forward pass (e.g. BatchNorm statistics). */
  returnState: boolean;
  /** Return the argmax of the model's output for every image of the shard (accuracy). */
  returnPredictions?: boolean;
}

export type WorkerTask = PingTask | PredictTask | GradientsTask;

export interface PingResult {
  backend: string;
  threadId: number;
  /** The loaded model's input shapes (batch axis included, null where open). */
  inputShapes?: Array<Array<number | null>>;
}

export interface PredictResult {
  outputs: TensorData[];
}

export interface GradientsResult {
  /** Gradients of the shard's mean loss, packed in the trainable layout order. */
  gradients: Float32Array;
  /** Per trainable weight: 1 if the loss reaches it (it has a gradient), 0 if not. */
  reached: Uint8Array;
  /** Mean loss over the shard. */
  loss: number;
  /** Non-trainable weights after the forward pass, when asked for. */
  state: Float32Array | null;
  /** Argmax of the output over its last axis, one per image, when asked for. */
  predictions: Int32Array | null;
}
