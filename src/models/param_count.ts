import { tokenGeometry } from '../geometry';
import { resolveViTConfig, type ViTConfig } from './vision_transformer';

/**
 * Parameter count of a Vision Transformer computed from its config alone (no tensors), so that
 * even ViT-H/14 (2.5 GB of weights) can be checked cheaply. Matches `countParams()` of the
 * built model and timm's `sum(p.numel())`.
 */
export function countViTParams(config: ViTConfig): number {
  const c = resolveViTConfig(config);
  const d = c.embedDim;
  const [ph, pw] = c.patchSize;
  const { numTokens } = tokenGeometry('countViTParams', c);
  const hidden = Math.floor(d * c.mlpRatio);
  const patchEmbed = ph * pw * c.inChans * d + d;
  // Class and register tokens, then one position row per token.
  const tokens = (c.classToken ? d : 0) + c.numRegTokens * d + numTokens * d;
  const attn = d * 3 * d + (c.qkvBias ? 3 * d : 0) + d * d + d;
  const mlp = d * hidden + hidden + hidden * d + d;
  const block = 4 * d + attn + mlp + (c.initValues != null ? 2 * d : 0);
  const head = c.numClasses > 0 ? d * c.numClasses + c.numClasses : 0;
  return patchEmbed + tokens + c.depth * block + 2 * d + head;
}

/**
 * Multiply-accumulates of one forward pass for one image, counting the matrix products
 * (patch projection, qkv, q.k^T, attention.v, output projection, MLP, head) as timm/fvcore do.
 * One MAC is two floating-point operations. ViT-B/16 at 224 px: 17.56 G.
 */
export function countViTMacs(config: ViTConfig): number {
  const c = resolveViTConfig(config);
  const d = c.embedDim;
  const [ph, pw] = c.patchSize;
  const { numPatches, numTokens: n } = tokenGeometry('countViTMacs', c);
  const hidden = Math.floor(d * c.mlpRatio);
  const patchEmbed = numPatches * ph * pw * c.inChans * d;
  const block = n * d * 3 * d + 2 * n * n * d + n * d * d + 2 * n * d * hidden;
  return patchEmbed + c.depth * block + (c.numClasses > 0 ? d * c.numClasses : 0);
}
