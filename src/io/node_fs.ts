/**
 * Saving and loading `tf.LayersModel`s in the tfjs layers format (`model.json` + weights) from
 * Node, without tfjs-node, crash-safely and without trusting the files.
 *
 * Saving (versioned files, manifest last): the weights go to a new file named by their content
 * (`weights.<16 hex>.bin`), fsynced, then `model.json` naming it replaces the old one by an
 * atomic rename, then the superseded weights file is deleted. Killed at any instant, the
 * directory's `model.json` names a complete weights file: the old model or the new one, never a
 * mix. (Renaming two fixed names one after the other cannot give that: between the two renames
 * the directory holds the new model.json over the old weights.) See src/io/atomic.ts.
 *
 * Loading checks everything before a tensor is made: manifest paths stay inside the directory
 * (no absolute paths, no `..`, no symlinks out), only regular files are read and their sizes must
 * equal the manifest's byte counts, the architecture in model.json must be within the size limits
 * (`maxParams`), and a load that fails disposes everything it created.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { type LayersModel, models } from '@tensorflow/tfjs-layers';
import { checkKnownKeys } from '../config/schema';
import { ConfigError, ModelFileError, VitTsError } from '../errors';
import { withZeroInit } from '../layers/init';
import { guardEmptyBatch } from '../models/batch_guard';
import { getSizeLimits, withSizeLimits } from '../models/limits';
import { commitVersioned } from './atomic';
import { applyFrozenWeights, frozenWeightNames } from './frozen';
import { quantizeWeights, type WeightQuantization } from './quantize';
import { readRegularFile, regularFileSize, resolveInside } from './safe_read';
import { checkTopology } from './topology_check';

const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';

/** Options of {@link saveModel}. */
export interface SaveModelOptions {
  /**
   * Store float32 weights quantized in tfjs' own format (any tfjs app dequantizes them on load):
   * `'float16'` halves the weights file, `'uint8'` quarters it (per-tensor affine). Default: none.
   */
  quantize?: WeightQuantization;
}

/** What {@link saveModel} reports: tfjs' artifacts info plus the files written. */
export interface SaveModelResult extends tf.io.SaveResult {
  /** The weights file now named by model.json (`weights.<hash>.bin`). */
  weightsFile: string;
  /** Bytes of each file written (model.json and the weights file). */
  bytes: Record<string, number>;
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
 * Saves a `tf.LayersModel` to a directory as `model.json` + one weights file (the tfjs layers
 * format that `tf.loadLayersModel` reads), crash-safely: at every instant the directory holds
 * the complete previous model or the complete new one (see the module comment). Creates the
 * directory. One writer per directory at a time.
 *
 * @example
 * await saveModel(model, 'out/vit');                          // float32
 * await saveModel(model, 'out/vit-f16', { quantize: 'float16' }); // half the size
 */
export async function saveModel(
  model: LayersModel,
  dir: string,
  options: SaveModelOptions = {},
): Promise<SaveModelResult> {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new ConfigError(`saveModel: dir must be a non-empty path, got ${String(dir)}`);
  }
  checkKnownKeys('saveModel', options, ['quantize'], 'option');
  const quantize = options.quantize;
  if (quantize !== undefined && quantize !== 'float16' && quantize !== 'uint8') {
    throw new ConfigError(
      `saveModel: quantize must be 'float16' or 'uint8', got ${JSON.stringify(quantize)}`,
    );
  }
  let result: SaveModelResult | undefined;
  const frozen = frozenWeightNames(model);
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      await mkdir(dir, { recursive: true });
      let bytes =
        artifacts.weightData == null
          ? new Uint8Array(0)
          : concatWeightData(artifacts.weightData as ArrayBuffer | ArrayBuffer[]);
      let specs = artifacts.weightSpecs ?? [];
      if (quantize !== undefined) {
        const q = quantizeWeights(specs, bytes, quantize);
        specs = q.specs;
        bytes = q.data;
      }
      const commit = await commitVersioned(dir, {
        files: { [WEIGHTS_BIN]: bytes },
        manifestName: MODEL_JSON,
        manifest: (names) =>
          JSON.stringify({
            modelTopology: artifacts.modelTopology,
            format: artifacts.format ?? 'layers-model',
            generatedBy: artifacts.generatedBy,
            convertedBy: artifacts.convertedBy ?? null,
            weightsManifest: [{ paths: [`./${names[WEIGHTS_BIN]}`], weights: specs }],
            userDefinedMetadata: artifacts.userDefinedMetadata,
            // Only when something is frozen (see src/io/frozen.ts); tfjs ignores the key.
            ...(frozen.length > 0 ? { frozenWeights: frozen } : {}),
          }),
      });
      result = {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(artifacts.modelTopology).length,
          weightSpecsBytes: JSON.stringify(specs).length,
          weightDataBytes: bytes.byteLength,
        },
        weightsFile: commit.names[WEIGHTS_BIN] as string,
        bytes: commit.bytes,
      };
      return result;
    }),
  );
  return result as SaveModelResult;
}

