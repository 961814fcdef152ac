import type { ViTConfig } from '../../src/index';

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

/** The shipped Fashion-MNIST ViT (examples/fashion/model). */
export const FASHION_VIT_CONFIG: ViTConfig = SMALL_VIT_28_CONFIG;
