import { layers } from '@tensorflow/tfjs-layers';
import { ConfigError } from '../errors';
import { numPrefixTokens, tokenGeometry } from '../geometry';
import {
  HYBRID_CONFIG_FIELDS,
  type HybridViTConfig,
  type ResolvedHybridViTConfig,
  resolveHybridViTConfig,
} from './hybrid';
import type { ResNetStem } from './resnet';
import { type ResolvedViTConfig, resolveViTConfig, type ViTConfig } from './vision_transformer';

/** Whether a config describes a hybrid CNN + ViT (it has a backbone field). */
function isHybrid(config: ViTConfig | HybridViTConfig): config is HybridViTConfig {
  return (
    config != null &&
    typeof config === 'object' &&
    HYBRID_CONFIG_FIELDS.some((f) => Object.hasOwn(config, f))
  );
}

/** Where the tokens come from: the resolved ViT config, the token grid and the projection's input width. */
interface TokenSource {
  c: ResolvedViTConfig;
  gridSize: [number, number];
  numPatches: number;
  numPrefixTokens: number;
  numTokens: number;
  /** Values per token fed to the projection (p * p * channels of the image or feature map). */
  tokenInputs: number;
  hybrid: ResolvedHybridViTConfig | null;
}

function tokenSource(caller: string, config: ViTConfig | HybridViTConfig): TokenSource {
  if (isHybrid(config)) {
    const h = resolveHybridViTConfig(config);
    const c = h.vit;
    const [ph, pw] = c.patchSize;
    const numPatches = h.gridSize[0] * h.gridSize[1];
    const prefix = numPrefixTokens({ ...c, distToken: c.distilled });
    return {
      c,
      gridSize: h.gridSize,
      numPatches,
      numPrefixTokens: prefix,
      numTokens: prefix + numPatches,
      tokenInputs: ph * pw * h.featureShape[2],
      hybrid: h,
    };
  }
  const c = resolveViTConfig(config);
  const [ph, pw] = c.patchSize;
  const g = tokenGeometry(caller, { ...c, distToken: c.distilled });
  return { c, ...g, tokenInputs: ph * pw * c.inChans, hybrid: null };
}

/** ResNet18's convolutions up to `layer{stages}`: [k, stride, pad, cin, cout] in order. */
function resNetConvs(stages: number, stem: ResNetStem, inChans: number): number[][] {
  const convs: number[][] = [stem === 'imagenet' ? [7, 2, 3, inChans, 64] : [3, 1, 1, inChans, 64]];
  const widths = [64, 128, 256, 512];
  let cin = 64;
  for (let s = 0; s < stages; s++) {
    const cout = widths[s] as number;
    for (let b = 0; b < 2; b++) {
      const stride = b === 0 && s > 0 ? 2 : 1;
      convs.push([3, stride, 1, cin, cout], [3, 1, 1, cout, cout]);
      if (stride !== 1 || cin !== cout) convs.push([1, stride, 0, cin, cout]);
      cin = cout;
    }
  }
  return convs;
}

/** Trainable parameters of a ResNet18 trunk (convs, BatchNorm scale and shift). */
function resNetTrunkParams(stages: number, stem: ResNetStem, inChans: number): number {
  return resNetConvs(stages, stem, inChans).reduce(
    (n, [k, , , cin, cout]) =>
      n + (k as number) ** 2 * (cin as number) * (cout as number) + 2 * (cout as number),
    0,
  );
}

/** MACs of a ResNet18 trunk's convolutions for one `[h, w]` image (the max-pool after the ImageNet stem included in the arithmetic). */
function resNetTrunkMacs(
  imgSize: [number, number],
  stages: number,
  stem: ResNetStem,
  inChans: number,
): number {
  let [h, w] = imgSize;
  const down = (n: number, k: number, s: number, p: number) => Math.floor((n + 2 * p - k) / s) + 1;
  let macs = 0;
  resNetConvs(stages, stem, inChans).forEach(([k, s, p, cin, cout], i) => {
    const kk = k as number;
    const ss = s as number;
    const pp = p as number;
    // A 1x1 projection shortcut reads the block's input: its output size equals the block's.
    const isShortcut = kk === 1;
    const oh = isShortcut ? h : down(h, kk, ss, pp);
    const ow = isShortcut ? w : down(w, kk, ss, pp);
    macs += oh * ow * kk * kk * (cin as number) * (cout as number);
    if (!isShortcut) [h, w] = [oh, ow];
    if (i === 0 && stem === 'imagenet') [h, w] = [down(h, 3, 2, 1), down(w, 3, 2, 1)];
  });
  return macs;
}

