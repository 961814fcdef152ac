import type { LayersModel } from '@tensorflow/tfjs-layers';
import * as tfl from '@tensorflow/tfjs-layers';
import { createHybridViT, type ViTConfig, withSeed } from '../../src/index';

/**
 * A small ViT for 28 px, 1-channel images: 4 px patches (7 x 7 tokens + class token), D 64,
 * 4 blocks, 4 heads, MLP ratio 2 (139,018 weights with 10 classes). The shape of the first
 * shipped Fashion-MNIST model, and the finetune experiment's model (its published numbers are
 * for this shape).
 */
export const SMALL_VIT_28_CONFIG: ViTConfig = {
  imgSize: 28,
  patchSize: 4,
  inChans: 1,
  embedDim: 64,
  depth: 4,
  numHeads: 4,
  mlpRatio: 2,
  numClasses: 10,
};

/**
 * The plain Fashion-MNIST ViT (`train.ts --stem patch`, the default), shipped in
 * examples/fashion/model until the hybrid ({@link createFashionHybridViT}) replaced it: 88.4%.
 */
export const FASHION_VIT_CONFIG: ViTConfig = SMALL_VIT_28_CONFIG;

/**
 * The convolutional stem of the hybrid Fashion-MNIST ViT: two 3x3 convolutions of stride 2
 * (32 then 64 channels, each followed by BatchNorm and ReLU) turn a [28, 28, 1] image into a
 * [7, 7, 64] map, one cell per 4 px patch of the plain ViT. Each cell sees 7 x 7 pixels that
 * overlap its neighbours' (Xiao et al. 2021, "Early convolutions help transformers see
 * better"): the locality prior a 4 px patch embedding lacks. `seed` seeds both kernels.
 */
export function fashionConvStem(seed: number): tfl.Sequential {
  const stages: Array<[filters: number, name: string]> = [
    [32, '1'],
    [64, '2'],
  ];
  return tfl.sequential({
    name: 'conv_stem',
    layers: stages.flatMap(([filters, n], i) => [
      tfl.layers.conv2d({
        ...(i === 0 ? { inputShape: [28, 28, 1] } : {}),
        filters,
        kernelSize: 3,
        strides: 2,
        padding: 'same',
        useBias: false,
        kernelInitializer: tfl.initializers.heNormal({ seed: seed + i }),
        name: `conv${n}`,
      }),
      tfl.layers.batchNormalization({ name: `bn${n}` }),
      tfl.layers.reLU({ name: `relu${n}` }),
    ]),
  });
}

/**
 * The transformer part of the hybrid Fashion-MNIST ViT: the small ViT above reading the conv
 * stem's 7 x 7 map with 1 x 1 patches (49 tokens + class token, as the plain ViT).
 */
export const FASHION_HYBRID_VIT_CONFIG: ViTConfig = { ...SMALL_VIT_28_CONFIG, patchSize: 1 };

/** The hybrid Fashion-MNIST ViT: {@link fashionConvStem} -> {@link FASHION_HYBRID_VIT_CONFIG}. */
export function createFashionHybridViT(
  seed: number,
  overrides: Partial<ViTConfig> = {},
): LayersModel {
  return withSeed(seed, () =>
    createHybridViT({
      ...FASHION_HYBRID_VIT_CONFIG,
      ...overrides,
      backbone: fashionConvStem(seed),
    }),
  );
}
