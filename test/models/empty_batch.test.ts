/**
 * An empty batch (`[0, H, W, C]`) is an InputShapeError naming the input, "batch >= 1" and the
 * shape that came, wherever vit-ts is on the path: every layer's call, the models the factories
 * build and `loadModel` returns (tfjs' own predict would fail with "Pass at least one tensor to
 * concat", fit and evaluate would silently do nothing), the attention tools and the training
 * helpers. The models stay plain tfjs LayersModels that save and load as before.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { LayersModel, loadLayersModel } from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { InputShapeError } from '../../src/errors';
import {
  attentionRollout,
  constantSchedule,
  createHybridViT,
  createResNet18,
  createViT,
  evaluateModel,
  getAttention,
  guardEmptyBatch,
  LayerNorm,
  Linear,
  MLP,
  MultiHeadAttention,
  PatchEmbed,
  Trainer,
  TransformerBlock,
  ViTEmbedding,
} from '../../src/index';
import { loadModel, saveModel } from '../../src/node';
import { describeBackends } from '../helpers/backends';
import { TINY_HYBRID, TINY_VIT } from '../helpers/tiny_models';

const mnistModelDir = fileURLToPath(new URL('../../examples/mnist/model', import.meta.url));

/** The InputShapeError a model method gives for `[0, ...shape]` on input `image`. */
function emptyBatchError(method: string, shape: number[]): RegExp {
  const dims = shape.join(', ');
  return new RegExp(
    `^model\\.${method}: expected input of shape \\[batch >= 1, ${dims}\\] \\(input 'image' of model '[^']+'\\), got a batch of 0: \\[0, ${dims}\\]$`,
  );
}

