/**
 * Types of tfjs that its packages do not export from their roots, re-derived here from public
 * exports. Emitted `.d.ts` files must never name `@tensorflow/*\/dist/...` paths: those do not
 * resolve under `moduleResolution: NodeNext` / `Node16` (extensionless deep paths), and every
 * `LayerArgs` field then silently disappears from the consumer's types.
 */
import type { Optimizer, Tensor, Variable } from '@tensorflow/tfjs-core';
import type { layers as tfl } from '@tensorflow/tfjs-layers';

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