/** Options of {@link loadModel}. */
export interface LoadModelOptions {
  /** Refuse architectures (and manifests) with more parameters. Default: the size limits in force (3e9). */
  maxParams?: number;
  /** Refuse architectures with a larger per-image activation. Default 2^31 elements. */
  maxActivations?: number;
  /** Refuse a model.json larger than this. Default 64 MiB. */
  maxJsonBytes?: number;
}

const DEFAULT_MAX_JSON_BYTES = 64 * 1024 * 1024;
const BYTES_PER_VALUE: Record<string, number> = { float32: 4, int32: 4, bool: 1 };
const QUANTIZED_BYTES: Record<string, number> = { uint8: 1, uint16: 2, float16: 2 };

interface ManifestGroup {
  paths: string[];
  weights: tf.io.WeightsManifestEntry[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Validates one manifest entry and returns its byte length (as stored) and element count. */
function checkEntry(file: string, entry: unknown, index: number): { bytes: number; size: number } {
  const where = `${file}: weightsManifest weight #${index}`;
  if (!isRecord(entry) || typeof entry['name'] !== 'string') {
    throw new ModelFileError(`loadModel: ${where} must be an object with a string name`);
  }
  const name = entry['name'];
  const shape = entry['shape'];
  if (
    !Array.isArray(shape) ||
    shape.length > 8 ||
    !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)
  ) {
    throw new ModelFileError(
      `loadModel: ${where} (${name}) has shape ${JSON.stringify(shape)}; expected up to 8 integers >= 0`,
    );
  }
  const size = (shape as number[]).reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(size)) {
    throw new ModelFileError(`loadModel: ${where} (${name}) has ${size} elements`);
  }
  const dtype = entry['dtype'];
  if (typeof dtype !== 'string' || !Object.hasOwn(BYTES_PER_VALUE, dtype)) {
    throw new ModelFileError(
      `loadModel: ${where} (${name}) has dtype ${JSON.stringify(dtype)}; expected float32, int32 or bool`,
    );
  }
  let width = BYTES_PER_VALUE[dtype] as number;
  const q = entry['quantization'];
  if (q !== undefined) {
    const qd = isRecord(q) ? q['dtype'] : undefined;
    if (typeof qd !== 'string' || !Object.hasOwn(QUANTIZED_BYTES, qd)) {
      throw new ModelFileError(
        `loadModel: ${where} (${name}) has quantization ${JSON.stringify(q)}; expected dtype uint8, uint16 or float16`,
      );
    }
    const qr = q as Record<string, unknown>;
    if (
      qd !== 'float16' &&
      !(Number.isFinite(qr['min'] as number) && Number.isFinite(qr['scale'] as number))
    ) {
      throw new ModelFileError(
        `loadModel: ${where} (${name}) is ${qd}-quantized without finite min and scale`,
      );
    }
    if (qd === 'float16' && dtype !== 'float32') {
      throw new ModelFileError(`loadModel: ${where} (${name}) is float16-quantized but ${dtype}`);
    }
    width = QUANTIZED_BYTES[qd] as number;
  }
  return { bytes: size * width, size };
}

function parseManifest(file: string, json: unknown): ManifestGroup[] {
  if (!isRecord(json) || !isRecord(json['modelTopology'])) {
    throw new ModelFileError(`loadModel: ${file} lacks a modelTopology object`);
  }
  const manifest = json['weightsManifest'];
  if (!Array.isArray(manifest)) {
    throw new ModelFileError(`loadModel: ${file} lacks a weightsManifest array`);
  }
  return manifest.map((g, i) => {
    if (
      !isRecord(g) ||
      !Array.isArray(g['paths']) ||
      !Array.isArray(g['weights']) ||
      (g['paths'].length === 0 && g['weights'].length > 0)
    ) {
      throw new ModelFileError(
        `loadModel: ${file}: weightsManifest group #${i} must have paths and weights arrays`,
      );
    }
    return { paths: g['paths'] as string[], weights: g['weights'] as tf.io.WeightsManifestEntry[] };
  });
}

/** Disposes the variables registered since `before` (a failed build leaves them behind). */
function disposeNewVariables(before: Set<string>): void {
  const registered = tf.engine().registeredVariables;
  for (const name of Object.keys(registered)) {
    if (!before.has(name)) registered[name]?.dispose();
  }
}

/**
 * Loads a model saved by {@link saveModel} (or any tfjs layers-format directory whose manifest
 * lists local files), verifying it first: manifest paths inside `dir`, regular files of exactly
 * the manifest's byte counts, the architecture within the size limits. Throws a
 * {@link ModelFileError} naming the file and what was expected; a failed load leaves no tensor
 * or variable behind. Import `vit-ts` first so its layer classes are registered.
 */