/** `model`'s four batch-taking methods all refuse an empty batch, leaking nothing. */
async function expectModelRefusesEmptyBatch(model: LayersModel, shape: number[]): Promise<void> {
  model.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
  const before = tf.memory().numTensors;
  const x = tf.zeros([0, ...shape]);
  const y = tf.zeros([0, (model.outputs[0].shape[1] as number) ?? 1]);
  expect(() => model.predict(x)).toThrow(InputShapeError);
  expect(() => model.predict(x)).toThrow(emptyBatchError('predict', shape));
  expect(() => model.predict([x])).toThrow(emptyBatchError('predict', shape));
  expect(() => model.predictOnBatch(x)).toThrow(emptyBatchError('predictOnBatch', shape));
  expect(() => model.evaluate(x, y)).toThrow(emptyBatchError('evaluate', shape));
  await expect(model.fit(x, y, { epochs: 1 })).rejects.toThrow(emptyBatchError('fit', shape));
  await expect(model.fit({ image: x }, y, { epochs: 1 })).rejects.toThrow(
    emptyBatchError('fit', shape),
  );
  tf.dispose([x, y]);
  expect(tf.memory().numTensors).toBe(before);
}

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vit-ts-empty-batch-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describeBackends('empty batch', (backend) => {
  it('createViT: predict / predictOnBatch / evaluate / fit refuse batch 0; batch 1 predicts as tfjs does', async () => {
    const model = createViT(TINY_VIT, {}, { seed: 1 });
    expect(model).toBeInstanceOf(LayersModel);
    await expectModelRefusesEmptyBatch(model, [16, 16, 3]);
    // The guard changes nothing else: same output as tfjs' own predict.
    const x = tf.ones([2, 16, 16, 3]);
    const a = model.predict(x) as tf.Tensor;
    const b = LayersModel.prototype.predict.call(model, x) as tf.Tensor;
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
    tf.dispose([x, a, b]);
    model.dispose();
  });

  it('createResNet18 and createHybridViT refuse batch 0 the same way', async () => {
    const resnet = createResNet18({ numClasses: 2, stem: 'cifar', imgSize: 8, seed: 1 });
    await expectModelRefusesEmptyBatch(resnet, [8, 8, 3]);
    resnet.dispose();
    const hybrid = createHybridViT(TINY_HYBRID);
    await expectModelRefusesEmptyBatch(hybrid, [8, 8, 3]);
    hybrid.dispose();
  });

  it('loadModel returns a guarded model; saving is unchanged and tfjs loads the same file unguarded', async () => {
    const shipped = await loadModel(mnistModelDir);
    await expectModelRefusesEmptyBatch(shipped, [28, 28, 1]);
    const x = tf.ones([1, 28, 28, 1]);
    const ref = shipped.predict(x) as tf.Tensor;
    const out = join(dir, backend);
    await saveModel(shipped, out);
    const again = await loadModel(out);
    // The same model through tfjs alone (saved to memory, loaded by tf.loadLayersModel): the
    // guard is not part of the file, so tfjs' own loader gives an unguarded model with the
    // same outputs, and its predict still fails on an empty batch with tfjs' message.
    let artifacts: tf.io.ModelArtifacts | undefined;
    await again.save(
      tf.io.withSaveHandler(async (a) => {
        artifacts = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const viaTfjs = await loadLayersModel(tf.io.fromMemory(artifacts as tf.io.ModelArtifacts));
    expect(Object.hasOwn(viaTfjs, 'predict')).toBe(false);
    const empty = tf.zeros([0, 28, 28, 1]);
    expect(() => viaTfjs.predict(empty)).toThrow(/Pass at least one tensor to concat/);
    // guardEmptyBatch adds the checks to any LayersModel (twice is the same as once).
    expect(guardEmptyBatch(guardEmptyBatch(viaTfjs))).toBe(viaTfjs);
    expect(() => viaTfjs.predict(empty)).toThrow(emptyBatchError('predict', [28, 28, 1]));
    empty.dispose();
    const [p, q] = [again.predict(x) as tf.Tensor, viaTfjs.predict(x) as tf.Tensor];
    expect(Array.from(await p.data())).toEqual(Array.from(await ref.data()));
    expect(Array.from(await q.data())).toEqual(Array.from(await ref.data()));
    tf.dispose([x, ref, p, q]);
    for (const m of [shipped, again, viaTfjs]) m.dispose();
  });

  it('every layer refuses batch 0 in call, naming the layer and batch >= 1', () => {
    const cases: Array<[string, { apply(x: tf.Tensor): unknown }, number[]]> = [
      ['PatchEmbed', new PatchEmbed({ imgSize: 8, patchSize: 4, embedDim: 4 }), [8, 8, 3]],
      ['Linear', new Linear({ inFeatures: 3, outFeatures: 2 }), [3]],
      ['MultiHeadAttention', new MultiHeadAttention({ dim: 4, numHeads: 2 }), [5, 4]],
      ['LayerNorm', new LayerNorm({}), [5, 4]],
      ['MLP', new MLP({ inFeatures: 4 }), [5, 4]],
      ['TransformerBlock', new TransformerBlock({ dim: 4, numHeads: 2 }), [5, 4]],
      ['ViTEmbedding', new ViTEmbedding({ numPatches: 4, embedDim: 4 }), [4, 4]],
    ];
    for (const [name, layer, shape] of cases) {
      // Built on a real batch first, so the empty batch reaches call().
      const ok = tf.ones([1, ...shape]);
      tf.dispose(layer.apply(ok) as tf.Tensor);
      const before = tf.memory().numTensors;
      const empty = tf.zeros([0, ...shape]);
      expect(() => layer.apply(empty), name).toThrow(
        new RegExp(
          `^${name}: expected input of shape \\[batch >= 1, [^\\]]*\\] \\(.*\\), got a batch of 0: \\[0, ${shape.join(', ')}\\]`,
        ),
      );
      tf.dispose([ok, empty]);
      expect(tf.memory().numTensors, name).toBe(before - 1);
    }
  });

  it('model.apply / execute paths (VisionTransformer, ResNet18 layers), attention tools and training helpers refuse batch 0', async () => {
    const model = createViT(TINY_VIT, {}, { seed: 2 });
    const resnet = createResNet18({ numClasses: 2, stem: 'cifar', imgSize: 8, seed: 1 });
    const before = tf.memory().numTensors;
    const empty = tf.zeros([0, 16, 16, 3]);
    expect(() => model.apply(empty)).toThrow(
      /^VisionTransformer: expected input of shape \[batch >= 1, 16, 16, 3\]/,
    );
    const emptySmall = tf.zeros([0, 8, 8, 3]);
    expect(() => resnet.apply(emptySmall)).toThrow(
      /^ResNet18: expected input of shape \[batch >= 1, /,
    );
    expect(() => getAttention(model, empty)).toThrow(
      /^getAttention: expected input of shape \[batch >= 1, 16, 16, 3\] \(images, .*\), got a batch of 0: \[0, 16, 16, 3\]/,
    );
    expect(() => attentionRollout(model, empty)).toThrow(/got a batch of 0: \[0, 16, 16, 3\]/);
    const data = { images: empty as tf.Tensor4D, labels: tf.zeros([0], 'int32') as tf.Tensor1D };
    await expect(evaluateModel(model, data)).rejects.toThrow(
      /^evaluateModel: expected input of shape \[batch >= 1, .*\] \(data\.images\), got a batch of 0/,
    );
    const trainer = new Trainer(model, { schedule: constantSchedule(1e-3) });
    await expect(trainer.trainEpoch(data, { batchSize: 4 })).rejects.toThrow(
      /^Trainer\.trainEpoch: expected input of shape \[batch >= 1, .*\] \(data\.images\), got a batch of 0/,
    );
    trainer.dispose();
    tf.dispose([empty, emptySmall, data.labels]);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
    resnet.dispose();
  });
});
