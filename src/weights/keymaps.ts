/**
 * Data-driven key maps between vit-ts weight names and PyTorch state-dict keys.
 *
 * A vit-ts weight name is the weight's `originalName` without the top layer's name, e.g.
 * `blocks/3/attn/qkv/kernel` for `vit/blocks/3/attn/qkv/kernel`, so maps work whatever the
 * user named the layer. Each {@link KeyRule} matches such names with a regular expression and
 * gives the PyTorch key(s) as templates (`$1`, `$2` are the captured groups) and the layout.
 */
import { ConfigError } from '../errors';
import type { TensorLayout } from './layouts';

/** Checkpoint layouts vit-ts reads and writes. */
export type CheckpointFormat = 'timm' | 'torchvision' | 'hf' | 'cifar';

/** Model families with key maps. */
export type ModelFamily = 'vit' | 'resnet';

/** One mapping rule: vit-ts name pattern -> PyTorch key template(s) and tensor layout. */
export interface KeyRule {
  /** Matches the whole vit-ts weight name (anchored). */
  pattern: RegExp;
  /** PyTorch key templates; several = tensors concatenated along PyTorch axis 0 (q, k, v). */
  keys: string[];
  layout: TensorLayout;
  /** `posEmbed` marks the position embedding, which is resampled on a grid change. */
  role?: 'posEmbed';
}

/** A rule applied to one weight: the concrete PyTorch keys of one vit-ts weight. */
export interface KeyMapEntry {
  /** vit-ts weight name (top layer's name stripped). */
  name: string;
  /** PyTorch keys, in concatenation order. */
  keys: string[];
  layout: TensorLayout;
  role?: 'posEmbed';
}

function rule(
  pattern: string,
  keys: string | string[],
  layout: TensorLayout = 'identity',
  role?: 'posEmbed',
): KeyRule {
  return {
    pattern: new RegExp(`^${pattern}$`),
    keys: Array.isArray(keys) ? keys : [keys],
    layout,
    ...(role ? { role } : {}),
  };
}

/** Rules of a Linear: `kernel` ([in, out] <-> [out, in]) and `bias`. */
function linearRules(vit: string, torch: string): KeyRule[] {
  return [rule(`${vit}/kernel`, `${torch}.weight`, 'linear'), rule(`${vit}/bias`, `${torch}.bias`)];
}

/** Rules of a LayerNorm: `gamma` -> `weight`, `beta` -> `bias`. */
function layerNormRules(vit: string, torch: string): KeyRule[] {
  return [rule(`${vit}/gamma`, `${torch}.weight`), rule(`${vit}/beta`, `${torch}.bias`)];
}

/** Rules of a BatchNorm2d: scale, shift and running statistics. */
function batchNormRules(vit: string, torch: string): KeyRule[] {
  return [
    rule(`${vit}/gamma`, `${torch}.weight`),
    rule(`${vit}/beta`, `${torch}.bias`),
    rule(`${vit}/moving_mean`, `${torch}.running_mean`),
    rule(`${vit}/moving_variance`, `${torch}.running_var`),
  ];
}

const B = 'blocks/(\\d+)';

/** timm `VisionTransformer` (`vit_*` models, also register tokens, LayerScale, `fc_norm`). */
export const TIMM_VIT_RULES: readonly KeyRule[] = [
  rule('patch_embed/proj/kernel', 'patch_embed.proj.weight', 'conv'),
  rule('patch_embed/proj/bias', 'patch_embed.proj.bias'),
  rule('embed/cls_token', 'cls_token'),
  rule('embed/dist_token', 'dist_token'),
  rule('embed/reg_token', 'reg_token'),
  rule('embed/pos_embed', 'pos_embed', 'identity', 'posEmbed'),
  // Learned 2-D position tables: not in timm; vit-ts' own names, same layout as pos_embed.
  rule('embed/pos_embed_(row|col)', 'pos_embed_$1'),
  rule(`${B}/ls([12])/gamma`, 'blocks.$1.ls$2.gamma'),
  ...layerNormRules(`${B}/norm([12])`, 'blocks.$1.norm$2'),
  ...linearRules(`${B}/attn/(qkv|proj)`, 'blocks.$1.attn.$2'),
  ...layerNormRules(`${B}/attn/([qk]_norm)`, 'blocks.$1.attn.$2'),
  ...linearRules(`${B}/mlp/(fc[12])`, 'blocks.$1.mlp.$2'),
  ...layerNormRules('(norm|fc_norm)', '$1'),
  ...linearRules('(head|head_dist)', '$1'),
];

const TV = 'encoder.layers.encoder_layer_$1';

