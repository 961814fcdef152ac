/**
 * Small helpers shared by the layer files (kept here so that a layer file holds one layer).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { NotBuiltError } from '../errors';

/**
 * Reads a weight that `build()` must have created; throws a {@link NotBuiltError} naming the
 * layer and the weight when the layer is used before it was built.
 */
export function readWeight(
  w: LayerVariable | null | undefined,
  owner: string,
  name: string,
): tf.Tensor {
  if (w == null) throw new NotBuiltError(`${owner}: weight ${name} used before build()`);
  return w.read();
}
