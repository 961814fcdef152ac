/**
 * Hybrid CNN + ViT (timm's `vision_transformer_hybrid`): a CNN makes the tokens, a ViT reads
 * them. {@link HybridVisionTransformer} is a {@link VisionTransformer} whose `patch_embed` is a
 * {@link HybridEmbed}; {@link createHybridViT} builds one from a config or a preset.
 */
import type { serialization } from '@tensorflow/tfjs-core';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import { input, layers, model } from '@tensorflow/tfjs-layers';
import {
  type ConfigSchema,
  checkKnownKeys,
  LAYER_ARG_KEYS,
  requireConfigObject,
  validateField,
} from '../config/schema';
import { ConfigError } from '../errors';
import { numPrefixTokens, type TokenGeometry, toPair } from '../geometry';
import {
  backboneOutputShape,
  deserializeLayer,
  HybridEmbed,
  serializeLayer,
} from '../layers/hybrid_embed';
import { registerLayer, withDefaultName } from '../layers/register';
import type { LayerArgs } from '../tfjs_types';
import { guardEmptyBatch } from './batch_guard';
import { IMAGENET_NORMALIZATION, type Normalization } from './presets';
import { ResNet18, type ResNetStem, resNetFeatureSize } from './resnet';
import {
  type ResolvedViTConfig,
  resolveViTConfig,
  VIT_CONFIG_FIELDS,
  VisionTransformer,
  type ViTConfig,
} from './vision_transformer';

/** Name of a CNN vit-ts builds as a hybrid backbone. */
export type HybridBackboneName = 'resnet18';

/**
 * Architecture of a hybrid CNN + ViT: every {@link ViTConfig} field plus the backbone.
 * `patchSize` applies to the backbone's feature map (default 1: one token per cell), as in
 * timm's hybrid models.
 */
export interface HybridViTConfig extends ViTConfig {
  /**
   * The CNN: `'resnet18'` (torchvision's ResNet18 trunk, see `backboneStages` and `stem`) or any
   * `tf.layers` layer / `tf.LayersModel` mapping NHWC images to one NHWC feature map.
   * Default `'resnet18'`.
   */
  backbone?: HybridBackboneName | layers.Layer;
  /**
   * ResNet18 trunk depth: N keeps `conv1`, `bn1` and `layer1` .. `layerN` (1: stride 4, 64
   * channels; 2: stride 8, 128; 3: stride 16, 256; 4: stride 32, 512 with the ImageNet stem;
   * strides 1, 2, 4, 8 with the CIFAR stem). Default 3. Only for `backbone: 'resnet18'`.
   */
  backboneStages?: number;
  /** ResNet18 stem, `'imagenet'` (default) or `'cifar'`. Only for `backbone: 'resnet18'`. */
  stem?: ResNetStem;
}

/** Configuration of the {@link HybridVisionTransformer} layer: the architecture plus layer args. */
export interface HybridVisionTransformerArgs extends HybridViTConfig, LayerArgs {}

/** A hybrid config with every field resolved. */
export interface ResolvedHybridViTConfig {
  /** The ViT part (its `patchSize` is on the feature map). */
  vit: ResolvedViTConfig;
  /** `'resnet18'` or the user's layer. */
  backbone: HybridBackboneName | layers.Layer;
  /** ResNet18 trunk depth; null for a user backbone. */
  backboneStages: number | null;
  /** ResNet18 stem; null for a user backbone. */
  stem: ResNetStem | null;
  /** The backbone's feature map `[h, w, C]` for `imgSize` images. */
  featureShape: [number, number, number];
  /** Token grid `[h / p, w / p]`. */
  gridSize: [number, number];
}

/**
 * Schema of the fields a hybrid config adds to {@link ViTConfig} (validation; `backbone` also
 * accepts a layer). `backboneStages` and `stem` apply to `backbone: 'resnet18'` only.
 */
export const HYBRID_CONFIG_SCHEMA = {
  backbone: {
    kind: 'custom',
    default: 'resnet18',
    doc: "'resnet18' or a tf.layers layer / tf.LayersModel giving one NHWC feature map",
    /** Accepts `'resnet18'` or a layer; throws a `ConfigError` naming the field otherwise. */
    validate: (owner: string, name: string, value: unknown) => {
      if (value === 'resnet18' || value instanceof layers.Layer) return value;
      throw new ConfigError(
        `${owner}: ${name} must be 'resnet18' or a tf.layers layer / tf.LayersModel, got ${typeof value === 'string' ? `'${value}'` : String(value)}`,
      );
    },
  },
  backboneStages: {
    kind: 'int',
    min: 1,
    max: 4,
    default: 3,
    doc: 'ResNet18 trunk depth: conv1 .. layerN',
  },
  stem: { kind: 'enum', values: ['imagenet', 'cifar'], default: 'imagenet', doc: 'ResNet18 stem' },
} as const satisfies ConfigSchema;

