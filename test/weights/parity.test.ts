/**
 * PyTorch parity: checkpoints written by PyTorch (scripts/fixtures/make_parity.py) loaded with
 * loadPretrained must give PyTorch's logits (1e-4) and attention probabilities (1e-5), and
 * exportWeights must give back the same tensors. With $VIT_TS_PARITY_DIR set (npm run
 * test:parity) the same checks run on a freshly generated, larger set, and the exports are
 * written next to it for the Python side (`make_parity.py --check-export`).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { afterAll, expect, it } from 'vitest';
import { VisionTransformer } from '../../src/models/vision_transformer';
import { exportWeights } from '../../src/weights/export';
import { loadPretrained } from '../../src/weights/load';
import {
  entryToTensor,
  readSafetensors,
  type SafetensorsEntry,
} from '../../src/weights/safetensors';
import { describeBackends, maxAbsDiff, NODE_BACKENDS } from '../helpers/backends';
import {
  buildFixtureModel,
  fixtureWeights,
  LIVE,
  PARITY_DIR,
  readFixtureFile,
  readManifest,
} from './fixtures';

const LOGITS_ATOL = 1e-4;
const ATTN_ATOL = 1e-5;

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return (
    a.length === b.length &&
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    )
  );
}

function vitLayer(model: LayersModel): VisionTransformer {
  const l = model.layers.find((x) => x instanceof VisionTransformer);
  if (!l) throw new Error('no VisionTransformer layer');
  return l as VisionTransformer;
}

for (const e of readManifest().fixtures) {
  const backends = NODE_BACKENDS.filter((b) => e.backends.includes(b));
  describeBackends(
    `PyTorch parity: ${e.name} (${e.from})`,
    (backend) => {
      const io = readFixtureFile(e.io);
      const loadOptions = { from: e.from, ...(e.sourceGrid ? { sourceGrid: e.sourceGrid } : {}) };
      // One model per suite: the first test builds and loads it, the second exports it.
      let model: LayersModel | null = null;
      afterAll(() => model?.dispose());

      it(`logits${e.family === 'vit' ? ' and attention probabilities' : ''} match PyTorch`, () => {
        const x = entryToTensor(io.tensors.get('input_nhwc') as never, 'input_nhwc');
        const expectedLogits = entryToTensor(io.tensors.get('logits') as never, 'logits');
        model = buildFixtureModel(e, x.shape);
        const before = tf.memory().numTensors;
        const report = loadPretrained(model, fixtureWeights(e), loadOptions);
        expect(tf.memory().numTensors).toBe(before);
        expect(report.missing).toEqual([]);
        expect(report.unexpected).toEqual([]);
        if (e.sourceGrid) expect(report.resampled?.fromGrid).toEqual(e.sourceGrid);
        else expect(report.resampled).toBeNull();

        if (e.family === 'vit') {
          const { logits, attentions } = vitLayer(model).forwardWithAttention(x);
          const dl = maxAbsDiff(logits, expectedLogits);
          expect(dl).toBeLessThan(LOGITS_ATOL);
          const depth = e.config.depth as number;
          expect(attentions.length).toBe(depth);
          const diffs: number[] = [];
          attentions.forEach((a, i) => {
            const ref = entryToTensor(io.tensors.get(`attn.${i}`) as never, `attn.${i}`);
            expect(a.shape).toEqual(ref.shape);
            diffs.push(maxAbsDiff(a, ref));
            ref.dispose();
          });
          console.log(
            `${e.name} [${backend}]: logits max abs diff ${dl.toExponential(2)}, attention ${Math.max(...diffs).toExponential(2)}`,
          );
          for (const d of diffs) expect(d).toBeLessThan(ATTN_ATOL);
          tf.dispose([logits, ...attentions]);
        } else {
          const logits = model.predict(x) as tf.Tensor;
          const dl = maxAbsDiff(logits, expectedLogits);
          console.log(`${e.name} [${backend}]: logits max abs diff ${dl.toExponential(2)}`);
          expect(dl).toBeLessThan(LOGITS_ATOL);
          logits.dispose();
        }
        tf.dispose([x, expectedLogits]);
      });

      it(`exports to the ${e.from} layout: the PyTorch checkpoint back, bit for bit, and re-imports`, () => {
        const source = fixtureWeights(e);
        if (!model) {
          model = buildFixtureModel(e, io.tensors.get('input_nhwc')?.shape as number[]);
          loadPretrained(model, source, loadOptions);
        }
        const before = tf.memory().numTensors;
        const bytes = exportWeights(model, { to: e.from });
        expect(tf.memory().numTensors).toBe(before);
        if (LIVE && backend === backends[0])
          writeFileSync(join(PARITY_DIR, `${e.name}.export.safetensors`), bytes);

        // Same keys, shapes and float32 values as the checkpoint PyTorch wrote.
        const exported = readSafetensors(bytes);
        expect([...exported.tensors.keys()].sort()).toEqual([...source.tensors.keys()].sort());
        for (const [key, ref] of source.tensors) {
          const got = exported.tensors.get(key) as SafetensorsEntry;
          expect(got.dtype, key).toBe(ref.dtype);
          if (key.endsWith('num_batches_tracked')) {
            expect(got.shape).toEqual([]);
            continue;
          }
          if (key === 'pos_embed' && e.sourceGrid) {
            expect(got.shape).toEqual([
              1,
              model.weights.find((w) => w.originalName.endsWith('pos_embed'))?.shape[1],
              ref.shape[2],
            ]);
            continue;
          }
          expect(got.shape, key).toEqual(ref.shape);
          expect(sameBits(got.data as Float32Array, ref.data as Float32Array), key).toBe(true);
        }

        // Re-import: a strict load of the export leaves every weight as it was.
        const snapshot = model.weights.map((w) => w.read().dataSync().slice());
        const report = loadPretrained(model, bytes, { from: e.from });
        expect(report.loaded.length).toBe(model.weights.length);
        // BatchNorm step counters (20 in a ResNet18, those of the trunk in a hybrid) are skipped.
        const counters = [...source.tensors.keys()].filter((k) =>
          k.endsWith('num_batches_tracked'),
        );
        expect(counters.length).toBe(
          e.family === 'resnet'
            ? 20
            : e.config.backbone === 'resnet18'
              ? 5 * (e.config.backboneStages ?? 3)
              : 0,
        );
        expect(report.ignored.sort()).toEqual(counters.sort());
        model.weights.forEach((w, i) => {
          expect(
            sameBits(w.read().dataSync() as Float32Array, snapshot[i] as Float32Array),
            w.originalName,
          ).toBe(true);
        });
      });
    },
    backends,
  );
}