export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<LayersModel> {
  const owner = 'loadModel';
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new ConfigError(`loadModel: dir must be a non-empty path, got ${String(dir)}`);
  }
  checkKnownKeys(owner, options, ['maxParams', 'maxActivations', 'maxJsonBytes'], 'option');
  const limits = { maxParams: options.maxParams, maxActivations: options.maxActivations };
  const maxParams = withSizeLimits(owner, limits, () => getSizeLimits().maxParams);
  const jsonPath = join(dir, MODEL_JSON);
  const jsonBytes = await readRegularFile(owner, await resolveInside(owner, dir, MODEL_JSON), {
    maxBytes: options.maxJsonBytes ?? DEFAULT_MAX_JSON_BYTES,
  });
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(jsonBytes));
  } catch (e) {
    throw new ModelFileError(`loadModel: ${jsonPath} is not valid JSON: ${(e as Error).message}`);
  }
  const groups = parseManifest(jsonPath, json);
  checkTopology(jsonPath, json['modelTopology']);

  // Every path, size and byte count is checked before any tensor exists.
  const specs: tf.io.WeightsManifestEntry[] = [];
  const files: Array<{ path: string; bytes: number }> = [];
  let params = 0;
  for (const group of groups) {
    let expected = 0;
    group.weights.forEach((w, i) => {
      const { bytes, size } = checkEntry(jsonPath, w, specs.length + i);
      expected += bytes;
      params += size;
    });
    specs.push(...group.weights);
    const groupFiles: Array<{ path: string; bytes: number }> = [];
    for (const p of group.paths) {
      const real = await resolveInside(owner, dir, p);
      groupFiles.push({ path: real, bytes: await regularFileSize(owner, real) });
    }
    const actual = groupFiles.reduce((a, f) => a + f.bytes, 0);
    if (actual !== expected) {
      const names = group.paths.map((p) => join(dir, p)).join(' + ');
      throw new ModelFileError(
        `loadModel: ${names} has ${actual} bytes, the manifest in ${jsonPath} expects ${expected}`,
      );
    }
    files.push(...groupFiles);
  }
  const names = new Set<string>();
  for (const s of specs) {
    if (names.has(s.name)) {
      throw new ModelFileError(`loadModel: ${jsonPath} lists weight ${s.name} twice`);
    }
    names.add(s.name);
  }
  if (params > maxParams) {
    throw new ModelFileError(
      `loadModel: ${jsonPath} lists ${params.toLocaleString('en-US')} weight values, above maxParams ${maxParams.toLocaleString('en-US')}`,
    );
  }

  // Build the architecture (size limits checked by the layers before any weight exists), with
  // zero initial weights: they are overwritten below.
  const variablesBefore = new Set(Object.keys(tf.engine().registeredVariables));
  const numTensorsBefore = tf.memory().numTensors;
  let model: LayersModel;
  try {
    const topology = json['modelTopology'] as tf.io.ModelJSON['modelTopology'];
    model = await withSizeLimits(owner, limits, () =>
      withZeroInit(() => models.modelFromJSON({ modelTopology: topology } as never)),
    );
  } catch (e) {
    disposeNewVariables(variablesBefore);
    const detail =
      e instanceof VitTsError ? e.message : `${(e as Error).name}: ${(e as Error).message}`;
    throw new ModelFileError(
      `loadModel: the architecture in ${jsonPath} cannot be built: ${detail}`,
    );
  }

  let named: tf.NamedTensorMap = {};
  try {
    const parts: Uint8Array[] = [];
    for (const f of files) {
      parts.push(
        await readRegularFile(owner, f.path, { maxBytes: f.bytes, expectedBytes: f.bytes }),
      );
    }
    const data = concatWeightData(parts.map((p) => p.buffer as ArrayBuffer));
    named = tf.tidy(() => tf.io.decodeWeights(data.buffer as ArrayBuffer, specs));
    const modelWeights: tf.NamedTensorMap = {};
    for (const s of specs) {
      if (s.group !== 'optimizer') modelWeights[s.name] = named[s.name] as tf.Tensor;
    }
    model.loadWeights(modelWeights, true);
    const meta = json['userDefinedMetadata'];
    if (isRecord(meta)) model.setUserDefinedMetadata(meta as Record<string, object>);
  } catch (e) {
    model.dispose();
    disposeNewVariables(variablesBefore);
    tf.dispose(Object.values(named));
    const leaked = tf.memory().numTensors - numTensorsBefore;
    const detail =
      e instanceof VitTsError ? e.message : `${(e as Error).name}: ${(e as Error).message}`;
    throw new ModelFileError(
      `loadModel: the weights of ${jsonPath} do not fit its architecture: ${detail}` +
        (leaked > 0 ? ` (${leaked} tensors could not be released)` : ''),
    );
  } finally {
    tf.dispose(Object.values(named));
  }
  try {
    applyFrozenWeights(owner, jsonPath, model, json['frozenWeights']);
  } catch (e) {
    model.dispose();
    disposeNewVariables(variablesBefore);
    throw e;
  }
  return guardEmptyBatch(model);
}
