import type { ViTConfig } from '../../src/index';

/** The shipped Fashion-MNIST ViT: 28 px, 4 px patches (7 x 7 tokens + class token). */
export const FASHION_VIT_CONFIG: ViTConfig = {
  imgSize: 28,
  patchSize: 4,
  inChans: 1,
  embedDim: 64,
  depth: 4,
  numHeads: 4,
  mlpRatio: 2,
  numClasses: 10,
};
