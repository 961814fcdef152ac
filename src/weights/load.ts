/**
 * `loadPretrained`: PyTorch checkpoints (timm, torchvision, Hugging Face, CIFAR ResNet) into
 * vit-ts models, with strict key/shape checking and position-embedding resampling.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { CheckpointError, ConfigError, formatShape } from '../errors';
import { VisionTransformer } from '../models/vision_transformer';
import {
  buildKeyMap,
  type CheckpointFormat,
  canonicalKey,
  isIgnoredKey,
  type KeyMapEntry,
  rulesFor,
} from './keymaps';
import {
  joinArraysFromTorch,
  joinFromTorch,
  splitTorchShape,
  torchShapeOf,
  vitShapeOf,
} from './layouts';
import { resolveTarget, type WeightsTarget } from './model_target';
import { resamplePosEmbed } from './resample';
import {
  entryToTensor,
  readSafetensors,
  type SafetensorsEntry,
  type SafetensorsFile,
} from './safetensors';

/**
 * A checkpoint: safetensors bytes, a parsed safetensors file, or PyTorch-layout tensors by key
 * (the state dict's names and shapes, e.g. `blocks.0.attn.qkv.weight` of shape `[3D, D]`).
 */
export type CheckpointSource =
  | ArrayBuffer
  | Uint8Array
  | SafetensorsFile
  | Record<string, tf.Tensor>
  | Map<string, tf.Tensor>;

/** Options of {@link loadPretrained}. */
export interface LoadPretrainedOptions {
  /** Key layout of the checkpoint: `'timm'`, `'torchvision'`, `'hf'` (ViT) or `'cifar'` (kuangliu ResNet18). */
  from: CheckpointFormat;
  /**
   * Default true: every missing, unexpected or mis-shaped key (and a LayerNorm epsilon that
   * differs from the checkpoint's) is listed in one {@link CheckpointError} and nothing is
   * loaded. With false, what matches is loaded and the rest is reported.
   */
  strict?: boolean;
  /**
   * Resampling of the position embedding when the checkpoint's patch grid differs from the
   * model's: `'bicubic'` (default, as timm) or `'bilinear'`; `false` treats it as a shape mismatch.
   */
  resample?: 'bicubic' | 'bilinear' | false;
  /** Antialias when shrinking the grid, as PyTorch's `F.interpolate(antialias=...)`. Default true (timm). */
  antialias?: boolean;
  /** Patch grid `[rows, cols]` of the checkpoint's position embedding; needed only when it is not square. */
  sourceGrid?: [number, number];
  /**
   * LayerNorm epsilon the checkpoint was trained with. Default 1e-12 for `'hf'` (transformers'
   * ViTConfig), 1e-6 otherwise. Set it when a checkpoint's config says otherwise.
   */
  sourceNormEps?: number;
}

/** A checkpoint tensor whose shape differs from what the model needs. */
export interface ShapeMismatch {
  /** Checkpoint key. */
  key: string;
  /** vit-ts weight it maps to. */
  name: string;
  /** Shape the model needs, in PyTorch layout. */
  expected: number[];
  /** Shape in the checkpoint. */
  got: number[];
  /** Why it cannot be fixed up (e.g. a non-square grid without `sourceGrid`). */
  note?: string;
}

/** What {@link loadPretrained} did. Names of vit-ts weights are relative to the model layer. */
export interface LoadReport {
  /** vit-ts weights set from the checkpoint. */
  loaded: string[];
  /** Checkpoint keys the model needs that the checkpoint lacks. */
  missing: string[];
  /** Checkpoint keys the model has no use for. */
  unexpected: string[];
  /** Keys present with the wrong shape (not loaded). */
  mismatched: ShapeMismatch[];
  /** vit-ts weights the format has no key for (e.g. LayerScale in a torchvision layout). */
  unmapped: string[];
  /** Keys skipped on purpose (BatchNorm `num_batches_tracked`, HF `pooler.*`). */
  ignored: string[];
  /** The position embedding's grid change, when it was resampled. */
  resampled: {
    key: string;
    fromGrid: [number, number];
    toGrid: [number, number];
    method: string;
  } | null;
  /** Non-fatal problems (non-strict mode), such as a LayerNorm epsilon mismatch. */
  warnings: string[];
}