/** Fields a hybrid config adds to {@link ViTConfig}. */
export const HYBRID_CONFIG_FIELDS = Object.keys(HYBRID_CONFIG_SCHEMA) as Array<
  keyof typeof HYBRID_CONFIG_SCHEMA
>;

const RESNET_CHANNELS = [64, 64, 128, 256, 512];

/** Splits a hybrid config into the ViT part (patchSize defaulting to 1) and the backbone part. */
function splitHybrid(
  owner: string,
  config: HybridViTConfig & Record<string, unknown>,
  extraKnown: readonly string[],
): {
  vit: ViTConfig & Record<string, unknown>;
  hybrid: Pick<HybridViTConfig, 'backbone' | 'backboneStages' | 'stem'>;
} {
  checkKnownKeys(owner, config, [...VIT_CONFIG_FIELDS, ...HYBRID_CONFIG_FIELDS, ...extraKnown]);
  const { backbone, backboneStages, stem, ...vit } = config;
  return {
    vit: { ...vit, patchSize: vit.patchSize ?? 1 },
    hybrid: { backbone, backboneStages, stem },
  };
}

/**
 * Fills defaults and validates a hybrid config (unknown fields, backbone, stages, stem, that
 * the feature map divides into patches), throwing a {@link ConfigError} that names the field.
 * Builds no layer and allocates no tensors.
 */
export function resolveHybridViTConfig(config: HybridViTConfig = {}): ResolvedHybridViTConfig {
  const o = 'HybridVisionTransformer';
  const { vit: vitPart, hybrid } = splitHybrid(
    o,
    config as HybridViTConfig & Record<string, unknown>,
    [],
  );
  // patchSize applies to the feature map, not to the image: checked below, after the backbone.
  const vit: ResolvedViTConfig = {
    ...resolveViTConfig({ ...vitPart, patchSize: 1 }, { owner: o }),
    patchSize: toPair(o, 'patchSize', vitPart.patchSize ?? 1),
  };
  if (vit.dynamicImgSize) {
    throw new ConfigError(
      `${o}: dynamicImgSize is not supported by hybrid models (the backbone's feature map is sized for imgSize), got dynamicImgSize: true`,
    );
  }
  const field = <K extends keyof typeof HYBRID_CONFIG_SCHEMA>(k: K) =>
    validateField(o, k, HYBRID_CONFIG_SCHEMA[k], hybrid[k]);
  const backbone = field('backbone') as HybridBackboneName | layers.Layer;
  let featureShape: [number, number, number];
  let backboneStages: number | null = null;
  let stem: ResNetStem | null = null;
  if (backbone === 'resnet18') {
    backboneStages = field('backboneStages') as number;
    stem = field('stem') as ResNetStem;
    const [h, w] = resNetFeatureSize(vit.imgSize, stem, backboneStages) as [number, number];
    featureShape = [h, w, RESNET_CHANNELS[backboneStages] as number];
  } else {
    for (const f of ['backboneStages', 'stem'] as const) {
      if (hybrid[f] != null) {
        throw new ConfigError(
          `${o}: ${f} applies to backbone 'resnet18' only; the backbone is the layer '${backbone.name}' (got ${f}: ${JSON.stringify(hybrid[f])})`,
        );
      }
    }
    featureShape = backboneOutputShape(backbone, vit.imgSize, vit.inChans, o);
  }
  const [h, w] = featureShape;
  const [ph, pw] = vit.patchSize;
  if (h < 1 || w < 1 || h % ph !== 0 || w % pw !== 0) {
    throw new ConfigError(
      `${o}: the backbone's feature map [${h}, ${w}] (for imgSize [${vit.imgSize.join(', ')}]) must be divisible by patchSize [${ph}, ${pw}]`,
    );
  }
  return { vit, backbone, backboneStages, stem, featureShape, gridSize: [h / ph, w / pw] };
}

