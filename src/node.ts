/**
 * Node-only entry point (`vit-ts/node`): file-system helpers. Browser bundles import `vit-ts`
 * and never see `node:fs`.
 * @packageDocumentation
 */
export { loadModel, saveModel } from './io/node_fs';
export type { LoadModelOptions, SaveModelOptions, SaveModelResult } from './io/node_fs';
export { readRegularFile, regularFileSize, resolveInside } from './io/safe_read';
export type { ReadRegularFileOptions } from './io/safe_read';
export {
  commitVersioned,
  fsyncDir,
  isVersionOf,
  versionedName,
  writeFileAtomic,
} from './io/atomic';
export type { VersionedCommit, VersionedCommitResult } from './io/atomic';

// --- weights: Node file helpers ---
export { readSafetensorsFile, writeSafetensorsFile } from './weights/safetensors_node';
export { exportWeightsFile, loadPretrainedFile } from './weights/load_node';

// --- analysis: PNG / image file helpers ---
export {
  decodeImage,
  decodeImageFile,
  encodePng,
  saveHeatmapPng,
  tensorToRgbaPixels,
  writePng,
} from './analysis/png_node';
export type { RgbaPixels, SaveHeatmapOptions } from './analysis/png_node';

// --- parallel: worker-thread inference pool and data-parallel training ---
export { createInferencePool } from './parallel/inference_pool';
export type { InferencePool, InferencePoolOptions } from './parallel/inference_pool';
export { createDataParallelTrainer } from './parallel/data_parallel';
export type {
  DataParallelGradients,
  DataParallelLoss,
  DataParallelOptions,
  DataParallelTrainer,
} from './parallel/data_parallel';
export { defaultWorkerFile } from './parallel/worker_pool';
export type { WorkerPoolOptions } from './parallel/worker_pool';
export { ParallelWorkerError } from './errors';

// --- data: dataset files (Fashion-MNIST and MNIST IDX, CIFAR-10 binary batches) ---
export {
  FASHION_MNIST_DEBIAN_DIR,
  loadCifar10,
  loadFashionMnist,
  loadMnist,
  readCifar10Batch,
  readFashionMnist,
  readIdxFile,
  readMnist,
} from './data/node';
export type { LoadCifar10Options, LoadFashionMnistOptions, LoadMnistOptions } from './data/node';

// --- train: checkpoints (crash-safe) and the terminal progress bar ---
export {
  CHECKPOINT_MANIFEST,
  loadCheckpoint,
  resumeTrainer,
  saveCheckpoint,
} from './train/checkpoint_node';
export type { LoadedCheckpoint } from './train/checkpoint_node';
export { formatSeconds, terminalProgress } from './train/progress_node';
export type { TerminalProgress, TerminalProgressOptions } from './train/progress_node';
