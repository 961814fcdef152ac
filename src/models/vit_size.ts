/**
 * Size bounds of a ViT config, computed before anything is allocated. Kept apart from
 * param_count.ts (which also counts hybrids and imports their layers) so that the
 * VisionTransformer constructor can use it without an import cycle.
 */
import { tokenGeometry } from '../geometry';
import { checkModelSize } from './limits';
import type { ResolvedViTConfig } from './vit_config';

/**
 * A lower bound on the parameters of a plain ViT: the patch projection, the position table, and
 * per block the qkv, output and MLP matrices (biases, norms and small tables left out). Within
 * a fraction of a percent of `countViTParams` for real models, and never above it.
 */
export function vitParamsLowerBound(c: ResolvedViTConfig): number {
  const d = c.embedDim;
  const hidden = Math.floor(d * c.mlpRatio);
  const { numTokens } = tokenGeometry('VisionTransformer', { ...c, distToken: c.distilled });
  const position = c.posEmbed === 'none' ? 0 : c.posEmbed === 'learned2d' ? 0 : numTokens * d;
  const patch = c.patchSize[0] * c.patchSize[1] * c.inChans * d;
  const head = c.numClasses * d * (c.distilled ? 2 : 1);
  return patch + position + c.depth * (4 * d * d + 2 * d * hidden) + head;
}

/**
 * Elements of the largest activation tensor of one image: the attention probabilities
 * `numHeads x N x N`, the qkv projection `N x 3D` or the MLP hidden layer `N x hidden`.
 */
export function vitActivationsPerImage(c: ResolvedViTConfig): number {
  const { numTokens: n } = tokenGeometry('VisionTransformer', { ...c, distToken: c.distilled });
  const hidden = Math.floor(c.embedDim * c.mlpRatio);
  return Math.max(c.numHeads * n * n, n * hidden, n * 3 * c.embedDim);
}

/**
 * Refuses a resolved ViT config whose parameter or activation count exceeds the size limits in
 * force (`setSizeLimits`, or the `maxParams` option of `createViT` / `loadModel`). Pure.
 */
export function checkViTSize(owner: string, c: ResolvedViTConfig): void {
  checkModelSize(owner, vitParamsLowerBound(c), vitActivationsPerImage(c));
}
