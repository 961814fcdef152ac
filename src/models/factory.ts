import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import { input, type LayersModel, model } from '@tensorflow/tfjs-layers';
import { checkKnownKeys, requireConfigObject } from '../config/schema';
import { ConfigError } from '../errors';
import { toPair } from '../geometry';
import { requireSeed, withSeed } from '../random';
import { guardEmptyBatch } from './batch_guard';
import { withSizeLimits } from './limits';
import { getViTPreset } from './presets';
import { ResNet18, type ResNetStem } from './resnet';
import { resolveViTConfig, VisionTransformer, type ViTConfig } from './vision_transformer';
import { checkViTSize } from './vit_size';

/** Build options shared by the model factories ({@link createViT}, {@link createResNet18}). */
export interface CreateModelOptions {
  /**
   * Seed of the initial weights (an integer in `[0, 2^32)`): the same seed gives bit-identical
   * weights on every backend. Default: unseeded (or the library seed set with `setSeed`).
   */
  seed?: number;
  /** Refuse configs with more parameters (default 3e9, see `setSizeLimits`). */
  maxParams?: number;
  /** Refuse configs with a larger per-image activation (default 2^31 elements). */
  maxActivations?: number;
}

const CREATE_MODEL_OPTION_KEYS = ['seed', 'maxParams', 'maxActivations'] as const;

function checkCreateModelOptions(owner: string, options: unknown): CreateModelOptions {
  const o = checkKnownKeys(
    owner,
    options,
    CREATE_MODEL_OPTION_KEYS,
    'option',
  ) as CreateModelOptions;
  if (o.seed !== undefined) requireSeed(owner, o.seed);
  return o;
}

/**
 * Builds a trainable `tf.LayersModel` holding one {@link VisionTransformer} layer named `vit`,
 * from a timm preset name (plus overrides) or from a full config.
 *
 * @example
 * const model = createViT('vit_tiny_patch16_224', { numClasses: 10, imgSize: 32, patchSize: 4 }, { seed: 7 });
 * model.compile({ optimizer: adamw({ learningRate: 1e-3 }), loss: softmaxCrossEntropy() });
 */
export function createViT(
  presetOrConfig: string | ViTConfig,
  overrides: ViTConfig = {},
  options: CreateModelOptions = {},
): LayersModel {
  const opts = checkCreateModelOptions('createViT', options);
  let name = 'vit';
  let base: ViTConfig;
  if (typeof presetOrConfig === 'string') {
    base = getViTPreset(presetOrConfig).config;
    name = presetOrConfig;
  } else if (presetOrConfig != null && typeof presetOrConfig === 'object') {
    base = presetOrConfig;
  } else {
    throw new ConfigError(
      `createViT: expected a preset name or a config object, got ${String(presetOrConfig)}`,
    );
  }
  requireConfigObject('createViT', overrides);
  const config = resolveViTConfig({ ...base, ...overrides }, { owner: 'createViT' });
  const limits = { maxParams: opts.maxParams, maxActivations: opts.maxActivations };
  withSizeLimits('createViT', limits, () => checkViTSize('createViT', config));
  // With dynamicImgSize the model takes any image size the patch divides.
  const inp = input({
    shape: config.dynamicImgSize
      ? [null, null, config.inChans]
      : [config.imgSize[0], config.imgSize[1], config.inChans],
    name: 'image',
  });
  return withSeed(opts.seed, () => {
    const vit = withSizeLimits(
      'createViT',
      limits,
      () => new VisionTransformer({ ...config, name: 'vit' }),
    );
    return guardEmptyBatch(model({ inputs: inp, outputs: vit.apply(inp) as SymbolicTensor, name }));
  });
}

/** Options of {@link createResNet18}. */
export interface CreateResNet18Options {
  /** Classes of the head. Default 1000 (10 is typical for CIFAR). */
  numClasses?: number;
  /** `'imagenet'` (default) or `'cifar'`. */
  stem?: ResNetStem;
  /** Input size, square or `[height, width]`. Default 224 for the ImageNet stem, 32 for CIFAR. */
  imgSize?: number | [number, number];
  /** Input channels. Default 3. */
  inChans?: number;
  /** Seed of the initial weights, as {@link CreateModelOptions.seed}. */
  seed?: number;
}

/**
 * Builds a trainable `tf.LayersModel` holding one {@link ResNet18} layer named `resnet18`.
 *
 * @example
 * const cifar = createResNet18({ numClasses: 10, stem: 'cifar' }); // 32x32 inputs
 */
export function createResNet18(options: CreateResNet18Options = {}): LayersModel {
  checkKnownKeys(
    'createResNet18',
    options,
    ['numClasses', 'stem', 'imgSize', 'inChans', 'seed'],
    'option',
  );
  if (options.seed !== undefined) requireSeed('createResNet18', options.seed);
  const stem = options.stem ?? 'imagenet';
  const [h, w] = toPair(
    'createResNet18',
    'imgSize',
    options.imgSize ?? (stem === 'cifar' ? 32 : 224),
  );
  const resnet = new ResNet18({
    name: 'resnet18',
    numClasses: options.numClasses,
    stem,
    inChans: options.inChans,
  });
  const inp = input({ shape: [h, w, resnet.inChans], name: 'image' });
  return withSeed(options.seed, () =>
    guardEmptyBatch(
      model({
        inputs: inp,
        outputs: resnet.apply(inp) as SymbolicTensor,
        name: `resnet18_${stem}`,
      }),
    ),
  );
}
