/**
 * The ViTConfig schema: every field validated (types, ranges, booleans, unknown keys, null
 * configs), own-property preset lookup, and the schema driving getConfig so that every field
 * survives a save -> load round trip.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { checkKnownKeys, ownEntry } from '../../src/config/schema';
import { ConfigError } from '../../src/errors';
import {
  countViTParams,
  createResNet18,
  createViT,
  getViTPreset,
  resolveViTConfig,
  VIT_CONFIG_FIELDS,
  VIT_CONFIG_SCHEMA,
  VisionTransformer,
  type ViTConfig,
} from '../../src/index';
import { setSizeLimits } from '../../src/models/limits';
import { useBackend } from '../helpers/backends';

/**
 * Two configs that between them give every field a valid non-default value (some fields
 * exclude each other, e.g. DeiT distillation needs the class token). When a field is added to
 * the schema, the coverage test fails until it is given a non-default value here.
 */
const CONFIGS: ViTConfig[] = [
  {
    imgSize: [12, 8],
    patchSize: [4, 2],
    inChans: 2,
    numClasses: 5,
    globalPool: 'avg',
    embedDim: 12,
    depth: 2,
    numHeads: 3,
    mlpRatio: 1.5,
    qkvBias: false,
    classToken: false,
    numRegTokens: 2,
    dropRate: 0.1,
    projDropRate: 0.2,
    attnDropRate: 0.3,
    dropPathRate: 0.4,
    initValues: 1e-5,
    normEps: 1e-5,
    posEmbed: 'learned2d',
  },
  {
    imgSize: 8,
    patchSize: 4,
    numClasses: 3,
    embedDim: 8,
    depth: 1,
    numHeads: 2,
    posEmbed: 'sincos',
    distilled: true,
    qkNorm: true,
    dynamicImgSize: true,
  },
];

