import type { LayersModel, layers } from '@tensorflow/tfjs-layers';
import { ModelFileError } from '../errors';
import { CompositeLayer } from '../layers/composite';

/**
 * Frozen weights across saving and loading.
 *
 * tfjs serialises a layer's `trainable` flag only for the model's top-level layers. The blocks,
 * norms and heads inside a vit-ts VisionTransformer are built by it from its config, so after
 * `freeze(model, ['blocks'])` a saved and reloaded model (or a resumed checkpoint, or a worker's
 * replica) came back with every weight trainable: a resumed linear probe silently fine-tuned the
 * whole backbone. vit-ts' model files and checkpoints therefore list the frozen weights by name
 * (`frozenWeights`, written only when there are some), and loading freezes them again.
 */

type LayerVariable = LayersModel['weights'][number];

/** The weights a layer (and, for vit-ts composites, its children) creates as trainable. */
function trainableKind(layer: layers.Layer): LayerVariable[] {
  // `_trainableWeights` holds every weight added as trainable, frozen or not; the public getter
  // filters it by the layer's and each weight's flag.
  const own = (layer as unknown as { _trainableWeights?: LayerVariable[] })._trainableWeights ?? [];
  const children = layer instanceof CompositeLayer ? layer.subLayers : [];
  return [...own, ...children.flatMap(trainableKind)];
}

/** Names of the weights created trainable that are frozen now, in model order. */
export function frozenWeightNames(model: LayersModel): string[] {
  const trainable = new Set(model.trainableWeights.map((w) => w.originalName));
  return model.layers
    .flatMap(trainableKind)
    .map((w) => w.originalName)
    .filter((name) => !trainable.has(name));
}

/**
 * Freezes the weights named in `names` (a `frozenWeights` list read from `file`): each must be
 * a weight of `model`, or a {@link ModelFileError} names the first that is not. A weight may
 * already be frozen: a top-level layer saved with `trainable: false` (tfjs keeps that flag) comes
 * back frozen, children included, and is listed too.
 */
export function applyFrozenWeights(
  owner: string,
  file: string,
  model: LayersModel,
  names: unknown,
): void {
  if (names === undefined) return;
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) {
    throw new ModelFileError(
      `${owner}: ${file}: frozenWeights must be an array of weight names, got ${JSON.stringify(names)?.slice(0, 200)}`,
    );
  }
  const byName = new Map(model.weights.map((w) => [w.originalName, w]));
  const variables = (names as string[]).map((name) => {
    const w = byName.get(name);
    if (w == null) {
      throw new ModelFileError(
        `${owner}: ${file}: frozenWeights names ${JSON.stringify(name)}, which is not a weight of the model`,
      );
    }
    return w;
  });
  for (const w of variables) w.trainable = false;
}
