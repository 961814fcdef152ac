/**
 * PyTorch parity of the ViT options (scripts/fixtures/vit_options_ref.py writes the fixtures):
 * DeiT's distillation token and heads, qk-norm, learned 2-D / sin-cos / no position embedding,
 * dynamic image size (timm's resample at call time) and intermediate features, loaded from
 * timm-layout state dicts; MAE's sin-cos tables; DeiT's hard distillation loss.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import {
  createViT,
  entryToTensor,
  exportWeights,
  hardDistillationLoss,
  loadPretrained,
  readSafetensors,
  type SafetensorsEntry,
  type SafetensorsFile,
  sincos2dPosEmbed,
  type VisionTransformer,
  type ViTConfig,
} from '../../src/index';
import { describeBackends, maxAbsDiff } from '../helpers/backends';

const DIR = fileURLToPath(new URL('../fixtures/vit_options/', import.meta.url));
const LOGITS_ATOL = 1e-4;

function read(name: string): SafetensorsFile {
  const buf = readFileSync(`${DIR}${name}.safetensors`);
  return readSafetensors(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
}

/** The fixture split into the state dict (timm keys) and the io tensors (`io.` prefix). */
function splitFixture(file: SafetensorsFile) {
  const weights = new Map<string, SafetensorsEntry>();
  const io = new Map<string, SafetensorsEntry>();
  for (const [k, v] of file.tensors) {
    if (k.startsWith('io.')) io.set(k.slice(3), v);
    else weights.set(k, v);
  }
  const t = (k: string) => {
    const e = io.get(k);
    if (!e) throw new Error(`fixture has no io.${k}`);
    return entryToTensor(e, k);
  };
  return { weights: { tensors: weights, metadata: file.metadata }, io, t };
}

const CASES = [
  'deit_qknorm_dynamic',
  'learned_dynamic',
  'learned2d_dynamic',
  'sincos',
  'none_avg',
] as const;

it("sincos2dPosEmbed equals MAE's get_2d_sincos_pos_embed (numpy) within 1e-6", () => {
  const file = read('sincos_tables');
  const cases = JSON.parse(file.metadata.cases) as Record<string, [number, number, number, number]>;
  expect(Object.keys(cases).length).toBe(4);
  for (const [name, [d, gh, gw, prefix]] of Object.entries(cases)) {
    const ref = file.tensors.get(name)?.data as Float32Array;
    const got = sincos2dPosEmbed(d, [gh, gw], prefix);
    expect(got.length, name).toBe(ref.length);
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]));
    expect(worst, name).toBeLessThan(1e-6);
  }
});

