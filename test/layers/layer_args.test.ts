/**
 * Constructor args of every registered vit-ts layer: unknown keys, null / non-object args and
 * non-boolean booleans are ConfigErrors naming the layer; tfjs' own layer args (what getConfig
 * emits and fromConfig passes back) still pass, so getConfig -> fromConfig and whole-model
 * save -> load round trips keep working.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  input,
  type LayersModel,
  layers,
  loadLayersModel,
  model,
  type SymbolicTensor,
  sequential,
} from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { LAYER_ARG_KEYS } from '../../src/config/schema';
import { ConfigError, ModelFileError } from '../../src/errors';
import {
  BasicBlock,
  createHybridViT,
  createResNet18,
  HybridEmbed,
  HybridVisionTransformer,
  LayerNorm,
  Linear,
  MLP,
  MultiHeadAttention,
  PatchEmbed,
  ResNet18,
  TransformerBlock,
  VisionTransformer,
  ViTEmbedding,
} from '../../src/index';
import { CLASS_PREFIX, shortClassName } from '../../src/layers/register';
import { loadModel, saveModel } from '../../src/node';
import { describeBackends, seededValues, useBackend } from '../helpers/backends';
import { TINY_HYBRID } from '../helpers/tiny_models';

type AnyLayerClass = (new (
  args: never,
) => layers.Layer) & {
  className: string;
  fromConfig: typeof layers.Layer.fromConfig;
};

interface Case {
  cls: AnyLayerClass;
  /** Small valid args (a fresh object each call: a backbone layer cannot be shared). */
  args: () => Record<string, unknown>;
  /** Input shape without the batch axis, for the whole-model round trip. */
  inputShape: number[];
  /** Its boolean fields. */
  booleans: string[];
}

const backbone = () => new ResNet18({ featuresOnly: true, outIndices: [1], stem: 'cifar' });

const CASES: Case[] = [
  {
    cls: PatchEmbed,
    args: () => ({ imgSize: 8, patchSize: 4, inChans: 3, embedDim: 4 }),
    inputShape: [8, 8, 3],
    booleans: ['bias', 'dynamicImgSize'],
  },
  {
    cls: Linear,
    args: () => ({ inFeatures: 3, outFeatures: 2 }),
    inputShape: [5, 3],
    booleans: ['bias'],
  },
  {
    cls: MultiHeadAttention,
    args: () => ({ dim: 4, numHeads: 2 }),
    inputShape: [5, 4],
    booleans: ['qkvBias', 'qkNorm'],
  },
  { cls: LayerNorm, args: () => ({}), inputShape: [5, 4], booleans: [] },
  { cls: MLP, args: () => ({ inFeatures: 4 }), inputShape: [5, 4], booleans: [] },
  {
    cls: TransformerBlock,
    args: () => ({ dim: 4, numHeads: 2 }),
    inputShape: [5, 4],
    booleans: ['qkvBias', 'qkNorm'],
  },
  {
    cls: ViTEmbedding,
    args: () => ({ numPatches: 4, embedDim: 4 }),
    inputShape: [4, 4],
    booleans: ['classToken', 'distToken'],
  },
  {
    cls: HybridEmbed,
    args: () => ({ backbone: backbone(), imgSize: 8, embedDim: 4 }),
    inputShape: [8, 8, 3],
    booleans: ['bias'],
  },
  {
    cls: BasicBlock,
    args: () => ({ inChannels: 2, outChannels: 2 }),
    inputShape: [4, 4, 2],
    booleans: [],
  },
  {
    cls: ResNet18,
    args: () => ({ numClasses: 3, stem: 'cifar' }),
    inputShape: [8, 8, 3],
    booleans: ['featuresOnly'],
  },
  {
    cls: VisionTransformer,
    args: () => ({ imgSize: 8, patchSize: 4, embedDim: 4, depth: 1, numHeads: 2, numClasses: 2 }),
    inputShape: [8, 8, 3],
    booleans: ['qkvBias', 'classToken', 'distilled', 'qkNorm', 'dynamicImgSize'],
  },
  {
    cls: HybridVisionTransformer,
    args: () => ({ ...TINY_HYBRID }),
    inputShape: [8, 8, 3],
    booleans: ['qkvBias', 'classToken'],
  },
];