/**
 * A hybrid CNN + Vision Transformer as one layer (timm's `VisionTransformer` with a
 * `HybridEmbed`): `[B, H, W, C]` images -> CNN feature map `[B, h, w, C']` -> projection to
 * `[B, h * w, D]` tokens -> class token + position embedding -> blocks -> norm -> head.
 *
 * It is a {@link VisionTransformer} (attention maps, rollout, `loadPretrained` with
 * `from: 'timm'`, `exportWeights` all work); `patch_embed` is a {@link HybridEmbed} whose
 * backbone is a ResNet18 trunk named `backbone` or the user's layer. Build a ready model with
 * {@link createHybridViT}.
 */
export class HybridVisionTransformer extends VisionTransformer {
  /** @nocollapse */
  static override readonly className: string = 'VitTs>HybridVisionTransformer';
  /** The resolved backbone part of the config. */
  readonly hybrid: ResolvedHybridViTConfig;
  private readonly tokenizer: HybridEmbed;

  constructor(args: HybridVisionTransformerArgs = {}) {
    const named = withDefaultName(
      requireConfigObject('HybridVisionTransformer', args) as HybridVisionTransformerArgs,
      'hybrid_vit',
    );
    const { vit } = splitHybrid(
      'HybridVisionTransformer',
      named as HybridViTConfig & Record<string, unknown>,
      LAYER_ARG_KEYS,
    );
    const config: Record<string, unknown> = {};
    for (const k of [...VIT_CONFIG_FIELDS, ...HYBRID_CONFIG_FIELDS]) {
      const v = (named as Record<string, unknown>)[k];
      if (v !== undefined) config[k] = v;
    }
    const hybrid = resolveHybridViTConfig(config as HybridViTConfig);
    // The base class checks patchSize against the image; here it applies to the feature map
    // (checked above), so the base resolves with patch 1 and gets the real config after.
    super({ ...vit, patchSize: 1 });
    (this as { config: ResolvedViTConfig }).config = hybrid.vit;
    this.hybrid = hybrid;
    const h = this.hybrid;
    const backbone =
      h.backbone === 'resnet18'
        ? new ResNet18({
            name: 'backbone',
            featuresOnly: true,
            outIndices: [h.backboneStages as number],
            stem: h.stem as ResNetStem,
            inChans: h.vit.inChans,
          })
        : h.backbone;
    this.tokenizer = new HybridEmbed({
      name: 'patch_embed',
      backbone,
      imgSize: h.vit.imgSize,
      inChans: h.vit.inChans,
      patchSize: h.vit.patchSize,
      embedDim: h.vit.embedDim,
    });
  }

  /** Token grid on the backbone's feature map, prefix tokens and sequence length. */
  override get geometry(): TokenGeometry {
    const [gh, gw] = this.hybrid.gridSize;
    const prefix = numPrefixTokens({ ...this.hybrid.vit, distToken: this.hybrid.vit.distilled });
    return {
      gridSize: [gh, gw],
      numPatches: gh * gw,
      numPrefixTokens: prefix,
      numTokens: prefix + gh * gw,
    };
  }

  /** The {@link HybridEmbed} (CNN + projection), named `patch_embed`. */
  protected override createPatchEmbed(): HybridEmbed {
    return this.tokenizer;
  }

  override getConfig(): serialization.ConfigDict {
    const h = this.hybrid;
    return {
      ...super.getConfig(),
      ...(h.backbone === 'resnet18'
        ? { backbone: 'resnet18', backboneStages: h.backboneStages, stem: h.stem }
        : { backbone: serializeLayer(h.backbone) }),
    };
  }

  /** Rebuilds a user backbone from its `{ className, config }` first. */
  static override fromConfig<T extends serialization.Serializable>(
    cls: serialization.SerializableConstructor<T>,
    config: serialization.ConfigDict,
  ): T {
    // tfjs' deserializer may pass its custom-object table inside the config.
    const { customObjects: _ignored, ...rest } = config;
    const b = rest['backbone'];
    const backbone =
      b != null && typeof b === 'object'
        ? deserializeLayer(b, 'HybridVisionTransformer', 'backbone')
        : b;
    return new cls({ ...rest, backbone } as unknown as serialization.ConfigDict);
  }
}
registerLayer(HybridVisionTransformer);

/** A named hybrid architecture: its config, its exact parameter count and preprocessing. */
export interface HybridViTPreset {
  /** Preset name (`vit_<size>_r18[_cifar]_s<stride>_<imgSize>`). */
  name: string;
  /** Architecture. */
  config: Required<
    Pick<
      HybridViTConfig,
      | 'imgSize'
      | 'patchSize'
      | 'embedDim'
      | 'depth'
      | 'numHeads'
      | 'mlpRatio'
      | 'numClasses'
      | 'backboneStages'
      | 'stem'
    >
  > & { backbone: HybridBackboneName };
  /**
   * Parameters (PyTorch's `sum(p.numel())`, BatchNorm running statistics excluded; checked
   * against a PyTorch build of the same model by the test suite).
   */
  params: number;
  /** Input normalization (the ResNet trunk follows torchvision: ImageNet statistics). */
  normalization: Normalization;
}