export { CheckpointError } from '../errors';

/** One checkpoint tensor, read lazily so that only what is loaded becomes a tf.Tensor. */
interface SourceTensor {
  shape: number[];
  /** Source dtype as the file or tensor names it (`F32`, `I64`, `BOOL`, `float32`, `int32`...). */
  dtype: string;
  /** The values as float32 when they are available without tfjs (safetensors float entries). */
  floats(): Float32Array | null;
  /** A tensor holding the values; `owned` says whether the caller must dispose it. */
  read(): { tensor: tf.Tensor; owned: boolean };
}

function isSafetensorsFile(x: unknown): x is SafetensorsFile {
  return (
    x != null &&
    typeof x === 'object' &&
    (x as SafetensorsFile).tensors instanceof Map &&
    'metadata' in (x as object)
  );
}

/** Normalizes every accepted source to key -> lazily read tensor, plus metadata. */
export function normalizeSource(
  source: CheckpointSource,
  caller: string,
): { tensors: Map<string, SourceTensor>; metadata: Record<string, string> } {
  if (source instanceof ArrayBuffer || source instanceof Uint8Array) {
    return normalizeSource(readSafetensors(source), caller);
  }
  const tensors = new Map<string, SourceTensor>();
  if (isSafetensorsFile(source)) {
    for (const [key, entry] of source.tensors) tensors.set(key, fromEntry(key, entry));
    return { tensors, metadata: source.metadata ?? {} };
  }
  const pairs =
    source instanceof Map
      ? [...source.entries()]
      : source != null && typeof source === 'object'
        ? Object.entries(source)
        : null;
  if (pairs == null) {
    throw new ConfigError(
      `${caller}: source must be safetensors bytes (ArrayBuffer / Uint8Array), a SafetensorsFile or a record of tf.Tensors, got ${String(source)}`,
    );
  }
  for (const [key, t] of pairs) {
    if (!(t instanceof tf.Tensor)) {
      throw new ConfigError(
        `${caller}: source['${key}'] must be a tf.Tensor, got ${t == null ? String(t) : typeof t}`,
      );
    }
    tensors.set(key, {
      shape: [...t.shape],
      dtype: t.dtype,
      floats: () => null,
      read: () => ({ tensor: t, owned: false }),
    });
  }
  return { tensors, metadata: {} };
}

function fromEntry(key: string, entry: SafetensorsEntry): SourceTensor {
  const floats = () => {
    if (entry.data instanceof Float32Array) return entry.data;
    if (entry.data instanceof Float64Array) return Float32Array.from(entry.data);
    return null;
  };
  return {
    shape: [...entry.shape],
    dtype: entry.dtype,
    floats,
    read: () => ({ tensor: entryToTensor(entry, key), owned: true }),
  };
}

/** Float dtypes (safetensors and tfjs names); integer and boolean tensors are not weights. */
const FLOAT_DTYPES = new Set(['F64', 'F32', 'F16', 'BF16', 'float32', 'float16']);

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/** Square grid of `n` tokens, or null. */
function squareGrid(n: number): [number, number] | null {
  const s = Math.round(Math.sqrt(n));
  return s * s === n ? [s, s] : null;
}

/** Default LayerNorm epsilon of each checkpoint layout. */
export const SOURCE_NORM_EPS: Readonly<Record<CheckpointFormat, number>> = {
  timm: 1e-6,
  torchvision: 1e-6,
  hf: 1e-12,
  cifar: 1e-6,
};

interface PlanItem {
  entry: KeyMapEntry;
  variable: LayerVariable;
  sources: SourceTensor[];
  resample?: { oldGrid: [number, number]; newGrid: [number, number]; numPrefixTokens: number };
}

