/**
 * Freezing that does what users mean (Keras semantics): `trainable` set on a composite layer
 * reaches every layer inside it, and a later setting on an inner layer wins for that layer.
 * Checked for every CompositeLayer subclass the package exports, through `trainableWeights`
 * and through `fit` (only the weights reported trainable move).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import * as api from '../../src/index';
import { CompositeLayer } from '../../src/layers/composite';
import { HybridEmbed } from '../../src/layers/hybrid_embed';
import { TransformerBlock } from '../../src/layers/transformer_block';
import { HybridVisionTransformer } from '../../src/models/hybrid';
import { ResNet18 } from '../../src/models/resnet';
import { VisionTransformer } from '../../src/models/vision_transformer';
import { describeBackends } from '../helpers/backends';

interface Case {
  /** Creates the composite layer (unbuilt). */
  make: (args?: { trainable?: boolean }) => tfl.layers.Layer;
  /** Input shape without the batch dimension. */
  inputShape: number[];
  /** Inner layers to unfreeze after freezing the parent: [description, getter]. */
  inner: Array<[string, (layer: tfl.layers.Layer) => tfl.layers.Layer]>;
}

const CASES: Record<string, Case> = {
  TransformerBlock: {
    make: (a) => new TransformerBlock({ name: 'block', dim: 8, numHeads: 2, ...a }),
    inputShape: [5, 8],
    inner: [
      ['mlp', (l) => (l as TransformerBlock).mlp],
      ['attn', (l) => (l as TransformerBlock).attn],
    ],
  },
  VisionTransformer: {
    make: (a) =>
      new VisionTransformer({
        name: 'vit',
        imgSize: 8,
        patchSize: 4,
        embedDim: 8,
        depth: 2,
        numHeads: 2,
        numClasses: 3,
        ...a,
      }),
    inputShape: [8, 8, 3],
    inner: [
      ['head', (l) => (l as VisionTransformer).head as tfl.layers.Layer],
      ['blocks/1', (l) => (l as VisionTransformer).blocks[1]],
      // A grandchild: its parent (blocks/0) stays frozen.
      ['blocks/0/mlp', (l) => (l as VisionTransformer).blocks[0].mlp],
    ],
  },
  HybridEmbed: {
    make: (a) =>
      new HybridEmbed({
        name: 'hybrid_embed',
        backbone: new ResNet18({
          name: 'backbone',
          stem: 'cifar',
          featuresOnly: true,
          outIndices: [1],
        }),
        imgSize: 8,
        embedDim: 8,
        ...a,
      }),
    inputShape: [8, 8, 3],
    inner: [
      ['backbone', (l) => (l as HybridEmbed).backbone],
      // A grandchild: the first basic block of the frozen backbone.
      ['backbone/layer1/0', (l) => ((l as HybridEmbed).backbone as ResNet18).blocks[0]],
    ],
  },
  HybridVisionTransformer: {
    make: (a) =>
      new HybridVisionTransformer({
        name: 'hybrid_vit',
        imgSize: 8,
        stem: 'cifar',
        backboneStages: 1,
        embedDim: 8,
        depth: 1,
        numHeads: 2,
        numClasses: 3,
        ...a,
      }),
    inputShape: [8, 8, 3],
    inner: [
      ['head', (l) => (l as HybridVisionTransformer).head as tfl.layers.Layer],
      [
        'patch_embed/backbone',
        (l) => ((l as HybridVisionTransformer).patchEmbed as unknown as HybridEmbed).backbone,
      ],
    ],
  },
  ResNet18: {
    make: (a) => new ResNet18({ name: 'resnet', stem: 'cifar', numClasses: 3, ...a }),
    inputShape: [8, 8, 3],
    inner: [
      ['fc', (l) => (l as ResNet18).fc as tfl.layers.Layer],
      ['layer4/1', (l) => (l as ResNet18).blocks[7]],
    ],
  },
};

