/**
 * Node-only entry point (`vit-ts/node`): file-system helpers. Browser bundles import `vit-ts`
 * and never see `node:fs`.
 * @packageDocumentation
 */
export { loadModel, saveModel } from './io/node_fs';

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
