import { ownEntry } from '../config/schema';
import { ConfigError } from '../errors';
import type { ViTConfig } from './vision_transformer';

/** Input normalization a checkpoint was trained with (per channel, RGB). */
export interface Normalization {
  mean: [number, number, number];
  std: [number, number, number];
}

/** timm's original ViT weights (augreg) use 0.5 / 0.5. */
export const INCEPTION_NORMALIZATION: Normalization = {
  mean: [0.5, 0.5, 0.5],
  std: [0.5, 0.5, 0.5],
};
/** ImageNet statistics, used by torchvision and DeiT weights. */
export const IMAGENET_NORMALIZATION: Normalization = {
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

/** A named architecture: its config, the timm parameter count and preprocessing. */
export interface ViTPreset {
  /** timm model name. */
  name: string;
  /** Architecture. */
  config: Required<
    Pick<
      ViTConfig,
      'imgSize' | 'patchSize' | 'embedDim' | 'depth' | 'numHeads' | 'mlpRatio' | 'numClasses'
    >
  > &
    Pick<ViTConfig, 'distilled'>;
  /** Parameter count of timm's model with 1000 classes (checked by the test suite). */
  params: number;
  /** Normalization of timm's default pretrained weights for this name. */
  normalization: Normalization;
}

/** The fields that tell one plain ViT preset from another. */
interface PresetSpec {
  name: string;
  patchSize: number;
  embedDim: number;
  depth: number;
  numHeads: number;
  /** timm's parameter count at 224 px with 1000 classes. */
  params: number;
}

/** A 224 px, 1000-class, MLP-ratio-4 ViT preset with the original (Inception) normalization. */
function preset({ name, patchSize, embedDim, depth, numHeads, params }: PresetSpec): ViTPreset {
  return {
    name,
    config: { imgSize: 224, patchSize, embedDim, depth, numHeads, mlpRatio: 4, numClasses: 1000 },
    params,
    normalization: INCEPTION_NORMALIZATION,
  };
}

/** DeiT presets (Touvron et al. 2021): ViT shapes, ImageNet normalization, optional distillation. */
function deit(
  name: string,
  embedDim: number,
  numHeads: number,
  distilled: boolean,
  params: number,
): ViTPreset {
  const base = preset({ name, patchSize: 16, embedDim, depth: 12, numHeads, params });
  return {
    ...base,
    config: distilled ? { ...base.config, distilled: true } : base.config,
    normalization: IMAGENET_NORMALIZATION,
  };
}

/**
 * Vision Transformer presets keyed by timm name. Data only: `createViT` turns one into a model.
 * Parameter counts are timm's (224 px, 1000 classes).
 */
export const VIT_PRESETS = {
  vit_tiny_patch16_224: preset({
    name: 'vit_tiny_patch16_224',
    patchSize: 16,
    embedDim: 192,
    depth: 12,
    numHeads: 3,
    params: 5_717_416,
  }),
  vit_small_patch16_224: preset({
    name: 'vit_small_patch16_224',
    patchSize: 16,
    embedDim: 384,
    depth: 12,
    numHeads: 6,
    params: 22_050_664,
  }),
  vit_base_patch16_224: preset({
    name: 'vit_base_patch16_224',
    patchSize: 16,
    embedDim: 768,
    depth: 12,
    numHeads: 12,
    params: 86_567_656,
  }),
  vit_large_patch16_224: preset({
    name: 'vit_large_patch16_224',
    patchSize: 16,
    embedDim: 1024,
    depth: 24,
    numHeads: 16,
    params: 304_326_632,
  }),
  vit_huge_patch14_224: preset({
    name: 'vit_huge_patch14_224',
    patchSize: 14,
    embedDim: 1280,
    depth: 32,
    numHeads: 16,
    params: 632_045_800,
  }),
  vit_small_patch32_224: preset({
    name: 'vit_small_patch32_224',
    patchSize: 32,
    embedDim: 384,
    depth: 12,
    numHeads: 6,
    params: 22_878_952,
  }),
  vit_base_patch32_224: preset({
    name: 'vit_base_patch32_224',
    patchSize: 32,
    embedDim: 768,
    depth: 12,
    numHeads: 12,
    params: 88_224_232,
  }),
  vit_base_patch8_224: preset({
    name: 'vit_base_patch8_224',
    patchSize: 8,
    embedDim: 768,
    depth: 12,
    numHeads: 12,
    params: 86_576_872,
  }),
  deit_tiny_patch16_224: deit('deit_tiny_patch16_224', 192, 3, false, 5_717_416),
  deit_small_patch16_224: deit('deit_small_patch16_224', 384, 6, false, 22_050_664),
  deit_base_patch16_224: deit('deit_base_patch16_224', 768, 12, false, 86_567_656),
  deit_tiny_distilled_patch16_224: deit('deit_tiny_distilled_patch16_224', 192, 3, true, 5_910_800),
  deit_small_distilled_patch16_224: deit(
    'deit_small_distilled_patch16_224',
    384,
    6,
    true,
    22_436_432,
  ),
  deit_base_distilled_patch16_224: deit(
    'deit_base_distilled_patch16_224',
    768,
    12,
    true,
    87_338_192,
  ),
} as const satisfies Record<string, ViTPreset>;

/** A timm name present in {@link VIT_PRESETS}. */
export type ViTPresetName = keyof typeof VIT_PRESETS;

/** Looks up a preset, throwing a {@link ConfigError} that lists the known names. */
export function getViTPreset(name: string): ViTPreset {
  // Own properties only: 'toString' or '__proto__' are not presets.
  const p = ownEntry(VIT_PRESETS as Record<string, ViTPreset>, name);
  if (p == null) {
    throw new ConfigError(
      `unknown ViT preset '${name}'; known presets: ${Object.keys(VIT_PRESETS).join(', ')}`,
    );
  }
  return p;
}
