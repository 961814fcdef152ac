import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { createResNet18, createViT, freeze, unfreeze } from '../../src/index';
import { loadModel, saveModel } from '../../src/node';
import { describeBackends, maxAbsDiff } from '../helpers/backends';
import { TINY_VIT } from '../helpers/tiny_models';
import { randomizeWeights } from '../helpers/weights';

async function memoryRoundTrip(model: tfl.LayersModel): Promise<tfl.LayersModel> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!artifacts) throw new Error('nothing saved');
  return tfl.loadLayersModel(tf.io.fromMemory(artifacts));
}

const names = (m: tfl.LayersModel) => m.weights.map((w) => w.originalName);

describeBackends('save / load round trips', () => {
  it('ViT through tf.io.withSaveHandler / fromMemory: same outputs, names and config', async () => {
    const m = createViT({
      imgSize: 16,
      patchSize: 4,
      embedDim: 12,
      depth: 2,
      numHeads: 3,
      numClasses: 4,
      initValues: 0.1,
      numRegTokens: 1,
    });
    randomizeWeights(m.weights, 31);
    const x = tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 2);
    const y1 = m.predict(x) as tf.Tensor;
    const m2 = await memoryRoundTrip(m);
    const y2 = m2.predict(x) as tf.Tensor;
    expect(maxAbsDiff(y1, y2)).toBe(0);
    expect(names(m2)).toEqual(names(m));
    expect(m2.layers[1].getConfig()).toEqual(m.layers[1].getConfig());
    expect(m2.countParams()).toBe(m.countParams());
    tf.dispose([x, y1, y2]);
    m.dispose();
    m2.dispose();
  });

  it('ResNet18 (CIFAR) through saveModel / loadModel on disk keeps running statistics', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vit-ts-'));
    try {
      const m = createResNet18({ numClasses: 3, stem: 'cifar', imgSize: 8 });
      randomizeWeights(m.weights, 41, 0.1);
      const x = tf.randomNormal([1, 8, 8, 3], 0, 1, 'float32', 3);
      const y1 = m.predict(x) as tf.Tensor;
      await saveModel(m, dir);
      const m2 = await loadModel(dir);
      const y2 = m2.predict(x) as tf.Tensor;
      expect(maxAbsDiff(y1, y2)).toBe(0);
      expect(names(m2)).toEqual(names(m));
      tf.dispose([x, y1, y2]);
      m.dispose();
      m2.dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('saveModel / loadModel keep weights frozen inside the VisionTransformer (and ResNet BN stats apart)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vit-ts-'));
    try {
      const m = createViT({ ...TINY_VIT, depth: 2 });
      freeze(m, ['patchEmbed', 'embed', { blocks: [0] }]);
      const trainable = m.trainableWeights.map((w) => w.originalName);
      expect(trainable.length).toBeLessThan(m.weights.length);
      await saveModel(m, dir);
      const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
      expect(json.frozenWeights).toEqual(names(m).filter((n) => !trainable.includes(n)));
      const m2 = await loadModel(dir);
      expect(m2.trainableWeights.map((w) => w.originalName)).toEqual(trainable);
      // Unfreezing after a load works as on the original model.
      unfreeze(m2);
      expect(m2.trainableWeights.length).toBe(m.weights.length);
      m2.dispose();

      // A top-level layer frozen with tfjs' own flag (saved by tfjs) comes back frozen and the
      // list naming its weights still loads.
      const whole = createViT(TINY_VIT);
      (whole.layers[1] as tfl.layers.Layer).trainable = false;
      expect(whole.trainableWeights).toHaveLength(0);
      await saveModel(whole, dir);
      const wholeJson = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
      expect(wholeJson.frozenWeights).toHaveLength(whole.weights.length);
      const whole2 = await loadModel(dir);
      expect(whole2.trainableWeights).toHaveLength(0);
      whole.dispose();
      whole2.dispose();

      // Nothing frozen: no frozenWeights key (files of unfrozen models are unchanged), and a
      // ResNet's BatchNorm statistics are not "frozen" weights.
      const r = createResNet18({ numClasses: 3, stem: 'cifar', imgSize: 8 });
      await saveModel(r, dir);
      const rJson = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
      expect('frozenWeights' in rJson).toBe(false);
      r.dispose();

      // A frozenWeights list naming what the model does not have is refused, naming it.
      await saveModel(m, dir);
      const saved = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
      saved.frozenWeights = ['vit/no_such_weight'];
      await writeFile(join(dir, 'model.json'), JSON.stringify(saved));
      const before = tf.memory().numTensors;
      await expect(loadModel(dir)).rejects.toThrow(
        /frozenWeights names "vit\/no_such_weight", which is not a weight of the model/,
      );
      expect(tf.memory().numTensors).toBe(before);
      m.dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('loadModel reports a missing or broken directory clearly', async () => {
    await expect(loadModel('/nonexistent/vit-ts-model')).rejects.toThrow(
      /loadModel: cannot read \/nonexistent\/vit-ts-model\/model.json/,
    );
  });
});
