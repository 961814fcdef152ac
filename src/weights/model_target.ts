/**
 * Finds the vit-ts architecture layer (VisionTransformer or ResNet18) that a weight loader or
 * exporter works on, and lists its weights under names relative to that layer.
 */
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { LayersModel } from '@tensorflow/tfjs-layers';
import { ConfigError } from '../errors';
import { ResNet18 } from '../models/resnet';
import { VisionTransformer } from '../models/vision_transformer';
import { type ModelFamily, relativeWeightName } from './keymaps';

/** What `loadPretrained` / `exportWeights` accept: a model from createViT / createResNet18 or the layer itself. */
export type WeightsTarget = LayersModel | VisionTransformer | ResNet18;

/** The architecture layer, its family and its weights by relative name. */
export interface ResolvedTarget {
  layer: VisionTransformer | ResNet18;
  family: ModelFamily;
  /** vit-ts weight name (e.g. `blocks/0/attn/qkv/kernel`) -> variable, in the layer's order. */
  weights: Map<string, LayerVariable>;
}

/** Resolves the architecture layer of `target`; throws a {@link ConfigError} naming what came. */
export function resolveTarget(target: WeightsTarget, caller: string): ResolvedTarget {
  let layer: VisionTransformer | ResNet18;
  if (target instanceof VisionTransformer || target instanceof ResNet18) {
    layer = target;
  } else if (target instanceof LayersModel) {
    const found = target.layers.filter(
      (l) => l instanceof VisionTransformer || l instanceof ResNet18,
    );
    if (found.length !== 1) {
      throw new ConfigError(
        `${caller}: model must hold exactly one VisionTransformer or ResNet18 layer, found ${found.length} ` +
          `(layers: ${target.layers.map((l) => `${l.name}:${l.getClassName()}`).join(', ')})`,
      );
    }
    layer = found[0] as VisionTransformer | ResNet18;
  } else {
    const kind =
      target == null ? String(target) : ((target as object).constructor?.name ?? typeof target);
    throw new ConfigError(
      `${caller}: model must be a tf.LayersModel from createViT / createResNet18, a VisionTransformer or a ResNet18 layer, got ${kind}`,
    );
  }
  if (!layer.built) {
    throw new ConfigError(
      `${caller}: layer '${layer.name}' is not built yet; apply it to an input first (createViT / createResNet18 return built models)`,
    );
  }
  const weights = new Map<string, LayerVariable>();
  for (const w of layer.weights) weights.set(relativeWeightName(w.originalName, layer.name), w);
  return { layer, family: layer instanceof VisionTransformer ? 'vit' : 'resnet', weights };
}