describe('ViTConfig schema', () => {
  it('the test configs give every schema field a non-default value', () => {
    const defaults = resolveViTConfig({});
    const resolved = CONFIGS.map((c) => resolveViTConfig(c));
    for (const f of VIT_CONFIG_FIELDS) {
      expect(
        resolved.some((r) => JSON.stringify(r[f]) !== JSON.stringify(defaults[f])),
        `field ${f} needs a non-default value in CONFIGS`,
      ).toBe(true);
    }
  });

  it.each(CONFIGS.map((c, i) => [i, c] as const))(
    'getConfig saves every field and fromConfig restores it (config %i)',
    async (_i, fields) => {
      await useBackend('cpu');
      const layer = new VisionTransformer({ ...fields, name: 'v' });
      const config = layer.getConfig();
      for (const f of VIT_CONFIG_FIELDS) expect(config, f).toHaveProperty(f);
      expect(Object.keys(config).sort()).toEqual(
        ['name', 'trainable', ...VIT_CONFIG_FIELDS].sort(),
      );
      // JSON round trip as in model.json (tfjs writes snake_case keys; fromConfig gets camelCase).
      const restored = VisionTransformer.fromConfig(
        VisionTransformer,
        JSON.parse(JSON.stringify(config)),
      ) as VisionTransformer;
      expect(restored.config).toEqual(layer.config);
      // And through a whole saved model.
      const model = createViT(fields, {}, { seed: 1 });
      const artifacts = await new Promise<tf.io.ModelArtifacts>((resolve) => {
        void model.save(
          tf.io.withSaveHandler(async (a) => {
            resolve(a);
            return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
          }),
        );
      });
      const topology = JSON.stringify(artifacts.modelTopology);
      for (const snake of [
        'img_size',
        'num_reg_tokens',
        'drop_path_rate',
        'init_values',
        'norm_eps',
      ]) {
        expect(topology).toContain(`"${snake}"`);
      }
      expect(model.countParams()).toBe(countViTParams(fields));
      model.dispose();
    },
  );

  it('unknown keys, null and non-object configs are ConfigErrors naming the field', () => {
    expect(() => createViT({ numHead: 6 } as ViTConfig)).toThrow(
      /createViT: unknown config field 'numHead'; known config fields: imgSize, patchSize, .*normEps/,
    );
    expect(() => resolveViTConfig(null as unknown as ViTConfig)).toThrow(
      /VisionTransformer: config must be an object, got null/,
    );
    expect(() => resolveViTConfig([] as unknown as ViTConfig)).toThrow(/got an array/);
    expect(() => createViT('vit_tiny_patch16_224', null as unknown as ViTConfig)).toThrow(
      /createViT: config must be an object, got null/,
    );
    expect(() => createViT(null as unknown as ViTConfig)).toThrow(ConfigError);
    expect(() => new VisionTransformer({ dpeth: 2 } as ViTConfig)).toThrow(
      /unknown config field 'dpeth'/,
    );
    // Layer args are accepted by the layer, not by the plain config resolver.
    expect(new VisionTransformer({ name: 'x', trainable: false, depth: 1 }).name).toBe('x');
    expect(() => resolveViTConfig({ name: 'x' } as ViTConfig)).toThrow(
      /unknown config field 'name'/,
    );
    // An explicit undefined is "not given".
    expect(resolveViTConfig({ depth: undefined }).depth).toBe(12);
  });

  it('booleans, enums, numbers and sizes are type-checked', () => {
    expect(() => createViT({ qkvBias: 'no' as unknown as boolean })).toThrow(
      /qkvBias must be true or false, got "no"/,
    );
    expect(() => createViT({ classToken: 1 as unknown as boolean })).toThrow(
      /classToken must be true or false, got 1/,
    );
    expect(() => createViT({ globalPool: 'max' as 'avg' })).toThrow(
      /globalPool must be one of 'token', 'avg', got "max"/,
    );
    expect(() => createViT({ depth: 2.5 })).toThrow(/depth must be a positive integer, got 2.5/);
    expect(() => createViT({ depth: '12' as unknown as number })).toThrow(/got "12"/);
    expect(() => createViT({ numClasses: -1 })).toThrow(
      /numClasses must be an integer >= 0, got -1/,
    );
    expect(() => createViT({ mlpRatio: Number.NaN })).toThrow(
      /mlpRatio must be a finite number > 0/,
    );
    expect(() => createViT({ initValues: 0 })).toThrow(
      /initValues must be a finite number > 0 or null/,
    );
    expect(() => createViT({ dropRate: -0.1 })).toThrow(/dropRate must be a number in \[0, 1\)/);
    expect(() => createViT({ imgSize: [32] as unknown as number })).toThrow(
      /imgSize must be a positive integer or a \[height, width\] pair/,
    );
    expect(() => createViT({ patchSize: 0 })).toThrow(/patchSize must be/);
  });

  it('a tiny mlpRatio names mlpRatio, before any tensor exists', async () => {
    await useBackend('cpu');
    const before = tf.memory().numTensors;
    expect(() => createViT({ embedDim: 8, numHeads: 2, depth: 2, mlpRatio: 1e-9 })).toThrow(
      /createViT: mlpRatio must give an MLP hidden width floor\(embedDim \* mlpRatio\) >= 1, got mlpRatio 1e-9 \(embedDim 8\)/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('presets and option tables are looked up by own property only', () => {
    for (const name of ['toString', '__proto__', 'constructor', 'hasOwnProperty']) {
      expect(() => createViT(name)).toThrow(new RegExp(`unknown ViT preset '${name}'`));
      expect(() => getViTPreset(name)).toThrow(ConfigError);
    }
    expect(ownEntry({ a: 1 }, 'toString')).toBeUndefined();
    expect(ownEntry({ a: 1 }, 'a')).toBe(1);
  });

  it('factory options refuse unknown keys', () => {
    expect(() => createResNet18({ numClasess: 10 } as never)).toThrow(
      /createResNet18: unknown option 'numClasess'; known options: numClasses, stem, imgSize, inChans, seed/,
    );
    expect(() => createResNet18(null as never)).toThrow(/createResNet18: config must be an object/);
    expect(() => checkKnownKeys('f', { a: 1, b: undefined }, ['a'])).not.toThrow();
  });

  it('size limits refuse huge configs before any tensor exists, with the count in the message', async () => {
    await useBackend('cpu');
    const before = tf.memory().numTensors;
    const t0 = Date.now();
    expect(() => createViT({ depth: 1e6 })).toThrow(
      /createViT: the config has at least [\d,]+ parameters, above maxParams 3,000,000,000; pass \{ maxParams \}/,
    );
    expect(() => createViT({ embedDim: 1e7, numHeads: 1 })).toThrow(/above maxParams/);
    expect(() =>
      createViT({ imgSize: 4096, patchSize: 1, embedDim: 8, numHeads: 1, depth: 1 }),
    ).toThrow(/activation of .* elements per image, above maxActivations/);
    expect(() => new VisionTransformer({ depth: 1e6 })).toThrow(
      /VisionTransformer: the config has at least/,
    );
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(tf.memory().numTensors).toBe(before);
    // The limit is configurable per call and globally.
    expect(() => createViT('vit_tiny_patch16_224', {}, { maxParams: 1e6 })).toThrow(
      /at least 5,[\d,]+ parameters, above maxParams 1,000,000/,
    );
    setSizeLimits({ maxParams: 1e6 });
    try {
      expect(() => createViT('vit_tiny_patch16_224')).toThrow(/above maxParams 1,000,000/);
    } finally {
      setSizeLimits({ maxParams: 3e9 });
    }
    expect(() => createViT({}, {}, { maxParams: -1 })).toThrow(/maxParams must be a number > 0/);
  });

  it('every schema entry documents itself', () => {
    for (const [name, spec] of Object.entries(VIT_CONFIG_SCHEMA)) {
      expect(spec.doc.length, name).toBeGreaterThan(2);
    }
  });
});
