import { tokenGeometry } from '../geometry';
import { checkModelSize } from './limits';
import { type ResolvedViTConfig, resolveViTConfig, type ViTConfig } from './vit_config';

/**
 * Parameter count of a Vision Transformer computed from its config alone (no tensors), so that
 * even ViT-H/14 (2.5 GB of weights) can be checked cheaply. Matches `countParams()` of the
 * built model and timm's `sum(p.numel())`. Covers the options: position embedding kinds
 * (`'learned2d'` stores `gh + gw` rows, `'sincos'` its fixed table, `'none'` nothing), DeiT's
 * distillation token and head, qk-norm (4 x head dim per block).
 */
export function countViTParams(config: ViTConfig): number {
  const c = resolveViTConfig(config);
  const d = c.embedDim;
  const [ph, pw] = c.patchSize;
  const geometry = tokenGeometry('countViTParams', { ...c, distToken: c.distilled });
  const { numTokens, gridSize } = geometry;
  const prefix = geometry.numPrefixTokens;
  const hidden = Math.floor(d * c.mlpRatio);
  const patchEmbed = ph * pw * c.inChans * d + d;
  const tokens = prefix * d;
  // The sin-cos table is a stored, non-trainable weight (MAE's requires_grad=False parameter).
  const position = {
    learned: numTokens * d,
    sincos: numTokens * d,
    learned2d: (gridSize[0] + gridSize[1]) * d,
    none: 0,
  }[c.posEmbed];
  const attn =
    d * 3 * d + (c.qkvBias ? 3 * d : 0) + d * d + d + (c.qkNorm ? 4 * (d / c.numHeads) : 0);
  const mlp = d * hidden + hidden + hidden * d + d;
  const block = 4 * d + attn + mlp + (c.initValues != null ? 2 * d : 0);
  const heads = c.distilled ? 2 : 1;
  const head = c.numClasses > 0 ? heads * (d * c.numClasses + c.numClasses) : 0;
  return patchEmbed + tokens + position + c.depth * block + 2 * d + head;
}

/**
 * Multiply-accumulates of one forward pass for one image, counting the matrix products
 * (patch projection, qkv, q.k^T, attention.v, output projection, MLP, head) as timm/fvcore do.
 * One MAC is two floating-point operations. ViT-B/16 at 224 px: 17.56 G. DeiT's distillation
 * token lengthens the sequence by one and adds the second head; normalizations, additions and
 * softmax are not counted. Counted at `imgSize` (also with `dynamicImgSize`).
 */
export function countViTMacs(config: ViTConfig): number {
  const c = resolveViTConfig(config);
  const d = c.embedDim;
  const [ph, pw] = c.patchSize;
  const { numPatches, numTokens: n } = tokenGeometry('countViTMacs', {
    ...c,
    distToken: c.distilled,
  });
  const hidden = Math.floor(d * c.mlpRatio);
  const patchEmbed = numPatches * ph * pw * c.inChans * d;
  const block = n * d * 3 * d + 2 * n * n * d + n * d * d + 2 * n * d * hidden;
  const heads = c.distilled ? 2 : 1;
  return patchEmbed + c.depth * block + (c.numClasses > 0 ? heads * d * c.numClasses : 0);
}

/**
 * Elements of the largest activation tensor of one image: the attention probabilities
 * `numHeads x N x N` or the MLP hidden layer `N x hidden` (N tokens).
 */
export function countViTActivations(config: ViTConfig): number {
  const c = resolveViTConfig(config);
  const { numTokens: n } = tokenGeometry('countViTActivations', { ...c, distToken: c.distilled });
  const hidden = Math.floor(c.embedDim * c.mlpRatio);
  return Math.max(c.numHeads * n * n, n * hidden, n * 3 * c.embedDim);
}

/**
 * Refuses a resolved ViT config whose parameter or activation count exceeds the size limits in
 * force (`setSizeLimits`, or the `maxParams` option of `createViT` / `loadModel`). Pure.
 */
export function checkViTSize(owner: string, config: ResolvedViTConfig): void {
  checkModelSize(owner, countViTParams(config), countViTActivations(config));
}
