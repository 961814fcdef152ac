/**
 * loadPretrained / exportWeights behaviour: strict errors, non-strict reports, sources, the
 * LayerNorm epsilon check, non-square resampling, config inference, dtypes, node helpers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { sequential, layers as tfl } from '@tensorflow/tfjs-layers';
import { afterAll, expect, it, vi } from 'vitest';
import { ConfigError } from '../../src/errors';
import { createViT } from '../../src/index';
import { VisionTransformer } from '../../src/models/vision_transformer';
import { exportWeightsFile, loadPretrainedFile } from '../../src/node';
import { vitConfigFromCheckpoint } from '../../src/weights/checkpoint_config';
import { exportWeights } from '../../src/weights/export';
import { CheckpointError, loadPretrained } from '../../src/weights/load';
import { resamplePosEmbed } from '../../src/weights/resample';
import {
  readSafetensors,
  type SafetensorsEntry,
  type SafetensorsFile,
} from '../../src/weights/safetensors';
import { describeBackends, maxAbsDiff } from '../helpers/backends';
import { COMMITTED_PARITY_DIR, fixture, fixtureWeights } from './fixtures';

const timm = fixture('timm_vit', COMMITTED_PARITY_DIR);
const rect = fixture('timm_vit_rect', COMMITTED_PARITY_DIR);
const hf = fixture('hf_vit', COMMITTED_PARITY_DIR);
const timmCkpt = () => fixtureWeights(timm, COMMITTED_PARITY_DIR);

function snapshot(model: LayersModel): Float32Array[] {
  return model.weights.map((w) => w.read().dataSync().slice() as Float32Array);
}

function weight(model: LayersModel, suffix: string): tf.Tensor {
  const w = model.weights.find((x) => x.originalName.endsWith(suffix));
  if (!w) throw new Error(`no weight ${suffix}`);
  return w.read();
}

/** A copy of a checkpoint with entries removed / added / replaced. */
function edit(
  file: SafetensorsFile,
  drop: string[],
  add: Record<string, SafetensorsEntry> = {},
): SafetensorsFile {
  const tensors = new Map([...file.tensors].filter(([k]) => !drop.includes(k)));
  for (const [k, v] of Object.entries(add)) tensors.set(k, v);
  return { tensors, metadata: file.metadata };
}