function userBackbone(h: ResolvedHybridViTConfig, caller: string): layers.Layer {
  const b = h.backbone;
  if (!(b instanceof layers.Layer)) throw new ConfigError(`${caller}: no user backbone`);
  return b;
}

/**
 * Parameter count of a Vision Transformer, or of a hybrid CNN + ViT (a config with a
 * `backbone`), computed from its config alone (no tensors), so that even ViT-H/14 (2.5 GB of
 * weights) can be checked cheaply. Matches `countParams()` of the built model and timm's
 * `sum(p.numel())`. Covers the options: position embedding kinds (`'learned2d'` stores
 * `gh + gw` rows, `'sincos'` its fixed table, `'none'` nothing), DeiT's distillation token and
 * head, qk-norm (4 x head dim per block). A hybrid's ResNet trunk counts its BatchNorm scale and
 * shift but not its running statistics (buffers in PyTorch; non-trainable weights in tfjs, which
 * `countParams()` adds: 2 per BatchNorm channel). A user backbone (a layer) must be built; its
 * trainable weights are counted.
 */
export function countViTParams(config: ViTConfig | HybridViTConfig): number {
  const src = tokenSource('countViTParams', config);
  const { c, gridSize, numTokens } = src;
  const d = c.embedDim;
  const hidden = Math.floor(d * c.mlpRatio);
  const patchEmbed = src.tokenInputs * d + d;
  const tokens = src.numPrefixTokens * d;
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
  return backboneParams(src) + patchEmbed + tokens + position + c.depth * block + 2 * d + head;
}

function backboneParams(src: TokenSource): number {
  const h = src.hybrid;
  if (h == null) return 0;
  if (h.stem != null && h.backboneStages != null) {
    return resNetTrunkParams(h.backboneStages, h.stem, src.c.inChans);
  }
  const b = userBackbone(h, 'countViTParams');
  if (!b.built) {
    throw new ConfigError(
      `countViTParams: the backbone layer '${b.name}' is not built, so its weights are unknown; build it (or the hybrid model) first`,
    );
  }
  return b.trainableWeights.reduce(
    (n, w) => n + (w.shape as number[]).reduce((a, s) => a * s, 1),
    0,
  );
}

/** Options of {@link countViTMacs}. */
export interface CountViTMacsOptions {
  /**
   * MACs of a user backbone (a layer) for one image: vit-ts knows the cost of its own ResNet18
   * trunk only. Required for a hybrid with a user backbone.
   */
  backboneMacs?: number;
}

/**
 * Multiply-accumulates of one forward pass for one image, counting the matrix products
 * (patch projection, qkv, q.k^T, attention.v, output projection, MLP, head) as timm/fvcore do,
 * and for a hybrid the convolutions of its ResNet18 trunk (or `options.backboneMacs`).
 * One MAC is two floating-point operations. ViT-B/16 at 224 px: 17.56 G. DeiT's distillation
 * token lengthens the sequence by one and adds the second head; normalizations, additions and
 * softmax are not counted. Counted at `imgSize` (also with `dynamicImgSize`).
 */
export function countViTMacs(
  config: ViTConfig | HybridViTConfig,
  options: CountViTMacsOptions = {},
): number {
  const src = tokenSource('countViTMacs', config);
  const { c, numPatches, numTokens: n } = src;
  const d = c.embedDim;
  const hidden = Math.floor(d * c.mlpRatio);
  const patchEmbed = numPatches * src.tokenInputs * d;
  const block = n * d * 3 * d + 2 * n * n * d + n * d * d + 2 * n * d * hidden;
  const heads = c.distilled ? 2 : 1;
  let backbone = 0;
  const h = src.hybrid;
  if (h?.stem != null && h.backboneStages != null) {
    backbone = resNetTrunkMacs(c.imgSize, h.backboneStages, h.stem, c.inChans);
  } else if (h) {
    const b = userBackbone(h, 'countViTMacs');
    const given = options.backboneMacs;
    if (typeof given !== 'number' || !Number.isFinite(given) || given < 0) {
      throw new ConfigError(
        `countViTMacs: the backbone is the user layer '${b.name}', whose cost vit-ts cannot know; pass options.backboneMacs (a number >= 0), got ${String(given)}`,
      );
    }
    backbone = given;
  }
  return (
    backbone + patchEmbed + c.depth * block + (c.numClasses > 0 ? heads * d * c.numClasses : 0)
  );
}