/**
 * Loads a PyTorch checkpoint into a vit-ts model, converting layouts (Linear `[out, in]` ->
 * `[in, out]`, Conv2d OIHW -> HWIO, Hugging Face query/key/value -> fused qkv).
 *
 * Strict by default: all missing, unexpected and mis-shaped keys are listed in one
 * {@link CheckpointError} (expected vs got shapes, PyTorch layout) and no weight changes. With
 * `strict: false` the matching weights load and the rest is returned in the report, which is
 * how a checkpoint goes into a model with a new head (another `numClasses`). A position
 * embedding for another patch grid is resampled (bicubic, antialiased, as timm) instead of
 * failing. Allocates no lasting tensors besides the model's weights.
 *
 * @example
 * const model = createViT('vit_tiny_patch16_224');
 * loadPretrained(model, await readFile('vit_tiny_patch16_224.safetensors'), { from: 'timm' });
 */
export function loadPretrained(
  model: WeightsTarget,
  source: CheckpointSource,
  options: LoadPretrainedOptions,
): LoadReport {
  const caller = 'loadPretrained';
  if (options == null || typeof options !== 'object') {
    throw new ConfigError(
      `${caller}: options { from: 'timm' | 'torchvision' | 'hf' | 'cifar' } are required, got ${String(options)}`,
    );
  }
  const { from } = options;
  const strict = options.strict ?? true;
  const resampleMethod = options.resample ?? 'bicubic';
  if (resampleMethod !== false && resampleMethod !== 'bicubic' && resampleMethod !== 'bilinear') {
    throw new ConfigError(
      `${caller}: options.resample must be 'bicubic', 'bilinear' or false, got ${String(resampleMethod)}`,
    );
  }
  const target = resolveTarget(model, caller);
  rulesFor(target.family, from); // an unsupported format fails here, before any work
  const normalized = normalizeSource(source, caller);
  const { metadata } = normalized;
  const tensors = new Map(
    [...normalized.tensors].map(([k, v]) => [canonicalKey(from, k), v] as const),
  );
  const keys = [...tensors.keys()];
  const hfPrefix = from === 'hf' && keys.some((k) => k.startsWith('vit.')) ? 'vit.' : '';
  const { entries, unmapped } = buildKeyMap(target.family, from, [...target.weights.keys()], {
    hfPrefix,
  });

  const report: LoadReport = {
    loaded: [],
    missing: [],
    unexpected: [],
    mismatched: [],
    unmapped,
    ignored: [],
    resampled: null,
    warnings: [],
  };
  const used = new Set<string>();
  const plan: PlanItem[] = [];
  for (const entry of entries) {
    const variable = target.weights.get(entry.name) as LayerVariable;
    for (const k of entry.keys) used.add(k);
    const absent = entry.keys.filter((k) => !tensors.has(k));
    if (absent.length > 0) {
      report.missing.push(...absent);
      continue;
    }
    const sources = entry.keys.map((k) => tensors.get(k) as SourceTensor);
    const nonFloat = entry.keys.filter((_, i) => !FLOAT_DTYPES.has(sources[i]?.dtype as string));
    if (nonFloat.length > 0) {
      const what = nonFloat.map((k) => `${k} (${(tensors.get(k) as SourceTensor).dtype})`);
      if (strict) {
        for (const k of nonFloat) {
          const got = [...(tensors.get(k) as SourceTensor).shape];
          report.mismatched.push({
            key: k,
            name: entry.name,
            expected: got,
            got,
            note: `dtype ${(tensors.get(k) as SourceTensor).dtype} is not a float type; integer and boolean tensors do not load into float weights in strict mode`,
          });
        }
        continue;
      }
      report.warnings.push(
        `${what.join(', ')}: integer/boolean tensor loaded into the float weight ${entry.name}`,
      );
    }
    const expected = splitTorchShape(
      torchShapeOf(variable.shape as number[], entry.layout),
      entry.keys.length,
    );
    const bad = entry.keys.filter((_, i) => !sameShape(sources[i].shape, expected));
    if (bad.length === 0) {
      plan.push({ entry, variable, sources });
      continue;
    }
    const fix =
      entry.role === 'posEmbed' && resampleMethod !== false
        ? posEmbedResample(target.layer, sources[0].shape, options)
        : null;
    if (fix && 'oldGrid' in fix) {
      plan.push({ entry, variable, sources, resample: fix });
      report.resampled = {
        key: entry.keys[0],
        fromGrid: fix.oldGrid,
        toGrid: fix.newGrid,
        method: resampleMethod as string,
      };
      continue;
    }
    for (const k of bad) {
      report.mismatched.push({
        key: k,
        name: entry.name,
        expected,
        got: [...(tensors.get(k) as SourceTensor).shape],
        ...(fix?.note ? { note: fix.note } : {}),
      });
    }
  }
  for (const k of keys) {
    if (used.has(k)) continue;
    if (isIgnoredKey(from, k)) report.ignored.push(k);
    else report.unexpected.push(k);
  }

  const epsProblem = normEpsProblem(target.layer, from, options.sourceNormEps);
  const problems =
    report.missing.length +
    report.unexpected.length +
    report.mismatched.length +
    report.unmapped.length;
  if (strict && (problems > 0 || epsProblem)) {
    throw new CheckpointError(
      formatProblems(from, report, epsProblem, keys.length, plan.length, metadata),
      report,
    );
  }
  if (epsProblem) {
    report.warnings.push(epsProblem);
    console.warn(`${caller}: ${epsProblem}`);
  }

  // All or nothing: every value is converted (and can fail) before any weight is written.
  const values: tf.Tensor[] = [];
  try {
    for (const item of plan) {
      values.push(
        convert(
          item,
          resampleMethod === false ? 'bicubic' : resampleMethod,
          options.antialias ?? true,
        ),
      );
    }
  } catch (e) {
    tf.dispose(values);
    throw e;
  }
  plan.forEach((item, i) => {
    item.variable.write(values[i] as tf.Tensor);
    report.loaded.push(item.entry.name);
  });
  tf.dispose(values);
  return report;
}

