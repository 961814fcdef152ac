import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { type LayersModel, loadLayersModel } from '@tensorflow/tfjs-layers';
import { ConfigError } from '../errors';
import { commitVersioned } from '../io/atomic';
import { applyFrozenWeights, frozenWeightNames } from '../io/frozen';
import { guardEmptyBatch } from '../models/batch_guard';
import type { RandomState } from '../random';
import { readSafetensors, writeSafetensors } from '../weights/safetensors';
import type { AdamSlotState } from './grouped_adamw';
import { Trainer, type TrainerOptions, type TrainerState } from './trainer';

/** File name of a checkpoint's manifest (written last: the commit point). */
export const CHECKPOINT_MANIFEST = 'checkpoint.json';
const FORMAT = 'vit-ts-checkpoint';

interface CheckpointManifest {
  format: typeof FORMAT;
  version: 1;
  modelTopology: object;
  weightSpecs: tf.io.WeightsManifestEntry[];
  weightsFile: string;
  stateFile: string;
  step: number;
  epoch: number;
  random: RandomState;
  globalRandom: RandomState | null;
  optimizerSteps: Record<string, number>;
  emaUpdates: number | null;
  metadata: Record<string, unknown>;
  /** Weights frozen when saved (only when there are some; src/io/frozen.ts). */
  frozenWeights?: string[];
}

/** A loaded checkpoint: the model (new, owned by the caller), the loop state and user metadata. */
export interface LoadedCheckpoint {
  model: LayersModel;
  state: TrainerState;
  metadata: Record<string, unknown>;
}

function concat(data: ArrayBuffer | ArrayBuffer[]): Uint8Array {
  const parts = Array.isArray(data) ? data : [data];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p), at);
    at += p.byteLength;
  }
  return out;
}

/**
 * Saves a training checkpoint into `dir` (created if needed): the model (topology and weights),
 * the optimizer moments, the EMA weights, the step and epoch counters (the schedule position)
 * and both random generators' states, plus JSON `metadata` of your own (e.g. the history).
 *
 * Crash-safe (`commitVersioned` of src/io/atomic.ts): data files are written under new,
 * content-addressed names and the manifest `checkpoint.json` that names them is renamed into
 * place last, so killed at any moment the folder still holds the previous complete checkpoint
 * or the new one; superseded files are removed only after the new manifest is durable.
 *
 * @example
 * await trainer.trainEpoch(train, { batchSize: 64 });
 * await saveCheckpoint('runs/vit', trainer, { history });
 */
export async function saveCheckpoint(
  dir: string,
  trainer: Trainer,
  metadata: Record<string, unknown> = {},
): Promise<void> {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new ConfigError(`saveCheckpoint: dir must be a non-empty path, got ${String(dir)}`);
  }
  if (!(trainer instanceof Trainer)) {
    throw new ConfigError('saveCheckpoint: trainer must be a Trainer');
  }
  const state = await trainer.getState();
  const frozen = frozenWeightNames(trainer.model);
  let artifacts: tf.io.ModelArtifacts | null = null;
  await trainer.model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const saved = artifacts as tf.io.ModelArtifacts | null;
  if (saved == null || saved.weightData == null) {
    throw new ConfigError('saveCheckpoint: the model produced no weights');
  }
  const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  const steps: Record<string, number> = {};
  const shapes = new Map(trainer.model.weights.map((w) => [w.originalName, w.shape as number[]]));
  for (const slot of state.optimizer.slots) {
    const shape = shapes.get(slot.name) ?? [slot.m.length];
    tensors.set(`adam.m/${slot.name}`, { dtype: 'F32', shape, data: slot.m });
    tensors.set(`adam.v/${slot.name}`, { dtype: 'F32', shape, data: slot.v });
    steps[slot.name] = slot.step;
  }
  for (const e of state.ema?.values ?? []) {
    tensors.set(`ema/${e.name}`, {
      dtype: 'F32',
      shape: shapes.get(e.name) ?? [e.values.length],
      data: e.values,
    });
  }
  const stateBytes = writeSafetensors(tensors);
  await mkdir(dir, { recursive: true });
  await commitVersioned(dir, {
    files: {
      'weights.bin': concat(saved.weightData as ArrayBuffer | ArrayBuffer[]),
      'state.safetensors': stateBytes,
    },
    manifestName: CHECKPOINT_MANIFEST,
    manifest: (names) => {
      const manifest: CheckpointManifest = {
        format: FORMAT,
        version: 1,
        modelTopology: saved.modelTopology as object,
        weightSpecs: saved.weightSpecs ?? [],
        weightsFile: names['weights.bin'],
        stateFile: names['state.safetensors'],
        step: state.step,
        epoch: state.epoch,
        random: state.random,
        globalRandom: state.globalRandom,
        optimizerSteps: steps,
        emaUpdates: state.ema?.updates ?? null,
        metadata,
        ...(frozen.length > 0 ? { frozenWeights: frozen } : {}),
      };
      return JSON.stringify(manifest);
    },
  });
}