/** torchvision `VisionTransformer` (`vit_b_16`, ...): `in_proj` is the fused [q; k; v]. */
export const TORCHVISION_VIT_RULES: readonly KeyRule[] = [
  rule('patch_embed/proj/kernel', 'conv_proj.weight', 'conv'),
  rule('patch_embed/proj/bias', 'conv_proj.bias'),
  rule('embed/cls_token', 'class_token'),
  rule('embed/pos_embed', 'encoder.pos_embedding', 'identity', 'posEmbed'),
  ...layerNormRules(`${B}/norm1`, `${TV}.ln_1`),
  rule(`${B}/attn/qkv/kernel`, `${TV}.self_attention.in_proj_weight`, 'linear'),
  rule(`${B}/attn/qkv/bias`, `${TV}.self_attention.in_proj_bias`),
  ...linearRules(`${B}/attn/proj`, `${TV}.self_attention.out_proj`),
  ...layerNormRules(`${B}/norm2`, `${TV}.ln_2`),
  ...linearRules(`${B}/mlp/fc1`, `${TV}.mlp.0`),
  ...linearRules(`${B}/mlp/fc2`, `${TV}.mlp.3`),
  ...layerNormRules('norm', 'encoder.ln'),
  ...linearRules('head', 'heads.head'),
];

/** Placeholder for the Hugging Face backbone prefix: `vit.` (ViTForImageClassification) or none (ViTModel). */
export const HF_PREFIX = '{vit}';
const HL = `${HF_PREFIX}encoder.layer.$1`;
const QKV = ['query', 'key', 'value'];

/** Hugging Face transformers `ViTForImageClassification` / `ViTModel`. */
export const HF_VIT_RULES: readonly KeyRule[] = [
  rule(
    'patch_embed/proj/kernel',
    `${HF_PREFIX}embeddings.patch_embeddings.projection.weight`,
    'conv',
  ),
  rule('patch_embed/proj/bias', `${HF_PREFIX}embeddings.patch_embeddings.projection.bias`),
  rule('embed/cls_token', `${HF_PREFIX}embeddings.cls_token`),
  rule('embed/pos_embed', `${HF_PREFIX}embeddings.position_embeddings`, 'identity', 'posEmbed'),
  ...layerNormRules(`${B}/norm1`, `${HL}.layernorm_before`),
  rule(
    `${B}/attn/qkv/kernel`,
    QKV.map((p) => `${HL}.attention.attention.${p}.weight`),
    'linear',
  ),
  rule(
    `${B}/attn/qkv/bias`,
    QKV.map((p) => `${HL}.attention.attention.${p}.bias`),
  ),
  ...linearRules(`${B}/attn/proj`, `${HL}.attention.output.dense`),
  ...layerNormRules(`${B}/norm2`, `${HL}.layernorm_after`),
  ...linearRules(`${B}/mlp/fc1`, `${HL}.intermediate.dense`),
  ...linearRules(`${B}/mlp/fc2`, `${HL}.output.dense`),
  ...layerNormRules('norm', `${HF_PREFIX}layernorm`),
  ...linearRules('head', 'classifier'),
];

const L = 'layer([1-4])/(\\d+)';

/** torchvision `resnet18` (timm's resnet18 uses the same names). */
export const TORCHVISION_RESNET_RULES: readonly KeyRule[] = [
  rule('conv1/kernel', 'conv1.weight', 'conv'),
  ...batchNormRules('bn1', 'bn1'),
  rule(`${L}/(conv[12])/kernel`, 'layer$1.$2.$3.weight', 'conv'),
  ...batchNormRules(`${L}/(bn[12])`, 'layer$1.$2.$3'),
  rule(`${L}/downsample/0/kernel`, 'layer$1.$2.downsample.0.weight', 'conv'),
  ...batchNormRules(`${L}/downsample/1`, 'layer$1.$2.downsample.1'),
  ...linearRules('fc', 'fc'),
];

/** CIFAR ResNet18 of kuangliu/pytorch-cifar: `shortcut.0/1` and `linear`. */
export const CIFAR_RESNET_RULES: readonly KeyRule[] = [
  rule('conv1/kernel', 'conv1.weight', 'conv'),
  ...batchNormRules('bn1', 'bn1'),
  rule(`${L}/(conv[12])/kernel`, 'layer$1.$2.$3.weight', 'conv'),
  ...batchNormRules(`${L}/(bn[12])`, 'layer$1.$2.$3'),
  rule(`${L}/downsample/0/kernel`, 'layer$1.$2.shortcut.0.weight', 'conv'),
  ...batchNormRules(`${L}/downsample/1`, 'layer$1.$2.shortcut.1'),
  ...linearRules('fc', 'linear'),
];

/** The same rules for weights under `vitPrefix/` and keys under `torchPrefix.`. */
function prefixedRules(
  rules: readonly KeyRule[],
  vitPrefix: string,
  torchPrefix: string,
): KeyRule[] {
  return rules.map((r) => ({
    ...r,
    // Every rule pattern is anchored: `^name$` -> `^prefix/name$`.
    pattern: new RegExp(`^${vitPrefix}/${r.pattern.source.slice(1)}`),
    keys: r.keys.map((k) => `${torchPrefix}.${k}`),
  }));
}

/**
 * timm hybrid ViTs (`vision_transformer_hybrid`) with a torchvision resnet18 trunk: the
 * trunk's weights are `patch_embed.backbone.<torchvision resnet18 keys>` (conv1, bn1,
 * layer1 ..), the projection `patch_embed.proj.*` (already in {@link TIMM_VIT_RULES}).
 */
