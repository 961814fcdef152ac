/**
 * vit-ts reaches two non-public members of tfjs-layers, both isolated in src/tfjs_types.ts.
 * This test fails loudly when a tfjs upgrade renames or removes them.
 */
import '@tensorflow/tfjs-backend-cpu';
import { initializers, layers } from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { addWeightTo, fastWeightInitDuringBuild } from '../../src/tfjs_types';

class Plain extends layers.Layer {
  static readonly className = 'VitTsTest>Plain';
}

it('reads the fast-weight-init flag that loadLayersModel sets', () => {
  const layer = new Plain({ name: 'plain_flag' });
  expect(Object.hasOwn(layer, 'fastWeightInitDuringBuild')).toBe(true);
  expect(fastWeightInitDuringBuild(layer)).toBe(false);
  layer.setFastWeightInitDuringBuild(true);
  expect(fastWeightInitDuringBuild(layer)).toBe(true);
});

it('adds weights through the protected addWeight', () => {
  const layer = new Plain({ name: 'plain_weights' });
  const add = addWeightTo(layer);
  const w = add('w', [2, 3], 'float32', initializers.ones(), undefined, true);
  const s = add('s', [3], 'float32', initializers.zeros(), undefined, false);
  expect(w.shape).toEqual([2, 3]);
  expect(layer.trainableWeights).toEqual([w]);
  expect(layer.nonTrainableWeights).toEqual([s]);
  expect(Array.from(w.read().dataSync())).toEqual([1, 1, 1, 1, 1, 1]);
  w.dispose();
  s.dispose();
});
