import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel, layers } from '@tensorflow/tfjs-layers';
import { findVisionTransformer } from '../analysis/attention';
import { ConfigError, requirePositiveInt } from '../errors';
import { createViT } from '../models/factory';
import type { VisionTransformer } from '../models/vision_transformer';

/**
 * A part of a Vision Transformer for {@link freeze} / {@link unfreeze}:
 * - `'patchEmbed'`: the patch projection (`patch_embed`);
 * - `'embed'`: class / register tokens and position embedding (`embed`);
 * - `'blocks'`: every transformer block; `{ blocks: [0, 1] }`: the blocks with these indices
 *   (negative indices count from the end: `-1` is the last block);
 * - `'norm'`: the final norm (`norm`, or `fc_norm` with average pooling);
 * - `'head'`: the classifier (and DeiT's distillation head `head_dist`);
 * - `'all'`: every part.
 */
export type ViTPart =
  | 'patchEmbed'
  | 'embed'
  | 'blocks'
  | 'norm'
  | 'head'
  | 'all'
  | { blocks: readonly number[] };

const NAMED_PARTS = ['patchEmbed', 'embed', 'blocks', 'norm', 'head', 'all'] as const;

/** The classifier(s): `head`, and DeiT's `head_dist` when the model is distilled. */
function heads(vit: VisionTransformer): layers.Layer[] {
  return [vit.head, vit.headDist].filter((h): h is NonNullable<typeof h> => h != null);
}

/** The sublayers a part selects. */
function layersOf(vit: VisionTransformer, part: ViTPart, owner: string): layers.Layer[] {
  if (typeof part === 'object' && part != null && Array.isArray(part.blocks)) {
    const depth = vit.blocks.length;
    return part.blocks.map((i) => {
      if (!Number.isInteger(i) || i < -depth || i >= depth) {
        throw new ConfigError(
          `${owner}: block index must be an integer in [${-depth}, ${depth - 1}], got ${String(i)}`,
        );
      }
      return vit.blocks[i < 0 ? depth + i : i];
    });
  }
  switch (part) {
    case 'patchEmbed':
      return [vit.patchEmbed];
    case 'embed':
      return [vit.embed];
    case 'blocks':
      return [...vit.blocks];
    case 'norm':
      return [vit.norm];
    case 'head':
      return heads(vit);
    case 'all':
      return [vit.patchEmbed, vit.embed, ...vit.blocks, vit.norm, ...heads(vit)];
    default:
      throw new ConfigError(
        `${owner}: part must be one of ${NAMED_PARTS.map((p) => `'${p}'`).join(', ')} or { blocks: number[] }, got ${JSON.stringify(part)}`,
      );
  }
}

function setTrainable(
  model: LayersModel | VisionTransformer,
  parts: ViTPart | readonly ViTPart[],
  value: boolean,
  owner: string,
): void {
  const vit = findVisionTransformer(model, owner);
  if (!vit.built) throw new ConfigError(`${owner}: the VisionTransformer is not built yet`);
  const list = Array.isArray(parts) ? parts : [parts as ViTPart];
  // Resolve everything first: a bad part leaves the model unchanged.
  const selected = list.flatMap((p) => layersOf(vit, p, owner));
  for (const layer of selected) layer.trainable = value;
}

/**
 * Freezes parts of a ViT: their weights get no gradients and are not updated (by
 * `model.fit` after the next `compile`, or by {@link Trainer} from the next step). Goes through
 * the `trainable` flag of the real sublayers, so `model.trainableWeights`, `countParams`-style
 * summaries and saving all see the change.
 *
 * @example
 * freeze(model, ['patchEmbed', 'embed', 'blocks']); // linear probe: only norm + head train
 * freeze(model, { blocks: [0, 1, 2] });             // the first three blocks
 */
export function freeze(
  model: LayersModel | VisionTransformer,
  parts: ViTPart | readonly ViTPart[] = 'all',
): void {
  setTrainable(model, parts, false, 'freeze');
}

/** Makes parts of a ViT trainable again; the inverse of {@link freeze}. */
export function unfreeze(
  model: LayersModel | VisionTransformer,
  parts: ViTPart | readonly ViTPart[] = 'all',
): void {
  setTrainable(model, parts, true, 'unfreeze');
}

/**
 * A new ViT model with a fresh classifier of `numClasses` outputs (timm's `reset_classifier`)
 * and every other weight copied from `model`: patch embedding, tokens, position embedding,
 * blocks and final norm. The new head is initialised as a new `Linear` (truncated normal std
 * 0.02, zero bias); with `numClasses` 0 the model outputs pooled features. Frozen parts stay
 * frozen. `model` is left unchanged (dispose it when no longer needed).
 *
 * @example
 * const pretrained = await loadModel('fashion-vit');
 * const model = resetClassifier(pretrained, 5);
 * freeze(model, ['patchEmbed', 'embed', 'blocks']);
 */
export function resetClassifier(model: LayersModel, numClasses: number): LayersModel {
  const owner = 'resetClassifier';
  const vit = findVisionTransformer(model, owner);
  if (numClasses !== 0) requirePositiveInt(owner, 'numClasses', numClasses);
  const { numClasses: _old, ...config } = vit.config;
  const fresh = createViT({ ...config, numClasses });
  const target = findVisionTransformer(fresh, owner);
  // Match by name (below the model prefix): `weights` lists trainable weights first, so its
  // order changes with freezing.
  const key = (name: string) => name.slice(name.indexOf('/') + 1);
  const isHead = (name: string) => /^head(_dist)?\//.test(key(name));
  const dest = new Map(target.weights.map((w) => [key(w.originalName), w]));
  const source = vit.weights.filter((w) => !isHead(w.originalName));
  if (source.length !== [...dest.keys()].filter((k) => !isHead(`x/${k}`)).length) {
    throw new ConfigError(`${owner}: the new model's non-head weights differ from the old one's`);
  }
  tf.tidy(() => {
    for (const w of source) {
      const d = dest.get(key(w.originalName));
      if (d == null)
        throw new ConfigError(`${owner}: the new model has no weight ${w.originalName}`);
      d.write(tf.clone(w.read()));
    }
  });
  // Keep frozen parts frozen.
  const parts: Array<[layers.Layer, layers.Layer]> = [
    [vit.patchEmbed, target.patchEmbed],
    [vit.embed, target.embed],
    [vit.norm, target.norm],
    ...vit.blocks.map((b, i): [layers.Layer, layers.Layer] => [b, target.blocks[i]]),
  ];
  for (const [from, to] of parts) if (!from.trainable) to.trainable = false;
  return fresh;
}