export const TIMM_HYBRID_BACKBONE_RULES: readonly KeyRule[] = prefixedRules(
  TORCHVISION_RESNET_RULES.filter((r) => !r.pattern.source.startsWith('^fc/')),
  'patch_embed/backbone',
  'patch_embed.backbone',
);

const RULES: Record<ModelFamily, Partial<Record<CheckpointFormat, readonly KeyRule[]>>> = {
  vit: {
    timm: [...TIMM_VIT_RULES, ...TIMM_HYBRID_BACKBONE_RULES],
    torchvision: TORCHVISION_VIT_RULES,
    hf: HF_VIT_RULES,
  },
  resnet: {
    torchvision: TORCHVISION_RESNET_RULES,
    timm: TORCHVISION_RESNET_RULES,
    cifar: CIFAR_RESNET_RULES,
  },
};

/**
 * Checkpoint keys a loader skips on purpose (reported as `ignored`, never as unexpected):
 * BatchNorm's step counter, and the parts of a Hugging Face `ViTModel` vit-ts has no use for.
 */
export const IGNORED_KEYS: Readonly<Record<CheckpointFormat, readonly RegExp[]>> = {
  timm: [/(^|\.)num_batches_tracked$/],
  torchvision: [/(^|\.)num_batches_tracked$/],
  cifar: [/(^|\.)num_batches_tracked$/],
  hf: [/^(vit\.)?pooler\.dense\.(weight|bias)$/, /^(vit\.)?embeddings\.mask_token$/],
};

/**
 * Older spellings of checkpoint keys, renamed on load before matching: torchvision's ViT
 * weight files published with 0.12 name the MLP layers `mlp.linear_1` / `mlp.linear_2`
 * (torchvision itself renames them to `mlp.0` / `mlp.3` in `_load_from_state_dict`).
 */
export const KEY_ALIASES: Readonly<
  Record<CheckpointFormat, ReadonlyArray<readonly [RegExp, string]>>
> = {
  timm: [],
  torchvision: [
    [/^(encoder\.layers\.encoder_layer_\d+\.mlp\.)linear_1\.(weight|bias)$/, '$10.$2'],
    [/^(encoder\.layers\.encoder_layer_\d+\.mlp\.)linear_2\.(weight|bias)$/, '$13.$2'],
  ],
  hf: [],
  cifar: [],
};

/** The current spelling of a checkpoint key (see {@link KEY_ALIASES}). */
export function canonicalKey(format: CheckpointFormat, key: string): string {
  for (const [re, to] of KEY_ALIASES[format]) if (re.test(key)) return key.replace(re, to);
  return key;
}

/** The rules of a format for a model family; throws a {@link ConfigError} for unsupported pairs. */
export function rulesFor(family: ModelFamily, format: CheckpointFormat): readonly KeyRule[] {
  const byFormat = RULES[family];
  const rules = byFormat?.[format];
  if (!rules) {
    const known = Object.keys(byFormat ?? {})
      .map((f) => `'${f}'`)
      .join(', ');
    throw new ConfigError(
      `weights: format '${String(format)}' has no key map for a ${family} model; expected one of ${known}`,
    );
  }
  return rules;
}

/** Applies the first matching rule to a vit-ts weight name; null when no rule matches. */
export function mapWeightName(
  rules: readonly KeyRule[],
  name: string,
  options: { hfPrefix?: string } = {},
): KeyMapEntry | null {
  for (const r of rules) {
    const m = r.pattern.exec(name);
    if (!m) continue;
    const keys = r.keys.map((tpl) =>
      tpl
        .replace(/\$(\d)/g, (_, i: string) => m[Number(i)] ?? '')
        .replace(HF_PREFIX, options.hfPrefix ?? ''),
    );
    return { name, keys, layout: r.layout, ...(r.role ? { role: r.role } : {}) };
  }
  return null;
}

/**
 * The key map of a model: one entry per vit-ts weight name, plus the names no rule maps (a
 * weight the format cannot hold, e.g. LayerScale in torchvision's ViT).
 */
export function buildKeyMap(
  family: ModelFamily,
  format: CheckpointFormat,
  names: readonly string[],
  options: { hfPrefix?: string } = {},
): { entries: KeyMapEntry[]; unmapped: string[] } {
  const rules = rulesFor(family, format);
  const entries: KeyMapEntry[] = [];
  const unmapped: string[] = [];
  for (const name of names) {
    const e = mapWeightName(rules, name, options);
    if (e) entries.push(e);
    else unmapped.push(name);
  }
  return { entries, unmapped };
}

/**
 * A weight's name relative to its top layer: `originalName` without the leading
 * `<layerName>/` (or without its first path segment when the layer name differs).
 */
export function relativeWeightName(originalName: string, layerName: string): string {
  if (originalName.startsWith(`${layerName}/`)) return originalName.slice(layerName.length + 1);
  const i = originalName.indexOf('/');
  return i < 0 ? originalName : originalName.slice(i + 1);
}

/** Whether a checkpoint key is skipped on purpose by a format's loader. */
export function isIgnoredKey(format: CheckpointFormat, key: string): boolean {
  return IGNORED_KEYS[format].some((re) => re.test(key));
}
