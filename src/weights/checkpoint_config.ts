/**
 * `vitConfigFromCheckpoint`: the ViT architecture a checkpoint was saved from, read off its
 * key names and tensor shapes, so that the matching model can be built before loading.
 */
import { ConfigError } from '../errors';
import type { HybridViTConfig } from '../models/hybrid';
import { VIT_PRESETS } from '../models/presets';
import { type ResNetStem, resNetFeatureSize } from '../models/resnet';
import type { ViTConfig } from '../models/vision_transformer';
import { type CheckpointFormat, mapWeightName, rulesFor } from './keymaps';
import { type CheckpointSource, normalizeSource, SOURCE_NORM_EPS } from './load';

/** Options of {@link vitConfigFromCheckpoint}. */
export interface ViTConfigFromCheckpointOptions {
  /** Key layout of the checkpoint. */
  from: Exclude<CheckpointFormat, 'cifar'>;
  /**
   * Attention heads. Weights do not record it: when omitted it is read from vit-ts export
   * metadata (`vit_ts.config`), else taken from the timm preset of the same width (192 -> 3,
   * 384 -> 6, 768 -> 12, 1024 -> 16, 1280 -> 16); other widths must pass it.
   */
  numHeads?: number;
  /** Image size; needed only when the position embedding's grid is not square. */
  imgSize?: number | [number, number];
}

/**
 * Infers `embedDim`, `depth`, `numHeads`, `patchSize`, `imgSize` (patch grid x patch size),
 * `inChans`, `numClasses` (0 without a head), `mlpRatio`, `qkvBias`, `numRegTokens`,
 * `globalPool` (timm `fc_norm` = `'avg'`), LayerScale, `normEps` (1e-12 for `'hf'`, 1e-6
 * otherwise), DeiT's `distilled` (`dist_token`), `qkNorm` (`attn.q_norm`) and `posEmbed`
 * (`'learned2d'` from `pos_embed_row/col`, `'none'` without a table; a stored sin-cos table
 * reads as `'learned'`, pass `posEmbed: 'sincos'` yourself) from a checkpoint. A timm hybrid
 * checkpoint (`patch_embed.backbone.*` of a torchvision resnet18 trunk) gives a hybrid config
 * (`backbone: 'resnet18'`, `backboneStages`, `stem`, `patchSize` on the feature map) for
 * `createHybridViT`. Pure apart from parsing bytes: allocates no tensors.
 *
 * @example
 * const ckpt = readSafetensors(bytes);
 * const model = createViT(vitConfigFromCheckpoint(ckpt, { from: 'hf' }));
 * loadPretrained(model, ckpt, { from: 'hf' });
 */