const name = (c: Case) => shortClassName(c.cls.className);

/** Every class registered under the vit-ts prefix that is a layer. */
function registeredLayerClasses(): string[] {
  const map = tf.serialization.SerializationMap.getMap().classNameMap;
  return Object.keys(map)
    .filter((k) => k.startsWith(`${CLASS_PREFIX}>`))
    .filter(
      (k) => (map[k][0] as unknown as { prototype: unknown }).prototype instanceof layers.Layer,
    )
    .sort();
}

async function saveToMemory(m: LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await m.save(
    tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return saved as tf.io.ModelArtifacts;
}

describe('layer constructor args', () => {
  it('every registered vit-ts layer class has a case here', () => {
    expect(CASES.map((c) => c.cls.className).sort()).toEqual(registeredLayerClasses());
  });

  it.each(CASES.map((c) => [name(c), c] as const))(
    '%s: an unknown key is a ConfigError naming the layer, the key and the allowed keys',
    (short, c) => {
      const make = () => new c.cls({ ...c.args(), numHead: 6 } as never);
      expect(make).toThrow(ConfigError);
      expect(make).toThrow(
        new RegExp(`^${short}: unknown config field 'numHead'; known config fields: `),
      );
      try {
        make();
      } catch (e) {
        const known = (e as Error).message.split('known config fields: ')[1].split(', ');
        // The layer's own fields and tfjs' layer args.
        for (const key of Object.keys(c.args())) expect(known).toContain(key);
        for (const key of LAYER_ARG_KEYS) expect(known).toContain(key);
      }
    },
  );

  it.each(CASES.map((c) => [name(c), c] as const))(
    '%s: null and non-object args are ConfigErrors',
    (short, c) => {
      expect(() => new c.cls(null as never)).toThrow(
        new RegExp(`^${short}: config must be an object, got null`),
      );
      expect(() => new c.cls(7 as never)).toThrow(
        new RegExp(`^${short}: config must be an object, got 7`),
      );
      expect(() => new c.cls([] as never)).toThrow(ConfigError);
    },
  );

  it.each(CASES.filter((c) => c.booleans.length > 0).map((c) => [name(c), c] as const))(
    '%s: booleans must be true or false',
    (short, c) => {
      for (const field of c.booleans) {
        for (const bad of ['no', 1, null]) {
          expect(
            () => new c.cls({ ...c.args(), [field]: bad } as never),
            `${field}: ${bad}`,
          ).toThrow(
            new RegExp(`^${short}: ${field} must be true or false, got ${JSON.stringify(bad)}`),
          );
        }
      }
    },
  );

  it.each(CASES.map((c) => [name(c), c] as const))(
    '%s: getConfig -> JSON -> fromConfig gives the same config, with tfjs layer args too',
    (_short, c) => {
      const layer = new c.cls({ ...c.args(), name: 'x', trainable: false } as never);
      const config = layer.getConfig();
      const restored = c.cls.fromConfig(
        c.cls as never,
        JSON.parse(JSON.stringify(config)),
      ) as layers.Layer;
      expect(restored.getConfig()).toEqual(config);
      expect(restored.trainable).toBe(false);
      // What tfjs' deserializer and a first layer of a Sequential add: all accepted.
      const withBase = {
        ...JSON.parse(JSON.stringify(config)),
        batchInputShape: [null, ...c.inputShape],
        dtype: 'float32',
        customObjects: {},
        weights: null,
      };
      const again = c.cls.fromConfig(c.cls as never, withBase) as layers.Layer;
      expect(again.batchInputShape).toEqual([null, ...c.inputShape]);
      const viaInputShape = new c.cls({
        ...c.args(),
        inputShape: c.inputShape,
        batchSize: 2,
        inputDType: 'float32',
      } as never);
      expect(viaInputShape.batchInputShape).toEqual([2, ...c.inputShape]);
    },
  );
});

describe('layer configs read from a model file', () => {
  it('an unknown key in a saved layer config fails loadModel with a ModelFileError naming it', async () => {
    await useBackend('cpu');
    const dir = await mkdtemp(join(tmpdir(), 'vit-ts-layer-args-'));
    try {
      const inp = input({ shape: [5, 3] });
      const m = model({
        inputs: inp,
        outputs: new Linear({ name: 'head', inFeatures: 3, outFeatures: 2 }).apply(
          inp,
        ) as SymbolicTensor,
      });
      await saveModel(m, dir);
      m.dispose();
      const jsonPath = join(dir, 'model.json');
      const json = JSON.parse(await readFile(jsonPath, 'utf8'));
      // tfjs nests the topology under model_config when it also saves a training config.
      const topology = json.modelTopology.model_config ?? json.modelTopology;
      const layerConfigs = topology.config.layers;
      const head = layerConfigs.find((l: { name: string }) => l.name === 'head');
      // Loads as saved (name, trainable, dtype... are tfjs layer args) ...
      (await loadModel(dir)).dispose();
      // ... but a key no vit-ts Linear reads is refused (tfjs turns snake_case into camelCase).
      head.config.init_mean = 0;
      await writeFile(jsonPath, JSON.stringify(json));
      const error = await loadModel(dir).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModelFileError);
      expect((error as Error).message).toMatch(
        /cannot be built: Linear: unknown config field 'initMean'; known config fields: inFeatures, outFeatures, bias, initStd, /,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('model factory configs', () => {
  it('createResNet18 and createHybridViT refuse unknown keys and null configs', () => {
    expect(() => createResNet18({ numClass: 10 } as never)).toThrow(
      /^createResNet18: unknown option 'numClass'; known options: numClasses, stem, imgSize, inChans, seed/,
    );
    expect(() => createResNet18(null as never)).toThrow(
      /^createResNet18: config must be an object, got null/,
    );
    expect(() => createHybridViT({ dpeth: 1 } as never)).toThrow(
      /^HybridVisionTransformer: unknown config field 'dpeth'; known config fields: imgSize, /,
    );
    expect(() => createHybridViT('vit_tiny_r18_s16_224', null as never)).toThrow(
      /^createHybridViT: config must be an object, got null/,
    );
    expect(() => createHybridViT({ stem: 'cifar', imgSize: 32, qkvBias: 'no' } as never)).toThrow(
      /^HybridVisionTransformer: qkvBias must be true or false, got "no"/,
    );
  });
});

describeBackends('layer args: whole-model save -> load round trip', () => {
  it.each(CASES.map((c) => [name(c), c] as const))(
    '%s in a functional model loads back with identical outputs',
    async (_short, c) => {
      const before = tf.memory().numTensors;
      const inp = input({ shape: c.inputShape });
      const m = model({
        inputs: inp,
        outputs: new c.cls(c.args() as never).apply(inp) as SymbolicTensor,
      });
      const x = tf.tensor(seededValues(2 * c.inputShape.reduce((a, b) => a * b, 1), 3), [
        2,
        ...c.inputShape,
      ]);
      const loaded = await loadLayersModel(tf.io.fromMemory(await saveToMemory(m)));
      const [a, b] = [m.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
      expect(b.shape).toEqual(a.shape);
      expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
      tf.dispose([x, a, b]);
      m.dispose();
      loaded.dispose();
      expect(tf.memory().numTensors).toBe(before);
    },
  );

  it('a vit-ts layer first in a Sequential (inputShape -> batchInputShape, dtype) loads back', async () => {
    const seq = sequential({
      layers: [
        new PatchEmbed({ inputShape: [8, 8, 3], imgSize: 8, patchSize: 4, embedDim: 4 }),
        new LayerNorm({}),
      ],
    });
    const artifacts = await saveToMemory(seq);
    const topology = JSON.stringify(artifacts.modelTopology);
    expect(topology).toContain('"batch_input_shape":[null,8,8,3]');
    const loaded = await loadLayersModel(tf.io.fromMemory(artifacts));
    const x = tf.ones([1, 8, 8, 3]);
    const [a, b] = [seq.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
    expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
    tf.dispose([x, a, b]);
    seq.dispose();
    loaded.dispose();
  });
});
