/**
 * Node file helpers for PyTorch checkpoints (exported from `vit-ts/node`).
 */
import { writeFile } from 'node:fs/promises';
import { ConfigError } from '../errors';
import { type ExportWeightsOptions, exportWeights } from './export';
import { type LoadPretrainedOptions, type LoadReport, loadPretrained } from './load';
import type { WeightsTarget } from './model_target';
import { readSafetensorsFile } from './safetensors_node';

/**
 * Reads a `.safetensors` checkpoint from disk and loads it with {@link loadPretrained}
 * (same options, same strict checks and report).
 *
 * @example
 * await loadPretrainedFile(model, 'vit_base_patch16_224.safetensors', { from: 'timm' });
 */
export async function loadPretrainedFile(
  model: WeightsTarget,
  path: string,
  options: LoadPretrainedOptions,
): Promise<LoadReport> {
  if (typeof path !== 'string' || path.length === 0) {
    throw new ConfigError(
      `loadPretrainedFile: path must be a non-empty string, got ${String(path)}`,
    );
  }
  return loadPretrained(model, await readSafetensorsFile(path), options);
}

/**
 * Writes the model's weights to a `.safetensors` file in a PyTorch layout (see
 * {@link exportWeights}). Returns the number of bytes written.
 */
export async function exportWeightsFile(
  model: WeightsTarget,
  path: string,
  options: ExportWeightsOptions,
): Promise<number> {
  if (typeof path !== 'string' || path.length === 0) {
    throw new ConfigError(
      `exportWeightsFile: path must be a non-empty string, got ${String(path)}`,
    );
  }
  const bytes = exportWeights(model, options);
  await writeFile(path, bytes);
  return bytes.byteLength;
}
