import type { HybridViTConfig, ViTConfig } from '../../src/index';

/** A ViT small enough to build and run in milliseconds: 16x16x3 images, 4 patches, 3 classes. */
export const TINY_VIT: ViTConfig = {
  imgSize: 16,
  patchSize: 8,
  embedDim: 8,
  depth: 1,
  numHeads: 2,
  numClasses: 3,
};

/** A hybrid ViT on 8x8x3 images: ResNet18 CIFAR stem + layer1 (64 tokens), 2 classes. */
export const TINY_HYBRID: HybridViTConfig = {
  imgSize: 8,
  stem: 'cifar',
  backboneStages: 1,
  embedDim: 4,
  depth: 1,
  numHeads: 2,
  numClasses: 2,
};
