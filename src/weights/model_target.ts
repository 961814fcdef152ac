/**
 * Finds the vit-ts architecture layer (VisionTransformer or ResNet18) that a weight loader or
 * exporter works on, and lists its weights under names relative to that layer.
 */
import type { LayersModel, LayerVariable } from '@tensorflow/tfjs-layers';
import { ConfigError } from '../errors';
import { findArchitectureLayer } from '../models/find_layer';
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
  const layer = findArchitectureLayer<VisionTransformer | ResNet18>(
    target,
    [VisionTransformer, ResNet18],
    caller,
    'VisionTransformer or ResNet18 layer',
  );
  if (!layer.built) {
    throw new ConfigError(
      `${caller}: layer '${layer.name}' is not built yet; apply it to an input first (createViT / createResNet18 return built models)`,
    );
  }
  const weights = new Map<string, LayerVariable>();
  for (const w of layer.weights) weights.set(relativeWeightName(w.originalName, layer.name), w);
  return { layer, family: layer instanceof VisionTransformer ? 'vit' : 'resnet', weights };
}
