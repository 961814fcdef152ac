import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { createViT } from '../../src/index';
import {
  activeBackends,
  describeBackends,
  onBackend,
  relL2Arrays,
  seededValues,
} from '../helpers/backends';

/**
 * ViT-Ti/16 (5.7 M parameters, 224 px, batch 1) gives the same logits on every backend as on
 * cpu, for the same weights and input: relative L2 error under 1e-4.
 *
 * webgl in Chromium reports `floatPrecision() === 16` (and so `epsilon() === 1e-4`), but with
 * WEBGL_RENDER_FLOAT32_ENABLED its textures and arithmetic are float32: tfjs 4.22's
 * floatPrecision() returns 16 whenever float32 rendering is enabled. The 1e-4 bound therefore
 * holds for webgl as for wasm and webgpu; no looser tolerance is needed.
 */
const TOLERANCE = 1e-4;
const IMAGE_SEED = 7;

interface Reference {
  weights: Array<{ values: Float32Array; shape: number[] }>;
  logits: Float32Array;
}

let reference: Promise<Reference> | null = null;

/** Random (timm-initialized) weights and their logits, computed once on cpu. */
function cpuReference(): Promise<Reference> {
  reference ??= onBackend('cpu', () => {
    const model = createViT('vit_tiny_patch16_224');
    const weights = model
      .getWeights()
      .map((w) => ({ values: w.dataSync() as Float32Array, shape: w.shape }));
    const logits = tf.tidy(() => (model.predict(image()) as tf.Tensor).dataSync() as Float32Array);
    model.dispose();
    return { weights, logits };
  });
  return reference;
}

function image(): tf.Tensor4D {
  return tf.tensor4d(seededValues(224 * 224 * 3, IMAGE_SEED), [1, 224, 224, 3]);
}

describeBackends(
  'ViT-Ti/16 logits agree with cpu',
  (backend) => {
    it(`same weights and image: relative L2 < ${TOLERANCE} on ${backend}`, async () => {
      const ref = await cpuReference();
      const before = tf.memory().numTensors;
      const model = createViT('vit_tiny_patch16_224');
      const values = ref.weights.map((w) => tf.tensor(w.values, w.shape));
      model.setWeights(values);
      tf.dispose(values);
      const x = image();
      const y = model.predict(x) as tf.Tensor;
      const logits = await y.data();
      const err = relL2Arrays(logits, ref.logits);
      console.log(`ViT-Ti/16 logits ${backend} vs cpu: relative L2 ${err.toExponential(2)}`);
      expect(logits.length).toBe(1000);
      expect(err).toBeLessThan(TOLERANCE);
      tf.dispose([x, y]);
      model.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  },
  activeBackends().filter((b) => b !== 'cpu'),
);
