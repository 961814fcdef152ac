/**
 * Types of tfjs that its packages do not export from their roots, re-derived here from public
 * exports. Emitted `.d.ts` files must never name `@tensorflow/*\/dist/...` paths: those do not
 * resolve under `moduleResolution: NodeNext` / `Node16` (extensionless deep paths), and every
 * `LayerArgs` field then silently disappears from the consumer's types.
 */
import type { DataType, Optimizer, Tensor, Variable } from '@tensorflow/tfjs-core';
import type {
  initializers as initializersNs,
  LayerVariable,
  layers as tfl,
} from '@tensorflow/tfjs-layers';

/** The constructor argument of `tf.layers.Layer` (name, trainable, inputShape, dtype, ...). */
export type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.Layer>[0]>;

/** Keyword arguments tfjs passes to `Layer.call` (for example `{ training: true }`). */
export type Kwargs = Parameters<InstanceType<typeof tfl.Layer>['call']>[1];

/** A tensor with its variable name, as given to `Optimizer.applyGradients`. */
export interface NamedTensor {
  name: string;
  tensor: Tensor;
}

/** A map from variable names to gradients, as given to `Optimizer.applyGradients`. */
export type NamedVariableMap = { [name: string]: Variable };

/** What `Optimizer.applyGradients` accepts. */
export type ApplyGradientsArg = Parameters<Optimizer['applyGradients']>[0];

// --- The only reads of tfjs-layers members that are not public API. test/core/tfjs_private.test.ts
// --- fails loudly if a tfjs upgrade renames or removes them.

/**
 * Whether `loadLayersModel` asked `layer` to skip initializers while building (its weights are
 * about to be overwritten). tfjs keeps the flag in a protected field with a public setter only;
 * composite layers pass it on to the children they build.
 */
export function fastWeightInitDuringBuild(layer: InstanceType<typeof tfl.Layer>): boolean {
  return (
    (layer as unknown as { fastWeightInitDuringBuild?: boolean }).fastWeightInitDuringBuild === true
  );
}

/** The signature of the protected `Layer.addWeight`. */
export type AddWeight = (
  name: string,
  shape: Array<number | null>,
  dtype?: DataType,
  initializer?: ReturnType<typeof initializersNs.zeros>,
  regularizer?: undefined,
  trainable?: boolean,
) => LayerVariable;

/**
 * Calls the protected `Layer.addWeight` of `layer` from a helper that adds weights on a layer's
 * behalf (BatchNorm statistics inside ResNet blocks). Use only from that layer's `build`.
 */
export function addWeightTo(layer: InstanceType<typeof tfl.Layer>): AddWeight {
  const add = (layer as unknown as { addWeight: AddWeight }).addWeight;
  return add.bind(layer);
}