const names = (ws: tfl.LayerVariable[]) => ws.map((w) => w.name).sort();
// BatchNorm running statistics move in training whatever `trainable` says (as in PyTorch and
// Keras before BN freezing); they are never trainable weights.
const learnable = (ws: tfl.LayerVariable[]) => ws.filter((w) => !w.name.includes('moving_'));

function wrap(layer: tfl.layers.Layer, inputShape: number[]): tfl.LayersModel {
  const x = tfl.input({ shape: inputShape });
  return tfl.model({ inputs: x, outputs: layer.apply(x) as tfl.SymbolicTensor });
}

it('every exported CompositeLayer subclass has a freezing case here', () => {
  const composites = Object.entries(api)
    .filter(([, v]) => typeof v === 'function' && v.prototype instanceof CompositeLayer)
    .map(([k]) => k)
    .sort();
  expect(composites).toEqual(Object.keys(CASES).sort());
});

describeBackends('trainable: parent then child', () => {
  for (const [className, c] of Object.entries(CASES)) {
    it(`${className}: freezing the parent, then unfreezing an inner layer, trains only that layer`, async () => {
      const before = tf.memory().numTensors;
      const layer = c.make();
      const model = wrap(layer, c.inputShape);
      const all = names(layer.weights.filter((w) => w.trainable || !w.name.includes('moving_')));
      expect(names(model.trainableWeights)).toEqual(names(learnable(layer.weights)));
      expect(all.length).toBeGreaterThan(0);

      // Parent off: nothing trains, every weight is reported non-trainable.
      layer.trainable = false;
      expect(model.trainableWeights).toHaveLength(0);
      expect(model.nonTrainableWeights).toHaveLength(layer.weights.length);

      for (const [label, get] of c.inner) {
        layer.trainable = false;
        const inner = get(layer);
        inner.trainable = true; // the child's (later) setting wins
        const expected = names(learnable(inner.weights));
        expect(expected.length, label).toBeGreaterThan(0);
        expect(names(model.trainableWeights), label).toEqual(expected);
        expect(model.trainableWeights.length + model.nonTrainableWeights.length, label).toBe(
          layer.weights.length,
        );
        // Setting the parent again overrides the child: all on, then all off.
        layer.trainable = true;
        expect(names(model.trainableWeights), label).toEqual(names(learnable(layer.weights)));
      }

      // fit after compile moves exactly the trainable weights.
      layer.trainable = false;
      const [label, get] = c.inner[0];
      get(layer).trainable = true;
      const optimizer = tf.train.sgd(0.5);
      model.compile({ optimizer, loss: 'meanSquaredError' });
      const trainable = new Set(model.trainableWeights.map((w) => w.name));
      const snapshot = new Map(
        learnable(layer.weights).map((w) => [w.name, Array.from(w.read().dataSync())]),
      );
      const xs = tf.randomNormal([2, ...c.inputShape], 0, 1, 'float32', 1);
      const outShape = (model.outputs[0].shape as number[]).slice(1);
      const ys = tf.randomNormal([2, ...outShape], 0, 1, 'float32', 2);
      await model.fit(xs, ys, { epochs: 1, batchSize: 2, verbose: 0 });
      const moved = learnable(layer.weights)
        .filter((w) => {
          const was = snapshot.get(w.name) as number[];
          const now = w.read().dataSync();
          return was.some((v, i) => v !== now[i]);
        })
        .map((w) => w.name)
        .sort();
      expect(moved, label).toEqual([...trainable].sort());
      xs.dispose();
      ys.dispose();
      optimizer.dispose();
      model.dispose();
      expect(tf.memory().numTensors).toBeLessThanOrEqual(before);
    });

    it(`${className}: a layer frozen before it is built builds frozen children`, () => {
      const layer = c.make({ trainable: false });
      const model = wrap(layer, c.inputShape);
      expect(model.trainableWeights).toHaveLength(0);
      expect(model.nonTrainableWeights).toHaveLength(layer.weights.length);
      const [label, get] = c.inner[0];
      get(layer).trainable = true;
      expect(names(model.trainableWeights), label).toEqual(names(learnable(get(layer).weights)));
      model.dispose();
    });
  }
});