function safeFileName(name: unknown, field: string, dir: string): string {
  if (typeof name !== 'string' || name.length === 0 || /[/\\]/.test(name) || name.startsWith('.')) {
    throw new ConfigError(
      `loadCheckpoint: ${join(dir, CHECKPOINT_MANIFEST)} field ${field} must be a plain file name, got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/**
 * Loads a checkpoint written by {@link saveCheckpoint}: a new model with the saved weights, and
 * the {@link TrainerState} to pass to `Trainer.setState` (see {@link resumeTrainer}). Import
 * `vit-ts` first so its layers are registered.
 *
 * @throws `ConfigError` (from `vit-ts`) when the folder holds no checkpoint or the files disagree.
 */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const manifestPath = join(dir, CHECKPOINT_MANIFEST);
  let manifest: CheckpointManifest;
  try {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as CheckpointManifest;
  } catch (e) {
    throw new ConfigError(`loadCheckpoint: cannot read ${manifestPath}: ${(e as Error).message}`);
  }
  if (manifest?.format !== FORMAT || manifest.version !== 1) {
    throw new ConfigError(
      `loadCheckpoint: ${manifestPath} is not a vit-ts checkpoint (format ${JSON.stringify(manifest?.format)}, version ${JSON.stringify(manifest?.version)})`,
    );
  }
  const weights = await readFile(join(dir, safeFileName(manifest.weightsFile, 'weightsFile', dir)));
  const stateBytes = await readFile(join(dir, safeFileName(manifest.stateFile, 'stateFile', dir)));
  const weightData = weights.buffer.slice(
    weights.byteOffset,
    weights.byteOffset + weights.byteLength,
  );
  const model = guardEmptyBatch(
    await loadLayersModel(
      tf.io.fromMemory({
        modelTopology: manifest.modelTopology,
        weightSpecs: manifest.weightSpecs,
        weightData,
      }),
    ),
  );
  try {
    applyFrozenWeights('loadCheckpoint', manifestPath, model, manifest.frozenWeights);
  } catch (e) {
    model.dispose();
    throw e;
  }
  const st = readSafetensors(stateBytes);
  const slots: AdamSlotState[] = [];
  for (const [name, step] of Object.entries(manifest.optimizerSteps ?? {})) {
    const m = st.tensors.get(`adam.m/${name}`);
    const v = st.tensors.get(`adam.v/${name}`);
    if (m == null || v == null) {
      model.dispose();
      throw new ConfigError(
        `loadCheckpoint: ${manifest.stateFile} lacks the Adam moments of ${name}`,
      );
    }
    slots.push({ name, step, m: m.data as Float32Array, v: v.data as Float32Array });
  }
  const emaValues = [...st.tensors.entries()]
    .filter(([k]) => k.startsWith('ema/'))
    .map(([k, e]) => ({ name: k.slice(4), values: e.data as Float32Array }));
  return {
    model,
    state: {
      step: manifest.step,
      epoch: manifest.epoch,
      random: manifest.random,
      globalRandom: manifest.globalRandom ?? null,
      optimizer: { slots },
      ema: manifest.emaUpdates == null ? null : { values: emaValues, updates: manifest.emaUpdates },
    },
    metadata: manifest.metadata ?? {},
  };
}

/**
 * Loads a checkpoint and builds a {@link Trainer} that continues it exactly: same weights,
 * frozen parts, optimizer moments, EMA, step (schedule position), epoch and random streams. Pass
 * the same options as the original run (the schedule and groups are code, not data), except
 * `parallel`: call `trainer.setParallel(...)` on the result instead. Parameter groups hold the
 * model's variables, so a run with groups passes a function that builds the options from the
 * loaded model.
 *
 * @example
 * const { trainer, metadata } = await resumeTrainer('runs/vit', { schedule, seed: 1 });
 * // with layer-wise learning rates:
 * await resumeTrainer('runs/vit', (model) => ({
 *   schedule,
 *   groups: createParamGroups(model, { layerDecay: 0.65 }),
 * }));
 */
export async function resumeTrainer(
  dir: string,
  options: TrainerOptions | ((model: LayersModel) => TrainerOptions),
): Promise<{ trainer: Trainer; metadata: Record<string, unknown> }> {
  const { model, state, metadata } = await loadCheckpoint(dir);
  try {
    const resolved = typeof options === 'function' ? options(model) : options;
    if (resolved?.parallel != null) {
      // A pool holds copies of the weights it was started with: it must start after the resume.
      throw new ConfigError(
        'resumeTrainer: options.parallel cannot be given here (the checkpoint model is loaded by this call); resume first, then trainer.setParallel(await createDataParallelTrainer(trainer.model, { workers }))',
      );
    }
    const trainer = new Trainer(model, resolved);
    trainer.setState(state);
    return { trainer, metadata };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