export function vitConfigFromCheckpoint(
  source: CheckpointSource,
  options: ViTConfigFromCheckpointOptions,
): ViTConfig & HybridViTConfig {
  const caller = 'vitConfigFromCheckpoint';
  if (options == null || typeof options !== 'object') {
    throw new ConfigError(
      `${caller}: options { from: 'timm' | 'torchvision' | 'hf' } are required, got ${String(options)}`,
    );
  }
  const { from } = options;
  const rules = rulesFor('vit', from);
  const { tensors, metadata } = normalizeSource(source, caller);
  const hfPrefix =
    from === 'hf' && [...tensors.keys()].some((k) => k.startsWith('vit.')) ? 'vit.' : '';
  const keyOf = (name: string) => mapWeightName(rules, name, { hfPrefix })?.keys[0] ?? '';
  const shapeOf = (name: string) => tensors.get(keyOf(name))?.shape ?? null;
  const need = (name: string): number[] => {
    const s = shapeOf(name);
    if (!s)
      throw new ConfigError(
        `${caller}: the checkpoint has no '${keyOf(name)}' (${from} layout); is it a ${from} ViT?`,
      );
    return s;
  };

  const proj = need('patch_embed/proj/kernel'); // [D, C, ph, pw]
  if (proj.length !== 4)
    throw new ConfigError(
      `${caller}: '${keyOf('patch_embed/proj/kernel')}' must be [D, C, ph, pw], got [${proj}]`,
    );
  const [embedDim, projInChans, ph, pw] = proj;
  const hybrid = from === 'timm' ? hybridTrunk(shapeOf, caller) : null;
  const inChans = hybrid ? hybrid.inChans : projInChans;
  // A hybrid's patch grid lies on the trunk's feature map: image = grid x patch x stride.
  const stride = hybrid ? hybrid.stride : 1;
  let depth = 0;
  while (shapeOf(`blocks/${depth}/norm1/gamma`)) depth++;
  if (depth === 0)
    throw new ConfigError(
      `${caller}: no transformer block found (no '${keyOf('blocks/0/norm1/gamma')}')`,
    );
  const fc1 = need('blocks/0/mlp/fc1/kernel'); // [hidden, D]
  const regShape = shapeOf('embed/reg_token');
  const numRegTokens = regShape ? regShape[1] : 0;
  const classToken = shapeOf('embed/cls_token') != null;
  const distilled = shapeOf('embed/dist_token') != null;
  const prefix = (classToken ? 1 : 0) + (distilled ? 1 : 0) + numRegTokens;
  const pos = shapeOf('embed/pos_embed'); // [1, P + N, D]
  const posRow = shapeOf('embed/pos_embed_row'); // [1, gh, D]
  const posCol = shapeOf('embed/pos_embed_col'); // [1, gw, D]
  const posEmbed = pos ? 'learned' : posRow && posCol ? 'learned2d' : 'none';
  const explicitSize: [number, number] | null =
    options.imgSize == null
      ? null
      : Array.isArray(options.imgSize)
        ? [options.imgSize[0], options.imgSize[1]]
        : [options.imgSize, options.imgSize];
  let imgSize: [number, number];
  if (posRow && posCol && !pos) {
    imgSize = [posRow[1] * ph * stride, posCol[1] * pw * stride];
  } else if (!pos) {
    if (!explicitSize) {
      throw new ConfigError(
        `${caller}: the checkpoint has no position embedding ('${keyOf('embed/pos_embed')}'), so its image size is unknown; pass options.imgSize`,
      );
    }
    imgSize = explicitSize;
  } else {
    const numPatches = pos[1] - prefix;
    if (explicitSize) {
      imgSize = explicitSize;
      const [fh, fw] = hybrid
        ? (resNetFeatureSize(imgSize, hybrid.stem, hybrid.stages) as [number, number])
        : imgSize;
      if ((fh / ph) * (fw / pw) !== numPatches) {
        throw new ConfigError(
          `${caller}: imgSize [${imgSize}] with patch [${ph}, ${pw}]${hybrid ? ` on the ResNet18 trunk's [${fh}, ${fw}] feature map` : ''} gives ${(fh / ph) * (fw / pw)} patches, the checkpoint has ${numPatches}`,
        );
      }
    } else {
      const g = Math.round(Math.sqrt(numPatches));
      if (g * g !== numPatches) {
        throw new ConfigError(
          `${caller}: ${numPatches} patch tokens are not a square grid; pass options.imgSize [height, width]`,
        );
      }
      imgSize = [g * ph * stride, g * pw * stride];
    }
  }
  const head = shapeOf('head/kernel'); // [C, D]
  const config: ViTConfig = {
    imgSize: imgSize[0] === imgSize[1] ? imgSize[0] : imgSize,
    patchSize: ph === pw ? ph : [ph, pw],
    inChans,
    embedDim,
    depth,
    numHeads: headsOf(embedDim, options.numHeads, metadata, caller),
    mlpRatio: fc1[0] / embedDim,
    qkvBias: shapeOf('blocks/0/attn/qkv/bias') != null,
    classToken,
    numRegTokens,
    numClasses: head ? head[0] : 0,
    globalPool: shapeOf('fc_norm/gamma') ? 'avg' : 'token',
    normEps: SOURCE_NORM_EPS[from],
  };
  // Options that change the weights; defaults are left out so plain configs stay as before.
  if (distilled) config.distilled = true;
  if (posEmbed !== 'learned') config.posEmbed = posEmbed;
  if (shapeOf('blocks/0/attn/q_norm/gamma')) config.qkNorm = true;
  // The value is overwritten by the checkpoint; it only switches LayerScale on.
  if (shapeOf('blocks/0/ls1/gamma')) config.initValues = 1;
  if (hybrid) {
    return { ...config, backbone: 'resnet18', backboneStages: hybrid.stages, stem: hybrid.stem };
  }
  return config;
}

/**
 * The ResNet18 trunk of a timm hybrid checkpoint (`patch_embed.backbone.*`): stem from
 * `conv1`'s kernel (7 = ImageNet, 3 = CIFAR), stages from the last `layerN` present; null for a
 * plain ViT.
 */
function hybridTrunk(
  shapeOf: (name: string) => number[] | null,
  caller: string,
): { stem: ResNetStem; stages: number; inChans: number; stride: number } | null {
  const conv1 = shapeOf('patch_embed/backbone/conv1/kernel'); // [64, C, k, k]
  if (!conv1) return null;
  const k = conv1[2];
  if (conv1.length !== 4 || (k !== 7 && k !== 3)) {
    throw new ConfigError(
      `${caller}: 'patch_embed.backbone.conv1.weight' must be a ResNet18 stem [64, C, 7, 7] or [64, C, 3, 3], got [${conv1}]`,
    );
  }
  const stem: ResNetStem = k === 7 ? 'imagenet' : 'cifar';
  let stages = 0;
  while (stages < 4 && shapeOf(`patch_embed/backbone/layer${stages + 1}/0/conv1/kernel`)) stages++;
  if (stages === 0) {
    throw new ConfigError(
      `${caller}: the hybrid checkpoint has 'patch_embed.backbone.conv1.weight' but no 'patch_embed.backbone.layer1.*'`,
    );
  }
  const stride = (stem === 'imagenet' ? 4 : 1) * 2 ** (stages - 1);
  return { stem, stages, inChans: conv1[1] as number, stride };
}

function headsOf(
  embedDim: number,
  explicit: number | undefined,
  metadata: Record<string, string>,
  caller: string,
): number {
  if (explicit != null) {
    if (!Number.isInteger(explicit) || explicit <= 0 || embedDim % explicit !== 0) {
      throw new ConfigError(
        `${caller}: numHeads must be a positive divisor of embedDim ${embedDim}, got ${String(explicit)}`,
      );
    }
    return explicit;
  }
  const saved = metadata['vit_ts.config'];
  if (saved) {
    try {
      const h = (JSON.parse(saved) as { numHeads?: unknown }).numHeads;
      if (typeof h === 'number') return h;
    } catch {
      // Not vit-ts metadata: fall through to the preset table.
    }
  }
  const preset = Object.values(VIT_PRESETS).find((p) => p.config.embedDim === embedDim);
  if (preset) return preset.config.numHeads;
  throw new ConfigError(
    `${caller}: the number of heads is not stored in the weights and embedDim ${embedDim} matches no timm preset; pass options.numHeads`,
  );
}