function hybridPreset(
  name: string,
  imgSize: number,
  stem: ResNetStem,
  embedDim: number,
  numHeads: number,
  numClasses: number,
  params: number,
): HybridViTPreset {
  return {
    name,
    config: {
      backbone: 'resnet18',
      backboneStages: 3,
      stem,
      imgSize,
      patchSize: 1,
      embedDim,
      depth: 12,
      numHeads,
      mlpRatio: 4,
      numClasses,
    },
    params,
    normalization: IMAGENET_NORMALIZATION,
  };
}

/**
 * Hybrid presets: ViT-Ti and ViT-S (12 blocks) on a ResNet18 trunk to `layer3` (stride 16, 256
 * channels, 14 x 14 tokens at 224 px), and ViT-Ti on a CIFAR-stem trunk for 32 px images
 * (stride 4, 8 x 8 tokens, 10 classes). Data only: {@link createHybridViT} turns one into a model.
 */
export const HYBRID_VIT_PRESETS = {
  vit_tiny_r18_s16_224: hybridPreset(
    'vit_tiny_r18_s16_224',
    224,
    'imagenet',
    192,
    3,
    1000,
    8_401_896,
  ),
  vit_small_r18_s16_224: hybridPreset(
    'vit_small_r18_s16_224',
    224,
    'imagenet',
    384,
    6,
    1000,
    24_636_840,
  ),
  vit_tiny_r18_cifar_s4_32: hybridPreset(
    'vit_tiny_r18_cifar_s4_32',
    32,
    'cifar',
    192,
    3,
    10,
    8_177_802,
  ),
} as const satisfies Record<string, HybridViTPreset>;

/** A name in {@link HYBRID_VIT_PRESETS}. */
export type HybridViTPresetName = keyof typeof HYBRID_VIT_PRESETS;

/** Looks up a hybrid preset, throwing a {@link ConfigError} that lists the known names. */
export function getHybridViTPreset(name: string): HybridViTPreset {
  const p = Object.hasOwn(HYBRID_VIT_PRESETS, name)
    ? (HYBRID_VIT_PRESETS as Record<string, HybridViTPreset>)[name]
    : undefined;
  if (p == null) {
    throw new ConfigError(
      `unknown hybrid ViT preset '${name}'; known presets: ${Object.keys(HYBRID_VIT_PRESETS).join(', ')}`,
    );
  }
  return p;
}

/**
 * Builds a trainable `tf.LayersModel` holding one {@link HybridVisionTransformer} layer named
 * `vit`, from a hybrid preset name (plus overrides) or from a config. Unknown fields throw a
 * {@link ConfigError} naming them.
 *
 * @example
 * // ViT-Ti on a ResNet18 trunk to layer3: 224 px -> 14 x 14 tokens of 256 channels -> D 192
 * const model = createHybridViT({ backbone: 'resnet18', backboneStages: 3, imgSize: 224,
 *   embedDim: 192, depth: 12, numHeads: 3, numClasses: 10 });
 * const cifar = createHybridViT('vit_tiny_r18_cifar_s4_32');
 */
export function createHybridViT(
  presetOrConfig: string | HybridViTConfig,
  overrides: HybridViTConfig = {},
): LayersModel {
  let name = 'hybrid_vit';
  let base: HybridViTConfig;
  if (typeof presetOrConfig === 'string') {
    base = getHybridViTPreset(presetOrConfig).config;
    name = presetOrConfig;
  } else if (presetOrConfig != null && typeof presetOrConfig === 'object') {
    base = presetOrConfig;
  } else {
    throw new ConfigError(
      `createHybridViT: expected a preset name or a config object, got ${String(presetOrConfig)}`,
    );
  }
  requireConfigObject('createHybridViT', overrides);
  const config = { ...base, ...overrides };
  const resolved = resolveHybridViTConfig(config);
  const [h, w] = toPair('createHybridViT', 'imgSize', resolved.vit.imgSize);
  const inp = input({ shape: [h, w, resolved.vit.inChans], name: 'image' });
  const vit = new HybridVisionTransformer({ ...config, name: 'vit' });
  return guardEmptyBatch(model({ inputs: inp, outputs: vit.apply(inp) as SymbolicTensor, name }));
}