describeBackends('loadPretrained', () => {
  const models: LayersModel[] = [];
  const track = (m: LayersModel) => {
    models.push(m);
    return m;
  };
  afterAll(() => {
    for (const m of models) m.dispose();
  });

  it('strict: lists every missing, unexpected and mis-shaped key in one error and loads nothing', () => {
    const model = track(createViT({ ...timm.config, numClasses: 7 }));
    const before = snapshot(model);
    const ckpt = edit(timmCkpt(), ['blocks.1.mlp.fc2.bias', 'cls_token'], {
      'extra.weight': { dtype: 'F32', shape: [2], data: new Float32Array(2) },
    });
    const numTensors = tf.memory().numTensors;
    let err: CheckpointError | null = null;
    try {
      loadPretrained(model, ckpt, { from: 'timm' });
    } catch (e) {
      err = e as CheckpointError;
    }
    expect(err).toBeInstanceOf(CheckpointError);
    const msg = (err as CheckpointError).message;
    expect(msg).toContain('Missing keys (2): cls_token, blocks.1.mlp.fc2.bias');
    expect(msg).toContain('Unexpected keys (1): extra.weight');
    expect(msg).toContain('head.weight (-> head/kernel): expected [7, 48], got [5, 48]');
    expect(msg).toContain('head.bias (-> head/bias): expected [7], got [5]');
    expect(msg).toContain('strict: false');
    expect((err as CheckpointError).report.mismatched.map((m) => m.key)).toEqual([
      'head.weight',
      'head.bias',
    ]);
    expect(tf.memory().numTensors).toBe(numTensors);
    snapshot(model).forEach((v, i) => {
      expect(v).toEqual(before[i]);
    });
  });

  it('non-strict: loads what matches (a new head for fine-tuning) and reports the rest', () => {
    const model = track(createViT({ ...timm.config, numClasses: 7 }));
    const headBefore = weight(model, 'head/kernel').dataSync().slice();
    const ckpt = timmCkpt();
    const numTensors = tf.memory().numTensors;
    const report = loadPretrained(model, ckpt, { from: 'timm', strict: false });
    expect(tf.memory().numTensors).toBe(numTensors);
    expect(report.mismatched).toEqual([
      { key: 'head.weight', name: 'head/kernel', expected: [7, 48], got: [5, 48] },
      { key: 'head.bias', name: 'head/bias', expected: [7], got: [5] },
    ]);
    expect(report.missing).toEqual([]);
    expect(report.unexpected).toEqual([]);
    expect(report.loaded).toHaveLength(model.weights.length - 2);
    expect(weight(model, 'head/kernel').dataSync()).toEqual(headBefore);
    // fc1 kernel = checkpoint's [out, in] weight transposed.
    const fc1 = ckpt.tensors.get('blocks.1.mlp.fc1.weight') as SafetensorsEntry;
    const ref = tf.tidy(() => tf.transpose(tf.tensor(fc1.data as Float32Array, fc1.shape)));
    expect(maxAbsDiff(weight(model, 'blocks/1/mlp/fc1/kernel'), ref)).toBe(0);
    ref.dispose();
  });

  it('accepts bytes, a parsed file, a record or a Map of tf.Tensors, and a bare VisionTransformer layer; never disposes the caller tensors', () => {
    const ckpt = timmCkpt();
    const record: Record<string, tf.Tensor> = {};
    for (const [k, e] of ckpt.tensors) record[k] = tf.tensor(e.data as Float32Array, e.shape);
    const a = track(createViT(timm.config));
    const numTensors = tf.memory().numTensors;
    expect(loadPretrained(a, record, { from: 'timm' }).loaded).toHaveLength(a.weights.length);
    expect(tf.memory().numTensors).toBe(numTensors);
    expect(Object.values(record).every((t) => !t.isDisposed)).toBe(true);
    const b = track(createViT(timm.config));
    const layer = b.layers.find((l) => l instanceof VisionTransformer) as VisionTransformer;
    loadPretrained(layer, new Map(Object.entries(record)), { from: 'timm' });
    const c = track(createViT(timm.config));
    loadPretrained(c, exportWeights(a, { to: 'timm' }), { from: 'timm' });
    for (const m of [b, c]) {
      m.weights.forEach((w, i) => {
        expect(maxAbsDiff(w.read(), a.weights[i].read()), w.originalName).toBe(0);
      });
    }
    tf.dispose(Object.values(record));
  });

  it('names the model problem: no architecture layer, an unbuilt layer, missing options', () => {
    const plain = track(sequential({ layers: [tfl.dense({ units: 2, inputShape: [3] })] }));
    expect(() => loadPretrained(plain, timmCkpt(), { from: 'timm' })).toThrow(
      /exactly one VisionTransformer or ResNet18 layer, found 0/,
    );
    const unbuilt = new VisionTransformer({ ...timm.config, name: 'v' });
    expect(() => loadPretrained(unbuilt, timmCkpt(), { from: 'timm' })).toThrow(/not built yet/);
    const model = track(createViT(timm.config));
    expect(() => loadPretrained(model, timmCkpt(), undefined as never)).toThrow(ConfigError);
    expect(() => loadPretrained(model, 42 as never, { from: 'timm' })).toThrow(/source must be/);
  });

  it('a checkpoint in another layout says so', () => {
    const model = track(createViT(timm.config));
    expect(() => loadPretrained(model, timmCkpt(), { from: 'torchvision' })).toThrow(
      /No key of the 'torchvision' layout matched/,
    );
  });

  it("accepts torchvision 0.12's mlp.linear_1 / linear_2 key names", () => {
    const tv = fixture('tv_vit', COMMITTED_PARITY_DIR);
    const ckpt = fixtureWeights(tv, COMMITTED_PARITY_DIR);
    const legacy: SafetensorsFile = {
      tensors: new Map(
        [...ckpt.tensors].map(([k, v]) => [
          k.replace('.mlp.0.', '.mlp.linear_1.').replace('.mlp.3.', '.mlp.linear_2.'),
          v,
        ]),
      ),
      metadata: {},
    };
    expect([...legacy.tensors.keys()]).toContain(
      'encoder.layers.encoder_layer_1.mlp.linear_2.bias',
    );
    const model = track(createViT(tv.config));
    expect(loadPretrained(model, legacy, { from: 'torchvision' }).loaded).toHaveLength(
      model.weights.length,
    );
    const fc2 = ckpt.tensors.get('encoder.layers.encoder_layer_1.mlp.3.bias') as SafetensorsEntry;
    expect(Array.from(weight(model, 'blocks/1/mlp/fc2/bias').dataSync())).toEqual(
      Array.from(fc2.data as Float32Array),
    );
    expect(() => loadPretrained(model, legacy, { from: 'cifar' })).toThrow(
      /format 'cifar' has no key map for a vit model/,
    );
  });

  it('refuses (strict) or warns (non-strict) when the LayerNorm epsilon differs from the checkpoint', () => {
    const ckpt = fixtureWeights(hf, COMMITTED_PARITY_DIR);
    const model = track(createViT({ ...hf.config, normEps: 1e-6 }));
    expect(() => loadPretrained(model, ckpt, { from: 'hf' })).toThrow(
      /model uses normEps 1e-6, the 'hf' checkpoint was trained with 1e-12/,
    );
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const report = loadPretrained(model, ckpt, { from: 'hf', strict: false });
    expect(report.warnings).toHaveLength(1);
    expect(warn).toHaveBeenCalledTimes(1);
    warn.mockRestore();
    expect(report.loaded).toHaveLength(model.weights.length);
    expect(loadPretrained(model, ckpt, { from: 'hf', sourceNormEps: 1e-6 }).warnings).toEqual([]);
  });

  it('resamples a non-square grid given sourceGrid (prefix rows kept), refuses to guess without it', () => {
    // timm_vit_rect: grid 3x5, class + 1 register token. Model: 32x48 images, grid 4x6.
    const ckpt = fixtureWeights(rect, COMMITTED_PARITY_DIR);
    const model = track(createViT({ ...rect.config, imgSize: [32, 48] }));
    expect(() => loadPretrained(model, ckpt, { from: 'timm' })).toThrow(
      /15 patch tokens are not a square grid; pass options.sourceGrid/,
    );
    expect(() => loadPretrained(model, ckpt, { from: 'timm', sourceGrid: [3, 4] })).toThrow(
      /sourceGrid \[3,4\] does not match/,
    );
    expect(() => loadPretrained(model, ckpt, { from: 'timm', resample: false })).toThrow(
      /pos_embed \(-> embed\/pos_embed\): expected \[1, 26, 24\], got \[1, 17, 24\]/,
    );
    const numTensors = tf.memory().numTensors;
    const report = loadPretrained(model, ckpt, { from: 'timm', sourceGrid: [3, 5] });
    expect(tf.memory().numTensors).toBe(numTensors);
    expect(report.resampled).toEqual({
      key: 'pos_embed',
      fromGrid: [3, 5],
      toGrid: [4, 6],
      method: 'bicubic',
    });
    const src = ckpt.tensors.get('pos_embed') as SafetensorsEntry;
    const expected = tf.tidy(() =>
      resamplePosEmbed(tf.tensor(src.data as Float32Array, src.shape), {
        oldGrid: [3, 5],
        newGrid: [4, 6],
        numPrefixTokens: 2,
      }),
    );
    const got = weight(model, 'embed/pos_embed');
    expect(got.shape).toEqual([1, 26, 24]);
    expect(maxAbsDiff(got, expected)).toBe(0);
    // The two prefix rows are the checkpoint's, untouched.
    expect(Array.from(got.dataSync().slice(0, 48))).toEqual(
      Array.from((src.data as Float32Array).slice(0, 48)),
    );
    expected.dispose();
  });

  it('vitConfigFromCheckpoint infers the architecture (numHeads from the caller, vit-ts metadata or a preset width)', () => {
    expect(() => vitConfigFromCheckpoint(timmCkpt(), { from: 'timm' })).toThrow(
      /embedDim 48 matches no timm preset; pass options.numHeads/,
    );
    expect(vitConfigFromCheckpoint(timmCkpt(), { from: 'timm', numHeads: 3 })).toMatchObject({
      imgSize: 32,
      patchSize: 8,
      embedDim: 48,
      depth: 2,
      numHeads: 3,
      numClasses: 5,
      mlpRatio: 4,
      globalPool: 'token',
      numRegTokens: 0,
      normEps: 1e-6,
    });
    const rectCkpt = fixtureWeights(rect, COMMITTED_PARITY_DIR);
    expect(() => vitConfigFromCheckpoint(rectCkpt, { from: 'timm', numHeads: 2 })).toThrow(
      /pass options.imgSize/,
    );
    const rc = vitConfigFromCheckpoint(rectCkpt, { from: 'timm', numHeads: 2, imgSize: [24, 40] });
    expect(rc).toMatchObject({
      imgSize: [24, 40],
      embedDim: 24,
      mlpRatio: 2,
      numRegTokens: 1,
      globalPool: 'avg',
      numClasses: 4,
    });
    expect(rc.initValues).toBeTypeOf('number');
    // HF: eps 1e-12; the inferred model loads strictly and round-trips its numHeads through export metadata.
    const hfCkpt = fixtureWeights(hf, COMMITTED_PARITY_DIR);
    const cfg = vitConfigFromCheckpoint(hfCkpt, { from: 'hf', numHeads: 4 });
    expect(cfg).toMatchObject({ normEps: 1e-12, embedDim: 32, depth: 2, numClasses: 3 });
    const model = track(createViT(cfg));
    expect(loadPretrained(model, hfCkpt, { from: 'hf' }).loaded).toHaveLength(model.weights.length);
    expect(
      vitConfigFromCheckpoint(exportWeights(model, { to: 'hf' }), { from: 'hf' }).numHeads,
    ).toBe(4);
    // A standard width takes the preset's heads.
    const tiny = track(createViT('vit_tiny_patch16_224', { imgSize: 32, depth: 1, numClasses: 0 }));
    const tinyFile = readSafetensors(exportWeights(tiny, { to: 'torchvision' }));
    expect(
      vitConfigFromCheckpoint({ tensors: tinyFile.tensors, metadata: {} }, { from: 'torchvision' }),
    ).toMatchObject({
      embedDim: 192,
      numHeads: 3,
      numClasses: 0,
      imgSize: 32,
      depth: 1,
    });
  });

  it('exports F16 / BF16 (half the bytes, values rounded) and refuses layouts that cannot hold the model', () => {
    const model = track(createViT(timm.config));
    loadPretrained(model, timmCkpt(), { from: 'timm' });
    const f32 = exportWeights(model, { to: 'timm' });
    for (const dtype of ['F16', 'BF16'] as const) {
      const half = exportWeights(model, { to: 'timm', dtype });
      expect(half.byteLength).toBeLessThan(0.55 * f32.byteLength);
      const file = readSafetensors(half);
      const qkv = file.tensors.get('blocks.0.attn.qkv.weight') as SafetensorsEntry;
      expect(qkv.dtype).toBe(dtype);
      const ref = readSafetensors(f32).tensors.get('blocks.0.attn.qkv.weight') as SafetensorsEntry;
      const rel = dtype === 'F16' ? 2 ** -11 : 2 ** -8;
      (qkv.data as Float32Array).forEach((v, i) => {
        const r = (ref.data as Float32Array)[i];
        expect(Math.abs(v - r)).toBeLessThanOrEqual(rel * Math.abs(r) + 1e-7);
      });
      const again = track(createViT(timm.config));
      loadPretrained(again, half, { from: 'timm' });
    }
    const withExtras = track(createViT(rect.config));
    expect(() => exportWeights(withExtras, { to: 'torchvision' })).toThrow(
      /pools the class token.*no register tokens.*no LayerScale.*square images/,
    );
    expect(() => exportWeights(withExtras, { to: 'hf' })).toThrow(
      /cannot be written in the 'hf' layout/,
    );
    expect(() => exportWeights(withExtras, { to: 'cifar' })).toThrow(/'timm', 'torchvision', 'hf'/);
  });

  it('loadPretrainedFile / exportWeightsFile round trip through disk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vit-ts-weights-'));
    try {
      const model = track(createViT(timm.config));
      const report = await loadPretrainedFile(
        model,
        join(COMMITTED_PARITY_DIR, 'timm_vit.weights.safetensors'),
        { from: 'timm' },
      );
      expect(report.loaded).toHaveLength(model.weights.length);
      const bytes = await exportWeightsFile(model, join(dir, 'out.safetensors'), {
        to: 'torchvision',
      });
      expect(bytes).toBeGreaterThan(4 * 60_000);
      const again = track(createViT(timm.config));
      await loadPretrainedFile(again, join(dir, 'out.safetensors'), { from: 'torchvision' });
      again.weights.forEach((w, i) => {
        expect(maxAbsDiff(w.read(), model.weights[i].read())).toBe(0);
      });
      await expect(loadPretrainedFile(model, '', { from: 'timm' })).rejects.toThrow(
        /non-empty string/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