/** The checkpoint value of one plan item in vit-ts layout (a new tensor the caller disposes). */
function convert(item: PlanItem, method: 'bicubic' | 'bilinear', antialias: boolean): tf.Tensor {
  const arrays = item.sources.map((s) => s.floats());
  if (arrays.every((a) => a != null)) {
    // Typed-array path: one copy from the file to the backend, no transpose kernels.
    const partShape = item.sources[0].shape;
    let values = joinArraysFromTorch(arrays as Float32Array[], partShape, item.entry.layout);
    // Never let the model's storage alias the caller's buffer (the file bytes).
    if (values === arrays[0]) values = values.slice();
    const shape = vitShapeOf(
      [partShape[0] * arrays.length, ...partShape.slice(1)],
      item.entry.layout,
    );
    const resample = item.resample;
    if (!resample) return tf.tensor(values, shape, 'float32');
    return tf.tidy(() =>
      resamplePosEmbed(tf.tensor(values, shape, 'float32'), { ...resample, method, antialias }),
    );
  }
  const read = item.sources.map((s) => s.read());
  try {
    return tf.tidy(() => {
      const parts = read.map((r) =>
        r.tensor.dtype === 'float32' ? r.tensor : tf.cast(r.tensor, 'float32'),
      );
      let value = joinFromTorch(parts, item.entry.layout);
      if (item.resample) {
        value = resamplePosEmbed(value, { ...item.resample, method, antialias });
      }
      // Never hand the caller's own tensor to `write` + `dispose`.
      return parts.includes(value) ? tf.clone(value) : value;
    });
  } finally {
    for (const r of read) if (r.owned) r.tensor.dispose();
  }
}