describeBackends('ViT options: PyTorch parity', () => {
  for (const name of CASES) {
    it(`${name}: logits, heads, intermediates and other input sizes match PyTorch`, () => {
      const file = read(name);
      const { weights, io, t } = splitFixture(file);
      const config = JSON.parse(file.metadata.config) as ViTConfig;
      const model = createViT(config);
      const vit = model.layers[1] as VisionTransformer;
      if (config.posEmbed === 'sincos') {
        // The table the model builds by itself is the one PyTorch stored (MAE's).
        const own = model.weights.find((w) => w.originalName.endsWith('embed/pos_embed'));
        const stored = entryToTensor(weights.tensors.get('pos_embed') as SafetensorsEntry, 'pos');
        expect(maxAbsDiff(own?.read() as tf.Tensor, stored)).toBeLessThan(1e-6);
        stored.dispose();
      }
      const report = loadPretrained(model, weights, { from: 'timm' });
      expect(report.missing).toEqual([]);
      expect(report.unexpected).toEqual([]);
      expect(report.loaded.length).toBe(model.weights.length);

      const x = t('input_nhwc');
      const y = model.predict(x) as tf.Tensor;
      const refLogits = t('logits');
      expect(maxAbsDiff(y, refLogits)).toBeLessThan(LOGITS_ATOL);
      const out: tf.Tensor[] = [x, y, refLogits];
      if (config.distilled) {
        const { logits, distLogits } = vit.forwardDistillation(x);
        const [rc, rd] = [t('logits_cls'), t('logits_dist')];
        expect(maxAbsDiff(logits, rc)).toBeLessThan(LOGITS_ATOL);
        expect(maxAbsDiff(distLogits, rd)).toBeLessThan(LOGITS_ATOL);
        out.push(logits, distLogits, rc, rd);
      }
      for (const norm of [false, true]) {
        const r = vit.forwardIntermediates(x, { output: 'tokens', norm });
        r.intermediates.forEach((got, i) => {
          const ref = t(`${norm ? 'inter_norm' : 'inter'}.${i}`);
          expect(maxAbsDiff(got, ref), `${norm} ${i}`).toBeLessThan(LOGITS_ATOL);
          out.push(got, ref);
        });
      }
      const extra = JSON.parse(file.metadata.extra) as Array<[number, number]>;
      extra.forEach((size, j) => {
        const xe = t(`extra.${j}.input_nhwc`);
        expect(xe.shape.slice(1, 3)).toEqual(size);
        const ye = model.predict(xe) as tf.Tensor;
        const re = t(`extra.${j}.logits`);
        expect(maxAbsDiff(ye, re), `extra ${size}`).toBeLessThan(LOGITS_ATOL);
        out.push(xe, ye, re);
      });
      expect(io.size).toBeGreaterThan(3);
      // Export gives PyTorch's state dict back exactly (the keys timm's strict load expects).
      const back = readSafetensors(exportWeights(model, { to: 'timm' }));
      expect([...back.tensors.keys()].sort()).toEqual([...weights.tensors.keys()].sort());
      for (const [k, e] of weights.tensors) {
        const a = back.tensors.get(k)?.data as Float32Array;
        expect(
          Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
            Buffer.from(
              (e.data as Float32Array).buffer,
              (e.data as Float32Array).byteOffset,
              (e.data as Float32Array).byteLength,
            ),
          ),
          k,
        ).toBe(true);
      }
      tf.dispose(out);
      model.dispose();
    });
  }

  it("hardDistillationLoss equals DeiT's DistillationLoss('hard') in PyTorch", () => {
    const file = read('distillation_loss');
    const e = (k: string) => entryToTensor(file.tensors.get(k) as SafetensorsEntry, k);
    const [logits, dist, teacher, labels] = [
      e('logits'),
      e('dist_logits'),
      e('teacher_logits'),
      e('labels'),
    ];
    const oneHot = tf.oneHot(tf.cast(labels, 'int32'), 5);
    const before = tf.memory().numTensors;
    for (const [alpha, smoothing] of JSON.parse(file.metadata.cases) as Array<[number, number]>) {
      const entry = file.tensors.get(`loss_a${alpha.toFixed(1)}_s${smoothing.toFixed(1)}`);
      if (!entry) throw new Error(`no reference loss for alpha ${alpha}, smoothing ${smoothing}`);
      const ref = (entry.data as Float32Array)[0];
      const opts = { alpha, labelSmoothing: smoothing };
      for (const target of [labels, oneHot]) {
        const loss = hardDistillationLoss(target, logits, dist, teacher, opts);
        expect(loss.shape).toEqual([]);
        expect(Math.abs(loss.dataSync()[0] - ref), `${alpha} ${smoothing}`).toBeLessThan(1e-5);
        loss.dispose();
      }
    }
    expect(tf.memory().numTensors).toBe(before);
    // Gradients reach both student heads and not the teacher.
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      hardDistillationLoss(labels, a, b, c),
    )([logits, dist, teacher]);
    expect(tf.max(tf.abs(g[0])).dataSync()[0]).toBeGreaterThan(1e-3);
    expect(tf.max(tf.abs(g[1])).dataSync()[0]).toBeGreaterThan(1e-3);
    expect(tf.max(tf.abs(g[2])).dataSync()[0]).toBe(0);
    expect(() => hardDistillationLoss(labels, logits, dist, teacher, { alpha: 2 })).toThrow(
      /alpha must be a number in \[0, 1\], got 2/,
    );
    expect(() => hardDistillationLoss(labels, logits, tf.zeros([6, 4]), teacher)).toThrow(
      /distLogits must have the shape of logits \[6, 5\], got \[6, 4\]/,
    );
    tf.dispose([logits, dist, teacher, labels, oneHot, ...g]);
  });
});
