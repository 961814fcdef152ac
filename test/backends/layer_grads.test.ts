import * as tf from '@tensorflow/tfjs-core';
import type { layers } from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import {
  BasicBlock,
  LayerNorm,
  Linear,
  MLP,
  MultiHeadAttention,
  PatchEmbed,
  TransformerBlock,
  VisionTransformer,
  ViTEmbedding,
} from '../../src/index';
import { describeBackends, onBackend, relL2Arrays, seededValues } from '../helpers/backends';

/**
 * `tf.grad` runs through every vit-ts layer on every backend: no op without a gradient (einsum,
 * broadcasting matMul) and no kernel missing (wasm's Conv2DBackpropFilter is supplied by
 * vit-ts). Gradients with respect to the input and every trainable weight must be finite, not
 * all zero, and (off cpu) equal cpu's within 1e-4 relative L2.
 */
interface BlockCase {
  name: string;
  make: () => layers.Layer;
  input: number[];
  /** Call with `{training: true}` (default true). */
  training?: boolean;
}

const CASES: BlockCase[] = [
  {
    name: 'PatchEmbed',
    make: () => new PatchEmbed({ imgSize: 8, patchSize: 4, inChans: 3, embedDim: 8 }),
    input: [2, 8, 8, 3],
  },
  {
    name: 'ViTEmbedding (+1 register token)',
    make: () => new ViTEmbedding({ numPatches: 4, embedDim: 8, numRegTokens: 1 }),
    input: [2, 4, 8],
  },
  {
    name: 'MultiHeadAttention',
    make: () => new MultiHeadAttention({ dim: 8, numHeads: 2 }),
    input: [2, 5, 8],
  },
  { name: 'MLP', make: () => new MLP({ inFeatures: 8 }), input: [2, 5, 8] },
  { name: 'LayerNorm', make: () => new LayerNorm({}), input: [2, 5, 8] },
  { name: 'Linear', make: () => new Linear({ inFeatures: 8, outFeatures: 3 }), input: [2, 5, 8] },
  {
    name: 'TransformerBlock (LayerScale)',
    make: () => new TransformerBlock({ dim: 8, numHeads: 2, initValues: 0.1 }),
    input: [2, 5, 8],
  },
  {
    name: 'VisionTransformer (token pool)',
    make: () =>
      new VisionTransformer({
        imgSize: 8,
        patchSize: 4,
        embedDim: 8,
        depth: 2,
        numHeads: 2,
        numClasses: 3,
      }),
    input: [2, 8, 8, 3],
  },
  {
    name: 'VisionTransformer (avg pool, fc_norm)',
    make: () =>
      new VisionTransformer({
        imgSize: 8,
        patchSize: 4,
        embedDim: 8,
        depth: 1,
        numHeads: 2,
        numClasses: 3,
        globalPool: 'avg',
      }),
    input: [2, 8, 8, 3],
  },
  {
    name: 'BasicBlock (stride 2, shortcut), training',
    make: () => new BasicBlock({ inChannels: 4, outChannels: 8, stride: 2 }),
    input: [2, 8, 8, 4],
  },
  {
    name: 'BasicBlock (identity shortcut), inference',
    make: () => new BasicBlock({ inChannels: 4, outChannels: 4 }),
    input: [2, 6, 6, 4],
    training: false,
  },
  // Whole ResNet18s (11 M weights) are differentiated by test/train/fit.test.ts on every backend;
  // here they would cost about 40 s per backend on cpu.
];

/** Deterministic weights: scales near 1 for norm scales and running variances, small elsewhere. */
function setSeededWeights(layer: layers.Layer): void {
  const values = layer.weights.map((w, i) => {
    const u = seededValues(
      (w.shape as number[]).reduce((a, b) => a * b, 1),
      100 + i,
    );
    const nearOne = /(gamma|moving_variance)(_\d+)?$/.test(w.originalName);
    return tf.tensor(
      u.map((v) => (nearOne ? 1 + v : 0.5 * v)),
      w.shape as number[],
    );
  });
  layer.setWeights(values);
  tf.dispose(values);
}

let inputCount = 0;

/** Gradients of `sum(layer(x) * r)` with respect to x and each trainable weight, as arrays. */
async function blockGrads(c: BlockCase): Promise<{ names: string[]; grads: Float32Array[] }> {
  const before = tf.memory().numTensors;
  const layer = c.make();
  const size = c.input.reduce((a, b) => a * b, 1);
  // A variable too, so one variableGrads call differentiates input and weights (tidy frees the
  // initial tensor; variables survive it).
  const x = tf.tidy(() =>
    tf.variable(tf.tensor(seededValues(size, 1), c.input), true, `x${++inputCount}`),
  );
  tf.dispose(layer.apply(x) as tf.Tensor); // builds the layer
  setSeededWeights(layer);
  const weights = layer.trainableWeights;
  const vars = [x, ...weights.map((w) => w.read() as tf.Variable)];
  const { value, grads } = tf.variableGrads(() => {
    const y = layer.apply(x, { training: c.training ?? true }) as tf.Tensor;
    const r = tf.tensor(seededValues(y.size, 2), y.shape);
    return tf.sum(tf.mul(y, r)) as tf.Scalar;
  }, vars);
  // Without the layer's own (auto-numbered) name: `resnet18_5/layer1/0/conv1/kernel` -> `layer1/...`.
  const names = ['input', ...weights.map((w) => w.originalName.split('/').slice(1).join('/'))];
  const out = await Promise.all(
    vars.map(async (v) => (await grads[v.name].data()) as Float32Array),
  );
  tf.dispose([value, ...Object.values(grads), x]);
  layer.dispose();
  expect(tf.memory().numTensors).toBe(before);
  return { names, grads: out };
}

const cpuGrads = new Map<string, Promise<{ names: string[]; grads: Float32Array[] }>>();

describeBackends('tf.grad through every layer', (backend) => {
  for (const c of CASES) {
    it(`${c.name}: finite, non-zero gradients${backend === 'cpu' ? '' : ' equal to cpu (1e-4)'}`, async () => {
      const got = await blockGrads(c);
      expect(got.names.length).toBeGreaterThan(1);
      got.grads.forEach((g, i) => {
        const norm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
        expect(Number.isFinite(norm), `${got.names[i]} finite`).toBe(true);
        expect(norm, `${got.names[i]} non-zero`).toBeGreaterThan(0);
      });
      if (backend === 'cpu') return;
      if (!cpuGrads.has(c.name))
        cpuGrads.set(
          c.name,
          onBackend('cpu', () => blockGrads(c)),
        );
      const ref = await (cpuGrads.get(c.name) as Promise<{
        names: string[];
        grads: Float32Array[];
      }>);
      expect(got.names).toEqual(ref.names);
      got.grads.forEach((g, i) => {
        expect(relL2Arrays(g, ref.grads[i]), `${got.names[i]} vs cpu`).toBeLessThan(1e-4);
      });
    });
  }
});