/** Resampling plan for a position embedding of `shape` (PyTorch `[1, P + N, D]`), or why not. */
function posEmbedResample(
  layer: unknown,
  shape: readonly number[],
  options: LoadPretrainedOptions,
):
  | { oldGrid: [number, number]; newGrid: [number, number]; numPrefixTokens: number }
  | { note: string }
  | null {
  if (!(layer instanceof VisionTransformer)) return null;
  const d = layer.config.embedDim;
  if (shape.length !== 3 || shape[0] !== 1 || shape[2] !== d) {
    return { note: `not resampled: a position embedding must be [1, tokens, ${d}]` };
  }
  const prefix = layer.numPrefixTokens;
  const n = shape[1] - prefix;
  if (n <= 0)
    return {
      note: `not resampled: ${shape[1]} rows cannot hold ${prefix} prefix token(s) and a grid`,
    };
  let oldGrid: [number, number] | null;
  if (options.sourceGrid) {
    const g = options.sourceGrid;
    if (!Array.isArray(g) || g.length !== 2 || g[0] * g[1] !== n) {
      throw new ConfigError(
        `loadPretrained: options.sourceGrid ${JSON.stringify(g)} does not match the checkpoint's ${n} patch tokens ([1, ${shape[1]}, ${d}] minus ${prefix} prefix)`,
      );
    }
    oldGrid = [g[0], g[1]];
  } else {
    oldGrid = squareGrid(n);
  }
  if (!oldGrid)
    return {
      note: `not resampled: ${n} patch tokens are not a square grid; pass options.sourceGrid [rows, cols]`,
    };
  return { oldGrid, newGrid: layer.gridSize, numPrefixTokens: prefix };
}

function normEpsProblem(
  layer: unknown,
  from: CheckpointFormat,
  sourceNormEps: number | undefined,
): string | null {
  if (!(layer instanceof VisionTransformer)) return null;
  const src = sourceNormEps ?? SOURCE_NORM_EPS[from];
  const own = layer.config.normEps;
  if (Math.abs(own - src) <= 1e-3 * Math.max(own, src)) return null;
  const [o, c] = [own.toExponential(), src.toExponential()];
  return (
    `LayerNorm epsilon differs: the model uses normEps ${o}, the '${from}' checkpoint was trained with ${c}. ` +
    `Build the model with normEps: ${c} (e.g. createViT({...config, normEps: ${c}}) or vitConfigFromCheckpoint), ` +
    'or pass sourceNormEps if the checkpoint used another value.'
  );
}

function formatProblems(
  from: CheckpointFormat,
  r: LoadReport,
  eps: string | null,
  total: number,
  matched: number,
  metadata: Record<string, string>,
): string {
  const lines: string[] = [];
  const count =
    r.missing.length +
    r.unexpected.length +
    r.mismatched.length +
    r.unmapped.length +
    (eps ? 1 : 0);
  lines.push(
    `loadPretrained (from '${from}', strict): ${count} problem(s) in a checkpoint of ${total} tensors; nothing was loaded.`,
  );
  if (r.missing.length) lines.push(`Missing keys (${r.missing.length}): ${r.missing.join(', ')}`);
  if (r.unexpected.length)
    lines.push(`Unexpected keys (${r.unexpected.length}): ${r.unexpected.join(', ')}`);
  if (r.mismatched.length) {
    lines.push(`Shape mismatches (${r.mismatched.length}, PyTorch layout):`);
    for (const m of r.mismatched) {
      lines.push(
        `  ${m.key} (-> ${m.name}): expected ${formatShape(m.expected)}, got ${formatShape(m.got)}${m.note ? ` (${m.note})` : ''}`,
      );
    }
  }
  if (r.unmapped.length)
    lines.push(
      `Model weights the '${from}' layout cannot hold (${r.unmapped.length}): ${r.unmapped.join(', ')}`,
    );
  if (eps) lines.push(eps);
  if (matched === 0 && r.missing.length > 0) {
    lines.push(
      `No key of the '${from}' layout matched: is the checkpoint in another layout (timm, torchvision, hf, cifar)?`,
    );
  }
  if (metadata.format && metadata.format !== 'pt')
    lines.push(`(checkpoint metadata format: '${metadata.format}')`);
  lines.push(
    'Pass { strict: false } to load what matches (e.g. a new head with another numClasses).',
  );
  return lines.join('\n');
}
