import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { type LayersModel, loadLayersModel } from '@tensorflow/tfjs-layers';
import { ConfigError, ModelFileError } from '../errors';

const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';

/**
 * Saves a `tf.LayersModel` to a directory as `model.json` + `weights.bin` (the tfjs layers
 * format that `tf.loadLayersModel` reads), without tfjs-node. Creates the directory.
 * Returns the artifacts info tfjs reports.
 */
export async function saveModel(model: LayersModel, dir: string): Promise<tf.io.SaveResult> {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new ConfigError(`saveModel: dir must be a non-empty path, got ${String(dir)}`);
  }
  return model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      await mkdir(dir, { recursive: true });
      const weightData = artifacts.weightData;
      const bytes = weightData == null ? new Uint8Array(0) : concatWeightData(weightData);
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
        userDefinedMetadata: artifacts.userDefinedMetadata,
      };
      await writeFile(join(dir, MODEL_JSON), JSON.stringify(modelJson));
      await writeFile(join(dir, WEIGHTS_BIN), bytes);
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(artifacts.modelTopology).length,
          weightSpecsBytes: JSON.stringify(artifacts.weightSpecs).length,
          weightDataBytes: bytes.byteLength,
        },
      };
    }),
  );
}

function concatWeightData(data: ArrayBuffer | ArrayBuffer[]): Uint8Array {
  const parts = Array.isArray(data) ? data : [data];
  const total = parts.reduce((a, p) => a + p.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p), offset);
    offset += p.byteLength;
  }
  return out;
}

/**
 * Loads a model saved by {@link saveModel} (or any tfjs layers-format directory whose manifest
 * lists local files). Import `vit-ts` first so its layer classes are registered.
 */
export async function loadModel(dir: string): Promise<LayersModel> {
  const text = await readFile(join(dir, MODEL_JSON), 'utf8').catch((e: Error) => {
    throw new ModelFileError(`loadModel: cannot read ${join(dir, MODEL_JSON)}: ${e.message}`);
  });
  let json: {
    modelTopology: object;
    weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
    format?: string;
    generatedBy?: string;
    convertedBy?: string | null;
    userDefinedMetadata?: Record<string, unknown>;
  };
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ModelFileError(
      `loadModel: ${join(dir, MODEL_JSON)} is not valid JSON: ${(e as Error).message}`,
    );
  }
  if (
    !json ||
    typeof json !== 'object' ||
    !json.modelTopology ||
    !Array.isArray(json.weightsManifest)
  ) {
    throw new ModelFileError(
      `loadModel: ${join(dir, MODEL_JSON)} lacks modelTopology or weightsManifest`,
    );
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Uint8Array[] = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) buffers.push(new Uint8Array(await readFile(join(dir, p))));
  }
  const merged = concatWeightData(
    buffers.map((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer),
  );
  return loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: specs,
      weightData: merged.buffer as ArrayBuffer,
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy ?? undefined,
      userDefinedMetadata: json.userDefinedMetadata as Record<string, object> | undefined,
    }),
  );
}
