/**
 * Strict loadPretrained is all-or-nothing and refuses integer / boolean tensors for float
 * weights; non-strict loads them with a warning in the report.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, it } from 'vitest';
import { CheckpointError } from '../../src/errors';
import { createViT, exportStateDict, loadPretrained } from '../../src/index';
import type { SafetensorsEntry } from '../../src/weights/safetensors';
import { useBackend } from '../helpers/backends';

const CONFIG = {
  imgSize: 8,
  patchSize: 4,
  inChans: 1,
  embedDim: 8,
  depth: 2,
  numHeads: 2,
  numClasses: 3,
};
const values = (m: ReturnType<typeof createViT>) =>
  m.weights.map((w) => Array.from(w.read().dataSync()));

beforeAll(() => useBackend('cpu'));

it('an integer head.weight in a strict load throws before any weight is written', () => {
  const source = createViT(CONFIG, {}, { seed: 1 });
  const target = createViT(CONFIG, {}, { seed: 2 });
  const state = exportStateDict(source, { to: 'timm' });
  const head = state.get('head.weight') as SafetensorsEntry;
  state.set('head.weight', {
    dtype: 'I32',
    shape: head.shape,
    data: Int32Array.from(head.data as Float32Array, (v) => Math.round(v * 100)),
  } as SafetensorsEntry);
  const before = values(target);
  const tensors = tf.memory().numTensors;
  const file = { tensors: state, metadata: {} };
  const err = (() => {
    try {
      loadPretrained(target, file, { from: 'timm' });
      return null;
    } catch (e) {
      return e as Error;
    }
  })();
  expect(err).toBeInstanceOf(CheckpointError);
  expect(err?.message).toMatch(/head\.weight.*dtype I32 is not a float type/s);
  expect(values(target)).toEqual(before); // nothing written
  expect(tf.memory().numTensors).toBe(tensors);
  // Non-strict: loaded, with a warning naming the key and dtype.
  const report = loadPretrained(target, file, { from: 'timm', strict: false });
  expect(report.warnings.join('\n')).toMatch(
    /head\.weight \(I32\): integer\/boolean tensor loaded into the float weight/,
  );
  expect(values(target)).not.toEqual(before);
  source.dispose();
  target.dispose();
});
